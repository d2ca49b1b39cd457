"""The parts every integrator step of :mod:`lowrank_ref.integrators` is made of.

* argument checks of a step (:func:`setup_step`, :func:`check_adaptive_args`) and the
  right-hand side ``F`` with its output checked (:func:`checked_rhs`);
* the inner solver of the sub-flows, :func:`integrate` (``inner="euler"``: explicit Euler
  steps; ``inner="rk4"``: classical Runge-Kutta steps), and the sub-flows themselves: the
  K-flow :func:`k_step`, the L-flow :func:`l_step`, the Galerkin S-flow
  :func:`galerkin_s_step`;
* the untruncated step of the rank-adaptive BUG integrator [CKL22],
  :func:`augmented_bug_core` (the half step of the midpoint BUG [CEKL24]);
* the truncation that first shows its core to an observer, :func:`truncate_observed`, and
  the cast back to the input's dtype, :func:`as_dtype`.

Notation (docs/design.md, section "Notation"): ``K = U S`` (m, r), ``L = V S^T`` (n, r); a
sub-flow runs over the whole interval ``[t0, t0 + h]`` and is solved by ``substeps`` steps
of the inner method. ``G`` below is a right-hand side returned by :func:`checked_rhs`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._validate import (check_bool, check_callable, check_choice, check_int, check_rank_bounds,
                        check_real)
from .lowrank import LowRank, augment_basis, validate_lowrank
from .steps import galerkin_core
from .truncation import truncate

__all__ = ["INNER", "integrate", "setup_step", "check_adaptive_args", "checked_rhs",
           "check_finite_substep", "direction_block", "k_step", "l_step", "galerkin_s_step",
           "augmented_bug_core", "truncate_observed", "as_dtype"]

#: The inner solvers of the sub-flows.
INNER = ("euler", "rk4")


def checked_rhs(F: Callable, m: int, n: int, dtype) -> Callable:
    """``F`` with its output checked: real, shape (m, n), finite; cast to ``dtype``.

    Returns ``G(t, A) -> (m, n) ndarray``; a ``TypeError``/``ValueError`` names what ``F``
    returned instead.
    """

    def G(t, A):
        out = F(t, A)
        try:
            out = np.asarray(out)
        except Exception as exc:  # pragma: no cover
            raise TypeError(f"F must return an array, got {type(out).__name__}") from exc
        if out.dtype == object or out.dtype.kind not in "biuf":
            raise TypeError(f"F must return a real float array, got dtype {out.dtype}")
        if out.shape != (m, n):
            raise ValueError(f"F must return an array of shape ({m}, {n}) (the shape of Y0), "
                             f"got shape {out.shape}")
        with np.errstate(over="ignore"):      # reported below: 1e39 is inf in float32
            out = out.astype(dtype, copy=False)
        if not np.all(np.isfinite(out)):
            bad = int(out.size - np.count_nonzero(np.isfinite(out)))
            raise ValueError(f"F returned non-finite values at t={t!r} (expected a finite "
                             f"({m}, {n}) array in {np.dtype(dtype).name}, got {bad} non-finite "
                             f"entries)")
        return out

    return G


def setup_step(Y0, F, t0, h, inner, substeps):
    """Check the arguments every step takes; return ``(Y0, G, t0, h, dtype)``.

    ``Y0`` validated as a :class:`~lowrank_ref.lowrank.LowRank`, ``G = checked_rhs(F, m, n,
    Y0.dtype)``, ``t0`` and ``h`` as floats. Raises ``TypeError``/``ValueError`` naming the
    argument (``F`` not callable, ``h <= 0``, unknown ``inner``, ``substeps < 1``, ...).
    """
    Y0 = validate_lowrank(Y0, "Y0")
    check_callable(F, "F", "F(t, A) -> (m, n) array")
    check_real(t0, "t0")
    check_real(h, "h", low=0.0, low_open=True)
    check_choice(inner, "inner", INNER)
    check_int(substeps, "substeps", low=1)
    U0, _, V0 = Y0
    dtype = Y0.dtype
    return Y0, checked_rhs(F, U0.shape[0], V0.shape[0], dtype), float(t0), float(h), dtype


def check_adaptive_args(tol, relative, min_rank, max_rank, observer) -> None:
    """Check the truncation arguments of a rank-adaptive step (``tol >= 0``, ``relative`` a
    bool, ``1 <= min_rank <= max_rank`` or ``max_rank=None``, ``observer`` callable or
    None)."""
    check_real(tol, "tol", low=0.0)
    check_bool(relative, "relative")
    check_rank_bounds(min_rank, max_rank)
    if observer is not None:
        check_callable(observer, "observer", "observer(S_hat) or None")


def integrate(f: Callable, Y0: np.ndarray, t0: float, h: float, inner: str,
              substeps: int) -> np.ndarray:
    """Solve ``dY/dt = f(t, Y)`` from ``Y(t0) = Y0`` to ``t0 + h`` for an array ``Y``.

    The inner solver of every sub-flow (K, L, S) of the integrators; unchecked arguments.

    ``inner="euler"``: ``substeps`` explicit Euler steps of size ``h / substeps``;
    ``inner="rk4"``: ``substeps`` classical Runge-Kutta steps (order 4).

    Parameters
    ----------
    f : callable ``f(t, Y) -> array`` of ``Y``'s shape
    Y0 : (p, q) ndarray
    t0, h : float
    inner : {"euler", "rk4"}
    substeps : int, >= 1

    Returns
    -------
    (p, q) ndarray
        The approximation of ``Y(t0 + h)``.

    Raises
    ------
    ValueError
        If a step overflows to non-finite values (``h`` too large for ``f``).
    """
    tau = h / substeps
    Y = Y0
    for i in range(substeps):
        t = t0 + i * tau
        if inner == "euler":
            Y = Y + tau * f(t, Y)
        else:
            k1 = f(t, Y)
            k2 = f(t + 0.5 * tau, Y + (0.5 * tau) * k1)
            k3 = f(t + 0.5 * tau, Y + (0.5 * tau) * k2)
            k4 = f(t + tau, Y + tau * k3)
            Y = Y + (tau / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        check_finite_substep(Y, h, t + tau)
    return Y


def check_finite_substep(Y: np.ndarray, h: float, t: float) -> None:
    """ValueError naming ``h`` if a sub-flow left the finite range (F finite, h * F not)."""
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"h = {h!r} is too large for this F: a substep overflowed to "
                         f"non-finite values at t={t!r} (expected finite factors in "
                         f"{Y.dtype}); take a smaller h")


def direction_block(A: np.ndarray, B: np.ndarray, t: float) -> np.ndarray:
    """The new directions ``A @ B`` of a basis update (``A = F(t, Y)`` or its transpose,
    ``B`` a basis), scaled to largest entry 1: only their span is used, and the scaling
    keeps the orthonormalisation of very large values finite. ValueError if the product
    overflows (``F`` finite, ``F B`` not)."""
    with np.errstate(over="ignore", invalid="ignore"):      # reported just below
        out = A @ B
    if not np.all(np.isfinite(out)):
        raise ValueError(f"F is too large for this step: F(t, Y) times a basis overflowed "
                         f"to non-finite values at t={t!r} (expected finite products in "
                         f"{out.dtype})")
    top = np.max(np.abs(out)) if out.size else 0.0
    return out / top if top > 0 else out


def k_step(G, U0, S0, V0, t0, h, inner, substeps):
    """K-flow: ``dK/dt = F(t, K V0^T) V0``, ``K(t0) = U0 S0``; returns ``K1`` (m, k).

    ``S0`` may be rectangular (r, k) when ``V0`` (n, k) is an augmented basis."""
    return integrate(lambda t, K: G(t, K @ V0.T) @ V0, U0 @ S0, t0, h, inner, substeps)


def l_step(G, U0, S0, V0, t0, h, inner, substeps):
    """L-flow: ``dL/dt = F(t, U0 L^T)^T U0``, ``L(t0) = V0 S0^T``; returns ``L1`` (n, k).

    ``S0`` may be rectangular (k, r) when ``U0`` (m, k) is an augmented basis."""
    return integrate(lambda t, L: G(t, U0 @ L.T).T @ U0, V0 @ S0.T, t0, h, inner, substeps)


def galerkin_s_step(G, U, S_init, V, t0, h, inner, substeps):
    """Galerkin S-flow: ``dS/dt = U^T F(t, U S V^T) V``, ``S(t0) = S_init``."""
    return integrate(lambda t, S: U.T @ G(t, (U @ S) @ V.T) @ V, S_init, t0, h, inner,
                     substeps)


def augmented_bug_core(G, U0, S0, V0, t0, h, inner, substeps):
    """The rank-adaptive BUG step [CKL22] before its truncation: ``(U_hat, S_hat1, V_hat)``.

    K- and L-flows from ``Y0 = U0 S0 V0^T`` over ``[t0, t0 + h]``, ``U_hat =
    augment_basis(U0, K1)``, ``V_hat = augment_basis(V0, L1)`` (at most ``2r`` columns,
    the old basis first), and the Galerkin S-flow in these bases from ``S_hat0 = (U_hat^T
    U0) S0 (V0^T V_hat)`` (so that ``U_hat S_hat0 V_hat^T = Y0``).
    """
    K1 = k_step(G, U0, S0, V0, t0, h, inner, substeps)
    L1 = l_step(G, U0, S0, V0, t0, h, inner, substeps)
    U_hat = augment_basis(U0, K1)
    V_hat = augment_basis(V0, L1)
    S_hat0 = galerkin_core(U_hat, U0, S0, V0, V_hat)
    return U_hat, galerkin_s_step(G, U_hat, S_hat0, V_hat, t0, h, inner, substeps), V_hat


def truncate_observed(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank, observer):
    """``truncate(...)``, after handing the core ``S_hat`` to ``observer`` (if not None)."""
    if observer is not None:
        observer(S_hat)
    return truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank)


def as_dtype(Y: LowRank, dtype) -> LowRank:
    """``Y`` with contiguous factors of ``dtype``."""
    return LowRank(*(np.ascontiguousarray(a, dtype=dtype) for a in Y))
