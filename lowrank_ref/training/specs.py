"""The five parts of a training configuration, each checked where it is made.

A run is determined by

========================  ===============================================================
:class:`ModelSpec`        the network: ``arch``, ``sizes``, ``dtype``
:class:`StartSpec`        where the low-rank layers start: their ``rank`` / ``ranks`` and the
                          factors (a dense draw ``init``, a decayed spectrum ``decay``, or a
                          dense run pruned by SVDs ``prune_from`` with ``prune_tau``)
:class:`StepSpec`         the optimiser, integrator x direction (``method`` x ``optimizer``),
                          with its hyperparameters (``lr``, ``momentum``, ``tau``, the rank
                          bounds, ``passes``, Adam's)
:class:`DataSpec`         the data: ``dataset``, ``data_dir``, the validation split, subsets
:class:`RunSpec`          the run: ``epochs``, ``finetune_epochs``, ``batch_size``, the
                          learning-rate ``schedule`` and ``warmup``, ``seed``, ``out``,
                          ``threads``
========================  ===============================================================

Each part is a frozen dataclass that checks its own options on construction (one
``TypeError`` / ``ValueError`` per mistake, naming the option and what was received) and the
options of the part against each other (``prune_tau`` without ``prune_from``, Adam with
``momentum``). What needs two parts (an option the method does not use, the per-method
defaults, per-layer ranks against the widths) is checked once by
:class:`lowrank_ref.training.TrainConfig`, which holds one of each. A value left at None is
"the default of the architecture and method", filled in by the configuration.

Examples
--------
>>> StepSpec(method="adaptive", tau=0.1).tau
0.1
>>> StartSpec(prune_tau=0.1)
Traceback (most recent call last):
...
ValueError: prune_tau is only used with prune_from, got prune_tau=0.1
>>> ModelSpec(arch="lenet5").sizes is None
True
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional

from .._validate import (check_bool, check_choice, check_float_dtype, check_int, check_int_list,
                         check_path, check_rank_bounds, check_real)
from ..adam import ADAM_DEFAULTS
from ..lowrank_layers import SPECTRUM_DECAY, SPECTRUM_NORM
from ..data import DATASETS
from ..methods import REGISTRY, method_record
from ..nn import INITS
from ..threads import DEFAULT_THREADS, check_threads

__all__ = ["ModelSpec", "StartSpec", "StepSpec", "DataSpec", "RunSpec", "PARTS", "PART_OF",
           "OPTION_NAMES", "ARCHS", "SCHEDULES", "DTYPES", "DEFAULT_SIZES",
           "MAX_DENSE_PARAMETERS", "OPTIMIZERS", "TRAIN_INITS", "methods_using_optimizer",
           "flat_options"]

#: The networks: the fully connected ``"mlp"`` (``sizes``) and ``"lenet5"``
#: (:func:`lowrank_ref.networks.lenet5`, on images ``(1, 28, 28)``).
ARCHS = ("mlp", "lenet5")
SCHEDULES = ("constant", "cosine")
DTYPES = ("float32", "float64")
#: The network of [SZKCT22]: 784 inputs, four hidden layers of 500, 10 classes.
DEFAULT_SIZES = (784, 500, 500, 500, 500, 10)
#: The largest MLP a configuration builds, in dense parameters (weights and biases of
#: ``sizes``). The paper's network has 1,147,000; 10^8 take 0.8 GB per float64 copy, and a
#: run holds several (the float64 draw of the start, the weights, their gradients and
#: momentum), so beyond it a laptop runs out of memory (or the OOM killer ends the process)
#: before the first step. Checked before anything is allocated.
MAX_DENSE_PARAMETERS = 10 ** 8
#: ``optimizer``: the direction rule. SGD (with ``momentum``: heavy ball carried across
#: bases, lowrank_ref.directions), Adam with moments per factor variable as the paper's code
#: keeps them, Adam with moments carried across bases (lowrank_ref.adam).
OPTIMIZERS = ("sgd", "adam", "adam-carried")
#: ``init``: the dense draws of lowrank_ref.nn.INITS, or "keras-normal": every variable (each
#: factor U, S, V of a low-rank layer, every weight and bias) drawn from N(0, 0.05^2), as the
#: paper's TensorFlow code initialises its dense MNIST runs.
TRAIN_INITS = INITS + ("keras-normal",)


def methods_using_optimizer(optimizer: str) -> tuple:
    """The methods whose records take the direction rule ``optimizer``."""
    return tuple(m.name for m in REGISTRY.values() if optimizer in m.optimizers)


def _set(spec, name: str, value) -> None:
    """Store the checked (normalised) value of option ``name`` on a frozen part."""
    object.__setattr__(spec, name, value)


def _unless_default(check, value, name: str, **limits):
    """``check(value, name, **limits)``, or None for None: the option is left to the
    configuration, which fills in the default of the architecture and method (the message of
    a wrong value names the values the option takes, as on the command line)."""
    return None if value is None else check(value, name, **limits)


@dataclass(frozen=True)
class ModelSpec:
    """The network.

    Parameters
    ----------
    arch : {"mlp", "lenet5"}, default "mlp"
        The MLP of ``sizes``, or :func:`lowrank_ref.networks.lenet5` (the images reshaped to
        ``(1, 28, 28)``).
    sizes : list of int, optional
        Layer widths, input first, classes last; arch "mlp" only (None: :data:`DEFAULT_SIZES`,
        filled in). At most :data:`MAX_DENSE_PARAMETERS` dense parameters.
    dtype : {"float32", "float64"}, default "float32"
        Of parameters and data; ``np.float32`` / ``np.dtype("float64")`` are stored by name.
    """

    arch: str = "mlp"
    sizes: Optional[List[int]] = None
    dtype: str = "float32"

    def __post_init__(self):
        _set(self, "arch", check_choice(self.arch, "arch", ARCHS))
        if self.arch == "mlp":
            sizes = check_int_list(list(DEFAULT_SIZES) if self.sizes is None else self.sizes,
                                   "sizes", low=1, min_len=2)
            n = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
            if n > MAX_DENSE_PARAMETERS:
                raise ValueError(f"sizes {sizes} make a network of {n:,} dense parameters "
                                 f"({8 * n / 1e9:.1f} GB per float64 copy); this reference "
                                 f"implementation builds at most {MAX_DENSE_PARAMETERS:,} "
                                 f"({8 * MAX_DENSE_PARAMETERS / 1e9:.1f} GB): choose smaller "
                                 f"widths (--hidden)")
            _set(self, "sizes", sizes)
        elif self.sizes is not None:
            raise ValueError(f"sizes is only used by arch 'mlp' (the layers of LeNet5 are "
                             f"fixed), got sizes={self.sizes!r} for arch {self.arch!r}")
        _set(self, "dtype", check_float_dtype(self.dtype, "dtype").name)


@dataclass(frozen=True)
class StartSpec:
    """Where the low-rank layers start: their ranks and their factors.

    One of three starts: a dense draw of ``init`` truncated by an SVD (the default), the
    official code's decayed spectrum (``decay``), or a dense run pruned by SVDs
    (``prune_from``; :attr:`kind` says which).

    Parameters
    ----------
    rank : int, optional
        Starting rank of every low-rank layer (capped at ``min(n_in, n_out)``); None: the
        method's default (:mod:`lowrank_ref.methods`), filled in by the configuration.
    ranks : list of int, optional
        One rank per low-rank (hidden) layer instead of one ``rank``; ``rank`` becomes
        ``max(ranks)`` (if ``rank`` is given too, it must equal that).
    decay : float, optional
        Start every low-rank layer from ``sigma_k = |z|_(k) decay^(-k)``
        (:func:`lowrank_ref.factorized.decayed_factors`), ``>= 1``; ``init`` does not apply.
    init : str, default "he"
        :data:`TRAIN_INITS`: the dense draw (truncated by an SVD for low-rank layers).
    prune_from : str, optional
        A dense run folder (or its checkpoint) whose hidden layers, truncated by SVDs
        (:func:`lowrank_ref.pruning.prune_model`), are the start. Needs exactly one of
        ``ranks`` and ``prune_tau``; ``decay`` and ``init`` do not apply.
    prune_tau : float, optional
        With ``prune_from``: each layer's rank by this tolerance
        (:func:`lowrank_ref.pruning.pruned_ranks`); ``rank`` must stay None.
    spectrum_length, spectrum_norm : float, default 40.0, 0.6
        The drawn start of a low-rank layer (``init`` he, he_normal, glorot, torch): the
        singular values of the draw's rank-``r`` cut times ``exp(-i / spectrum_length)``,
        rescaled to the 2-norm ``spectrum_norm * sqrt(2 n_out)``
        (:class:`~lowrank_ref.lowrank_layers.DecaySpectrum`); both ``> 0``. They do not
        apply to the other starts (``decay``, ``prune_from``, ``init="keras-normal"``).
        Defaults: :data:`~lowrank_ref.lowrank_layers.SPECTRUM_DECAY`,
        :data:`~lowrank_ref.lowrank_layers.SPECTRUM_NORM`. Records written before these
        options existed lack them and load with these defaults, which are what those runs
        used: a change of the defaults must fill in 40.0 and 0.6 for such records.
    """

    rank: Optional[int] = None
    ranks: Optional[List[int]] = None
    decay: Optional[float] = None
    init: str = "he"
    prune_from: Optional[str] = None
    prune_tau: Optional[float] = None
    spectrum_length: float = SPECTRUM_DECAY
    spectrum_norm: float = SPECTRUM_NORM

    def __post_init__(self):
        _set(self, "rank", check_int(self.rank, "rank", low=1, optional=True))
        _set(self, "ranks", None if self.ranks is None
             else check_int_list(self.ranks, "ranks", low=1))
        _set(self, "decay", check_real(self.decay, "decay", low=1.0, optional=True))
        _set(self, "init", check_choice(self.init, "init", TRAIN_INITS))
        _set(self, "prune_from", check_path(self.prune_from, "prune_from", optional=True))
        _set(self, "prune_tau", check_real(self.prune_tau, "prune_tau", low=0, optional=True))
        _set(self, "spectrum_length", check_real(self.spectrum_length, "spectrum_length", low=0,
                                                 low_open=True))
        _set(self, "spectrum_norm", check_real(self.spectrum_norm, "spectrum_norm", low=0,
                                               low_open=True))
        if self.ranks is not None and self.rank is not None and self.rank != max(self.ranks):
            raise ValueError(f"rank must be None (or max(ranks) = {max(self.ranks)}) when "
                             f"ranks is given, got rank={self.rank}")
        if self.prune_from is not None:
            if (self.ranks is None) == (self.prune_tau is None):
                raise ValueError(f"prune_from needs exactly one of ranks and prune_tau, got "
                                 f"ranks={self.ranks}, prune_tau={self.prune_tau}")
            if self.decay is not None or self.init != "he":
                raise ValueError(f"prune_from starts from the pruned network: decay and init "
                                 f"do not apply, got decay={self.decay}, init={self.init!r}")
            if self.prune_tau is not None and self.rank is not None:
                raise ValueError(f"rank must be None with prune_tau (the ranks come from the "
                                 f"pruned network), got rank={self.rank}")
        elif self.prune_tau is not None:
            raise ValueError(f"prune_tau is only used with prune_from, got "
                             f"prune_tau={self.prune_tau}")
        if self.decay is not None and self.init != "he":
            raise ValueError(f"decay sets the starting factors itself: init does not apply, "
                             f"got init={self.init!r}")
        spectrum = {"spectrum_length": (self.spectrum_length, SPECTRUM_DECAY),
                    "spectrum_norm": (self.spectrum_norm, SPECTRUM_NORM)}
        changed = {name: value for name, (value, default) in spectrum.items()
                   if value != default}
        if changed and (self.kind != "drawn" or self.init == "keras-normal"):
            other = ("init='keras-normal'" if self.kind == "drawn" else
                     f"{'decay' if self.kind == 'decayed' else 'prune_from'} (the {self.kind} "
                     f"start)")
            raise ValueError(f"{sorted(changed)} shape the drawn start only: they do not apply "
                             f"with {other}, got {changed}")

    @property
    def kind(self) -> str:
        """``"pruned"`` (from a dense run), ``"decayed"`` (spectrum) or ``"drawn"`` (``init``).

        >>> StartSpec(decay=2.0).kind, StartSpec().kind
        ('decayed', 'drawn')
        """
        if self.prune_from is not None:
            return "pruned"
        return "drawn" if self.decay is None else "decayed"


@dataclass(frozen=True)
class StepSpec:
    """The optimiser: integrator (``method``) x direction rule (``optimizer``).

    Parameters
    ----------
    method : str, default "dense"
        A record of :data:`lowrank_ref.methods.REGISTRY` ("dense", "fixed", "adaptive",
        "vanilla", "sonly", "parallel").
    optimizer : {"sgd", "adam", "adam-carried"}, default "sgd"
        :data:`OPTIMIZERS`; the method's record must take it.
    lr : float, optional
        Learning rate ``> 0``; None: the method's default (Adam: 1e-3).
    momentum : float, optional
        Heavy-ball momentum in ``[0, 1)``, SGD only; None: the method's default (Adam: 0).
    tau : float, optional
        Relative truncation tolerance (the rank-adaptive methods; required there).
    min_rank, max_rank : int
        Rank bounds of the rank-adaptive methods (``max_rank >= min_rank`` or None).
    passes : {1, 3}, default 1
        Method "adaptive": one backward per step, or the published three (not with "adam").
    adam_beta1, adam_beta2, adam_eps : float
        Adam's hyperparameters (:data:`lowrank_ref.adam.ADAM_DEFAULTS`); Adam only.
    """

    method: str = "dense"
    optimizer: str = "sgd"
    lr: Optional[float] = None
    momentum: Optional[float] = None
    tau: Optional[float] = None
    min_rank: int = 1
    max_rank: Optional[int] = None
    passes: int = 1
    adam_beta1: float = ADAM_DEFAULTS["beta1"]
    adam_beta2: float = ADAM_DEFAULTS["beta2"]
    adam_eps: float = ADAM_DEFAULTS["eps"]

    def __post_init__(self):
        record = method_record(self.method)
        _set(self, "optimizer", check_choice(self.optimizer, "optimizer", OPTIMIZERS))
        _set(self, "lr", _unless_default(check_real, self.lr, "lr", low=0, low_open=True))
        _set(self, "momentum", _unless_default(check_real, self.momentum, "momentum", low=0,
                                               high=1, high_open=True))
        _set(self, "tau", check_real(self.tau, "tau", low=0, optional=True))
        min_rank, max_rank = check_rank_bounds(self.min_rank, self.max_rank)
        _set(self, "min_rank", min_rank)
        _set(self, "max_rank", max_rank)
        _set(self, "passes", check_int(self.passes, "passes"))
        if self.passes not in (1, 3):
            raise ValueError(f"passes must be 1 or 3, got {self.passes}")
        _set(self, "adam_beta1", check_real(self.adam_beta1, "adam_beta1", low=0, high=1,
                                            high_open=True))
        _set(self, "adam_beta2", check_real(self.adam_beta2, "adam_beta2", low=0, high=1,
                                            high_open=True))
        _set(self, "adam_eps", check_real(self.adam_eps, "adam_eps", low=0, low_open=True))
        if self.optimizer == "sgd":
            for name in ("beta1", "beta2", "eps"):
                if getattr(self, f"adam_{name}") != ADAM_DEFAULTS[name]:
                    raise ValueError(f"adam_{name} is only used by the Adam optimizers, got "
                                     f"adam_{name}={getattr(self, f'adam_{name}')!r} with "
                                     f"optimizer 'sgd'")
            return
        if self.optimizer not in record.optimizers:
            raise ValueError(f"optimizer {self.optimizer!r} is implemented for methods "
                             f"{methods_using_optimizer(self.optimizer)}, got method "
                             f"{self.method!r}")
        if self.momentum not in (None, 0):
            raise ValueError(f"momentum is only used by optimizer 'sgd' (Adam has beta1), "
                             f"got momentum={self.momentum} with optimizer {self.optimizer!r}")
        if self.optimizer == "adam" and self.passes != 1:
            raise ValueError(f"passes must be 1 with optimizer 'adam' (the paper's loop has "
                             f"its own passes), got passes={self.passes}")


@dataclass(frozen=True)
class DataSpec:
    """The data.

    Parameters
    ----------
    dataset : {"mnist", "fashion-mnist"}, default "mnist"
    data_dir : str, optional
        A folder searched first (:func:`lowrank_ref.data.load`).
    n_train, n_test : int, optional
        Use only the first ``n_train`` / ``n_test`` samples (quick runs and tests).
    validation : bool, default True
        Train on the training images but the last 10,000, evaluate on those after every
        epoch and on the test set once, after the last epoch
        (:func:`lowrank_ref.data.split_validation`). False: train on all training images and
        evaluate the test set after every epoch (the runs recorded before the option
        existed).
    n_valid : int, optional
        With ``validation``: use only the first ``n_valid`` validation samples.
    """

    dataset: str = "mnist"
    data_dir: Optional[str] = None
    n_train: Optional[int] = None
    n_test: Optional[int] = None
    validation: bool = True
    n_valid: Optional[int] = None

    def __post_init__(self):
        _set(self, "dataset", check_choice(self.dataset, "dataset", DATASETS))
        _set(self, "data_dir", check_path(self.data_dir, "data_dir", optional=True))
        _set(self, "n_train", check_int(self.n_train, "n_train", low=1, optional=True))
        _set(self, "n_test", check_int(self.n_test, "n_test", low=1, optional=True))
        _set(self, "validation", check_bool(self.validation, "validation"))
        _set(self, "n_valid", check_int(self.n_valid, "n_valid", low=1, optional=True))
        if self.n_valid is not None and not self.validation:
            raise ValueError(f"n_valid is only used with validation=True (the validation part "
                             f"of the training set), got n_valid={self.n_valid} with "
                             f"validation=False")


@dataclass(frozen=True)
class RunSpec:
    """The run: its phases, batches, learning-rate schedule, seed, folder and threads.

    Parameters
    ----------
    epochs : int, optional
        Main training epochs, ``>= 1``; None: 10.
    finetune_epochs : int, default 0
        Epochs of S-only fine-tuning after the main epochs (methods with low-rank layers).
    batch_size : int, optional
        None: 256 for "mlp", 128 for "lenet5".
    schedule : {"constant", "cosine"}, optional
        None: "cosine" (:func:`lowrank_ref.training.lr_at`).
    warmup : int, optional
        Steps of linear warm-up at the start of each phase; None: the method's default.
    seed : int, default 0
    out : str, optional
        Output folder; None: ``runs/<method>-<YYYYmmdd-HHMMSS>``.
    threads : int or None, default :data:`lowrank_ref.threads.DEFAULT_THREADS` (1)
        BLAS/LAPACK threads during the run; None leaves the libraries' default.
    """

    epochs: Optional[int] = None
    finetune_epochs: int = 0
    batch_size: Optional[int] = None
    schedule: Optional[str] = None
    warmup: Optional[int] = None
    seed: int = 0
    out: Optional[str] = None
    threads: Optional[int] = DEFAULT_THREADS

    def __post_init__(self):
        _set(self, "epochs", _unless_default(check_int, self.epochs, "epochs", low=1))
        _set(self, "finetune_epochs", check_int(self.finetune_epochs, "finetune_epochs", low=0))
        _set(self, "batch_size", _unless_default(check_int, self.batch_size, "batch_size",
                                                 low=1))
        if self.schedule is not None:
            _set(self, "schedule", check_choice(self.schedule, "schedule", SCHEDULES))
        _set(self, "warmup", _unless_default(check_int, self.warmup, "warmup", low=0))
        _set(self, "seed", check_int(self.seed, "seed", low=0))
        _set(self, "out", check_path(self.out, "out", optional=True))
        _set(self, "threads", check_threads(self.threads))


#: The parts of a configuration, by attribute name, in the order of ``to_dict``.
PARTS = {"model": ModelSpec, "start": StartSpec, "step": StepSpec, "data": DataSpec,
         "run": RunSpec}
#: The part each option belongs to (``{"lr": "step", "seed": "run", ...}``).
PART_OF = {f.name: part for part, spec in PARTS.items() for f in dataclasses.fields(spec)}
#: Every option, in the order of the flat records written before the parts existed (the
#: options of the command line).
OPTION_NAMES = ("method", "arch", "dataset", "data_dir", "sizes", "epochs", "batch_size", "lr",
                "momentum", "schedule", "warmup", "seed", "dtype", "rank", "tau", "min_rank",
                "max_rank", "passes", "finetune_epochs", "n_train", "n_test", "validation",
                "n_valid", "out", "threads", "ranks", "decay", "init", "optimizer",
                "adam_beta1", "adam_beta2", "adam_eps", "prune_from", "prune_tau",
                "spectrum_length", "spectrum_norm")
assert sorted(OPTION_NAMES) == sorted(PART_OF)


def flat_options(config: dict) -> dict:
    """The options by name of a recorded configuration, nested by part or flat (records
    written before the parts), without checking them: for readers of ``run.json`` files
    (figures, tables) that need a few options. :meth:`TrainConfig.from_dict
    <lowrank_ref.training.TrainConfig.from_dict>` reads and checks a whole one.

    >>> flat_options({"step": {"tau": 0.1}, "run": {"seed": 2}})
    {'tau': 0.1, 'seed': 2}
    >>> flat_options({"tau": 0.1})
    {'tau': 0.1}
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    if not any(key in PARTS for key in config):
        return dict(config)
    return {name: value for part in PARTS if isinstance(config.get(part), dict)
            for name, value in config[part].items()}
