"""The paper's comparisons, each one command: methods at equal compression, the
ill-conditioning experiment, and the paper's own recipe (Adam).

* :func:`compare_methods` -- for each ``tau``: rank-adaptive DLRT, then at the ranks it found
  fixed-rank DLRT, vanilla ``U V^T``, the dense network pruned to those ranks (no
  fine-tuning), and the pruned network fine-tuned by fixed-rank DLRT and by S-only steps.
  Writes ``mnist_comparison.csv``.
* :func:`compare_illconditioned` -- fixed rank, starting spectra decaying by ``decay``
  (:func:`lowrank_ref.factorized.decayed_factors`), DLRT against vanilla from the same
  ``W0``, accuracy per epoch (epoch 0: the start). Writes ``mnist_illconditioned.csv``
  (``lenet5_illconditioned.csv`` for ``options={"arch": "lenet5"}``).
* :func:`recipe_sweep` -- rank-adaptive DLRT with Adam in both forms of
  :mod:`lowrank_ref.adam`, from the paper code's initialisation. Writes
  ``mnist_adam_recipe.csv``.
* :func:`compare_parallel` -- the parallel step (:class:`lowrank_ref.dlrt.ParallelBUG`)
  beside the rank-adaptive BUG step at each ``tau``: accuracy, ranks and seconds per epoch
  (and the load of the machine). Writes ``mnist_parallel.csv`` (``lenet5_parallel.csv``
  for ``options={"arch": "lenet5"}``).

Every run is a :func:`~lowrank_ref.training.train` run of a
:class:`~lowrank_ref.training.TrainConfig` built from ``options`` (any TrainConfig options
shared by all runs: data, sizes, dtype, seed, batch size, learning rate, ...) plus the
fields that make the run what it is (method, ranks, tau, decay, optimizer, epochs); a field
added to TrainConfig later (an architecture) reaches every run through ``options``. Run
folders go under ``results_dir/<table stem>_runs/<name>``; a finished run whose
``run.json`` holds the same configuration is only read, a run with a checkpoint is resumed,
so an interrupted comparison continues where it stopped and the tables can be rebuilt from
the committed records. Every table has one row per run and epoch, :data:`TABLE_COLUMNS`.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Callable, Optional

from .._validate import check_callable, check_int, check_path, check_real
from ..data import Dataset
from .atomic import write_text
from .checkpoint import CHECKPOINT_NAME
from .config import TrainConfig
from .specs import OPTION_NAMES
from .loop import train
from .records import HISTORY_NAME, RUN_NAME
from .start_records import evaluate_start, read_history, record_start, same_finished_config

__all__ = ["compare_methods", "compare_illconditioned", "recipe_sweep", "compare_parallel",
           "evaluate_start", "record_start", "same_finished_config", "read_history",
           "read_rows", "table_name_for", "TABLE_COLUMNS", "PARALLEL_COLUMNS", "RECIPE", "SET_BY_EXPERIMENT"]

#: Columns of the comparison tables (accuracies and compression rates in percent). The
#: validation columns are empty for runs without validation; with validation, the test
#: columns are empty but in each run's last row.
TABLE_COLUMNS = ("experiment", "level", "method", "optimizer", "seed", "epoch", "phase",
                 "ranks", "eval_params", "train_params", "eval_cr", "train_cr", "val_acc",
                 "test_acc", "val_loss", "test_loss", "train_loss", "train_acc", "lr", "epochs",
                 "finetune_epochs", "run")

#: Columns of the table of :func:`compare_parallel`: those of the other tables, the seconds
#: of the epoch (training only, as ``history.csv``) and the 1-minute load average of the
#: machine when the run started and when it ended (``load.json`` of the run folder).
PARALLEL_COLUMNS = TABLE_COLUMNS + ("seconds", "load_start", "load_end")

#: The paper's recipe for its dense MNIST table as the paper's TensorFlow code runs it
#: (``src/mnist_DLRA.py`` of ``CSMMLab/DLRT-Net``): Adam with learning rate 1e-3 (constant,
#: no warm-up), batch 256, starting rank 150, every variable drawn from N(0, 0.05^2), rank
#: at least 2.
RECIPE = {"init": "keras-normal", "lr": 1e-3, "schedule": "constant", "warmup": 0,
          "batch_size": 256, "rank": 150, "min_rank": 2}


#: TrainConfig options each experiment sets itself (not accepted in ``options``).
SET_BY_EXPERIMENT = ("method", "out", "epochs", "ranks", "tau", "decay", "prune_from",
                     "prune_tau", "optimizer")


def _options(options, name="options") -> dict:
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(f"{name} must be a dict of TrainConfig options by name, got "
                        f"{type(options).__name__}")
    known = set(OPTION_NAMES)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{name} has unknown TrainConfig option(s) {unknown}")
    fixed = sorted(set(options) & set(SET_BY_EXPERIMENT))
    if fixed:
        raise ValueError(f"{name} must not set {fixed}: the experiment sets them per run")
    return dict(options)


def _config(options: dict, out: Path, what: str = "", **fields) -> TrainConfig:
    """The configuration of one run; an error names the runs ``what`` (and their options)."""
    try:
        return TrainConfig(**{**options, **fields, "out": str(out)})
    except (TypeError, ValueError) as exc:
        if not what:
            raise
        raise type(exc)(f"{what}: {exc}") from None


def _run(config: TrainConfig, data, log) -> list:
    """Train ``config`` (or read it, if finished with the same configuration); its history."""
    out = Path(config.out)
    if (out / CHECKPOINT_NAME).exists():
        train(config, log=log, data=data, resume=out)
    elif not (same_finished_config(out / RUN_NAME, config) and (out / HISTORY_NAME).exists()):
        train(config, log=log, data=data)
    else:
        log(f"{out}: finished with this configuration, read")
    return read_history(out)


def _pct(value) -> str:
    return "" if value in ("", None) else f"{100 * float(value):.2f}"


def _blank(value):
    """``value``, or "" for None (a metric not evaluated)."""
    return "" if value is None else value


def _rows(experiment, level, method, config: TrainConfig, history, runs_dir: Path,
          trained: bool = True) -> list:
    rows = []
    for h in history:
        rows.append({
            "experiment": experiment, "level": level, "method": method,
            "optimizer": config.optimizer, "seed": config.seed, "epoch": h["epoch"],
            "phase": h["phase"], "ranks": h["ranks"], "eval_params": h["eval_params"],
            "train_params": h["train_params"], "eval_cr": _pct(h["eval_cr"]),
            "train_cr": _pct(h["train_cr"]), "val_acc": _pct(h.get("val_acc")),
            "test_acc": _pct(h["test_acc"]), "val_loss": _blank(h.get("val_loss")),
            "test_loss": _blank(h["test_loss"]), "train_loss": h["train_loss"] or "",
            "train_acc": _pct(h["train_acc"]), "lr": h["lr"] or "",
            "epochs": config.epochs if trained else 0,
            "finetune_epochs": config.finetune_epochs if trained else 0,
            "run": Path(config.out).relative_to(runs_dir.parent).as_posix()})
    return rows


def _write_table(path: Path, rows: list, log, columns=TABLE_COLUMNS) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())
    log(f"wrote {path}")
    return path


def table_name_for(name: Optional[str], options: dict, experiment: str) -> str:
    """The file name of a comparison's table under ``results_dir``: ``name``, or (None)
    ``<network>_<experiment>.csv`` with the network of ``options`` ("mnist" for the MLP,
    "lenet5"; on Fashion-MNIST "fashion", "fashion_lenet5"): the tables of the networks and
    data sets do not overwrite each other.

    Examples
    --------
    >>> table_name_for(None, {"dataset": "fashion-mnist", "arch": "lenet5"}, "parallel")
    'fashion_lenet5_parallel.csv'
    """
    if name is not None:
        return name
    lenet5 = options.get("arch") == "lenet5"
    if options.get("dataset") == "fashion-mnist":
        return ("fashion_lenet5" if lenet5 else "fashion") + f"_{experiment}.csv"
    return ("lenet5" if lenet5 else "mnist") + f"_{experiment}.csv"


def _check_common(results_dir, log, data, epochs, name):
    results_dir = Path(check_path(results_dir, "results_dir"))
    check_callable(log, "log", "log(line: str)")
    if data is not None and not isinstance(data, Dataset):
        raise TypeError(f"data must be a lowrank_ref.data.Dataset or None, got "
                        f"{type(data).__name__}")
    check_int(epochs, "epochs", low=1)
    if not isinstance(name, str) or not name.endswith(".csv") or "/" in name:
        raise ValueError(f"name must be a file name ending in .csv, got {name!r}")
    return results_dir, results_dir / (name[:-4] + "_runs")


def _check_seeds(seeds, options) -> list:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be a sequence of ints >= 0, got {type(seeds).__name__}")
    seeds = [check_int(s, f"seeds[{i}]", low=0) for i, s in enumerate(seeds)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty sequence of distinct ints, got {seeds}")
    if "seed" in options:
        raise ValueError(f"options must not set 'seed' (got {options['seed']!r}): give seeds")
    return seeds


def _suffix(seed: int) -> str:
    """Run folder suffix of a seed: none for seed 0, ``-seed-<s>`` for the others."""
    return "" if seed == 0 else f"-seed-{seed}"


def _check_list(values, name, low) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of finite numbers >= {low:g}, got "
                        f"{type(values).__name__}")
    values = [check_real(v, f"{name}[{i}]", low=low) for i, v in enumerate(values)]
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence of numbers >= {low:g}, got []")
    return values


def compare_methods(taus=(0.05, 0.09, 0.13, 0.17), epochs: int = 5, finetune_epochs: int = 2,
                    options: Optional[dict] = None, finetune_options: Optional[dict] = None,
                    method_options: Optional[dict] = None, seeds=(0,),
                    results_dir="results", name: str = "mnist_comparison.csv",
                    data: Optional[Dataset] = None, log: Callable[[str], None] = print,
                    equal_budget_dense_epochs: Optional[int] = None) -> Path:
    """DLRT against vanilla factorisation and pruning at the compression DLRT finds.

    Runs (each ``epochs`` epochs unless said otherwise), in order: the dense network; per
    ``tau`` rank-adaptive DLRT (``level`` = ``tau``; its final ranks ``R``), fixed-rank DLRT
    and vanilla ``U V^T`` with ``ranks=R``, the dense network pruned to ``R`` (method
    "prune", evaluated only: epoch 0), and the pruned network fine-tuned for
    ``finetune_epochs`` epochs by fixed-rank DLRT ("prune+fixed") and by S-only steps
    ("prune+sonly"). All low-rank methods of a level therefore have the same evaluation
    parameters. The pruned runs start from the dense run's final checkpoint (which must
    exist unless their records do), so they have had ``epochs + finetune_epochs`` epochs.

    With ``equal_budget_dense_epochs = k`` the same pruning rows are added at the budget of
    the DLRT runs: a dense run of ``k`` epochs (method "dense-equal"; its schedule spans
    its ``k`` epochs), pruned to each level's ranks ("prune-equal") and fine-tuned for
    ``epochs - k`` epochs ("prune+fixed-equal", "prune+sonly-equal"): ``epochs`` in all.

    Parameters
    ----------
    taus : sequence of float
        Tolerances of the adaptive runs (>= 0).
    epochs, finetune_epochs : int
        ``>= 1``.
    options : dict, optional
        TrainConfig options shared by all runs (not ``method``, ``rank``, ``ranks``, ``tau``,
        ``out``, ``epochs``, ``prune_from``); each method's defaults fill the rest.
    finetune_options : dict, optional
        Fields that override ``options`` in the fine-tuning runs (e.g. ``{"lr": 0.01}``).
    method_options : dict, optional
        Per method ("dense", "adaptive", "fixed", "vanilla"), fields that override
        ``options`` in its runs (e.g. ``{"vanilla": {"lr": 0.03}}``: the vanilla factors
        diverge at the learning rate DLRT trains with).
    seeds : sequence of int, default (0,)
        Every run above once per seed (the seed of initialisation and shuffling); folders
        of seeds other than 0 end in ``-seed-<s>``. ``options`` must not set ``seed``.
    results_dir : path-like, default "results"
    name : str, default "mnist_comparison.csv"
        The table; runs in ``results_dir/<stem>_runs``.
    data : Dataset, optional
    log : callable
    equal_budget_dense_epochs : int, optional
        ``1 <= k < epochs``: add the equal-budget rows above; None: none.

    Returns
    -------
    pathlib.Path
        The table.
    """
    results_dir, runs = _check_common(results_dir, log, data, epochs, name)
    taus = _check_list(taus, "taus", 0.0)
    check_int(finetune_epochs, "finetune_epochs", low=1)
    if equal_budget_dense_epochs is not None:
        check_int(equal_budget_dense_epochs, "equal_budget_dense_epochs", low=1)
        if equal_budget_dense_epochs >= epochs:
            raise ValueError(f"equal_budget_dense_epochs must be below epochs ({epochs}) to "
                             f"leave epochs for fine-tuning, got {equal_budget_dense_epochs}")
    options = _options(options)
    if options.get("arch", "mlp") != "mlp":        # before any run: pruning is MLP-only
        raise ValueError(f"compare methods is built for arch 'mlp' (pruning and per-layer "
                         f"ranks), got arch {options['arch']!r}")
    ft = {**options, **_options(finetune_options, "finetune_options")}
    method_options = {} if method_options is None else method_options
    if not isinstance(method_options, dict) or not set(method_options) <= {
            "dense", "adaptive", "fixed", "vanilla"}:
        raise ValueError(f"method_options must map some of 'dense', 'adaptive', 'fixed', "
                         f"'vanilla' to dicts of TrainConfig options, got {method_options!r}")
    per = {m: ({**options, **_options(method_options.get(m), f"method_options[{m!r}]")},
               "options" + (f" + method_options[{m!r}]" if method_options.get(m) else ""))
           for m in ("dense", "adaptive", "fixed", "vanilla")}
    seeds = _check_seeds(seeds, options)
    # Every run's configuration before the first run (the adaptive runs' final ranks stood
    # in by ones): a bad option is an error now, not after hours of training.
    for seed in seeds:
        dense = _methods_run(per, "dense", runs / "dense", epochs=epochs, seed=seed)
        short = None if equal_budget_dense_epochs is None else _methods_run(
            per, "dense", runs / "dense-equal", epochs=equal_budget_dense_epochs, seed=seed)
        for tau in taus:
            adaptive = _methods_run(per, "adaptive", runs / "adaptive", tau=tau, epochs=epochs,
                                    seed=seed)
            _level_runs(f"{tau:g}", [1] * (len(adaptive.sizes) - 2), per, ft, dense, runs,
                        epochs, finetune_epochs, short)
    rows = []
    for seed in seeds:
        rows += _methods_of_seed(taus, epochs, finetune_epochs, per, ft, seed, runs, data, log,
                                 equal_budget_dense_epochs)
    return _write_table(results_dir / name, rows, log)


def _methods_run(per: dict, method: str, out: Path, **fields) -> TrainConfig:
    """The configuration of a dense, adaptive, fixed or vanilla run of compare methods
    (``per[method]``: its shared fields and where they come from, for error messages)."""
    fields_of_method, source = per[method]
    return _config(fields_of_method, out, f"the {method} runs of compare methods ({source})",
                   method=method, **fields)


def _level_runs(level: str, ranks: list, per: dict, ft: dict, dense: TrainConfig, runs: Path,
                epochs: int, finetune_epochs: int, short: Optional[TrainConfig] = None) -> dict:
    """The runs of one level of compare methods after its adaptive run (which found ``ranks``):
    fixed, vanilla, and the dense run ``dense`` pruned (prune, prune+fixed, prune+sonly);
    with ``short`` (the equal-budget dense run) also that one pruned and fine-tuned for the
    rest of ``epochs`` (prune-equal, prune+fixed-equal, prune+sonly-equal)."""
    sfx, seed = _suffix(dense.seed), dense.seed
    cfgs = {m: _methods_run(per, m, runs / f"{m}-tau-{level}{sfx}", ranks=ranks, epochs=epochs,
                            seed=seed) for m in ("fixed", "vanilla")}
    what = "the pruned runs of compare methods (options + finetune_options)"
    starts = [("", dense, finetune_epochs)]
    if short is not None:
        starts.append(("-equal", short, epochs - short.epochs))
    for tag, start, ft_epochs in starts:
        for name, method, folder in (("prune", "fixed", "prune"),
                                     ("prune+fixed", "fixed", "prune-fixed"),
                                     ("prune+sonly", "sonly", "prune-sonly")):
            cfgs[name + tag] = _config(ft, runs / f"{folder}{tag}-tau-{level}{sfx}", what,
                                       method=method, ranks=ranks, prune_from=start.out,
                                       epochs=ft_epochs, seed=seed)
    return cfgs


def _methods_of_seed(taus, epochs, finetune_epochs, per, ft, seed, runs, data, log,
                     short_epochs=None) -> list:
    """The runs of :func:`compare_methods` for one seed; their table rows."""
    sfx = _suffix(seed)
    dense = _methods_run(per, "dense", runs / f"dense{sfx}", epochs=epochs, seed=seed)
    rows = _rows("methods", "dense", "dense", dense, _run(dense, data, log), runs)
    short = None
    if short_epochs is not None:
        short = _methods_run(per, "dense", runs / f"dense-equal{sfx}", epochs=short_epochs,
                             seed=seed)
        rows += _rows("methods", "dense", "dense-equal", short, _run(short, data, log), runs)
    for tau in taus:
        level = f"{tau:g}"
        adaptive = _methods_run(per, "adaptive", runs / f"adaptive-tau-{level}{sfx}", tau=tau,
                                epochs=epochs, seed=seed)
        history = _run(adaptive, data, log)
        rows += _rows("methods", level, "adaptive", adaptive, history, runs)
        ranks = [int(r) for r in history[-1]["ranks"].split("|")]
        cfgs = _level_runs(level, ranks, per, ft, dense, runs, epochs, finetune_epochs, short)
        for method in ("fixed", "vanilla"):
            rows += _rows("methods", level, method, cfgs[method],
                          _run(cfgs[method], data, log), runs)
        for tag in ("", "-equal") if short is not None else ("",):
            rows += _rows("methods", level, "prune" + tag, cfgs["prune" + tag], record_start(
                cfgs["prune" + tag], data, log,
                f"dense network pruned to ranks {ranks}, no fine-tuning"), runs, trained=False)
            for method in ("prune+fixed", "prune+sonly"):
                rows += _rows("methods", level, method + tag, cfgs[method + tag],
                              _run(cfgs[method + tag], data, log), runs)
    return rows


def compare_illconditioned(decays=(1.0, 2.0, 10.0), rank: int = 20, epochs: int = 10,
                           options: Optional[dict] = None, seeds=(0,), results_dir="results",
                           name: Optional[str] = None,
                           data: Optional[Dataset] = None,
                           log: Callable[[str], None] = print) -> Path:
    """Fixed-rank DLRT against vanilla ``U V^T`` from the same decaying starting spectrum.

    For each ``decay`` (the ``level``), methods "fixed" and "vanilla" with ``rank`` and
    ``decay`` (TrainConfig, so both build the same ``W0``: :mod:`lowrank_ref.training.starts`),
    ``epochs`` epochs each. Rows: epoch 0 (the start, evaluated) and every epoch. The
    network is the one ``options`` chooses: the MLP of ``sizes``, or with
    ``{"arch": "lenet5"}`` LeNet5 with its three low-rank layers at rank
    ``min(rank, full rank)`` each (the official code's LeNet5 experiment,
    ``UV_vanilla/Lenet5_dlrt.py`` and ``UV_vanilla/Lenet5_vanilla.py`` of
    ``COMPiLELab/DLRT-Net``).

    Parameters
    ----------
    decays : sequence of float
        ``>= 1``.
    rank : int
    epochs : int
    options, seeds, results_dir, data, log
        As :func:`compare_methods`.
    name : str, optional
        The table; None: ``"mnist_illconditioned.csv"``, or ``"lenet5_illconditioned.csv"``
        when ``options`` sets ``arch`` "lenet5" (so that the tables of the two networks do not
        overwrite each other; on Fashion-MNIST ``fashion_*`` names, :func:`table_name_for`).
        Runs in ``results_dir/<stem>_runs``.

    Returns
    -------
    pathlib.Path
    """
    options = _options(options)
    name = table_name_for(name, options, "illconditioned")
    results_dir, runs = _check_common(results_dir, log, data, epochs, name)
    decays = _check_list(decays, "decays", 1.0)
    check_int(rank, "rank", low=1)
    jobs = [(f"{decay:g}", method, _config(
                options, runs / f"{method}-decay-{decay:g}{_suffix(seed)}",
                f"the {method} runs of compare illconditioned (options)", method=method,
                rank=rank, decay=decay, epochs=epochs, seed=seed))
            for seed in _check_seeds(seeds, options) for decay in decays
            for method in ("fixed", "vanilla")]            # all checked before the first run
    rows = []
    for level, method, cfg in jobs:
        history = [evaluate_start(cfg, data, final=False)] + _run(cfg, data, log)
        rows += _rows("illconditioned", level, method, cfg, history, runs)
    return _write_table(results_dir / name, rows, log)


def recipe_sweep(taus=(0.05, 0.09, 0.13, 0.17), epochs: int = 3,
                 forms=("adam", "adam-carried"), options: Optional[dict] = None,
                 results_dir="results", name: str = "mnist_adam_recipe.csv",
                 data: Optional[Dataset] = None, log: Callable[[str], None] = print) -> Path:
    """Rank-adaptive DLRT by the paper's recipe (:data:`RECIPE`), Adam in each form.

    One run per form (``optimizer``: "adam", the paper's code; "adam-carried", moments
    carried across bases) and ``tau`` (the ``level``); ``options`` override :data:`RECIPE`.

    Returns
    -------
    pathlib.Path
    """
    results_dir, runs = _check_common(results_dir, log, data, epochs, name)
    taus = _check_list(taus, "taus", 0.0)
    if isinstance(forms, str) or not all(f in ("adam", "adam-carried") for f in forms) \
            or not forms:
        raise ValueError(f"forms must be a non-empty sequence of 'adam', 'adam-carried', got "
                         f"{forms!r}")
    options = {**RECIPE, **_options(options)}
    jobs = [(f"{tau:g}", _config(options, runs / f"{form}-tau-{tau:g}",
                                 f"the {form} runs of compare recipe (the recipe + options)",
                                 method="adaptive", tau=tau, optimizer=form, epochs=epochs))
            for form in forms for tau in taus]                 # all checked before the first run
    rows = []
    for level, cfg in jobs:
        rows += _rows("recipe", level, "adaptive", cfg, _run(cfg, data, log), runs)
    return _write_table(results_dir / name, rows, log)


def _load():
    """The 1-minute load average of the machine (None where the system does not tell)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):      # pragma: no cover - e.g. Windows
        return None


def _timed_run(config: TrainConfig, data, log) -> tuple:
    """``_run``, and the load averages at the start and the end of the training (kept in
    the run folder's ``load.json``; a run only read keeps those of when it was trained)."""
    out = Path(config.out)
    record = out / "load.json"
    trained = not (same_finished_config(out / RUN_NAME, config) and (out / HISTORY_NAME).exists())
    start = _load() if trained else None
    history = _run(config, data, log)
    if trained:
        write_text(record, json.dumps({"load_start": start, "load_end": _load(),
                                       "what": "1-minute load average (os.getloadavg)"},
                                      indent=2) + "\n")
    load = json.loads(record.read_text()) if record.exists() else {}
    return history, load


def compare_parallel(taus=(0.1, 0.15), epochs: int = 10, seeds=(0, 1, 2),
                     options: Optional[dict] = None, results_dir="results",
                     name: Optional[str] = None, data: Optional[Dataset] = None,
                     log: Callable[[str], None] = print) -> Path:
    """The parallel step beside the rank-adaptive BUG step, at equal settings.

    Per seed and ``tau`` (the ``level``): a run of method "adaptive"
    (:class:`~lowrank_ref.dlrt.AdaptiveBUG`) and one of method "parallel"
    (:class:`~lowrank_ref.dlrt.ParallelBUG`), each with the method's defaults (the same for
    both) and ``options``. The table (:data:`PARALLEL_COLUMNS`) has the accuracy, the
    ranks, the seconds of every epoch and the load of the machine; run it on an otherwise
    idle machine for the seconds to compare, under the package's 1 BLAS thread.

    Parameters
    ----------
    taus : sequence of float
    epochs : int
    seeds : sequence of int, default (0, 1, 2)
    options : dict, optional
        TrainConfig options shared by all runs (e.g. ``{"arch": "lenet5"}``).
    name : str, optional
        None: ``"mnist_parallel.csv"``, or ``"lenet5_parallel.csv"`` for arch "lenet5"
        (on Fashion-MNIST ``fashion_*`` names, :func:`table_name_for`).

    Returns
    -------
    pathlib.Path
    """
    options = _options(options)
    name = table_name_for(name, options, "parallel")
    results_dir, runs = _check_common(results_dir, log, data, epochs, name)
    taus = _check_list(taus, "taus", 0.0)
    # every run's configuration is built (and checked) before the first run trains
    plan = [(f"{tau:g}", method,
             _config(options, runs / f"{method}-tau-{tau:g}{_suffix(seed)}",
                     method=method, tau=tau, epochs=epochs, seed=seed))
            for seed in _check_seeds(seeds, options) for tau in taus
            for method in ("adaptive", "parallel")]
    rows = []
    for level, method, cfg in plan:
        history, load = _timed_run(cfg, data, log)
        for row, h in zip(_rows("parallel", level, method, cfg, history, runs), history):
            rows.append(dict(row, seconds=h["seconds"], load_start=load.get("load_start", ""),
                             load_end=load.get("load_end", "")))
    return _write_table(results_dir / name, rows, log, PARALLEL_COLUMNS)


def read_rows(table) -> list:
    """The rows of a comparison table (list of dict of strings), for figures and tests."""
    path = Path(check_path(table, "table"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: it is written by python -m lowrank_ref "
                                f"compare ... (see docs/reproduce/03_comparisons.md)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))

