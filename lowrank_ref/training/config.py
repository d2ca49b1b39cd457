"""What determines a training run: :class:`TrainConfig`, the defaults, the learning rate.

:class:`TrainConfig` checks every option on construction with the package's one rule
(docs/design.md, section "Errors and validation"): a ``TypeError`` for the wrong kind
of object (``epochs=1.5``, ``lr="0.1"``, ``threads=1.5``), a ``ValueError`` for a wrong
value of the right kind (``epochs=0``, ``method="sgd"``, an option the method does not use).
:func:`build_optimizer` turns a configuration and its network
(:func:`lowrank_ref.training.starts.build_model`) into the optimiser; :func:`lr_at` is the
learning-rate schedule.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

from .._validate import check_choice
from ..adam import CarriedAdam, PaperAdam
from ..dlrt import SOnly
from ..methods import (METHOD_OPTIONS, REGISTRY, check_method_options, make_optimizer,
                       method_record, methods_for_arch)
from ..networks import LENET5_INPUT_SHAPE
from ..nn import Network
from .specs import (ARCHS, DEFAULT_SIZES, DTYPES, MAX_DENSE_PARAMETERS, OPTIMIZERS, OPTION_NAMES,
                    PART_OF, PARTS, SCHEDULES, TRAIN_INITS, DataSpec, ModelSpec, RunSpec,
                    StartSpec, StepSpec, methods_using_optimizer)

__all__ = ["TrainConfig", "ModelSpec", "StartSpec", "StepSpec", "DataSpec", "RunSpec",
           "lr_at", "build_optimizer", "build_direction", "config_differences", "ADAM_METHODS",
           "input_shape", "n_classes", "arch_default",
           "ARCHS", "SCHEDULES", "DTYPES", "PHASES", "DEFAULT_SIZES", "DEFAULT_LR",
           "DEFAULT_MOMENTUM", "DEFAULT_WARMUP", "DEFAULT_RANK", "DEFAULT_EPOCHS",
           "DEFAULT_BATCH_SIZE", "DEFAULT_SCHEDULE", "LENET5_DEFAULTS", "LENET5_METHODS",
           "RESUMABLE_CHANGES", "OPTIMIZERS", "TRAIN_INITS", "DEFAULT_ADAM_LR",
           "MAX_DENSE_PARAMETERS"]

#: The two phases of a run: the main epochs, then the optional S-only fine-tuning.
PHASES = ("train", "finetune")


#: The defaults that each method's record gives per architecture.
METHOD_DEFAULTS = ("lr", "momentum", "warmup", "rank")


def _per_method(arch: str, option: str) -> dict:
    """``{method: default}`` of ``option`` on ``arch``, from the method records."""
    return {m.name: m.defaults[arch][option] for m in REGISTRY.values()
            if arch in m.archs and option in m.defaults[arch]}


#: Default learning rate per method (``TrainConfig(lr=None)``; the records of
#: :mod:`lowrank_ref.methods`). Dense: with momentum 0.9, the
#: cosine schedule, batch 256 and 10 epochs, lr 0.1 reached 98.32 / 98.37 / 98.40% MNIST test
#: accuracy for seeds 0 / 1 / 2 (lr 0.02: 97.90%, 0.05: 98.21%, 0.2: 98.33%, seed 0).
#: DLRT (adaptive, tau 0.11, momentum 0.9, cosine, 10 epochs): lr 0.1 -> 97.84%, 0.05 -> 97.27%,
#: 0.15 -> 97.89%, 0.2 diverged. The parallel step takes the defaults of "adaptive".
#: Those were test-set numbers; on the validation split (results/tuning/, docs/reproduce/
#: 01_mnist_table.md) the dense lr 0.1 is kept (over 0.05 and 0.2, 15 epochs); for DLRT lr
#: 0.2 beats 0.1 at tau 0.09 (15 epochs, three seeds) but not over the whole table's sweep
#: (8 tau x 3 seeds), where it cut the ranks of some runs to 3-5 per layer in the first
#: steps: the default stays 0.1.
DEFAULT_LR = _per_method("mlp", "lr")
#: Default momentum per method (``TrainConfig(momentum=None)``). Heavy-ball momentum of the
#: factors is carried across basis changes as documented in :mod:`lowrank_ref.dlrt`;
#: ``momentum=0`` gives plain SGD, the explicit Euler step of the gradient flow that the
#: analysis of [SZKCT22] covers (slower: 94.0% after 4 epochs at tau 0.1 where momentum
#: 0.9 gave 96.3%).
DEFAULT_MOMENTUM = _per_method("mlp", "momentum")
#: Default number of linear warm-up steps of the learning rate (``TrainConfig(warmup=None)``):
#: the first DLRT steps decide the ranks, and a full-size first step once cut them too far
#: (tau 0.07: 97.18% without, 98.15% with 100 warm-up steps).
DEFAULT_WARMUP = _per_method("mlp", "warmup")
#: Default starting rank of the low-rank methods (``TrainConfig(rank=None)``); 150 is the
#: starting rank of the paper's MNIST runs.
DEFAULT_RANK = _per_method("mlp", "rank")
DEFAULT_EPOCHS = 10
#: The methods each Adam form works with ("adam", the paper's loop: the rank-adaptive step,
#: and textbook Adam of dense and vanilla networks); see docs/design.md,
#: section "Optimisers: integrator x direction".
ADAM_METHODS = {name: methods_using_optimizer(name) for name in OPTIMIZERS[1:]}
#: Default learning rate of the Adam optimizers (the paper's code).
DEFAULT_ADAM_LR = 1e-3
DEFAULT_BATCH_SIZE = 256
DEFAULT_SCHEDULE = "cosine"
#: The defaults of ``arch="lenet5"`` (the ``DEFAULT_*`` above are those of the MLP): lr 0.05
#: and batch 128 as in the LeNet5 runs of [SZKCT22], the full-rank start of the paper
#: (``rank`` 500, capped by each layer to 20, 50, 500), but momentum 0.9, the cosine
#: schedule, 100 warm-up steps for the low-rank methods and 10 epochs instead of plain SGD
#: for 20 epochs: on short runs (the first 20,000 MNIST images, 3 epochs, seed 0) the
#: paper's plain SGD reached 92.38% test accuracy at tau 0.2 and 95.91% dense, momentum
#: with the cosine schedule 97.50% and 98.36% (same ranks 8, 12-13, 15 at tau 0.2). Checked
#: again on the validation split (the runs lenet5-* under results/tuning/, docs/reproduce/
#: 02_lenet5_table.md):
#: 92.57 / 96.04% plain, 97.44 / 97.96% momentum with the cosine schedule; there lr 0.1
#: (98.00 / 98.23%) is ahead of the paper's 0.05, but over the 10-epoch sweep it collapsed
#: the ranks at tau 0.4 (rank 1, 49%): the paper's 0.05 is kept.
#: Method "vanilla" (``U V^T`` layers, the ill-conditioning comparison) has the defaults of
#: "fixed", method "parallel" those of "adaptive".
LENET5_DEFAULTS = {"epochs": 10, "batch_size": 128, "schedule": "cosine",
                   **{option: _per_method("lenet5", option) for option in METHOD_DEFAULTS}}
#: The methods of ``arch="lenet5"``; ``decay`` applies to "fixed" and "vanilla". Per-layer
#: ``ranks``, ``init`` and pruning (``prune_from``) are built for the MLP only.
LENET5_METHODS = methods_for_arch("lenet5")
#: The options that apply to ``arch="mlp"`` only, with their unset values.
_MLP_ONLY = (("ranks", None), ("prune_from", None), ("prune_tau", None), ("init", "he"))
_MLP_DEFAULTS = {"epochs": DEFAULT_EPOCHS, "batch_size": DEFAULT_BATCH_SIZE,
                 "schedule": DEFAULT_SCHEDULE, "lr": DEFAULT_LR, "momentum": DEFAULT_MOMENTUM,
                 "warmup": DEFAULT_WARMUP, "rank": DEFAULT_RANK}


def arch_default(arch: str, option: str, method: str):
    """The default of ``option`` for a run of ``arch`` with ``method`` (None: none).

    Examples
    --------
    >>> arch_default("mlp", "lr", "dense"), arch_default("lenet5", "batch_size", "dense")
    (0.1, 128)
    """
    if option in METHOD_DEFAULTS:               # per method: its record's
        return REGISTRY[method].defaults.get(arch, {}).get(option)
    return (LENET5_DEFAULTS if arch == "lenet5" else _MLP_DEFAULTS)[option]


def _check_method_uses(method: str, arch: str, options: dict) -> None:
    """The architecture builds ``method``, which uses each of ``options`` given a value
    (those of :data:`lowrank_ref.methods.METHOD_OPTIONS`)."""
    if arch not in method_record(method).archs:
        raise ValueError(f"method must be one of {methods_for_arch(arch)} for arch "
                         f"{arch!r}, got {method!r}")
    check_method_options(method, arch, **{k: v for k, v in options.items()
                                          if k in METHOD_OPTIONS})


#: Options that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES = ("epochs", "finetune_epochs", "out", "threads")


@dataclass(frozen=True, init=False)
class TrainConfig:
    """Everything that determines a training run: five parts, checked where they are made.

    ``TrainConfig(model=ModelSpec(...), start=StartSpec(...), step=StepSpec(...),
    data=DataSpec(...), run=RunSpec(...))``, or with the options by name (the command
    line's vocabulary, :data:`~lowrank_ref.training.specs.OPTION_NAMES`):
    ``TrainConfig(method="adaptive", tau=0.1, epochs=3)`` puts ``method`` and ``tau`` into the
    :class:`~lowrank_ref.training.specs.StepSpec` and ``epochs`` into the
    :class:`~lowrank_ref.training.specs.RunSpec`. Options given by name replace those of a
    part given too (``TrainConfig(step=s, lr=0.2)`` is ``s`` with lr 0.2). Every option reads
    as an attribute (``config.lr`` is ``config.step.lr``); the configuration is immutable
    (:meth:`replace` makes a changed copy).

    Each part checks its own options when it is made (:mod:`lowrank_ref.training.specs`).
    The configuration then checks, once, what needs two parts, and fills in the defaults:

    - the method (``step.method``) must be built for the architecture (``model.arch``;
      :data:`LENET5_METHODS` for "lenet5");
    - options left at None take the defaults of the architecture and method: ``epochs``,
      ``batch_size``, ``schedule`` per architecture (the ``DEFAULT_*`` constants for "mlp",
      :data:`LENET5_DEFAULTS`), ``lr``, ``momentum``, ``warmup`` and ``rank`` from the
      method's record (:mod:`lowrank_ref.methods`; with Adam ``lr`` 1e-3 and ``momentum`` 0);
    - an option of :data:`lowrank_ref.methods.METHOD_OPTIONS` the method does not use
      (``rank``, ``tau``, ``min_rank``, ``max_rank``, ``passes``, ``finetune_epochs``,
      ``ranks``, ``decay``, ``prune_from``, ``spectrum_length``, ``spectrum_norm``) must stay
      unset, and ``tau`` is required by the rank-adaptive methods: a silently ignored
      option is a wrong experiment;
    - ``ranks``, ``prune_from``, ``prune_tau`` and ``init`` are built for the MLP only;
      ``ranks`` gives one rank per hidden layer, each ``<= min(n_in, n_out)``, and sets
      ``rank = max(ranks)``;
    - ``finetune_epochs`` (S-only fine-tuning) is not implemented with optimizer "adam".

    Parameters
    ----------
    model : ModelSpec, optional
        ``arch``, ``sizes``, ``dtype``.
    start : StartSpec, optional
        ``rank``, ``ranks``, ``decay``, ``init``, ``prune_from``, ``prune_tau``.
    step : StepSpec, optional
        ``method``, ``optimizer``, ``lr``, ``momentum``, ``tau``, ``min_rank``, ``max_rank``,
        ``passes``, ``adam_beta1``, ``adam_beta2``, ``adam_eps``.
    data : DataSpec, optional
        ``dataset``, ``data_dir``, ``n_train``, ``n_test``, ``validation``, ``n_valid``.
    run : RunSpec, optional
        ``epochs``, ``finetune_epochs``, ``batch_size``, ``schedule``, ``warmup``, ``seed``,
        ``out``, ``threads``.
    **options
        Options by name, each put into its part (see the parts for their meaning).

    Raises
    ------
    TypeError
        Naming the option, if it is not the kind of object it takes (``epochs=1.5``,
        ``lr="0.1"``, ``threads=1.5``, ``sizes=784``, ``dtype="float16"``), or an unknown
        option name, or a part of the wrong class.
    ValueError
        Naming the option, if a value is out of range or not one of the allowed names
        (``epochs=0``, ``method="sgd"``), or the options do not fit together: an option
        the method does not use (``tau`` for "fixed", ``rank`` for "dense"), no ``tau`` for
        "adaptive", ``finetune_epochs`` for "dense", ``max_rank < min_rank``.

    Examples
    --------
    >>> TrainConfig().lr, TrainConfig().momentum
    (0.1, 0.9)
    >>> TrainConfig(arch="lenet5").batch_size
    128
    >>> c = TrainConfig(method="adaptive", tau=0.1)
    >>> c.rank, c.step.tau, c.start.rank
    (150, 0.1, 150)
    >>> c.replace(seed=3).run.seed
    3
    >>> TrainConfig(step=StepSpec(method="adaptive", tau=0.1)) == c
    True
    >>> TrainConfig(method="dense", rank=20)
    Traceback (most recent call last):
    ...
    ValueError: rank is only used by methods ('fixed', 'adaptive', 'vanilla', 'sonly', 'parallel'), got rank=20 for method 'dense'
    >>> TrainConfig(epochs=1.5)
    Traceback (most recent call last):
    ...
    TypeError: epochs must be an int >= 1, got float 1.5
    """

    model: ModelSpec
    start: StartSpec
    step: StepSpec
    data: DataSpec
    run: RunSpec

    def __init__(self, model: Optional[ModelSpec] = None, start: Optional[StartSpec] = None,
                 step: Optional[StepSpec] = None, data: Optional[DataSpec] = None,
                 run: Optional[RunSpec] = None, **options):
        unknown = sorted(set(options) - set(PART_OF))
        if unknown:
            raise TypeError(f"TrainConfig got unknown option(s) {unknown}; known: "
                            f"{sorted(PART_OF)}")
        given = {"model": model, "start": start, "step": step, "data": data, "run": run}
        parts = {}
        # The start last: an option of the start that the method does not use is named as
        # such, before the start's own checks would ask for its companions.
        for name in ("model", "step", "data", "run", "start"):
            spec, part = PARTS[name], given[name]
            if part is not None and not isinstance(part, spec):
                raise TypeError(f"{name} must be a {spec.__name__} or None, got "
                                f"{type(part).__name__}")
            own = {k: v for k, v in options.items() if PART_OF[k] == name}
            if name == "start":
                _check_method_uses(parts["step"].method, parts["model"].arch, own)
            if part is None:
                part = spec(**own)
            elif own:
                part = dataclasses.replace(part, **own)
            parts[name] = part
        for name, part in self._resolve(**parts).items():
            object.__setattr__(self, name, part)

    @staticmethod
    def _resolve(model: ModelSpec, start: StartSpec, step: StepSpec, data: DataSpec,
                 run: RunSpec) -> dict:
        """The parts checked against each other, with the defaults filled in."""
        record = method_record(step.method)
        arch = model.arch
        _check_method_uses(step.method, arch, {})

        def default(option):
            return arch_default(arch, option, step.method)
        adam = step.optimizer != "sgd"
        run = dataclasses.replace(
            run, epochs=default("epochs") if run.epochs is None else run.epochs,
            batch_size=default("batch_size") if run.batch_size is None else run.batch_size,
            schedule=default("schedule") if run.schedule is None else run.schedule,
            warmup=default("warmup") if run.warmup is None else run.warmup)
        step = dataclasses.replace(
            step, lr=(DEFAULT_ADAM_LR if adam else default("lr")) if step.lr is None else step.lr,
            momentum=(0.0 if adam else default("momentum")) if step.momentum is None
            else step.momentum)
        if arch != "mlp":
            mlp_only = {name: getattr(start, name) for name, unset in _MLP_ONLY
                        if getattr(start, name) != unset}
            if mlp_only:
                raise ValueError(f"options {sorted(mlp_only)} apply to arch 'mlp' only "
                                 f"(per-layer ranks, pruning and init are built for the MLP), "
                                 f"got {mlp_only} for arch {arch!r}")
        parts = {"start": start, "step": step, "run": run}
        check_method_options(step.method, arch, **{name: getattr(parts[PART_OF[name]], name)
                                                   for name in METHOD_OPTIONS})
        if start.ranks is not None:
            n_hidden = len(model.sizes) - 2
            if len(start.ranks) != n_hidden:
                raise ValueError(f"ranks must give one rank per hidden layer ({n_hidden}), got "
                                 f"{start.ranks}")
            for i, (r, a, b) in enumerate(zip(start.ranks, model.sizes[:-2],
                                              model.sizes[1:-1])):
                if r > min(a, b):
                    raise ValueError(f"ranks[{i}] must be <= min(n_in, n_out) = {min(a, b)}, "
                                     f"got {r}")
            start = dataclasses.replace(start, rank=max(start.ranks))
        elif ("rank" in record.options and start.prune_from is None and start.rank is None):
            start = dataclasses.replace(start, rank=default("rank"))
        if step.optimizer == "adam" and run.finetune_epochs:
            raise ValueError(f"finetune_epochs (S-only fine-tuning) is not implemented "
                             f"with optimizer 'adam' (the paper's loop is the rank-adaptive "
                             f"step): use 'adam-carried' or 'sgd', got finetune_epochs="
                             f"{run.finetune_epochs}")
        return {"model": model, "start": start, "step": step, "data": data, "run": run}

    def __getattr__(self, name):
        # Only reached when normal lookup fails: the options, read from their parts.
        part = PART_OF.get(name)
        if part is None or part not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.__dict__[part], name)

    def replace(self, **options) -> "TrainConfig":
        """A copy with the options given by name (or parts) replaced, checked again.

        >>> TrainConfig(epochs=3).replace(lr=0.05).lr
        0.05
        """
        return TrainConfig(**{name: getattr(self, name) for name in PARTS}, **options)

    def to_flat(self) -> dict:
        """Every option by name (:data:`~lowrank_ref.training.specs.OPTION_NAMES` order)."""
        return {name: copy.copy(getattr(self, name)) for name in OPTION_NAMES}

    def to_dict(self) -> dict:
        """The configuration as a JSON-ready dict of its parts:
        ``{"model": {...}, "start": {...}, "step": {...}, "data": {...}, "run": {...}}``."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in PARTS}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; also reads the flat records written before the parts.

        A dict with the part names as keys is read part by part (an option a part does not
        have is refused, naming the part); a dict of options by name is a record written
        before the parts existed. A flat record without the option ``validation`` was a run
        on the whole training set: ``validation`` is False. Unknown keys are refused
        (ValueError naming them).

        Examples
        --------
        >>> TrainConfig.from_dict({"method": "dense"}).validation
        False
        >>> TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()
        True
        >>> TrainConfig.from_dict({"step": {"method": "adaptive", "tau": 0.2}}).rank
        150
        """
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict, got {type(d).__name__}")
        if any(key in PARTS for key in d):
            unknown = sorted(set(d) - set(PARTS))
            if unknown:
                raise ValueError(f"unknown configuration part(s) {unknown}; known: "
                                 f"{list(PARTS)}")
            parts = {}
            for name, options in d.items():
                if not isinstance(options, dict):
                    raise TypeError(f"config part {name!r} must be a dict, got "
                                    f"{type(options).__name__}")
                known = [f.name for f in dataclasses.fields(PARTS[name])]
                unknown = sorted(set(options) - set(known))
                if unknown:
                    raise ValueError(f"unknown option(s) {unknown} of configuration part "
                                     f"{name!r}; known: {known}")
                parts[name] = PARTS[name](**options)
            return cls(**parts)
        unknown = sorted(set(d) - set(PART_OF))
        if unknown:
            raise ValueError(f"unknown configuration option(s) {unknown}; known: "
                             f"{sorted(PART_OF)}")
        return cls(**{"validation": False, **d})


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


def input_shape(config: TrainConfig) -> tuple:
    """The shape of one sample the network of ``config`` takes: ``(sizes[0],)`` or ``(1, 28, 28)``."""
    return LENET5_INPUT_SHAPE if config.arch == "lenet5" else (config.sizes[0],)


def n_classes(config: TrainConfig) -> int:
    """The number of classes (outputs) of the network of ``config``: ``sizes[-1]`` or 10."""
    return 10 if config.arch == "lenet5" else config.sizes[-1]


def build_direction(config: TrainConfig):
    """The direction rule of ``config.optimizer``: None for "sgd" (the optimiser's
    ``momentum`` gives plain SGD or :class:`~lowrank_ref.directions.Momentum`),
    :class:`~lowrank_ref.adam.PaperAdam` ("adam") or :class:`~lowrank_ref.adam.CarriedAdam`
    ("adam-carried") with the run's Adam hyperparameters."""
    if config.optimizer == "sgd":
        return None
    rule = PaperAdam if config.optimizer == "adam" else CarriedAdam
    return rule(beta1=config.adam_beta1, beta2=config.adam_beta2, eps=config.adam_eps)


def build_optimizer(config: TrainConfig, model: Network, phase: str = "train"):
    """The optimiser of ``model`` for ``phase`` of a run of ``config``.

    Phase "train": :func:`lowrank_ref.methods.make_optimizer` of ``config.method`` (with the
    options its record uses); phase "finetune":
    :class:`lowrank_ref.dlrt.SOnly` (the cores ``S`` only). Both with ``config.lr`` (the
    learning rate is set per step from :func:`lr_at`) and the direction rule of
    ``config.optimizer`` and ``config.momentum`` (:func:`build_direction`, fresh for each
    phase).
    """
    phase = check_choice(phase, "phase", PHASES)
    direction = build_direction(config)
    if phase == "finetune":
        return SOnly(model, config.lr, momentum=config.momentum, direction=direction)
    return make_optimizer(config.method, model, config.lr, momentum=config.momentum,
                          direction=direction, tau=config.tau, min_rank=config.min_rank,
                          max_rank=config.max_rank, passes=config.passes)


def config_differences(old: TrainConfig, new: TrainConfig) -> list:
    """The options (but :data:`RESUMABLE_CHANGES`) that differ, one readable line each.

    Examples
    --------
    >>> config_differences(TrainConfig(), TrainConfig(lr=0.2, epochs=3))
    ['lr: 0.1 in the checkpoint, 0.2 now']
    """
    a, b = old.to_flat(), new.to_flat()
    return [f"{k}: {a[k]!r} in the checkpoint, {b[k]!r} now" for k in a
            if k not in RESUMABLE_CHANGES and a[k] != b[k]]
