"""Golden cases and the backend checker: the test oracle for faster backends.

A faster implementation (PyTorch, JAX, C++, ...) of the integrators and DLRT steps of this
package is *correct* when it reproduces, on a fixed set of named, deterministic float64
cases, the quantities that do not depend on the choice of factorisation. This module holds
those golden cases, generated from fixed seeds by this package's reference code (the
expected outputs *are* the reference's outputs; the reference itself is verified against
theory by the rest of the test suite), the checker, and an export to ``.npz`` files for
backends that are not written in Python.

* :func:`cases` ``(family) -> list of Case`` -- the golden cases of a family;
* :func:`check` ``(family, candidate, dtype=np.float64) -> Report`` -- run a candidate on
  every case and compare;
* :func:`export` ``(directory)`` / :func:`verify` ``(directory)`` / :func:`load`
  ``(directory)`` -- the cases as ``.npz`` files plus ``manifest.json``;
* :func:`reference` ``(family) -> candidate`` -- this package's implementation, wrapped
  as a candidate (it passes by construction; useful as a template).

Families and candidate signatures
---------------------------------
A candidate is called as ``candidate(**case.inputs)`` with plain NumPy arrays and Python
scalars (``int``, ``float``, ``bool``, ``str``; never ``None``) and must return a ``dict``
with every key of ``case.expected`` (extra keys are ignored). Families whose result is a
low-rank matrix return it under the keys ``"U"`` (m, r), ``"S"`` (r, r), ``"V"`` (n, r)
(DESIGN.md section 4); ``S`` need not be diagonal.

=============================  ===========================================================
family                         ``candidate(...)`` keyword arguments -> returned keys
=============================  ===========================================================
``truncate``                   ``U_hat (m, k1), S_hat (k1, k2), V_hat (n, k2), tol,
                               relative, min_rank, max_rank`` -> ``U, S, V``.
                               ``k2 != k1`` occurs (a rectangular core: use its thin SVD);
                               the rank is clamped to ``[min_rank, min(max_rank, k)]``,
                               ``k = min(k1, k2)``, and is never above ``k``.
``projector_splitting_step``   ``U0 (m, r), S0 (r, r), V0 (n, r), A1 (m, m), A2 (n, n),
                               B (m, n), t0, h, inner, substeps, order`` -> ``U, S, V``
``bug_step``                   ``U0, S0, V0, A1, A2, B, t0, h, inner, substeps``
                               -> ``U, S, V``
``adaptive_bug_step``          ``U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank,
                               max_rank, inner, substeps`` -> ``U, S, V``
``parallel_bug_step``          as ``adaptive_bug_step``
``midpoint_bug_step``          as ``adaptive_bug_step`` (the half step and the result are
                               truncated by the same rule) -> ``U, S, V``
``rk_bug_step``                ``U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank,
                               max_rank, tableau`` (a name of
                               ``integrators.BUTCHER_TABLEAUX``; no ``inner``,
                               ``substeps``) -> ``U, S, V``
``dlrt_layer_step``            see "DLRT families" below -> ``U0, S0, V0, b0, rank0``
``dlrt_network_step``          see "DLRT families" below -> ``U0, S0, V0, b0, rank0, U1,
                               S1, V1, b1, rank1, W2, b2``
=============================  ===========================================================

The matrix ODE of the integrator families is ``dA/dt = F(t, A) = A1 @ A + A @ A2 + B``
(:func:`linear_rhs` builds it), ``inner`` is always ``"euler"`` and ``substeps`` 1 (one
explicit Euler step per sub-flow, the DLRT case); ``max_rank`` is always an int (no cap is
written as ``min(m, n)``).

DLRT families
~~~~~~~~~~~~~
One optimiser step of [SZKCT22] on one batch. The network is given by flat keys, layer
``i = 0, 1, ...``: a low-rank layer ``W_i = U{i} @ S{i} @ V{i}.T`` has ``U{i} (n_out, r)``,
``S{i} (r, r)``, ``V{i} (n_in, r)``, ``b{i} (n_out,)``; a dense layer has ``W{i} (n_out,
n_in)``, ``b{i} (n_out,)``. The layers compute ``Z = X @ W.T + b`` with ReLU between layers
(not after the last one); the loss is the mean cross-entropy of the last layer's logits
against the integer labels. Further inputs: ``X (batch, n_in)`` (float), ``y (batch,)``
(int64), ``lr`` (the SGD step), ``method`` (``"fixed"``: [SZKCT22], fixed rank, the S-step
gradient evaluated at ``W~ = U1 S~0 V1^T``; ``"adaptive"``: the rank-adaptive step with the augmented
bases, relative truncation to ``tau * ||S_hat1||_F``, ranks clamped to
``[min(min_rank, max_rank), max_rank]`` and to the augmented size), ``tau``, ``min_rank``,
``max_rank`` (used by ``"adaptive"`` only). Biases and dense layers take one SGD step with
their gradient at the start point. The returned dict holds the new value of every layer
key and ``rank{i}`` (int) for every low-rank layer. ``dlrt_layer_step`` is the one-layer
network (low-rank, no activation); ``dlrt_network_step`` is low-rank, ReLU, low-rank, ReLU,
dense. For ``"adaptive"`` the one-gradient step and the published 3-pass step give the same
expected output (both references pass).

The rank of a ``midpoint_bug_step`` or ``rk_bug_step`` case may be decided by several
truncations (the half step or the Runge-Kutta stages, and the result); its margin is the
smallest of them.

Compared quantities
-------------------
Factors are unique only up to signs and rotations (``U Q1, Q1^T S Q2, V Q2``), so only
invariants are compared (all in float64, whatever the candidate's dtype):

=======================  ==================================================  ===============
quantity                 error measured                                      tolerance key
=======================  ==================================================  ===============
``rank``                 ``|r_cand - r_expected|`` (the number of columns)   exact (0)
``matrix``               ``||Yc - Ye||_F / ||Ye||_F``, ``Y = U S V^T``        ``"step"``
``singular_values``      ``||sc - se||_2 / ||se||_2`` (zero-padded)          ``"step"``
``projector_U`` / ``_V``  ``||Uc Uc^T - Ue Ue^T||_F`` (same rank only)       ``"step"``
``orthonormality``       ``max(||Uc^T Uc - I||_F, ||Vc^T Vc - I||_F)``       ``"orthonormality"``
``truncation_error``     ``| ||Y_hat - Yc||_F - ||Y_hat - Ye||_F | /         ``"truncation"``
                         ||S_hat||_F``
``bias`` / ``weight``    ``||bc - be|| / ||be||`` (biases, dense weights)    ``"step"``
=======================  ==================================================  ===============

=============================  ============================================================
family                         quantities (``[i]``: per low-rank layer ``i`` of a network)
=============================  ============================================================
``truncate``                   rank, matrix, singular_values, projector_U/V,
                               orthonormality, truncation_error
``projector_splitting_step``   rank, matrix, singular_values, projector_U/V, orthonormality
``bug_step``                   rank, matrix, singular_values, projector_U/V, orthonormality
``adaptive_bug_step``          rank, matrix, singular_values, projector_U/V, orthonormality
``parallel_bug_step``          rank, matrix, singular_values, projector_U/V, orthonormality
``midpoint_bug_step``          rank, matrix, singular_values, projector_U/V, orthonormality
``rk_bug_step``                rank, matrix, singular_values, projector_U/V, orthonormality
``dlrt_layer_step``            rank[0], matrix[0], singular_values[0], projector_U/V[0],
                               orthonormality[0], bias[0]
``dlrt_network_step``          as the layer step for layers 0 and 1; weight[2], bias[2]
=============================  ============================================================

A quantity is compared in a case only where the inputs determine it: where its measured
condition number (below) exceeds :data:`COND_MAX` it is left out of ``case.tol`` -- e.g.
the matrix and projectors of a truncation whose cut falls inside a tie of singular values
(``truncate.ties_at_cut``), or the projector onto a direction carried by a singular value
of 1e-12; ``case.tol`` lists exactly the quantities compared.

Tolerances
----------
Each entry of ``case.tol`` is a :class:`Tol` ``(key, size, cond, margin)`` and its value in
precision ``dtype`` is ``checks.tolerance(key, dtype, size, cond) = factor(key) * eps(dtype)
* size * cond``: ``size`` is the largest dimension of the case (``max(m, n)``, with the
batch for DLRT) and ``cond`` the condition number of that quantity, *measured* at
generation: the reference is re-run on inputs perturbed by relative ``1e-10`` (Frobenius,
each float array, two random directions) and ``cond = max(1, change / 1e-10)``. (Normwise,
not entrywise, perturbations: they also model the rounding of the dense products every
implementation forms, e.g. ``F(t, K V0^T)``.) So a
float32 candidate (``check(..., dtype=np.float32)``: float inputs are cast to float32,
scalars stay Python numbers) is held to float32 tolerances, a float64 one to float64
tolerances. Ranks are compared exactly. ``Tol.margin`` of a rank is the distance of the
truncation threshold from the nearest discarded tail that would change the (clamped) rank,
relative to ``||S_hat||_F``; a case whose margin is below
``tolerance("truncation", dtype, size, cond)`` cannot be decided in ``dtype`` (e.g. an
absolute tolerance of 1e-9 in float32) and is *skipped* for that dtype (listed in the
report), never silently passed.

Export format
-------------
``export(directory)`` writes ``<case name>.npz`` per case (keys ``input.<name>`` and
``expected.<name>``; scalars as 0-d arrays, strings as unicode arrays, no pickled objects;
written with fixed zip timestamps, so an export is byte-reproducible) and
``manifest.json`` (per case: name, family, file, sha256, dtype, the shapes and dtypes of all
arrays and the tolerances with their float64 and float32 values; plus the package version).
``verify(directory)`` checks every hash, regenerates the cases and compares the stored
inputs, expected values and tolerances with the regenerated ones.

Testing your backend against lowrank_ref
----------------------------------------
Wrap your function so that it takes the case's keyword arguments (NumPy arrays) and returns
a dict of NumPy arrays; convert to and from your framework's tensors inside the wrapper.

>>> import numpy as np
>>> from lowrank_ref import oracle
>>> def my_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
...     # a stand-in for your backend: e.g. torch.from_numpy(...) in, .numpy() out
...     P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
...     theta = tol * np.linalg.norm(s) if relative else tol
...     tail = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])   # tail[j] = ||s[j:]||
...     r = next((j for j in range(len(s)) if tail[j] <= theta), len(s))
...     r = min(max(r, min_rank), max_rank, len(s))
...     return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Qt[:r].T}
>>> report = oracle.check("truncate", my_truncate)
>>> report.passed
True
>>> print(report)                                    # doctest: +ELLIPSIS
truncate (float64): PASSED, 15 cases, 0 skipped

A float32 backend is held to float32 tolerances (float inputs are cast to float32); the
two cases whose rank decision is finer than float32 resolves are skipped, not passed:

>>> print(oracle.check("truncate", my_truncate, dtype=np.float32))   # doctest: +ELLIPSIS
truncate (float32): PASSED, 13 cases, 2 skipped
  skipped (rank decision below the resolution of float32): truncate.tol0_absolute_small_tail, ...

A bug is reported by case, quantity, error and tolerance (here: the published DLRT rule
that leaves the last singular value out of the tail):

>>> def buggy(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
...     P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
...     theta = tol * np.linalg.norm(s) if relative else tol
...     r = next((j for j in range(len(s)) if np.linalg.norm(s[j:-1]) < theta), len(s))
...     r = min(max(r, min_rank), max_rank, len(s))
...     return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Qt[:r].T}
>>> report = oracle.check("truncate", buggy)
>>> print(report)                                    # doctest: +ELLIPSIS
truncate (float64): FAILED (... failures), 15 cases, 0 skipped
  truncate.last_value_excluded  [rank] error 1.000e+00 > tol 0.000e+00: rank 2, expected 3
  truncate.last_value_excluded  [matrix] error ... > tol ...: relative Frobenius error of ...
...
>>> report.failures[0]                               # doctest: +ELLIPSIS
Failure(case='truncate.last_value_excluded', quantity='rank', error=1.0, tol=0.0, message=...)

Golden files for a backend in another language (``python -m lowrank_ref oracle export DIR``):

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     manifest = oracle.export(d)
...     oracle.verify(d).passed
True

References: [CKL22] Ceruti, Kusch, Lubich, BIT 62 (2022); [CL22] Ceruti, Lubich, BIT 62
(2022); [CKL24] Ceruti, Kusch, Lubich, SISC (2024); [LO14] Lubich, Oseledets, BIT 54 (2014);
[CEKL24] Ceruti, Einkemmer, Kusch, Lubich, BIT 64 (2024); [NR25] Nobile, Riffaud, arXiv
2502.07040 (2025); [SZKCT22] Schotthoefer et al., NeurIPS 2022.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pathlib
import sys
import zipfile
import zlib
from typing import Callable, Mapping, NamedTuple, Optional

import numpy as np

from . import __version__
from .checks import orthonormality_error, tolerance
from .lowrank import LowRank

__all__ = ["FAMILIES", "COND_MAX", "Tol", "Case", "Failure", "Report", "cases", "check",
           "reference", "linear_rhs", "export", "load", "verify", "clear_cache",
           "export_command", "verify_command"]

#: The case families; each name is the function (or step) it checks.
FAMILIES = ("truncate", "projector_splitting_step", "bug_step", "adaptive_bug_step",
            "parallel_bug_step", "dlrt_layer_step", "dlrt_network_step")

#: Families registered by a self-contained block further down (family -> its
#: ``reference``, ``generate`` and ``margins`` functions); see the block of the second- and
#: higher-order integrators.
_REGISTERED: dict = {}

#: A quantity whose measured condition number exceeds this is not determined by the
#: inputs (a tie at the cut, a direction carried by a singular value ~1e-12) and is not
#: compared in that case.
COND_MAX = 1.0e5

#: Relative size of the input perturbations used to measure condition numbers.
_DELTA = 1.0e-10
_N_PERTURBATIONS = 2
_FORMAT = 1

_INTEGRATORS = ("projector_splitting_step", "bug_step", "adaptive_bug_step",
                "parallel_bug_step")
_ADAPTIVE = ("adaptive_bug_step", "parallel_bug_step")
_DLRT = ("dlrt_layer_step", "dlrt_network_step")


# ---------------------------------------------------------------------------------------
# the records
# ---------------------------------------------------------------------------------------
class Tol(NamedTuple):
    """The tolerance of one compared quantity of one case.

    Attributes
    ----------
    key : str
        A key of :data:`lowrank_ref.checks.TOLERANCE_FACTORS`, or ``"exact"`` (ranks).
    size : int
        Largest dimension of the case.
    cond : float
        Measured condition number of the quantity (>= 1).
    margin : float or None
        Ranks decided by a truncation only: distance of the threshold from the nearest
        tail that would change the rank, relative to ``||S_hat||_F``.
    """

    key: str
    size: int
    cond: float = 1.0
    margin: Optional[float] = None

    def value(self, dtype=np.float64) -> float:
        """``checks.tolerance(key, dtype, size, cond)`` (0 for ``"exact"``)."""
        if self.key == "exact":
            return 0.0
        return tolerance(self.key, dtype, self.size, self.cond)

    def resolvable(self, dtype=np.float64, cond: float = 1.0) -> bool:
        """Whether a rank decision with this margin can be made in ``dtype``."""
        if self.margin is None:
            return True
        return self.margin > tolerance("truncation", dtype, self.size, cond)


class Case(NamedTuple):
    """One golden case.

    Attributes
    ----------
    name : str
        Unique over all families, ``"<family>.<description>"``; also the file name stem.
    family : str
        One of :data:`FAMILIES`.
    inputs : dict
        Keyword arguments of the candidate: float64/int64 arrays, Python scalars, strings.
    expected : dict
        The reference's output (float64 arrays, Python ints for ranks).
    tol : dict
        Quantity name -> :class:`Tol`; exactly the quantities compared.
    """

    name: str
    family: str
    inputs: dict
    expected: dict
    tol: dict


class Failure(NamedTuple):
    """One failed comparison: ``error > tol`` for ``quantity`` in ``case``.

    ``quantity`` is a key of ``case.tol``, or ``"exception"`` (the candidate raised),
    ``"output"`` (a missing key, a wrong shape or type, non-finite values), or, for
    :func:`verify`, ``"sha256"``, ``"file"``, ``"manifest"``, ``"inputs"``,
    ``"tolerance"``. ``error`` and ``tol`` are NaN where no number applies.
    """

    case: str
    quantity: str
    error: float
    tol: float
    message: str


class Report(NamedTuple):
    """The outcome of :func:`check` or :func:`verify`.

    Attributes
    ----------
    passed : bool
        No failures (skipped cases do not fail).
    failures : list of Failure
    family : str
    dtype : str
    n_cases : int
        Cases run (skipped ones excluded).
    skipped : tuple of str
        Cases whose rank decision is below the resolution of ``dtype``.
    notes : tuple of str
    """

    passed: bool
    failures: list
    family: str = ""
    dtype: str = "float64"
    n_cases: int = 0
    skipped: tuple = ()
    notes: tuple = ()

    def __str__(self) -> str:
        status = "PASSED" if self.passed else f"FAILED ({len(self.failures)} failures)"
        lines = [f"{self.family} ({self.dtype}): {status}, {self.n_cases} cases, "
                 f"{len(self.skipped)} skipped"]
        for f in self.failures:
            nums = ("" if math.isnan(f.error) else f" error {f.error:.3e} > tol {f.tol:.3e}:")
            lines.append(f"  {f.case}  [{f.quantity}]{nums} {f.message}")
        if self.skipped:
            lines.append("  skipped (rank decision below the resolution of "
                         f"{self.dtype}): " + ", ".join(self.skipped))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# the reference, wrapped as candidates
# ---------------------------------------------------------------------------------------
def linear_rhs(A1: np.ndarray, A2: np.ndarray, B: np.ndarray) -> Callable:
    """The right-hand side ``F(t, A) = A1 @ A + A @ A2 + B`` of the integrator families.

    Parameters
    ----------
    A1 : (m, m) ndarray
    A2 : (n, n) ndarray
    B : (m, n) ndarray

    Returns
    -------
    callable
        ``F(t, A) -> (m, n) ndarray`` (independent of ``t``).

    Examples
    --------
    >>> F = linear_rhs(np.eye(2), np.zeros((3, 3)), np.ones((2, 3)))
    >>> F(0.0, np.zeros((2, 3))).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    def F(t, A):
        return A1 @ A + A @ A2 + B
    return F


def _lr_dict(Y) -> dict:
    return {"U": np.asarray(Y[0]), "S": np.asarray(Y[1]), "V": np.asarray(Y[2])}


def _ref_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
    from .truncation import truncate
    return _lr_dict(truncate(U_hat, S_hat, V_hat, tol, relative=relative,
                             min_rank=min_rank, max_rank=max_rank))


def _ref_integrator(family: str) -> Callable:
    from . import integrators
    fn = getattr(integrators, family)

    def candidate(U0, S0, V0, A1, A2, B, t0, h, inner="euler", substeps=1, **kwargs):
        Y = fn(LowRank(U0, S0, V0), linear_rhs(A1, A2, B), t0, h, inner=inner,
               substeps=substeps, **kwargs)
        return _lr_dict(Y)

    candidate.__name__ = f"reference_{family}"
    return candidate


def _layer_indices(inputs: Mapping) -> list:
    out, i = [], 0
    while f"b{i}" in inputs:
        out.append(i)
        i += 1
    return out


def _ref_dlrt(passes: int = 1) -> Callable:
    def candidate(**inp):
        from .autodiff import Tensor
        from .dlrt import AdaptiveKLS, FixedRankKLS
        from .lowrank_layers import LowRankDense
        from .nn import MLP, Dense
        layers = []
        for i in _layer_indices(inp):
            if f"U{i}" in inp:
                layers.append(LowRankDense.from_factors(
                    LowRank(inp[f"U{i}"], inp[f"S{i}"], inp[f"V{i}"]), inp[f"b{i}"]))
            else:
                W = np.asarray(inp[f"W{i}"])
                layer = Dense(W.shape[1], W.shape[0], np.random.default_rng(0), dtype=W.dtype)
                layer.W = Tensor(W.copy(), requires_grad=True, name="W")
                layer.b = Tensor(np.array(inp[f"b{i}"], dtype=W.dtype), requires_grad=True,
                                 name="b")
                layers.append(layer)
        model = MLP(layers, activation="relu")
        if inp["method"] == "fixed":
            opt = FixedRankKLS(model, inp["lr"])
        elif inp["method"] == "adaptive":
            opt = AdaptiveKLS(model, inp["lr"], inp["tau"], min_rank=inp["min_rank"],
                              max_rank=inp["max_rank"], passes=passes)
        else:
            raise ValueError(f"method must be 'fixed' or 'adaptive', got {inp['method']!r}")
        opt.step(np.asarray(inp["X"]), np.asarray(inp["y"]))
        out = {}
        for i, layer in enumerate(model.layers):
            if isinstance(layer, LowRankDense):
                out[f"U{i}"], out[f"S{i}"], out[f"V{i}"] = (np.array(a) for a in layer.factors)
                out[f"rank{i}"] = layer.rank
            else:
                out[f"W{i}"] = np.array(layer.W.value)
            out[f"b{i}"] = np.array(layer.b.value)
        return out

    candidate.__name__ = f"reference_dlrt_passes{passes}"
    return candidate


def _check_family(family) -> str:
    if not isinstance(family, str) or family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    return family


def reference(family: str, passes: int = 1) -> Callable:
    """This package's implementation of ``family`` as a candidate for :func:`check`.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    passes : {1, 3}, default 1
        DLRT families: the one-gradient (1) or the published 3-pass (3) adaptive step.

    Returns
    -------
    callable
        ``candidate(**case.inputs) -> dict``.

    Raises
    ------
    ValueError
        For an unknown family.

    Examples
    --------
    >>> check("bug_step", reference("bug_step")).passed
    True
    """
    _check_family(family)
    if isinstance(passes, bool) or passes not in (1, 3):
        raise ValueError(f"passes must be 1 or 3, got {passes!r}")
    if family in _REGISTERED:
        return _REGISTERED[family]["reference"]()
    if family == "truncate":
        return _ref_truncate
    if family in _INTEGRATORS:
        return _ref_integrator(family)
    return _ref_dlrt(passes)


# ---------------------------------------------------------------------------------------
# measuring the quantities
# ---------------------------------------------------------------------------------------
_TINY = np.finfo(np.float64).tiny


def _split(q: str):
    """``"matrix[0]" -> ("matrix", 0)``, ``"matrix" -> ("matrix", None)``."""
    if q.endswith("]"):
        base, idx = q[:-1].split("[")
        return base, int(idx)
    return q, None


def _lr_keys(layer):
    return ("U", "S", "V") if layer is None else (f"U{layer}", f"S{layer}", f"V{layer}")


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _factors(d, layer):
    return tuple(_f64(d[k]) for k in _lr_keys(layer))


def _dense(U, S, V):
    return (U @ S) @ V.T


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), _TINY))


def _sv(S) -> np.ndarray:
    if S.size == 0:
        return np.zeros(0)
    return np.sort(np.linalg.svd(S, compute_uv=False))[::-1]


def _rank_of(d, layer) -> int:
    if layer is not None and f"rank{layer}" in d:
        return int(d[f"rank{layer}"])
    return int(np.shape(d[_lr_keys(layer)[1]])[0])


def _measure(q: str, out: Mapping, exp: Mapping, inputs: Mapping):
    """``(error, message)`` of quantity ``q`` for output ``out`` against ``exp``."""
    base, layer = _split(q)
    if base == "rank":
        rc, re_ = _rank_of(out, layer), _rank_of(exp, layer)
        return float(abs(rc - re_)), f"rank {rc}, expected {re_}"
    if base in ("bias", "weight"):
        key = f"{'b' if base == 'bias' else 'W'}{layer}"
        return _rel(_f64(out[key]), _f64(exp[key])), f"relative error of {key}"
    names = "{} @ {} @ {}.T".format(*_lr_keys(layer))
    Uc, Sc, Vc = _factors(out, layer)
    if base == "orthonormality":
        eu, ev = orthonormality_error(Uc), orthonormality_error(Vc)
        which = _lr_keys(layer)[0] if eu >= ev else _lr_keys(layer)[2]
        return max(eu, ev), f"||Q^T Q - I||_F of {which}"
    Ue, Se, Ve = _factors(exp, layer)
    if base == "matrix":
        return (_rel(_dense(Uc, Sc, Vc), _dense(Ue, Se, Ve)),
                f"relative Frobenius error of {names}")
    if base == "singular_values":
        sc, se = _sv(Sc), _sv(Se)
        k = max(len(sc), len(se))
        sc, se = np.pad(sc, (0, k - len(sc))), np.pad(se, (0, k - len(se)))
        return _rel(sc, se), "relative error of the singular values"
    if base in ("projector_U", "projector_V"):
        Qc, Qe = (Uc, Ue) if base == "projector_U" else (Vc, Ve)
        if Qc.shape != Qe.shape:
            return math.inf, f"rank differs: {Qc.shape} vs {Qe.shape}"
        which = _lr_keys(layer)[0 if base == "projector_U" else 2]
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


def _quantities(family: str, inputs: Mapping) -> list:
    """``[(quantity, tolerance key, conditioned?)]`` compared for a case of ``family``."""
    lr = ["matrix", "singular_values", "projector_U", "projector_V"]
    if family in _DLRT:
        qs = []
        for i in _layer_indices(inputs):
            if f"U{i}" in inputs:
                qs += [(f"rank[{i}]", "exact", False),
                       (f"orthonormality[{i}]", "orthonormality", False)]
                qs += [(f"{b}[{i}]", "step", True) for b in lr]
            else:
                qs.append((f"weight[{i}]", "step", True))
            qs.append((f"bias[{i}]", "step", True))
        return qs
    qs = [("rank", "exact", False), ("orthonormality", "orthonormality", False)]
    qs += [(b, "step", True) for b in lr]
    if family == "truncate":
        qs.append(("truncation_error", "truncation", True))
    return qs


def _validate_output(out, case: Case) -> list:
    """Structural problems of a candidate's output, as ``"output"`` failures."""
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
    groups = [None] if case.family not in _DLRT else \
        [i for i in _layer_indices(case.inputs) if f"U{i}" in case.inputs]
    lr_keys = {k for g in groups for k in _lr_keys(g)}
    for g in groups:
        ku, ks, kv = _lr_keys(g)
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
        if k not in lr_keys and not k.startswith("rank") and a.shape != np.shape(case.expected[k]):
            problems.append(fail(f"{k}: expected shape {np.shape(case.expected[k])}, "
                                 f"got {a.shape}"))
    return problems


# ---------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------
def _seed(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _orth(rng, m, r):
    return np.linalg.qr(rng.standard_normal((m, r)))[0]


def _core(rng, sv, diagonal=False):
    sv = np.asarray(sv, dtype=np.float64)
    if diagonal:
        return np.diag(sv)
    k = len(sv)
    return _orth(rng, k, k) @ np.diag(sv) @ _orth(rng, k, k).T


def _tails(sigma):
    s2 = np.asarray(sigma, dtype=np.float64) ** 2
    return np.sqrt(np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]]))


def _rank_margin(sigma, theta, min_rank, max_rank) -> Optional[float]:
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


def _theta(sigma, tol, relative):
    return tol * float(np.linalg.norm(sigma)) if relative else float(tol)


def _rule_rank(sigma, theta, rule="correct") -> int:
    """Unclamped rank of a tail rule: ``"correct"`` (this package), ``"exclude_last"``
    (the published DLRT loop ``norm(s[j:k-1]) < theta``) or ``"double"`` (the last value
    counted twice). The last two are the bugs of DESIGN.md section 9; cases are chosen so
    that they change the rank."""
    sigma = np.asarray(sigma, dtype=np.float64)
    k = len(sigma)
    if rule == "correct":
        ok = _tails(sigma)[:k] <= theta
    elif rule == "exclude_last":
        ok = _tails(sigma[:-1]) < theta                 # norm(sigma[j:k-1]), j < k
    else:
        ok = np.sqrt(_tails(sigma)[:k] ** 2 + sigma[-1] ** 2) <= theta
    return int(np.argmax(ok)) if ok.any() else k


def _pick_tol(sigmas, relative, min_rank, max_ranks, targets, distinguish=None):
    """A round tolerance from a log grid that gives the unclamped rank ``targets[i]`` for
    every spectrum ``sigmas[i]`` with the largest smallest margin (target None: any rank
    strictly between 1 and the largest possible, i.e. a genuine cut; "any": any rank).
    ``distinguish``: a wrong tail rule (see :func:`_rule_rank`) that must give another
    rank for ``sigmas[0]``."""
    best, best_m = None, -1.0
    for tol in np.logspace(-10, 0, 1001):
        tol = float(f"{tol:.3g}")
        ms = []
        for i, (s, hi, t) in enumerate(zip(sigmas, max_ranks, targets)):
            th = tol * float(np.linalg.norm(s))
            hi_k = min(hi, len(s))
            r0 = _rule_rank(s, th)
            r = min(max(r0, min_rank), hi_k)
            if (isinstance(t, int) and r0 != t) or (t is None and not 1 < r0 < hi_k):
                break
            if i == 0 and distinguish is not None and \
                    min(max(_rule_rank(s, th, distinguish), min_rank), hi_k) == r:
                break
            m = _rank_margin(s, th, min_rank, hi)
            ms.append(math.inf if m is None else m)
        else:
            if min(ms) > best_m:
                best, best_m = tol, min(ms)
    if best is None:
        raise RuntimeError(f"no tolerance gives ranks {targets}")  # pragma: no cover
    if not relative:   # the grid is relative to ||sigma_0||: make it absolute
        best = float(f"{best * float(np.linalg.norm(sigmas[0])):.3g}")
    return best


def _gen_truncate():
    out = []

    def add(name, m, n, sv, tol, relative=True, min_rank=1, max_rank=None, k2=None,
            diagonal=False, unsorted=False):
        rng = _seed(f"truncate.{name}")
        k1 = len(sv)
        k2 = k1 if k2 is None else k2
        k = min(k1, k2)
        if k2 == k1:
            S_hat = _core(rng, sv, diagonal)
            if unsorted:
                S_hat = np.diag(rng.permutation(np.asarray(sv, dtype=float)))
        else:   # rectangular core with singular values sv[:k]
            S_hat = _orth(rng, k1, k) @ np.diag(sv[:k]) @ _orth(rng, k2, k).T
        U_hat = np.eye(m, k1) if unsorted else _orth(rng, m, k1)
        V_hat = np.eye(n, k2) if unsorted else _orth(rng, n, k2)
        out.append((name, dict(U_hat=U_hat, S_hat=S_hat, V_hat=V_hat, tol=float(tol),
                               relative=bool(relative), min_rank=int(min_rank),
                               max_rank=int(k if max_rank is None else max_rank))))

    add("6x5_k4_relative", 6, 5, [3.0, 1.5, 0.4, 0.05], 0.05)
    add("tol0_relative", 7, 6, [2.0, 1.0, 0.5, 0.25, 0.125], 0.0)
    add("tol0_absolute_small_tail", 8, 8, [1.0, 0.1, 1e-3, 1e-6, 1e-9, 1e-12], 0.0,
        relative=False)
    add("ties_kept", 6, 6, [2.0, 1.0, 1.0, 1e-3], 0.01, relative=False)
    add("ties_at_cut", 6, 6, [2.0, 1.0, 1.0, 1e-3], 1.2, relative=False)
    # the last singular value decides: the published rule (tail without it) keeps 2,
    # counting it twice keeps 4; the rule here keeps 3
    add("last_value_excluded", 7, 6, [3.0, 1.5, 0.4, 0.3], 0.45, relative=False)
    add("last_value_doubled", 7, 6, [3.0, 1.5, 0.4, 0.3], 0.35, relative=False)
    add("clustered", 9, 7, [1 + 1e-9, 1.0, 1 - 1e-9, 0.5, 1e-6], 0.45)
    add("min_rank_clamp", 8, 6, [3.0, 0.2, 0.1, 0.05, 0.01], 0.5, min_rank=3)
    add("max_rank_clamp", 8, 7, [3.0, 2.0, 1.5, 1.0, 0.5, 0.25], 0.0, max_rank=2)
    add("min_rank_above_k_3x1", 3, 1, [2.0], 0.5, min_rank=2, max_rank=2)
    add("rectangular_core", 5, 4, [2.0, 0.7, 0.3], 0.2, k2=2)
    add("unsorted_diagonal", 5, 4, [1.0, 3.0, 0.01, 2.0], 0.01)
    add("300x200_k40_spread", 300, 200, np.logspace(0, -12, 40), 0.01)
    add("300x200_k40_spread_absolute_1e-9", 300, 200, np.logspace(0, -12, 40), 1e-9,
        relative=False)
    return out


def _integrator_inputs(name, m, n, r, sv, forcing=1.0, coupling=0.5, h=0.1,
                       diagonal=False):
    rng = _seed(name)
    inputs = dict(U0=_orth(rng, m, r), S0=_core(rng, sv, diagonal), V0=_orth(rng, n, r),
                  A1=coupling * rng.standard_normal((m, m)) / np.sqrt(m),
                  A2=coupling * rng.standard_normal((n, n)) / np.sqrt(n),
                  B=forcing * rng.standard_normal((m, n)) / np.sqrt(max(m, n)),
                  t0=0.0, h=float(h), inner="euler", substeps=1)
    return inputs


#: (description, m, n, r, singular values of Y0, keyword arguments)
_SHAPES = [
    ("2x2_r1", 2, 2, 1, [1.0], {}),
    ("3x1_r1", 3, 1, 1, [2.0], {}),
    ("1x3_r1", 1, 3, 1, [1.5], {}),
    ("4x3_r3_full", 4, 3, 3, [2.0, 1.0, 0.5], {}),
    ("10x8_r2", 10, 8, 2, [2.0, 1.0], {"h": 0.05}),
    ("20x15_r14", 20, 15, 14, list(np.linspace(2.0, 0.1, 14)), {}),
    ("50x40_r5_spread", 50, 40, 5, list(np.logspace(0, -12, 5)), {"diagonal": True}),
    ("50x40_r5_spread_unforced", 50, 40, 5, list(np.logspace(0, -12, 5)),
     {"forcing": 0.0}),
    ("300x200_r20_spread", 300, 200, 20, list(np.logspace(0, -12, 20)), {"h": 0.05}),
    ("300x200_r1", 300, 200, 1, [3.0], {}),
]


def _gen_fixed(family):
    out = []
    for desc, m, n, r, sv, kw in _SHAPES:
        name = f"{family}.{desc}"
        inputs = _integrator_inputs(name, m, n, r, sv, **kw)
        if family == "projector_splitting_step":
            inputs["order"] = 1
        out.append((desc, inputs))
    if family == "projector_splitting_step":
        for desc in ("50x40_r5_spread",):
            _, m, n, r, sv, kw = next(s for s in _SHAPES if s[0] == desc)
            name = f"{family}.{desc}_strang"
            inputs = _integrator_inputs(name, m, n, r, sv, **kw)
            inputs["order"] = 2
            out.append((f"{desc}_strang", inputs))
    return out


def _full_spectrum(family, inputs):
    """Singular values of the core before truncation, per truncated block."""
    if family in _ADAPTIVE:
        full = dict(inputs, tol=0.0, relative=False, min_rank=1,
                    max_rank=min(inputs["U0"].shape[0], inputs["V0"].shape[0]))
        return [_sv(reference(family)(**full)["S"])]
    full = dict(inputs, tau=0.0, min_rank=1, max_rank=max(np.shape(v)[0]
                                                           for v in inputs.values()
                                                           if np.ndim(v) == 2))
    out = reference(family)(**full)
    return [_sv(out[f"S{i}"]) for i in _layer_indices(inputs) if f"U{i}" in inputs]


def _gen_adaptive(family):
    #: (shape, name suffix, tol spec, relative, min_rank, max_rank or None, target rank);
    #: tol spec "auto" or ("auto", rule): picked from the spectrum of S_hat1 (so that the
    #: rank has a margin; with a rule, so that that wrong tail rule changes the rank)
    plan = [
        ("2x2_r1", "", "auto", True, 1, None, 1),
        ("3x1_r1", "_tol0", 0.0, True, 1, None, None),
        ("1x3_r1", "_absolute", 0.3, False, 1, None, None),
        ("10x8_r2", "", "auto", True, 1, None, 2),
        ("10x8_r2", "_tol0", 0.0, True, 1, None, None),
        ("10x8_r2", "_last_value_excluded", ("auto", "exclude_last"), True, 1, None, None),
        ("10x8_r2", "_last_value_doubled", ("auto", "double"), True, 1, None, None),
        ("20x15_r14", "", "auto", True, 1, None, 10),
        ("20x15_r14", "_tol0_max_rank", 0.0, True, 1, 14, None),
        ("50x40_r5_spread", "", "auto", True, 1, None, 9),
        ("50x40_r5_spread_unforced", "_absolute", "auto", False, 1, None, 3),
        ("50x40_r5_spread_unforced", "_absolute_fine", "auto", False, 1, None, 5),
        ("300x200_r20_spread", "", "auto", True, 1, None, None),
        ("300x200_r1", "_min_rank", 0.5, True, 2, None, None),
    ]
    out = []
    for desc, suffix, tol, relative, min_rank, max_rank, target in plan:
        _, m, n, r, sv, kw = next(s for s in _SHAPES if s[0] == desc)
        cdesc = desc + suffix
        inputs = _integrator_inputs(f"{family}.{desc}", m, n, r, sv, **kw)
        hi = min(m, n) if max_rank is None else max_rank
        inputs.update(relative=bool(relative), min_rank=int(min_rank), max_rank=int(hi))
        if isinstance(tol, tuple) or tol == "auto":
            rule = tol[1] if isinstance(tol, tuple) else None
            (sigma,) = _full_spectrum(family, dict(inputs, tol=0.0))
            tol = _pick_tol([sigma], relative, min_rank, [hi], [target], rule)
        inputs["tol"] = float(tol)
        out.append((cdesc, inputs))
    return out


def _dlrt_inputs(name, sizes, ranks, batch, method, lr, dense_last):
    from .lowrank_layers import LowRankDense
    from .nn import Dense
    rng = _seed(name)
    inputs = {}
    n_layers = len(sizes) - 1
    for i in range(n_layers):
        n_in, n_out = sizes[i], sizes[i + 1]
        if dense_last and i == n_layers - 1:
            layer = Dense(n_in, n_out, rng, init="torch")
            inputs[f"W{i}"] = np.array(layer.W.value)
        else:
            layer = LowRankDense(n_in, n_out, ranks[i], rng, init="torch")
            inputs[f"U{i}"], inputs[f"S{i}"], inputs[f"V{i}"] = (np.array(a)
                                                                   for a in layer.factors)
            # a general (not diagonal) S: the gauge is not fixed by the oracle
            Q1, Q2 = _orth(rng, ranks[i], ranks[i]), _orth(rng, ranks[i], ranks[i])
            inputs[f"U{i}"] = inputs[f"U{i}"] @ Q1
            inputs[f"S{i}"] = Q1.T @ inputs[f"S{i}"] @ Q2
            inputs[f"V{i}"] = inputs[f"V{i}"] @ Q2
        inputs[f"b{i}"] = 0.1 * rng.standard_normal(n_out)
    X = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    inputs.update(X=X, y=y, lr=float(lr), method=method, tau=0.0, min_rank=1,
                  max_rank=int(min(sizes)))
    return inputs


def _gen_dlrt(family):
    if family == "dlrt_layer_step":
        #: (description, sizes, ranks, batch, method, lr, tau or target ranks, max_rank)
        plan = [
            ("fixed_12x10_r3", [12, 10], [3], 16, "fixed", 0.5, None, None),
            ("fixed_8x5_r1", [8, 5], [1], 10, "fixed", 0.5, None, None),
            ("fixed_6x4_r4_full", [6, 4], [4], 8, "fixed", 0.5, None, None),
            ("fixed_64x32_r8", [64, 32], [8], 32, "fixed", 0.2, None, None),
            ("adaptive_12x10_r3", [12, 10], [3], 16, "adaptive", 0.5, [4], None),
            ("adaptive_8x5_r1_grow", [8, 5], [1], 10, "adaptive", 0.5, 0.05, None),
            ("adaptive_12x10_r3_max_rank", [12, 10], [3], 16, "adaptive", 0.5, 0.0, 4),
            ("adaptive_64x32_r8", [64, 32], [8], 32, "adaptive", 0.2, [8], None),
            ("adaptive_12x10_r3_last_value_excluded", [12, 10], [3], 16, "adaptive", 0.5,
             ([None], "exclude_last"), None),
            ("adaptive_12x10_r3_last_value_doubled", [12, 10], [3], 16, "adaptive", 0.5,
             ([None], "double"), None),
        ]
        dense_last = False
    else:
        plan = [
            ("fixed_12-10-8-4_r3-2", [12, 10, 8, 4], [3, 2], 16, "fixed", 1.0, None, None),
            ("fixed_40-30-20-5_r5-4", [40, 30, 20, 5], [5, 4], 24, "fixed", 0.3, None,
             None),
            ("adaptive_12-10-8-4_r3-2", [12, 10, 8, 4], [3, 2], 16, "adaptive", 0.5,
             [3, 2], None),
            ("adaptive_40-30-20-5_r5-4", [40, 30, 20, 5], [5, 4], 24, "adaptive", 0.3,
             [5, 4], None),
            ("adaptive_12-10-8-4_r3-2_last_value_doubled", [12, 10, 8, 4], [3, 2], 16,
             "adaptive", 0.5, ([None, "any"], "double"), 6),
            ("adaptive_40-30-20-5_r5-4_tau0", [40, 30, 20, 5], [5, 4], 24, "adaptive", 0.3,
             0.0, 6),
        ]
        dense_last = True
    out = []
    for desc, sizes, ranks, batch, method, lr, targets, max_rank in plan:
        inputs = _dlrt_inputs(f"{family}.{desc}", sizes, ranks, batch, method, lr,
                              dense_last)
        if max_rank is not None:
            inputs["max_rank"] = int(max_rank)
        if method == "adaptive" and isinstance(targets, float):
            inputs["tau"] = targets
        elif method == "adaptive":
            targets, rule = targets if isinstance(targets, tuple) else (targets, None)
            sigmas = _full_spectrum(family, inputs)
            his = [inputs["max_rank"]] * len(sigmas)
            inputs["tau"] = _pick_tol(sigmas, True, 1, his, targets, rule)
        out.append((desc, inputs))
    return out


# ---------------------------------------------------------------------------------------
# second- and higher-order integrators: midpoint_bug_step [CEKL24], rk_bug_step [NR25]
# (a self-contained block: reference wrapper, case generator, rank margins, registration)
# ---------------------------------------------------------------------------------------
def _ref_high_order(family: str) -> Callable:
    """``midpoint_bug_step`` / ``rk_bug_step`` of this package as a candidate."""
    from . import integrators
    fn = getattr(integrators, family)

    def candidate(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank,
                  **kwargs):
        Y = fn(LowRank(U0, S0, V0), linear_rhs(A1, A2, B), t0, h, tol, relative, min_rank,
               max_rank, **kwargs)
        return _lr_dict(Y)

    candidate.__name__ = f"reference_{family}"
    return candidate


def _high_order_margins(family: str, inputs: Mapping) -> dict:
    """The rank margin of a case: the smallest over every truncation the step makes (the
    half step or the stages, and the result), each recorded during one reference run by
    wrapping ``integrators.truncate`` (restored afterwards)."""
    from . import integrators
    original, margins = integrators.truncate, []

    def recording(U_hat, S_hat, V_hat, tol, relative=True, min_rank=1, max_rank=None):
        sigma = _sv(np.asarray(S_hat, dtype=np.float64))
        hi = len(sigma) if max_rank is None else max_rank
        margins.append(_rank_margin(sigma, _theta(sigma, tol, relative), min_rank, hi))
        return original(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank)

    integrators.truncate = recording
    try:
        _ref_high_order(family)(**inputs)
    finally:
        integrators.truncate = original
    found = [m for m in margins if m is not None]
    return {"rank": min(found) if found else None}


#: family -> [(description, shape in _SHAPES, inputs changed from the defaults tol = 0,
#: relative, min_rank = 1, max_rank = min(m, n))]
_HIGH_ORDER_PLAN = {
    "midpoint_bug_step": [
        ("2x2_r1", "2x2_r1", {}),
        ("1x3_r1", "1x3_r1", {}),
        ("4x3_r3_full", "4x3_r3_full", {}),
        ("10x8_r2_fixed", "10x8_r2", dict(min_rank=2, max_rank=2)),
        ("10x8_r2_tol", "10x8_r2", dict(tol=0.05)),
        ("20x15_r14", "20x15_r14", {}),
        ("50x40_r5_spread_fixed", "50x40_r5_spread", dict(min_rank=5, max_rank=5)),
        ("50x40_r5_spread_tol", "50x40_r5_spread", dict(tol=1e-3)),
        ("300x200_r20_spread_fixed", "300x200_r20_spread", dict(min_rank=20, max_rank=20)),
    ],
    "rk_bug_step": [
        ("2x2_r1_heun", "2x2_r1", dict(tableau="heun")),
        ("3x1_r1_rk4", "3x1_r1", dict(tableau="rk4")),
        ("4x3_r3_full_rk3", "4x3_r3_full", dict(tableau="rk3")),
        ("10x8_r2_rk4_fixed", "10x8_r2", dict(tableau="rk4", min_rank=2, max_rank=2)),
        ("10x8_r2_midpoint_tol", "10x8_r2", dict(tableau="midpoint", tol=0.05)),
        ("20x15_r14_ssprk3", "20x15_r14", dict(tableau="ssprk3")),
        ("50x40_r5_spread_rk4_tol", "50x40_r5_spread", dict(tableau="rk4", tol=1e-3)),
        ("50x40_r5_spread_unforced_heun_fixed", "50x40_r5_spread_unforced",
         dict(tableau="heun", min_rank=5, max_rank=5)),
        ("300x200_r20_spread_rk4", "300x200_r20_spread", dict(tableau="rk4", tol=0.01)),
    ],
}


def _gen_high_order(family: str) -> list:
    out = []
    for desc, shape, changes in _HIGH_ORDER_PLAN[family]:
        _, m, n, r, sv, kw = next(s for s in _SHAPES if s[0] == shape)
        inputs = _integrator_inputs(f"{family}.{desc}", m, n, r, sv, **kw)
        if family == "rk_bug_step":              # no sub-flow solver
            del inputs["inner"], inputs["substeps"]
        inputs.update(tol=0.0, relative=True, min_rank=1, max_rank=int(min(m, n)))
        inputs.update(changes)
        inputs["tol"] = float(inputs["tol"])
        out.append((desc, inputs))
    return out


for _family in ("midpoint_bug_step", "rk_bug_step"):
    _REGISTERED[_family] = dict(
        reference=lambda f=_family: _ref_high_order(f),
        generate=lambda f=_family: _gen_high_order(f),
        margins=lambda inputs, f=_family: _high_order_margins(f, inputs))
FAMILIES = FAMILIES + tuple(f for f in _REGISTERED if f not in FAMILIES)
del _family


def _margins(family, inputs) -> dict:
    """Rank margins per rank quantity (None where no truncation decides the rank)."""
    if family in _REGISTERED:
        return _REGISTERED[family]["margins"](inputs)
    if family == "truncate":
        sigma = _sv(inputs["S_hat"])
        th = _theta(sigma, inputs["tol"], inputs["relative"])
        return {"rank": _rank_margin(sigma, th, inputs["min_rank"], inputs["max_rank"])}
    if family in _ADAPTIVE:
        (sigma,) = _full_spectrum(family, inputs)
        th = _theta(sigma, inputs["tol"], inputs["relative"])
        return {"rank": _rank_margin(sigma, th, inputs["min_rank"], inputs["max_rank"])}
    if family in _DLRT and inputs["method"] == "adaptive":
        idx = [i for i in _layer_indices(inputs) if f"U{i}" in inputs]
        sigmas = _full_spectrum(family, inputs)
        hi = inputs["max_rank"]
        return {f"rank[{i}]": _rank_margin(s, _theta(s, inputs["tau"], True),
                                           min(inputs["min_rank"], hi), hi)
                for i, s in zip(idx, sigmas)}
    return {}


def _size(family, inputs) -> int:
    return int(max(max(np.shape(v)) for v in inputs.values()
                   if isinstance(v, np.ndarray) and v.ndim >= 1))


def _perturbed(inputs, rng):
    out = dict(inputs)
    for k, v in inputs.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim >= 1:
            nv = np.linalg.norm(v)
            if nv > 0:
                E = rng.standard_normal(v.shape)
                out[k] = v + (_DELTA * nv / np.linalg.norm(E)) * E
    return out


def _make_case(family, desc, inputs) -> Case:
    name = f"{family}.{desc}"
    ref = reference(family)
    expected = {k: (int(v) if np.ndim(v) == 0 else np.array(v, dtype=np.float64))
                for k, v in ref(**inputs).items()}
    size = _size(family, inputs)
    margins = _margins(family, inputs)
    rng = _seed(name + ".cond")
    perturbed = [ref(**_perturbed(inputs, rng)) for _ in range(_N_PERTURBATIONS)]
    tol = {}
    for q, key, conditioned in _quantities(family, inputs):
        if conditioned:
            c = max(_measure(q, p, expected, inputs)[0] for p in perturbed) / _DELTA
            if not c <= COND_MAX:
                continue
            tol[q] = Tol(key, size, float(f"{max(1.0, c):.2g}"))
        else:
            tol[q] = Tol(key, size, 1.0, margins.get(q))
    return Case(name, family, inputs, expected, tol)


def _generate(family) -> list:
    _check_family(family)
    if family in _REGISTERED:
        raw = _REGISTERED[family]["generate"]()
    elif family == "truncate":
        raw = _gen_truncate()
    elif family in _ADAPTIVE:
        raw = _gen_adaptive(family)
    elif family in _INTEGRATORS:
        raw = _gen_fixed(family)
    else:
        raw = _gen_dlrt(family)
    return [_make_case(family, desc, inputs) for desc, inputs in raw]


_CACHE: dict = {}


def _copy_case(c: Case) -> Case:
    cp = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in c.inputs.items()}
    ce = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in c.expected.items()}
    return Case(c.name, c.family, cp, ce, dict(c.tol))


def cases(family: str) -> list:
    """The golden cases of ``family`` (generated once per process, returned as copies).

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.

    Returns
    -------
    list of Case

    Raises
    ------
    ValueError
        For an unknown family (the message lists the families).

    Examples
    --------
    >>> c = cases("bug_step")[0]
    >>> c.name, sorted(c.expected), c.inputs["U0"].shape
    ('bug_step.2x2_r1', ['S', 'U', 'V'], (2, 1))
    """
    _check_family(family)
    if family not in _CACHE:
        _CACHE[family] = _generate(family)
    return [_copy_case(c) for c in _CACHE[family]]


def clear_cache() -> None:
    """Forget generated cases (the next :func:`cases` call regenerates them)."""
    _CACHE.clear()


# ---------------------------------------------------------------------------------------
# the checker
# ---------------------------------------------------------------------------------------
def _check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _cast_inputs(inputs, dtype):
    return {k: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                else (v.copy() if isinstance(v, np.ndarray) else v))
            for k, v in inputs.items()}


def _check_case(case: Case, candidate: Callable, dtype) -> list:
    try:
        out = candidate(**_cast_inputs(case.inputs, dtype))
    except Exception as exc:  # noqa: BLE001 - the candidate's failure is a finding
        return [Failure(case.name, "exception", math.nan, math.nan,
                        f"candidate raised {type(exc).__name__}: {exc}")]
    problems = _validate_output(out, case)
    if problems:
        return problems
    failures = []
    rank_ok = {}
    for q in case.tol:
        base, layer = _split(q)
        if base == "rank":
            rank_ok[layer] = _rank_of(out, layer) == _rank_of(case.expected, layer)
    for q, t in case.tol.items():
        base, layer = _split(q)
        if base.startswith("projector") and not rank_ok.get(layer, True):
            continue   # reported as a rank failure; projectors of different sizes
        try:
            err, msg = _measure(q, out, case.expected, case.inputs)
        except Exception as exc:  # noqa: BLE001
            failures.append(Failure(case.name, "output", math.nan, math.nan,
                                    f"{q}: could not be measured ({type(exc).__name__}: "
                                    f"{exc})"))
            continue
        tv = t.value(dtype)
        if not err <= tv:
            failures.append(Failure(case.name, q, float(err), float(tv), msg))
    return failures


def _resolvable(case: Case, dtype) -> bool:
    for q, t in case.tol.items():
        base, layer = _split(q)
        if base == "rank":
            sv = case.tol.get("singular_values" if layer is None
                              else f"singular_values[{layer}]")
            if not t.resolvable(dtype, sv.cond if sv is not None else 1.0):
                return False
    return True


def check(family: str, candidate: Callable, dtype=np.float64, golden=None) -> Report:
    """Run ``candidate(**case.inputs)`` on every case of ``family`` and compare.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    candidate : callable
        ``candidate(**inputs) -> dict`` of NumPy arrays (or anything ``np.asarray``
        accepts) and Python ints; see the module docstring for each family's keys.
    dtype : {numpy.float64, numpy.float32}, default float64
        Precision of the candidate: float array inputs are cast to it (integer arrays
        and Python scalars are passed unchanged) and the tolerances are those of ``dtype``.
        Cases whose rank decision is finer than ``dtype`` resolves are skipped.
    golden : list of Case, optional
        The cases to run (default ``cases(family)``; e.g. from :func:`load`); those of
        other families are ignored.

    Returns
    -------
    Report
        ``passed``, ``failures`` (exceptions and malformed outputs of the candidate are
        failures, not crashes), ``n_cases``, ``skipped``.

    Raises
    ------
    ValueError
        Unknown family or dtype, or ``golden`` without a case of ``family``.
    TypeError
        ``candidate`` not callable, ``golden`` not a list of :class:`Case`.

    Examples
    --------
    >>> report = check("truncate", reference("truncate"))
    >>> report.passed, report.n_cases == len(cases("truncate"))
    (True, True)
    >>> bad = check("truncate", lambda **kw: {"U": kw["U_hat"]})
    >>> bad.passed, bad.failures[0].quantity
    (False, 'output')
    """
    _check_family(family)
    if not callable(candidate):
        raise TypeError(f"candidate must be callable as candidate(**case.inputs) -> dict, "
                        f"got {type(candidate).__name__}")
    dt = _check_dtype(dtype)
    if golden is None:
        golden = cases(family)
    else:
        if isinstance(golden, (str, bytes, Case)) or not hasattr(golden, "__iter__"):
            raise TypeError(f"golden must be a list of Case, got {type(golden).__name__}")
        golden = list(golden)
        bad = [type(c).__name__ for c in golden if not isinstance(c, Case)]
        if bad:
            raise TypeError(f"golden must be a list of Case, got items of type {bad[0]}")
        golden = [c for c in golden if c.family == family]
        if not golden:
            raise ValueError(f"golden holds no case of family {family!r}")
    failures, skipped, n = [], [], 0
    for case in golden:
        if not _resolvable(case, dt):
            skipped.append(case.name)
            continue
        n += 1
        failures += _check_case(case, candidate, dt)
    return Report(not failures, failures, family, dt.name, n, tuple(skipped))


# ---------------------------------------------------------------------------------------
# export, load, verify
# ---------------------------------------------------------------------------------------
def _to_array(v) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    if isinstance(v, str):
        return np.array(v, dtype=np.str_)
    if isinstance(v, (bool, np.bool_)):
        return np.array(bool(v))
    if isinstance(v, (int, np.integer)):
        return np.array(int(v), dtype=np.int64)
    if isinstance(v, (float, np.floating)):
        return np.array(float(v), dtype=np.float64)
    raise TypeError(f"cannot store {type(v).__name__} in an npz golden file")


def _from_array(a: np.ndarray):
    return a.item() if a.ndim == 0 else a


def _npz_bytes(arrays: dict) -> bytes:
    """An ``.npz`` (as ``np.savez``) with fixed timestamps: byte-reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arrays[key]), allow_pickle=False)
    return buf.getvalue()


def _tol_json(t: Tol) -> dict:
    return {"key": t.key, "size": t.size, "cond": t.cond, "margin": t.margin,
            "float64": t.value(np.float64), "float32": t.value(np.float32)}


def _spec(d: dict) -> dict:
    return {k: {"shape": list(np.shape(v)), "dtype": _to_array(v).dtype.str}
            for k, v in d.items()}


def export(directory) -> pathlib.Path:
    """Write every case of every family as ``<name>.npz`` plus ``manifest.json``.

    Parameters
    ----------
    directory : str or path-like
        Created if missing; existing golden files are overwritten.

    Returns
    -------
    pathlib.Path
        The manifest's path.

    Notes
    -----
    Each ``.npz`` holds ``input.<key>`` and ``expected.<key>`` arrays (scalars as 0-d
    arrays, strings as unicode arrays) and loads with ``np.load(path, allow_pickle=False)``.
    The manifest lists per case its ``name``, ``family``, ``file``, ``sha256``, ``dtype``,
    the ``inputs`` and ``expected`` shapes and dtypes and the ``tolerance`` per quantity
    (``key``, ``size``, ``cond``, ``margin``, and the ``float64`` and ``float32`` values).
    """
    directory = _directory(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for family in FAMILIES:
        for c in cases(family):
            arrays = {f"input.{k}": _to_array(v) for k, v in c.inputs.items()}
            arrays.update({f"expected.{k}": _to_array(v) for k, v in c.expected.items()})
            data = _npz_bytes(arrays)
            fname = f"{c.name}.npz"
            (directory / fname).write_bytes(data)
            entries.append({"name": c.name, "family": c.family, "file": fname,
                            "sha256": hashlib.sha256(data).hexdigest(), "dtype": "float64",
                            "inputs": _spec(c.inputs), "expected": _spec(c.expected),
                            "tolerance": {q: _tol_json(t) for q, t in c.tol.items()}})
    manifest = {"package": "lowrank_ref", "version": __version__, "format": _FORMAT,
                "families": list(FAMILIES), "cond_max": COND_MAX, "cases": entries}
    path = directory / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def _directory(directory) -> pathlib.Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a str or os.PathLike, got {type(directory).__name__}")
    return pathlib.Path(directory)


def _read_manifest(directory: pathlib.Path) -> dict:
    """The manifest, checked: a dict whose ``cases`` are dicts naming a plain ``file``."""
    path = directory / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {directory} (run export first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:   # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), list):
        raise ValueError(f"{path}: expected an object with a list 'cases', got "
                         f"{type(manifest).__name__}")
    for i, entry in enumerate(manifest["cases"]):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: cases[{i}] must be an object, got {type(entry).__name__}")
        name, file = entry.get("name"), entry.get("file")
        if not isinstance(name, str) or not isinstance(file, str):
            raise ValueError(f"{path}: cases[{i}] must have str 'name' and 'file', got "
                             f"{name!r}, {file!r}")
        # golden files live in the directory itself: no paths, no escaping it
        if file != pathlib.PurePath(file).name or file in ("", ".", "..") \
                or "/" in file or "\\" in file:
            raise ValueError(f"{path}: cases[{i}].file must be a file name in {directory}, "
                             f"got {file!r}")
    return manifest


def _load_entry(directory: pathlib.Path, entry: dict) -> Case:
    """The case of a manifest entry; ValueError naming the file if it cannot be read
    (not an npz, truncated, object arrays -- never unpickled --, missing fields)."""
    inputs, expected = {}, {}
    path = directory / entry["file"]
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            for key in z.files:
                part, _, name = key.partition(".")
                target = {"input": inputs, "expected": expected}.get(part)
                if target is None:
                    raise ValueError(f"unexpected array {key!r}")
                target[name] = _from_array(z[key])
        tol = {q: Tol(str(t["key"]), int(t["size"]), float(t["cond"]),
                      None if t["margin"] is None else float(t["margin"]))
               for q, t in entry["tolerance"].items()}
        return Case(entry["name"], str(entry["family"]), inputs, expected, tol)
    except FileNotFoundError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OSError, EOFError,
            zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: not a golden file of lowrank_ref "
                         f"({type(exc).__name__}: {exc})") from None


def load(directory) -> list:
    """The cases stored in ``directory`` by :func:`export` (hashes not checked: see
    :func:`verify`), in manifest order; pass them to ``check(..., golden=...)``.

    Raises
    ------
    FileNotFoundError
        If ``directory`` has no ``manifest.json`` (or a listed file is missing).
    ValueError
        Naming the file, if the manifest or a golden file is malformed: not JSON / npz,
        object arrays (files are read with ``allow_pickle=False``), a ``file`` entry that
        is a path rather than a name in ``directory``.
    TypeError
        If ``directory`` is not a str or path.
    """
    directory = _directory(directory)
    manifest = _read_manifest(directory)
    return [_load_entry(directory, e) for e in manifest["cases"]]


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compare_inputs(stored: Case, fresh: Case) -> list:
    def fail(msg, err=math.nan, tol=math.nan):
        return Failure(stored.name, "inputs", err, tol, msg)

    if set(stored.inputs) != set(fresh.inputs):
        return [fail(f"input keys {sorted(stored.inputs)} != regenerated "
                     f"{sorted(fresh.inputs)}")]
    out = []
    for k, v in fresh.inputs.items():
        s = stored.inputs[k]
        if isinstance(v, np.ndarray):
            s = np.asarray(s)
            if s.shape != v.shape or s.dtype.kind != v.dtype.kind:
                out.append(fail(f"{k}: shape/dtype {s.shape} {s.dtype} != regenerated "
                                f"{v.shape} {v.dtype}"))
                continue
            tol = tolerance("reconstruction", np.float64, max(v.shape, default=1))
            err = _rel(s.astype(np.float64), v.astype(np.float64)) if v.size else 0.0
            if not err <= tol:
                out.append(fail(f"{k}: differs from the regenerated input", err, tol))
        elif s != v or type(s) is not type(v):
            out.append(fail(f"{k}: {s!r} != regenerated {v!r}"))
    return out


def _compare_tolerances(stored: Case, fresh: Case) -> list:
    out = []
    if set(stored.tol) != set(fresh.tol):
        return [Failure(stored.name, "tolerance", math.nan, math.nan,
                        f"compared quantities {sorted(stored.tol)} != regenerated "
                        f"{sorted(fresh.tol)}")]
    for q, t in fresh.tol.items():
        s = stored.tol[q]
        ok = (s.key == t.key and s.size == t.size and 0.25 <= s.cond / t.cond <= 4.0
              and (s.margin is None) == (t.margin is None)
              and (t.margin is None or abs(s.margin - t.margin) <= 1e-6 + 0.01 * t.margin))
        if not ok:
            out.append(Failure(stored.name, "tolerance", math.nan, math.nan,
                               f"{q}: stored {s} != regenerated {t}"))
    return out


def verify(directory) -> Report:
    """Confirm the golden files in ``directory``: hashes, and values against a regeneration.

    For every manifest entry: the file exists and its sha256 matches (a modified file is
    reported by name under quantity ``"sha256"``); the cases are regenerated (not from the
    cache) and the stored inputs must equal the regenerated ones to round-off, the stored
    expected values must match the regenerated ones within each case's tolerances, and
    the stored tolerances must match the regenerated ones. Missing and unknown cases are
    failures. Files are read with ``allow_pickle=False``.

    Parameters
    ----------
    directory : str or path-like

    Returns
    -------
    Report
        With ``family="verify"``; ``str(report)`` lists every problem.
    """
    directory = _directory(directory)
    try:
        manifest = _read_manifest(directory)
    except (OSError, ValueError) as exc:
        f = Failure("manifest.json", "manifest", math.nan, math.nan, str(exc))
        return Report(False, [f], "verify", "float64", 0)
    failures, notes = [], []
    if manifest.get("version") != __version__:
        notes.append(f"golden files written by lowrank_ref {manifest.get('version')}, "
                     f"checked with {__version__}")
    fresh = {c.name: c for family in FAMILIES for c in _generate(family)}
    stored_names = set()
    for entry in manifest.get("cases", []):
        name = entry.get("name", "?")
        stored_names.add(name)
        path = directory / entry.get("file", "")
        if not path.is_file():
            failures.append(Failure(name, "file", math.nan, math.nan,
                                    f"{entry.get('file')}: file missing"))
            continue
        digest = _sha256(path)
        if digest != entry.get("sha256"):
            failures.append(Failure(name, "sha256", math.nan, math.nan,
                                    f"{entry['file']}: sha256 {digest[:16]}... does not match "
                                    f"the manifest's {str(entry.get('sha256'))[:16]}... "
                                    "(file modified)"))
            continue
        if name not in fresh:
            failures.append(Failure(name, "manifest", math.nan, math.nan,
                                    "unknown case: not generated by this version"))
            continue
        try:
            stored = _load_entry(directory, entry)
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a finding
            failures.append(Failure(name, "file", math.nan, math.nan,
                                    f"{entry['file']}: cannot be read ({exc})"))
            continue
        new = fresh[name]
        failures += _compare_inputs(stored, new)
        failures += _compare_tolerances(stored, new)
        failures += _check_case(stored, lambda **_: new.expected, np.float64)
    for name in sorted(set(fresh) - stored_names):
        failures.append(Failure(name, "manifest", math.nan, math.nan,
                                "case missing from the manifest"))
    return Report(not failures, failures, "verify", "float64", len(stored_names),
                  (), tuple(notes))


# ---------------------------------------------------------------------------------------
# command line (wired into ``python -m lowrank_ref oracle export|verify DIR``)
# ---------------------------------------------------------------------------------------
def export_command(directory, stream=None) -> int:
    """``oracle export DIR``: write the golden files, print a summary; exit status 0.

    Examples
    --------
    >>> import io, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = io.StringIO()
    ...     export_command(d, out), out.getvalue().startswith("wrote")
    (0, True)
    """
    stream = sys.stdout if stream is None else stream
    path = export(directory)
    counts = {f: len(cases(f)) for f in FAMILIES}
    print(f"wrote {sum(counts.values())} golden cases to {path.parent} "
          f"(manifest {path.name}, lowrank_ref {__version__})", file=stream)
    for family, n in counts.items():
        print(f"  {family}: {n}", file=stream)
    return 0


def verify_command(directory, stream=None) -> int:
    """``oracle verify DIR``: print the :func:`verify` report; exit status 0 if it passed,
    1 if a file was modified or a value differs, 2 if ``DIR`` holds no manifest."""
    stream = sys.stdout if stream is None else stream
    report = verify(directory)
    print(report, file=stream)
    if report.passed:
        return 0
    return 2 if any(f.quantity == "manifest" and f.case == "manifest.json"
                    for f in report.failures) else 1
