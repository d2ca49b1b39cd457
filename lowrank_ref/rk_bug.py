"""The Runge-Kutta BUG integrator [NR25] (Nobile & Riffaud, arXiv 2502.07040): a BUG step at
each stage of an explicit Runge-Kutta method.

* :class:`ButcherTableau` -- an explicit Runge-Kutta method ``(a, b, c, order)``;
* :data:`BUTCHER_TABLEAUX` -- Heun, explicit midpoint, RK3, SSP-RK3, classical RK4;
* :func:`check_tableau` -- a tableau by name, or a user's validated;
* :func:`rk_bug_step` -- one step.

Also importable from :mod:`lowrank_ref.integrators`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import numpy as np

from ._validate import check_bool
from .lowrank import LowRank, augment_basis, reorthonormalize
from .subflows import (as_dtype, check_adaptive_args, check_finite_substep, direction_block,
                       setup_step, truncate_observed)

__all__ = ["ButcherTableau", "BUTCHER_TABLEAUX", "check_tableau", "rk_bug_step"]


class ButcherTableau(NamedTuple):
    """An explicit Runge-Kutta method: ``Y_i = Y0 + h sum_{j<i} a[i, j] F(t0 + c_j h, Y_j)``,
    ``Y1 = Y0 + h sum_j b[j] F(t0 + c_j h, Y_j)``.

    Attributes
    ----------
    a : (s, s) ndarray
        Strictly lower triangular (explicit method).
    b : (s,) ndarray
        Weights, ``sum(b) = 1``.
    c : (s,) ndarray
        Nodes (the stage times ``t0 + c_i h``).
    order : int
        The classical order of the method (used for documentation and tests only).
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    order: int


def _tableau(a, b, c, order) -> ButcherTableau:
    return ButcherTableau(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64),
                          np.array(c, dtype=np.float64), order)


#: The built-in tableaux of :func:`rk_bug_step` (Butcher, "Numerical methods for ordinary
#: differential equations"; the standard coefficients).
BUTCHER_TABLEAUX = {
    "heun": _tableau([[0, 0], [1, 0]], [0.5, 0.5], [0, 1], 2),
    "midpoint": _tableau([[0, 0], [0.5, 0]], [0, 1], [0, 0.5], 2),
    "rk3": _tableau([[0, 0, 0], [0.5, 0, 0], [-1, 2, 0]], [1 / 6, 2 / 3, 1 / 6],
                    [0, 0.5, 1], 3),
    "ssprk3": _tableau([[0, 0, 0], [1, 0, 0], [0.25, 0.25, 0]], [1 / 6, 1 / 6, 2 / 3],
                       [0, 1, 0.5], 3),
    "rk4": _tableau([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1, 0]],
                    [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0, 0.5, 0.5, 1], 4),
}


def check_tableau(tableau) -> ButcherTableau:
    """The :class:`ButcherTableau` named or given by ``tableau``, validated.

    Raises ``ValueError`` for an unknown name, inconsistent shapes, non-finite entries, a
    tableau that is not explicit or whose weights do not sum to 1; ``TypeError`` for
    anything but a name or a :class:`ButcherTableau`.
    """
    if isinstance(tableau, str):
        if tableau not in BUTCHER_TABLEAUX:
            raise ValueError(f"tableau must be one of {tuple(BUTCHER_TABLEAUX)} or a "
                             f"ButcherTableau, got {tableau!r}")
        return BUTCHER_TABLEAUX[tableau]
    if not isinstance(tableau, ButcherTableau):
        raise TypeError(f"tableau must be a name or a ButcherTableau(a, b, c, order), got "
                        f"{type(tableau).__name__}")
    try:
        a, b, c = (np.asarray(x, dtype=np.float64) for x in tableau[:3])
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tableau.a, .b, .c must be real arrays, got {tableau!r}") from exc
    s = b.shape[0] if b.ndim == 1 else -1
    if s < 1 or a.shape != (s, s) or c.shape != (s,):
        raise ValueError(f"tableau must have a (s, s), b (s,), c (s,) with s >= 1, got "
                         f"shapes {a.shape}, {b.shape}, {c.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.isfinite(c))):
        raise ValueError(f"tableau entries must be finite, got {tableau!r}")
    if np.any(np.triu(a) != 0):
        raise ValueError(f"tableau.a must be strictly lower triangular (an explicit "
                         f"method), got {a.tolist()}")
    if not abs(b.sum() - 1.0) <= 1e-12:
        raise ValueError(f"tableau.b must sum to 1 (a consistent method), got sum "
                         f"{b.sum()!r}")
    return ButcherTableau(a, b, c, tableau.order)


def _galerkin_core(U_hat, V_hat, U0, S0, V0, FY, w, h, t_end):
    """``U_hat^T Z V_hat`` for the Runge-Kutta stage ``Z = Y0 + h sum_j w_j F_j``, formed
    from the factors and the ``F_j`` (``Z`` is never formed)."""
    S_hat = (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat)
    with np.errstate(over="ignore", invalid="ignore"):      # reported just below
        for wj, Fj in zip(w, FY):
            if wj != 0:
                S_hat = S_hat + (h * float(wj)) * (U_hat.T @ Fj @ V_hat)
    check_finite_substep(S_hat, h, t_end)
    return S_hat


def rk_bug_step(Y0: LowRank, F: Callable, t0: float, h: float, tol: float,
                relative: bool = True, min_rank: int = 1, max_rank: Optional[int] = None,
                tableau: Union[str, ButcherTableau] = "rk4", *, clamp_stages: bool = False,
                observer: Optional[Callable] = None) -> LowRank:
    """One step of the Runge-Kutta BUG integrator [NR25]: a BUG step at every stage.

    With the explicit tableau ``(a, b, c)`` of ``s`` stages, ``t_i = t0 + c_i h`` (``U0``,
    ``V0`` re-orthonormalised first):

    1. **Stage 1**: ``Y_1 = Y0`` (``U_1 = U0``, ``V_1 = V0``); ``F_1 = F(t_1, Y_1)``;
       ``U_hat_1 = U0``, ``V_hat_1 = V0``.
    2. **Stage i = 2..s** -- basis update by the last stage, then Galerkin:

       * ``U_hat_i = augment_basis(U_hat_{i-1}, F_{i-1} V_{i-1})``, ``V_hat_i =
         augment_basis(V_hat_{i-1}, F_{i-1}^T U_{i-1})`` -- the K- and L-directions of a
         BUG step [CKL22] at stage ``i - 1``. So ``U_hat_i`` spans ``U0`` and ``F_j V_j``
         for all ``j < i``, and contains every earlier stage's basis ``U_j``;
       * ``S_hat_i = U_hat_i^T (Y0 + h sum_{j<i} a_ij F_j) V_hat_i``, the Galerkin
         projection of the Runge-Kutta stage;
       * ``Y_i = U_i S_i V_i^T = truncate(U_hat_i, S_hat_i, V_hat_i, tol, relative)`` --
         by the tolerance alone, not clamped to ``[min_rank, max_rank]``: at fixed rank
         (``tol = 0``) a stage keeps the whole rank of its bases;
       * ``F_i = F(t_i, Y_i)``.

    3. **Result**: the same basis update by stage ``s``,
       ``S_hat = U_hat^T (Y0 + h sum_j b_j F_j) V_hat``,
       ``Y1 = truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank)``.

    The Galerkin steps of the frozen fields ``sum_j a_ij F_j`` are solved exactly (one
    product), so there is no ``inner`` argument. At full rank (``r = m = n``, ``tol = 0``)
    every projection is the identity and the step is the Runge-Kutta method.

    Parameters
    ----------
    Y0 : LowRank
        ``U0 (m, r)``, ``S0 (r, r)``, ``V0 (n, r)``.
    F : callable
        ``F(t, A) -> (m, n) ndarray``; evaluated once per stage.
    t0 : float
    h : float, > 0
    tol : float, >= 0
        Truncation tolerance (Frobenius norm) of every stage and of the result.
    relative : bool, default True
        Tolerance relative to the norm of the core being truncated.
    min_rank, max_rank : int, int or None
        Clamp of the rank of the result (``min_rank = max_rank = r``: fixed rank r). The
        stages are truncated by ``tol`` alone.
    tableau : str or ButcherTableau, default "rk4"
        One of :data:`BUTCHER_TABLEAUX` (``"heun"``, ``"midpoint"`` (order 2), ``"rk3"``,
        ``"ssprk3"`` (order 3), ``"rk4"``) or an explicit :class:`ButcherTableau`.
    clamp_stages : bool, default False, keyword-only
        Truncate every stage like the result (``tol``, ``[min_rank, max_rank]``): an
        earlier version of this package, kept to show its stall at fixed rank (*Notes*).
    observer : callable or None, default None, keyword-only
        Called as ``observer(S_hat)`` with the core of each truncation, before it is
        truncated: every stage's (2..s) in order, then the result's (the return value is
        ignored). For diagnostics, e.g. the oracle records the singular values each rank
        decision is made from.

    Returns
    -------
    LowRank
        ``U1 (m, r1)``, diagonal ``S1 (r1, r1)``, ``V1 (n, r1)``, ``r1 <= min(m, n)``
        clamped to ``[min_rank, max_rank]``.

    Raises
    ------
    TypeError, ValueError
        As :func:`lowrank_ref.integrators.adaptive_bug_step`, and for an unknown tableau
        name, a tableau that is not a :class:`ButcherTableau`, not explicit, of
        inconsistent shapes, with non-finite entries or with weights not summing to 1.

    Notes
    -----
    *Provenance.* Of [NR25] only the abstract could be read for this implementation (its
    algorithm section was not reachable): "a BUG step at each stage of the Runge-Kutta
    method", robust to small singular values, of the order of the Runge-Kutta method
    "until the error reaches a plateau corresponding to the low-rank truncation error".
    Stage bases built from every earlier stage (``U0``, ``F_1 V_0``, ``U_2``, ``F_2 V_2``,
    ...) follow the description of a public third-party implementation that cites [NR25]
    (its code was not read); ``U_j`` adds nothing to ``U_hat_i`` here, as it lies in
    ``U_hat_j``. Truncating the stages by ``tol`` alone is this package's choice:

    * a stage clamped to the fixed rank r (``clamp_stages=True``) has an error of the size
      of ``sigma_r`` whenever ``h ||F||`` is not small against ``sigma_r`` -- the
      non-robust behaviour BUG integrators avoid -- and the convergence stalls: RK4, local
      slopes 0.61, 3.1, 4.0 on the rank-preserving Sylvester flow below;
    * stages capped at ``2r`` lose the fourth order at small ``h``: RK4, local slopes 4.2,
      3.9, 3.8, 3.4, 3.2 for ``h = 0.2 ... 0.00625`` on ``CubicFlow(rng(3), 30, 25, [1,
      .5, .25, .1, 1e-4], c=2)`` at rank 5, against 4.2, 4.0, 4.0, 4.0, 4.0 without it.

    An earlier version of this package built the stage bases from ``Y0`` alone, ``[U0,
    Z_i V0]`` (``Z_i`` the Runge-Kutta stage): whatever the stages add outside
    ``span(U0)``, ``span(V0)`` is lost, and it is first order where the rank grows (kept
    as a negative control in ``tests/test_high_order_orders.py``).

    *Measured* (``tests/test_high_order_orders.py``; fitted slopes of the error at ``T =
    1`` for ``h = 0.2 ... 0.025``, 24 x 20 problems with exact solutions):

    * rank-preserving, fixed rank 4, ``sigma_4 / sigma_1 = 1e-3`` (a linear Sylvester flow
      and the nonlinear :class:`~lowrank_ref.odes.CubicFlow`): Heun 1.98 / 2.11, RK3 2.95
      / 3.00, RK4 3.94 / 4.03, every local slope at least ``p - 0.1``; the error does not
      grow as ``sigma_r`` goes down to ``1e-12``;
    * rank-growing, rank-adaptive (``tol = 1e-10``), a Sylvester flow with a rank-2
      source from rank 3: the order of the tableau where the source lies in the initial
      bases (1.89, 2.89, 3.88); about 2 for every tableau where it does not (1.92, 1.94,
      1.94), because the first step cannot represent the part of ``h C`` outside the bases
      it builds; with a rank-3 source from rank 2 (30 x 25) Heun 0.96, RK3 1.92, RK4 1.91.

    Where the error levels off at a fixed rank below the rank of the solution it lies at
    or above the best rank-r error of the exact solution; on the toy problem of [CL22]
    with a source term (40 x 40, rank 8) it reaches that error (ratio 1.000 at ``h =
    0.0125``); elsewhere its height is not claimed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y0 = LowRank.random(rng, 10, 8, 2)
    >>> W = rng.standard_normal((10, 10)) / 10
    >>> Y1 = rk_bug_step(Y0, lambda t, A: W @ A, 0.0, 0.1, tol=1e-12)
    >>> from scipy.linalg import expm   # rank-preserving: RK4-BUG ~ exact, error O(h^5)
    >>> bool(np.linalg.norm(Y1.to_dense() - expm(0.1 * W) @ Y0.to_dense()) < 1e-7)
    True
    >>> Y1 = rk_bug_step(Y0, lambda t, A: W @ A, 0.0, 0.1, tol=0.0, tableau="heun",
    ...                  min_rank=2, max_rank=2)
    >>> Y1.rank
    2
    """
    Y0, G, t0, h, dtype = setup_step(Y0, F, t0, h, "euler", 1)
    check_adaptive_args(tol, relative, min_rank, max_rank, observer)
    check_bool(clamp_stages, "clamp_stages")
    a, b, c, _ = check_tableau(tableau)
    U0, S0, V0 = reorthonormalize(Y0)
    s = len(b)
    FY = [G(t0 + c[0] * h, (U0 @ S0) @ V0.T)]
    U_hat, V_hat, Ui, Vi = U0, V0, U0, V0
    for i in range(1, s + 1):
        # the basis grows by the K- and L-directions of a BUG step at the last stage
        t_last = t0 + c[i - 1] * h
        U_hat = augment_basis(U_hat, direction_block(FY[-1], Vi, t_last))
        V_hat = augment_basis(V_hat, direction_block(FY[-1].T, Ui, t_last))
        w, t_i = (a[i, :i], t0 + c[i] * h) if i < s else (b, t0 + h)
        S_hat = _galerkin_core(U_hat, V_hat, U0, S0, V0, FY, w, h, t_i)
        if i == s:
            break
        lo, hi = (min_rank, max_rank) if clamp_stages else (1, None)
        Ui, Si, Vi = truncate_observed(U_hat, S_hat, V_hat, tol, relative, lo, hi, observer)
        FY.append(G(t_i, (Ui @ Si) @ Vi.T))
    Y1 = truncate_observed(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank, observer)
    return as_dtype(Y1, dtype)
