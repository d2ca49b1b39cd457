"""Numerical experiments behind the integrator figures (numbers only, no plotting).

Two experiments on the matrix ODE problems of :mod:`lowrank_ref.odes`, each returning a
plain dict that :mod:`lowrank_ref.figures` draws and the tests check:

* :func:`integrator_convergence` -- error at the final time against the step size ``h``
  for the five integrators of :mod:`lowrank_ref.integrators`, with the observed orders
  fitted by :func:`lowrank_ref.checks.fit_slope`:

  - BUG [CL22] and parallel BUG [CKL24] (clamped to the fixed rank ``r`` by
    ``min_rank = max_rank = r``, ``tol = 0``) on the Sylvester flow
    :class:`~lowrank_ref.odes.SylvesterProblem` (problem (b)), against its exact solution
    ``A(T) = expm(T W1) A0 expm(T W2)^T``: first order. The projector-splitting
    integrator (KSL) with exactly solved sub-flows is exact on this problem, so it shows no
    order there. That is not the exactness theorem of [LO14] (which is about data ``A(t)``
    of rank r given as ``dA/dt``): it follows from the linear structure ``W1 Y + Y W2^T``
    (the K-step gives ``range(U1) = e^{h W1} range(U0)`` and the backward S-step cancels
    the rest; see :class:`~lowrank_ref.odes.SylvesterProblem`).
  - KSL Lie and KSL Strang ([LO14], Lubich & Oseledets 2014) and the rank-adaptive BUG
    [CKL22] (clamped to rank ``r``) on the toy problem of [CL22]
    (:class:`~lowrank_ref.odes.ToyProblem`, data form), against a reference DLRA
    solution (KSL Strang with a step 8 times smaller than the smallest ``h``): first,
    second and first order.

  Why the rank-adaptive BUG is not measured on the Sylvester flow: there its augmented
  basis ``[U0, K1]`` contains the exact range ``e^{h W1} range(U0)`` of ``A(t1)`` (the
  K-step of a linear problem is exact up to rk4), and it is observed to converge with
  order 2 -- better than the first order of [CKL22], but not the order the figure is
  meant to show. Likewise the parallel BUG shows an order near 2 with a large constant
  on the toy problem in this range of ``h`` (pre-asymptotic); on the Sylvester flow it
  is plainly first order.

* :func:`integrator_robustness` -- error at ``t = 1`` on the toy problem of [CL22]
  (Ceruti & Lubich 2022; singular values ``2^-j e^t``), for a sweep of ranks ``r`` so that
  the smallest retained singular value ``sigma_r = 2^-r`` spans many decades: BUG [CL22]
  stays at the best rank-r error (its error bound does not depend on ``sigma_r``), while
  the same Runge-Kutta method applied to the factor ODEs of [KL07] (Koch & Lubich 2007),
  which contain ``S^{-1}``, loses accuracy and then diverges once ``h`` is no longer small
  compared with ``sigma_r``.

The second- and higher-order integrators have their own experiment,
:func:`lowrank_ref.figures.high_order_experiments.integrator_high_order`.

All sub-flows of :func:`integrator_convergence` and :func:`integrator_robustness` are
solved with the classical Runge-Kutta method (``inner="rk4"``), so the inner solver's
error (order 4) does not hide the integrators' own splitting error.
``fast=True`` gives tiny sizes (well under a second each) for the tests.

References
----------
[KL07] O. Koch, C. Lubich. Dynamical low-rank approximation. SIAM J. Matrix Anal. Appl.
29 (2007).
[LO14] C. Lubich, I. V. Oseledets. A projector-splitting integrator for dynamical low-rank
approximation. BIT 54 (2014).
[CL22] G. Ceruti, C. Lubich. An unconventional robust integrator for dynamical low-rank
approximation. BIT 62 (2022).
[CKL22] G. Ceruti, J. Kusch, C. Lubich. A rank-adaptive robust integrator for dynamical
low-rank approximation. BIT 62 (2022).
[CKL24] G. Ceruti, J. Kusch, C. Lubich. A parallel rank-adaptive integrator for dynamical
low-rank approximation. SIAM J. Sci. Comput. (2024).
"""
from __future__ import annotations

import time
from typing import Callable, Dict

import numpy as np

from ..checks import fit_slope
from ..integrators import (integrate, adaptive_bug_step, bug_step, parallel_bug_step,
                          projector_splitting_step)
from ..lowrank import LowRank
from ..odes import SylvesterProblem, ToyProblem

__all__ = ["INTEGRATOR_LABELS", "EXPECTED_ORDER", "integrator_convergence",
           "integrator_robustness", "naive_factor_ode", "check_fast_seed"]

#: Display names of the integrators, in plotting order.
INTEGRATOR_LABELS = {
    "ksl_lie": "KSL Lie [LO14]",
    "ksl_strang": "KSL Strang [LO14]",
    "bug": "BUG [CL22]",
    "adaptive_bug": "adaptive BUG, fixed r [CKL22]",
    "parallel_bug": "parallel BUG, fixed r [CKL24]",
}

#: The order each integrator has in theory ([LO14], [CL22], [CKL22], [CKL24]).
EXPECTED_ORDER = {"ksl_lie": 1, "ksl_strang": 2, "bug": 1, "adaptive_bug": 1,
                  "parallel_bug": 1}

#: Which problem each integrator is measured on in :func:`integrator_convergence`.
CONVERGENCE_PROBLEM = {"ksl_lie": "toy", "ksl_strang": "toy", "bug": "sylvester",
                       "adaptive_bug": "toy", "parallel_bug": "sylvester"}


def _names_on(problem: str) -> list:
    return [k for k in INTEGRATOR_LABELS if CONVERGENCE_PROBLEM[k] == problem]


def check_fast_seed(fast, seed) -> None:
    """TypeError unless ``fast`` is a bool and ``seed`` an int (the experiments' arguments)."""
    if not isinstance(fast, (bool, np.bool_)):
        raise TypeError(f"fast must be a bool, got {type(fast).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")


def _steppers(r: int, substeps: int = 1) -> Dict[str, Callable]:
    """name -> ``step(Y, F, t, h)``; the rank-adaptive ones clamped to rank ``r``."""
    kw = dict(inner="rk4", substeps=substeps)
    fixed = dict(kw, tol=0.0, min_rank=r, max_rank=r)
    return {
        "ksl_lie": lambda Y, F, t, h: projector_splitting_step(Y, F, t, h, order=1, **kw),
        "ksl_strang": lambda Y, F, t, h: projector_splitting_step(Y, F, t, h, order=2, **kw),
        "bug": lambda Y, F, t, h: bug_step(Y, F, t, h, **kw),
        "adaptive_bug": lambda Y, F, t, h: adaptive_bug_step(Y, F, t, h, **fixed),
        "parallel_bug": lambda Y, F, t, h: parallel_bug_step(Y, F, t, h, **fixed),
    }


def _run(step: Callable, Y: LowRank, F: Callable, h: float, nsteps: int) -> LowRank:
    """``nsteps`` steps of size ``h`` from ``t = 0``."""
    for k in range(nsteps):
        Y = step(Y, F, k * h, h)
    return Y


def _nsteps(T: float, h: float) -> int:
    n = int(round(T / h))
    if not np.isclose(n * h, T, rtol=1e-12, atol=0.0):
        raise ValueError(f"T / h must be an integer, got T={T!r}, h={h!r}")
    return n


def integrator_convergence(fast: bool = False, seed: int = 0) -> dict:
    """Error at the final time against the step size for each integrator, and its order.

    Two problems, chosen so that each integrator's order is visible (see the module
    docstring for why each integrator is measured where it is):

    * ``"sylvester"`` -- :class:`~lowrank_ref.odes.SylvesterProblem`
      ``dY/dt = W1 Y + Y W2^T`` from a rank-r ``Y0`` (problem (b)); the exact solution
      stays rank r, so the error ``||Y_h(T) - A(T)||_F / ||A(T)||_F`` is the integrator's
      own error. BUG [CL22] and parallel BUG [CKL24] (clamped to rank r) are first order
      here; KSL is exact on it (not shown; the reason is in the module docstring).
    * ``"toy"`` -- the toy problem of [CL22] (:class:`~lowrank_ref.odes.ToyProblem`, data
      form ``F(t, A) = dA/dt(t)``), started from the best rank-r approximation of ``A(0)``.
      KSL is not exact here; errors are measured against the DLRA solution, computed by
      KSL Strang with step ``h_min / 8``: ``||Y_h(T) - Y_ref(T)||_F / ||Y_ref(T)||_F``.
      KSL Lie is first and KSL Strang second order ([LO14], Lubich & Oseledets 2014); the
      rank-adaptive BUG [CKL22] (clamped to rank r) first order.

    All sub-flows are solved by one classical Runge-Kutta step (``inner="rk4"``), whose
    O(h^4) error is far below the integrators' own.

    Parameters
    ----------
    fast : bool, default False
        Tiny sizes (a fraction of a second) instead of the figure's (about 8 s).
    seed : int, default 0
        Seed of the random problems.

    Returns
    -------
    dict
        ``h`` : dict name -> (k,) ndarray of step sizes;
        ``errors`` : dict name -> (k,) ndarray of relative errors at ``T``;
        ``slopes`` : dict name -> float, fitted by :func:`~lowrank_ref.checks.fit_slope`;
        ``expected_order`` : dict name -> int;
        ``problem`` : dict name -> ``"sylvester"`` or ``"toy"``;
        ``problems`` : dict key -> dict with ``title``, ``error`` (what is measured),
        ``m``, ``n``, ``r``, ``T``;
        ``labels`` : dict name -> display name;
        ``names`` : list of the integrator names, in plotting order;
        ``fast``, ``seed``, ``seconds``.

    Raises
    ------
    TypeError
        ``fast`` not a bool or ``seed`` not an int.

    Examples
    --------
    >>> d = integrator_convergence(fast=True)
    >>> sorted(d["slopes"]) == sorted(EXPECTED_ORDER)
    True
    >>> bool(0.8 < d["slopes"]["bug"] < 1.3), bool(1.7 < d["slopes"]["ksl_strang"] < 2.4)
    (True, True)
    """
    check_fast_seed(fast, seed)
    start = time.perf_counter()
    if fast:
        syl = dict(m=20, n=15, r=3, T=0.5, hs=[0.1, 0.05, 0.025])
        toy = dict(m=20, n=20, r=4, T=0.5, hs=[0.1, 0.05, 0.025], ref_factor=4)
    else:
        syl = dict(m=60, n=40, r=5, T=1.0, hs=[0.1, 0.05, 0.025, 0.0125, 0.00625])
        toy = dict(m=100, n=100, r=8, T=1.0, hs=[0.1, 0.05, 0.025, 0.0125, 0.00625],
                   ref_factor=8)
    rng = np.random.default_rng(seed)
    out: dict = {"h": {}, "errors": {}, "slopes": {}, "expected_order": dict(EXPECTED_ORDER),
                 "problem": dict(CONVERGENCE_PROBLEM), "labels": dict(INTEGRATOR_LABELS),
                 "names": list(INTEGRATOR_LABELS), "problems": {}, "fast": bool(fast),
                 "seed": int(seed)}

    # --- Sylvester problem (b): BUG and parallel BUG against the exact solution
    prob = SylvesterProblem(rng, syl["m"], syl["n"], syl["r"])
    A_T = prob.exact(syl["T"])
    steps = _steppers(syl["r"])
    hs = np.array(syl["hs"])
    for name in _names_on("sylvester"):
        errs = [np.linalg.norm(_run(steps[name], prob.Y0, prob.F, h,
                                    _nsteps(syl["T"], h)).to_dense() - A_T)
                / np.linalg.norm(A_T) for h in hs]
        out["h"][name], out["errors"][name] = hs.copy(), np.array(errs)
    out["problems"]["sylvester"] = dict(
        title=(f"Sylvester flow, {syl['m']}x{syl['n']}, rank {syl['r']}, T = {syl['T']:g}"),
        error="||Y_h(T) - A(T)||_F / ||A(T)||_F",
        reference="exact solution A(T) (rank r)",
        m=syl["m"], n=syl["n"], r=syl["r"], T=syl["T"])

    # --- toy problem of [CL22]: KSL Lie / Strang, adaptive BUG against a fine reference
    toyp = ToyProblem(rng, toy["m"], toy["n"], form="data")
    Y0 = toyp.best_approximation(0.0, toy["r"])
    steps = _steppers(toy["r"])
    hs = np.array(toy["hs"])
    h_ref = hs[-1] / toy["ref_factor"]
    Y_ref = _run(steps["ksl_strang"], Y0, toyp.F, h_ref, _nsteps(toy["T"], h_ref)).to_dense()
    for name in _names_on("toy"):
        errs = [np.linalg.norm(_run(steps[name], Y0, toyp.F, h,
                                    _nsteps(toy["T"], h)).to_dense() - Y_ref)
                / np.linalg.norm(Y_ref) for h in hs]
        out["h"][name], out["errors"][name] = hs.copy(), np.array(errs)
    out["problems"]["toy"] = dict(
        title=(f"toy problem of [CL22], {toy['m']}x{toy['n']}, rank {toy['r']}, "
               f"T = {toy['T']:g}"),
        error="||Y_h(T) - Y_ref(T)||_F / ||Y_ref(T)||_F",
        reference=f"DLRA solution Y_ref: KSL Strang with h = {h_ref:g}",
        m=toy["m"], n=toy["n"], r=toy["r"], T=toy["T"], h_ref=float(h_ref))

    for name in out["names"]:
        out["slopes"][name] = fit_slope(out["h"][name], out["errors"][name])
    out["seconds"] = time.perf_counter() - start
    return out


def naive_factor_ode(prob: ToyProblem, r: int, h: float, nsteps: int,
                     inner: str = "rk4") -> LowRank:
    """Integrate the factor ODEs of [KL07] directly (the non-robust scheme).

    With ``Y = U S V^T`` and ``F = F(t, Y)`` ([KL07], Koch & Lubich 2007)::

        dU/dt = (I - U U^T) F V S^{-1},
        dS/dt = U^T F V,
        dV/dt = (I - V V^T) F^T U S^{-T},

    solved as one system for ``(U, V, S)`` by ``nsteps`` steps of ``inner`` with step
    ``h`` (the same inner solver as the robust integrators). The ``S^{-1}`` makes the
    system stiff when ``sigma_r(S)`` is small compared with ``h ||F||``: the step-size
    restriction that the projector-splitting and BUG integrators do not have ([KLW16],
    [CL22]).

    Parameters
    ----------
    prob : ToyProblem
        Started from its best rank-``r`` approximation at ``t = 0``.
    r : int
    h : float, > 0
    nsteps : int
    inner : {"euler", "rk4"}, default "rk4"

    Returns
    -------
    LowRank or None
        ``(U, S, V)`` at ``t = nsteps h`` (``U``, ``V`` only approximately orthonormal),
        or ``None`` if the solution became non-finite or ``S`` singular (diverged).

    Examples
    --------
    >>> prob = ToyProblem(np.random.default_rng(0), 20, form="data")
    >>> Y = naive_factor_ode(prob, 3, 0.05, 20)
    >>> err = np.linalg.norm(Y.to_dense() - prob.exact(1.0))
    >>> bool(err < 1.5 * prob.best_error(1.0, 3))
    True
    """
    m, n = prob.m, prob.n
    U, S, V = prob.best_approximation(0.0, r)

    def f(t, X):
        U, V, S = X[:m], X[m:m + n], X[m + n:]
        Ft = prob.F(t, (U @ S) @ V.T)
        Sinv = np.linalg.inv(S)
        FV = Ft @ V
        FtU = Ft.T @ U
        return np.concatenate([(FV - U @ (U.T @ FV)) @ Sinv,
                               (FtU - V @ (V.T @ FtU)) @ Sinv.T,
                               U.T @ FV])

    X = np.concatenate([U, V, S])
    with np.errstate(all="ignore"):
        for k in range(nsteps):
            try:
                X = integrate(f, X, k * h, h, inner, 1)
            except (ValueError, np.linalg.LinAlgError):   # F rejects a non-finite state
                return None
            if not np.all(np.isfinite(X)):
                return None
    return LowRank(X[:m], X[m + n:], X[m:m + n])


def integrator_robustness(fast: bool = False, seed: int = 0) -> dict:
    """Error at ``t = 1`` against the smallest retained singular value: BUG vs naive.

    The toy problem of [CL22] (Ceruti & Lubich 2022) in data form,
    ``A(t) = e^{t W1} e^t D e^{t W2}^T`` with singular values ``e^t 2^-j``, is integrated
    from the best rank-r approximation of ``A(0)`` to ``T = 1`` with step ``h`` for a sweep
    of ranks ``r``; the smallest retained singular value ``sigma_r(A(0)) = 2^-r`` then spans
    many decades. Compared:

    * BUG [CL22] (rk4 sub-flows): its error bound is ``c1 eps + c2 h`` with constants
      independent of ``sigma_r``, so it follows the best rank-r error
      ``e 2^-r sqrt((1 - 4^{r-N}) / 3)``;
    * the factor ODEs of [KL07] (Koch & Lubich 2007), :func:`naive_factor_ode`, with the
      same rk4 and step: accurate while ``h`` is small compared with ``sigma_r``, then
      inaccurate and finally divergent (recorded as ``inf``).

    The ranks stop at 28 (``sigma_r ~ 4e-9``) in normal mode: beyond, the error of one rk4
    step per sub-flow (about ``1e-9`` absolute at ``h = 0.01``, independent of ``sigma_r``)
    reaches the best rank-r error itself, and BUG's ratio to it grows (2.3 at r = 30,
    back to 1.3 with 4 rk4 substeps): the inner solver's error, not a loss of robustness.

    Parameters
    ----------
    fast : bool, default False
        Tiny sizes (a fraction of a second) instead of the figure's (about 4 s).
    seed : int, default 0

    Returns
    -------
    dict
        ``ranks`` : (k,) int ndarray;
        ``sigma_min`` : (k,) ndarray, ``sigma_r(A(0)) = 2^-r`` (the minimum over ``[0, T]``);
        ``sigma_min_T`` : (k,) ndarray, ``sigma_r(A(T)) = e^T 2^-r``;
        ``best`` : (k,) ndarray, best rank-r error at ``T`` (Frobenius);
        ``errors`` : dict ``"bug"``, ``"naive"`` -> (k,) ndarray of Frobenius errors
        ``||Y(T) - A(T)||_F`` (``inf`` where the naive scheme diverged);
        ``diverged`` : (k,) bool ndarray (naive scheme);
        ``labels`` : dict name -> display name;
        ``N``, ``h``, ``T``, ``norm_A_T`` (``||A(T)||_F``), ``fast``, ``seed``, ``seconds``.

    Raises
    ------
    TypeError
        ``fast`` not a bool or ``seed`` not an int.

    Examples
    --------
    >>> d = integrator_robustness(fast=True)
    >>> bool(np.all(d["errors"]["bug"] <= 1.5 * d["best"]))
    True
    >>> bool(d["diverged"][-1] or d["errors"]["naive"][-1] > 10 * d["best"][-1])
    True
    """
    check_fast_seed(fast, seed)
    start = time.perf_counter()
    if fast:
        N, h, T, ranks = 30, 0.05, 1.0, [2, 4, 8, 12, 16]
    else:
        N, h, T, ranks = 100, 0.01, 1.0, list(range(2, 29, 2))
    prob = ToyProblem(np.random.default_rng(seed), N, form="data")
    nsteps = _nsteps(T, h)
    A_T = prob.exact(T)
    bug = _steppers(1)["bug"]
    err_bug, err_naive, best = [], [], []
    for r in ranks:
        Y = _run(bug, prob.best_approximation(0.0, r), prob.F, h, nsteps)
        err_bug.append(np.linalg.norm(Y.to_dense() - A_T))
        Z = naive_factor_ode(prob, r, h, nsteps)
        if Z is None:
            err_naive.append(np.inf)
        else:
            with np.errstate(all="ignore"):
                e = np.linalg.norm(Z.to_dense() - A_T)
            err_naive.append(e if np.isfinite(e) else np.inf)
        best.append(prob.best_error(T, r))
    ranks_a = np.array(ranks)
    err_naive = np.array(err_naive)
    return {
        "ranks": ranks_a,
        "sigma_min": 2.0 ** -ranks_a.astype(float),
        "sigma_min_T": np.exp(T) * 2.0 ** -ranks_a.astype(float),
        "best": np.array(best),
        "errors": {"bug": np.array(err_bug), "naive": err_naive},
        "diverged": ~np.isfinite(err_naive),
        "labels": {"bug": "BUG [CL22]",
                   "naive": "naive: factor ODEs of [KL07] (same rk4, same h)",
                   "best": "best rank-r error"},
        "N": N, "h": h, "T": T, "norm_A_T": float(np.linalg.norm(A_T)),
        "fast": bool(fast), "seed": int(seed),
        "seconds": time.perf_counter() - start,
    }
