"""Records of networks evaluated, not trained: the start of a run (epoch 0 of a comparison
table) and a pruned network without fine-tuning (``python -m lowrank_ref prune``).

A record is the folder of a run with one history row (epoch 0, phase "start") and a
``run.json``; :func:`same_finished_config` and :func:`read_history` let the experiment
functions (:mod:`lowrank_ref.training.compare`) read a record instead of redoing it.
"""
from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

from .._validate import check_callable
from ..data import Dataset
from ..dlrt import parameter_counts
from .atomic import remove_temporary_files, write_text
from .config import TrainConfig
from .data_checks import prepare_data
from .loop import evaluate
from .records import (HISTORY_NAME, RUN_NAME, check_not_source, history_csv, new_session,
                      portable_source, run_folder_lock)
from .starts import build_model

__all__ = ["evaluate_start", "record_start", "same_finished_config", "read_history"]


def same_finished_config(run_json: Path, config: TrainConfig) -> bool:
    """Whether ``run_json`` records a finished run of ``config`` (but out and threads)."""
    try:
        run = json.loads(run_json.read_text())
        old = TrainConfig.from_dict(run["config"]).to_flat()
    except (OSError, ValueError, TypeError, KeyError):
        return False
    new = config.to_flat()
    return run.get("status") == "finished" and all(
        old[k] == new[k] for k in new if k not in ("out", "threads"))


def read_history(out: Path) -> list:
    """The rows of ``out``/history.csv, as dicts of strings."""
    with open(out / HISTORY_NAME, newline="") as f:
        return list(csv.DictReader(f))


def evaluate_start(config: TrainConfig, data: Optional[Dataset] = None,
                   final: bool = True) -> dict:
    """The loss and accuracy of the network ``config`` starts from (built, not trained).

    Parameters
    ----------
    config : TrainConfig
    data : Dataset, optional
    final : bool, default True
        Whether this is the last measurement of the network (a pruned network that is not
        fine-tuned), or the start of a run that trains (its epoch 0). With
        ``config.validation`` the validation part is evaluated, and the test set only if
        ``final``; without, the test set.

    Returns
    -------
    dict
        A history row for epoch 0 (phase "start"): ``val_loss``, ``val_acc``, ``test_loss``,
        ``test_acc`` (fractions; None where not evaluated), ``ranks`` ("r1|r2|..."),
        ``eval_params``, ``train_params``, ``eval_cr``, ``train_cr``; the training columns
        empty.

    Raises
    ------
    TypeError, ValueError
        ``config`` not a TrainConfig; as :func:`~lowrank_ref.training.build_model` and the
        data checks.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    ds = prepare_data(config, data)
    model = build_model(config)
    metrics = {"val_loss": None, "val_acc": None, "test_loss": None, "test_acc": None}
    if config.validation:
        metrics["val_loss"], metrics["val_acc"] = evaluate(model, ds.X_valid, ds.y_valid)
    if final or not config.validation:
        metrics["test_loss"], metrics["test_acc"] = evaluate(model, ds.X_test, ds.y_test)
    c = parameter_counts(model)
    return {"epoch": 0, "phase": "start", "lr": "", "train_loss": "", "train_acc": "",
            **metrics,
            "ranks": "|".join(str(r) for r in c["ranks"] if r is not None),
            "eval_params": c["eval_params"], "train_params": c["train_params"],
            "eval_cr": c["eval_cr"], "train_cr": c["train_cr"], "seconds": 0.0}


def record_start(config: TrainConfig, data: Optional[Dataset] = None,
                 log: Callable[[str], None] = print, what: str = "evaluated, not trained") -> list:
    """Evaluate the network ``config`` starts from (no training) and record it in ``config.out``.

    For a pruned network (``prune_from``), this is "pruning after training" without
    fine-tuning. ``history.csv`` gets one row, epoch 0 (phase "start"); ``run.json`` holds
    the configuration, ``what`` and the test accuracy (and the validation accuracy, with
    validation). A record with the same configuration is only read.

    Returns
    -------
    list of dict
        The rows of ``history.csv`` (strings).

    Raises
    ------
    TypeError, ValueError
        ``config`` not a TrainConfig or without ``out``, ``out`` the folder of the dense run
        ``prune_from``; as :func:`build_model`.
    RunFolderInUse
        If a run trains into ``out`` (its ``run.lock``): nothing is written.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.out is None:
        raise ValueError("config.out must name the folder of the record, got None")
    check_callable(log, "log", "log(line: str)")
    out = Path(config.out)
    check_not_source(out, config.prune_from)
    if same_finished_config(out / RUN_NAME, config) and (out / HISTORY_NAME).exists():
        return read_history(out)
    row = evaluate_start(config, data)
    ds = prepare_data(config, data)
    out.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(out, log):          # a run training there is not overwritten
        remove_temporary_files(out, (HISTORY_NAME, RUN_NAME))
        write_text(out / HISTORY_NAME, history_csv([row]))
        session = dict(new_session(threads=config.threads), status="finished",
                       ended=datetime.now().isoformat(timespec="seconds"))
        run = {"config": config.to_dict(), "seed": config.seed, "what": what, "out": str(out),
               "data": {"name": ds.name, "source": portable_source(ds.source),
                        "n_train": len(ds.y_train),
                        "n_valid": len(ds.y_valid) if config.validation else None,
                        "n_test": len(ds.y_test)},
               "status": "finished",
               "final": {k: row[k] for k in ("val_acc", "val_loss", "test_acc", "test_loss")},
               "sessions": [session]}
        write_text(out / RUN_NAME, json.dumps(run, indent=2) + "\n")
    val = (f"validation acc {100 * row['val_acc']:.2f}%, " if row["val_acc"] is not None
           else "")
    log(f"{what}: {val}test acc {100 * row['test_acc']:.2f}%, ranks {row['ranks']}, eval "
        f"params {row['eval_params']:,}")
    return read_history(out)
