"""Tests of lowrank_ref.lowrank: LowRank, validate_lowrank, orthonormalize, augment_basis."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from lowrank_ref.checks import orthonormality_error, tolerance
from lowrank_ref._validate import as_float_array
from lowrank_ref.lowrank import (LowRank, augment_basis, cholesky_qr, normal_part,
                                 orthonormalize, small_svd, tangent_project, validate_lowrank)
from strategies import lowrank_matrices, orthonormal, seeds, shapes_and_rank


# --------------------------------------------------------------------------- LowRank
@given(lowrank_matrices())
def test_lowrank_represents_U_S_Vt(Y):
    m, n = Y.shape
    assert Y.shape == (Y.U.shape[0], Y.V.shape[0])
    assert Y.rank == Y.S.shape[0]
    D = Y.to_dense()
    assert D.shape == (m, n)
    np.testing.assert_array_equal(D, (Y.U @ Y.S) @ Y.V.T)
    # singular values of the represented matrix are those of S
    s_dense = np.linalg.svd(D, compute_uv=False)[:Y.rank]
    s = Y.singular_values()
    cond = s[0] / s[-1]
    assert np.all(np.abs(s_dense - s) <= tolerance("reconstruction", size=max(m, n)) * s[0])
    assert cond >= 1


@given(shapes_and_rank(), seeds)
def test_random_has_prescribed_singular_values_and_orthonormal_factors(mnr, seed):
    m, n, r = mnr
    rng = np.random.default_rng(seed)
    sv = np.sort(rng.uniform(0.1, 3.0, size=r))[::-1]
    Y = LowRank.random(rng, m, n, r, singular_values=sv)
    assert Y.orthonormality_error() <= tolerance("orthonormality", size=max(m, n))
    np.testing.assert_array_equal(np.diag(Y.S), sv)
    got = np.linalg.svd(Y.to_dense(), compute_uv=False)[:r]
    assert np.max(np.abs(got - sv)) <= tolerance("reconstruction", size=max(m, n)) * sv[0]


def test_random_is_reproducible_and_float32():
    a = LowRank.random(np.random.default_rng(7), 9, 5, 3)
    b = LowRank.random(np.random.default_rng(7), 9, 5, 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = LowRank.random(np.random.default_rng(7), 9, 5, 3, dtype=np.float32)
    assert c.dtype == np.float32 and c.to_dense().dtype == np.float32


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(m=4, n=3, r=0), ValueError, "r"),
    (dict(m=4, n=3, r=4), ValueError, "r"),
    (dict(m=0, n=3, r=1), ValueError, "m"),
    (dict(m=4.0, n=3, r=1), TypeError, "m"),
    (dict(m=4, n=3, r=2, singular_values=[1.0]), ValueError, "singular_values"),
    (dict(m=4, n=3, r=2, singular_values=[1.0, -1.0]), ValueError, "singular_values"),
    (dict(m=4, n=3, r=2, singular_values=[1.0, np.nan]), ValueError, "singular_values"),
])
def test_random_bad_input(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        LowRank.random(np.random.default_rng(0), **kwargs)


def test_random_requires_generator():
    with pytest.raises(TypeError, match="rng"):
        LowRank.random(0, 3, 3, 1)


# --------------------------------------------------------------------------- validate
@given(lowrank_matrices())
def test_validate_accepts_valid_and_keeps_arrays(Y):
    Z = validate_lowrank(Y, "Y0")
    assert isinstance(Z, LowRank)
    for a, b in zip(Y, Z):
        np.testing.assert_array_equal(a, b)


def test_validate_accepts_plain_tuple_and_converts_ints():
    Z = validate_lowrank((np.eye(3, 2, dtype=int), np.eye(2, dtype=int), np.eye(4, 2)), "Y")
    assert Z.dtype == np.float64


def _valid(m=6, n=5, r=2, seed=0):
    return LowRank.random(np.random.default_rng(seed), m, n, r)


@pytest.mark.parametrize("make, word", [
    (lambda Y: LowRank(2.0 * Y.U, Y.S, Y.V), "Y0.U"),                        # scaled
    (lambda Y: LowRank(Y.U, Y.S, Y.V + 0.01), "Y0.V"),                        # sheared
    (lambda Y: LowRank(np.random.default_rng(1).standard_normal(Y.U.shape), Y.S, Y.V), "Y0.U"),
    (lambda Y: LowRank(Y.U, Y.S[:1, :1], Y.V), "shapes"),                     # S wrong
    (lambda Y: LowRank(Y.U, Y.S, Y.V[:, :1]), "shapes"),                      # V wrong
    (lambda Y: LowRank(Y.U[:, :0], Y.S[:0, :0], Y.V[:, :0]), "rank"),         # rank 0
    (lambda Y: LowRank(np.eye(2, 3), np.eye(3), np.eye(5, 3)), "rank"),        # r > m
    (lambda Y: LowRank(Y.U, np.where(np.eye(2) > 0, np.nan, Y.S), Y.V), "Y0.S"),  # NaN
    (lambda Y: LowRank(Y.U, Y.S, np.full_like(Y.V, np.inf)), "Y0.V"),          # Inf
    (lambda Y: LowRank(Y.U[0], Y.S, Y.V), "Y0.U"),                            # 1-d
])
def test_validate_rejects_bad_input_naming_argument(make, word):
    with pytest.raises(ValueError, match=word.replace(".", r"\.")):
        validate_lowrank(make(_valid()), "Y0")


def test_validate_type_errors():
    with pytest.raises(TypeError, match="Y0"):
        validate_lowrank(np.eye(3), "Y0")
    Y = _valid()
    with pytest.raises(TypeError, match="Y0.S"):
        validate_lowrank(LowRank(Y.U, Y.S.astype(complex), Y.V), "Y0")
    with pytest.raises(TypeError, match="Y0.U"):
        validate_lowrank(LowRank(None, Y.S, Y.V), "Y0")


def test_validate_orthonormality_gate_only_when_asked():
    Y = _valid()
    bad = LowRank(2.0 * Y.U, Y.S, Y.V)
    validate_lowrank(bad, "Y0", require_orthonormal=False)  # no error


def test_as_float_array_keeps_float32_and_rejects_bad_ndim():
    assert as_float_array(np.ones((2, 2), np.float32), "x", 2).dtype == np.float32
    with pytest.raises(ValueError, match="x must be 2-d"):
        as_float_array(np.ones(3), "x", 2)


# --------------------------------------------------------------------------- orthonormalize
@given(shapes_and_rank(), seeds, st.floats(0, 12))
def test_orthonormalize_spans_K(mnr, seed, decades):
    m, _, r = mnr
    rng = np.random.default_rng(seed)
    K = orthonormal(rng, m, r) @ np.diag(np.logspace(0, -decades, r)) @ orthonormal(rng, r, r)
    Q = orthonormalize(K)
    assert Q.shape == (m, r)
    assert orthonormality_error(Q) <= tolerance("orthonormality", size=m)
    # K lies in range(Q): ||K - Q Q^T K|| ~ eps ||K||
    resid = np.linalg.norm(K - Q @ (Q.T @ K))
    assert resid <= tolerance("reconstruction", size=m) * np.linalg.norm(K)


# --------------------------------------------------------------------------- augment_basis
@given(shapes_and_rank(), seeds, st.integers(1, 8), st.floats(0, 10))
def test_augment_basis_spans_K1_and_U0(mnr, seed, k, decades):
    m, _, r = mnr
    rng = np.random.default_rng(seed)
    U0 = orthonormal(rng, m, r)
    K1 = rng.standard_normal((m, k)) * np.logspace(0, -decades, k)
    U_hat = augment_basis(U0, K1)
    p = U_hat.shape[1] - r
    assert 0 <= p <= min(k, m - r)
    np.testing.assert_array_equal(U_hat[:, :r], U0)
    assert orthonormality_error(U_hat) <= tolerance("orthonormality", size=m)
    # range(U_hat) contains K1 up to the drop tolerance of the rank-revealing step
    resid = np.linalg.norm(K1 - U_hat @ (U_hat.T @ K1))
    drop = max(m, r) * np.finfo(float).eps * np.linalg.norm(K1, 2)
    assert resid <= np.sqrt(k) * drop + tolerance("reconstruction", size=m) * np.linalg.norm(K1)


@given(shapes_and_rank(), seeds)
def test_augment_basis_adds_nothing_for_K1_in_span_of_U0(mnr, seed):
    m, _, r = mnr
    rng = np.random.default_rng(seed)
    U0 = orthonormal(rng, m, r)
    K1 = U0 @ rng.standard_normal((r, r))      # rank <= r, inside range(U0)
    U_hat = augment_basis(U0, K1)
    assert U_hat.shape == (m, r)               # a plain QR of [K1, U0] would add r columns


def test_augment_basis_rank_deficient_new_directions():
    rng = np.random.default_rng(3)
    U0 = orthonormal(rng, 20, 3)
    new = orthonormal(rng, 20, 1)
    K1 = U0 @ rng.standard_normal((3, 3)) + new @ rng.standard_normal((1, 3))  # 1 new dir
    U_hat = augment_basis(U0, K1)
    assert U_hat.shape == (20, 4)


def test_augment_basis_caps_at_m():
    rng = np.random.default_rng(4)
    U0 = orthonormal(rng, 5, 4)
    U_hat = augment_basis(U0, rng.standard_normal((5, 4)))   # 2r = 8 > m = 5
    assert U_hat.shape == (5, 5)
    assert orthonormality_error(U_hat) <= tolerance("orthonormality", size=5)
    U_full = orthonormal(rng, 5, 5)
    assert augment_basis(U_full, rng.standard_normal((5, 3))).shape == (5, 5)
    assert augment_basis(U0, rng.standard_normal((5, 4)), max_cols=0).shape == (5, 4)


def test_augment_basis_zero_K1():
    U0 = np.eye(6, 2)
    assert augment_basis(U0, np.zeros((6, 2))).shape == (6, 2)


# ----------------------------------------------------- the fast paths equal the textbook ones
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_direct_lapack_qr_equals_numpy_qr(dtype):
    rng = np.random.default_rng(31)
    K = rng.standard_normal((40, 6)).astype(dtype)
    Q, R = orthonormalize(K, return_r=True)
    Qn, Rn = np.linalg.qr(K)
    eps = np.finfo(dtype).eps
    assert Q.dtype == R.dtype == dtype
    np.testing.assert_allclose(Q @ Q.T, Qn @ Qn.T, atol=100 * eps)        # same span
    np.testing.assert_allclose(np.abs(R), np.abs(Rn), rtol=100 * eps, atol=100 * eps * np.abs(Rn).max())
    np.testing.assert_allclose(Q @ R, K, atol=100 * eps * np.abs(K).max())
    assert np.allclose(np.triu(R), R)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("drift", [0.0, 1e-9, 1e-4])
def test_one_cholesky_qr_pass_equals_householder_on_nearly_orthonormal_input(dtype, drift):
    """reorthonormalize uses one CholeskyQR pass: for input orthonormal up to sqrt(eps) it
    gives the positive-diagonal Householder factors to rounding, and is orthonormal to rounding."""
    rng = np.random.default_rng(32)
    A = np.linalg.qr(rng.standard_normal((50, 7)))[0]
    A = (A + drift * rng.standard_normal(A.shape)).astype(dtype)
    Q, R = cholesky_qr(A, passes=1)
    Qh, Rh = np.linalg.qr(A.astype(np.float64))
    signs = np.sign(np.diag(Rh))
    Qh, Rh = Qh * signs, Rh * signs[:, None]
    eps = float(np.finfo(dtype).eps)
    assert Q.dtype == dtype and np.all(np.diag(R) > 0)
    assert orthonormality_error(Q) <= tolerance("orthonormality", dtype, size=50)
    np.testing.assert_allclose(Q, Qh, atol=200 * eps)
    np.testing.assert_allclose(R, Rh, atol=200 * eps)


def test_cholesky_qr_refuses_a_rank_deficient_matrix():
    A = np.ones((5, 2))
    with pytest.raises(np.linalg.LinAlgError, match="rank deficient"):
        cholesky_qr(A)


@pytest.mark.parametrize("shape", [(6, 6), (9, 4), (4, 9)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_svd_equals_numpy_svd(shape, dtype):
    rng = np.random.default_rng(33)
    A = rng.standard_normal(shape).astype(dtype)
    P, s, Qt = small_svd(A)
    Pn, sn, Qtn = np.linalg.svd(A, full_matrices=False)
    eps = np.finfo(dtype).eps
    assert P.dtype == s.dtype == Qt.dtype == dtype
    np.testing.assert_allclose(s, sn, rtol=100 * eps, atol=100 * eps * sn[0])
    np.testing.assert_allclose((P * s) @ Qt, A, atol=100 * eps * sn[0])
    np.testing.assert_allclose(small_svd(A, compute_uv=False), s, rtol=100 * eps)


@given(seed=seeds, dims=shapes_and_rank())
def test_tangent_projection_is_the_orthogonal_projection_onto_the_tangent_space(seed, dims):
    """P(Y) [KL07]: idempotent, self-adjoint, fixes Y and tangent vectors U M V^T + U_p V^T +
    U V_p^T, has rank <= 2r, and Z - P(Y) Z = (I - U U^T) Z (I - V V^T) (normal_part)
    is orthogonal to every tangent vector; only U, V matter."""
    m, n, r = dims
    rng = np.random.default_rng(seed)
    Y = LowRank(orthonormal(rng, m, r), rng.standard_normal((r, r)), orthonormal(rng, n, r))
    Z1, Z2 = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    P1, P2 = tangent_project(Y, Z1), tangent_project(Y, Z2)
    tol = tolerance("reconstruction", size=max(m, n))
    scale = np.linalg.norm(Z1) * np.linalg.norm(Z2)
    assert np.linalg.norm(tangent_project(Y, P1) - P1) <= tol * np.linalg.norm(Z1)
    assert abs(np.vdot(P1, Z2) - np.vdot(Z1, P2)) <= tol * scale
    assert np.linalg.norm(tangent_project(Y, Y.to_dense()) - Y.to_dense()) <= \
        tol * np.linalg.norm(Y.S)
    U, _, V = Y
    Up = (np.eye(m) - U @ U.T) @ rng.standard_normal((m, r))
    tangent = U @ rng.standard_normal((r, r)) @ V.T + Up @ V.T + U @ rng.standard_normal((n, r)).T
    assert np.linalg.norm(tangent_project(Y, tangent) - tangent) <= tol * np.linalg.norm(tangent)
    N1 = normal_part(Y, Z1)
    assert np.linalg.norm(N1 - (np.eye(m) - U @ U.T) @ Z1 @ (np.eye(n) - V @ V.T)) <= \
        tol * np.linalg.norm(Z1)
    assert np.linalg.norm(N1 + P1 - Z1) <= tol * np.linalg.norm(Z1)
    assert abs(np.vdot(N1, P2)) <= tol * scale
    assert np.linalg.matrix_rank(P1) <= 2 * r
    regauged = LowRank(U @ np.linalg.qr(rng.standard_normal((r, r)))[0], 2 * Y.S, V)
    assert np.linalg.norm(tangent_project(regauged, Z1) - P1) <= tol * np.linalg.norm(Z1)


def test_tangent_projection_refuses_bad_arguments_and_keeps_float32():
    rng = np.random.default_rng(0)
    Y = LowRank.random(rng, 5, 4, 2, dtype=np.float32)
    assert tangent_project(Y, np.ones((5, 4), np.float32)).dtype == np.float32
    assert normal_part(Y, np.ones((5, 4))).dtype == np.float64
    with pytest.raises(ValueError, match=r"Z must have the shape \(5, 4\) of the matrix Y "
                                         r"represents, got \(4, 5\)"):
        tangent_project(Y, np.ones((4, 5)))
    with pytest.raises(ValueError, match="Y.U must have orthonormal columns"):
        normal_part(LowRank(2 * Y.U, Y.S, Y.V), np.ones((5, 4)))
    with pytest.raises(TypeError, match="Y must be a LowRank"):
        tangent_project(np.ones((5, 4)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="Z must be finite"):
        tangent_project(Y, np.full((5, 4), np.nan))
