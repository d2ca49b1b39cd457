"""Atomic file writes: a reader (or a crash) sees the old file or the complete new one.

Every file of a run folder (``checkpoint.npz``, ``history.csv``, ``run.json``) is written
through :func:`atomic_write`: a temporary file in the same folder, flushed and fsynced, then
``os.replace``; the temporary file is removed if anything (also Ctrl-C) interrupts the write.
Only a process killed outright (``kill -9``, a power cut) leaves one behind:
:func:`remove_temporary_files` removes those of a folder, and the next run of the folder
calls it with the folder's lock held.
See docs/design.md, section "Training runs: records, checkpoints, locks".
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["atomic_write", "write_text", "remove_temporary_files"]


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


def remove_temporary_files(folder, names: Sequence[str]) -> list:
    """Remove the temporary files that :func:`atomic_write` of ``folder/<name>`` left behind.

    Those are ``.<name>.<random>.tmp`` for each of ``names``; call it only while no other
    process writes into ``folder`` (with the run folder's lock held).

    Returns
    -------
    list of str
        The names of the files removed, sorted.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in (".run.json.x8f_2k.tmp", ".run.json.tmp", "run.json"):
    ...         _ = (Path(d) / name).write_text("")
    ...     remove_temporary_files(d, ["run.json"]), sorted(os.listdir(d))
    (['.run.json.x8f_2k.tmp'], ['.run.json.tmp', 'run.json'])
    """
    pattern = re.compile("|".join(rf"\.{re.escape(n)}\.\w+\.tmp" for n in names))
    removed = []
    for path in sorted(Path(folder).iterdir()):
        if pattern.fullmatch(path.name) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    return removed
