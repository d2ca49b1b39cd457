"""Numerical checks shared by the tests, the oracle and the tutorials.

Everything that decides "is this number small enough" lives here, written once:

* :func:`tolerance` -- the tolerance table, tied to ``np.finfo(dtype).eps``, the problem
  size and (where it matters) the conditioning of the problem;
* :func:`fit_slope` -- least-squares slope of ``log(err)`` against ``log(h)``, used to
  verify orders of convergence (never a single error at a single step size);
* :func:`orthonormality_error` (defined with the factors in :mod:`lowrank_ref.lowrank`).

The gradient check of the autodiff engine lives with the engine:
:func:`lowrank_ref.gradcheck.check_grad` (its tolerances are the ``grad_check_*`` entries of
:data:`TOLERANCE_FACTORS` here).
"""
from __future__ import annotations

import numpy as np

from .lowrank import orthonormality_error   # lives with the factors; re-exported here

__all__ = ["TOLERANCE_FACTORS", "tolerance", "fit_slope", "orthonormality_error"]

#: Multipliers of ``eps * size`` for each quantity that is compared to rounding.
#: ``size`` is the largest matrix dimension involved (``max(m, n)``).
#: The factors are generous enough for any LAPACK backend and small enough that
#: a real bug (an O(1) or O(h) error) is many orders of magnitude above them.
TOLERANCE_FACTORS = {
    # ||Q^T Q - I||_F for a factor produced by QR/SVD
    "orthonormality": 20.0,
    # ||Y1 - Y2||_F / max(||Y||_F, tiny) for two representations of one matrix
    "reconstruction": 50.0,
    # ||Y1 - Y2||_F / ||Y||_F after one integrator step computed in two ways
    "step": 500.0,
    # ||Y - Y^T||_F / ||Y||_F for a symmetric problem
    "symmetry": 100.0,
    # absolute slack added to truncation bounds (relative to ||S_hat||_F)
    "truncation": 20.0,
    # check_grad (not through tolerance()): default rtol = factor * eps**(2/3). Central
    # differences with step eps**(1/3) are accurate to ~eps**(2/3) relative (3.7e-11 in
    # float64); 3e4 * eps**(2/3) = 1.1e-6 leaves room for curvature (f''' against f') and
    # is still 1000x below a 0.1 % error in a backward.
    "grad_check_rtol": 3.0e4,
    # check_grad: absolute floor = factor * eps * scale / step, the rounding of
    # (f(x + step d) - f(x - step d)) / (2 step) when f is evaluated to ~factor ulps of scale.
    "grad_check_roundoff": 100.0,
}


def tolerance(quantity: str, dtype=np.float64, size: int = 1, cond: float = 1.0) -> float:
    """Tolerance for ``quantity`` in precision ``dtype`` at problem size ``size``.

    ``tol = TOLERANCE_FACTORS[quantity] * eps(dtype) * max(size, 1) * cond``.

    Parameters
    ----------
    quantity : str
        A key of :data:`TOLERANCE_FACTORS`.
    dtype : numpy dtype, default float64
    size : int
        Largest matrix dimension involved.
    cond : float
        Condition number of the problem (1 for orthonormality and reconstructions).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``quantity`` is unknown or ``size``/``cond`` are not positive.

    Examples
    --------
    >>> bool(tolerance("orthonormality", size=10) == 20 * 10 * np.finfo(np.float64).eps)
    True
    """
    if quantity not in TOLERANCE_FACTORS:
        raise ValueError(
            f"quantity must be one of {sorted(TOLERANCE_FACTORS)}, got {quantity!r}")
    if not (size >= 0):
        raise ValueError(f"size must be >= 0, got {size!r}")
    if not (cond > 0):
        raise ValueError(f"cond must be > 0, got {cond!r}")
    eps = float(np.finfo(np.dtype(dtype)).eps)
    return TOLERANCE_FACTORS[quantity] * eps * max(int(size), 1) * float(cond)


def fit_slope(h, err) -> float:
    """Least-squares slope of ``log(err)`` against ``log(h)``: the observed order.

    Parameters
    ----------
    h : (k,) array_like
        Step sizes, all > 0.
    err : (k,) array_like
        Errors, all > 0 and finite.

    Returns
    -------
    float
        The fitted slope ``p`` in ``err ~ C h^p``.

    Raises
    ------
    ValueError
        If fewer than two points are given or any value is not positive and finite.

    Examples
    --------
    >>> h = np.array([0.1, 0.05, 0.025])
    >>> round(fit_slope(h, 3 * h**2), 12)
    2.0
    """
    h = np.asarray(h, dtype=float).ravel()
    err = np.asarray(err, dtype=float).ravel()
    if h.shape != err.shape or h.size < 2:
        raise ValueError(
            f"h and err must be 1-d of the same length >= 2, got shapes {h.shape} and {err.shape}")
    if not (np.all(np.isfinite(h)) and np.all(h > 0)):
        raise ValueError(f"h must be positive and finite, got {h!r}")
    if not (np.all(np.isfinite(err)) and np.all(err > 0)):
        raise ValueError(f"err must be positive and finite, got {err!r}")
    slope, _ = np.polyfit(np.log(h), np.log(err), 1)
    return float(slope)
