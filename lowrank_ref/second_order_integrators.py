"""Second-order robust BUG integrators, as their authors publish them.

* :func:`midpoint_bug_step` -- the midpoint BUG integrator [CEKL24] (Ceruti, Einkemmer,
  Kusch & Lubich, BIT 64 (2024)), variants ``"4r"`` and ``"3r"``;
* :func:`second_order_parallel_bug_step` -- the second-order robust parallel BUG
  integrator [Kus24] (Kusch, arXiv 2403.02834), whose first-order version is
  :func:`lowrank_ref.integrators.parallel_bug_step`.

Their sub-flows are solved by the inner method of :mod:`lowrank_ref.subflows`; the default
``inner="rk4"`` solves them to fourth order, so that the step has the order of the method
(explicit Euler sub-flows, ``inner="euler"``, make both first order). Also importable from
:mod:`lowrank_ref.integrators`.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ._validate import check_choice
from .lowrank import LowRank, augment_basis, reorthonormalize
from .subflows import (as_dtype, augmented_bug_core, check_adaptive_args,
                       check_finite_substep, direction_block, galerkin_s_step, k_step,
                       l_step, setup_step, truncate_observed)

__all__ = ["MIDPOINT_VARIANTS", "midpoint_bug_step", "second_order_parallel_bug_step"]

#: The variants of :func:`midpoint_bug_step`: the half step kept at its augmented rank
#: (``"4r"``) or truncated like the result (``"3r"``).
MIDPOINT_VARIANTS = ("4r", "3r")


def midpoint_bug_step(Y0: LowRank, F: Callable, t0: float, h: float, tol: float,
                      relative: bool = True, min_rank: int = 1,
                      max_rank: Optional[int] = None, inner: str = "rk4",
                      substeps: int = 1, variant: str = "4r", *,
                      observer: Optional[Callable] = None) -> LowRank:
    """One step of the midpoint BUG integrator [CEKL24]: a half step of the rank-adaptive
    BUG integrator, then a Galerkin step in a basis augmented at the midpoint.

    With ``t1 = t0 + h``, ``t_half = t0 + h/2`` (``U0``, ``V0`` re-orthonormalised first):

    1. **Half step**: the rank-adaptive BUG step [CKL22] over ``[t0, t_half]`` -- K- and
       L-flows from ``Y0``, ``U_hat_half = augment_basis(U0, K_half)``, ``V_hat_half =
       augment_basis(V0, L_half)``, the Galerkin S-flow in these bases -- giving
       ``Y_half = U_half S_half V_half^T``:

       * ``variant="4r"``: not truncated (rank up to ``2r``);
       * ``variant="3r"``: truncated as the result, ``truncate(..., tol, relative,
         min_rank, max_rank)``.

    2. **Vector field at the midpoint**: ``F_half = F(t_half, Y_half)`` (m, n).
    3. **Augmented bases**: ``U_hat = augment_basis(U0, [U_half, F_half V_half])``,
       ``V_hat = augment_basis(V0, [V_half, F_half^T U_half])`` -- at most ``4r`` columns
       for ``"4r"`` (``U_half`` already contains ``U0``), ``3r`` for ``"3r"`` at fixed rank.
    4. **Galerkin step**: ``dS/dt = U_hat^T F(t, U_hat S V_hat^T) V_hat`` over ``[t0,
       t1]`` from ``S_hat0 = (U_hat^T U0) S0 (V0^T V_hat)`` (``U_hat S_hat0 V_hat^T =
       Y0``); ``S_hat1 = S(t1)``.
    5. **Truncation**: ``Y1 = truncate(U_hat, S_hat1, V_hat, tol, relative, min_rank,
       max_rank)``.

    All flows (steps 1 and 4) are solved by ``substeps`` steps of ``inner``. At full rank
    the bases are complete and the step is one step of ``inner`` on the full problem.

    Parameters
    ----------
    Y0 : LowRank
        ``U0 (m, r)``, ``S0 (r, r)``, ``V0 (n, r)``.
    F : callable
        ``F(t, A) -> (m, n) ndarray``.
    t0 : float
    h : float, > 0
    tol : float, >= 0
        Truncation tolerance (Frobenius norm) of the result (and of the half step for
        ``"3r"``).
    relative : bool, default True
        Tolerance relative to the norm of the core being truncated.
    min_rank, max_rank : int, int or None
        Clamp of the rank of the result (and of the half step for ``"3r"``);
        ``min_rank = max_rank = r``: fixed rank r.
    inner : {"rk4", "euler"}, default "rk4"
        Solver of the flows. The Galerkin step must be solved to second order or better
        for the step to be of order 2: ``"euler"`` gives a first-order method.
    substeps : int, default 1
    variant : {"4r", "3r"}, default "4r"
        Whether the half step is truncated (``"3r"``) or not (``"4r"``).
    observer : callable or None, default None, keyword-only
        Called as ``observer(S_hat)`` with the core of each truncation, before it is
        truncated: the half step's (``"3r"`` only), then the result's (the return value is
        ignored). For diagnostics, e.g. the oracle records the singular values each rank
        decision is made from.

    Returns
    -------
    LowRank
        ``U1 (m, r1)``, diagonal ``S1 (r1, r1)``, ``V1 (n, r1)``, ``r1 <= min(4r, m, n)``
        clamped to ``[min_rank, max_rank]`` (and to the size of the augmented bases).

    Raises
    ------
    TypeError, ValueError
        As :func:`lowrank_ref.integrators.adaptive_bug_step` (``Y0``, ``F``, ``t0``,
        ``h``, ``tol``, ``relative``, ``min_rank``, ``max_rank``, ``inner``,
        ``substeps``, ``observer``; ``F`` returning the wrong shape or non-finite values;
        a step overflowing for too large an ``h``), and an unknown ``variant``.

    Notes
    -----
    *Provenance.* The abstract of [CEKL24] ("a half-step with a first-order BUG
    integrator, followed by a Galerkin update with a suitably augmented basis") and the
    authors' public code for a later paper (GitHub
    ``JonasKu/Publication-Second-Order-Robust-Parallel-Integrators-for-DLRA``,
    ``codeSection6.1/methods.jl``, function ``MidpointBUG4r``), read for this
    implementation: there the half step is the augmented BUG step without truncation and
    the bases are ``[U_half, F_half V_half]`` (``4r``), or the half step is truncated and
    the bases are ``[U0, U_half, F_half V_half]`` (``3r``); sub-flows and the Galerkin
    equation are solved by an adaptive ODE solver to a tolerance. Here they are solved by
    ``inner``/``substeps`` as in the other integrators. The algorithm section of
    [CEKL24] itself was not read. An earlier version of this package replaced the
    Galerkin flow of step 4 by the midpoint rule ``S_hat0 + h U_hat^T F_half V_hat`` and
    always truncated the half step (the ``3r`` variant).

    *Measured* (``tests/test_high_order_orders.py``; fitted slopes of the error at ``T =
    1`` for ``h = 0.2 ... 0.025``, 24 x 20 problems with exact solutions, ``inner="rk4"``):

    * rank-preserving, fixed rank 4, ``sigma_4 / sigma_1 = 1e-3``: ``"3r"`` 2.01 (linear
      Sylvester flow) and 2.05 (:class:`~lowrank_ref.odes.CubicFlow`). ``"4r"`` is at
      least as accurate at every ``h`` but not monotone in ``h`` there (1.2e-4, 8.5e-6,
      2.3e-6, 7.2e-6): its half step's extra ``r`` singular values are tiny on such
      problems, and the directions ``F_half V_half`` they carry are computed from
      cancellations -- to about ``eps / sigma`` -- so the step is sensitive to rounding
      (relative changes up to 1e-9 under a re-gauging of ``Y0``);
    * rank-growing, rank-adaptive (``tol = 1e-10``), a Sylvester flow with a rank-2 source
      from rank 3: 1.94 for both variants where the source lies outside the initial bases,
      3.46 / 3.39 where it lies inside; with a rank-3 source from rank 2 (30 x 25) 0.80:
      the ``r`` new directions of the half step cannot hold the source's three;
    * ``inner="euler"``: first order (1.13 on the cubic flow);
    * the error does not grow as the smallest singular value goes down to ``1e-12``;
      symmetry preserved (``F(t, Y^T) = F(t, Y)^T``, symmetric ``Y0``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y0 = LowRank.random(rng, 10, 8, 2)
    >>> W = rng.standard_normal((10, 10)) / 10
    >>> F = lambda t, A: W @ A + np.cos(t) * np.eye(10, 8)
    >>> Y1 = midpoint_bug_step(Y0, F, 0.0, 0.1, tol=1e-12)
    >>> Y1.rank <= 8, Y1.orthonormality_error() < 1e-13
    (True, True)
    >>> Z0 = LowRank.random(rng, 4, 4, 4)           # full rank: one rk4 step of the full
    >>> G = lambda t, A: np.sin(A) + np.cos(t)      # problem
    >>> from lowrank_ref.integrators import integrate
    >>> A1 = integrate(G, Z0.to_dense(), 0.0, 0.1, "rk4", 1)
    >>> bool(np.allclose(midpoint_bug_step(Z0, G, 0.0, 0.1, tol=0.0).to_dense(), A1))
    True
    """
    Y0, G, t0, h, dtype = setup_step(Y0, F, t0, h, inner, substeps)
    check_adaptive_args(tol, relative, min_rank, max_rank, observer)
    check_choice(variant, "variant", MIDPOINT_VARIANTS)
    U0, S0, V0 = reorthonormalize(Y0)
    t_half = t0 + 0.5 * h
    try:
        U_half, S_half, V_half = augmented_bug_core(G, U0, S0, V0, t0, 0.5 * h, inner,
                                                    substeps)
    except ValueError as exc:       # name the caller's h, not the half step's
        if not str(exc).startswith(f"h = {0.5 * h!r} is too large"):
            raise
        raise ValueError(f"h = {h!r} is too large for this F: the half step overflowed "
                         f"({exc})") from None
    if variant == "3r":
        U_half, S_half, V_half = truncate_observed(U_half, S_half, V_half, tol, relative,
                                                   min_rank, max_rank, observer)
    F_half = G(t_half, (U_half @ S_half) @ V_half.T)
    FV = direction_block(F_half, V_half, t_half)          # scaled: only the span is used
    FtU = direction_block(F_half.T, U_half, t_half)
    U_hat = augment_basis(U0, np.concatenate([U_half, FV], axis=1))
    V_hat = augment_basis(V0, np.concatenate([V_half, FtU], axis=1))
    S_hat0 = (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat)
    S_hat1 = galerkin_s_step(G, U_hat, S_hat0, V_hat, t0, h, inner, substeps)
    Y1 = truncate_observed(U_hat, S_hat1, V_hat, tol, relative, min_rank, max_rank,
                           observer)
    return as_dtype(Y1, dtype)


def second_order_parallel_bug_step(Y0: LowRank, F: Callable, t0: float, h: float,
                                   tol: float, relative: bool = True, min_rank: int = 1,
                                   max_rank: Optional[int] = None, inner: str = "rk4",
                                   substeps: int = 1, *,
                                   observer: Optional[Callable] = None) -> LowRank:
    """One step of the second-order robust parallel BUG integrator [Kus24]: the bases are
    augmented by ``F(Y0)`` first, then the K-, L- and S-flows run in parallel.

    With ``t1 = t0 + h`` (``U0``, ``V0`` re-orthonormalised first):

    1. **Augmentation by the vector field at t0**: ``F0 = F(t0, Y0)``;
       ``U_hat0 = augment_basis(U0, F0 V0)``, ``V_hat0 = augment_basis(V0, F0^T U0)``
       (``k_u, k_v <= 2r`` columns, the old basis first).
    2. **K-flow** in the augmented co-basis: ``dK/dt = F(t, K V_hat0^T) V_hat0``,
       ``K(t0) = Y0 V_hat0 = U0 S0 (V0^T V_hat0)`` (m, k_v); new directions
       ``U_tilde1`` (m, p_u): ``[U_hat0, U_tilde1] = augment_basis(U_hat0, K1)``.
    3. **L-flow** (in parallel): ``dL/dt = F(t, U_hat0 L^T)^T U_hat0``, ``L(t0) = Y0^T
       U_hat0`` (n, k_u); ``[V_hat0, V_tilde1] = augment_basis(V_hat0, L1)``.
    4. **S-flow** (in parallel), Galerkin in the augmented bases of step 1:
       ``dS/dt = U_hat0^T F(t, U_hat0 S V_hat0^T) V_hat0``, ``S(t0) = U_hat0^T Y0
       V_hat0``; ``S_bar1 = S(t1)`` (k_u, k_v).
    5. **Augmented core**, as in the first-order parallel integrator [CKL24]::

           S_hat1 = [[ S_bar1,           L1^T V_tilde1 ],    (k_u + p_u, k_v + p_v)
                     [ U_tilde1^T K1,    0             ]]

       in the bases ``U_hat1 = [U_hat0, U_tilde1]``, ``V_hat1 = [V_hat0, V_tilde1]``
       (at most ``4r`` columns).
    6. **Truncation**: ``Y1 = truncate(U_hat1, S_hat1, V_hat1, tol, relative, min_rank,
       max_rank)``.

    Steps 2-4 are independent (one evaluation of ``F`` in step 1 is shared); the flows are
    solved by ``substeps`` steps of ``inner``.

    Parameters
    ----------
    Y0 : LowRank
        ``U0 (m, r)``, ``S0 (r, r)``, ``V0 (n, r)``.
    F : callable
        ``F(t, A) -> (m, n) ndarray``.
    t0 : float
    h : float, > 0
    tol : float, >= 0
        Truncation tolerance (Frobenius norm).
    relative : bool, default True
        Tolerance relative to ``||S_hat1||_F``.
    min_rank, max_rank : int, int or None
        Clamp of the new rank (``min_rank = max_rank = r``: fixed rank r).
    inner : {"rk4", "euler"}, default "rk4"
        Solver of the flows; ``"euler"`` gives a first-order method.
    substeps : int, default 1
    observer : callable or None, default None, keyword-only
        Called as ``observer(S_hat1)`` before the truncation (the return value is
        ignored).

    Returns
    -------
    LowRank
        Rank ``r1 <= min(4r, m, n)``, clamped to ``[min_rank, max_rank]``, diagonal ``S1``.

    Raises
    ------
    TypeError, ValueError
        As :func:`lowrank_ref.integrators.adaptive_bug_step`.

    Notes
    -----
    *Provenance.* The abstract of [Kus24] ("an extension to higher order ... by a careful
    basis augmentation before solving the matrix differential equations of the factorized
    solution", a robust error bound) and the author's public code (GitHub
    ``JonasKu/Publication-Second-Order-Robust-Parallel-Integrators-for-DLRA``,
    ``codeSection6.1/methods.jl``, function ``ParallelIntegrator_2nd``), read for this
    implementation; its algorithm section was not read. That code solves the flows with an
    adaptive ODE solver to a tolerance (here ``inner``/``substeps``) and truncates to a
    fixed rank or by an absolute tolerance. Its ``3r`` variant, which adds only ``r`` new
    directions per side, is not implemented here.

    Like the first-order parallel integrator, the step is not exact for rank-r data: the
    block ``P_{U_tilde1} A(t1) P_{V_tilde1}`` of the new-new directions is missing.

    *Measured* (``tests/test_high_order_orders.py``; fitted slopes for ``h = 0.2 ...
    0.025``, 24 x 20 problems, ``inner="rk4"``): 1.96 and 2.01 on the rank-preserving
    Sylvester and cubic flows at fixed rank 4 (``sigma_4 / sigma_1 = 1e-3``), where
    :func:`~lowrank_ref.integrators.parallel_bug_step` is first order; 3.10 on the
    rank-growing Sylvester flow whose source lies in the initial bases; robust to small
    singular values. On the same flow with the source outside the initial bases it is
    first order (0.94, and 0.96 with a rank-3 source from rank 2): the first step's
    missing new-new block contains ``h`` times the part of the source outside
    ``span(U_hat0)``, ``span(V_hat0)``, and that error is carried to the end.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y0 = LowRank.random(rng, 10, 8, 2)
    >>> W = rng.standard_normal((10, 10)) / 10
    >>> Y1 = second_order_parallel_bug_step(Y0, lambda t, A: W @ A, 0.0, 0.1, tol=1e-12)
    >>> Y1.rank <= 8, Y1.orthonormality_error() < 1e-13
    (True, True)
    """
    Y0, G, t0, h, dtype = setup_step(Y0, F, t0, h, inner, substeps)
    check_adaptive_args(tol, relative, min_rank, max_rank, observer)
    U0, S0, V0 = reorthonormalize(Y0)
    F0 = G(t0, (U0 @ S0) @ V0.T)
    U_hat0 = augment_basis(U0, direction_block(F0, V0, t0))
    V_hat0 = augment_basis(V0, direction_block(F0.T, U0, t0))
    ku, kv = U_hat0.shape[1], V_hat0.shape[1]
    Su, Sv = U_hat0.T @ U0, V0.T @ V_hat0          # (k_u, r), (r, k_v)
    K1 = k_step(G, U0, S0 @ Sv, V_hat0, t0, h, inner, substeps)          # (m, k_v)
    L1 = l_step(G, U_hat0, Su @ S0, V0, t0, h, inner, substeps)          # (n, k_u)
    S_bar1 = galerkin_s_step(G, U_hat0, Su @ S0 @ Sv, V_hat0, t0, h, inner, substeps)
    U_hat1 = augment_basis(U_hat0, K1)
    V_hat1 = augment_basis(V_hat0, L1)
    U_tilde1, V_tilde1 = U_hat1[:, ku:], V_hat1[:, kv:]
    S_hat1 = np.zeros((U_hat1.shape[1], V_hat1.shape[1]),
                      dtype=np.result_type(S_bar1, K1, L1))
    S_hat1[:ku, :kv] = S_bar1
    S_hat1[:ku, kv:] = L1.T @ V_tilde1
    S_hat1[ku:, :kv] = U_tilde1.T @ K1
    check_finite_substep(S_hat1, h, t0 + h)
    Y1 = truncate_observed(U_hat1, S_hat1, V_hat1, tol, relative, min_rank, max_rank,
                           observer)
    return as_dtype(Y1, dtype)
