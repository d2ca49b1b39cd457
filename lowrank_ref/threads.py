"""How many threads the BLAS and LAPACK libraries under NumPy and SciPy may use.

A DLRT step is a few dozen small or tall-skinny products, QRs and SVDs (e.g. ``(256, 500)
@ (500, 20)``, a QR of ``(500, 20)``). OpenBLAS starts its thread pool for each of them by
default, and the hand-over costs more than the second core saves: measured on a 2-core
machine (``benchmarks/bench_threads.py``, table in ``benchmarks/README.md``), one epoch of
rank-adaptive DLRT on the paper's network took about 14 times longer with OpenBLAS's default
of 2 threads than with 1, and collapsed further when another process was busy on the
machine. So the package chooses the thread count itself, :data:`DEFAULT_THREADS` = 1,
through ``threadpoolctl`` (which changes the libraries' pools at run time, so it works in a
process where NumPy was imported long before ``lowrank_ref``, such as a notebook):

* :func:`blas_threads` limits the pools for the duration of a ``with`` block and restores
  them afterwards. :func:`lowrank_ref.training.train`, :func:`~lowrank_ref.training.sweep`, the figures command and
  the command line run inside it (``--threads N``, ``TrainConfig.threads``).
* :func:`set_blas_threads` limits them for the rest of the process (the tutorials call it
  once at the top; useful in notebooks and scripts with their own NumPy work).
* Every optimiser step of :mod:`lowrank_ref.dlrt` is decorated with :func:`uses_blas_threads`:
  outside any ``blas_threads`` block it runs with the package default (set by
  :func:`set_default_threads`), so a notebook's own training loop gets the fast setting too.
  Applying and restoring the limit costs about 12 microseconds, well under 1 % of a step.

``threads=None`` means "do not limit": the libraries keep their own defaults (OpenBLAS:
one thread per core). Where more threads pay off (dense layers of width ~2000 and more,
measured in ``benchmarks/README.md``), pass ``--threads 2`` or wrap the code in
``with blas_threads(2):``.

Results do not depend on the thread count beyond rounding; bit-identical reruns need the
same machine *and* the same thread count.
"""
from __future__ import annotations

import contextlib
import functools
import numbers
from typing import Iterator, Optional

__all__ = ["DEFAULT_THREADS", "MAX_THREADS", "check_threads", "blas_threads", "uses_blas_threads",
           "set_blas_threads", "set_default_threads", "get_default_threads", "blas_info"]

#: The thread count the package uses unless told otherwise (measured: 1 is fastest for
#: every method on the paper's network, see the module docstring).
DEFAULT_THREADS: Optional[int] = 1

#: The largest thread count accepted: more than any machine this runs on has cores, and far
#: below what the BLAS libraries' C ``int`` can hold (a larger count would overflow there).
MAX_THREADS = 1024

_default: Optional[int] = DEFAULT_THREADS
_active: list = []          # thread counts of the enclosing blas_threads blocks, innermost last
_controller = None


def check_threads(threads, name: str = "threads") -> Optional[int]:
    """``threads`` as an int from 1 to :data:`MAX_THREADS`, or None (no limit).

    Raises
    ------
    TypeError
        If ``threads`` is not an int or None (``bool`` and ``float`` are refused).
    ValueError
        If ``threads < 1`` or ``threads > MAX_THREADS``.

    Examples
    --------
    >>> check_threads(2), check_threads(None)
    (2, None)
    """
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1 or None (no limit), got "
                        f"{type(threads).__name__} {threads!r}")
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"{name} must be an int from 1 to {MAX_THREADS} or None (no limit), "
                         f"got {threads}")
    return int(threads)


def _get_controller():
    """One ``threadpoolctl.ThreadpoolController`` (it lists the loaded BLAS libraries once;
    NumPy's and SciPy's are loaded when ``lowrank_ref`` is imported)."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (make sure SciPy's own OpenBLAS is loaded and seen)
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def blas_threads(threads: Optional[int] = DEFAULT_THREADS) -> Iterator[Optional[int]]:
    """Limit the BLAS/LAPACK thread pools to ``threads`` inside a ``with`` block.

    Parameters
    ----------
    threads : int >= 1 or None, default :data:`DEFAULT_THREADS`
        None: leave the libraries at their own setting.

    Yields
    ------
    int or None
        ``threads``.

    Examples
    --------
    >>> with blas_threads(1):
    ...     [lib["num_threads"] for lib in blas_info()][:1]
    [1]
    """
    threads = check_threads(threads)
    _active.append(threads)
    try:
        if threads is None:
            yield None
        else:
            with _get_controller().limit(limits=threads, user_api="blas"):
                yield threads
    finally:
        _active.pop()


def set_blas_threads(threads: Optional[int] = DEFAULT_THREADS):
    """Limit the BLAS/LAPACK pools of the whole process to ``threads`` from now on.

    For scripts and notebooks that do their own linear algebra besides the optimisers (the
    tutorials call it once at the top): unlike :func:`blas_threads` it is not scoped. It also
    makes ``threads`` the default of the optimiser steps (:func:`set_default_threads`).

    Parameters
    ----------
    threads : int >= 1 or None, default :data:`DEFAULT_THREADS`
        None: the libraries' own default (what a process has before any limit).

    Returns
    -------
    callable
        ``restore()``: puts back the limits and the default that were in force before.

    Examples
    --------
    >>> restore = set_blas_threads(1)
    >>> {lib["num_threads"] for lib in blas_info()}
    {1}
    >>> restore()
    """
    threads = check_threads(threads)
    controller = _get_controller()
    limiter = controller.limit(limits=threads, user_api="blas") if threads is not None else None
    old_default = set_default_threads(threads)

    def restore():
        if limiter is not None:
            limiter.restore_original_limits()
        set_default_threads(old_default)
    return restore


def set_default_threads(threads: Optional[int]) -> Optional[int]:
    """Set the thread count of optimiser steps run outside any :func:`blas_threads` block.

    Returns the previous default. ``None`` lets the libraries choose (no limit).

    Examples
    --------
    >>> old = set_default_threads(2); set_default_threads(old)
    2
    """
    global _default
    threads = check_threads(threads)
    old, _default = _default, threads
    return old


def get_default_threads() -> Optional[int]:
    """The thread count of optimiser steps outside any :func:`blas_threads` block."""
    return _default


def uses_blas_threads(func):
    """Decorator: run ``func`` under the package's thread setting.

    Inside a :func:`blas_threads` block the block's setting is already in force and ``func``
    runs as it is; outside, it runs within ``blas_threads(get_default_threads())``.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _active or _default is None:
            return func(*args, **kwargs)
        with blas_threads(_default):
            return func(*args, **kwargs)
    return wrapper


def blas_info() -> list:
    """The BLAS libraries loaded in this process and their current thread counts.

    Returns
    -------
    list of dict
        One per library: ``library`` (e.g. "openblas"), ``version``, ``num_threads``,
        ``filename`` (the shared object's file name, without its folder).
    """
    import os
    return [{"library": lib.internal_api, "version": lib.version,
             "num_threads": lib.num_threads, "filename": os.path.basename(lib.filepath)}
            for lib in _get_controller().select(user_api="blas").lib_controllers]
