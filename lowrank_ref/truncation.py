"""Truncation of an augmented low-rank matrix to a tolerance: the rank rule, stated exactly.

Given ``Y_hat = U_hat @ S_hat @ V_hat.T`` with orthonormal ``U_hat`` (m, k), ``V_hat`` (n, k)
and a small core ``S_hat`` (k, k), :func:`truncate` computes the SVD of ``S_hat`` only,
``S_hat = P diag(sigma) Q^T`` with ``sigma_1 >= ... >= sigma_k >= 0``, and keeps

    r = min { r' in {0, ..., k} : sqrt( sum_{j = r'+1}^{k} sigma_j^2 ) <= theta },

where ``theta = tol`` (``relative=False``) or ``theta = tol * ||S_hat||_F``
(``relative=True``, ``||S_hat||_F = sqrt(sum_j sigma_j^2)``); ``r`` is then clamped to
``[min_rank, max_rank]`` (and to ``k``). This is the truncation of [CKL22] (Ceruti, Kusch &
Lubich 2022, the truncation step) and of [SZKCT22] (rank-adaptive, "truncation").
The result is

    U1 = U_hat @ P[:, :r],   S1 = diag(sigma_1, ..., sigma_r),   V1 = V_hat @ Q[:, :r],

so that ``||Y_hat - U1 S1 V1^T||_F = sqrt(sum_{j > r} sigma_j^2) <= theta`` unless
``max_rank`` lowered ``r`` (raising it to ``min_rank`` only makes the error smaller). ``r`` is minimal: with ``r - 1`` the
tail would exceed ``theta`` (unless ``min_rank`` forced ``r``).

Difference from the published DLRT code
---------------------------------------
The PyTorch code of [SZKCT22] loops ``for j in range(0, 2r - 1)`` and stops at the first ``j``
with ``norm(sigma[j : 2r - 1]) < tol``: the tail it measures never contains the last
singular value ``sigma_{2r}`` (Python slices exclude their end), uses a strict ``<``, and can
never return ``j = 2r``. Here the tail is ``sigma_{r+1}, ..., sigma_k`` *including* the last
value, the comparison is ``<=``, and every ``r`` from ``0`` to ``k`` is reachable (before the
clamp). With the published rule the truncation error can exceed ``theta`` by ``sigma_{2r}``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._validate import as_float_array, check_bool, check_rank_bounds, check_real
from .lowrank import LowRank, orthonormality_error, orthonormality_gate, small_svd

__all__ = ["truncate", "truncation_rank"]


def _check_rule(tol, relative, min_rank, max_rank):
    check_real(tol, "tol", low=0.0)
    check_bool(relative, "relative")
    check_rank_bounds(min_rank, max_rank)


def truncation_rank(sigma: np.ndarray, tol: float, relative: bool = True,
                    min_rank: int = 1, max_rank: Optional[int] = None,
                    check: bool = True) -> int:
    """The rank chosen by :func:`truncate` for descending singular values ``sigma`` (k,).

    ``r = min{r' : sqrt(sum_{j>r'} sigma_j^2) <= theta}``, clamped to
    ``[min_rank, min(max_rank, k)]``; ``theta = tol * ||sigma||_2`` if ``relative``
    else ``tol``.

    The sums of squares are formed in units of ``2^e`` with ``2^(e-1) <= max(sigma) < 2^e``:
    scaling by a power of two is exact, so the rule is unchanged wherever ``sigma_j^2``
    neither overflows nor underflows, and it stays right for singular values from
    ``1e-300`` to ``1e300`` (where ``sigma**2`` would be 0 or inf). Within one spectrum,
    values below ``~1e-154 max(sigma)`` (beneath the accuracy of any float64 SVD) add 0 to a
    tail, but a tail is 0 only if all its values are 0: ``tol = 0`` keeps every nonzero one.

    ``check=False`` skips the validation of the arguments (for callers that built them, such
    as :func:`truncate` and the DLRT optimisers); the rule is the same.

    Raises
    ------
    TypeError, ValueError
        ``sigma`` not a 1-d array of finite values ``>= 0`` in descending order; invalid
        ``tol``, ``relative``, ``min_rank`` or ``max_rank`` (as :func:`truncate`).

    Examples
    --------
    >>> truncation_rank(np.array([4.0, 2.0, 1.0, 0.5]), tol=1.2, relative=False)
    2
    >>> truncation_rank(np.array([4.0, 2.0, 1.0, 0.5]), tol=1.0, relative=False)
    3
    >>> truncation_rank(np.array([4e300, 2e300, 1e300, 0.5e300]), tol=1.2e300, relative=False)
    2
    """
    if check:
        sigma = as_float_array(sigma, "sigma", 1)
        _check_rule(tol, relative, min_rank, max_rank)
        if np.any(sigma < 0) or np.any(np.diff(sigma) > 0):
            raise ValueError(f"sigma must be singular values: >= 0 and in descending order, "
                             f"got {sigma!r}")
    sigma = sigma.astype(np.float64, copy=False)
    k = sigma.shape[0]
    # Work in units of 2^e (exact): sigma = 2^e * s with max(s) in [0.5, 1).
    e = int(np.frexp(sigma[0])[1]) if k and sigma[0] > 0 else 0
    s = np.ldexp(sigma, -e)
    theta = tol * float(np.sqrt(np.sum(s ** 2))) if relative else float(np.ldexp(tol, -e))
    # tail[r'] = sqrt(sum_{j > r'} sigma_j^2) / 2^e for r' = 0..k (tail[k] = 0), summed
    # from the smallest value up so that small tails are accurate.
    tail = np.sqrt(np.concatenate([np.cumsum((s ** 2)[::-1])[::-1], [0.0]]))
    # A tail is 0 only if all its values are: squares below ~1e-308 underflow, and tol = 0
    # must still keep every nonzero singular value.
    tail[:k][(tail[:k] == 0) & (sigma > 0)] = np.nextafter(0.0, 1.0)
    r = int(np.argmax(tail <= theta))  # first r' meeting the bound; tail[k] = 0 always does
    hi = k if max_rank is None else min(max_rank, k)
    return int(min(max(r, min_rank), hi))


def _check_truncate_inputs(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
    U_hat = as_float_array(U_hat, "U_hat", 2)
    S_hat = as_float_array(S_hat, "S_hat", 2)
    V_hat = as_float_array(V_hat, "V_hat", 2)
    _check_rule(tol, relative, min_rank, max_rank)
    k1, k2 = S_hat.shape
    if min(k1, k2) < 1:
        raise ValueError(f"S_hat must have at least one row and column, got shape {S_hat.shape}")
    if U_hat.shape[1] != k1 or V_hat.shape[1] != k2:
        raise ValueError(f"U_hat must have {k1} and V_hat {k2} columns (S_hat is {k1}x{k2}), "
                         f"got U_hat {U_hat.shape} and V_hat {V_hat.shape}")
    gate = orthonormality_gate(np.result_type(U_hat, S_hat, V_hat))
    for name, Q in (("U_hat", U_hat), ("V_hat", V_hat)):
        if Q.shape[0] < Q.shape[1]:
            raise ValueError(f"{name} must have at least as many rows as columns, got {Q.shape}")
        err = orthonormality_error(Q)
        if err > gate:
            raise ValueError(f"{name} must have orthonormal columns "
                             f"(||Q^T Q - I||_F <= {gate:.1e}), got {err:.3e}")
    return U_hat, S_hat, V_hat


def truncate(U_hat, S_hat, V_hat, tol, relative: bool = True, min_rank: int = 1,
             max_rank: Optional[int] = None, check: bool = True) -> LowRank:
    """Truncate ``U_hat @ S_hat @ V_hat.T`` to the smallest rank within ``tol`` ([CKL22]).

    See the module docstring for the exact rule and where it differs from the published
    DLRT code.

    Parameters
    ----------
    U_hat : (m, k) ndarray
        Orthonormal columns.
    S_hat : (k, k) ndarray
        Core matrix (any, e.g. from a Galerkin S-step). A rectangular ``(k1, k2)`` core
        with ``U_hat (m, k1)``, ``V_hat (n, k2)`` is accepted too (augmented bases of
        different sizes, when one side is capped at its dimension); then ``k = min(k1, k2)``.
    V_hat : (n, k) ndarray
        Orthonormal columns.
    tol : float
        ``>= 0``. Absolute bound on the discarded tail in Frobenius norm, or relative to
        ``||S_hat||_F`` when ``relative=True``.
    relative : bool, default True
    min_rank : int, default 1
    max_rank : int or None, default None (no cap beyond ``k``)
    check : bool, default True
        Validate the arguments (types, shapes, finiteness, orthonormality of ``U_hat`` and
        ``V_hat``). The DLRT optimisers pass ``False`` for the arrays they have just built
        (the checks cost a few percent of a training step); the result is the same.

    Returns
    -------
    LowRank
        ``U1 (m, r)``, ``S1 = diag(sigma_1..sigma_r)`` (r, r), ``V1 (n, r)`` with
        ``min_rank <= r <= min(max_rank, k)`` (``r <= k`` always, also if ``min_rank > k``).

    Raises
    ------
    ValueError
        Mismatched shapes, non-finite entries, non-orthonormal ``U_hat``/``V_hat``,
        ``tol < 0`` or non-finite, ``min_rank < 1``, ``max_rank < min_rank``.
    TypeError
        Non-numeric or complex arrays, a non-bool ``relative``, non-int ranks.

    Examples
    --------
    >>> U_hat, V_hat = np.eye(5, 3), np.eye(4, 3)
    >>> Y = truncate(U_hat, np.diag([3.0, 2.0, 1e-3]), V_hat, tol=1e-2, relative=False)
    >>> Y.rank, np.diag(Y.S).tolist()
    (2, [3.0, 2.0])
    """
    if check:
        U_hat, S_hat, V_hat = _check_truncate_inputs(U_hat, S_hat, V_hat, tol, relative,
                                                     min_rank, max_rank)
    dtype = np.result_type(U_hat, S_hat, V_hat)
    P, sigma, Qt = small_svd(S_hat)
    r = truncation_rank(sigma, tol, relative, min_rank, max_rank, check=False)
    U1 = U_hat @ P[:, :r]
    V1 = V_hat @ Qt.T[:, :r]  # Qt = Q^T: the right singular vectors are the ROWS of Qt
    S1 = np.diag(sigma[:r]).astype(dtype)
    return LowRank(U1.astype(dtype, copy=False), S1, V1.astype(dtype, copy=False))
