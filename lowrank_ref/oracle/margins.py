"""Rank margins of the golden cases, and the choice of their truncation tolerances.

The rank a truncation keeps is decided by this package's rule,
:func:`lowrank_ref.truncation.truncation_rank` (written once, there): the smallest ``r``
whose discarded tail ``||sigma[r:]||_2`` is ``<= theta``, clamped to ``[min_rank,
min(max_rank, k)]``. A rank is compared exactly, so each case also says how far its
threshold ``theta`` is from changing that rank -- its *margin* (:func:`rank_margin`,
relative to ``||sigma||_2 = ||S_hat||_F``): a rank decision finer than a dtype resolves is
skipped in that dtype. Margins are taken from the singular values every truncation of the
reference run is made from (:func:`truncated_spectra`).

Cases named after a published truncation bug (docs/design.md, section "Known bugs of
other implementations") get a tolerance at which that bug changes the rank. The bugs are
modelled by :func:`published_bug_rank`: models of *someone else's* code, used only to
choose such tolerances, never as this package's rule.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from ..truncation import truncation_rank
from .measure import singular_values
from .reference import (DLRT, DLRT_PARALLEL, DLRT_STATE, RANK_ADAPTIVE, layer_indices,
                        reference, run_dlrt, run_integrator)

__all__ = ["PUBLISHED_BUGS", "threshold", "rank_margin", "published_bug_rank", "pick_tol",
           "truncated_spectra", "truncation_clamps", "rank_margins", "pick_tau_with_rank_change"]

#: The truncation bugs of the published DLRT code that :func:`published_bug_rank` models.
PUBLISHED_BUGS = ("exclude_last", "double", "last_index_untested")

_TINY = np.finfo(np.float64).tiny

#: Candidate tolerances, relative to ``||sigma||``: a log grid below 1 (a relative
#: tolerance of 1 or more discards everything, which no case is meant to test).
_TOL_GRID = np.logspace(-10, 0, 1001)[:-1]


def threshold(sigma, tol: float, relative: bool) -> float:
    """The threshold ``theta`` of the rule: ``tol * ||sigma||_2`` if ``relative``, else
    ``tol`` (as in :func:`lowrank_ref.truncation.truncation_rank`)."""
    return tol * float(np.linalg.norm(sigma)) if relative else float(tol)


def _tail_norms(sigma) -> np.ndarray:
    """``tails[j] = ||sigma[j:]||_2`` for ``j = 0..k`` (``tails[k] = 0``)."""
    s2 = np.asarray(sigma, dtype=np.float64) ** 2
    return np.sqrt(np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]]))


def rank_margin(sigma, theta: float, min_rank: int, max_rank: int) -> Optional[float]:
    """How far ``theta`` is from changing the clamped rank, relative to ``||sigma||_2``.

    Moving ``theta`` across the tail ``||sigma[j:]||`` moves the unclamped rank between
    ``j`` and ``j + 1``, which changes the clamped rank iff ``min_rank <= j <
    min(max_rank, k)``. The margin is the smallest distance from ``theta`` to such a tail,
    or None if there is none (the clamp alone decides the rank, e.g. ``min_rank =
    max_rank``).

    Parameters
    ----------
    sigma : (k,) ndarray
        Singular values, descending.
    theta : float
        The threshold (absolute).
    min_rank, max_rank : int

    Returns
    -------
    float or None

    Examples
    --------
    >>> s = np.array([3.0, 2.0, 1.0, 0.01])     # tails 3.74, 2.24, 1.00005, 0.01
    >>> round(rank_margin(s, 0.05, 1, 4) * float(np.linalg.norm(s)), 6)   # 0.05 - 0.01
    0.04
    >>> rank_margin(s, 0.05, 2, 2) is None
    True
    """
    tails = _tail_norms(sigma)
    decisive = tails[min_rank:min(max_rank, len(tails) - 1)]
    if decisive.size == 0:
        return None
    return float(np.min(np.abs(decisive - theta)) / max(tails[0], _TINY))


def published_bug_rank(sigma, theta: float, bug: str) -> int:
    """The unclamped rank the published DLRT truncation loop would keep, with one bug.

    A model of someone else's code (a mutant), not this package's rule. The published loop
    is ``for j in range(2r - 1): if norm(s[j : 2r - 1]) < theta: r = j; break`` on the
    ``k = 2r`` singular values of the augmented core:

    * ``"exclude_last"``: the tail ``s[j : k-1]`` never contains the last value (the loop
      keeps too few directions where the last value matters);
    * ``"double"``: the last value counted twice in the tail (too many kept);
    * ``"last_index_untested"``: the loop never tests ``j = k - 1``, so when no earlier
      index meets the tolerance the rank stays at the old ``r = k // 2`` instead of
      growing (the tail here otherwise correct, to isolate this bug).

    Examples
    --------
    >>> s = np.array([3.0, 2.0, 1.0, 0.01])
    >>> [published_bug_rank(s, 0.05, bug) for bug in PUBLISHED_BUGS]   # correct: 3
    [3, 3, 2]
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    k = len(sigma)
    tails = _tail_norms(sigma)[:k]
    if bug == "exclude_last":
        met = _tail_norms(sigma[:-1]) < theta          # ||sigma[j : k-1]||, j < k
    elif bug == "double":
        met = np.sqrt(tails ** 2 + sigma[-1] ** 2) <= theta
    elif bug == "last_index_untested":
        met = tails[:k - 1] <= theta
        return int(np.argmax(met)) if met.any() else k // 2
    else:
        raise ValueError(f"bug must be one of {PUBLISHED_BUGS}, got {bug!r}")
    return int(np.argmax(met)) if met.any() else k


def pick_tol(sigmas, relative: bool, min_rank: int, max_ranks, targets,
             distinguish: Optional[str] = None) -> float:
    """A round tolerance for a case whose truncations see the spectra ``sigmas``.

    From a log grid, the tolerance (relative to ``||sigma||``) with the largest smallest
    margin such that the rank before the clamp is ``targets[i]`` for spectrum ``i`` (an
    int; None: a genuine cut, strictly between 1 and ``min(max_ranks[i], k)``; ``"any"``:
    any rank) and, with ``distinguish`` (one of :data:`PUBLISHED_BUGS`), such that that bug
    keeps another clamped rank than the rule for ``sigmas[0]``. Ranks are this package's
    :func:`~lowrank_ref.truncation.truncation_rank`.

    Returns
    -------
    float
        Relative, or (``relative=False``) converted to an absolute tolerance with
        ``||sigmas[0]||``, rounded to 3 significant digits.
    """
    best, best_m = None, -1.0
    for tol in _TOL_GRID:
        tol = float(f"{tol:.3g}")
        ms = []
        for i, (s, hi, t) in enumerate(zip(sigmas, max_ranks, targets)):
            th = tol * float(np.linalg.norm(s))
            hi_k = min(hi, len(s))
            # tol < 1, so the rule keeps >= 1 value: with min_rank=1 this is the rank
            # before the clamp
            cut = truncation_rank(s, th, relative=False, min_rank=1, check=False)
            r = truncation_rank(s, th, relative=False, min_rank=min_rank, max_rank=hi,
                                check=False)
            if (isinstance(t, int) and cut != t) or (t is None and not 1 < cut < hi_k):
                break
            if i == 0 and distinguish is not None and \
                    min(max(published_bug_rank(s, th, distinguish), min_rank), hi_k) == r:
                break
            m = rank_margin(s, th, min_rank, hi)
            ms.append(np.inf if m is None else m)
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
      (:func:`lowrank_ref.integrators.adaptive_bug_step` and the other rank-adaptive
      steps call ``observer(S_hat)`` before each truncation): one for
      ``adaptive_bug_step``, ``parallel_bug_step``, ``second_order_parallel_bug_step``
      and the ``"4r"`` ``midpoint_bug_step``, the half step's and the result's for the
      ``"3r"`` one, every stage's (2..s) and the result's for ``rk_bug_step``.
    * ``dlrt_parallel_step`` and the trajectory families: the cores the rank-adaptive
      optimisers hand to their ``observer`` (per step, the low-rank layers in order; none
      for the fixed-rank method).
    * The other DLRT families: the reference is re-run with ``tau = 0`` and ``max_rank`` the
      largest layer size, which truncates nothing but exact zeros (the cores do not depend
      on ``tau``: every layer's comes from the gradient at the start point). One spectrum
      per low-rank layer.
    """
    if family in RANK_ADAPTIVE or family in DLRT_PARALLEL + DLRT_STATE:
        cores = []
        if family in RANK_ADAPTIVE:
            run_integrator(family, inputs, observer=cores.append)
        elif inputs["method"] != "fixed":
            run_dlrt(inputs, observer=cores.append)
        return [singular_values(np.asarray(S, dtype=np.float64)) for S in cores]
    if family in DLRT:
        full = dict(inputs, tau=0.0, min_rank=1,
                    max_rank=max(np.shape(v)[0] for v in inputs.values() if np.ndim(v) == 2))
        out = reference(family)(**full)
        return [singular_values(out[f"S{i}"]) for i in layer_indices(inputs)
                if f"U{i}" in inputs]
    raise ValueError(f"{family} has no rank-adaptive truncation")  # pragma: no cover


def truncation_clamps(family: str, inputs: Mapping, count: int) -> list:
    """``[(min_rank, max_rank)]`` of each of the ``count`` truncations of an integrator
    case, in the order of :func:`truncated_spectra`: the case's clamp, except the stages of
    ``rk_bug_step``, which are truncated by the tolerance alone (``[1, min(m, n)]``)."""
    clamp = (inputs["min_rank"], inputs["max_rank"])
    if family == "rk_bug_step":
        full = int(min(np.shape(inputs["U0"])[0], np.shape(inputs["V0"])[0]))
        return [(1, full)] * (count - 1) + [clamp]
    return [clamp] * count


def rank_margins(family: str, inputs: Mapping) -> dict:
    """Rank quantity -> margin (None where no truncation decides the rank); the margin of
    a step with several truncations is the smallest of theirs."""
    if family == "truncate":
        sigma = singular_values(inputs["S_hat"])
        th = threshold(sigma, inputs["tol"], inputs["relative"])
        return {"rank": rank_margin(sigma, th, inputs["min_rank"], inputs["max_rank"])}
    if family in RANK_ADAPTIVE:
        spectra = truncated_spectra(family, inputs)
        found = [rank_margin(s, threshold(s, inputs["tol"], inputs["relative"]), lo, hi)
                 for s, (lo, hi) in zip(spectra,
                                        truncation_clamps(family, inputs, len(spectra)))]
        found = [m for m in found if m is not None]
        return {"rank": min(found) if found else None}
    if family in DLRT and inputs["method"] in ("adaptive", "parallel"):
        idx = [i for i in layer_indices(inputs) if f"U{i}" in inputs]
        hi = inputs["max_rank"]
        out = {}
        # one core per low-rank layer and step, the layers in order: layer idx[k % n]
        for k, s in enumerate(truncated_spectra(family, inputs)):
            q = f"rank[{idx[k % len(idx)]}]"
            m = rank_margin(s, threshold(s, inputs["tau"], True), min(inputs["min_rank"], hi),
                            hi)
            found = [x for x in (out.get(q), m) if x is not None]
            out[q] = min(found) if found else None
        return out
    return {}


#: Candidate tolerances of :func:`pick_tau_with_rank_change`.
_TAU_GRID = np.unique([float(f"{t:.2g}") for t in np.logspace(-4, -0.5, 50)])


def pick_tau_with_rank_change(inputs: Mapping) -> float:
    """The tolerance of a trajectory case (families ``dlrt_momentum_trajectory``,
    ``dlrt_adam_trajectory``) under which the rank of a low-rank layer changes after the
    first step -- a rank change *inside* the trajectory, where a state must be carried
    from one size to another -- with the largest smallest rank margin over all the
    truncations of the trajectory (from a log grid of 2-digit values in [1e-4, 0.32]).

    Raises
    ------
    RuntimeError
        If no tolerance of the grid changes a rank after the first step.
    """
    best, best_m = None, -1.0
    idx = [i for i in layer_indices(inputs) if f"U{i}" in inputs]
    hi = inputs["max_rank"]
    for tau in _TAU_GRID:
        cores = []
        run_dlrt(dict(inputs, tau=float(tau)), observer=cores.append)
        margins, ranks = [], []
        for S in cores:
            s = singular_values(np.asarray(S, dtype=np.float64))
            th = threshold(s, tau, True)
            ranks.append(truncation_rank(s, th, relative=False, min_rank=min(inputs["min_rank"],
                                                                              hi),
                                         max_rank=hi, check=False))
            m = rank_margin(s, th, min(inputs["min_rank"], hi), hi)
            margins.append(np.inf if m is None else m)
        per_step = [ranks[k:k + len(idx)] for k in range(0, len(ranks), len(idx))]
        changed = any(per_step[k] != per_step[k - 1] for k in range(1, len(per_step)))
        if changed and min(margins) > best_m:
            best, best_m = float(tau), min(margins)
    if best is None:
        raise RuntimeError("no tolerance of the grid changes a rank inside the "
                           "trajectory")  # pragma: no cover
    return best
