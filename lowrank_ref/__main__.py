"""Command line: ``python -m lowrank_ref <command> [options]``.

Commands
--------
``train``
    Train a dense or a dynamical low-rank network ([SZKCT22]) on MNIST / Fashion-MNIST,
    writing ``history.csv``, ``run.json`` and ``checkpoint.npz`` to ``--out``
    (:func:`lowrank_ref.training.train`). ``--resume DIR`` continues a run.
``sweep``
    One rank-adaptive run per ``--taus`` value and a table (:func:`lowrank_ref.training.sweep`).
``figures``
    Regenerate ``figures/`` (:func:`lowrank_ref.figures.make_figures`).
``oracle export DIR`` / ``oracle verify DIR``
    Golden cases for other backends (:mod:`lowrank_ref.oracle`).

Errors in options, data or files (unreadable, a file where a folder is needed, a run folder
in use by another process) print one line (``<prog>: error: ...``) to stderr and exit with
status 2; a diverged run (non-finite loss) exits with status 1, naming the last good
checkpoint; Ctrl-C exits with status 130 (``run.json`` says "interrupted" and the last
checkpoint can be resumed). Nothing imports this module.

For example ``python -m lowrank_ref train --epochs 0`` prints
``python -m lowrank_ref train: error: epochs must be an int >= 1, got 0`` and exits with 2.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import List, Optional

from .data import DATASETS
from .methods import METHODS, REGISTRY, methods_using
from .threads import DEFAULT_THREADS
from .adam import ADAM_DEFAULTS
from .training import (DEFAULT_LR, DEFAULT_MOMENTUM, DEFAULT_RANK, DEFAULT_SIZES, DEFAULT_WARMUP,
                       DTYPES, SCHEDULES, RunFolderInUse, TrainConfig, TrainingDiverged,
                       load_config, sweep, train)
from .training.config import ARCHS, LENET5_DEFAULTS, OPTIMIZERS, TRAIN_INITS

__all__ = ["main", "build_parser"]

PROG = "python -m lowrank_ref"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every option's default; keep descriptions' line breaks."""


def _int_list(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints such as 500,500,500,500, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"hidden widths must be >= 1, got {text!r}")
    return values


def _path(text: str) -> str:
    """A path option: refused if empty (an unset shell variable is not the current folder)."""
    if text == "":
        raise argparse.ArgumentTypeError("expected a non-empty path, got ''")
    return text


def _learning_rate(text: str) -> float:
    """A learning rate: a finite number > 0 (checked here, before any run trains)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _threads(text: str):
    """``--threads``: an int >= 1, or "all" (None: the BLAS libraries' own default)."""
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1 or 'all', got {text!r}")
    return value


def _threads_option(g) -> None:
    g.add_argument("--threads", type=_threads, default=DEFAULT_THREADS, metavar="{N,all}",
                   help="BLAS/LAPACK threads (1 is fastest for the paper's network on a "
                        "2-core machine, see benchmarks/README.md); 'all': the libraries' "
                        "default, one per core")


def _users(option: str) -> str:
    """The methods that use ``option``, for the help texts (from the method records)."""
    return "/".join(methods_using(option))


def _add_train(sub, suppress_defaults: bool = False) -> None:
    p = sub.add_parser(
        "train", formatter_class=_Formatter, allow_abbrev=False,
        help="train a dense or low-rank network and record the run",
        description=(
            "Train the 784-500-500-500-500-10 ReLU network of [SZKCT22] (or --hidden widths;\n"
            "--arch lenet5: LeNet5, its first three layers low-rank) densely (--method dense)\n"
            "or by dynamical low-rank training: fixed rank or rank-adaptive ([SZKCT22]).\n"
            "Options left at None take the architecture's defaults. Writes history.csv, run.json and\n"
            "checkpoint.npz (after every epoch) to --out. With --resume DIR the configuration\n"
            "comes from DIR's checkpoint; options given on the command line override it, and\n"
            "any change other than --epochs/--finetune-epochs/--out is refused unless --force."),
        epilog=("examples: python -m lowrank_ref train --method adaptive --rank 100 --tau 0.1 "
                "--epochs 10; python -m lowrank_ref train --arch lenet5 --method adaptive "
                "--tau 0.2"))
    _train_options(p, sweep=False)
    if suppress_defaults:   # a probe parser: the namespace holds only the options given
        for action in p._actions:       # (not set_defaults: those land in the namespace)
            if action.dest != "help":
                action.default = argparse.SUPPRESS


def _train_options(p, sweep: bool) -> None:
    """The options of ``train``; ``sweep`` leaves out method, tau and the run folder."""
    def per_method(mlp, lenet, fmt="{:g}"):
        return ("; ".join(", ".join(f"{fmt.format(v)} for {k}" for k, v in d.items())
                          + f" ({arch})" for arch, d in (("mlp", mlp), ("lenet5", lenet))))
    lr_default = per_method(DEFAULT_LR, LENET5_DEFAULTS["lr"])
    mom_default = per_method(DEFAULT_MOMENTUM, LENET5_DEFAULTS["momentum"])
    g = p.add_argument_group("method")
    if not sweep:
        g.add_argument("--method", choices=METHODS, default="dense",
                       help="; ".join(f"{m.name}: {m.help}" for m in REGISTRY.values()))
    g.add_argument("--arch", choices=ARCHS, default="mlp",
                   help="network: the MLP (--hidden) or LeNet5 (conv 1->20, conv 20->50, "
                        "linear 800->500, 500->10; the first three low-rank)")
    g.add_argument("--rank", type=int, default=None,
                   help="starting rank of every low-rank layer, capped by the layer (the last "
                        "layer stays dense); None: "
                        + per_method(DEFAULT_RANK, LENET5_DEFAULTS["rank"], "{}"))
    if not sweep:
        g.add_argument("--tau", type=float, default=None,
                       help=f"relative truncation tolerance (required by {_users('tau')})")
    g.add_argument("--min-rank", type=int, default=1,
                   help=f"smallest rank ({_users('min_rank')})")
    g.add_argument("--max-rank", type=int, default=None,
                   help=f"largest rank ({_users('max_rank')}); None: the full rank "
                        "min(n_in, n_out) per layer (optimizer adam: min(n_in, n_out) // 2, "
                        "as the paper's code)")
    g.add_argument("--passes", type=int, choices=(1, 3), default=1,
                   help=f"{_users('passes')}: 1 backward per step, or the published 3 "
                        "(K, L, S passes)")
    g.add_argument("--finetune-epochs", type=int, default=0,
                   help=f"epochs of S-only fine-tuning after --epochs ({_users('finetune_epochs')})")
    _comparison_options(p, sweep)
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=None,
                   help=f"main epochs; None: {TrainConfig().epochs} (mlp), "
                        f"{LENET5_DEFAULTS['epochs']} (lenet5)")
    g.add_argument("--batch-size", type=int, default=None,
                   help=f"samples per step; None: {TrainConfig().batch_size} (mlp), "
                        f"{LENET5_DEFAULTS['batch_size']} (lenet5)")
    g.add_argument("--lr", type=float, default=None,
                   help=f"learning rate; None: {lr_default}")
    g.add_argument("--momentum", type=float, default=None,
                   help=f"heavy-ball momentum in [0, 1); None: {mom_default} (0 gives plain "
                        f"SGD, the Euler step of the gradient flow analysed in [SZKCT22])")
    g.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="learning rate: constant, or cosine decay per step to 0 over "
                        f"--epochs (restarted for fine-tuning); None: {TrainConfig().schedule} "
                        f"(mlp), {LENET5_DEFAULTS['schedule']} (lenet5)")
    g.add_argument("--warmup", type=int, default=None,
                   help="steps of linear learning-rate warm-up; None: "
                        + per_method(DEFAULT_WARMUP, LENET5_DEFAULTS["warmup"], "{}"))
    g.add_argument("--seed", type=int, default=TrainConfig.seed,
                   help="seed of initialisation and shuffling")
    g.add_argument("--dtype", choices=DTYPES, default=TrainConfig.dtype,
                   help="floating-point type of parameters and data")
    _threads_option(g)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default=TrainConfig.dataset,
                   help="data set (see lowrank_ref.data.load for where it is looked for)")
    g.add_argument("--data-dir", type=_path, default=None, metavar="DIR",
                   help="folder searched first for the data; None: $LOWRANK_REF_DATA, then "
                        "the installed packages")
    g.add_argument("--hidden", type=_int_list, default=None, metavar="W1,W2,...",
                   help="hidden layer widths of the MLP, comma-separated; None: "
                        + ",".join(map(str, DEFAULT_SIZES[1:-1])))
    g.add_argument("--n-train", type=int, default=None,
                   help="use only the first N training samples; None: all")
    g.add_argument("--n-test", type=int, default=None,
                   help="use only the first N test samples; None: all")
    g.add_argument("--validation", action=argparse.BooleanOptionalAction,
                   default=TrainConfig.validation,
                   help="hold out the last 10,000 training images (MNIST: the valid part of "
                        "mnist.pkl.gz), evaluate on them after every epoch and on the test set "
                        "after the last epoch only; --no-validation: train on all training "
                        "images and evaluate the test set after every epoch (the runs "
                        "recorded before this option; a resumed run keeps its own)")
    g.add_argument("--n-valid", type=int, default=None,
                   help="with --validation: use only the first N validation samples; None: all")
    if sweep:
        return
    g = p.add_argument_group("records")
    g.add_argument("--out", type=_path, default=None, metavar="DIR",
                   help="output folder; None: runs/<method>-<YYYYmmdd-HHMMSS>, or the "
                        "--resume folder")
    g.add_argument("--resume", type=_path, default=None, metavar="DIR",
                   help="continue the run whose checkpoint.npz is in DIR")
    g.add_argument("--force", action="store_true", default=False,
                   help="with --resume: accept a configuration that differs from the "
                        "checkpoint's")


def _comparison_options(p, sweep: bool) -> None:
    """The options of the comparisons (issue 14): ranks, starts, pruning, Adam."""
    g = p.add_argument_group("comparisons (vanilla, pruning, Adam)")
    if not sweep:
        g.add_argument("--ranks", type=_int_list, default=None, metavar="R1,R2,...",
                       help=f"one rank per hidden layer ({_users('ranks')})")
        g.add_argument("--decay", type=float, default=None,
                       help="start from the official code's spectrum decaying by this factor "
                            f"(>= 1; {_users('decay')}); None: the package's start")
        g.add_argument("--prune-from", type=_path, default=None, metavar="DIR",
                       help=f"{_users('prune_from')}: start from this dense run, its hidden "
                            "layers truncated to --ranks or by --prune-tau")
        g.add_argument("--prune-tau", type=float, default=None,
                       help="with --prune-from: ranks by this tolerance (the DLRT rule)")
    g.add_argument("--init", choices=TRAIN_INITS, default=TrainConfig.init,
                   help="dense draw of every layer (truncated for low-rank layers), or "
                        "keras-normal: every factor and bias N(0, 0.05^2) (the paper's code)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=TrainConfig.optimizer,
                   help="sgd (with --momentum); adam: the paper's code (moments per factor "
                        "variable); adam-carried: moments carried across bases")
    for name in ("beta1", "beta2", "eps"):
        g.add_argument(f"--adam-{name}", type=float, default=ADAM_DEFAULTS[name],
                       help=f"Adam's {name} (Adam only)")


def _seed_list(text: str) -> List[int]:
    """Comma-separated distinct ints >= 0 (seeds)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints such as 0,1,2, got {text!r}") from None
    if any(v < 0 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"seeds must be distinct ints >= 0, got {text!r}")
    return values


def _float_list(text: str) -> List[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.05,0.1, got {text!r}") from None
    return values


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", formatter_class=_Formatter, allow_abbrev=False,
        help="rank-adaptive runs for several tau, and one table",
        description=(
            "Run rank-adaptive DLRT once per --taus value (and --seeds seed; same options as\n"
            "train) and write RESULTS/mnist_dense_table.csv (--arch lenet5:\n"
            "RESULTS/mnist_lenet5_table.csv; tau, test accuracy, ranks, eval/train parameters\n"
            "and compression rates, epochs, seconds per epoch, seed). Runs go to\n"
            "RESULTS/mnist_runs/tau-<tau> (lenet5: RESULTS/lenet5_runs/; with --seeds the\n"
            "names end in -seed<seed>; --dataset fashion-mnist: fashion_dense_table.csv,\n"
            "fashion_lenet5_table.csv, fashion_runs/, fashion_lenet5_runs/); an interrupted\n"
            "sweep resumes where it stopped."),
        epilog="the paper's table: see docs/reproduce/01_mnist_table.md")
    p.add_argument("--taus", type=_float_list, required=True, metavar="T1,T2,...",
                   help="relative truncation tolerances")
    p.add_argument("--dense-baseline", action="store_true", default=False,
                   help="also train the dense network (train's defaults, same --arch, "
                        "--epochs, --batch-size, --seed(s), --dtype, --hidden) as the first row")
    p.add_argument("--seeds", type=_seed_list, default=None, metavar="S1,S2,...",
                   help="train every row once per seed (replaces --seed; run names end in "
                        "-seed<seed>)")
    p.add_argument("--results", type=_path, default="results", metavar="DIR",
                   help="folder of the table and of the runs")
    _train_options(p, sweep=True)


def _add_figures(sub) -> None:
    p = sub.add_parser(
        "figures", formatter_class=_Formatter, allow_abbrev=False,
        help="regenerate the figures under figures/",
        description=("Recompute the integrator experiments and draw every figure; the MNIST\n"
                     "figures read RESULTS/mnist_dense_table.csv and the runs' history.csv,\n"
                     "the LeNet5 figure RESULTS/mnist_lenet5_table.csv (written by the sweep\n"
                     "command), the comparison figures RESULTS/mnist_comparison.csv,\n"
                     "RESULTS/mnist_illconditioned.csv and, if it exists,\n"
                     "RESULTS/lenet5_illconditioned.csv (written by the compare command);\n"
                     "nothing is retrained."))
    p.add_argument("--only", choices=("integrators", "mnist", "lenet5", "timing", "comparison"),
                   default=None,
                   help="one group of figures; None: all")
    p.add_argument("--fast", action="store_true", default=False,
                   help="tiny integrator experiments (for tests)")
    _threads_option(p)
    p.add_argument("--out", type=_path, default="figures", metavar="DIR",
                   help="output folder")
    p.add_argument("--results", type=_path, default="results", metavar="DIR",
                   help="folder of the sweep's table and runs")


def _add_oracle(sub) -> None:
    p = sub.add_parser(
        "oracle", formatter_class=_Formatter, allow_abbrev=False,
        help="export or verify the golden cases for other backends",
        description=("export DIR: write every golden case as .npz plus manifest.json;\n"
                     "verify DIR: check the files' hashes and recompute the cases."))
    osub = p.add_subparsers(dest="action", metavar="action", required=True,
                            parser_class=_Parser)
    for name, text in (("export", "write the golden cases to DIR"),
                       ("verify", "check the golden cases in DIR")):
        q = osub.add_parser(name, formatter_class=_Formatter, help=text, description=text)
        q.add_argument("directory", type=_path, metavar="DIR")


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", formatter_class=_Formatter, allow_abbrev=False,
        help="the paper's comparisons: methods, ill-conditioning, the Adam recipe",
        description=(
            "methods: per --taus, rank-adaptive DLRT, then at its ranks fixed-rank DLRT,\n"
            "vanilla U V^T, the dense network pruned (no fine-tuning) and pruned + fine-tuned\n"
            "(fixed-rank DLRT, S-only) -> RESULTS/mnist_comparison.csv.\n"
            "illconditioned: fixed rank --rank, starting spectra decaying by --decays, DLRT\n"
            "against vanilla from the same W0 -> RESULTS/mnist_illconditioned.csv\n"
            "(--arch lenet5: RESULTS/lenet5_illconditioned.csv; --dataset fashion-mnist:\n"
            "RESULTS/fashion_illconditioned.csv, RESULTS/fashion_lenet5_illconditioned.csv).\n"
            "recipe: adaptive DLRT with Adam (both forms) from the paper code's start\n"
            "-> RESULTS/mnist_adam_recipe.csv.\n"
            "parallel: per --seeds and --taus, the parallel step beside the rank-adaptive BUG\n"
            "step (accuracy, ranks, seconds per epoch, load) -> RESULTS/mnist_parallel.csv\n"
            "(--arch lenet5: RESULTS/lenet5_parallel.csv).\n"
            "The train options below are shared by every run (unset: each method's default,\n"
            "for recipe the paper's recipe). Finished runs are read, interrupted ones resumed."),
        epilog="the commands that made the committed tables: docs/reproduce/")
    p.add_argument("experiment", choices=("methods", "illconditioned", "recipe", "parallel"))
    p.add_argument("--taus", type=_float_list, default=None, metavar="T1,T2,...",
                   help="methods, recipe: tolerances (default 0.05,0.09,0.13,0.17); "
                        "parallel: 0.1,0.15")
    p.add_argument("--decays", type=_float_list, default=None, metavar="D1,D2,...",
                   help="illconditioned: spectrum decays (default 1,2,10)")
    p.add_argument("--finetune-lr", type=_learning_rate, default=None,
                   help="methods: learning rate of the fine-tuning after pruning (default: "
                        "as the other runs)")
    p.add_argument("--seeds", type=_seed_list, default=None, metavar="S1,S2,...",
                   help="methods, illconditioned: one set of runs per seed (default 0); "
                        "parallel: default 0,1,2")
    p.add_argument("--vanilla-lr", type=_learning_rate, default=None,
                   help="methods: learning rate of the vanilla U V^T runs (default: as the "
                        "other runs)")
    p.add_argument("--results", type=_path, default="results", metavar="DIR",
                   help="folder of the tables and of the runs")
    _train_options(p, sweep=True)
    for action in p._actions:           # only the options given reach the runs
        if action.dest not in ("help", "experiment", "results"):
            action.default = argparse.SUPPRESS


def _add_prune(sub) -> None:
    p = sub.add_parser(
        "prune", formatter_class=_Formatter, allow_abbrev=False,
        help="truncate a trained dense network to low rank and evaluate it",
        description=("Load the dense run DIR, truncate each hidden layer's SVD to --ranks (or\n"
                     "by --tau, the rank rule of adaptive DLRT) and evaluate on the test set;\n"
                     "--out writes the record (history.csv, run.json). Fine-tune with\n"
                     "train --method fixed|sonly --prune-from DIR --ranks ..."))
    p.add_argument("dense_run", type=_path, metavar="DIR",
                   help="a dense run folder (or its checkpoint)")
    p.add_argument("--ranks", type=_int_list, default=None, metavar="R1,R2,...")
    p.add_argument("--tau", type=float, default=None)
    p.add_argument("--out", type=_path, default=None, metavar="DIR",
                   help="record folder (optional)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="None: the dense run's data set")
    p.add_argument("--data-dir", type=_path, default=None, metavar="DIR",
                   help="None: the dense run's")
    p.add_argument("--n-test", type=int, default=None, help="None: the whole test set")


def _compare(args) -> None:
    from .training.compare import (compare_illconditioned, compare_methods, compare_parallel,
                                   recipe_sweep)
    given = dict(vars(args))
    for key in ("command", "experiment", "results"):
        given.pop(key)
    kw = {k: given.pop(k) for k in ("epochs",) if k in given}
    if "seeds" in given:
        if args.experiment == "recipe":
            raise ValueError("seeds is not an option of compare recipe (use --seed)")
        kw["seeds"] = given.pop("seeds")
    if "hidden" in given:
        given.pop("hidden")
        given["sizes"] = _sizes(args)            # names --hidden if the arch takes no widths
    if args.experiment == "methods":
        if "taus" in given:
            kw["taus"] = given.pop("taus")
        if "finetune_epochs" in given:
            kw["finetune_epochs"] = given.pop("finetune_epochs")
        if "finetune_lr" in given:
            kw["finetune_options"] = {"lr": given.pop("finetune_lr")}
        if "vanilla_lr" in given:
            kw["method_options"] = {"vanilla": {"lr": given.pop("vanilla_lr")}}
        extra = sorted(k for k in ("decays", "rank") if k in given)
        if extra:
            raise ValueError(f"{extra} are not options of compare methods")
        compare_methods(options=given, results_dir=args.results, **kw)
    elif args.experiment == "illconditioned":
        for key, name in (("decays", "decays"), ("rank", "rank")):
            if key in given:
                kw[name] = given.pop(key)
        extra = sorted(k for k in ("taus", "finetune_lr", "vanilla_lr") if k in given)
        if extra:
            raise ValueError(f"{extra} are not options of compare illconditioned")
        compare_illconditioned(options=given, results_dir=args.results, **kw)
    else:                                        # recipe, parallel: tolerances only
        if "taus" in given:
            kw["taus"] = given.pop("taus")
        extra = sorted(k for k in ("decays", "finetune_lr", "vanilla_lr") if k in given)
        if extra:
            raise ValueError(f"{extra} are not options of compare {args.experiment}")
        run = recipe_sweep if args.experiment == "recipe" else compare_parallel
        run(options=given, results_dir=args.results, **kw)


def _prune(args) -> None:
    from .training.compare import evaluate_start, record_start
    dense = load_config(args.dense_run)          # sizes, dtype and data of the dense run
    if dense.arch != "mlp":
        raise ValueError(f"prune works on dense runs of arch 'mlp' (hidden layers cut by "
                         f"SVDs), got {args.dense_run} of arch {dense.arch!r}")
    config = TrainConfig(method="fixed", prune_from=args.dense_run, ranks=args.ranks,
                         prune_tau=args.tau, sizes=dense.sizes, dtype=dense.dtype,
                         dataset=args.dataset or dense.dataset,
                         data_dir=args.data_dir or dense.data_dir, n_test=args.n_test,
                         validation=dense.validation, out=args.out)
    what = f"dense run {args.dense_run} pruned, not fine-tuned"
    row = evaluate_start(config) if args.out is None else record_start(config, what=what)[0]
    val = (f"validation acc {100 * float(row['val_acc']):.2f}%, "
           if row.get("val_acc") not in (None, "") else "")
    print(f"{what}: ranks {row['ranks']}, {val}test acc {100 * float(row['test_acc']):.2f}%, "
          f"eval params {int(row['eval_params']):,} (c.r. {100 * float(row['eval_cr']):.1f}%)")


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The argument parser of ``python -m lowrank_ref``.

    With ``suppress_defaults`` the options of ``train`` have no defaults, so the parsed
    namespace holds only the options given on the command line (used by ``--resume``).
    """
    parser = _Parser(prog=PROG, formatter_class=_Formatter, allow_abbrev=False,
                     description="lowrank_ref: dynamical low-rank approximation and training "
                                 "(NumPy reference implementation).")
    sub = parser.add_subparsers(dest="command", metavar="command", required=True,
                                parser_class=_Parser)
    _add_train(sub, suppress_defaults)
    _add_sweep(sub)
    _add_figures(sub)
    _add_oracle(sub)
    _add_compare(sub)
    _add_prune(sub)
    return parser


# argparse destination -> TrainConfig field (the rest map to themselves)
_NOT_CONFIG = ("command", "resume", "force", "hidden")


def _sizes(args):
    """The MLP's widths from --hidden (None: the default network, or LeNet5's no widths)."""
    if args.hidden is None:
        return None
    arch = getattr(args, "arch", "mlp")          # compare: absent unless given
    if arch != "mlp":
        raise ValueError(f"--hidden is only used by --arch mlp (the layers of LeNet5 are "
                         f"fixed), got --hidden {','.join(map(str, args.hidden))} with --arch "
                         f"{arch}")
    return [DEFAULT_SIZES[0], *args.hidden, DEFAULT_SIZES[-1]]


def _explicit_options(argv: List[str]) -> set:
    """Destinations of the options given on the command line (not left at their default)."""
    return set(vars(build_parser(suppress_defaults=True).parse_args(argv))) - {"command"}


def _train_config(args, argv) -> tuple:
    if args.force and args.resume is None:
        raise ValueError("--force applies only with --resume DIR (it accepts a configuration "
                         "that differs from the checkpoint's)")
    values = {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}
    if args.resume is None:
        return TrainConfig(sizes=_sizes(args), **values), None
    given = _explicit_options(argv)
    base = load_config(args.resume).to_dict()
    for key in given:
        if key in values:
            base[key] = values[key]
    if "hidden" in given:
        ends = base["sizes"] or DEFAULT_SIZES          # (LeNet5 refuses widths itself)
        base["sizes"] = [ends[0], *args.hidden, ends[-1]]
    if "out" not in given:
        base["out"] = None                 # write into the resumed folder
    return TrainConfig(**base), args.resume


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 diverged, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        if args.command == "train":
            config, resume = _train_config(args, argv)
            train(config, resume=resume, force=args.force)
        elif args.command == "sweep":
            values = {k: v for k, v in vars(args).items()
                      if k not in _NOT_CONFIG + ("taus", "dense_baseline", "results", "seeds")}
            base = TrainConfig(method="adaptive", tau=args.taus[0], sizes=_sizes(args), **values)
            dense = None
            if args.dense_baseline:
                dense = TrainConfig(method="dense", arch=args.arch, sizes=_sizes(args),
                                    epochs=args.epochs, seed=args.seed, dtype=args.dtype,
                                    dataset=args.dataset, data_dir=args.data_dir,
                                    batch_size=args.batch_size, n_train=args.n_train,
                                    n_test=args.n_test, validation=args.validation,
                                    n_valid=args.n_valid, threads=args.threads)
            sweep(args.taus, base, results_dir=args.results, dense=dense, seeds=args.seeds)
        elif args.command == "compare":
            _compare(args)
        elif args.command == "prune":
            _prune(args)
        elif args.command == "figures":
            from .figures import make_figures
            make_figures(only=args.only, fast=args.fast, out_dir=args.out,
                         results_dir=args.results, threads=args.threads)
        elif args.command == "oracle":
            from . import oracle
            run = oracle.export_command if args.action == "export" else oracle.verify_command
            return run(args.directory)
    except TrainingDiverged as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    # OSError: a file where a folder is needed, ...; RunFolderInUse: another process trains
    # into the run folder (its pid is in the message).
    except (ValueError, TypeError, OSError, RunFolderInUse) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; the last checkpoint (if any) is complete and can be "
              f"resumed with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
