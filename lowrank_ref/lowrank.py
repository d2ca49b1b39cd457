"""Low-rank matrices ``Y = U @ S @ V.T`` and the one orthonormalisation everybody shares.

A :class:`LowRank` is the point of the fixed-rank manifold
``M_r = {Y in R^{m x n} : rank(Y) = r}`` written in factored form, as in
[KL07] (Koch & Lubich 2007) and pymanopt's ``FixedRankEmbedded``:

* ``U`` : (m, r) with orthonormal columns, ``U.T @ U = I_r``;
* ``S`` : (r, r), any invertible matrix (diagonal only right after a truncation);
* ``V`` : (n, r) with orthonormal columns, ``V.T @ V = I_r``.

It represents exactly the dense matrix ``U @ S @ V.T`` of shape ``(m, n)``; the
factorisation is unique only up to the gauge ``(U Q1, Q1^T S Q2, V Q2)`` with orthogonal
``Q1, Q2``, so anything that compares two ``LowRank`` should compare invariants
(``to_dense()``, singular values, projectors ``U U^T``).

:func:`orthonormalize` (thin Householder QR), :func:`augment_basis` (rank-revealing
``[U0, orth((I - U0 U0^T) K1)]``) and :func:`cholesky_qr` (for matrices that are orthonormal
up to rounding: :func:`reorthonormalize`) are the only orthonormalisations of the package:
the integrators and the DLRT optimisers both call them.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import scipy.linalg as sla

from ._validate import as_float_array, check_float_dtype, check_int, check_rng

__all__ = ["LowRank", "orthonormalize", "reorthonormalize", "cholesky_qr", "augment_basis",
           "small_svd", "tangent_project", "normal_part",
           "orthonormality_error", "orthonormality_gate", "validate_lowrank"]


def orthonormality_error(Q: np.ndarray) -> float:
    """``||Q^T Q - I||_F`` for a matrix ``Q`` of shape ``(m, r)``.

    Examples
    --------
    >>> orthonormality_error(np.eye(4, 2))
    0.0
    """
    Q = np.asarray(Q)
    r = Q.shape[1]
    G = Q.conj().T @ Q
    return float(np.linalg.norm(G - np.eye(r, dtype=G.dtype)))


def orthonormality_gate(dtype) -> float:
    """``sqrt(eps)`` of ``dtype``: factors whose ``||Q^T Q - I||_F`` exceeds it are refused.

    Factors that are orthonormal to rounding pass by many orders of magnitude; scaled,
    sheared or random ones fail by many orders of magnitude.
    """
    return float(np.sqrt(np.finfo(dtype).eps))


class LowRank(NamedTuple):
    """The matrix ``U @ S @ V.T`` of shape ``(m, n)`` and rank ``r`` ([KL07]).

    Attributes
    ----------
    U : (m, r) ndarray
        Orthonormal columns.
    S : (r, r) ndarray
        Core matrix, not necessarily diagonal.
    V : (n, r) ndarray
        Orthonormal columns.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y = LowRank.random(rng, 6, 4, 2, singular_values=[2.0, 1.0])
    >>> Y.shape, Y.rank
    ((6, 4), 2)
    >>> np.allclose(np.linalg.svd(Y.to_dense(), compute_uv=False)[:2], [2.0, 1.0])
    True
    """

    U: np.ndarray
    S: np.ndarray
    V: np.ndarray

    @property
    def shape(self) -> tuple:
        """``(m, n)``: the shape of the represented matrix."""
        return (self.U.shape[0], self.V.shape[0])

    @property
    def rank(self) -> int:
        """``r``: the number of columns of ``U`` (the rank of the representation)."""
        return int(self.S.shape[0])

    @property
    def dtype(self):
        return np.result_type(self.U, self.S, self.V)

    def to_dense(self) -> np.ndarray:
        """The dense ``(m, n)`` matrix ``U @ S @ V.T`` (for tests and small problems only)."""
        return (self.U @ self.S) @ self.V.T

    def orthonormality_error(self) -> float:
        """``max(||U^T U - I||_F, ||V^T V - I||_F)``."""
        return max(orthonormality_error(self.U), orthonormality_error(self.V))

    def singular_values(self) -> np.ndarray:
        """Singular values of the represented matrix (those of ``S``), descending, shape (r,)."""
        return np.linalg.svd(self.S, compute_uv=False)

    @classmethod
    def random(cls, rng: np.random.Generator, m: int, n: int, r: int,
               singular_values=None, dtype=np.float64) -> "LowRank":
        """A random rank-``r`` matrix with Haar-like orthonormal ``U`` and ``V``.

        Parameters
        ----------
        rng : numpy.random.Generator
        m, n : int
            Shape of the represented matrix.
        r : int
            Rank, ``1 <= r <= min(m, n)``.
        singular_values : (r,) array_like, optional
            Diagonal of ``S`` (need not be sorted; must be finite and >= 0). Default:
            ``r`` values drawn uniformly from ``[1, 2]``, sorted descending.
        dtype : float32 or float64

        Returns
        -------
        LowRank
            With diagonal ``S``.

        Raises
        ------
        TypeError
            ``rng`` not a Generator, non-int ``m``/``n``/``r``, non-real ``singular_values``,
            ``dtype`` not float32/float64.
        ValueError
            ``m``, ``n`` or ``r`` < 1, ``r > min(m, n)``, ``singular_values`` of the wrong
            shape, negative or not finite.
        """
        check_rng(rng)
        m, n = check_int(m, "m", low=1), check_int(n, "n", low=1)
        r = check_int(r, "r", low=1, high=min(m, n))
        dtype = check_float_dtype(dtype)
        if singular_values is None:
            s = np.sort(rng.uniform(1.0, 2.0, size=r))[::-1]
        else:
            s = as_float_array(singular_values, "singular_values", 1).astype(np.float64)
            if s.shape != (r,):
                raise ValueError(f"singular_values must have shape ({r},), got {s.shape}")
            if np.any(s < 0):
                raise ValueError("singular_values must be >= 0")
        U, _ = np.linalg.qr(rng.standard_normal((m, r)))
        V, _ = np.linalg.qr(rng.standard_normal((n, r)))
        return cls(U.astype(dtype), np.diag(s).astype(dtype), V.astype(dtype))


def validate_lowrank(Y, name: str = "Y0", require_orthonormal: bool = True) -> LowRank:
    """Check that ``Y`` is a consistent :class:`LowRank` and return it with float arrays.

    Raises
    ------
    TypeError
        If ``Y`` is not a LowRank (or a 3-tuple of arrays) or has non-float entries.
    ValueError
        If shapes disagree, the rank is 0 or > min(m, n), entries are not finite, or
        (``require_orthonormal``) ``U`` or ``V`` is not orthonormal to ``sqrt(eps)``.
    """
    if not isinstance(Y, tuple) or len(Y) != 3:
        raise TypeError(f"{name} must be a LowRank(U, S, V), got {type(Y).__name__}")
    U = as_float_array(Y[0], f"{name}.U", 2)
    S = as_float_array(Y[1], f"{name}.S", 2)
    V = as_float_array(Y[2], f"{name}.V", 2)
    m, r = U.shape
    n = V.shape[0]
    if r < 1:
        raise ValueError(f"{name} must have rank >= 1, got U of shape {U.shape}")
    if S.shape != (r, r) or V.shape[1] != r:
        raise ValueError(f"{name} factors must have shapes (m, r), (r, r), (n, r); "
                         f"got U {U.shape}, S {S.shape}, V {V.shape}")
    if r > min(m, n):
        raise ValueError(f"{name} rank must be <= min(m, n) = {min(m, n)}, got {r}")
    dtype = np.result_type(U, S, V)
    U, S, V = U.astype(dtype, copy=False), S.astype(dtype, copy=False), V.astype(dtype, copy=False)
    if require_orthonormal:
        gate = orthonormality_gate(dtype)
        for fname, Q in (("U", U), ("V", V)):
            err = orthonormality_error(Q)
            if err > gate:
                raise ValueError(f"{name}.{fname} must have orthonormal columns "
                                 f"(||{fname}^T {fname} - I||_F <= {gate:.1e}), got {err:.3e}")
    return LowRank(U, S, V)


def _lapack(names: tuple, a: np.ndarray) -> tuple:
    """The LAPACK routines ``names`` for ``a``'s dtype (``s*``/``d*``), looked up once."""
    key = (names, a.dtype.char)
    if key not in _LAPACK:
        _LAPACK[key] = sla.get_lapack_funcs(names, (a,))
    return _LAPACK[key]


_LAPACK: dict = {}


def orthonormalize(K: np.ndarray, return_r: bool = False):
    """Orthonormal basis of ``range(K)`` by thin Householder QR: ``K = Q R``, return ``Q``.

    Used for the K- and L-steps of the fixed-rank integrators, where ``K1`` has full
    column rank on the manifold (its conditioning is that of ``S``, so a Gram-matrix method
    would not do). For a rank-deficient ``K`` the extra columns of ``Q`` are still
    orthonormal, so the factor stays valid. LAPACK's ``geqrf`` + ``orgqr`` are called
    directly (the same routines as ``numpy.linalg.qr`` and ``scipy.linalg.qr``, without
    their per-call checks: this runs in every training step).

    Parameters
    ----------
    K : (m, k) ndarray
        Finite, float32 or float64 (not checked).
    return_r : bool, default False
        Also return ``R`` (``min(m, k)``, k), upper triangular, ``K = Q R`` (the
        projector-splitting integrator needs it).

    Returns
    -------
    Q : (m, min(m, k)) ndarray
        Orthonormal columns, ``K``'s dtype.
    R : (min(m, k), k) ndarray
        Only with ``return_r``.

    Examples
    --------
    >>> K = np.array([[3.0, 1.0], [4.0, 2.0], [0.0, 1.0]])
    >>> Q, R = orthonormalize(K, return_r=True)
    >>> bool(np.allclose(Q @ R, K)), bool(np.allclose(Q.T @ Q, np.eye(2)))
    (True, True)
    """
    m, k = K.shape
    p = min(m, k)
    if p == 0:
        Q = np.zeros((m, 0), dtype=K.dtype)
        return (Q, np.zeros((0, k), dtype=K.dtype)) if return_r else Q
    geqrf, orgqr = _lapack(("geqrf", "orgqr"), K)
    qr, tau, _, info = geqrf(K)
    if info != 0:                                    # pragma: no cover - LAPACK argument error
        raise np.linalg.LinAlgError(f"geqrf failed with info={info}")
    Q, _, info = orgqr(qr[:, :p], tau[:p])
    if info != 0:                                    # pragma: no cover
        raise np.linalg.LinAlgError(f"orgqr failed with info={info}")
    return (Q, np.triu(qr[:p])) if return_r else Q


def small_svd(A: np.ndarray, compute_uv: bool = True):
    """Thin SVD ``A = P diag(s) Q^T`` of a small matrix by LAPACK ``gesdd`` (called directly).

    The same routine as ``scipy.linalg.svd(A, full_matrices=False)`` without its per-call
    checks; used for the small cores of the augmentation and the truncation, which run in
    every adaptive training step.

    Returns
    -------
    P : (m, k) ndarray, s : (k,) ndarray, Qt : (k, n) ndarray
        With ``k = min(m, n)``, ``s`` descending; only ``s`` if ``compute_uv`` is False.

    Raises
    ------
    numpy.linalg.LinAlgError
        If the SVD does not converge (non-finite input).

    Examples
    --------
    >>> small_svd(np.diag([1.0, 3.0]), compute_uv=False).tolist()
    [3.0, 1.0]
    """
    (gesdd,) = _lapack(("gesdd",), A)
    P, s, Qt, info = gesdd(A, compute_uv=int(compute_uv), full_matrices=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"small_svd: gesdd did not converge (info={info})")
    return (P, s, Qt) if compute_uv else s


def _eps(dtype) -> float:
    if dtype not in _EPS:
        _EPS[dtype] = float(np.finfo(dtype).eps)
    return _EPS[dtype]


_EPS: dict = {}


def cholesky_qr(A: np.ndarray, passes: int = 2):
    """``A = Q R`` of a tall, well-conditioned ``A`` (m, k) by CholeskyQR.

    One pass: the Gram matrix ``A^T A = C^T C`` (Cholesky, ``C`` upper triangular with
    positive diagonal), ``Q = A C^{-1}``: level-3 BLAS and two tiny LAPACK calls, several
    times faster than Householder QR for tall-skinny matrices. The loss of orthogonality is
    about ``eps cond(A)^2`` (Fukaya, Nakatsukasa, Yanagisawa, Yamamoto 2014, "CholeskyQR2: a
    simple and communication-avoiding algorithm"), so one pass is enough for a matrix that is
    orthonormal up to rounding (``cond(A) = 1 + O(sqrt(eps))`` at worst), and a second pass
    (CholeskyQR2) makes any modestly conditioned ``A`` orthonormal to rounding. Never used on
    ``K1``, whose conditioning is that of ``S``.

    Parameters
    ----------
    A : (m, k) ndarray
        ``m >= k``, full column rank.
    passes : {1, 2}, default 2

    Returns
    -------
    Q : (m, k) ndarray
    R : (k, k) ndarray
        Upper triangular with ``diag(R) > 0``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``A`` is numerically rank deficient (the Gram matrix is not positive definite).

    Examples
    --------
    >>> A = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 1e-3]])
    >>> Q, R = cholesky_qr(A)
    >>> bool(np.allclose(Q @ R, A)), bool(np.allclose(Q.T @ Q, np.eye(2), atol=1e-15))
    (True, True)
    """
    potrf, trtri = _lapack(("potrf", "trtri"), A)
    Q, R = A, None
    for _ in range(passes):
        C, info = potrf(Q.T @ Q, lower=0, clean=1)         # C^T C = Q^T Q, C upper
        if info != 0:
            raise np.linalg.LinAlgError(f"cholesky_qr: the Gram matrix is not positive "
                                        f"definite (potrf info={info}): A is rank deficient")
        C_inv, info = trtri(C, lower=0)
        if info != 0:                                    # pragma: no cover
            raise np.linalg.LinAlgError(f"cholesky_qr: trtri failed with info={info}")
        Q = Q @ C_inv
        R = C if R is None else C @ R
    return Q, R


def reorthonormalize(Y: LowRank) -> LowRank:
    """The same matrix with freshly orthonormalised factors.

    ``U = Q_u R_u``, ``V = Q_v R_v`` by one pass of :func:`cholesky_qr` (``diag(R) > 0``,
    hence ``R ~ I`` for nearly orthonormal input; one pass makes a matrix that is
    orthonormal to ``sqrt(eps)`` orthonormal to rounding) and ``S -> R_u S R_v^T``:
    ``Q_u (R_u S R_v^T) Q_v^T`` is ``U S V^T`` up to rounding. The input factors must be
    orthonormal to about ``sqrt(eps)`` (as :func:`validate_lowrank` checks).

    The rank-adaptive steps keep ``U0`` as the first block of ``U_hat`` (and return
    ``U_hat @ P``), so the orthonormality error of their input would be carried over and
    grow from step to step (a slow random walk: ~1e-4 after 3000 float32 DLRT steps);
    they call this first. Fixed-rank steps build new bases by QR and need no refresh.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y = LowRank.random(rng, 5, 4, 2)
    >>> Z = reorthonormalize(LowRank(Y.U * (1 + 1e-9), Y.S, Y.V))
    >>> bool(np.allclose(Z.to_dense(), Y.to_dense() * (1 + 1e-9))), Z.orthonormality_error() < 1e-14
    (True, True)
    """
    U, S, V = Y
    Qu, Ru = cholesky_qr(U, passes=1)
    Qv, Rv = cholesky_qr(V, passes=1)
    return LowRank(Qu, (Ru @ S @ Rv.T).astype(S.dtype, copy=False), Qv)


def augment_basis(U0: np.ndarray, K1: np.ndarray, max_cols: Optional[int] = None) -> np.ndarray:
    """Rank-revealing orthonormal basis ``U_hat = [U0, Q]`` of ``range([K1, U0])``.

    The augmentation of the rank-adaptive integrator ([CKL22], step 1;
    rank-adaptive DLRT of [SZKCT22]): ``U_hat`` spans ``[K1, U0]``. The old basis is kept as the
    first block, the new directions are an orthonormal basis of the component of ``K1``
    orthogonal to ``U0``:

    1. ``R = (I - U0 U0^T) K1``, projected twice (one Gram-Schmidt pass is not enough in
       floating point; "twice is enough", Giraud et al. 2005);
    2. ``R = Q_R T`` (Householder QR) and ``T = W diag(s) Z^T`` (SVD of the small ``k x k``
       factor), so that ``R = (Q_R W) diag(s) Z^T`` is the SVD of ``R``; keep the columns of
       ``Q_R W`` with ``s_j > max(m, r) * eps * ||K1||_2`` -- directions below that are
       round-off, and a plain QR would turn them into spurious basis vectors.
       ``||K1||_2`` is the norm of the small ``[U0^T K1; T]`` (``K1 = [U0, Q_R] [U0^T K1; T]``
       with orthonormal ``[U0, Q_R]``);
    3. at most ``m - r`` (and at most ``max_cols``) new columns are kept, so that
       ``U_hat`` never has more than ``m`` columns (2r > m is capped, not an error);
    4. the kept columns are projected once more against ``U0`` and re-orthonormalised by
       one pass of :func:`cholesky_qr` (they are orthonormal up to rounding already).

    Parameters
    ----------
    U0 : (m, r) ndarray
        Orthonormal columns.
    K1 : (m, k) ndarray
    max_cols : int, optional
        Cap on the number of new columns (default ``k``).

    Returns
    -------
    U_hat : (m, r + p) ndarray
        Orthonormal, with ``U_hat[:, :r] == U0`` and ``0 <= p <= min(k, m - r)``.

    Examples
    --------
    >>> U0 = np.eye(5, 2)
    >>> K1 = np.zeros((5, 2)); K1[0, 0], K1[3, 1] = 1.0, 2.0   # one old, one new direction
    >>> augment_basis(U0, K1).shape
    (5, 3)
    """
    m, r = U0.shape
    k = K1.shape[1]
    cap = min(k, m - r) if max_cols is None else min(k, m - r, max_cols)
    if cap <= 0 or K1.size == 0:
        return U0
    C = U0.T @ K1
    R = K1 - U0 @ C
    C2 = U0.T @ R
    R = R - U0 @ C2
    Q_R, T = orthonormalize(R, return_r=True)
    W, s, _ = small_svd(T)
    scale = small_svd(np.concatenate([C + C2, T], axis=0), compute_uv=False)[0]
    drop = max(m, r) * _eps(np.result_type(U0, K1)) * scale
    p = min(int(np.count_nonzero(s > drop)), cap)
    if p == 0:
        return U0
    # Q_R W[:, :p] is orthogonal to U0 only up to round-off in the direction of the dropped
    # ones; one more projection and a re-orthonormalisation keep [U0, Q] orthonormal.
    Qp = Q_R @ W[:, :p]
    Qp = Qp - U0 @ (U0.T @ Qp)
    Qp, _ = cholesky_qr(Qp, passes=1)         # orthonormal to rounding already: one pass
    return np.concatenate([U0, Qp.astype(U0.dtype, copy=False)], axis=1)


def _check_tangent_args(Y, Z):
    Y = validate_lowrank(Y, "Y")
    Z = as_float_array(Z, "Z", 2)
    if Z.shape != Y.shape:
        raise ValueError(f"Z must have the shape {Y.shape} of the matrix Y represents, got "
                         f"{Z.shape}")
    return Y, Z.astype(np.result_type(Y.dtype, Z), copy=False)


def tangent_project(Y, Z) -> np.ndarray:
    """``P(Y) Z``: the orthogonal projection of ``Z`` onto the tangent space of ``M_r`` at ``Y``.

    For ``Y = U S V^T`` of rank ``r`` the tangent space is ``{U M V^T + U_p V^T + U V_p^T :
    U^T U_p = 0, V^T V_p = 0}`` and ([KL07]; the starting point of [LO14])

        ``P(Y) Z = U U^T Z + Z V V^T - U U^T Z V V^T``,

    the nearest tangent vector to ``Z`` in the Frobenius norm. Only ``U`` and ``V`` matter.
    (pymanopt's ``FixedRankEmbedded.proj`` returns the same vector in its factored form
    ``(U_p, M, V_p)``; here it is the dense ``(m, n)`` matrix, formed as
    ``U (U^T Z) + (Z V - U (U^T Z V)) V^T``.) :func:`normal_part` is the rest.

    Parameters
    ----------
    Y : LowRank
        ``U (m, r)``, ``S (r, r)``, ``V (n, r)`` with orthonormal ``U``, ``V``.
    Z : (m, n) array_like

    Returns
    -------
    (m, n) ndarray
        In the common dtype of ``Y`` and ``Z``.

    Raises
    ------
    TypeError, ValueError
        As :func:`validate_lowrank` for ``Y``; ``Z`` not a finite real 2-d array of the
        shape ``(m, n)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y = LowRank.random(rng, 6, 5, 2)
    >>> Z = rng.standard_normal((6, 5))
    >>> PZ = tangent_project(Y, Z)
    >>> bool(np.allclose(tangent_project(Y, PZ), PZ))           # a projection
    True
    >>> bool(np.allclose(tangent_project(Y, Y.to_dense()), Y.to_dense()))   # Y is tangent
    True
    >>> bool(np.allclose(PZ + normal_part(Y, Z), Z))
    True
    """
    (U, _, V), Z = _check_tangent_args(Y, Z)
    UtZ = U.T @ Z
    return U @ UtZ + (Z @ V - U @ (UtZ @ V)) @ V.T


def normal_part(Y, Z) -> np.ndarray:
    """``Z - P(Y) Z = (I - U U^T) Z (I - V V^T)``: the part of ``Z`` new on *both* sides.

    What the tangent space at ``Y = U S V^T`` cannot follow (see :func:`tangent_project`);
    its norm is the modelling error ``epsilon`` of the error bounds of [KL07], [CL22].
    Arguments, result and errors as :func:`tangent_project`.

    Examples
    --------
    >>> Y = LowRank(np.eye(3, 1), np.eye(1), np.eye(2, 1))
    >>> normal_part(Y, np.ones((3, 2))).tolist()
    [[0.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    """
    (U, _, V), Z = _check_tangent_args(Y, Z)
    R = Z - U @ (U.T @ Z)
    return R - (R @ V) @ V.T
