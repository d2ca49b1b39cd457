"""Tests of lowrank_ref.truncation: the bound, minimality, clamps, tol = 0, bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from lowrank_ref.checks import orthonormality_error, tolerance
from lowrank_ref.lowrank import LowRank
from lowrank_ref.truncation import truncate, truncation_rank
from strategies import augmented_triples, orthonormal

tols = st.floats(min_value=1e-12, max_value=0.9)


def _dense(U, S, V):
    return (U @ S) @ V.T


def _theta(S_hat, tol, relative):
    return tol * np.linalg.norm(S_hat) if relative else tol


# --------------------------------------------------------------------------- bound + minimal
@given(augmented_triples(), tols, st.booleans())
def test_truncate_meets_bound_and_is_minimal(triple, tol, relative):
    U_hat, S_hat, V_hat = triple
    m, n, k = U_hat.shape[0], V_hat.shape[0], S_hat.shape[0]
    if not relative:
        tol = tol * np.linalg.norm(S_hat)          # same range of difficulty
    theta = _theta(S_hat, tol, relative)
    slack = tolerance("truncation", size=max(m, n)) * np.linalg.norm(S_hat)
    Y = truncate(U_hat, S_hat, V_hat, tol, relative=relative)
    r = Y.rank
    assert 1 <= r <= k
    assert Y.orthonormality_error() <= tolerance("orthonormality", size=max(m, n))
    np.testing.assert_array_equal(Y.S, np.diag(np.diag(Y.S)))      # S diagonal
    err = np.linalg.norm(_dense(U_hat, S_hat, V_hat) - Y.to_dense())
    assert err <= theta + slack
    # minimal: rank r - 1 (the best one, Eckart-Young) would break the bound
    sigma = np.linalg.svd(S_hat, compute_uv=False)
    if r > 1:
        assert np.sqrt(np.sum(sigma[r - 1:] ** 2)) > theta - slack
    # and truncation_rank states the same rule
    assert truncation_rank(sigma, tol, relative) == r


@given(augmented_triples(), tols, st.integers(1, 60), st.integers(0, 60))
def test_truncate_min_max_rank_clamps(triple, tol, lo, extra):
    U_hat, S_hat, V_hat = triple
    k = S_hat.shape[0]
    hi = lo + extra
    free = truncate(U_hat, S_hat, V_hat, tol).rank
    Y = truncate(U_hat, S_hat, V_hat, tol, min_rank=lo, max_rank=hi)
    assert Y.rank == min(max(free, lo), hi, k)
    assert min(lo, k) <= Y.rank <= min(hi, k)
    # raising the rank (min_rank) only lowers the error; the bound still holds then
    if hi >= free:
        err = np.linalg.norm(_dense(U_hat, S_hat, V_hat) - Y.to_dense())
        m, n = U_hat.shape[0], V_hat.shape[0]
        assert err <= _theta(S_hat, tol, True) + tolerance(
            "truncation", size=max(m, n)) * np.linalg.norm(S_hat)


def _check_tol0_unchanged(truncate_fn, triple):
    """tol = 0 must reproduce U_hat S_hat V_hat^T to rounding (nothing is truncated)."""
    U_hat, S_hat, V_hat = triple
    m, n = U_hat.shape[0], V_hat.shape[0]
    Y = truncate_fn(U_hat, S_hat, V_hat, 0.0)
    D = _dense(U_hat, S_hat, V_hat)
    err = np.linalg.norm(Y.to_dense() - D)
    assert err <= tolerance("reconstruction", size=max(m, n)) * np.linalg.norm(S_hat), err


@given(augmented_triples())
def test_truncate_tol0_leaves_matrix_unchanged(triple):
    _check_tol0_unchanged(truncate, triple)


def _mutant_truncate(U_hat, S_hat, V_hat, tol, relative=True, min_rank=1, max_rank=None):
    """A bug of docs/design.md, section "Known bugs of other implementations": V1 = V_hat @ Vh[:, :r] instead of V_hat @ Vh.T[:, :r]."""
    P, sigma, Vh = np.linalg.svd(S_hat)
    r = truncation_rank(sigma, tol, relative, min_rank, max_rank)
    return LowRank(U_hat @ P[:, :r], np.diag(sigma[:r]), V_hat @ Vh[:, :r])


def test_tol0_test_catches_transposed_Vh_mutant():
    rng = np.random.default_rng(0)
    k = 4
    triple = (orthonormal(rng, 9, k), rng.standard_normal((k, k)), orthonormal(rng, 7, k))
    _check_tol0_unchanged(truncate, triple)            # the real one passes
    with pytest.raises(AssertionError):
        _check_tol0_unchanged(_mutant_truncate, triple)  # the mutant is caught


def test_truncate_examples_absolute_and_relative():
    U, V = np.eye(6, 4), np.eye(5, 4)
    S = np.diag([4.0, 2.0, 1.0, 0.5])
    assert truncate(U, S, V, 1.2, relative=False).rank == 2   # tail(2) = 1.118 <= 1.2
    assert truncate(U, S, V, 1.1, relative=False).rank == 3   # tail(2) = 1.118 > 1.1
    assert truncate(U, S, V, 0.5, relative=False).rank == 3   # <= is allowed
    nrm = np.linalg.norm([4.0, 2.0, 1.0, 0.5])
    assert truncate(U, S, V, 1.2 / nrm, relative=True).rank == 2
    assert truncate(U, S, V, 100.0, relative=False).rank == 1  # min_rank = 1 default
    assert truncate(U, S, V, 0.0, relative=False).rank == 4


def test_truncate_zero_core_and_float32():
    U, V = np.eye(5, 3), np.eye(4, 3)
    Y = truncate(U, np.zeros((3, 3)), V, 0.1)
    assert Y.rank == 1 and np.all(Y.S == 0)
    Y32 = truncate(U.astype(np.float32), np.diag([3.0, 2.0, 1.0]).astype(np.float32),
                   V.astype(np.float32), 0.0)
    assert Y32.dtype == np.float32 and Y32.rank == 3


@given(augmented_triples(), tols)
def test_truncate_rectangular_core_same_as_padded(triple, tol):
    """A (k, k - 1) core (one augmented side capped) gives the same matrix and rank as the
    square core padded with a zero column (and any extra orthonormal column in V_hat)."""
    U_hat, S_hat, V_hat = triple
    k = S_hat.shape[0]
    if k < 2:
        return
    rect = truncate(U_hat, S_hat[:, :k - 1], V_hat[:, :k - 1], tol)
    pad = np.concatenate([S_hat[:, :k - 1], np.zeros((k, 1))], axis=1)
    square = truncate(U_hat, pad, V_hat, tol)
    m, n = U_hat.shape[0], V_hat.shape[0]
    assert rect.rank == square.rank <= k - 1
    assert np.linalg.norm(rect.to_dense() - square.to_dense()) <= tolerance(
        "reconstruction", size=max(m, n)) * np.linalg.norm(S_hat)


def _published_rank(sigma, tol):
    """The rank rule of the published DLRT code ([SZKCT22]), written out for comparison.

    ``for j in range(0, 2r - 1): if norm(s[j:2r - 1]) < tol: break`` -> rank ``j``:
    the tail never includes the last value ``s[2r - 1]``.
    """
    k = len(sigma)
    rmax = k // 2
    for j in range(0, 2 * rmax - 1):
        if np.linalg.norm(sigma[j:2 * rmax - 1]) < tol:
            return j
    return 2 * rmax - 1


def test_published_rule_can_exceed_tolerance_ours_does_not():
    sigma = np.array([1.0, 0.5, 0.01, 0.01])   # 2r = 4
    tol = 0.012                                 # absolute
    r_pub = _published_rank(sigma, tol)
    assert r_pub == 2
    true_err_pub = np.sqrt(np.sum(sigma[r_pub:] ** 2))
    assert true_err_pub > tol                   # 0.01414 > 0.012: the bound is broken
    U, V = np.eye(6, 4), np.eye(5, 4)
    Y = truncate(U, np.diag(sigma), V, tol, relative=False)
    assert Y.rank == 3
    err = np.linalg.norm(np.diag(sigma) - Y.U[:4] @ Y.S @ Y.V[:4].T)
    assert err <= tol


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("tol, exc", [(-1e-3, ValueError), (np.nan, ValueError),
                                      (np.inf, ValueError), ("0.1", TypeError),
                                      (True, TypeError)])
def test_truncate_bad_tol(tol, exc):
    with pytest.raises(exc, match="tol"):
        truncate(np.eye(4, 2), np.eye(2), np.eye(3, 2), tol)


@pytest.mark.parametrize("args, kwargs, exc, word", [
    ((2 * np.eye(4, 2), np.eye(2), np.eye(3, 2), 0.1), {}, ValueError, "U_hat"),
    ((np.eye(4, 2), np.eye(2), np.ones((3, 2)), 0.1), {}, ValueError, "V_hat"),
    ((np.eye(4, 2), np.eye(3), np.eye(3, 2), 0.1), {}, ValueError, "columns"),
    ((np.eye(4, 2), np.ones((2, 3)), np.eye(3, 2), 0.1), {}, ValueError, "columns"),
    ((np.eye(4, 2), np.ones((2, 0)), np.eye(3, 0), 0.1), {}, ValueError, "S_hat"),
    ((np.eye(4, 2), np.full((2, 2), np.nan), np.eye(3, 2), 0.1), {}, ValueError, "S_hat"),
    ((np.eye(4, 2), np.eye(2), np.eye(3, 2), 0.1), {"min_rank": 0}, ValueError, "min_rank"),
    ((np.eye(4, 2), np.eye(2), np.eye(3, 2), 0.1), {"min_rank": 2, "max_rank": 1},
     ValueError, "max_rank"),
    ((np.eye(4, 2), np.eye(2), np.eye(3, 2), 0.1), {"max_rank": 1.5}, TypeError, "max_rank"),
])
def test_truncate_bad_input_names_argument(args, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        truncate(*args, **kwargs)


def test_truncate_output_factors_orthonormal_for_rank_deficient_core():
    rng = np.random.default_rng(5)
    U, V = orthonormal(rng, 12, 6), orthonormal(rng, 10, 6)
    S = np.zeros((6, 6))
    S[:2, :2] = rng.standard_normal((2, 2))
    Y = truncate(U, S, V, 0.0)
    assert orthonormality_error(Y.U) <= tolerance("orthonormality", size=12)
    assert orthonormality_error(Y.V) <= tolerance("orthonormality", size=12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unchecked_core_gives_the_public_result(dtype):
    """The optimisers call truncate(check=False) on arrays they built: same numbers."""
    rng = np.random.default_rng(21)
    for k1, k2, tol, relative in ((6, 6, 0.1, True), (6, 4, 0.3, False), (3, 5, 0.0, True)):
        U = np.linalg.qr(rng.standard_normal((9, k1)))[0].astype(dtype)
        V = np.linalg.qr(rng.standard_normal((7, k2)))[0].astype(dtype)
        S = rng.standard_normal((k1, k2)).astype(dtype)
        checked = truncate(U, S, V, tol, relative=relative, max_rank=4)
        unchecked = truncate(U, S, V, tol, relative=relative, max_rank=4, check=False)
        for a, b in zip(checked, unchecked):
            assert a.dtype == b.dtype == dtype
            np.testing.assert_array_equal(a, b)
        sigma = np.linalg.svd(S, compute_uv=False).astype(np.float64)
        assert truncation_rank(sigma, tol, relative, 1, 4) == \
            truncation_rank(sigma, tol, relative, 1, 4, check=False) == checked.rank
