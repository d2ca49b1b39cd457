"""Atomic file writes: a reader (or a crash) sees the old file or the complete new one.

Every file of a run folder (``checkpoint.npz``, ``history.csv``, ``run.json``) is written
through :func:`atomic_write`: a temporary file in the same folder, flushed and fsynced, then
``os.replace``; the temporary file is removed if anything (also Ctrl-C) interrupts the write.
See docs/design.md, section "Training runs: records, checkpoints, locks".
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "write_text"]


def atomic_write(path, write: Callable) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync, ``os.replace``.

    Parameters
    ----------
    path : str or os.PathLike
    write : callable
        ``write(f)`` writes the content to the binary file object ``f``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_write(Path(d) / "a.txt", lambda f: f.write(b"hello"))
    ...     (Path(d) / "a.txt").read_text(), os.listdir(d)
    ('hello', ['a.txt'])
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):        # make the rename itself durable (POSIX)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_text(path, text: str) -> None:
    """:func:`atomic_write` of ``text`` encoded as UTF-8."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
