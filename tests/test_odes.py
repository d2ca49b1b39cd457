"""Tests of lowrank_ref.odes: every problem's F is the derivative of its exact solution."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings, strategies as st

from lowrank_ref.checks import fit_slope, tolerance
from lowrank_ref.integrators import integrate
from lowrank_ref.lowrank import LowRank
from lowrank_ref.odes import CubicFlow, GradientFlow, RankRCurve, SylvesterProblem, ToyProblem
from strategies import seeds, shapes_and_rank

DELTAS = np.array([4e-3, 2e-3, 1e-3])


def _check_derivative(prob, t):
    """F(t, A(t)) is dA/dt: central differences converge to it with order 2."""
    A = prob.exact(t)
    dA = prob.F(t, A)
    assert dA.shape == (prob.m, prob.n)
    errs = []
    for d in DELTAS:
        fd = (prob.exact(t + d) - prob.exact(t - d)) / (2 * d)
        errs.append(np.linalg.norm(fd - dA))
    errs = np.array(errs)
    scale = np.linalg.norm(dA) + np.linalg.norm(A)
    if errs.max() <= tolerance("step", size=max(prob.m, prob.n)) * scale / DELTAS[-1]:
        return  # derivative exact to rounding (e.g. linear in t)
    assert errs[-1] <= 1e-4 * scale, errs
    assert 1.8 <= fit_slope(DELTAS, errs) <= 2.2, errs


def _check_exact_at_zero(prob):
    np.testing.assert_allclose(prob.exact(0.0), prob.A0,
                               atol=tolerance("reconstruction", size=max(prob.m, prob.n))
                               * np.linalg.norm(prob.A0))


# --------------------------------------------------------------------------- ToyProblem
@settings(max_examples=10)
@given(shapes_and_rank(max_size=40), seeds, st.floats(0.0, 1.0))
def test_toy_singular_values_and_best_error(mnr, seed, t):
    m, n, r = mnr
    prob = ToyProblem(np.random.default_rng(seed), m, n)
    _check_exact_at_zero(prob)
    A = prob.exact(t)
    p = min(m, n)
    s = np.linalg.svd(A, compute_uv=False)
    expected = np.exp(t) * 2.0 ** -np.arange(1, p + 1)
    np.testing.assert_allclose(s, expected, rtol=0,
                               atol=tolerance("reconstruction", size=max(m, n)) * s[0])
    # best_error is the Eckart-Young tail, and the closed form e^t 2^-r sqrt((1-4^(r-p))/3)
    tail = np.sqrt(np.sum(expected[r:] ** 2))
    assert prob.best_error(t, r) == pytest.approx(tail, rel=1e-12)
    B = prob.best_approximation(t, r)
    assert np.linalg.norm(A - B.to_dense()) == pytest.approx(tail, rel=1e-6, abs=1e-15)


def test_toy_best_error_formula_at_t1():
    prob = ToyProblem(np.random.default_rng(0), 100)
    for r in (4, 8, 16):
        # e 2^-r / sqrt(3) up to the factor sqrt(1 - 4^(r - 100)) = 1 - O(4^-84)
        assert prob.best_error(1.0, r) == pytest.approx(np.e * 2.0 ** -r / np.sqrt(3), rel=1e-14)
    assert prob.best_error(1.0, 100) == 0.0


@pytest.mark.parametrize("form", ["data", "ode", "source"])
@pytest.mark.parametrize("m, n", [(12, 12), (15, 9)])
def test_toy_F_is_derivative(form, m, n):
    prob = ToyProblem(np.random.default_rng(1), m, n, form=form)
    for t in (0.0, 0.3, 1.0):
        _check_derivative(prob, t)


def test_toy_data_and_ode_forms_agree_on_exact_solution():
    data = ToyProblem(np.random.default_rng(2), 10, 7, form="data")
    ode = ToyProblem(np.random.default_rng(2), 10, 7, form="ode")
    A = data.exact(0.4)
    np.testing.assert_allclose(data.F(0.4, np.zeros((10, 7))), ode.F(0.4, A), rtol=0,
                               atol=tolerance("step", size=10) * np.linalg.norm(A))
    # the ODE form integrated numerically reaches the exact solution
    Y = integrate(ode.F, ode.A0, 0.0, 1.0, "rk4", 50)
    assert np.linalg.norm(Y - ode.exact(1.0)) <= 1e-6 * np.linalg.norm(ode.exact(1.0))


def test_toy_source_form_solution_from_any_start_and_its_normal_component():
    """form="source": from Y0 the solution is A(t) + e^{tW1} (Y0 - D) e^{tW2}^T (checked by
    rk4 on the full problem), and F has a normal component at a rank-r Y (ode form: none)."""
    src = ToyProblem(np.random.default_rng(2), 12, 9, form="source")
    ode = ToyProblem(np.random.default_rng(2), 12, 9, form="ode")
    Y0 = src.best_approximation(0.0, 3)
    Y = integrate(src.F, Y0.to_dense(), 0.0, 1.0, "rk4", 50)
    E1, E2 = scipy.linalg.expm(src.W1), scipy.linalg.expm(src.W2)
    expected = src.exact(1.0) + E1 @ (Y0.to_dense() - src.D) @ E2.T
    assert np.linalg.norm(Y - expected) <= 1e-6 * np.linalg.norm(expected)
    U, _, V = src.best_approximation(0.5, 3)
    Yd = src.best_approximation(0.5, 3).to_dense()
    normal = lambda Z: (Z - U @ (U.T @ Z)) - (Z - U @ (U.T @ Z)) @ V @ V.T   # noqa: E731
    assert np.linalg.norm(normal(ode.F(0.5, Yd))) <= tolerance("step", size=12)
    assert np.linalg.norm(normal(src.F(0.5, Yd))) == pytest.approx(src.best_error(0.5, 3),
                                                                   rel=1e-10)


def test_toy_skew_matrices():
    prob = ToyProblem(np.random.default_rng(3), 8, 5, w_scale=2.0)
    np.testing.assert_array_equal(prob.W1, -prob.W1.T)
    np.testing.assert_array_equal(prob.W2, -prob.W2.T)
    assert prob.D.shape == (8, 5)


# --------------------------------------------------------------------------- Sylvester
@settings(max_examples=10)
@given(shapes_and_rank(max_size=30, max_rank=6), seeds, st.booleans())
def test_sylvester_exact_rank_and_derivative(mnr, seed, skew):
    m, n, r = mnr
    prob = SylvesterProblem(np.random.default_rng(seed), m, n, r, skew=skew)
    assert isinstance(prob.Y0, LowRank) and prob.Y0.rank == r
    assert prob.Y0.orthonormality_error() <= tolerance("orthonormality", size=max(m, n))
    _check_exact_at_zero(prob)
    _check_derivative(prob, 0.5)
    s = np.linalg.svd(prob.exact(1.0), compute_uv=False)
    if min(m, n) > r:
        assert s[r] <= tolerance("step", size=max(m, n)) * s[0] * 10   # rank stays r
    if skew:
        np.testing.assert_allclose(prob.W1, -prob.W1.T, atol=1e-15)


def test_sylvester_custom_W_and_symmetric():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((6, 6))
    prob = SylvesterProblem(rng, 6, 6, 2, W1=W, W2=W)
    Y = prob.A0
    np.testing.assert_allclose(prob.F(0.0, Y.T), prob.F(0.0, Y).T, atol=1e-14)


def _rk4_reference(prob, T, steps=400):
    """The full problem ``dA/dt = F(t, A)`` from ``A0`` by classical Runge-Kutta steps: an
    approximation of ``A(T)`` independent of ``exact`` (error O(steps^-4))."""
    return integrate(prob.F, prob.A0, 0.0, T, "rk4", steps)


@settings(max_examples=10)
@given(shapes_and_rank(max_size=16, max_rank=4), seeds, st.integers(1, 3), st.booleans())
def test_sylvester_with_a_source_exact_solution_and_growing_rank(mnr, seed, rc, inside):
    """With a rank-``rc`` source ``C`` the exact solution (Van Loan's block formula) solves
    the ODE -- it matches fine Runge-Kutta steps of the full problem and ``F`` is its
    derivative -- and its rank grows beyond ``r``; ``source_in_bases`` puts ``C`` in the
    initial bases."""
    m, n, r = mnr
    rc = min(rc, r) if inside else min(rc, m, n)
    prob = SylvesterProblem(np.random.default_rng(seed), m, n, r, source_rank=rc,
                            source_in_bases=inside)
    _check_exact_at_zero(prob)
    _check_derivative(prob, 0.4)
    A1 = prob.exact(1.0)
    assert np.linalg.norm(A1 - _rk4_reference(prob, 1.0)) <= 1e-9 * np.linalg.norm(A1)
    assert np.linalg.matrix_rank(prob.C) == rc
    U0, _, V0 = prob.Y0
    P = (U0 @ U0.T) @ prob.C @ (V0 @ V0.T)
    assert (np.linalg.norm(prob.C - P) <= 1e-12 * np.linalg.norm(prob.C)) == inside or \
        (r == min(m, n))                    # full-rank bases contain everything
    if r < min(m, n):
        s = np.linalg.svd(A1, compute_uv=False)
        assert s[r] > 1e-8 * s[0]                                   # the rank grew


@settings(max_examples=10)
@given(shapes_and_rank(max_size=16, max_rank=5), seeds,
       st.sampled_from([1.0, 1e-3, 1e-12]), st.sampled_from([0.0, 1.0, 3.0]))
def test_cubic_flow_exact_solution_is_rank_preserving(mnr, seed, sigma_min, c):
    """``CubicFlow``: the exact solution matches fine Runge-Kutta steps of the full problem,
    ``F`` is its derivative, the rank stays r and the singular values are
    ``sigma_j / sqrt(1 + 2 c sigma_j^2 t)``."""
    m, n, r = mnr
    sigma = np.geomspace(1.0, sigma_min, r) if r > 1 else np.ones(1)
    prob = CubicFlow(np.random.default_rng(seed), m, n, sigma, c=c)
    _check_exact_at_zero(prob)
    _check_derivative(prob, 0.3)
    A1 = prob.exact(1.0)
    assert np.linalg.norm(A1 - _rk4_reference(prob, 1.0)) <= 1e-9 * np.linalg.norm(A1)
    s = np.linalg.svd(A1, compute_uv=False)
    np.testing.assert_allclose(s[:r], np.sort(prob.singular_values(1.0))[::-1],
                               rtol=1e-10, atol=1e-14)
    assert np.all(s[r:] <= tolerance("step", size=max(m, n)) * s[0])


# --------------------------------------------------------------------------- RankRCurve
@settings(max_examples=10)
@given(shapes_and_rank(max_size=30, max_rank=8), seeds,
       st.sampled_from([1.0, 1e-3, 1e-8, 1e-12]))
def test_rank_r_curve(mnr, seed, sigma_min):
    m, n, r = mnr
    c = RankRCurve(np.random.default_rng(seed), m, n, r, sigma_min=sigma_min)
    _check_exact_at_zero(c)
    _check_derivative(c, 0.3)
    U, S, V = c.factors(0.7)
    assert LowRank(U, S, V).orthonormality_error() <= tolerance("orthonormality", size=max(m, n))
    np.testing.assert_allclose(np.linalg.svd(S, compute_uv=False), 1.7 * c.sigma, rtol=1e-12)
    if r > 1:
        assert c.sigma[-1] == pytest.approx(sigma_min)
        assert np.linalg.norm(S - np.diag(np.diag(S))) > 0        # S(t) not diagonal


# --------------------------------------------------------------------------- GradientFlow
def test_gradient_flow():
    g = GradientFlow(np.random.default_rng(5), 7, 4, 2)
    _check_exact_at_zero(g)
    _check_derivative(g, 0.2)
    assert g.objective(g.B) == 0.0
    assert g.objective(g.Y0) == pytest.approx(np.linalg.norm(g.A0 - g.B))
    B = np.ones((7, 4))
    assert GradientFlow(np.random.default_rng(5), 7, 4, 2, B=B).B is not B


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, exc, word", [
    (lambda rng: ToyProblem(rng, 0), ValueError, "m"),
    (lambda rng: ToyProblem(rng, 4, 2.5), TypeError, "n"),
    (lambda rng: ToyProblem(rng, 4, form="pde"), ValueError, "form"),
    (lambda rng: ToyProblem(rng, 4, w_scale=-1.0), ValueError, "w_scale"),
    (lambda rng: ToyProblem(0, 4), TypeError, "rng"),
    (lambda rng: SylvesterProblem(rng, 4, 3, 4), ValueError, "r"),
    (lambda rng: SylvesterProblem(rng, 4, 3, 2, W1=np.eye(3)), ValueError, "W1"),
    (lambda rng: SylvesterProblem(rng, 4, 3, 2, W2=np.full((3, 3), np.nan)), ValueError, "W2"),
    (lambda rng: SylvesterProblem(rng, 4, 3, 2, source_rank=-1), ValueError, "source_rank"),
    (lambda rng: SylvesterProblem(rng, 4, 3, 2, source_rank=3, source_in_bases=True),
     ValueError, "source_rank"),
    (lambda rng: SylvesterProblem(rng, 4, 3, 2, source_in_bases=1), TypeError,
     "source_in_bases"),
    (lambda rng: CubicFlow(rng, 4, 3, [1.0, 0.0]), ValueError, "singular_values"),
    (lambda rng: CubicFlow(rng, 4, 3, [1.0, 0.5, 0.2, 0.1]), ValueError, "singular_values"),
    (lambda rng: CubicFlow(rng, 4, 3, [1.0], c=-1.0), ValueError, "c must"),
    (lambda rng: CubicFlow(rng, 4, 3, [1.0], w_scale=0.0), ValueError, "w_scale"),
    (lambda rng: CubicFlow(rng, 4, 3, [1.0]).F(0.0, np.ones((3, 3))), ValueError, "A"),
    (lambda rng: RankRCurve(rng, 4, 3, 2, sigma_min=0.0), ValueError, "sigma_min"),
    (lambda rng: RankRCurve(rng, 4, 3, 2, sigma_min=2.0), ValueError, "sigma_min"),
    (lambda rng: RankRCurve(rng, 4, 3, 2, omega=np.inf), ValueError, "omega"),
    (lambda rng: GradientFlow(rng, 4, 3, 2, B=np.ones((3, 4))), ValueError, "B"),
    (lambda rng: ToyProblem(rng, 4).best_error(1.0, 5), ValueError, "r"),
    (lambda rng: ToyProblem(rng, 4).exact(np.nan), ValueError, "t"),
    (lambda rng: ToyProblem(rng, 4).F(0.0, np.ones((3, 4))), ValueError, "A"),
    (lambda rng: SylvesterProblem(rng, 4, 3, 1).F(0.0, np.ones((4, 4))), ValueError, "A"),
    (lambda rng: RankRCurve(rng, 4, 3, 1).F("0", np.ones((4, 3))), TypeError, "t"),
])
def test_odes_bad_input(make, exc, word):
    with pytest.raises(exc, match=word):
        make(np.random.default_rng(0))
