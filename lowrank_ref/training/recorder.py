"""The records of a run: :class:`Recorder` writes them from the hooks of
:func:`~lowrank_ref.training.train`.

The training itself (:func:`lowrank_ref.training.epoch.train_epoch`) does no I/O; the
recorder writes ``run.json`` (configuration, status, sessions), the checkpoint and
``history.csv`` after every epoch, the progress lines and the epoch lines, and records how
the run ended: "finished", "diverged" (:meth:`Recorder.diverged`, the one place a
divergence is recorded: :class:`TrainingDiverged`), "interrupted" or "failed". The files
and their guarantees: docs/design.md, section "Training runs: records, checkpoints, locks".
"""
from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, List, Optional

from ..lowrank_layers import LowRankLayer
from ..nn import Network
from .atomic import write_text
from .checkpoint import CHECKPOINT_NAME, save_checkpoint
from .config import TrainConfig
from .epoch import NonFinite
from .progress import Progress
from .records import HISTORY_NAME, RUN_NAME, history_csv, portable_source, sessions_of

__all__ = ["Recorder", "TrainingDiverged", "now"]


class TrainingDiverged(RuntimeError):
    """The loss (or a parameter) became non-finite; the last good checkpoint is kept.

    Attributes
    ----------
    epoch, batch : int
        1-based epoch (over both phases) and batch of the first non-finite loss (``batch`` is
        the epoch's last batch when the non-finite value showed up at the end-of-epoch check).
    checkpoint : pathlib.Path or None
        The last good checkpoint (unchanged), or None if none was written yet.
    """

    def __init__(self, message: str, epoch: int, batch: int, checkpoint: Optional[Path]):
        super().__init__(message)
        self.epoch, self.batch, self.checkpoint = epoch, batch, checkpoint


def now() -> str:
    """The local time to the second, as the records write it."""
    return datetime.now().isoformat(timespec="seconds")


def _ranks_now(model: Network) -> str:
    ranks = [layer.rank for layer in model.layers if isinstance(layer, LowRankLayer)]
    return f"ranks {'|'.join(map(str, ranks))}" if ranks else ""


def _evaluated(row: dict) -> str:
    """What an epoch line says of the evaluation: the validation and test metrics that the
    row holds, each named."""
    text = ""
    for part, name in (("val", "validation"), ("test", "test")):
        if row.get(f"{part}_loss") is not None:
            text += (f", {name} loss {row[f'{part}_loss']:.4f}, {name} acc "
                     f"{100 * row[f'{part}_acc']:.2f}%")
    return text


class Recorder:
    """Writes the records of one call of :func:`~lowrank_ref.training.train` into ``out``.

    Parameters
    ----------
    config : TrainConfig
    out : pathlib.Path
        The run folder (its lock held by the caller).
    log : callable
        Receives each line of output.
    progress : {"live", "lines", "off"}
        Within-epoch progress (:class:`~lowrank_ref.training.progress.Progress`).
    history : list of dict
        The rows of the epochs done (a resumed checkpoint's); appended to by
        :meth:`Recorder.epoch_done`.
    previous : dict or None
        The resumed run's ``run.json`` (its sessions are carried over).
    session : dict
        This call's session (:func:`~lowrank_ref.training.records.new_session`).
    last_good : pathlib.Path or None
        The checkpoint resumed from (None: a new run); ``last_good_epoch`` its epochs.
    t_call : float
        ``time.perf_counter()`` at the start of the call (the session's seconds).
    """

    def __init__(self, config: TrainConfig, out: Path, log: Callable[[str], None], progress: str,
                 history: List[dict], previous: Optional[dict], session: dict,
                 last_good: Optional[Path], last_good_epoch: int, t_call: float):
        self.config, self.out, self.log = config, out, log
        self.history, self.session, self.t_call = history, session, t_call
        self.last_good, self.last_good_epoch = last_good, last_good_epoch
        self.bar = Progress(progress, log)
        self.sessions = sessions_of(previous)
        for earlier in self.sessions:  # the caller holds the lock: a "running" one was killed
            if earlier.get("status") == "running":
                earlier.update(status="killed", error="the process ended without recording "
                               "how (killed, or the machine stopped); the checkpoint may hold "
                               "epochs that this session does not list")
        self.run: dict = {}

    # -- run.json -------------------------------------------------------------------------
    def start(self, data: dict) -> None:
        """Write ``run.json`` of the starting call (status "running"); ``data`` describes the
        data set (name, source, sample counts)."""
        self.run = {"config": self.config.to_dict(), "seed": self.config.seed,
                    "out": str(self.out), "data": dict(data, source=portable_source(
                        data["source"])),
                    "status": "running", "sessions": self.sessions + [self.session]}
        self.write_run()

    def write_run(self, status: str = "running", error: Optional[str] = None,
                  final: Optional[dict] = None) -> None:
        """Rewrite ``run.json`` with ``status`` (and the error or the final metrics)."""
        run, session = self.run, self.session
        run["status"] = session["status"] = status
        if status != "running":
            session["ended"] = now()
        if error is not None:
            run["error"] = session["error"] = error
        if final is not None:
            run["final"] = final
        run["train_seconds"] = float(sum(r["seconds"] for r in self.history))
        session["seconds"] = time.perf_counter() - self.t_call
        write_text(self.out / RUN_NAME, json.dumps(run, indent=2) + "\n")

    # -- the hooks of the loop --------------------------------------------------------------
    def epoch_started(self, label: str, n_batches: int, n: int, early: bool) -> None:
        """An epoch (``label``, e.g. "epoch 3/10") of ``n_batches`` batches over ``n``
        samples begins: the progress line starts (``early``: also its first batches)."""
        self.bar.start(label, n_batches, n, early=early)

    def batch_done(self, batches_done: int, seen: int, model: Network) -> None:
        """``batches_done`` batches (``seen`` samples) of the epoch are stepped: the
        progress line shows them and the current ranks of ``model``."""
        self.bar.update(batches_done, seen, _ranks_now(model))

    def batches_done(self) -> None:
        """The epoch's steps are done (the live progress line is cleared)."""
        self.bar.finish()

    def epoch_done(self, label: str, row: dict, model: Network, optimizer, epochs_done: int,
                   finetune_done: int, phase: str) -> None:
        """The checkpoint, ``history.csv``, ``run.json`` and the epoch line of ``row``."""
        ckpt_path = self.out / CHECKPOINT_NAME
        # history gets the row once the checkpoint holds it: if Ctrl-C interrupts the
        # write, both still describe the previous epoch.
        save_checkpoint(ckpt_path, model, optimizer, self.config, self.history + [row],
                        epochs_done, finetune_done, phase)
        self.history.append(row)
        self.last_good, self.last_good_epoch = ckpt_path, row["epoch"]
        self.session["epochs"].append({"epoch": row["epoch"], "finished": now()})
        write_text(self.out / HISTORY_NAME, history_csv(self.history))
        self.write_run()
        self.log(f"{label}: train loss {row['train_loss']:.4f}, train acc "
                 f"{100 * row['train_acc']:.2f}% (running)" + _evaluated(row)
                 + (f", ranks {row['ranks']}" if row["ranks"] else "")
                 + f", eval params {row['eval_params']:,} (c.r. {100 * row['eval_cr']:.1f}%)"
                 + f", {row['seconds']:.1f} s")

    def finished(self, final: dict) -> None:
        """The run trained its last epoch: status "finished" with the final metrics."""
        csv_path = self.out / HISTORY_NAME
        if not csv_path.exists():                      # resumed into a new folder, nothing left
            write_text(csv_path, history_csv(self.history))
        self.write_run(status="finished", final=final)

    def diverged(self, exc: NonFinite, epoch: int, n_batches: int) -> None:
        """Record the divergence in ``run.json`` (status "diverged") and raise
        :class:`TrainingDiverged`; the checkpoint is left as it is."""
        self.bar.finish()
        kept = (f"the last good checkpoint {self.last_good} (after epoch "
                f"{self.last_good_epoch}) is kept unchanged" if self.last_good is not None
                else "no checkpoint was written yet")
        msg = (f"training diverged: {exc.what} at epoch {epoch}, batch {exc.batch} of "
               f"{n_batches} (lr {exc.lr:g}); {kept}; try a smaller lr")
        self.write_run(status="diverged", error=msg)
        raise TrainingDiverged(msg, epoch, exc.batch, self.last_good) from None

    def ended(self, exc: BaseException, epoch: int) -> None:
        """Record how a call ended that neither finished nor diverged (Ctrl-C: "interrupted",
        any other error: "failed"); each write on its own, none hiding ``exc``."""
        kept = (f"the checkpoint {self.last_good} (after epoch {self.last_good_epoch}) is "
                f"complete: resume from it" if self.last_good is not None
                else "no checkpoint was written yet")
        with contextlib.suppress(Exception):
            if isinstance(exc, KeyboardInterrupt):
                self.write_run(status="interrupted",
                               error=f"interrupted (Ctrl-C) in epoch {epoch}; {kept}")
            else:
                self.write_run(status="failed",
                               error=f"{type(exc).__name__} in epoch {epoch}: {exc}; {kept}")
        with contextlib.suppress(Exception):
            if self.history:
                write_text(self.out / HISTORY_NAME, history_csv(self.history))
        with contextlib.suppress(Exception):
            self.bar.finish()
