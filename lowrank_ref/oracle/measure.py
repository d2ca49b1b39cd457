"""The compared quantities: which invariants a case compares, how each error is measured,
and the tolerance of each (its condition number measured by perturbing the inputs).

Factors are unique only up to ``U Q1, Q1^T S Q2, V Q2``, so only invariants are measured,
all in float64 whatever the candidate's dtype (see the table in :mod:`lowrank_ref.oracle`).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np

from ..lowrank import orthonormality_error
from .records import Failure, Tol
from .reference import DLRT, layer_indices

__all__ = ["COND_MAX", "DELTA", "N_PERTURBATIONS", "split_quantity", "lowrank_keys",
           "singular_values", "relative_error", "rank_of", "measure", "quantities",
           "output_problems", "case_size", "perturbed", "case_tolerances"]

#: A quantity whose measured condition number exceeds this is not determined by the
#: inputs (a tie at the cut, a direction carried by a singular value ~1e-12) and is not
#: compared in that case.
COND_MAX = 1.0e5

#: Relative size of the input perturbations used to measure condition numbers.
DELTA = 1.0e-10
#: Number of random perturbations per case.
N_PERTURBATIONS = 2

_TINY = np.finfo(np.float64).tiny
_LOWRANK_QUANTITIES = ("matrix", "singular_values", "projector_U", "projector_V")


def split_quantity(q: str):
    """``"matrix[0]" -> ("matrix", 0)``, ``"matrix" -> ("matrix", None)``.

    Examples
    --------
    >>> split_quantity("rank[1]"), split_quantity("rank")
    (('rank', 1), ('rank', None))
    """
    if q.endswith("]"):
        base, idx = q[:-1].split("[")
        return base, int(idx)
    return q, None


def lowrank_keys(layer):
    """The keys of a low-rank result: ``("U", "S", "V")``, or ``("U0", "S0", "V0")`` for
    layer 0 of a DLRT case."""
    return ("U", "S", "V") if layer is None else (f"U{layer}", f"S{layer}", f"V{layer}")


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _factors(d, layer):
    return tuple(_f64(d[k]) for k in lowrank_keys(layer))


def _dense(U, S, V):
    return (U @ S) @ V.T


def relative_error(a, b) -> float:
    """``||a - b|| / ||b||`` (Frobenius; ``||b||`` bounded below by the smallest float)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), _TINY))


def singular_values(S) -> np.ndarray:
    """Singular values of the core ``S`` (k1, k2), descending (empty for an empty core)."""
    if S.size == 0:
        return np.zeros(0)
    return np.sort(np.linalg.svd(S, compute_uv=False))[::-1]


def rank_of(d, layer) -> int:
    """The rank of a result: ``rank{layer}`` if given, else the number of rows of ``S``."""
    if layer is not None and f"rank{layer}" in d:
        return int(d[f"rank{layer}"])
    return int(np.shape(d[lowrank_keys(layer)[1]])[0])


def measure(q: str, out: Mapping, expected: Mapping, inputs: Mapping):
    """``(error, message)`` of quantity ``q`` of output ``out`` against ``expected``."""
    base, layer = split_quantity(q)
    if base == "rank":
        rc, re_ = rank_of(out, layer), rank_of(expected, layer)
        return float(abs(rc - re_)), f"rank {rc}, expected {re_}"
    if base in ("bias", "weight"):
        key = f"{'b' if base == 'bias' else 'W'}{layer}"
        return relative_error(_f64(out[key]), _f64(expected[key])), f"relative error of {key}"
    keys = lowrank_keys(layer)
    Uc, Sc, Vc = _factors(out, layer)
    if base == "orthonormality":
        eu, ev = orthonormality_error(Uc), orthonormality_error(Vc)
        return max(eu, ev), f"||Q^T Q - I||_F of {keys[0] if eu >= ev else keys[2]}"
    Ue, Se, Ve = _factors(expected, layer)
    if base == "matrix":
        return (relative_error(_dense(Uc, Sc, Vc), _dense(Ue, Se, Ve)),
                "relative Frobenius error of {} @ {} @ {}.T".format(*keys))
    if base == "singular_values":
        sc, se = singular_values(Sc), singular_values(Se)
        k = max(len(sc), len(se))
        sc, se = np.pad(sc, (0, k - len(sc))), np.pad(se, (0, k - len(se)))
        return relative_error(sc, se), "relative error of the singular values"
    if base in ("projector_U", "projector_V"):
        Qc, Qe = (Uc, Ue) if base == "projector_U" else (Vc, Ve)
        if Qc.shape != Qe.shape:
            return math.inf, f"rank differs: {Qc.shape} vs {Qe.shape}"
        which = keys[0 if base == "projector_U" else 2]
        return (float(np.linalg.norm(Qc @ Qc.T - Qe @ Qe.T)),
                f"||P - P_expected||_F of the projector {which} {which}^T")
    if base == "truncation_error":
        U_hat, S_hat, V_hat = (_f64(inputs[k]) for k in ("U_hat", "S_hat", "V_hat"))
        Y_hat = _dense(U_hat, S_hat, V_hat)
        ec = np.linalg.norm(Y_hat - _dense(Uc, Sc, Vc))
        ee = np.linalg.norm(Y_hat - _dense(Ue, Se, Ve))
        return (float(abs(ec - ee) / max(np.linalg.norm(S_hat), _TINY)),
                f"||Y_hat - Y||_F = {ec:.6e}, expected {ee:.6e} (relative to ||S_hat||_F)")
    raise ValueError(f"unknown quantity {q!r}")  # pragma: no cover


def quantities(family: str, inputs: Mapping) -> list:
    """``[(quantity, tolerance key, conditioned?)]`` compared for a case of ``family``
    (before the ill-conditioned ones are left out)."""
    if family in DLRT:
        qs = []
        for i in layer_indices(inputs):
            if f"U{i}" in inputs:
                qs += [(f"rank[{i}]", "exact", False),
                       (f"orthonormality[{i}]", "orthonormality", False)]
                qs += [(f"{b}[{i}]", "step", True) for b in _LOWRANK_QUANTITIES]
            else:
                qs.append((f"weight[{i}]", "step", True))
            qs.append((f"bias[{i}]", "step", True))
        return qs
    qs = [("rank", "exact", False), ("orthonormality", "orthonormality", False)]
    qs += [(b, "step", True) for b in _LOWRANK_QUANTITIES]
    if family == "truncate":
        qs.append(("truncation_error", "truncation", True))
    return qs


def output_problems(out, case) -> list:
    """Structural problems of a candidate's output ``out`` for ``case`` (a missing key, not
    a real array, non-finite entries, inconsistent shapes), as ``"output"`` failures."""
    def fail(msg):
        return Failure(case.name, "output", math.nan, math.nan, msg)

    if not isinstance(out, Mapping):
        return [fail(f"candidate must return a dict, got {type(out).__name__}")]
    missing = [k for k in case.expected if k not in out]
    if missing:
        return [fail(f"missing keys {missing} (expected keys {sorted(case.expected)})")]
    problems = []
    arrays = {}
    for k, e in case.expected.items():
        try:
            a = np.asarray(out[k])
        except Exception as exc:  # noqa: BLE001 - any conversion problem is the candidate's
            problems.append(fail(f"{k}: not convertible to an array ({exc})"))
            continue
        if a.dtype == object or a.dtype.kind not in "biuf":
            problems.append(fail(f"{k}: must be a real numeric array, got dtype {a.dtype}"))
            continue
        if not np.all(np.isfinite(a)):
            problems.append(fail(f"{k}: {int(a.size - np.isfinite(a).sum())} non-finite "
                                 f"entries"))
            continue
        if np.ndim(e) != a.ndim:
            problems.append(fail(f"{k}: expected {np.ndim(e)}-d, got shape {a.shape}"))
            continue
        arrays[k] = a
    if problems:
        return problems
    groups = [None] if case.family not in DLRT else \
        [i for i in layer_indices(case.inputs) if f"U{i}" in case.inputs]
    factor_keys = {k for g in groups for k in lowrank_keys(g)}
    for g in groups:
        ku, ks, kv = lowrank_keys(g)
        U, S, V = arrays[ku], arrays[ks], arrays[kv]
        m, n = np.shape(case.expected[ku])[0], np.shape(case.expected[kv])[0]
        if U.shape[0] != m or V.shape[0] != n or S.shape != (U.shape[1], V.shape[1]) \
                or U.shape[1] != V.shape[1]:
            problems.append(fail(f"{ku}, {ks}, {kv} must have shapes ({m}, r), (r, r), "
                                 f"({n}, r); got {U.shape}, {S.shape}, {V.shape}"))
        elif g is not None and int(np.asarray(out[f"rank{g}"])) != U.shape[1]:
            problems.append(fail(f"rank{g} = {out[f'rank{g}']} disagrees with {ku} of "
                                 f"shape {U.shape}"))
    for k, a in arrays.items():
        if k not in factor_keys and not k.startswith("rank") \
                and a.shape != np.shape(case.expected[k]):
            problems.append(fail(f"{k}: expected shape {np.shape(case.expected[k])}, "
                                 f"got {a.shape}"))
    return problems


def case_size(inputs: Mapping) -> int:
    """The largest dimension of any input array (the ``size`` of the tolerances)."""
    return int(max(max(np.shape(v)) for v in inputs.values()
                   if isinstance(v, np.ndarray) and v.ndim >= 1))


def perturbed(inputs: Mapping, rng: np.random.Generator) -> dict:
    """``inputs`` with every float array ``v`` moved by a random ``E``,
    ``||E||_F = DELTA ||v||_F`` (normwise: it also models the rounding of the dense
    products every implementation forms)."""
    out = dict(inputs)
    for k, v in inputs.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim >= 1:
            nv = np.linalg.norm(v)
            if nv > 0:
                E = rng.standard_normal(v.shape)
                out[k] = v + (DELTA * nv / np.linalg.norm(E)) * E
    return out


def case_tolerances(family: str, inputs: Mapping, expected: Mapping, ref: Callable,
                    rng: np.random.Generator, margins: Mapping) -> dict:
    """``case.tol``: quantity -> :class:`Tol` for the quantities the inputs determine.

    The condition number of a conditioned quantity is measured: ``ref`` is re-run on
    :data:`N_PERTURBATIONS` perturbed inputs (:func:`perturbed`) and ``cond = max(1,
    change / DELTA)``; a quantity with ``cond > COND_MAX`` is left out. Ranks are exact,
    with their ``margin`` from ``margins`` (rank quantity -> margin or None).
    """
    size = case_size(inputs)
    outs = [ref(**perturbed(inputs, rng)) for _ in range(N_PERTURBATIONS)]
    tol = {}
    for q, key, conditioned in quantities(family, inputs):
        if conditioned:
            c = max(measure(q, p, expected, inputs)[0] for p in outs) / DELTA
            if not c <= COND_MAX:
                continue
            tol[q] = Tol(key, size, float(f"{max(1.0, c):.2g}"))
        else:
            tol[q] = Tol(key, size, 1.0, margins.get(q))
    return tol
