"""Command line: ``python -m lowrank_ref <command> [options]``.

Commands
--------
``train``
    Train a dense or a dynamical low-rank network ([SZKCT22]) on MNIST / Fashion-MNIST,
    writing ``history.csv``, ``run.json`` and ``checkpoint.npz`` to ``--out``
    (:func:`lowrank_ref.training.train`). ``--resume DIR`` continues a run.
``sweep``
    One rank-adaptive run per ``--taus`` value and a table (:func:`lowrank_ref.training.sweep`).
``compare EXPERIMENT``
    The paper's comparisons, one table each
    (:func:`lowrank_ref.training.commands.run_comparison`).
``prune DIR``
    A dense run truncated by SVDs and evaluated (:func:`lowrank_ref.training.commands.prune_run`).
``figures``
    Regenerate ``figures/`` (:func:`lowrank_ref.figures.make_figures`).
``oracle export DIR`` / ``oracle verify DIR``
    Golden cases for other backends (:mod:`lowrank_ref.oracle`).

Errors in options, data or files (unreadable, a file where a folder is needed, a run folder
in use by another process) print one line (``<prog>: error: ...``) to stderr and exit with
status 2; a diverged run (non-finite loss) exits with status 1, naming the last good
checkpoint; Ctrl-C exits with status 130 (``run.json`` says "interrupted" and the last
checkpoint can be resumed). This module only maps the arguments to configurations and
options and calls the library (:mod:`lowrank_ref.training.commands` holds what the commands
do beyond one library call); nothing in the package imports it.

For example ``python -m lowrank_ref train --epochs 0`` prints
``python -m lowrank_ref train: error: epochs must be an int >= 1, got 0`` and exits with 2.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import List, Optional

from .data import DATASETS
from .methods import REGISTRY, methods_using
from .threads import DEFAULT_THREADS
from .adam import ADAM_DEFAULTS
from .training import (DEFAULT_LR, DEFAULT_MOMENTUM, DEFAULT_RANK, DEFAULT_SIZES, DEFAULT_WARMUP,
                       DTYPES, SCHEDULES, DataSpec, ModelSpec, RunFolderInUse, RunSpec, StartSpec,
                       StepSpec, TrainConfig, TrainingDiverged, sweep, train)
from .training.commands import (COMPARISONS, dense_baseline, mlp_sizes, prune_run,
                                resumed_config, run_comparison)
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


def _threads_option(g, add=None) -> None:
    (add or _plain)(g, "--threads", type=_threads, default=DEFAULT_THREADS, metavar="{N,all}",
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
    _train_options(p, sweep=False, suppress=suppress_defaults)


def _plain(group, *flags, **kwargs) -> None:
    group.add_argument(*flags, **kwargs)


def _suppressed(group, *flags, **kwargs) -> None:
    """An option without default: the parsed namespace holds it only if it was given."""
    group.add_argument(*flags, **dict(kwargs, default=argparse.SUPPRESS))


def _train_options(p, sweep: bool, suppress: bool = False) -> None:
    """The options of ``train``; ``sweep`` leaves out method, tau and the run folder;
    ``suppress``: no defaults (the namespace holds only the options given)."""
    add = _suppressed if suppress else _plain
    def per_method(mlp, lenet, fmt="{:g}"):
        return ("; ".join(", ".join(f"{fmt.format(v)} for {k}" for k, v in d.items())
                          + f" ({arch})" for arch, d in (("mlp", mlp), ("lenet5", lenet))))
    lr_default = per_method(DEFAULT_LR, LENET5_DEFAULTS["lr"])
    mom_default = per_method(DEFAULT_MOMENTUM, LENET5_DEFAULTS["momentum"])
    g = p.add_argument_group("method")
    if not sweep:
        add(g, "--method", choices=tuple(REGISTRY), default="dense",
               help="; ".join(f"{m.name}: {m.help}" for m in REGISTRY.values()))
    add(g, "--arch", choices=ARCHS, default="mlp",
           help="network: the MLP (--hidden) or LeNet5 (conv 1->20, conv 20->50, "
                "linear 800->500, 500->10; the first three low-rank)")
    add(g, "--rank", type=int, default=None,
           help="starting rank of every low-rank layer, capped by the layer (the last "
                "layer stays dense); None: "
                + per_method(DEFAULT_RANK, LENET5_DEFAULTS["rank"], "{}"))
    if not sweep:
        add(g, "--tau", type=float, default=None,
               help=f"relative truncation tolerance (required by {_users('tau')})")
    add(g, "--min-rank", type=int, default=1,
           help=f"smallest rank ({_users('min_rank')})")
    add(g, "--max-rank", type=int, default=None,
           help=f"largest rank ({_users('max_rank')}); None: the full rank "
                "min(n_in, n_out) per layer (optimizer adam: min(n_in, n_out) // 2, "
                "as the paper's code)")
    add(g, "--passes", type=int, choices=(1, 3), default=1,
           help=f"{_users('passes')}: 1 backward per step, or the published 3 "
                "(K, L, S passes)")
    add(g, "--finetune-epochs", type=int, default=0,
           help=f"epochs of S-only fine-tuning after --epochs ({_users('finetune_epochs')})")
    _comparison_options(p, sweep, add)
    g = p.add_argument_group("optimisation")
    add(g, "--epochs", type=int, default=None,
           help=f"main epochs; None: {TrainConfig().epochs} (mlp), "
                f"{LENET5_DEFAULTS['epochs']} (lenet5)")
    add(g, "--batch-size", type=int, default=None,
           help=f"samples per step; None: {TrainConfig().batch_size} (mlp), "
                f"{LENET5_DEFAULTS['batch_size']} (lenet5)")
    add(g, "--lr", type=float, default=None,
           help=f"learning rate; None: {lr_default}")
    add(g, "--momentum", type=float, default=None,
           help=f"heavy-ball momentum in [0, 1); None: {mom_default} (0 gives plain "
                f"SGD, the Euler step of the gradient flow analysed in [SZKCT22])")
    add(g, "--schedule", choices=SCHEDULES, default=None,
           help="learning rate: constant, or cosine decay per step to 0 over "
                f"--epochs (restarted for fine-tuning); None: {TrainConfig().schedule} "
                f"(mlp), {LENET5_DEFAULTS['schedule']} (lenet5)")
    add(g, "--warmup", type=int, default=None,
           help="steps of linear learning-rate warm-up; None: "
                + per_method(DEFAULT_WARMUP, LENET5_DEFAULTS["warmup"], "{}"))
    add(g, "--seed", type=int, default=RunSpec.seed,
           help="seed of initialisation and shuffling")
    add(g, "--dtype", choices=DTYPES, default=ModelSpec.dtype,
           help="floating-point type of parameters and data")
    _threads_option(g, add)
    g = p.add_argument_group("data")
    add(g, "--dataset", choices=DATASETS, default=DataSpec.dataset,
           help="data set (see lowrank_ref.data.load for where it is looked for)")
    add(g, "--data-dir", type=_path, default=None, metavar="DIR",
           help="folder searched first for the data; None: $LOWRANK_REF_DATA, then "
                "the installed packages")
    add(g, "--hidden", type=_int_list, default=None, metavar="W1,W2,...",
           help="hidden layer widths of the MLP, comma-separated; None: "
                + ",".join(map(str, DEFAULT_SIZES[1:-1])))
    add(g, "--n-train", type=int, default=None,
           help="use only the first N training samples; None: all")
    add(g, "--n-test", type=int, default=None,
           help="use only the first N test samples; None: all")
    add(g, "--validation", action=argparse.BooleanOptionalAction,
           default=DataSpec.validation,
           help="hold out the last 10,000 training images (MNIST: the valid part of "
                "mnist.pkl.gz), evaluate on them after every epoch and on the test set "
                "after the last epoch only; --no-validation: train on all training "
                "images and evaluate the test set after every epoch (the runs "
                "recorded before this option; a resumed run keeps its own)")
    add(g, "--n-valid", type=int, default=None,
           help="with --validation: use only the first N validation samples; None: all")
    if sweep:
        return
    g = p.add_argument_group("records")
    add(g, "--out", type=_path, default=None, metavar="DIR",
           help="output folder; None: runs/<method>-<YYYYmmdd-HHMMSS>, or the "
                "--resume folder")
    add(g, "--resume", type=_path, default=None, metavar="DIR",
           help="continue the run whose checkpoint.npz is in DIR")
    add(g, "--force", action="store_true", default=False,
           help="with --resume: accept a configuration that differs from the "
                "checkpoint's")


def _comparison_options(p, sweep: bool, add=_plain) -> None:
    """The options of the comparisons (issue 14): ranks, starts, pruning, Adam."""
    g = p.add_argument_group("comparisons (vanilla, pruning, Adam)")
    if not sweep:
        add(g, "--ranks", type=_int_list, default=None, metavar="R1,R2,...",
               help=f"one rank per hidden layer ({_users('ranks')})")
        add(g, "--decay", type=float, default=None,
               help="start from the official code's spectrum decaying by this factor "
                    f"(>= 1; {_users('decay')}); None: the package's start")
        add(g, "--prune-from", type=_path, default=None, metavar="DIR",
               help=f"{_users('prune_from')}: start from this dense run, its hidden "
                    "layers truncated to --ranks or by --prune-tau")
        add(g, "--prune-tau", type=float, default=None,
               help="with --prune-from: ranks by this tolerance (the DLRT rule)")
    add(g, "--init", choices=TRAIN_INITS, default=StartSpec.init,
           help="dense draw of every layer (truncated for low-rank layers), or "
                "keras-normal: every factor and bias N(0, 0.05^2) (the paper's code)")
    add(g, "--spectrum-length", type=float, default=StartSpec.spectrum_length,
           metavar="LENGTH",
           help="the drawn start of low-rank layers: its singular values decay as "
                "exp(-i / LENGTH) ...")
    add(g, "--spectrum-norm", type=float, default=StartSpec.spectrum_norm, metavar="NORM",
           help="... and have the 2-norm NORM sqrt(2 n_out) (the He draw's: 1)")
    add(g, "--optimizer", choices=OPTIMIZERS, default=StepSpec.optimizer,
           help="sgd (with --momentum); adam: the paper's code (moments per factor "
                "variable); adam-carried: moments carried across bases")
    for name in ("beta1", "beta2", "eps"):
        add(g, f"--adam-{name}", type=float, default=ADAM_DEFAULTS[name],
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
    p.add_argument("experiment", choices=tuple(COMPARISONS))
    p.add_argument("--taus", type=_float_list, default=argparse.SUPPRESS, metavar="T1,T2,...",
                   help="methods, recipe: tolerances (default 0.05,0.09,0.13,0.17); "
                        "parallel: 0.1,0.15")
    p.add_argument("--decays", type=_float_list, default=argparse.SUPPRESS, metavar="D1,D2,...",
                   help="illconditioned: spectrum decays (default 1,2,10)")
    p.add_argument("--finetune-lr", type=_learning_rate, default=argparse.SUPPRESS,
                   help="methods: learning rate of the fine-tuning after pruning (default: "
                        "as the other runs)")
    p.add_argument("--seeds", type=_seed_list, default=argparse.SUPPRESS, metavar="S1,S2,...",
                   help="methods, illconditioned: one set of runs per seed (default 0); "
                        "parallel: default 0,1,2")
    p.add_argument("--equal-budget-dense-epochs", type=int, default=argparse.SUPPRESS,
                   metavar="K",
                   help="methods: also prune a K-epoch dense run and fine-tune it for "
                        "EPOCHS - K epochs (the DLRT runs' budget)")
    p.add_argument("--vanilla-lr", type=_learning_rate, default=argparse.SUPPRESS,
                   help="methods: learning rate of the vanilla U V^T runs (default: as the "
                        "other runs)")
    p.add_argument("--results", type=_path, default="results", metavar="DIR",
                   help="folder of the tables and of the runs")
    _train_options(p, sweep=True, suppress=True)     # only the options given reach the runs


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
    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "experiment", "results", "hidden")}
    if "hidden" in args:
        options["sizes"] = mlp_sizes(args.hidden, getattr(args, "arch", "mlp"))
    run_comparison(args.experiment, options, results_dir=args.results)


def _prune(args) -> None:
    what, row = prune_run(args.dense_run, ranks=args.ranks, tau=args.tau, out=args.out,
                          dataset=args.dataset, data_dir=args.data_dir, n_test=args.n_test)
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
    p = sub.add_parser("report", formatter_class=_Formatter, allow_abbrev=False,
                       help="rewrite the generated blocks of docs/reproduce/*.md from results/",
                       description="rewrite the tables and statements of the experiment pages "
                                   "from the committed tables (lowrank_ref.reports)")
    p.add_argument("--root", type=_path, default=".", metavar="DIR",
                   help="the repository (with results/ and docs/reproduce/)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page "
                   "would change")
    _add_compare(sub)
    _add_prune(sub)
    return parser


# argparse destinations that are not TrainConfig options (the rest map to themselves)
_NOT_CONFIG = ("command", "resume", "force", "hidden")


def _config_options(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}


def _train_config(args, argv) -> TrainConfig:
    if args.force and args.resume is None:
        raise ValueError("--force applies only with --resume DIR (it accepts a configuration "
                         "that differs from the checkpoint's)")
    if args.resume is None:
        return TrainConfig(sizes=mlp_sizes(args.hidden, args.arch), **_config_options(args))
    given = build_parser(suppress_defaults=True).parse_args(argv)   # the options given only
    return resumed_config(args.resume, _config_options(given),
                          hidden=getattr(given, "hidden", None))


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 diverged, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        if args.command == "train":
            train(_train_config(args, argv), resume=args.resume, force=args.force)
        elif args.command == "sweep":
            options = {k: v for k, v in _config_options(args).items()
                       if k not in ("taus", "dense_baseline", "results", "seeds")}
            base = TrainConfig(method="adaptive", tau=args.taus[0],
                               sizes=mlp_sizes(args.hidden, args.arch), **options)
            sweep(args.taus, base, results_dir=args.results, seeds=args.seeds,
                  dense=dense_baseline(base) if args.dense_baseline else None)
        elif args.command == "compare":
            _compare(args)
        elif args.command == "prune":
            _prune(args)
        elif args.command == "figures":
            from .figures import make_figures
            make_figures(only=args.only, fast=args.fast, out_dir=args.out,
                         results_dir=args.results, threads=args.threads)
        elif args.command == "report":
            from .reports import write_reports
            return int(bool(write_reports(args.root, check=args.check)) and args.check)
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
