"""Numbers behind the figure of the second- and higher-order robust integrators.

:func:`integrator_high_order` measures the midpoint BUG [CEKL24] (variants ``4r`` and
``3r``), the second-order parallel BUG [Kus24] and RK-BUG [NR25] (Heun, RK3, RK4) on the
problems of ``tests/test_high_order_orders.py`` (:mod:`lowrank_ref.odes`, exact solutions,
24 x 20), with first-order methods as references:

* ``"preserving"`` -- error at ``T = 1`` against ``h`` on a nonlinear rank-preserving
  problem, :class:`~lowrank_ref.odes.CubicFlow` with singular values ``1 ... 1e-3`` at
  fixed rank 4; with RK4-BUG whose stages are clamped to rank 4 (``clamp_stages=True``,
  the stall) and BUG [CL22];
* ``"growing_outside"`` / ``"growing_inside"`` -- the same on a rank-growing problem,
  :class:`~lowrank_ref.odes.SylvesterProblem` from rank 3 with a rank-2 source outside
  (inside) the initial bases, rank-adaptive with ``tol = 1e-10``; with the parallel BUG
  [CKL24] as the first-order control;
* ``"robustness"`` -- error at ``T = 1`` with ``h = 0.1`` on ``CubicFlow`` with singular
  values ``1, 0.5, 0.25, sigma_r`` at fixed rank 4, against ``sigma_r`` from ``1e-2`` down
  to ``1e-12``; with the clamped RK4-BUG.

Every sub-flow is solved by the classical Runge-Kutta method (``inner="rk4"``); RK-BUG
needs none. ``fast=True`` gives fewer step sizes and singular values (for the tests).

References
----------
[CL22] G. Ceruti, C. Lubich. BIT 62
(2022). [CKL24] G. Ceruti, J. Kusch, C. Lubich. SIAM J. Sci. Comput. (2024). [CEKL24] G.
Ceruti, L. Einkemmer, J. Kusch, C. Lubich. BIT Numer. Math. 64 (2024). [Kus24] J. Kusch.
Second-order robust parallel integrators for dynamical low-rank approximation. arXiv
2403.02834 (2024). [NR25] F. Nobile, S. Riffaud. arXiv 2502.07040 (2025).
"""
from __future__ import annotations

import time
from typing import Callable, Dict

import numpy as np

from ..checks import fit_slope
from ..integrators import (bug_step, midpoint_bug_step, parallel_bug_step, rk_bug_step,
                           second_order_parallel_bug_step)
from ..odes import CubicFlow, SylvesterProblem
from .integrator_experiments import check_fast_seed

__all__ = ["HIGH_ORDER_LABELS", "HIGH_ORDER_EXPECTED", "integrator_high_order"]

#: Display names, in plotting order.
HIGH_ORDER_LABELS = {
    "bug": "BUG [CL22]",
    "parallel_bug": "parallel BUG [CKL24]",
    "midpoint_4r": "midpoint BUG, 4r [CEKL24]",
    "midpoint_3r": "midpoint BUG, 3r [CEKL24]",
    "parallel_2": "second-order parallel BUG [Kus24]",
    "rk_heun": "RK-BUG, Heun [NR25]",
    "rk_rk3": "RK-BUG, RK3 [NR25]",
    "rk_rk4": "RK-BUG, RK4 [NR25]",
    "rk_rk4_clamped": "RK4-BUG, stages clamped to r",
}

#: The order of each method on a rank-preserving problem (the clamped RK4-BUG stalls).
HIGH_ORDER_EXPECTED = {"bug": 1, "parallel_bug": 1, "midpoint_4r": 2, "midpoint_3r": 2,
                       "parallel_2": 2, "rk_heun": 2, "rk_rk3": 3, "rk_rk4": 4}

_CONVERGENCE = {
    "preserving": ["bug", "midpoint_4r", "midpoint_3r", "parallel_2", "rk_heun", "rk_rk3",
                   "rk_rk4", "rk_rk4_clamped"],
    "growing_outside": ["parallel_bug", "midpoint_4r", "midpoint_3r", "parallel_2",
                        "rk_heun", "rk_rk3", "rk_rk4"],
    "growing_inside": ["parallel_bug", "midpoint_4r", "midpoint_3r", "parallel_2",
                       "rk_heun", "rk_rk3", "rk_rk4"],
}
_ROBUSTNESS = ["midpoint_4r", "midpoint_3r", "parallel_2", "rk_rk3", "rk_rk4",
               "rk_rk4_clamped"]


def _step(name: str, kw: dict) -> Callable:
    """``step(Y, F, t, h)`` of method ``name`` with the truncation arguments ``kw``."""
    steps = {
        "bug": lambda Y, F, t, h: bug_step(Y, F, t, h, inner="rk4"),
        "parallel_bug": lambda Y, F, t, h: parallel_bug_step(Y, F, t, h, inner="rk4", **kw),
        "midpoint_4r": lambda Y, F, t, h: midpoint_bug_step(Y, F, t, h, **kw),
        "midpoint_3r": lambda Y, F, t, h: midpoint_bug_step(Y, F, t, h, variant="3r", **kw),
        "parallel_2": lambda Y, F, t, h: second_order_parallel_bug_step(Y, F, t, h, **kw),
        "rk_heun": lambda Y, F, t, h: rk_bug_step(Y, F, t, h, tableau="heun", **kw),
        "rk_rk3": lambda Y, F, t, h: rk_bug_step(Y, F, t, h, tableau="rk3", **kw),
        "rk_rk4": lambda Y, F, t, h: rk_bug_step(Y, F, t, h, **kw),
        "rk_rk4_clamped": lambda Y, F, t, h: rk_bug_step(Y, F, t, h, clamp_stages=True,
                                                         **kw),
    }
    return steps[name]


def _run(step: Callable, prob, h: float, T: float):
    """``round(T / h)`` steps from ``prob.Y0``: the approximation of ``A(T)``."""
    Y = prob.Y0
    for k in range(int(round(T / h))):
        Y = step(Y, prob.F, k * h, h)
    return Y


def _error(Y, ref: np.ndarray) -> float:
    """Relative Frobenius error ``||Y - ref|| / ||ref||``."""
    return float(np.linalg.norm(Y.to_dense() - ref) / np.linalg.norm(ref))


def _problem(which: str, seed: int):
    """The problem of a convergence panel and the truncation arguments of its steps."""
    if which == "preserving":
        prob = CubicFlow(np.random.default_rng(seed), 24, 20, np.geomspace(1.0, 1e-3, 4))
        return prob, dict(tol=0.0, min_rank=4, max_rank=4)
    prob = SylvesterProblem(np.random.default_rng(seed), 24, 20, 3, source_rank=2,
                            source_in_bases=which == "growing_inside")
    return prob, dict(tol=1e-10, min_rank=1, max_rank=None)


def integrator_high_order(fast: bool = False, seed: int = 0) -> dict:
    """Orders on a rank-preserving and two rank-growing problems, and robustness.

    See the module docstring for the problems and methods; seed 0 gives the problems of
    ``tests/test_high_order_orders.py`` (``"cubic"``, ``"source_outside"``,
    ``"source_inside"``), whose docstrings quote the same numbers.

    Parameters
    ----------
    fast : bool, default False
        Three step sizes (0.2, 0.1, 0.05) and three values of ``sigma_r`` instead of four
        (0.2 ... 0.025) and six (1e-2 ... 1e-12).
    seed : int, default 0
        Seed of the random problems.

    Returns
    -------
    dict
        ``"preserving"``, ``"growing_outside"``, ``"growing_inside"``: dicts with ``h``
        ((k,) ndarray), ``errors`` (name -> (k,) relative errors), ``slopes`` (name ->
        :func:`~lowrank_ref.checks.fit_slope`), ``ranks`` (name -> rank at ``T`` for the
        smallest ``h``), ``problem`` (a description), ``T``;
        ``"robustness"``: dict with ``sigma_r`` ((k,) ndarray), ``errors`` (name -> (k,)
        absolute errors), ``h``, ``T``, ``problem``;
        ``labels``, ``expected_order``, ``fast``, ``seed``, ``seconds``.

    Raises
    ------
    TypeError
        ``fast`` not a bool or ``seed`` not an int.

    Examples
    --------
    >>> d = integrator_high_order(fast=True)
    >>> s = d["preserving"]["slopes"]
    >>> bool(1.8 < s["midpoint_3r"] < 2.2), bool(s["rk_rk4"] > 3.5)
    (True, True)
    """
    check_fast_seed(fast, seed)
    start = time.perf_counter()
    T = 1.0
    hs = np.array([0.2, 0.1, 0.05] if fast else [0.2, 0.1, 0.05, 0.025])
    sigmas = np.array([1e-2, 1e-6, 1e-12] if fast else [1e-2, 1e-4, 1e-6, 1e-8, 1e-10,
                                                         1e-12])
    described = {
        "preserving": "rank-preserving: CubicFlow 24 x 20 (nonlinear),\nsingular values "
                      "1 ... 1e-3, fixed rank 4",
        "growing_outside": "rank-growing: Sylvester 24 x 20, rank-2 source outside the "
                           "initial bases,\nrank 3 -> 13, tol = 1e-10",
        "growing_inside": "rank-growing: Sylvester 24 x 20, rank-2 source inside the "
                          "initial bases,\nrank 3 -> 10, tol = 1e-10",
    }
    out = {}
    for which, names in _CONVERGENCE.items():
        prob, kw = _problem(which, seed)
        ref = prob.exact(T)
        errors, slopes, ranks = {}, {}, {}
        for name in names:
            runs = [_run(_step(name, kw), prob, h, T) for h in hs]
            errors[name] = np.array([_error(Y, ref) for Y in runs])
            slopes[name] = fit_slope(hs, errors[name])
            ranks[name] = runs[-1].rank
        out[which] = dict(h=hs, errors=errors, slopes=slopes, ranks=ranks,
                          problem=described[which], T=T)
    rob: Dict[str, list] = {name: [] for name in _ROBUSTNESS}
    for s in sigmas:
        prob = CubicFlow(np.random.default_rng(seed), 24, 20, [1.0, 0.5, 0.25, s])
        ref = prob.exact(T)
        for name in _ROBUSTNESS:
            Y = _run(_step(name, dict(tol=0.0, min_rank=4, max_rank=4)), prob, 0.1, T)
            rob[name].append(float(np.linalg.norm(Y.to_dense() - ref)))
    out["robustness"] = dict(sigma_r=sigmas, errors={k: np.array(v) for k, v in rob.items()},
                             h=0.1, T=T, problem="robustness: CubicFlow 24 x 20, singular "
                             "values 1, 0.5, 0.25, sigma_r,\nfixed rank 4")
    out.update(labels=dict(HIGH_ORDER_LABELS), expected_order=dict(HIGH_ORDER_EXPECTED),
               fast=bool(fast), seed=int(seed), seconds=time.perf_counter() - start)
    return out
