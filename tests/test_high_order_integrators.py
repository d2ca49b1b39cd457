"""Structure of the second- and higher-order robust integrators: at full rank they are the
Runge-Kutta method or the inner solver on the full problem; symmetry, ranks,
orthonormality, gauge invariance, float32, the observer and bad input.

* :func:`~lowrank_ref.integrators.midpoint_bug_step` -- midpoint BUG [CEKL24] (Ceruti,
  Einkemmer, Kusch, Lubich, BIT 64 (2024)), variants ``"4r"`` and ``"3r"``;
* :func:`~lowrank_ref.integrators.second_order_parallel_bug_step` -- second-order robust
  parallel BUG [Kus24] (Kusch, arXiv 2403.02834);
* :func:`~lowrank_ref.integrators.rk_bug_step` -- Runge-Kutta BUG [NR25] (Nobile, Riffaud,
  arXiv 2502.07040).

Their orders, robustness and plateaus are tested in ``tests/test_high_order_orders.py``.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lowrank_ref.checks import tolerance
from lowrank_ref.integrators import (BUTCHER_TABLEAUX, ButcherTableau, adaptive_bug_step,
                                     integrate, midpoint_bug_step, parallel_bug_step,
                                     rk_bug_step, second_order_parallel_bug_step)
from lowrank_ref.lowrank import LowRank
from strategies import gauge, orthonormal, seeds, shapes_and_rank


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
@given(st.integers(1, 12), seeds, st.sampled_from(["euler", "rk4"]),
       st.sampled_from(["midpoint_4r", "midpoint_3r", "parallel_2"]))
def test_full_rank_second_order_steps_are_the_inner_solver(n, seed, inner, name):
    """r = m = n: every basis is complete, nothing is truncated (tol = 0), so the Galerkin
    flow of the midpoint BUG and the flows of the second-order parallel BUG (whose K-flow
    in the complete co-basis is the full flow) are the full problem: one step is one step
    of the inner solver, ``integrate(F, Y0, t0, h, inner, 1)``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    F = lambda t, Y: W @ Y - Y ** 3 + np.cos(t)   # noqa: E731
    Y0 = LowRank.random(rng, n, n, n, singular_values=np.geomspace(1, 1e-3, n))
    A1 = integrate(F, Y0.to_dense(), 0.2, 0.3, inner, 1)
    Y1 = _steps(0.0, inner=inner)[name](Y0, F, 0.2, 0.3)
    assert np.linalg.norm(Y1.to_dense() - A1) <= tolerance("step", size=n) * np.linalg.norm(A1)


# --------------------------------------------------------------------------- structure
def _steps(tol=1e-10, inner="rk4", **kw):
    return {
        "midpoint_4r": lambda Y, F, t, h: midpoint_bug_step(Y, F, t, h, tol, inner=inner, **kw),
        "midpoint_3r": lambda Y, F, t, h: midpoint_bug_step(Y, F, t, h, tol, inner=inner,
                                                            variant="3r", **kw),
        "parallel_2": lambda Y, F, t, h: second_order_parallel_bug_step(Y, F, t, h, tol,
                                                                        inner=inner, **kw),
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
    """Result ranks: midpoint BUG and second-order parallel BUG <= min(4r, m, n), RK-BUG
    <= min(m, n) (its basis grows by every stage), inside the clamp; orthonormal factors;
    Y1 depends on the matrix Y0, not on its factorisation."""
    m, n, r = mnr
    rng = np.random.default_rng(seed)
    F = _forced(rng, m, n)
    Y0 = LowRank.random(rng, m, n, r, singular_values=np.geomspace(1, 1e-6, r))
    Z0 = gauge(rng, Y0)
    hi = lo + extra
    caps = {"midpoint_4r": min(4 * r, m, n), "midpoint_3r": min(4 * r, m, n),
            "parallel_2": min(4 * r, m, n), "rk4": min(m, n), "heun": min(m, n)}
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
             "midpoint_4r": (midpoint_bug_step, {}, 1),
             "midpoint_3r": (midpoint_bug_step, {"variant": "3r"}, 2),
             "parallel_2": (second_order_parallel_bug_step, {}, 1),
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
    # the 3r midpoint step's first core is its half step's (a rank-adaptive BUG step of
    # h/2 with the same sub-flow solver)
    half, first = [], []
    adaptive_bug_step(Y0, F, 0.0, 0.05, tol, inner="rk4", observer=half.append)
    midpoint_bug_step(Y0, F, 0.0, 0.1, tol, variant="3r", observer=first.append)
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
     "h = 10000000000.0 is too large for this F|F is too large for this step: F.* times a "
     "basis overflowed"),
    (dict(observer=3), TypeError, r"observer must be callable as observer\(S_hat\) or None, "
     "got int"),
]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("which", ["midpoint", "parallel_2", "rk"])
@pytest.mark.parametrize("override, exc, pattern", BAD)
def test_bad_input(which, override, exc, pattern):
    args = dict(Y0=_Y0(), F=lambda t, A: -A, t0=0.0, h=0.1, tol=1e-3)
    args.update(override)
    fn = {"midpoint": midpoint_bug_step, "parallel_2": second_order_parallel_bug_step,
          "rk": rk_bug_step}[which]
    with pytest.raises(exc, match=pattern):
        fn(**args)


@pytest.mark.parametrize("step", [midpoint_bug_step, second_order_parallel_bug_step])
@pytest.mark.parametrize("kw, exc, pattern", [
    (dict(inner="rk45"), ValueError, "inner must be one of .*'rk45'"),
    (dict(substeps=0), ValueError, "substeps must be an int >= 1, got 0"),
])
def test_bad_inner(step, kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        step(_Y0(), lambda t, A: -A, 0.0, 0.1, 1e-3, **kw)


@pytest.mark.parametrize("variant, exc", [("2r", ValueError), (4, ValueError)])
def test_bad_midpoint_variant(variant, exc):
    with pytest.raises(exc, match="variant must be one of .*'4r', '3r'"):
        midpoint_bug_step(_Y0(), lambda t, A: -A, 0.0, 0.1, 1e-3, variant=variant)


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
