"""The training loop: :func:`train`, :func:`evaluate` and :class:`TrainingDiverged`.

One call of :func:`train` holds the run folder's lock (:func:`~lowrank_ref.training.records.
run_folder_lock`), resumes from a checkpoint if asked, and runs the remaining epochs of both
phases, each by :func:`~lowrank_ref.training.epoch.train_epoch` (no I/O); the
:class:`~lowrank_ref.training.recorder.Recorder` writes the checkpoint, ``history.csv`` and
``run.json`` after every epoch from its hooks. How the run ends is written to ``run.json``
as its ``status``: "finished", "diverged" (a non-finite loss or parameter:
:class:`TrainingDiverged`), "interrupted" (Ctrl-C) or "failed" (any other error). The
reproducibility contract and what an epoch reports are in the docstring of
:mod:`lowrank_ref.training`.
"""
from __future__ import annotations

import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from .. import ops
from .._validate import check_bool, check_callable, check_choice, check_int, check_path
from ..autodiff import Tensor
from ..data import Dataset
from ..dlrt import parameter_counts
from ..methods import method_record
from ..nn import Network, accuracy
from ..threads import blas_threads
from .atomic import remove_temporary_files
from .checkpoint import (CHECKPOINT_NAME, CheckpointError, check_optimizer_state,
                         checkpoint_path, load_checkpoint, restore_model, restore_optimizer)
from .config import (RESUMABLE_CHANGES, TrainConfig, build_optimizer, config_differences,
                     lr_at)
from .data_checks import prepare_data
from .epoch import NonFinite, check_epoch, train_epoch
from .progress import PROGRESS_MODES
from .recorder import Recorder, TrainingDiverged
from .records import (HISTORY_NAME, RUN_NAME, check_not_source, new_session, read_record,
                      run_folder_lock)
from .starts import build_model, model_to_restore

__all__ = ["train", "evaluate", "TrainingDiverged", "describe_method"]


def evaluate(model: Network, X: np.ndarray, y: np.ndarray, batch_size: int = 1024
             ) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)`` (:meth:`Network.predict`, no graph).

    Parameters
    ----------
    model : Network
        An MLP or a Sequential (e.g. LeNet5).
    X : ndarray
        A batch the model takes (``(n, n_in)``, or images ``(n, 1, 28, 28)``), of the
        model's dtype.
    y : (n,) int ndarray
    batch_size : int, default 1024
        Rows per forward pass (memory only; the result does not depend on it beyond rounding).

    Returns
    -------
    (float, float)
        ``(loss, accuracy)``, accuracy in [0, 1]. Non-finite logits give a non-finite loss
        (no warning).

    Examples
    --------
    >>> from lowrank_ref.nn import MLP
    >>> rng = np.random.default_rng(0)
    >>> model = MLP.dense([4, 8, 3], rng)
    >>> loss, acc = evaluate(model, rng.standard_normal((10, 4)), rng.integers(0, 3, 10))
    >>> loss > 0 and 0 <= acc <= 1
    True
    """
    if not isinstance(model, Network):
        raise TypeError(f"model must be a Network (an MLP or a Sequential), got "
                        f"{type(model).__name__}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    with np.errstate(all="ignore"):
        logits = model.predict(X, batch_size=batch_size)
        loss = float(ops.cross_entropy(Tensor(logits), y).value)
    return loss, accuracy(logits, y)


def _final(model: Network, history: list) -> dict:
    """The final metrics :func:`train` returns (but ``seconds`` and ``out``): the last history
    row's, the ranks of the low-rank layers and the dense parameter count."""
    counts = parameter_counts(model)
    final = {k: history[-1].get(k) for k in ("epoch", "phase", "train_loss", "train_acc",
                                             "val_loss", "val_acc", "test_loss", "test_acc",
                                             "eval_params", "train_params", "eval_cr",
                                             "train_cr")}
    final.update(ranks=[r for r in counts["ranks"] if r is not None],
                 dense_params=counts["dense_params"])
    return final


def _evaluation(model: Network, ds: Dataset, validation: bool, last: bool) -> dict:
    """The metrics of an epoch's end: ``val_loss``, ``val_acc``, ``test_loss``, ``test_acc``.

    With ``validation`` the validation part is evaluated after every epoch and the test set
    after the ``last`` epoch only (None otherwise), so that nothing is chosen on it; without,
    the test set after every epoch (the validation metrics None).
    """
    metrics = dict.fromkeys(("val_loss", "val_acc", "test_loss", "test_acc"))
    if validation:
        metrics["val_loss"], metrics["val_acc"] = evaluate(model, ds.X_valid, ds.y_valid)
    if last or not validation:
        metrics["test_loss"], metrics["test_acc"] = evaluate(model, ds.X_test, ds.y_test)
    return metrics


def _same_path(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def describe_method(config: TrainConfig) -> str:
    """The method of ``config`` in a few words, for the run's first log line.

    Examples
    --------
    >>> describe_method(TrainConfig(method="adaptive", tau=0.1))
    'rank-adaptive DLRT, start rank 150, tau 0.1, 1 pass(es)'
    """
    record = method_record(config.method)
    what = record.title
    if "rank" in record.options:
        what += f", {'start rank' if record.rank_adaptive else 'rank'} {config.rank}"
    if "tau" in record.options:
        what += f", tau {config.tau}"
    if "passes" in record.options:
        what += f", {config.passes} pass(es)"
    return what


def _default_out(method: str) -> Path:
    return Path("runs") / f"{method}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _signature(path: Path):
    """What changes when a file is replaced or rewritten (None if it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _resumable(resume, config: TrainConfig, force: bool) -> Tuple[dict, object]:
    """The checkpoint to resume from, if ``config`` may continue it; and its file signature."""
    path = checkpoint_path(resume)
    signature = _signature(path)          # before reading: a later change is then seen
    ckpt = load_checkpoint(path)
    diffs = config_differences(ckpt["config"], config)
    if diffs and not force:
        raise ValueError(f"cannot resume from {ckpt['path']}: the configuration differs "
                         f"({'; '.join(diffs)}); only {', '.join(RESUMABLE_CHANGES)} "
                         f"may change, or pass force=True (--force)")
    if ckpt["epochs_done"] > config.epochs:
        raise ValueError(f"epochs must be >= {ckpt['epochs_done']} (the epochs the "
                         f"checkpoint {ckpt['path']} has done), got {config.epochs}")
    if ckpt["finetune_done"] > config.finetune_epochs:
        raise ValueError(f"finetune_epochs must be >= {ckpt['finetune_done']} (the "
                         f"fine-tuning epochs the checkpoint {ckpt['path']} has done), "
                         f"got {config.finetune_epochs}")
    if ckpt["finetune_done"] and ckpt["epochs_done"] != config.epochs:
        raise ValueError(f"epochs must stay {ckpt['epochs_done']}: the checkpoint "
                         f"{ckpt['path']} is already in the fine-tuning phase, got "
                         f"{config.epochs}")
    return ckpt, signature


def _optimizer(config: TrainConfig, model: Network, phase: str, ckpt: Optional[dict],
               force: bool, log: Callable, X: np.ndarray, y: np.ndarray):
    """The optimiser of ``phase``, with the state of ``ckpt`` if it holds this phase's.

    The state is checked (:func:`~lowrank_ref.training.checkpoint.restore_optimizer`,
    :func:`~lowrank_ref.training.checkpoint.check_optimizer_state` on the samples ``X``,
    ``y``); one that does not fit raises CheckpointError, or with ``force`` (the
    configuration may differ from the checkpoint's) is dropped with a note.
    """
    opt = build_optimizer(config, model, phase)
    if ckpt is None or ckpt["opt_phase"] != phase:
        return opt
    try:
        restore_optimizer(opt, ckpt["arrays"], ckpt["path"], np.dtype(config.dtype))
        check_optimizer_state(model, opt, lambda m: build_optimizer(config, m, phase), X, y,
                              ckpt["path"])
    except CheckpointError as exc:
        if not force:
            raise
        log(f"note: {exc}; with force the optimiser starts afresh")
        opt = build_optimizer(config, model, phase)
    return opt


def _first_line(config: TrainConfig, ds: Dataset, n: int, n_valid: Optional[int],
                resumed_after: Optional[int], out: Path) -> str:
    """The run's first log line: the method, the network, the data and the schedule."""
    what = describe_method(config)
    if config.ranks is not None or config.prune_from is not None:
        what += (f" (ranks {config.ranks or 'by prune_tau'}"
                 + (f", pruned from {config.prune_from})" if config.prune_from else ")"))
    if config.optimizer != "sgd":
        what += f", optimizer {config.optimizer}"
    net = "LeNet5" if config.arch == "lenet5" else "-".join(map(str, config.sizes))
    samples = (f"{n} train / {n_valid} validation / {len(ds.y_test)} test samples (the "
               f"test set evaluated after the last epoch only)" if config.validation
               else f"{n} train / {len(ds.y_test)} test samples")
    return (f"{what} training of {net} on "
            f"{ds.name}: {samples}, {config.dtype}, batch "
            f"{config.batch_size}, lr {config.lr:g} ({config.schedule}), momentum "
            f"{config.momentum:g}; epochs {config.epochs}"
            + (f" + {config.finetune_epochs} fine-tuning" if config.finetune_epochs else "")
            + (f"; resuming after epoch {resumed_after}" if resumed_after is not None else "")
            + f"; records in {out}")


def train(config: TrainConfig, log: Callable[[str], None] = print,
          data: Optional[Dataset] = None, *, resume=None, force: bool = False,
          progress: Optional[str] = None) -> dict:
    """Train the network of ``config``; write records and checkpoints to ``config.out``.

    Parameters
    ----------
    config : TrainConfig
    log : callable, default print
        Receives each line of output (progress lines, one line per epoch, notes).
    data : Dataset, optional
        Use these arrays instead of loading ``config.dataset`` (tests, custom data); any
        object with the fields of :class:`lowrank_ref.data.Dataset`, with its validation part
        if ``config.validation`` (:func:`lowrank_ref.data.split_validation`). ``n_train`` /
        ``n_valid`` / ``n_test`` still apply.
    resume : str or os.PathLike, optional
        A run folder (or checkpoint file) to continue from. Its configuration must equal
        ``config`` except for ``epochs``, ``finetune_epochs`` (more epochs, or fine-tuning
        after a finished run), ``out`` (None: write to the ``resume`` folder) and
        ``threads``. The continued run is bit-identical to an uninterrupted one (with the
        same thread count).
    force : bool, default False
        Resume even if the configuration differs (arrays of the checkpoint are cast to
        ``config.dtype``; layer kinds and shapes must still match). Only with ``resume``.
    progress : {"live", "lines", "off"}, optional
        Within-epoch progress; None: "live" (a ``\\r`` line on stdout) when stdout is a
        terminal and ``log`` is ``print``, else "lines" (about every 10% of an epoch).

    Returns
    -------
    dict
        Final metrics: ``epoch``, ``phase``, ``train_loss``, ``train_acc``, ``val_loss``,
        ``val_acc`` (None without validation), ``test_loss``, ``test_acc``, ``ranks`` (list,
        low-rank layers only), ``eval_params``, ``train_params``, ``dense_params``, ``eval_cr``, ``train_cr``, ``seconds`` (this call's
        wall time), ``out`` (str).

    Raises
    ------
    TypeError, ValueError
        Bad arguments or data, a configuration differing from the resumed checkpoint
        (the message lists the differences), or a corrupt checkpoint
        (:class:`~lowrank_ref.training.CheckpointError`).
    FileNotFoundError
        Data or checkpoint not found.
    RunFolderInUse
        (a RuntimeError) if another process trains into the output folder: the message
        names the folder and the pid in its lock file ``run.lock``. Nothing is written.
        A lock left by a process that no longer runs on this host is removed (with a note
        through ``log``).
    TrainingDiverged
        (a RuntimeError) if a loss becomes non-finite: names the epoch, the batch and the
        last good checkpoint, which is left untouched; ``run.json`` says "diverged".
    KeyboardInterrupt
        Passed on after ``run.json`` is set to "interrupted"; the last checkpoint is complete
        (checkpoints are replaced atomically) and ``resume`` continues from it.

    Notes
    -----
    The lock file ``run.lock`` exists in the output folder for the whole call and is removed
    however the call ends. The run folder's files and their guarantees:
    docs/design.md, section "Training runs: records, checkpoints, locks".
    """
    t_call = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_callable(log, "log", "log(line: str)")
    resume = check_path(resume, "resume", optional=True)
    force = check_bool(force, "force")
    if force and resume is None:
        raise ValueError("force applies only with resume (it accepts a configuration that "
                         "differs from the resumed checkpoint's), got force=True without resume")
    if progress is None:
        progress = "live" if (log is print and sys.stdout.isatty()) else "lines"
    progress = check_choice(progress, "progress", PROGRESS_MODES)
    with blas_threads(config.threads):          # the package's thread count, restored after
        # Read and check the checkpoint before anything is created ...
        ckpt, signature = _resumable(resume, config, force) if resume is not None else (None, None)
        out = Path(config.out) if config.out is not None else (
            ckpt["path"].parent if ckpt is not None else _default_out(config.method))
        check_not_source(out, config.prune_from)
        out.mkdir(parents=True, exist_ok=True)
        with run_folder_lock(out, log):
            # ... and again if it changed before the lock was ours (a run that just ended).
            if ckpt is not None and _signature(ckpt["path"]) != signature:
                ckpt, _ = _resumable(resume, config, force)
            removed = remove_temporary_files(out, (CHECKPOINT_NAME, HISTORY_NAME, RUN_NAME))
            if removed:
                log(f"note: removed {', '.join(removed)} from {out}: temporary files of a "
                    f"write that was killed (the files they were to replace are complete)")
            return _run(config, log, data, ckpt, force, progress, out, t_call)


def _run(config: TrainConfig, log, data, ckpt: Optional[dict], force: bool, progress: str,
         out: Path, t_call: float) -> dict:
    """The body of :func:`train`, with the lock of ``out`` held."""
    csv_path = out / HISTORY_NAME
    # The model first: configuration errors surface before the data are read. The optimiser's
    # restored state is checked on the first samples.
    dtype = np.dtype(config.dtype)
    model = build_model(config) if ckpt is None else model_to_restore(config)
    epochs_done = finetune_done = 0
    history: list = []
    if ckpt is not None:
        restore_model(model, ckpt["arrays"], ckpt["path"], dtype)
        epochs_done, finetune_done = ckpt["epochs_done"], ckpt["finetune_done"]
        history = list(ckpt["history"])
    total_epochs = config.epochs + config.finetune_epochs
    phase = "train" if epochs_done < config.epochs else "finetune"
    last_good = ckpt["path"] if ckpt is not None else None
    last_good_epoch = epochs_done + finetune_done
    previous = None if ckpt is None else read_record(ckpt["path"].parent / RUN_NAME)
    if (last_good_epoch == total_epochs and previous is not None and csv_path.exists()
            and previous.get("status") == "finished" and _same_path(out, ckpt["path"].parent)):
        # A finished run resumed with nothing left to train: its records stay as they are.
        log(f"{out}: the run is finished ({config.epochs} epochs"
            + (f" + {config.finetune_epochs} fine-tuning" if config.finetune_epochs else "")
            + "); nothing to train, its records are left unchanged")
        return dict(_final(model, history), seconds=time.perf_counter() - t_call, out=str(out))

    ds = prepare_data(config, data)
    X, y = ds.X_train, ds.y_train
    n = len(y)
    n_batches = math.ceil(n / config.batch_size)
    opt = None
    if epochs_done + finetune_done < total_epochs:
        opt = _optimizer(config, model, phase, ckpt, force, log, X[:8], y[:8])

    # run.json: what the run is, how it stands, and one session per call that trained it
    # (the sessions of the resumed run's record carried over, this call's appended).
    session = new_session(None if ckpt is None else ckpt["path"], force and ckpt is not None,
                          config.threads)
    recorder = Recorder(config, out, log, progress, history, previous, session, last_good,
                        last_good_epoch, t_call)
    n_valid = len(ds.y_valid) if config.validation else None
    recorder.start({"name": ds.name, "source": ds.source, "n_train": n, "n_valid": n_valid,
                    "n_test": len(ds.y_test)})
    epoch = last_good_epoch + 1
    try:
        log(_first_line(config, ds, n, n_valid, last_good_epoch if ckpt is not None else None,
                        out))
        for epoch in range(epochs_done + finetune_done + 1, total_epochs + 1):
            new_phase = "train" if epoch <= config.epochs else "finetune"
            if new_phase != phase or opt is None:      # main epochs over: S-only fine-tuning
                phase = new_phase
                opt = build_optimizer(config, model, phase)
            k = epoch - 1 if phase == "train" else epoch - config.epochs - 1   # epoch in phase
            steps_in_phase = n_batches * (config.epochs if phase == "train"
                                          else config.finetune_epochs)
            t0 = time.perf_counter()
            order = np.random.default_rng([config.seed, epoch]).permutation(n)
            label = (f"epoch {epoch}/{total_epochs}"
                     + (" (fine-tuning)" if phase == "finetune" else ""))
            recorder.epoch_started(label, n_batches, n, early=epoch == 1)
            batches = ((X[idx], y[idx]) for idx in
                       (order[b * config.batch_size:(b + 1) * config.batch_size]
                        for b in range(n_batches)))
            try:
                stats = train_epoch(model, opt, batches,
                                    lambda b: lr_at(config, k * n_batches + b, steps_in_phase),
                                    on_batch=recorder.batch_done)
                recorder.batches_done()
                metrics = _evaluation(model, ds, config.validation, epoch == total_epochs)
                check_epoch(model, metrics, config.validation, stats)
            except NonFinite as exc:                   # the one place a divergence is handled
                recorder.diverged(exc, epoch, n_batches)
            counts = parameter_counts(model)
            ranks = [r for r in counts["ranks"] if r is not None]
            row = {"epoch": epoch, "phase": phase, "lr": stats.first_lr,
                   "train_loss": stats.train_loss, "train_acc": stats.train_acc,
                   **metrics,
                   "ranks": "|".join(map(str, ranks)), "eval_params": counts["eval_params"],
                   "train_params": counts["train_params"], "eval_cr": counts["eval_cr"],
                   "train_cr": counts["train_cr"],
                   "seconds": round(time.perf_counter() - t0, 3)}
            if phase == "train":
                epochs_done += 1
            else:
                finetune_done += 1
            recorder.epoch_done(label, row, model, opt, epochs_done, finetune_done, phase)
        final = _final(model, history)
        recorder.finished(final)
    except TrainingDiverged:
        raise                                          # recorded by the recorder
    except BaseException as exc:
        recorder.ended(exc, epoch)
        raise
    final.update(seconds=session["seconds"], out=str(out))
    return final
