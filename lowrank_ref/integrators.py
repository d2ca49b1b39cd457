"""Time integrators for dynamical low-rank approximation (DLRA) of ``dA/dt = F(t, A)``.

One step of each integrator maps ``Y0 = U0 @ S0 @ V0.T`` (a :class:`LowRank` at time
``t0``) to ``Y1`` at ``t0 + h``. First order, in this module:

* :func:`projector_splitting_step` -- KSL, the projector-splitting integrator of [LO14]
  (Lubich & Oseledets, BIT 54 (2014)), Lie (order 1) or Strang (order 2);
* :func:`bug_step` -- the fixed-rank "unconventional" basis-update & Galerkin integrator of
  [CL22] (Ceruti & Lubich, BIT 62 (2022));
* :func:`adaptive_bug_step` -- the rank-adaptive BUG of [CKL22] (Ceruti, Kusch & Lubich,
  BIT 62 (2022));
* :func:`parallel_bug_step` -- the parallel rank-adaptive integrator of [CKL24] (Ceruti,
  Kusch & Lubich, SISC 2024).

Second and higher order, robust to small singular values (defined in
:mod:`lowrank_ref.second_order_integrators` and :mod:`lowrank_ref.rk_bug`, importable from
here):

* :func:`midpoint_bug_step` -- the midpoint BUG integrator of [CEKL24] (Ceruti, Einkemmer,
  Kusch & Lubich, BIT 64 (2024)), in its ``4r`` and ``3r`` variants;
* :func:`second_order_parallel_bug_step` -- the second-order robust parallel BUG
  integrator of [Kus24] (Kusch, arXiv 2403.02834);
* :func:`rk_bug_step` -- the Runge-Kutta BUG integrator of [NR25] (Nobile & Riffaud,
  arXiv 2502.07040): a BUG step at each stage of an explicit Runge-Kutta method
  (:data:`BUTCHER_TABLEAUX`, or a :class:`ButcherTableau` of your own).

The summary of each docstring is the algorithm, step by step; where each detail comes from
(paper, authors' code, this package's choice) and what was measured is in its *Notes*.
Section, theorem and equation numbers of the papers are not quoted: they were not checked
against the published text.

Notation (docs/design.md, section "Notation"): ``K = U S`` (m, r), ``L = V S^T`` (n, r);
augmented quantities carry a hat, ``U_hat`` (m, <= 2r), ``S_hat`` (<= 2r, <= 2r). ``F``
takes and returns dense (m, n) arrays -- the only dense matrices formed here are its
arguments and values.

The K-, L- and S-substeps are ODEs for small factor matrices (:mod:`lowrank_ref.subflows`);
they are solved by the inner method ``inner="euler"`` (``substeps`` explicit Euler steps;
one step is the DLRT case) or ``inner="rk4"`` (``substeps`` classical Runge-Kutta steps, to
approximate the exact sub-flows of the theory). Each sub-flow runs over the whole interval
``[t0, t0 + h]``.

Orthonormalisation goes through :func:`lowrank_ref.lowrank.orthonormalize` (thin QR) and
:func:`lowrank_ref.lowrank.augment_basis` (rank revealing), truncation through
:func:`lowrank_ref.truncation.truncate`: one rule for the whole package.

Only real factors are supported (no complex Schrödinger problems). Float32 input gives
float32 output; float64 stays float64.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ._validate import check_int
from .lowrank import LowRank, augment_basis, orthonormalize, reorthonormalize
from .rk_bug import BUTCHER_TABLEAUX, ButcherTableau, rk_bug_step
from .second_order_integrators import midpoint_bug_step, second_order_parallel_bug_step
from .steps import galerkin_core, parallel_core
from .subflows import (as_dtype as _as_dtype, augmented_bug_core, check_adaptive_args,
                       check_finite_substep as _check_finite_substep,
                       galerkin_s_step as _galerkin_s_step, integrate, k_step as _k_step,
                       l_step as _l_step, setup_step as _setup,
                       truncate_observed as _truncate_observed)

__all__ = ["projector_splitting_step", "bug_step", "adaptive_bug_step", "parallel_bug_step",
           "midpoint_bug_step", "second_order_parallel_bug_step", "rk_bug_step",
           "ButcherTableau", "BUTCHER_TABLEAUX", "integrate"]


# ---------------------------------------------------------------------------------------
# KSL: projector splitting [LO14]
# ---------------------------------------------------------------------------------------
def _splitting_forward(G, U0, S0, V0, t0, h, inner, substeps):
    """One Lie step of projector splitting: K-step, backward S-step, L-step (K, S, L)."""
    # K-step, then QR: K1 = U1 S_hat1
    K1 = _k_step(G, U0, S0, V0, t0, h, inner, substeps)
    U1, S_hat1 = orthonormalize(K1, return_r=True)
    # S-step, backwards: dS/dt = -U1^T F(t, U1 S V0^T) V0, S(t0) = S_hat1 -> S_tilde0
    S_tilde0 = integrate(lambda t, S: -(U1.T @ G(t, (U1 @ S) @ V0.T) @ V0), S_hat1, t0, h,
                          inner, substeps)
    # L-step, then QR: L1 = V1 S1^T
    L1 = _l_step(G, U1, S_tilde0, V0, t0, h, inner, substeps)
    V1, S1t = orthonormalize(L1, return_r=True)
    return U1, S1t.T, V1


def _splitting_adjoint(G, U0, S0, V0, t0, h, inner, substeps):
    """The adjoint of :func:`_splitting_forward`: L-step, backward S-step, K-step."""
    L1 = _l_step(G, U0, S0, V0, t0, h, inner, substeps)
    V1, S_hat1t = orthonormalize(L1, return_r=True)
    S_tilde0 = integrate(lambda t, S: -(U0.T @ G(t, (U0 @ S) @ V1.T) @ V1), S_hat1t.T, t0,
                          h, inner, substeps)
    K1 = _k_step(G, U0, S_tilde0, V1, t0, h, inner, substeps)
    U1, S1 = orthonormalize(K1, return_r=True)
    return U1, S1, V1


def projector_splitting_step(Y0: LowRank, F: Callable, t0: float, h: float,
                             inner: str = "euler", substeps: int = 1,
                             order: int = 1) -> LowRank:
    """One step of the projector-splitting (KSL) integrator of [LO14].

    The orthogonal projection onto the tangent space of the rank-r manifold at
    ``Y = U S V^T`` splits as ``P(Y) Z = Z V V^T - U U^T Z V V^T + U U^T Z``; solving the
    three projected flows one after the other over ``[t0, t1]``, ``t1 = t0 + h``, gives
    (in factored form, [LO14]):

    1. **K-step**: ``dK/dt = F(t, K V0^T) V0``, ``K(t0) = K0 = U0 S0``; thin QR
       ``K1 = U1 S_hat1``.
    2. **S-step (backward)**: ``dS/dt = -U1^T F(t, U1 S V0^T) V0``, ``S(t0) = S_hat1``;
       ``S_tilde0 = S(t1)``.
    3. **L-step**: ``dL/dt = F(t, U1 L^T)^T U1``, ``L(t0) = L0 = V0 S_tilde0^T``; thin QR
       ``L1 = V1 S1^T``.

    Result ``Y1 = U1 S1 V1^T`` (rank r): the Lie-Trotter composition. ``order=2`` is the
    Strang splitting: the step above over ``[t0, t0 + h/2]`` followed by its adjoint
    (L-step, backward S-step, K-step, in this order) over ``[t0 + h/2, t1]``.

    Parameters
    ----------
    Y0 : LowRank
        ``U0 (m, r)``, ``S0 (r, r)``, ``V0 (n, r)``, orthonormal ``U0``, ``V0``.
    F : callable
        ``F(t, A) -> (m, n) ndarray``, the right-hand side on dense arrays.
    t0 : float
        Start time (finite).
    h : float
        Step size, ``> 0``.
    inner : {"euler", "rk4"}, default "euler"
        Solver of the substeps.
    substeps : int, default 1
        Number of inner steps per substep.
    order : {1, 2}, default 1
        1 = Lie-Trotter (KSL), 2 = Strang (KSL over h/2 then LSK over h/2); order 2 needs
        ``inner="rk4"`` (see above).

    Returns
    -------
    LowRank
        ``U1 (m, r)``, ``S1 (r, r)``, ``V1 (n, r)``, orthonormal ``U1``, ``V1``.

    Raises
    ------
    TypeError
        ``F`` not callable, non-numeric ``t0``/``h``/``substeps``, ``Y0`` not a LowRank.
    ValueError
        ``Y0`` inconsistent or not orthonormal, ``h <= 0`` or not finite, ``t0`` not
        finite, unknown ``inner``, ``substeps < 1``, ``order`` not 1 or 2, ``F`` returning
        the wrong shape or non-finite values (also after the cast to ``Y0``'s dtype), a
        substep overflowing to non-finite values (``h`` too large for ``F``).

    Notes
    -----
    Lie (order 1) and Strang (order 2) splitting are both in [LO14]. The orders are those
    of the splitting with *exact* sub-flows: Strang is of order 2 only if the sub-flows are
    solved to second order or better (``inner="rk4"``); with one explicit Euler step per
    sub-flow (the default) it is of order 1 (measured slope 1.00 on the toy problem of
    [CL22]). KSL is exact for rank-r data ``A(t)`` (exactness theorem of [LO14]) and robust
    to small singular values ([KLW16]), when the substeps are solved exactly.

    Naming: "KSL" is the order of the sub-steps of projector splitting (K, backward S, L).
    The DLRT paper [SZKCT22] calls the BUG integrator of :func:`bug_step` "KLS" (K and L in
    parallel, then S): :class:`lowrank_ref.dlrt.FixedRankKLS` is BUG, not this method.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y0 = LowRank.random(rng, 8, 6, 2)
    >>> W = rng.standard_normal((8, 8)) / 8
    >>> Y1 = projector_splitting_step(Y0, lambda t, A: W @ A, 0.0, 0.1, inner="rk4")
    >>> Y1.rank, Y1.orthonormality_error() < 1e-13
    (2, True)
    >>> from scipy.linalg import expm      # dY/dt = W Y keeps rank 2: KSL is exact
    >>> bool(np.allclose(Y1.to_dense(), expm(0.1 * W) @ Y0.to_dense(), atol=1e-9))
    True
    """
    Y0, G, t0, h, dtype = _setup(Y0, F, t0, h, inner, substeps)
    if check_int(order, "order") not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    U0, S0, V0 = Y0
    if order == 1:
        U1, S1, V1 = _splitting_forward(G, U0, S0, V0, t0, h, inner, substeps)
    else:
        Um, Sm, Vm = _splitting_forward(G, U0, S0, V0, t0, 0.5 * h, inner, substeps)
        U1, S1, V1 = _splitting_adjoint(G, Um, Sm, Vm, t0 + 0.5 * h, 0.5 * h, inner, substeps)
    return _as_dtype(LowRank(U1, S1, V1), dtype)


# ---------------------------------------------------------------------------------------
# BUG [CL22]
# ---------------------------------------------------------------------------------------
def bug_step(Y0: LowRank, F: Callable, t0: float, h: float, inner: str = "euler",
             substeps: int = 1) -> LowRank:
    """One step of the fixed-rank BUG ("unconventional") integrator of [CL22].

    With ``t1 = t0 + h``:

    1. **K-step**: ``dK/dt = F(t, K V0^T) V0``, ``K(t0) = U0 S0``;
       ``U1 = orthonormalize(K1)`` (m, r); ``M = U1^T U0`` (r, r).
    2. **L-step** (independent of 1, in parallel): ``dL/dt = F(t, U0 L^T)^T U0``,
       ``L(t0) = V0 S0^T``; ``V1 = orthonormalize(L1)`` (n, r); ``N = V1^T V0`` (r, r).
    3. **Galerkin S-step**: ``dS/dt = U1^T F(t, U1 S V1^T) V1``,
       ``S(t0) = M S0 N^T``; ``S1 = S(t1)``.

    Result ``Y1 = U1 S1 V1^T`` (rank r). No backward substep.

    Parameters
    ----------
    Y0 : LowRank
        ``U0 (m, r)``, ``S0 (r, r)``, ``V0 (n, r)``.
    F : callable
        ``F(t, A) -> (m, n) ndarray``.
    t0 : float
    h : float, > 0
    inner : {"euler", "rk4"}, default "euler"
    substeps : int, default 1

    Returns
    -------
    LowRank
        ``U1 (m, r)``, ``S1 (r, r)``, ``V1 (n, r)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`projector_splitting_step`.

    Notes
    -----
    First order, exact for rank-r data and robust to small singular values ([CL22]:
    exactness property, robust error bound); preserves symmetry (``F(t, Y^T) = F(t,
    Y)^T``, ``Y0`` symmetric).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y0 = LowRank.random(rng, 8, 6, 2)
    >>> B = rng.standard_normal((8, 6))
    >>> Y1 = bug_step(Y0, lambda t, A: B - A, 0.0, 0.5)
    >>> Y1.rank, Y1.shape
    (2, (8, 6))
    >>> bool(np.linalg.norm(Y1.to_dense() - B) < np.linalg.norm(Y0.to_dense() - B))
    True
    """
    Y0, G, t0, h, dtype = _setup(Y0, F, t0, h, inner, substeps)
    U0, S0, V0 = Y0
    K1 = _k_step(G, U0, S0, V0, t0, h, inner, substeps)
    L1 = _l_step(G, U0, S0, V0, t0, h, inner, substeps)
    U1 = orthonormalize(K1)
    V1 = orthonormalize(L1)
    S1 = _galerkin_s_step(G, U1, galerkin_core(U1, U0, S0, V0, V1), V1, t0, h, inner, substeps)
    return _as_dtype(LowRank(U1, S1, V1), dtype)


# ---------------------------------------------------------------------------------------
# rank-adaptive BUG [CKL22]
# ---------------------------------------------------------------------------------------
def adaptive_bug_step(Y0: LowRank, F: Callable, t0: float, h: float, tol: float,
                      relative: bool = True, min_rank: int = 1,
                      max_rank: Optional[int] = None, inner: str = "euler",
                      substeps: int = 1, *,
                      observer: Optional[Callable] = None) -> LowRank:
    """One step of the rank-adaptive BUG integrator of [CKL22].

    With ``t1 = t0 + h`` (``U0``, ``V0`` are first re-orthonormalised by QR, the ``R``
    factors absorbed into ``S0``, so that rounding errors do not accumulate in the kept
    block ``U_hat[:, :r] = U0`` over many steps):

    1. **K-step**: ``dK/dt = F(t, K V0^T) V0``, ``K(t0) = U0 S0``;
       ``U_hat = augment_basis(U0, K1)`` -- an orthonormal basis of ``span[K1, U0]`` with
       ``U_hat[:, :r] = U0``, at most ``min(2r, m)`` columns, computed rank-revealingly.
       ``M_hat = U_hat^T U0``.
    2. **L-step** (in parallel): ``dL/dt = F(t, U0 L^T)^T U0``, ``L(t0) = V0 S0^T``;
       ``V_hat = augment_basis(V0, L1)``; ``N_hat = V_hat^T V0``.
    3. **Augmented Galerkin S-step**: ``dS/dt = U_hat^T F(t, U_hat S V_hat^T) V_hat``,
       ``S(t0) = S_hat0 = M_hat S0 N_hat^T = (U_hat^T U0) S0 (V0^T V_hat)``
       (so ``U_hat S_hat0 V_hat^T = Y0``); ``S_hat1 = S(t1)``, of shape ``(k_u, k_v)``
       (``k_u != k_v`` when one side is capped at ``m`` or ``n``; ``truncate`` takes
       rectangular cores).
    4. **Truncation**: ``truncate(U_hat, S_hat1, V_hat, tol, relative, min_rank,
       max_rank)`` -- the smallest rank whose discarded tail is ``<= tol`` (times
       ``||S_hat1||_F`` if ``relative``), see :mod:`lowrank_ref.truncation`.


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
        Clamp of the new rank (``max_rank=min_rank=r`` gives a fixed-rank method).
    inner : {"euler", "rk4"}, default "euler"
    substeps : int, default 1
    observer : callable or None, default None, keyword-only
        Called as ``observer(S_hat1)`` before the truncation (the return value is
        ignored): for diagnostics, e.g. the oracle records the singular values each rank
        decision is made from.

    Returns
    -------
    LowRank
        Rank ``r1`` with ``min(min_rank, k) <= r1 <= min(max_rank, k)``,
        ``k <= min(2r, m, n)``, diagonal ``S1``.

    Raises
    ------
    TypeError, ValueError
        As :func:`projector_splitting_step`, and for an invalid ``tol``, ``relative`` (not
        a bool), ``min_rank`` or ``max_rank``; ``observer`` neither callable nor None.

    Notes
    -----
    Inherits exactness, robustness and symmetry preservation of BUG and decreases the
    functional of a gradient flow up to the tolerance ([CKL22]).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y0 = LowRank.random(rng, 10, 8, 2)
    >>> B = LowRank.random(rng, 10, 8, 4, singular_values=[4., 3., 2., 1.]).to_dense()
    >>> Y1 = adaptive_bug_step(Y0, lambda t, A: B - A, 0.0, 1.0, tol=1e-10)
    >>> Y1.rank                             # h = 1, Euler: Y1 = projection of B, rank 4
    4
    """
    Y0, G, t0, h, dtype = _setup(Y0, F, t0, h, inner, substeps)
    check_adaptive_args(tol, relative, min_rank, max_rank, observer)
    U0, S0, V0 = reorthonormalize(Y0)
    U_hat, S_hat1, V_hat = augmented_bug_core(G, U0, S0, V0, t0, h, inner, substeps)
    Y1 = _truncate_observed(U_hat, S_hat1, V_hat, tol, relative, min_rank, max_rank,
                            observer)
    return _as_dtype(Y1, dtype)


# ---------------------------------------------------------------------------------------
# parallel rank-adaptive BUG [CKL24]
# ---------------------------------------------------------------------------------------
def parallel_bug_step(Y0: LowRank, F: Callable, t0: float, h: float, tol: float,
                      relative: bool = True, min_rank: int = 1,
                      max_rank: Optional[int] = None, inner: str = "euler",
                      substeps: int = 1, *,
                      observer: Optional[Callable] = None) -> LowRank:
    """One step of the parallel rank-adaptive integrator of [CKL24].

    All three substeps start from ``Y0`` and can run in parallel; ``t1 = t0 + h``
    (``U0``, ``V0`` re-orthonormalised first, as in :func:`adaptive_bug_step`):

    1. **K-step**: ``dK/dt = F(t, K V0^T) V0``, ``K(t0) = U0 S0``; the new directions
       ``U_tilde1`` (m, p_u) are an orthonormal basis of ``(I - U0 U0^T) K1`` (via
       ``augment_basis``), ``U_hat = [U0, U_tilde1]``; ``K_tilde1 = U_tilde1^T K1``
       (p_u, r).
    2. **L-step**: ``dL/dt = F(t, U0 L^T)^T U0``, ``L(t0) = V0 S0^T``; ``V_tilde1``
       (n, p_v), ``V_hat = [V0, V_tilde1]``; ``L_tilde1 = V_tilde1^T L1`` (p_v, r).
    3. **S-step** (Galerkin in the *old* bases): ``dS/dt = U0^T F(t, U0 S V0^T) V0``,
       ``S(t0) = S0``; ``S_bar1 = S(t1)`` (r, r).
    4. **Augmented core** ([CKL24])::

           S_hat1 = [[ S_bar1,    L_tilde1^T ],      (r + p_u, r + p_v)
                     [ K_tilde1,  0          ]]

       i.e. ``U_hat S_hat1 V_hat^T = U0 S_bar1 V0^T + U0 L1^T P_{V_tilde1}
       + P_{U_tilde1} K1 V0^T``.
    5. **Truncation**: ``truncate(U_hat, S_hat1, V_hat, tol, relative, min_rank,
       max_rank)``.

    No augmented Galerkin step is solved, so the method is cheaper than
    :func:`adaptive_bug_step`.

    Parameters
    ----------
    Y0 : LowRank
        ``U0 (m, r)``, ``S0 (r, r)``, ``V0 (n, r)``.
    F : callable
        ``F(t, A) -> (m, n) ndarray``.
    t0 : float
    h : float, > 0
    tol : float, >= 0
    relative : bool, default True
    min_rank, max_rank : int, int or None
    inner : {"euler", "rk4"}, default "euler"
    substeps : int, default 1
    observer : callable or None, default None, keyword-only
        Called as ``observer(S_hat1)`` before the truncation (the return value is
        ignored): for diagnostics, e.g. the oracle records the singular values each rank
        decision is made from.

    Returns
    -------
    LowRank
        Rank ``r1 <= min(2r, m, n)``, clamped to ``[min_rank, max_rank]``, diagonal ``S1``.

    Raises
    ------
    TypeError, ValueError
        As :func:`adaptive_bug_step`.

    Notes
    -----
    First order and robust ([CKL24]), but **not exact** for rank-r data: the block
    ``P_{U_tilde1} A(t1) P_{V_tilde1}`` (of size ``O(h^2)``) is missing. The augmented core
    of step 4 was checked against the authors' public reproduction code.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y0 = LowRank.random(rng, 10, 8, 2)
    >>> W = rng.standard_normal((10, 10)) / 10
    >>> Y1 = parallel_bug_step(Y0, lambda t, A: W @ A, 0.0, 0.1, tol=1e-12)
    >>> Y1.rank <= 4, Y1.orthonormality_error() < 1e-13
    (True, True)
    """
    Y0, G, t0, h, dtype = _setup(Y0, F, t0, h, inner, substeps)
    check_adaptive_args(tol, relative, min_rank, max_rank, observer)
    U0, S0, V0 = reorthonormalize(Y0)
    K1 = _k_step(G, U0, S0, V0, t0, h, inner, substeps)
    L1 = _l_step(G, U0, S0, V0, t0, h, inner, substeps)
    S_bar1 = _galerkin_s_step(G, U0, S0, V0, t0, h, inner, substeps)
    U_hat = augment_basis(U0, K1)
    V_hat = augment_basis(V0, L1)
    S_hat1 = parallel_core(S_bar1, K1, L1, U_hat, V_hat)    # [[S_bar1, L~^T], [K~, 0]]
    _check_finite_substep(S_hat1, h, t0 + h)
    Y1 = _truncate_observed(U_hat, S_hat1, V_hat, tol, relative, min_rank, max_rank,
                            observer)
    return _as_dtype(Y1, dtype)
