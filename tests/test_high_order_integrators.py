"""Theory tests of the second- and higher-order robust integrators.

* :func:`~lowrank_ref.integrators.midpoint_bug_step` -- midpoint BUG [CEKL24] (Ceruti,
  Einkemmer, Kusch, Lubich, BIT 64 (2024)): second order, robust to small singular values;
* :func:`~lowrank_ref.integrators.rk_bug_step` -- Runge-Kutta BUG [NR25] (Nobile, Riffaud,
  arXiv 2502.07040): the order p of its tableau until a plateau at the low-rank error.

Orders are fitted slopes (:func:`lowrank_ref.checks.fit_slope`) of the error against ``h``
at a fixed final time, never one error at one step size. Two problems with known solutions
(:class:`~lowrank_ref.odes.ToyProblem`, the toy problem of [CL22] with singular values
``e^t 2^-j``):

* ``form="ode"`` -- ``F(Y) = W1 Y + Y + Y W2^T`` is tangent to the rank-r manifold, so from
  the best rank-r approximation of ``A(0)`` the solution stays of rank r and is known
  exactly (``best_approximation(t, r)``). The rank-adaptive BUG clamped to rank r is
  already second order here, and KSL is exact: what this problem shows is RK-BUG's orders
  3 and 4.
* ``form="source"`` -- ``F(t, Y) = W1 Y + Y W2^T + A(t)`` has a component normal to the
  rank-r manifold (about the best rank-r error); the solution from ``Y0`` is
  ``A(t) + e^{t W1} (Y0 - D) e^{t W2}^T``. Here the rank-adaptive BUG with the same
  one-Euler-step sub-flows as the midpoint BUG is first order and the midpoint BUG second.

All the numbers quoted in the docstrings were measured with these seeds (float64, one
BLAS thread).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lowrank_ref.checks import fit_slope, tolerance
from lowrank_ref.integrators import (BUTCHER_TABLEAUX, ButcherTableau, _check_tableau,
                                     _frozen_field_bug_step, adaptive_bug_step, bug_step,
                                     midpoint_bug_step, parallel_bug_step,
                                     projector_splitting_step, rk_bug_step)
from lowrank_ref.lowrank import LowRank, augment_basis
from lowrank_ref.odes import ToyProblem
from lowrank_ref.truncation import truncate
from strategies import gauge, orthonormal, seeds, shapes_and_rank

H = np.array([0.1, 0.05, 0.025, 0.0125])
T = 1.0


# --------------------------------------------------------------------------- helpers
def integrate(step, Y, F, h, T=T):
    n = int(round(T / h))
    for k in range(n):
        Y = step(Y, F, k * h, h)
    return Y


class Problem:
    """A ToyProblem started from its best rank-r approximation, with the exact solution
    ``ref`` at ``T`` (from that start) and its best rank-r error ``best``."""

    def __init__(self, form, N, r):
        self.prob = ToyProblem(np.random.default_rng(0), N, form=form)
        self.r = r
        self.Y0 = self.prob.best_approximation(0.0, r)
        if form == "ode":
            self.ref = self.prob.best_approximation(T, r).to_dense()
        else:
            E1 = self.prob._E1(T)
            E2 = self.prob._E2(T)
            self.ref = self.prob.exact(T) + E1 @ (self.Y0.to_dense() - self.prob.D) @ E2.T
        s = np.linalg.svd(self.ref, compute_uv=False)
        self.best = float(np.sqrt(np.sum(s[r:] ** 2)))      # Eckart-Young

    def errors(self, step, hs=H):
        """Relative errors ``||Y_h(T) - A(T)||_F / ||A(T)||_F``."""
        nrm = np.linalg.norm(self.ref)
        return np.array([np.linalg.norm(integrate(step, self.Y0, self.prob.F, h).to_dense()
                                        - self.ref) / nrm for h in hs])


def fixed(r):
    """Keyword arguments of the rank-adaptive steps for fixed rank r."""
    return dict(tol=0.0, min_rank=r, max_rank=r)


def midpoint(r, **kw):
    return lambda Y, F, t, h: midpoint_bug_step(Y, F, t, h, **fixed(r), **kw)


def rk(r, tableau):
    return lambda Y, F, t, h: rk_bug_step(Y, F, t, h, **fixed(r), tableau=tableau)


@pytest.fixture(scope="module")
def tangent():
    """ToyProblem(form="ode"), 40 x 40, rank 4: exact solution of rank 4."""
    return Problem("ode", 40, 4)


@pytest.fixture(scope="module")
def source():
    """ToyProblem(form="source"), 60 x 60, rank 20: best rank-20 error 6.0e-7 (relative)."""
    return Problem("source", 60, 20)


# --------------------------------------------------------------------------- orders
RK_ORDERS = [("heun", 2), ("midpoint", 2), ("rk3", 3), ("ssprk3", 3), ("rk4", 4)]


@pytest.mark.parametrize("tableau, p", RK_ORDERS)
def test_rk_bug_has_the_order_of_its_tableau(tangent, tableau, p):
    """[NR25]: RK-BUG retains the order p of the Runge-Kutta method. On the problem whose
    solution has rank r exactly (no plateau), h = 0.1 ... 0.0125, measured slopes: heun 2.00,
    midpoint tableau 1.98, rk3 2.91, ssprk3 2.97, rk4 3.95."""
    errs = tangent.errors(rk(tangent.r, tableau))
    assert np.all(np.diff(errs) < 0), errs
    slope = fit_slope(H, errs)
    assert abs(slope - p) <= 0.2, (tableau, slope, errs)
    assert BUTCHER_TABLEAUX[tableau].order == p


def test_midpoint_bug_is_second_order_on_the_rank_r_problem(tangent):
    """[CEKL24]: order 2 (measured 1.98), with one Euler step per sub-flow of the half step;
    the fixed-rank BUG [CL22] with the same sub-flows is first order (0.93)."""
    slope = fit_slope(H, tangent.errors(midpoint(tangent.r)))
    assert abs(slope - 2) <= 0.15, slope
    bug = fit_slope(H, tangent.errors(lambda Y, F, t, h: bug_step(Y, F, t, h)))
    assert 0.8 <= bug <= 1.2, bug


def test_midpoint_bug_gain_where_F_has_a_normal_component(source):
    """With a normal component (source form), rank 20: midpoint BUG slope 2.00, while the
    rank-adaptive BUG [CKL22] clamped to rank 20 with the same sub-flows (one Euler step)
    is first order (1.13) and 10 to 61 times less accurate. (With rk4 sub-flows the
    rank-adaptive BUG has a small error and slope 1.64 here, first order asymptotically.)"""
    errs = source.errors(midpoint(source.r))
    slope = fit_slope(H, errs)
    assert abs(slope - 2) <= 0.15, (slope, errs)
    adaptive = source.errors(lambda Y, F, t, h: adaptive_bug_step(Y, F, t, h,
                                                                  **fixed(source.r)))
    assert 0.8 <= fit_slope(H, adaptive) <= 1.3, adaptive
    assert np.all(errs * 5 < adaptive), (errs, adaptive)
    assert np.all(errs * np.linalg.norm(source.ref) > source.best)   # before the plateau


# --------------------------------------------------------------------------- plateau
@pytest.mark.parametrize("name", ["midpoint", "heun", "rk3", "rk4"])
def test_plateau_at_the_best_approximation_error(name):
    """Rank 8 below the numerical rank of the solution (source form, 40 x 40): as h
    decreases the error levels off at the error of the SVD truncation of the exact
    solution (Eckart-Young: no rank-8 matrix does better). Measured error / best at
    h = 0.2 ... 0.0125: midpoint 28.4 ... 1.004, heun 27.4 ... 1.003, rk3 4.16 ... 1.000,
    rk4 2.12 ... 1.000."""
    p = Problem("source", 40, 8)
    hs = np.array([0.2, 0.1, 0.05, 0.025, 0.0125])
    step = midpoint(8) if name == "midpoint" else rk(8, name)
    ratio = p.errors(step, hs) * np.linalg.norm(p.ref) / p.best
    assert np.all(ratio >= 1 - 1e-10), ratio                      # a theorem, a sanity check
    assert np.all(np.diff(ratio) <= 1e-10), ratio                 # monotone approach
    assert ratio[-1] <= 1.01, ratio
    assert ratio[0] >= 1.5, ratio                                 # a real approach, not flat


# --------------------------------------------------------------------------- robustness
ROBUST_RANKS = [16, 24, 32, 40]          # sigma_r(A(0)) = 2^-r: 1.5e-5 ... 9.1e-13


@pytest.fixture(scope="module")
def robustness_errors():
    """Absolute errors at T = 1 (source form, 128 x 128, h = 0.05) for each rank."""
    out = {}
    for r in ROBUST_RANKS:
        p = Problem("source", 128, r)
        steps = {
            "midpoint": midpoint(r),
            "heun": rk(r, "heun"),
            "rk4": rk(r, "rk4"),
            "ksl_strang": lambda Y, F, t, h: projector_splitting_step(Y, F, t, h, inner="rk4",
                                                                     order=2),
        }
        for name, step in steps.items():
            E = integrate(step, p.Y0, p.prob.F, 0.05).to_dense() - p.ref
            out[name, r] = (float(np.linalg.norm(E)), p.best)
    return out


def test_robust_down_to_singular_values_1e_12_and_ksl_strang_is_not_flat(robustness_errors):
    """[CEKL24], [NR25]: error bounds independent of small singular values. From
    sigma_r = 1.5e-5 to 9.1e-13 (r = 16 ... 40) the errors of the midpoint BUG, RK-BUG
    (heun, rk4) do not grow (measured ratios to r = 16: at most 1.004 for midpoint and heun;
    rk4 0.59, its r = 16 error still contains the best rank-16 error 1.5e-5).

    Contrast, measured in the same run: the error of KSL Strang [LO14] (rk4 sub-flows) grows
    by a factor 7.0 (2.6e-4 -> 1.8e-3) over the same range. It levels off (3.4, 6.2, 7.0),
    so this shows a dependence on sigma_r, not a blow-up; KSL Lie, whose robustness is
    proven [KLW16], grows by 6.9 in the same run."""
    e = {k: v[0] for k, v in robustness_errors.items()}
    for name in ("midpoint", "heun", "rk4"):
        first = e[name, ROBUST_RANKS[0]]
        for r in ROBUST_RANKS:
            err, best = robustness_errors[name, r]
            assert best <= err <= 1.05 * first, (name, r, err, first)
    ksl = [e["ksl_strang", r] for r in ROBUST_RANKS]
    assert 3.0 <= ksl[-1] / ksl[0] <= 20.0, ksl


# --------------------------------------------------------------------------- negative controls
def _midpoint_mutant(bug):
    """The midpoint BUG with one planted error (``bug``):

    * ``"no_F_half_V_half"``: bases ``[U0, U_half]`` -- the direction of ``F`` at the
      midpoint left out of the augmentation;
    * ``"F_at_start"``: the Galerkin update with ``F(t0, Y0)`` instead of ``F(t_half,
      Y_half)`` (an explicit Euler step in the augmented bases).
    """
    def step(Y0, F, t0, h, r):
        U0, S0, V0 = Y0
        Uh, Sh, Vh = adaptive_bug_step(Y0, F, t0, h / 2, **fixed(r))
        Fh = F(t0 + h / 2, (Uh @ Sh) @ Vh.T)
        Ku, Kv = [Uh, Fh @ Vh], [Vh, Fh.T @ Uh]
        if bug == "no_F_half_V_half":
            Ku, Kv = [Uh], [Vh]
        elif bug == "F_at_start":
            Fh = F(t0, Y0.to_dense())
        U = augment_basis(U0, np.concatenate(Ku, axis=1))
        V = augment_basis(V0, np.concatenate(Kv, axis=1))
        S = (U.T @ U0) @ S0 @ (V0.T @ V) + h * (U.T @ Fh @ V)
        return truncate(U, S, V, **fixed(r))
    return step


def _rk_mutant(bug, tableau):
    """RK-BUG with one planted error (``bug``):

    * ``"chained_stages"``: the BUG step of stage i starts from stage i-1 instead of ``Y0``;
    * ``"stage_times_ignored"``: every stage evaluates ``F`` at ``t0``.
    """
    a, b, c, _ = _check_tableau(tableau)

    def step(Y0, F, t0, h, r):
        FY, start = [F(t0, Y0.to_dense())], Y0
        for i in range(1, len(b)):
            Yi = _frozen_field_bug_step(*start, FY, a[i, :i], h, t0 + h, 0.0, True, r, r)
            ti = t0 if bug == "stage_times_ignored" else t0 + c[i] * h
            FY.append(F(ti, Yi.to_dense()))
            if bug == "chained_stages":
                start = Yi
        return _frozen_field_bug_step(*Y0, FY, b, h, t0 + h, 0.0, True, r, r)
    return step


MUTANTS = [
    # (method, mutant, problem, order of the correct method; measured mutant slope)
    ("midpoint", _midpoint_mutant("no_F_half_V_half"), "tangent", 2),     # 1.02
    ("midpoint", _midpoint_mutant("F_at_start"), "tangent", 2),           # 1.02
    ("rk4", _rk_mutant("chained_stages", "rk4"), "tangent", 4),           # 0.95
    ("heun", _rk_mutant("stage_times_ignored", "heun"), "source", 2),     # 1.00
]


@pytest.mark.parametrize("method, mutant, problem, p", MUTANTS,
                         ids=["midpoint-no_F_half_V_half", "midpoint-F_at_start",
                              "rk4-chained_stages", "heun-stage_times_ignored"])
def test_negative_control_planted_error_drops_the_order(method, mutant, problem, p, request):
    """Each planted error drops the fitted slope to about 1, where the correct method (same
    problem, same h) has slope p: the order tests above can fail."""
    prob = request.getfixturevalue(problem)
    correct = midpoint(prob.r) if method == "midpoint" else rk(prob.r, method)
    good = fit_slope(H, prob.errors(correct))
    bad_errs = prob.errors(lambda Y, F, t, h: mutant(Y, F, t, h, prob.r))
    bad = fit_slope(H, bad_errs)
    assert abs(good - p) <= 0.2, good
    assert bad <= 1.3, (bad, bad_errs)


# --------------------------------------------------------------------------- full rank
def _rk_full(F, Y, t, h, tableau):
    """The explicit Runge-Kutta formulas, written out (independent of BUTCHER_TABLEAUX)."""
    if tableau == "heun":
        k1 = F(t, Y)
        k2 = F(t + h, Y + h * k1)
        return Y + h / 2 * (k1 + k2)
    if tableau == "midpoint":
        return Y + h * F(t + h / 2, Y + h / 2 * F(t, Y))
    if tableau == "rk3":
        k1 = F(t, Y)
        k2 = F(t + h / 2, Y + h / 2 * k1)
        k3 = F(t + h, Y - h * k1 + 2 * h * k2)
        return Y + h / 6 * (k1 + 4 * k2 + k3)
    if tableau == "ssprk3":
        Y1 = Y + h * F(t, Y)
        Y2 = 3 / 4 * Y + 1 / 4 * (Y1 + h * F(t + h, Y1))
        return 1 / 3 * Y + 2 / 3 * (Y2 + h * F(t + h / 2, Y2))
    k1 = F(t, Y)
    k2 = F(t + h / 2, Y + h / 2 * k1)
    k3 = F(t + h / 2, Y + h / 2 * k2)
    k4 = F(t + h, Y + h * k3)
    return Y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@settings(max_examples=15)
@given(st.integers(1, 12), seeds, st.sampled_from(sorted(BUTCHER_TABLEAUX)))
def test_full_rank_rk_bug_is_the_runge_kutta_method(n, seed, tableau):
    """r = m = n: the augmented bases span everything, nothing is truncated (tol = 0), so
    RK-BUG is the Runge-Kutta method on the full problem ("the plateau vanishes as the rank
    becomes full", [NR25])."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    F = lambda t, Y: W @ Y - Y ** 3 + np.cos(t)   # noqa: E731  (nonlinear)
    Y0 = LowRank.random(rng, n, n, n, singular_values=np.geomspace(1, 1e-3, n))
    A1 = _rk_full(F, Y0.to_dense(), 0.2, 0.3, tableau)
    Y1 = rk_bug_step(Y0, F, 0.2, 0.3, 0.0, tableau=tableau)
    assert np.linalg.norm(Y1.to_dense() - A1) <= tolerance("step", size=n) * np.linalg.norm(A1)


@settings(max_examples=15)
@given(st.integers(1, 12), seeds)
def test_full_rank_midpoint_bug_is_the_explicit_midpoint_method(n, seed):
    """r = m = n, one Euler step for the half step: the midpoint BUG is
    ``Y1 = Y0 + h F(t0 + h/2, Y0 + h/2 F(t0, Y0))``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    F = lambda t, Y: W @ Y - Y ** 3 + np.cos(t)   # noqa: E731
    Y0 = LowRank.random(rng, n, n, n, singular_values=np.geomspace(1, 1e-3, n))
    A1 = _rk_full(F, Y0.to_dense(), 0.2, 0.3, "midpoint")
    Y1 = midpoint_bug_step(Y0, F, 0.2, 0.3, 0.0)
    assert np.linalg.norm(Y1.to_dense() - A1) <= tolerance("step", size=n) * np.linalg.norm(A1)


# --------------------------------------------------------------------------- structure
def _steps(tol=1e-10, **kw):
    return {"midpoint": lambda Y, F, t, h: midpoint_bug_step(Y, F, t, h, tol, **kw),
            "rk4": lambda Y, F, t, h: rk_bug_step(Y, F, t, h, tol, **kw),
            "heun": lambda Y, F, t, h: rk_bug_step(Y, F, t, h, tol, tableau="heun", **kw)}


def _forced(rng, m, n, symmetric=False):
    W1 = rng.standard_normal((m, m)) / np.sqrt(m)
    W2 = W1 if symmetric else rng.standard_normal((n, n)) / np.sqrt(n)
    C = 0.3 * rng.standard_normal((m, n)) / np.sqrt(max(m, n))
    if symmetric:
        C = C + C.T
    return lambda t, Y: W1 @ Y + Y @ W2.T + np.cos(t) * C


@settings(max_examples=10)
@given(shapes_and_rank(max_size=30), seeds)
def test_symmetry_preserved(mnr, seed):
    """F(t, Y^T) = F(t, Y)^T and Y0 = Y0^T => Y1 = Y1^T, as for BUG [CL22]: the half step /
    stages are symmetric, and the bases of both sides span the same spaces (derived from
    the construction, not checked against the papers' text)."""
    m, _, r = mnr
    rng = np.random.default_rng(seed)
    F = _forced(rng, m, m, symmetric=True)
    U = orthonormal(rng, m, r)
    P = orthonormal(rng, r, r)
    Y0 = LowRank(U, P @ np.diag(np.geomspace(1, 1e-5, r) * rng.choice([-1, 1], r)) @ P.T, U)
    for name, step in _steps().items():
        Y = Y0
        for k in range(3):
            s = Y.singular_values()
            cond = s[0] / s[-1]
            Y = step(Y, F, 0.1 * k, 0.1)
            D = Y.to_dense()
            asym = np.linalg.norm(D - D.T)
            assert asym <= tolerance("symmetry", size=m, cond=cond) * np.linalg.norm(D), (
                name, k, asym / np.linalg.norm(D), cond)


@settings(max_examples=15)
@given(shapes_and_rank(max_size=30), seeds, st.integers(1, 30), st.integers(0, 30),
       st.sampled_from([0.0, 1e-10, 1e-3]))
def test_ranks_orthonormality_and_gauge(mnr, seed, lo, extra, tol):
    """Result ranks: midpoint <= min(4r, m, n), RK-BUG <= min(2r, m, n), inside the clamp;
    orthonormal factors; Y1 depends on the matrix Y0, not on its factorisation."""
    m, n, r = mnr
    rng = np.random.default_rng(seed)
    F = _forced(rng, m, n)
    Y0 = LowRank.random(rng, m, n, r, singular_values=np.geomspace(1, 1e-6, r))
    Z0 = gauge(rng, Y0)
    hi = lo + extra
    caps = {"midpoint": min(4 * r, m, n), "rk4": min(2 * r, m, n), "heun": min(2 * r, m, n)}
    for name, step in _steps(tol, min_rank=lo, max_rank=hi).items():
        Y1 = step(Y0, F, 0.3, 0.1)
        assert min(lo, r) <= Y1.rank <= min(hi, caps[name]), (name, Y1.rank, lo, hi)
        assert Y1.orthonormality_error() <= tolerance("orthonormality", size=max(m, n))
    for name, step in _steps(0.0).items():
        A, B = step(Y0, F, 0.3, 0.1).to_dense(), step(Z0, F, 0.3, 0.1).to_dense()
        assert np.linalg.norm(A - B) <= tolerance("step", size=max(m, n)) \
            * np.linalg.norm(A), name


def test_zero_rhs_returns_Y0():
    Y0 = LowRank.random(np.random.default_rng(0), 12, 9, 4,
                        singular_values=[1.0, 1e-3, 1e-6, 1e-9])
    zero = lambda t, A: np.zeros_like(A)   # noqa: E731
    for name, step in _steps(0.0).items():
        Y1 = step(Y0, zero, 0.0, 0.5)
        assert Y1.rank == 4, name
        assert np.linalg.norm(Y1.to_dense() - Y0.to_dense()) <= tolerance(
            "reconstruction", size=12) * np.linalg.norm(Y0.S), name


def test_float32_in_float32_out():
    Y0 = LowRank.random(np.random.default_rng(0), 10, 8, 3, dtype=np.float32)
    F = _forced(np.random.default_rng(1), 10, 8)
    for name, step in _steps(1e-5).items():
        Y1 = step(Y0, F, 0.0, 0.1)
        assert Y1.dtype == np.float32 and all(a.dtype == np.float32 for a in Y1), name
        assert Y1.orthonormality_error() <= tolerance("orthonormality", np.float32, 10)
    Y64 = LowRank.random(np.random.default_rng(0), 10, 8, 3)
    for name, step in _steps().items():
        assert step(Y64, F, 0.0, 0.1).dtype == np.float64


def test_user_tableau_equals_the_built_in_one():
    t = BUTCHER_TABLEAUX["rk3"]
    mine = ButcherTableau([[0, 0, 0], [0.5, 0, 0], [-1, 2, 0]], [1 / 6, 2 / 3, 1 / 6],
                          [0, 0.5, 1], 3)
    Y0 = LowRank.random(np.random.default_rng(0), 10, 8, 3)
    F = _forced(np.random.default_rng(1), 10, 8)
    A = rk_bug_step(Y0, F, 0.0, 0.1, 1e-10, tableau=mine).to_dense()
    B = rk_bug_step(Y0, F, 0.0, 0.1, 1e-10, tableau=t).to_dense()
    assert np.array_equal(A, B)


def test_observer_sees_the_core_of_every_truncation_and_changes_nothing():
    """The ``observer`` of the rank-adaptive steps (used by the oracle for rank margins):
    called once per truncation, in order, with the core that is then truncated."""
    Y0 = LowRank.random(np.random.default_rng(0), 12, 9, 3)
    F = _forced(np.random.default_rng(1), 12, 9)
    tol = 1e-2
    steps = {"adaptive": (adaptive_bug_step, {}, 1), "parallel": (parallel_bug_step, {}, 1),
             "midpoint": (midpoint_bug_step, {}, 2),
             "rk4": (rk_bug_step, {"tableau": "rk4"}, 4),
             "heun": (rk_bug_step, {"tableau": "heun"}, 2)}
    for name, (step, kw, calls) in steps.items():
        cores = []
        Y1 = step(Y0, F, 0.0, 0.1, tol, **kw, observer=cores.append)
        plain = step(Y0, F, 0.0, 0.1, tol, **kw)
        assert len(cores) == calls, name
        for a, b in zip(Y1, plain):
            assert np.array_equal(a, b), name
        # the last core is the one the result was truncated from: same kept singular
        # values, and the discarded tail within tol (relative)
        s = np.linalg.svd(cores[-1], compute_uv=False)
        r = Y1.rank
        assert np.allclose(np.sort(np.diag(Y1.S))[::-1], s[:r], rtol=0,
                           atol=tolerance("reconstruction", size=12) * s[0]), name
        assert np.linalg.norm(s[r:]) <= tol * np.linalg.norm(s) < np.linalg.norm(s[r - 1:])
    # the midpoint step's first core is its half step's (a rank-adaptive BUG step of h/2)
    half, first = [], []
    adaptive_bug_step(Y0, F, 0.0, 0.05, tol, observer=half.append)
    midpoint_bug_step(Y0, F, 0.0, 0.1, tol, observer=first.append)
    assert half[0].shape == first[0].shape          # (equal to rounding: the midpoint
    assert np.linalg.norm(half[0] - first[0]) <= tolerance(   # step re-orthonormalises
        "reconstruction", size=12) * np.linalg.norm(half[0])  # Y0 once more)


# --------------------------------------------------------------------------- bad input
def _Y0():
    return LowRank.random(np.random.default_rng(0), 6, 5, 2)


BAD = [
    (dict(Y0=np.eye(3)), TypeError, "Y0"),
    (dict(Y0=LowRank(2 * _Y0().U, _Y0().S, _Y0().V)), ValueError, "Y0.U"),
    (dict(F=None), TypeError, "F must be callable"),
    (dict(h=0.0), ValueError, "h must be a finite number > 0, got 0.0"),
    (dict(h="0.1"), TypeError, "h must be a finite number > 0, got str"),
    (dict(t0=np.inf), ValueError, "t0 must be a finite number, got inf"),
    (dict(tol=-1.0), ValueError, "tol must be a finite number >= 0, got -1.0"),
    (dict(tol=None), TypeError, "tol must be a finite number >= 0, got NoneType"),
    (dict(relative=1), TypeError, "relative must be a bool.*int 1"),
    (dict(min_rank=0), ValueError, "min_rank must be an int >= 1, got 0"),
    (dict(min_rank=3, max_rank=2), ValueError, "max_rank must be an int >= 3 or None, got 2"),
    (dict(F=lambda t, A: A[:, :1]), ValueError, r"F must return .*\(6, 5\).*\(6, 1\)"),
    (dict(F=lambda t, A: np.full_like(A, np.nan)), ValueError, "F returned non-finite"),
    (dict(F=lambda t, A: 1e308 * np.ones_like(A), h=1e10), ValueError,
     "h = 10000000000.0 is too large for this F"),
    (dict(observer=3), TypeError, r"observer must be callable as observer\(S_hat\) or None, "
     "got int"),
]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("which", ["midpoint", "rk"])
@pytest.mark.parametrize("override, exc, pattern", BAD)
def test_bad_input(which, override, exc, pattern):
    args = dict(Y0=_Y0(), F=lambda t, A: -A, t0=0.0, h=0.1, tol=1e-3)
    args.update(override)
    fn = midpoint_bug_step if which == "midpoint" else rk_bug_step
    with pytest.raises(exc, match=pattern):
        fn(**args)


@pytest.mark.parametrize("kw, exc, pattern", [
    (dict(inner="rk45"), ValueError, "inner must be one of .*'rk45'"),
    (dict(substeps=0), ValueError, "substeps must be an int >= 1, got 0"),
])
def test_bad_inner_midpoint(kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        midpoint_bug_step(_Y0(), lambda t, A: -A, 0.0, 0.1, 1e-3, **kw)


@pytest.mark.parametrize("tableau, exc, pattern", [
    ("rk5", ValueError, "tableau must be one of .*'rk5'"),
    (("a", "b", "c"), TypeError, "tableau must be a name or a ButcherTableau.*tuple"),
    (ButcherTableau([[0, 1], [0, 0]], [0.5, 0.5], [0, 1], 2), ValueError,
     "strictly lower triangular"),
    (ButcherTableau([[0, 0], [1, 0]], [0.5, 0.6], [0, 1], 2), ValueError, "sum to 1"),
    (ButcherTableau([[0, 0], [1, 0]], [1.0], [0, 1], 2), ValueError, "shapes"),
    (ButcherTableau([[0, 0], [np.nan, 0]], [0.5, 0.5], [0, 1], 2), ValueError, "finite"),
])
def test_bad_tableau(tableau, exc, pattern):
    with pytest.raises(exc, match=pattern):
        rk_bug_step(_Y0(), lambda t, A: -A, 0.0, 0.1, 1e-3, tableau=tableau)
