"""Rank margins of the golden cases, and the choice of their truncation tolerances.

A rank decided by a truncation is compared exactly, so a case must say how far its
threshold ``theta`` is from changing that rank (the *margin*, relative to ``||S_hat||_F``):
a rank decision finer than a dtype resolves is skipped in that dtype. The margins are taken
from the singular values every truncation of the reference run is made from
(:func:`truncated_spectra`).

WORK IN PROGRESS: the rank rule below is replaced by the package's in the next step.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional

import numpy as np

from .measure import singular_values
from .reference import ADAPTIVE, DLRT, HIGHER_ORDER, layer_indices, reference, run_integrator

__all__ = ["threshold", "rank_margin", "rule_rank", "pick_tol", "truncated_spectra",
           "rank_margins"]

_TINY = np.finfo(np.float64).tiny


def _tails(sigma):
    s2 = np.asarray(sigma, dtype=np.float64) ** 2
    return np.sqrt(np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]]))


def threshold(sigma, tol, relative) -> float:
    return tol * float(np.linalg.norm(sigma)) if relative else float(tol)


def rank_margin(sigma, theta, min_rank, max_rank) -> Optional[float]:
    """Distance of ``theta`` from the tails that decide the clamped rank, / ||sigma||."""
    sigma = np.asarray(sigma, dtype=np.float64)
    k = len(sigma)
    tail = _tails(sigma)
    r0 = int(np.argmax(tail <= theta))
    hi = min(max_rank, k)

    def clamp(r):
        return min(max(r, min_rank), hi)

    margin = math.inf
    if r0 >= 1 and clamp(r0 - 1) != clamp(r0):
        margin = min(margin, abs(tail[r0 - 1] - theta))
    if r0 < k and clamp(r0 + 1) != clamp(r0):
        margin = min(margin, abs(tail[r0] - theta))
    if math.isinf(margin):
        return None
    return float(margin / max(tail[0], _TINY))


def rule_rank(sigma, theta, rule="correct") -> int:
    sigma = np.asarray(sigma, dtype=np.float64)
    k = len(sigma)
    if rule == "correct":
        ok = _tails(sigma)[:k] <= theta
    elif rule == "exclude_last":
        ok = _tails(sigma[:-1]) < theta                 # norm(sigma[j:k-1]), j < k
    else:
        ok = np.sqrt(_tails(sigma)[:k] ** 2 + sigma[-1] ** 2) <= theta
    return int(np.argmax(ok)) if ok.any() else k


def pick_tol(sigmas, relative, min_rank, max_ranks, targets, distinguish=None):
    """A round tolerance from a log grid that gives the unclamped rank ``targets[i]`` for
    every spectrum ``sigmas[i]`` with the largest smallest margin (target None: any rank
    strictly between 1 and the largest possible, i.e. a genuine cut; "any": any rank).
    ``distinguish``: a wrong tail rule (see :func:`rule_rank`) that must give another
    rank for ``sigmas[0]``."""
    best, best_m = None, -1.0
    for tol in np.logspace(-10, 0, 1001):
        tol = float(f"{tol:.3g}")
        ms = []
        for i, (s, hi, t) in enumerate(zip(sigmas, max_ranks, targets)):
            th = tol * float(np.linalg.norm(s))
            hi_k = min(hi, len(s))
            r0 = rule_rank(s, th)
            r = min(max(r0, min_rank), hi_k)
            if (isinstance(t, int) and r0 != t) or (t is None and not 1 < r0 < hi_k):
                break
            if i == 0 and distinguish is not None and \
                    min(max(rule_rank(s, th, distinguish), min_rank), hi_k) == r:
                break
            m = rank_margin(s, th, min_rank, hi)
            ms.append(math.inf if m is None else m)
        else:
            if min(ms) > best_m:
                best, best_m = tol, min(ms)
    if best is None:
        raise RuntimeError(f"no tolerance gives ranks {targets}")  # pragma: no cover
    if not relative:   # the grid is relative to ||sigma_0||: make it absolute
        best = float(f"{best * float(np.linalg.norm(sigmas[0])):.3g}")
    return best


def truncated_spectra(family: str, inputs: Mapping) -> list:
    """The singular values of every core a rank-adaptive case truncates, in order.

    * Integrator families: the cores the reference step hands to its ``observer``
      (:func:`lowrank_ref.integrators.adaptive_bug_step` and the others call
      ``observer(S_hat)`` before each truncation): one for ``adaptive_bug_step`` and
      ``parallel_bug_step``, the half step's and the result's for ``midpoint_bug_step``,
      every stage's and the result's for ``rk_bug_step``.
    * DLRT families: the optimisers have no observer; the reference is re-run with
      ``tau = 0`` and ``max_rank`` the largest layer size, which truncates nothing but exact
      zeros (the cores do not depend on ``tau``: every layer's comes from the gradient at
      the start point). One spectrum per low-rank layer.
    """
    if family in ADAPTIVE:
        full = dict(inputs, tol=0.0, relative=False, min_rank=1,
                    max_rank=min(inputs["U0"].shape[0], inputs["V0"].shape[0]))
        return [singular_values(reference(family)(**full)["S"])]
    if family in HIGHER_ORDER:
        cores = []
        run_integrator(family, inputs, observer=cores.append)
        return [singular_values(np.asarray(S, dtype=np.float64)) for S in cores]
    if family in DLRT:
        full = dict(inputs, tau=0.0, min_rank=1,
                    max_rank=max(np.shape(v)[0] for v in inputs.values() if np.ndim(v) == 2))
        out = reference(family)(**full)
        return [singular_values(out[f"S{i}"]) for i in layer_indices(inputs)
                if f"U{i}" in inputs]
    raise ValueError(f"{family} has no rank-adaptive truncation")  # pragma: no cover


def rank_margins(family: str, inputs: Mapping) -> dict:
    """Rank quantity -> margin (None where no truncation decides the rank)."""
    if family == "truncate":
        sigma = singular_values(inputs["S_hat"])
        th = threshold(sigma, inputs["tol"], inputs["relative"])
        return {"rank": rank_margin(sigma, th, inputs["min_rank"], inputs["max_rank"])}
    if family in ADAPTIVE:
        (sigma,) = truncated_spectra(family, inputs)
        th = threshold(sigma, inputs["tol"], inputs["relative"])
        return {"rank": rank_margin(sigma, th, inputs["min_rank"], inputs["max_rank"])}
    if family in HIGHER_ORDER:
        found = []
        for sigma in truncated_spectra(family, inputs):
            m = rank_margin(sigma, threshold(sigma, inputs["tol"], inputs["relative"]),
                            inputs["min_rank"], inputs["max_rank"])
            if m is not None:
                found.append(m)
        return {"rank": min(found) if found else None}
    if family in DLRT and inputs["method"] == "adaptive":
        idx = [i for i in layer_indices(inputs) if f"U{i}" in inputs]
        hi = inputs["max_rank"]
        return {f"rank[{i}]": rank_margin(s, threshold(s, inputs["tau"], True),
                                          min(inputs["min_rank"], hi), hi)
                for i, s in zip(idx, truncated_spectra(family, inputs))}
    return {}
