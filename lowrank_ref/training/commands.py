"""What the commands of ``python -m lowrank_ref`` do beyond one call of the library.

The command line (:mod:`lowrank_ref.__main__`) maps its arguments to the options of these
functions and prints what they return; the logic lives here, with its tests:

* :func:`mlp_sizes` -- the widths of the MLP from ``--hidden``;
* :func:`resumed_config` -- the configuration of ``train --resume``: the run's own, with the
  options given on the command line instead;
* :func:`dense_baseline` -- the dense run of ``sweep --dense-baseline``;
* :func:`run_comparison` -- ``compare EXPERIMENT``: the options of the experiment apart from
  those of its runs, each refused where it does not apply, before anything trains;
* :func:`prune_run` -- ``prune DIR``: a dense run truncated by SVDs, evaluated (and recorded).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from ..data import Dataset
from .checkpoint import load_config
from .compare import compare_illconditioned, compare_methods, compare_parallel, recipe_sweep
from .config import DEFAULT_SIZES, TrainConfig
from .start_records import evaluate_start, record_start

__all__ = ["mlp_sizes", "resumed_config", "dense_baseline", "run_comparison", "prune_run",
           "COMPARISONS"]

#: ``compare EXPERIMENT``: its function, the options that are the experiment's own (not
#: its runs'), and the options of the other experiments that it refuses. Every other option
#: is an option of each of its runs (a :class:`TrainConfig` field).
COMPARISONS = {
    "methods": (compare_methods,
                ("taus", "epochs", "seeds", "finetune_epochs", "finetune_lr", "vanilla_lr",
                 "equal_budget_dense_epochs"),
                ("decays", "rank")),
    "illconditioned": (compare_illconditioned, ("decays", "rank", "epochs", "seeds"),
                       ("taus", "finetune_lr", "vanilla_lr", "equal_budget_dense_epochs")),
    "recipe": (recipe_sweep, ("taus", "epochs"),
               ("seeds", "decays", "finetune_lr", "vanilla_lr", "equal_budget_dense_epochs")),
    "parallel": (compare_parallel, ("taus", "epochs", "seeds"),
                 ("decays", "finetune_lr", "vanilla_lr", "equal_budget_dense_epochs")),
}


def mlp_sizes(hidden: Optional[Sequence[int]], arch: str = "mlp",
              ends: Sequence[int] = DEFAULT_SIZES) -> Optional[List[int]]:
    """The layer widths ``[ends[0], *hidden, ends[-1]]`` (None if ``hidden`` is None: the
    default network); a ValueError naming ``--hidden`` for an architecture without widths.

    Examples
    --------
    >>> mlp_sizes([100, 50])
    [784, 100, 50, 10]
    >>> mlp_sizes([100], arch="lenet5")
    Traceback (most recent call last):
    ...
    ValueError: --hidden is only used by --arch mlp (the layers of LeNet5 are fixed), got --hidden 100 with --arch lenet5
    """
    if hidden is None:
        return None
    if arch != "mlp":
        raise ValueError(f"--hidden is only used by --arch mlp (the layers of LeNet5 are "
                         f"fixed), got --hidden {','.join(map(str, hidden))} with --arch "
                         f"{arch}")
    return [ends[0], *hidden, ends[-1]]


def resumed_config(run, overrides: dict, hidden: Optional[Sequence[int]] = None
                   ) -> TrainConfig:
    """The configuration that continues the run folder (or checkpoint) ``run``.

    Its own configuration, with the options of ``overrides`` (:class:`TrainConfig` fields,
    the options given on the command line) instead and the hidden widths ``hidden`` (the
    run's input and output widths kept); ``out`` is None (write into ``run``) unless
    overridden. Whether the result may continue the run is the check of
    :func:`~lowrank_ref.training.train` (only epochs, fine-tuning epochs, the folder and the
    threads may change without ``force``).
    """
    base = load_config(run).to_flat()
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(f"unknown configuration option(s) {unknown}; known: {sorted(base)}")
    base.update(overrides)
    if hidden is not None:              # (LeNet5 refuses widths itself)
        base["sizes"] = [*(base["sizes"] or DEFAULT_SIZES)[:1], *hidden,
                         *(base["sizes"] or DEFAULT_SIZES)[-1:]]
    if "out" not in overrides:
        base["out"] = None              # write into the resumed folder
    return TrainConfig.from_dict(base)


def dense_baseline(base: TrainConfig) -> TrainConfig:
    """The dense run beside the rank-adaptive runs of ``base`` (``sweep --dense-baseline``):
    the same network, data, epochs, batch, seed, dtype and threads, the dense defaults for
    the rest.

    Examples
    --------
    >>> dense_baseline(TrainConfig(method="adaptive", tau=0.1, epochs=3)).epochs
    3
    """
    if not isinstance(base, TrainConfig):
        raise TypeError(f"base must be a TrainConfig, got {type(base).__name__}")
    shared = ("arch", "sizes", "epochs", "seed", "dtype", "dataset", "data_dir", "batch_size",
              "n_train", "n_test", "validation", "n_valid", "threads")
    return TrainConfig(method="dense", **{name: getattr(base, name) for name in shared})


def run_comparison(experiment: str, options: dict, results_dir="results",
                   data: Optional[Dataset] = None, log: Callable[[str], None] = print):
    """Run ``compare EXPERIMENT`` (:data:`COMPARISONS`) with the options given.

    ``options`` holds the experiment's own options (``taus``, ``decays``, ``seeds``,
    ``epochs``, ``finetune_epochs``, ``rank``, ``finetune_lr``: the learning rate of the
    fine-tuning after pruning, ``vanilla_lr``: that of the vanilla runs, as each experiment
    takes them) and the options of its runs (:class:`TrainConfig` fields). An option of
    another experiment is refused (ValueError naming it) before anything trains. Returns
    the table's path.
    """
    if experiment not in COMPARISONS:
        raise ValueError(f"experiment must be one of {tuple(COMPARISONS)}, got {experiment!r}")
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict of option names to values, got "
                        f"{type(options).__name__}")
    run, own, refused = COMPARISONS[experiment]
    given = sorted(name for name in refused if name in options)
    if given:
        raise ValueError(f"{given} are not options of compare {experiment}"
                         + (" (use --seed)" if given == ["seeds"] else ""))
    runs = {name: value for name, value in options.items() if name not in own}
    kwargs = {name: options[name] for name in own
              if name in options and name not in ("finetune_lr", "vanilla_lr")}
    if "finetune_lr" in options:
        kwargs["finetune_options"] = {"lr": options["finetune_lr"]}
    if "vanilla_lr" in options:
        kwargs["method_options"] = {"vanilla": {"lr": options["vanilla_lr"]}}
    return run(options=runs, results_dir=results_dir, data=data, log=log, **kwargs)


def prune_run(dense_run, ranks: Optional[Sequence[int]] = None, tau: Optional[float] = None,
              out=None, dataset: Optional[str] = None, data_dir=None,
              n_test: Optional[int] = None, data: Optional[Dataset] = None) -> tuple:
    """The dense MLP run ``dense_run`` with each hidden layer truncated by its SVD to
    ``ranks`` (or by the tolerance ``tau``), evaluated without training; recorded in ``out``
    if given. Returns ``(what, row)``: a description and the row of its metrics.

    The data set, its folder and the validation split are the dense run's unless given.
    """
    dense = load_config(dense_run)          # sizes, dtype and data of the dense run
    if dense.arch != "mlp":
        raise ValueError(f"prune works on dense runs of arch 'mlp' (hidden layers cut by "
                         f"SVDs), got {dense_run} of arch {dense.arch!r}")
    config = TrainConfig(method="fixed", prune_from=dense_run, ranks=ranks, prune_tau=tau,
                         sizes=dense.sizes, dtype=dense.dtype,
                         dataset=dataset or dense.dataset, data_dir=data_dir or dense.data_dir,
                         n_test=n_test, validation=dense.validation, out=out)
    what = f"dense run {dense_run} pruned, not fine-tuned"
    row = (evaluate_start(config, data) if out is None
           else record_start(config, data, what=what)[0])
    return what, row
