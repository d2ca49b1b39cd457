"""The checker: run a candidate on one golden case (:func:`check_case`) or on every case of
a family (:func:`check`) and compare the invariant quantities with their tolerances.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .._validate import check_callable, check_float_dtype
from .generators import cases
from .measure import measure, output_problems, rank_of, split_quantity
from .records import Case, Failure, Report
from .reference import check_family

__all__ = ["cast_inputs", "check_case", "resolvable", "check"]

_SIGNATURE = "candidate(**case.inputs) -> dict"


def cast_inputs(inputs, dtype) -> dict:
    """A copy of ``inputs`` with every float array cast to ``dtype`` (integer arrays and
    Python scalars unchanged): what a candidate of precision ``dtype`` is handed."""
    return {k: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                else (v.copy() if isinstance(v, np.ndarray) else v))
            for k, v in inputs.items()}


def _run_case(case: Case, candidate: Callable, dtype: np.dtype) -> list:
    try:
        out = candidate(**cast_inputs(case.inputs, dtype))
    except Exception as exc:  # noqa: BLE001 - the candidate's failure is a finding
        return [Failure(case.name, "exception", math.nan, math.nan,
                        f"candidate raised {type(exc).__name__}: {exc}")]
    problems = output_problems(out, case)
    if problems:
        return problems
    failures = []
    rank_ok = {}
    for q in case.tol:
        base, layer = split_quantity(q)
        if base == "rank":
            rank_ok[layer] = rank_of(out, layer) == rank_of(case.expected, layer)
    for q, t in case.tol.items():
        base, layer = split_quantity(q)
        if base.startswith("projector") and not rank_ok.get(layer, True):
            continue   # reported as a rank failure; projectors of different sizes
        try:
            err, msg = measure(q, out, case.expected, case.inputs)
        except Exception as exc:  # noqa: BLE001
            failures.append(Failure(case.name, "output", math.nan, math.nan,
                                    f"{q}: could not be measured ({type(exc).__name__}: "
                                    f"{exc})"))
            continue
        tv = t.value(dtype)
        if not err <= tv:
            failures.append(Failure(case.name, q, float(err), float(tv), msg))
    return failures


def _check_case_arg(case) -> Case:
    if not isinstance(case, Case):
        raise TypeError(f"case must be a Case (from oracle.cases or oracle.load), got "
                        f"{type(case).__name__}")
    return case


def check_case(case: Case, candidate: Callable, dtype=np.float64) -> list:
    """Run ``candidate(**case.inputs)`` on one golden case and compare: its failures.

    The per-case form of :func:`check`, for one test per golden case in a backend's own
    test suite (``pytest -k truncate.ties_at_cut`` then runs one case)::

        @pytest.mark.parametrize("case", oracle.cases("truncate"), ids=lambda c: c.name)
        def test_truncate(case):
            assert oracle.check_case(case, my_truncate) == []

    Parameters
    ----------
    case : Case
        From :func:`lowrank_ref.oracle.cases` or :func:`lowrank_ref.oracle.load`.
    candidate : callable
        ``candidate(**inputs) -> dict`` of NumPy arrays (or anything ``np.asarray``
        accepts) and Python ints; see :mod:`lowrank_ref.oracle` for each family's keys.
    dtype : {numpy.float64, numpy.float32}, default float64
        Precision of the candidate: float array inputs are cast to it, and the tolerances
        are those of ``dtype``. Unlike :func:`check`, this does not skip a case whose rank
        decision is finer than ``dtype`` resolves (none is in float64): test
        :func:`resolvable` first to skip it, e.g. with ``pytest.skip``.

    Returns
    -------
    list of Failure
        Empty if the candidate passed. An exception of the candidate or a malformed output
        is a failure (``"exception"``, ``"output"``), not a crash; ``str(failure)`` is one
        readable line (case, quantity, error, tolerance, what was compared).

    Raises
    ------
    TypeError
        ``case`` not a :class:`Case`, ``candidate`` not callable, ``dtype`` not float32 or
        float64.

    Examples
    --------
    >>> from lowrank_ref import oracle
    >>> case = oracle.cases("truncate")[0]
    >>> check_case(case, oracle.reference("truncate"))
    []
    >>> for f in check_case(case, lambda **kw: {"U": kw["U_hat"]}):
    ...     print(f)
    truncate.6x5_k4_relative  [output] missing keys ['S', 'V'] (expected keys ['S', 'U', 'V'])
    """
    _check_case_arg(case)
    check_callable(candidate, "candidate", _SIGNATURE)
    return _run_case(case, candidate, check_float_dtype(dtype))


def resolvable(case: Case, dtype=np.float64) -> bool:
    """Whether every rank decision of ``case`` is coarser than ``dtype`` resolves (a case
    for which this is False is skipped by :func:`check` in that dtype).

    Examples
    --------
    >>> from lowrank_ref import oracle
    >>> [c.name for c in oracle.cases("truncate") if not resolvable(c, np.float32)]
    ['truncate.tol0_absolute_small_tail', 'truncate.300x200_k40_spread_absolute_1e-9']
    """
    _check_case_arg(case)
    dt = check_float_dtype(dtype)
    for q, t in case.tol.items():
        base, layer = split_quantity(q)
        if base == "rank":
            sv = case.tol.get("singular_values" if layer is None
                              else f"singular_values[{layer}]")
            if not t.resolvable(dt, sv.cond if sv is not None else 1.0):
                return False
    return True


def check(family: str, candidate: Callable, dtype=np.float64, golden=None) -> Report:
    """Run ``candidate(**case.inputs)`` on every case of ``family`` and compare.

    Parameters
    ----------
    family : str
        One of :data:`lowrank_ref.oracle.FAMILIES`.
    candidate : callable
        ``candidate(**inputs) -> dict`` of NumPy arrays (or anything ``np.asarray``
        accepts) and Python ints; see :mod:`lowrank_ref.oracle` for each family's keys.
    dtype : {numpy.float64, numpy.float32}, default float64
        Precision of the candidate: float array inputs are cast to it (integer arrays
        and Python scalars are passed unchanged) and the tolerances are those of ``dtype``.
        Cases whose rank decision is finer than ``dtype`` resolves are skipped.
    golden : list of Case, optional
        The cases to run (default ``cases(family)``; e.g. from
        :func:`lowrank_ref.oracle.load`); those of other families are ignored.

    Returns
    -------
    Report
        ``passed``, ``failures`` (exceptions and malformed outputs of the candidate are
        failures, not crashes), ``n_cases``, ``skipped``.

    Raises
    ------
    ValueError
        Unknown family, or ``golden`` without a case of ``family``.
    TypeError
        ``candidate`` not callable, ``dtype`` not float32 or float64, ``golden`` not a list
        of :class:`Case`.

    Examples
    --------
    >>> from lowrank_ref import oracle
    >>> report = check("truncate", oracle.reference("truncate"))
    >>> report.passed, report.n_cases == len(oracle.cases("truncate"))
    (True, True)
    >>> bad = check("truncate", lambda **kw: {"U": kw["U_hat"]})
    >>> bad.passed, bad.failures[0].quantity
    (False, 'output')
    """
    check_family(family)
    check_callable(candidate, "candidate", _SIGNATURE)
    dt = check_float_dtype(dtype)
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
        if not resolvable(case, dt):
            skipped.append(case.name)
            continue
        n += 1
        failures += _run_case(case, candidate, dt)
    return Report(not failures, failures, family, dt.name, n, tuple(skipped))
