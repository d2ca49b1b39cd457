"""The training methods: one :class:`Method` record each, in :data:`REGISTRY`.

A method is an integrator of the optimiser (the classes of :mod:`lowrank_ref.dlrt`) with the
kind of layers it trains, the options it accepts, its defaults per architecture and its
one-line help. Everything that enumerates methods is derived from these records: the
method names (:data:`METHODS`), :func:`make_optimizer`, the checks of
:class:`lowrank_ref.training.TrainConfig` (an option a method does not use is refused,
naming the option, the method and the methods that use it), its defaults
(:data:`lowrank_ref.training.config.DEFAULT_LR`, ...), the command line's ``--method`` and its
help, and the method table of docs/cli.md (a test compares it with :func:`method_table`).
docs/design.md, section "How to add a method", says what a new record needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple

from ._validate import check_choice
from .directions import Direction
from .dlrt import AdaptiveBUG, FixedRankBUG, ParallelBUG, SOnly
from .lowrank_layers import SPECTRUM_DECAY, SPECTRUM_NORM
from .nn import Network
from .optimizers import Euclidean, Optimizer, check_model, low_rank_layers

__all__ = ["Method", "REGISTRY", "METHODS", "RANK_ADAPTIVE_METHODS", "METHOD_OPTIONS",
           "OPTIMIZER_OPTIONS", "LAYER_KINDS", "method_record", "methods_using",
           "methods_for_arch", "make_optimizer", "check_method_options", "method_table"]

#: The options that belong to some methods only, with their unset values and what they are.
#: A method uses those in its record's ``options``; the others must stay unset.
METHOD_OPTIONS = {
    "rank": (None, "starting rank of every low-rank layer"),
    "tau": (None, "relative truncation tolerance, e.g. tau=0.1"),
    "min_rank": (1, "smallest rank of the rank-adaptive step"),
    "max_rank": (None, "largest rank of the rank-adaptive step"),
    "passes": (1, "backward passes per step (1, or the published 3)"),
    "finetune_epochs": (0, "epochs of S-only fine-tuning after the main epochs"),
    "ranks": (None, "one rank per hidden layer"),
    "decay": (None, "start from a spectrum decaying by this factor"),
    "prune_from": (None, "start from a dense run pruned by SVDs"),
    "spectrum_length": (SPECTRUM_DECAY, "decay length of the drawn start's singular values"),
    "spectrum_norm": (SPECTRUM_NORM, "norm of the drawn start's singular values"),
}
#: The options of :data:`METHOD_OPTIONS` that the optimiser's constructor takes (the
#: others shape the network, its start or the run).
OPTIMIZER_OPTIONS = ("tau", "min_rank", "max_rank", "passes")
#: ``Method.layers``: a dense network, low-rank ``U S V^T`` layers, or vanilla ``U V^T`` layers.
LAYER_KINDS = ("dense", "lowrank", "factorized")


@dataclass(frozen=True)
class Method:
    """One training method.

    Parameters
    ----------
    name : str
        As given to ``TrainConfig(method=...)`` and ``--method``.
    help : str
        One line, for ``--help`` and the docs' method table.
    optimizer : callable
        ``optimizer(model, lr, momentum=..., direction=..., **options)`` returns the
        optimiser (an :class:`~lowrank_ref.optimizers.Optimizer`), ``options`` being those of
        :data:`OPTIMIZER_OPTIONS` that the method uses.
    layers : {"dense", "lowrank", "factorized"}
        The hidden layers of its network (:data:`LAYER_KINDS`).
    defaults : dict
        Per architecture it runs on (``"mlp"``, ``"lenet5"``): its defaults of ``lr``,
        ``momentum``, ``warmup`` and (low-rank layers) ``rank``.
    options : tuple of str
        The options of :data:`METHOD_OPTIONS` it uses.
    required : tuple of str
        Options among ``options`` that must be given (``tau`` of the rank-adaptive steps).
    optimizers : tuple of str
        The direction rules it works with (``TrainConfig.optimizer``).
    title : str
        A few words for the run's log line ("rank-adaptive DLRT").
    """

    name: str
    help: str
    optimizer: Callable[..., Optimizer]
    layers: str
    defaults: Mapping[str, Mapping[str, object]]
    options: Tuple[str, ...] = ()
    required: Tuple[str, ...] = ()
    optimizers: Tuple[str, ...] = ("sgd", "adam-carried")
    title: str = ""
    rank_adaptive: bool = field(init=False)

    def __post_init__(self):
        unknown = sorted(set(self.options) - set(METHOD_OPTIONS))
        if unknown:
            raise ValueError(f"method {self.name!r}: unknown option(s) {unknown}; known: "
                             f"{sorted(METHOD_OPTIONS)}")
        if not set(self.required) <= set(self.options):
            raise ValueError(f"method {self.name!r}: required options {self.required} must be "
                             f"among its options {self.options}")
        check_choice(self.layers, "layers", LAYER_KINDS)
        object.__setattr__(self, "rank_adaptive", "tau" in self.options)

    @property
    def archs(self) -> Tuple[str, ...]:
        """The architectures it runs on."""
        return tuple(self.defaults)


def _mlp_lenet5(warmup: int, rank: Optional[int] = None, lenet5_rank: Optional[int] = None,
                lenet5: bool = True) -> Dict[str, Dict[str, object]]:
    """Defaults shared by the methods: momentum 0.9; lr 0.1 (MLP), 0.05 (LeNet5)."""
    mlp = {"lr": 0.1, "momentum": 0.9, "warmup": warmup}
    lenet = {"lr": 0.05, "momentum": 0.9, "warmup": warmup}
    if rank is not None:
        mlp["rank"], lenet["rank"] = rank, lenet5_rank
    return {"mlp": mlp, "lenet5": lenet} if lenet5 else {"mlp": mlp}


_RANK_ADAPTIVE = ("rank", "tau", "min_rank", "max_rank")
#: The options of the drawn start of low-rank layers (every method with such layers).
_SPECTRUM = ("spectrum_length", "spectrum_norm")
#: The methods, in the order of the command line and the tables. The defaults were measured
#: on MNIST (docs of :data:`lowrank_ref.training.config.DEFAULT_LR` and ``LENET5_DEFAULTS``):
#: 150 is the starting rank of the paper's MLP runs, 500 the full rank of LeNet5's layers.
REGISTRY: Dict[str, Method] = {m.name: m for m in (
    Method("dense", "the dense network, every weight a plain parameter (the baseline)",
           Euclidean, "dense", _mlp_lenet5(warmup=0),
           optimizers=("sgd", "adam", "adam-carried"), title="dense"),
    Method("fixed", "fixed-rank DLRT: the BUG step of [SZKCT22] at constant ranks",
           FixedRankBUG, "lowrank", _mlp_lenet5(warmup=100, rank=20, lenet5_rank=20),
           options=("rank", "finetune_epochs", "ranks", "decay", "prune_from") + _SPECTRUM,
           title="fixed-rank DLRT"),
    Method("adaptive", "rank-adaptive DLRT: the augmented BUG step truncated to tau "
                       "([SZKCT22])",
           AdaptiveBUG, "lowrank", _mlp_lenet5(warmup=100, rank=150, lenet5_rank=500),
           options=_RANK_ADAPTIVE + ("passes", "finetune_epochs") + _SPECTRUM,
           required=("tau",),
           optimizers=("sgd", "adam", "adam-carried"), title="rank-adaptive DLRT"),
    Method("vanilla", "vanilla U V^T factors as plain parameters (the ill-conditioning "
                      "comparison)",
           Euclidean, "factorized", _mlp_lenet5(warmup=100, rank=20, lenet5_rank=20),
           options=("rank", "ranks", "decay") + _SPECTRUM,
           optimizers=("sgd", "adam", "adam-carried"),
           title="vanilla U V^T"),
    Method("sonly", "S-only: the cores S trained, the bases U, V kept (MLP)",
           SOnly, "lowrank", _mlp_lenet5(warmup=0, rank=20, lenet5=False),
           options=("rank", "finetune_epochs", "ranks", "decay", "prune_from") + _SPECTRUM,
           title="S-only"),
    Method("parallel", "the parallel BUG step: K, L, S from one gradient, truncated to tau",
           ParallelBUG, "lowrank", _mlp_lenet5(warmup=100, rank=150, lenet5_rank=500),
           options=_RANK_ADAPTIVE + ("finetune_epochs",) + _SPECTRUM, required=("tau",),
           title="parallel DLRT"),
)}
#: The method names, in the order of the registry (the command line's ``--method`` choices).
METHODS = tuple(REGISTRY)
#: The methods whose ranks follow a truncation tolerance ``tau``.
RANK_ADAPTIVE_METHODS = tuple(m.name for m in REGISTRY.values() if m.rank_adaptive)


def method_record(method: str) -> Method:
    """The record of ``method`` (ValueError naming the methods if it is none)."""
    return REGISTRY[check_choice(method, "method", tuple(REGISTRY))]


def methods_using(option: str, arch: Optional[str] = None) -> Tuple[str, ...]:
    """The methods that use ``option`` (of :data:`METHOD_OPTIONS`), on ``arch`` if given.

    Examples
    --------
    >>> methods_using("tau")
    ('adaptive', 'parallel')
    >>> methods_using("decay", arch="lenet5")
    ('fixed', 'vanilla')
    """
    check_choice(option, "option", tuple(METHOD_OPTIONS))
    if arch is not None:
        check_choice(arch, "arch", tuple(sorted({a for m in REGISTRY.values() for a in m.archs})))
    return tuple(m.name for m in REGISTRY.values()
                 if option in m.options and (arch is None or arch in m.archs))


def methods_for_arch(arch: str) -> Tuple[str, ...]:
    """The methods that run on ``arch``."""
    return tuple(m.name for m in REGISTRY.values() if arch in m.archs)


def check_method_options(method: str, arch: Optional[str] = None, **options) -> None:
    """Refuse the options ``method`` would ignore, and a missing required one.

    ``options`` maps names of :data:`METHOD_OPTIONS` to their values; an option the method
    does not use must keep its unset value. A silently ignored option is a wrong experiment.

    Raises
    ------
    ValueError
        Unknown ``method`` or option name; an option given for a method that does not use
        it (naming the option, its value, the method and the methods that use it); a
        required option (``tau`` of "adaptive" and "parallel") left None.

    Examples
    --------
    >>> check_method_options("fixed", tau=0.1)
    Traceback (most recent call last):
    ...
    ValueError: tau is only used by methods ('adaptive', 'parallel'), got tau=0.1 for method 'fixed'
    """
    record = method_record(method)
    unknown = sorted(set(options) - set(METHOD_OPTIONS))
    if unknown:
        raise ValueError(f"unknown method option(s) {unknown}; known: {sorted(METHOD_OPTIONS)}")
    for name in record.required:
        if name in options and options[name] is None:
            raise ValueError(f"{name} is required for method {method!r} "
                             f"({METHOD_OPTIONS[name][1]}), got None")
    for name, value in options.items():
        unset = METHOD_OPTIONS[name][0]
        if name in record.options or value is unset or value == unset:
            continue
        users = methods_using(name, arch)
        where = (f" for arch {arch!r}" if arch is not None and users != methods_using(name)
                 else "")
        which = f"method {users[0]!r}" if len(users) == 1 else f"methods {users}"
        raise ValueError(f"{name} is only used by {which}{where}, got {name}={value!r} for "
                         f"method {method!r}")


def make_optimizer(method: str, model: Network, lr: float, momentum: float = 0.0,
                   tau: Optional[float] = None, min_rank: int = 1,
                   max_rank: Optional[int] = None, passes: int = 1, *,
                   direction: Optional[Direction] = None) -> Optimizer:
    """The optimiser of ``method`` (:data:`METHODS`) for ``model``: the record's
    ``optimizer`` — :class:`~lowrank_ref.optimizers.Euclidean` for "dense" and "vanilla"
    (``U V^T`` factors), :class:`~lowrank_ref.dlrt.FixedRankBUG` ("fixed"),
    :class:`~lowrank_ref.dlrt.AdaptiveBUG` ("adaptive"), :class:`~lowrank_ref.dlrt.ParallelBUG`
    ("parallel"; both need ``tau``), :class:`~lowrank_ref.dlrt.SOnly` ("sonly") — with the
    direction rule ``direction`` (default SGD, or ``Momentum(momentum)``).

    Raises
    ------
    ValueError
        Unknown method, missing ``tau`` for a rank-adaptive method, ``tau``/``min_rank``/
        ``max_rank``/``passes`` given for a method that does not use them, a dense method
        on a model with low-rank layers (and vice versa), a rule the method refuses.
    """
    given = {"tau": tau, "min_rank": min_rank, "max_rank": max_rank, "passes": passes}
    check_method_options(method, **given)
    record = REGISTRY[method]
    check_model(model)
    if record.layers != "lowrank" and low_rank_layers(model):
        raise ValueError(f"method {method!r} needs a model without low-rank layers")
    kwargs = {k: v for k, v in given.items() if k in record.options}
    return record.optimizer(model, lr, momentum=momentum, direction=direction, **kwargs)


def method_table() -> str:
    """The Markdown table of the methods (docs/cli.md holds it; a test compares the two).

    Examples
    --------
    >>> method_table().splitlines()[0]
    '| method | what it trains | architectures | options of its own | direction rules |'
    """
    rows = ["| method | what it trains | architectures | options of its own | direction rules |",
            "|---|---|---|---|---|"]
    for m in REGISTRY.values():
        own = ", ".join(f"`{o}`" + (" (required)" if o in m.required else "")
                        for o in m.options) or "none"
        rows.append(f"| `{m.name}` | {m.help} | {', '.join(m.archs)} | {own} | "
                    f"{', '.join(m.optimizers)} |")
    return "\n".join(rows)
