"""Argument checks of the whole package, with one rule for the exception class.

The rule
--------
* ``TypeError``: the argument is not the *kind* of object the parameter takes -- not an
  ``int`` where an int is expected (``bool`` and ``float`` are not ints; NumPy integers
  are), not a real number where a number is expected (``bool`` is not a number), not a
  ``bool`` for a flag, not an array of real numbers (complex, object or string arrays), not
  callable, not a ``numpy.random.Generator``, a dtype other than float32/float64 (a dtype
  names a type), a path that is not a ``str``/``os.PathLike``.
* ``ValueError``: the argument is of the right kind but not an allowed value -- out of
  range, not finite, the wrong shape or number of dimensions, inconsistent with another
  argument, or an option string that is not one of the allowed names (for an option the
  names are its values).

Every message names the argument, says what was expected and shows what was received:
``"rank must be an int >= 1, got float 1.5"``. The functions return the checked value
converted to its plain type (``int``, ``float``, ``np.dtype``, a float ndarray).
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Optional

import numpy as np

__all__ = ["check_int", "check_real", "check_bool", "check_choice", "check_rng",
           "check_callable", "check_float_dtype", "check_int_list", "check_rank_bounds",
           "check_path",
           "as_float_array"]


def _got(value) -> str:
    return f"{type(value).__name__} {value!r}"


def _range_text(low, high, low_open=False, high_open=False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}" if isinstance(low, float)
                     else f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}" if isinstance(high, float)
                     else f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def check_int(value, name: str, low: Optional[int] = None, high: Optional[int] = None,
              optional: bool = False) -> Optional[int]:
    """``value`` as an ``int`` in ``[low, high]`` (``None`` allowed if ``optional``).

    Examples
    --------
    >>> check_int(3, "rank", low=1)
    3
    >>> check_int(1.5, "rank", low=1)
    Traceback (most recent call last):
    ...
    TypeError: rank must be an int >= 1, got float 1.5
    """
    expected = "an int" + (f" {_range_text(low, high)}" if low is not None or high is not None
                           else "") + (" or None" if optional else "")
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {expected}, got {_got(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {expected}, got {int(value)}")
    return int(value)


def check_real(value, name: str, low: Optional[float] = None, high: Optional[float] = None,
               low_open: bool = False, high_open: bool = False,
               optional: bool = False) -> Optional[float]:
    """``value`` as a finite ``float`` in the interval given (``None`` allowed if ``optional``).

    ``low_open``/``high_open`` exclude the bound (``lr > 0``: ``low=0, low_open=True``).

    Examples
    --------
    >>> check_real(0.1, "lr", low=0, low_open=True)
    0.1
    >>> check_real(float("nan"), "tau", low=0)
    Traceback (most recent call last):
    ...
    ValueError: tau must be a finite number >= 0, got nan
    """
    rng = _range_text(low, high, low_open, high_open)
    expected = "a finite number" + (f" {rng}" if rng else "") + (" or None" if optional else "")
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {_got(value)}")
    v = float(value)
    if (not math.isfinite(v) or (low is not None and (v <= low if low_open else v < low))
            or (high is not None and (v >= high if high_open else v > high))):
        raise ValueError(f"{name} must be {expected}, got {v!r}")
    return v


def check_bool(value, name: str) -> bool:
    """``value`` as a ``bool`` (``numpy.bool_`` accepted; 0/1 are not flags)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_got(value)}")
    return bool(value)


def check_choice(value, name: str, choices) -> str:
    """``value`` if it is one of ``choices`` (ValueError otherwise, whatever its type)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """``rng`` if it is a ``numpy.random.Generator`` (e.g. ``np.random.default_rng(0)``)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def check_callable(f, name: str, signature: str):
    """``f`` if it is callable; ``signature`` says how it is called (for the message)."""
    if not callable(f):
        raise TypeError(f"{name} must be callable as {signature}, got {type(f).__name__}")
    return f


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``np.dtype(dtype)`` if it is float32 or float64.

    Examples
    --------
    >>> check_float_dtype("float32")
    dtype('float32')
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def check_int_list(value, name: str, low: int = 1, min_len: int = 1) -> list:
    """``value`` as a list of at least ``min_len`` ints ``>= low`` (e.g. layer widths).

    Examples
    --------
    >>> check_int_list((784, 500, 10), "sizes", min_len=2)
    [784, 500, 10]
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of at least {min_len} ints >= {low}, got "
                        f"{_got(value)}")
    out = [check_int(v, f"{name}[{i}]", low=low) for i, v in enumerate(value)]
    if len(out) < min_len:
        raise ValueError(f"{name} must list at least {min_len} ints >= {low}, got {out}")
    return out


def check_rank_bounds(min_rank, max_rank) -> tuple:
    """``(min_rank, max_rank)``: an int >= 1, and an int >= min_rank or None (no cap)."""
    min_rank = check_int(min_rank, "min_rank", low=1)
    return min_rank, check_int(max_rank, "max_rank", low=min_rank, optional=True)


def check_path(value, name: str, optional: bool = False):
    """``os.fspath(value)`` if it is a non-empty ``str`` or ``os.PathLike`` (``None`` if
    ``optional``).

    The empty string is refused (ValueError), not taken as the current folder: it is what an
    unset shell variable gives (``--out "$RUN"``).
    """
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike)"
                        + (" or None" if optional else "") + f", got {_got(value)}")
    path = os.fspath(value)
    if len(path) == 0:
        raise ValueError(f"{name} must be a non-empty path, got {path!r}")
    return path


def as_float_array(a, name: str, ndim: int) -> np.ndarray:
    """``a`` as a finite real float32/float64 array with ``ndim`` dimensions.

    Integer and boolean input is converted to float64; float32 and float64 are kept.

    Raises
    ------
    TypeError
        If ``a`` is not array-like, or is complex or of an object or string dtype.
    ValueError
        If ``a`` has the wrong number of dimensions, or contains NaN or Inf.
    """
    if a is None:
        raise TypeError(f"{name} must be a {ndim}-d array, got None")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy raises many kinds
        raise TypeError(f"{name} must be a {ndim}-d array, got {type(a).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real float array, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-d, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {int(np.size(arr) - np.isfinite(arr).sum())} "
                         f"non-finite entries")
    return arr
