"""The records of the oracle: a case, the tolerance of one of its quantities, a failure,
a report.

Plain named tuples (immutable, comparable, printable), so that a backend author can read a
case or a failure without knowing this package.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from ..checks import tolerance

__all__ = ["Tol", "Case", "Failure", "Report"]


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

    Examples
    --------
    >>> Tol("exact", 6).value()
    0.0
    >>> Tol("exact", 6, margin=1e-9).resolvable(np.float32)
    False
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
        Unique over all families, ``"<family>.<description>"``; also the file name stem
        and a good pytest id (``pytest -k truncate.ties_at_cut``).
    family : str
        One of :data:`lowrank_ref.oracle.FAMILIES`.
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
    :func:`lowrank_ref.oracle.verify`, ``"sha256"``, ``"file"``, ``"manifest"``,
    ``"inputs"``, ``"tolerance"``. ``error`` and ``tol`` are NaN where no number applies.
    ``str(failure)`` is the one line a report prints for it.

    Examples
    --------
    >>> print(Failure("truncate.x", "rank", 1.0, 0.0, "rank 2, expected 3"))
    truncate.x  [rank] error 1.000e+00 > tol 0.000e+00: rank 2, expected 3
    >>> print(Failure("bug_step.y", "output", math.nan, math.nan, "missing keys ['V']"))
    bug_step.y  [output] missing keys ['V']
    """

    case: str
    quantity: str
    error: float
    tol: float
    message: str

    def __str__(self) -> str:
        nums = "" if math.isnan(self.error) else \
            f" error {self.error:.3e} > tol {self.tol:.3e}:"
        return f"{self.case}  [{self.quantity}]{nums} {self.message}"


class Report(NamedTuple):
    """The outcome of :func:`lowrank_ref.oracle.check` or :func:`lowrank_ref.oracle.verify`.

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
        lines += [f"  {f}" for f in self.failures]
        if self.skipped:
            lines.append("  skipped (rank decision below the resolution of "
                         f"{self.dtype}): " + ", ".join(self.skipped))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
