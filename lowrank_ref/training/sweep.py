"""Sweeps over the truncation tolerance: one rank-adaptive run per ``tau`` (and seed), and a table."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .._validate import check_callable, check_int, check_path, check_real
from ..data import Dataset
from .atomic import write_text
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .config import TrainConfig
from .loop import train

__all__ = ["sweep", "TABLE_COLUMNS", "SWEEP_NAMES"]

#: Per data set and architecture, the table's file name and the folder of the runs under
#: ``results_dir`` (the MNIST names are those of the first records; Fashion-MNIST's start
#: with "fashion" so that the two data sets never share a table).
SWEEP_NAMES = {("mnist", "mlp"): ("mnist_dense_table.csv", "mnist_runs"),
               ("mnist", "lenet5"): ("mnist_lenet5_table.csv", "lenet5_runs"),
               ("fashion-mnist", "mlp"): ("fashion_dense_table.csv", "fashion_runs"),
               ("fashion-mnist", "lenet5"): ("fashion_lenet5_table.csv", "fashion_lenet5_runs")}

#: Columns of the table written by :func:`sweep` (accuracies and compression rates in percent;
#: ``val_acc`` empty for runs without validation).
TABLE_COLUMNS = ("method", "tau", "val_acc", "test_acc", "ranks", "eval_params", "train_params",
                 "eval_cr", "train_cr", "epochs", "finetune_epochs", "seconds_per_epoch",
                 "total_seconds", "seed", "run")


def sweep(taus, base: TrainConfig, results_dir="results", table_name: Optional[str] = None,
          dense: Optional[TrainConfig] = None, log: Callable[[str], None] = print,
          data: Optional[Dataset] = None, seeds=None) -> Path:
    """Train one rank-adaptive run per ``tau`` (and optionally a dense baseline); write a table.

    Each run goes to ``results_dir/<runs>/tau-<tau>`` (``dense`` for the baseline; with
    ``seeds``, ``tau-<tau>-seed<seed>`` and ``dense-seed<seed>``) with its ``history.csv``,
    ``run.json`` and ``checkpoint.npz``; ``<runs>`` is ``mnist_runs`` for the MLP and
    ``lenet5_runs`` for LeNet5 (:data:`SWEEP_NAMES`). The runs are trained seed by seed (all
    rows of the first seed, then the next seed). A run whose checkpoint already exists is
    resumed (and a finished one is only read), so an interrupted sweep continues where it
    stopped; its configuration must match (see :func:`train`).

    Parameters
    ----------
    taus : sequence of float
        Relative truncation tolerances, each a finite number ``>= 0`` (at least one).
    base : TrainConfig
        Configuration of every adaptive run (``method`` must be "adaptive"; ``tau`` and
        ``out`` are replaced per run).
    results_dir : path-like, default "results"
    table_name : str, optional
        None: "mnist_dense_table.csv" for the MLP, "mnist_lenet5_table.csv" for LeNet5
        ("fashion_dense_table.csv", "fashion_lenet5_table.csv" on Fashion-MNIST).
    dense : TrainConfig, optional
        A dense baseline run added as the first row (of each seed).
    log : callable
    data : Dataset, optional
        Arrays to use instead of loading ``base.dataset`` (tests).
    seeds : sequence of int, optional
        Train every row once per seed (replacing the seeds of ``base`` and ``dense``);
        None: one run per row with the configurations' own seeds, named without a seed.

    Returns
    -------
    pathlib.Path
        The table (rewritten after every run, so that an interrupted sweep leaves the rows
        of the runs that finished), one row per run with :data:`TABLE_COLUMNS` (``val_acc``,
        ``test_acc``, ``eval_cr``, ``train_cr`` in percent; ``ranks`` as ``r1|r2|...``; ``run`` the run folder's name).
    """
    if isinstance(taus, (str, bytes)) or not hasattr(taus, "__iter__"):
        raise TypeError(f"taus must be a sequence of finite numbers >= 0, got "
                        f"{type(taus).__name__}")
    taus = [check_real(t, f"taus[{i}]", low=0) for i, t in enumerate(taus)]
    if not taus:
        raise ValueError("taus must be a non-empty sequence of finite numbers >= 0, got []")
    for name, value in (("base", base), ("dense", dense)):
        if not isinstance(value, TrainConfig) and not (name == "dense" and value is None):
            raise TypeError(f"{name} must be a TrainConfig" + (" or None" if name == "dense"
                            else "") + f", got {type(value).__name__}")
    if base.method != "adaptive":
        raise ValueError(f"base must be a TrainConfig with method 'adaptive', got method "
                         f"{base.method!r}")
    if dense is not None and dense.arch != base.arch:
        raise ValueError(f"dense must have the arch of base ({base.arch!r}), got "
                         f"{dense.arch!r}")
    if seeds is not None:
        if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
            raise TypeError(f"seeds must be a sequence of ints >= 0 or None, got "
                            f"{type(seeds).__name__}")
        seeds = [check_int(s, f"seeds[{i}]", low=0) for i, s in enumerate(seeds)]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be a non-empty sequence of distinct ints, got {seeds}")
    results_dir = Path(check_path(results_dir, "results_dir"))
    check_callable(log, "log", "log(line: str)")
    default_table, runs_name = SWEEP_NAMES[base.dataset, base.arch]
    table_name = default_table if table_name is None else table_name
    runs_dir = results_dir / runs_name
    rows_of_a_seed = ([("dense", dense)] if dense is not None else []) + [
        (f"tau-{t:g}", dataclasses.replace(base, tau=float(t))) for t in taus]
    jobs = rows_of_a_seed if seeds is None else [
        (f"{name}-seed{s}", dataclasses.replace(cfg, seed=s))
        for s in seeds for name, cfg in rows_of_a_seed]
    rows, table = [], results_dir / table_name
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
            "val_acc": "" if final["val_acc"] is None else f"{100 * final['val_acc']:.2f}",
            "test_acc": f"{100 * final['test_acc']:.2f}",
            "ranks": "|".join(map(str, final["ranks"])),
            "eval_params": final["eval_params"], "train_params": final["train_params"],
            "eval_cr": f"{100 * final['eval_cr']:.1f}", "train_cr": f"{100 * final['train_cr']:.1f}",
            "epochs": cfg.epochs, "finetune_epochs": cfg.finetune_epochs,
            "seconds_per_epoch": f"{float(np.median([r['seconds'] for r in train_rows])):.1f}",
            "total_seconds": f"{sum(r['seconds'] for r in history):.0f}",
            "seed": cfg.seed, "run": name})
        # rewritten after every run: an interrupted sweep leaves the table of what finished
        lines = [",".join(TABLE_COLUMNS)] + [",".join(str(r[c]) for c in TABLE_COLUMNS)
                                             for r in rows]
        write_text(table, "\n".join(lines) + "\n")
    log(f"wrote {table}")
    return table
