"""Training runs: configuration, the loop, checkpoints, run records, sweeps.

:func:`train` trains the multilayer perceptron of [SZKCT22] (Schotthöfer, Zangrando, Kusch,
Ceruti, Tudisco, NeurIPS 2022, sec. 6: ``784-500-500-500-500-10``, ReLU) on MNIST or
Fashion-MNIST with one of the optimisers of :mod:`lowrank_ref.dlrt`
(the records of :mod:`lowrank_ref.methods`): ``"dense"`` (SGD of a dense network, the
baseline), ``"fixed"`` (fixed-rank DLRT, [SZKCT22]), ``"adaptive"`` (rank-adaptive DLRT,
[SZKCT22]), ``"parallel"`` (the parallel step, :class:`lowrank_ref.dlrt.ParallelBUG`),
``"vanilla"`` (``U V^T`` factors) or ``"sonly"`` (the cores ``S`` only), with the direction
rule of ``optimizer`` (SGD with momentum, or Adam in two forms), and optionally fine-tunes
the cores ``S`` afterwards (``finetune_epochs``, [SZKCT22]).

Modules (see docs/design.md, section "Architecture"; the files of a run folder:
docs/design.md, section "Training runs: records, checkpoints, locks"):

* :mod:`~lowrank_ref.training.config`: :class:`TrainConfig`, the defaults, :func:`lr_at`,
  :func:`~lowrank_ref.training.config.build_optimizer`;
* :mod:`~lowrank_ref.training.loop`: :func:`train`, :func:`evaluate`,
  :class:`TrainingDiverged`;
* :mod:`~lowrank_ref.training.epoch`: :func:`~lowrank_ref.training.epoch.train_epoch`, one
  epoch without any file or terminal work; :mod:`~lowrank_ref.training.recorder`: the
  :class:`~lowrank_ref.training.recorder.Recorder` that writes the records from the loop's
  hooks;
* :mod:`~lowrank_ref.training.checkpoint`: the checkpoint format (:func:`save_checkpoint`,
  :func:`load_checkpoint`, :class:`CheckpointError`);
* :mod:`~lowrank_ref.training.records`: ``history.csv``, ``run.json``, the run-folder lock
  (:class:`RunFolderInUse`);
* :mod:`~lowrank_ref.training.atomic`, :mod:`~lowrank_ref.training.progress`,
  :mod:`~lowrank_ref.training.data_checks`: atomic writes, the progress line, the checks of
  the data of a run;
* :mod:`~lowrank_ref.training.sweep`: :func:`sweep` over the truncation tolerance;
* :mod:`~lowrank_ref.training.starts`: :func:`build_model`, the starting network of a
  configuration (per-layer ranks, decayed spectra, the paper code's initialisation and
  pruned dense checkpoints too);
* :mod:`~lowrank_ref.training.start_records`: records of networks evaluated, not trained
  (epoch 0 of a comparison, a pruned network without fine-tuning);
* :mod:`~lowrank_ref.training.compare`: the paper's comparisons (vanilla factorisation,
  pruning, ill-conditioning, the Adam recipe, the parallel step), one table each;
* :mod:`~lowrank_ref.training.commands`: what the command line's commands do beyond one
  call (a resumed configuration, the dense baseline, the comparisons' options, pruning).

Reproducibility
---------------
* The model is initialised from ``np.random.default_rng(seed)``; epoch ``e`` (1-based,
  counted over both phases) visits the training set in the order of
  ``np.random.default_rng([seed, e]).permutation(n_train)``. No generator state is carried
  from one epoch to the next, so a run resumed from a checkpoint is bit-identical to an
  uninterrupted one (same machine and thread count;
  docs/design.md, section "Numbers: dtypes, tolerances, seeds").
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
* ``val_loss``, ``val_acc``: of the model at the end of the epoch (:func:`evaluate`) on the
  validation part (``TrainConfig(validation=True)``, the default: the last 10,000 training
  images held out, :func:`lowrank_ref.data.split_validation`); empty without validation;
* ``test_loss``, ``test_acc``: of the model on the test set, with validation at the end of
  the last epoch only (empty in the other rows: nothing is chosen on the test set), without
  validation at the end of every epoch;
* ranks of every low-rank layer and the parameter counts and compression rates of
  :func:`lowrank_ref.dlrt.parameter_counts`.

Records in the output folder ``out``
------------------------------------
* ``history.csv``: one row per epoch, columns :data:`HISTORY_COLUMNS`;
* ``run.json``: configuration, seed, data source, ``status`` ("running", "finished",
  "diverged", "interrupted" after Ctrl-C, "failed"), final metrics, and ``sessions``: one
  per call of :func:`train` that trained (appended on resume), with when it started and
  ended, the epochs it trained (each with the time it finished), the git commit and whether
  the package's code differed from it, the versions of Python/NumPy/SciPy/lowrank_ref, the
  platform and the BLAS libraries with their thread counts (no host name). Resuming a
  finished run leaves every file as it is;
* ``checkpoint.npz``: written after every epoch, atomically (a temporary file in the same
  folder, flushed and fsynced, then ``os.replace``), read with ``allow_pickle=False``
  (see :func:`save_checkpoint`);
* ``run.lock``: only while :func:`train` runs (pid and host of the process); a second
  process training into the same folder is refused (:class:`RunFolderInUse`).

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from lowrank_ref.data import Dataset, split_validation
>>> rng = np.random.default_rng(0)
>>> X, y = rng.standard_normal((80, 5)), rng.integers(0, 3, 80)
>>> ds = split_validation(Dataset(X, y, X[:16], y[:16], "toy", "made up"), 16)
>>> with tempfile.TemporaryDirectory() as out:
...     config = TrainConfig(sizes=[5, 8, 3], epochs=2, batch_size=16, lr=0.05, out=out)
...     locked = []                      # run.lock exists while train runs ...
...     log = lambda line: locked.append(os.path.exists(os.path.join(out, LOCK_NAME)))
...     final = train(config, log=log, data=ds)
...     sorted(os.listdir(out))          # ... and is removed when it returns
['checkpoint.npz', 'history.csv', 'run.json']
>>> all(locked), final["epoch"], 0.0 <= final["val_acc"] <= 1.0, 0.0 <= final["test_acc"] <= 1.0
(True, 2, True, True)
"""
from .checkpoint import (CHECKPOINT_NAME, CheckpointError, load_checkpoint, load_config,
                         save_checkpoint)
from .config import (DEFAULT_LR, DEFAULT_MOMENTUM, DEFAULT_RANK, DEFAULT_SIZES, DEFAULT_WARMUP,
                     DTYPES, SCHEDULES, TrainConfig, lr_at)
from .specs import DataSpec, ModelSpec, RunSpec, StartSpec, StepSpec
from .loop import TrainingDiverged, evaluate, train
from .records import HISTORY_COLUMNS, HISTORY_NAME, LOCK_NAME, RUN_NAME, RunFolderInUse
from .starts import build_model
from .sweep import TABLE_COLUMNS, sweep

__all__ = ["TrainConfig", "ModelSpec", "StartSpec", "StepSpec", "DataSpec", "RunSpec", "train", "evaluate", "TrainingDiverged", "CheckpointError",
           "RunFolderInUse", "load_checkpoint", "save_checkpoint", "load_config", "build_model",
           "lr_at", "sweep", "HISTORY_COLUMNS", "TABLE_COLUMNS", "SCHEDULES", "DTYPES",
           "DEFAULT_SIZES", "DEFAULT_LR", "DEFAULT_MOMENTUM", "DEFAULT_WARMUP", "DEFAULT_RANK",
           "CHECKPOINT_NAME", "HISTORY_NAME", "RUN_NAME", "LOCK_NAME"]
