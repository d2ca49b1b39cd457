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

import dataclasses
import math
from dataclasses import dataclass
from typing import List, Optional

from .._validate import (check_bool, check_choice, check_float_dtype, check_int, check_int_list, check_path,
                         check_rank_bounds, check_real)
from ..adam import ADAM_DEFAULTS, CarriedAdam, PaperAdam
from ..data import DATASETS
from ..dlrt import SOnly
from ..methods import (METHOD_OPTIONS, REGISTRY, check_method_options, make_optimizer,
                       method_record, methods_for_arch)
from ..networks import LENET5_INPUT_SHAPE
from ..nn import INITS, Network
from ..threads import DEFAULT_THREADS, check_threads

__all__ = ["TrainConfig", "lr_at", "build_optimizer", "build_direction",
           "config_differences", "ADAM_METHODS",
           "input_shape", "n_classes", "arch_default",
           "ARCHS", "SCHEDULES", "DTYPES", "PHASES", "DEFAULT_SIZES", "DEFAULT_LR",
           "DEFAULT_MOMENTUM", "DEFAULT_WARMUP", "DEFAULT_RANK", "DEFAULT_EPOCHS",
           "DEFAULT_BATCH_SIZE", "DEFAULT_SCHEDULE", "LENET5_DEFAULTS", "LENET5_METHODS",
           "RESUMABLE_CHANGES", "OPTIMIZERS", "TRAIN_INITS", "DEFAULT_ADAM_LR",
           "MAX_DENSE_PARAMETERS"]

#: The networks: the fully connected ``"mlp"`` (``sizes``) and ``"lenet5"``
#: (:func:`lowrank_ref.networks.lenet5`, on images ``(1, 28, 28)``).
ARCHS = ("mlp", "lenet5")
SCHEDULES = ("constant", "cosine")
DTYPES = ("float32", "float64")
#: The two phases of a run: the main epochs, then the optional S-only fine-tuning.
PHASES = ("train", "finetune")
#: The network of [SZKCT22]: 784 inputs, four hidden layers of 500, 10 classes.
DEFAULT_SIZES = (784, 500, 500, 500, 500, 10)


def methods_using_optimizer(optimizer: str) -> tuple:
    """The methods whose records take the direction rule ``optimizer``."""
    return tuple(m.name for m in REGISTRY.values() if optimizer in m.optimizers)


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
#: ``TrainConfig.optimizer``: the direction rule. SGD (with ``momentum``: heavy ball carried
#: across bases, lowrank_ref.directions), Adam with moments per factor variable as the
#: paper's code keeps them, Adam with moments carried across bases (lowrank_ref.adam).
OPTIMIZERS = ("sgd", "adam", "adam-carried")
#: The methods each Adam form works with ("adam", the paper's loop: the rank-adaptive step,
#: and textbook Adam of dense and vanilla networks); see docs/design.md,
#: section "Optimisers: integrator x direction".
ADAM_METHODS = {name: methods_using_optimizer(name) for name in OPTIMIZERS[1:]}
#: Default learning rate of the Adam optimizers (the paper's code).
DEFAULT_ADAM_LR = 1e-3
#: ``TrainConfig.init``: the dense draws of lowrank_ref.nn.INITS, or "keras-normal": every
#: variable (each factor U, S, V of a low-rank layer, every weight and bias) drawn from
#: N(0, 0.05^2), as the paper's TensorFlow code initialises its dense MNIST runs.
TRAIN_INITS = INITS + ("keras-normal",)
DEFAULT_BATCH_SIZE = 256
DEFAULT_SCHEDULE = "cosine"
#: The largest MLP a configuration builds, in dense parameters (weights and biases of
#: ``sizes``). The paper's network has 1,147,000; 10^8 take 0.8 GB per float64 copy, and a
#: run holds several (the float64 draw of the start, the weights, their gradients and
#: momentum), so beyond it a laptop runs out of memory (or the OOM killer ends the process)
#: before the first step. Checked before anything is allocated.
MAX_DENSE_PARAMETERS = 10 ** 8
#: The defaults of ``arch="lenet5"`` (the ``DEFAULT_*`` above are those of the MLP): lr 0.05
#: and batch 128 as in the LeNet5 runs of [SZKCT22], the full-rank start of the paper
#: (``rank`` 500, capped by each layer to 20, 50, 500), but momentum 0.9, the cosine
#: schedule, 100 warm-up steps for the low-rank methods and 10 epochs instead of plain SGD
#: for 20 epochs: on short runs (the first 20,000 MNIST images, 3 epochs, seed 0) the
#: paper's plain SGD reached 92.38% test accuracy at tau 0.2 and 95.91% dense, momentum
#: with the cosine schedule 97.50% and 98.36% (same ranks 8, 12-13, 15 at tau 0.2).
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

CHECKPOINT_NAME = "checkpoint.npz"
#: Options that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES = ("epochs", "finetune_epochs", "out", "threads")


@dataclass
class TrainConfig:
    """Everything that determines a training run (checked on construction).

    Parameters
    ----------
    method : str, default "dense"
        One of :data:`lowrank_ref.methods.METHODS` ("dense", "fixed", "adaptive", "vanilla",
        "sonly", "parallel"): a record of :data:`lowrank_ref.methods.REGISTRY`, which says
        the integrator of the optimiser, the architectures, the defaults and which of the
        options ``rank``, ``tau``, ``min_rank``, ``max_rank``, ``passes``,
        ``finetune_epochs``, ``ranks``, ``decay``, ``prune_from`` the method uses (the others
        must stay unset: a ValueError names the option and the methods that use it).
    arch : {"mlp", "lenet5"}, default "mlp"
        The network: the MLP of ``sizes``, or :func:`lowrank_ref.networks.lenet5` (the
        images reshaped to ``(1, 28, 28)``; its first three layers low-rank for the methods
        "fixed", "adaptive" and "parallel", vanilla ``U V^T`` for "vanilla";
        :data:`LENET5_METHODS`). Options left at None take the defaults of the
        architecture: the ``DEFAULT_*`` constants for "mlp", :data:`LENET5_DEFAULTS` for
        "lenet5" (filled in on construction).
    dataset : {"mnist", "fashion-mnist"}, default "mnist"
    data_dir : str, optional
        A folder searched first for the data (:func:`lowrank_ref.data.load`).
    sizes : list of int, optional
        Layer widths, input first, classes last; arch "mlp" only (None:
        ``[784, 500, 500, 500, 500, 10]``).
    epochs : int, optional
        Main training epochs, ``>= 1``; None: 10 (both architectures).
    batch_size : int, optional
        None: 256 for "mlp", 128 for "lenet5".
    lr : float, optional
        Learning rate ``> 0``; None: :data:`DEFAULT_LR` of the method (filled in on
        construction).
    momentum : float, optional
        Heavy-ball momentum in ``[0, 1)``; None: :data:`DEFAULT_MOMENTUM` of the method
        (0.9 for every method; 0 gives plain SGD, the Euler step of [SZKCT22]).
    schedule : {"constant", "cosine"}, optional
        Per-step cosine decay to 0 over the main epochs (:func:`lr_at`), or constant;
        None: "cosine".
    warmup : int, optional
        Steps of linear warm-up (``lr * (step + 1) / warmup``) at the start of each phase;
        None: :data:`DEFAULT_WARMUP` of the method.
    seed : int, default 0
    dtype : {"float32", "float64"}, default "float32"
        Of parameters and data; ``np.float32`` / ``np.dtype("float64")`` are accepted and
        stored by name.
    rank : int, optional
        Starting rank of every low-rank layer (capped at ``min(n_in, n_out)``); None:
        :data:`DEFAULT_RANK` of the method (LeNet5: 20 for "fixed" and "vanilla", 500 for
        "adaptive" and "parallel": the full rank of each layer); not allowed for "dense".
        The last layer stays dense.
    tau : float, optional
        Relative truncation tolerance of the methods "adaptive" and "parallel" (required
        there, only there).
    min_rank : int, default 1
        Methods "adaptive" and "parallel" only.
    max_rank : int, optional
        Methods "adaptive" and "parallel" only; None: the full rank ``min(n_in, n_out)`` per
        layer, ``min(n_in, n_out) // 2`` with optimizer "adam" (the cap of the paper's code,
        :class:`lowrank_ref.adam.PaperAdam`).
    passes : {1, 3}, default 1
        Method "adaptive" only: one backward per step, or the published three.
    finetune_epochs : int, default 0
        Epochs of S-only fine-tuning (:class:`lowrank_ref.dlrt.SOnly`, with the run's
        direction rule, started afresh) after the main epochs; methods with low-rank
        layers only (not "dense", "vanilla").
    n_train, n_test : int, optional
        Use only the first ``n_train`` / ``n_test`` samples (quick runs and tests).
    validation : bool, default True
        Train on the training images but the last 10,000 (MNIST: the 50,000 of
        ``mnist.pkl.gz``'s train part), evaluate on those 10,000 (its valid part) after every
        epoch, and on the test set only once, after the last epoch, so that nothing is
        chosen on it (:func:`lowrank_ref.data.split_validation`; data given to
        :func:`~lowrank_ref.training.train` must carry its validation part). False: train on
        all training images and evaluate the test set after every epoch, as the runs
        recorded before the option existed (:meth:`from_dict` reads a record without the
        option as False).
    n_valid : int, optional
        With ``validation``: use only the first ``n_valid`` validation samples.
    out : str, optional
        Output folder; None: ``runs/<method>-<YYYYmmdd-HHMMSS>`` (resolved by :func:`train`).
    threads : int or None, default :data:`lowrank_ref.threads.DEFAULT_THREADS` (1)
        BLAS/LAPACK threads during the run (:func:`lowrank_ref.threads.blas_threads`); None
        leaves the libraries' own default (one per core). May change on resume.
    ranks : list of int, optional
        One rank per low-rank (hidden) layer, for methods "fixed", "vanilla" and "sonly"
        (instead of one ``rank`` for all); ``rank`` becomes ``max(ranks)``.
    decay : float, optional
        Methods "fixed", "vanilla", "sonly" (LeNet5: "fixed", "vanilla"): start every low-rank layer from the official
        code's decayed spectrum ``sigma_k = |z|_(k) decay^(-k)``
        (:func:`lowrank_ref.factorized.decayed_factors`), ``>= 1``; None: the package's start
        (:class:`~lowrank_ref.lowrank_layers.LowRankDense`). A "fixed" and a "vanilla" run of
        one configuration start from the same ``W0`` either way.
    init : str, default "he"
        :data:`TRAIN_INITS`: a dense draw of :data:`lowrank_ref.nn.INITS` (truncated by an SVD
        for low-rank layers), or "keras-normal" (the paper's code: every factor and bias
        ``N(0, 0.05^2)``).
    optimizer : {"sgd", "adam", "adam-carried"}, default "sgd"
        The direction rule, :data:`OPTIMIZERS`. "sgd": plain or (``momentum``) heavy ball;
        "adam": :class:`~lowrank_ref.adam.PaperAdam`, the paper's code, for "adaptive"
        (and textbook Adam for "dense", "vanilla"); "adam-carried":
        :class:`~lowrank_ref.adam.CarriedAdam`, every method (:data:`ADAM_METHODS`). With
        Adam, ``lr`` defaults to :data:`DEFAULT_ADAM_LR`, ``momentum`` to 0 (and must be 0).
    adam_beta1, adam_beta2, adam_eps : float
        Adam's hyperparameters (default :data:`lowrank_ref.adam.ADAM_DEFAULTS`); Adam only.
    prune_from : str, optional
        Methods "fixed" and "sonly": a dense run folder (or its checkpoint) whose hidden
        layers, truncated by SVDs (:func:`lowrank_ref.pruning.prune_model`), are the start
        (fine-tuning after pruning). Needs ``ranks`` or ``prune_tau``.
    prune_tau : float, optional
        With ``prune_from``: choose each layer's rank by this tolerance
        (:func:`lowrank_ref.pruning.pruned_ranks`) instead of ``ranks``.

    Raises
    ------
    TypeError
        Naming the option, if it is not the kind of object it takes (``epochs=1.5``,
        ``lr="0.1"``, ``threads=1.5``, ``sizes=784``, ``dtype="float16"``).
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
    >>> TrainConfig(method="adaptive", tau=0.1).rank
    150
    >>> TrainConfig(method="dense", rank=20)
    Traceback (most recent call last):
    ...
    ValueError: rank is only used by methods ('fixed', 'adaptive', 'vanilla', 'sonly', 'parallel'), got rank=20 for method 'dense'
    >>> TrainConfig(epochs=1.5)
    Traceback (most recent call last):
    ...
    TypeError: epochs must be an int >= 1, got float 1.5
    """

    method: str = "dense"
    arch: str = "mlp"
    dataset: str = "mnist"
    data_dir: Optional[str] = None
    sizes: Optional[List[int]] = None
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    momentum: Optional[float] = None
    schedule: Optional[str] = None
    warmup: Optional[int] = None
    seed: int = 0
    dtype: str = "float32"
    rank: Optional[int] = None
    tau: Optional[float] = None
    min_rank: int = 1
    max_rank: Optional[int] = None
    passes: int = 1
    finetune_epochs: int = 0
    n_train: Optional[int] = None
    n_test: Optional[int] = None
    validation: bool = True
    n_valid: Optional[int] = None
    out: Optional[str] = None
    threads: Optional[int] = DEFAULT_THREADS
    ranks: Optional[List[int]] = None
    decay: Optional[float] = None
    init: str = "he"
    optimizer: str = "sgd"
    adam_beta1: float = ADAM_DEFAULTS["beta1"]
    adam_beta2: float = ADAM_DEFAULTS["beta2"]
    adam_eps: float = ADAM_DEFAULTS["eps"]
    prune_from: Optional[str] = None
    prune_tau: Optional[float] = None

    def __post_init__(self):
        # Each option on its own (kind, then value), then the options against each other.
        record = method_record(self.method)
        self.arch = check_choice(self.arch, "arch", ARCHS)
        if self.arch not in record.archs:
            raise ValueError(f"method must be one of {methods_for_arch(self.arch)} for arch "
                             f"{self.arch!r}, got {self.method!r}")

        def default(option):
            return arch_default(self.arch, option, self.method)
        self.dataset = check_choice(self.dataset, "dataset", DATASETS)
        self.data_dir = check_path(self.data_dir, "data_dir", optional=True)
        if self.arch == "mlp":
            self.sizes = check_int_list(list(DEFAULT_SIZES) if self.sizes is None else self.sizes,
                                        "sizes", low=1, min_len=2)
            n = sum(a * b + b for a, b in zip(self.sizes, self.sizes[1:]))
            if n > MAX_DENSE_PARAMETERS:
                raise ValueError(f"sizes {self.sizes} make a network of {n:,} dense parameters "
                                 f"({8 * n / 1e9:.1f} GB per float64 copy); this reference "
                                 f"implementation builds at most {MAX_DENSE_PARAMETERS:,} "
                                 f"({8 * MAX_DENSE_PARAMETERS / 1e9:.1f} GB): choose smaller "
                                 f"widths (--hidden)")
        elif self.sizes is not None:
            raise ValueError(f"sizes is only used by arch 'mlp' (the layers of LeNet5 are "
                             f"fixed), got sizes={self.sizes!r} for arch {self.arch!r}")
        self.epochs = check_int(default("epochs") if self.epochs is None else self.epochs,
                                "epochs", low=1)
        self.batch_size = check_int(default("batch_size") if self.batch_size is None
                                    else self.batch_size, "batch_size", low=1)
        self.optimizer = check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        adam = self.optimizer != "sgd"
        if self.lr is None:
            self.lr = DEFAULT_ADAM_LR if adam else default("lr")
        self.lr = check_real(self.lr, "lr", low=0, low_open=True)
        if self.momentum is None:
            self.momentum = 0.0 if adam else default("momentum")
        self.momentum = check_real(self.momentum, "momentum", low=0, high=1, high_open=True)
        self.schedule = check_choice(default("schedule") if self.schedule is None
                                     else self.schedule, "schedule", SCHEDULES)
        if self.warmup is None:
            self.warmup = default("warmup")
        self.warmup = check_int(self.warmup, "warmup", low=0)
        self.seed = check_int(self.seed, "seed", low=0)
        self.dtype = check_float_dtype(self.dtype, "dtype").name
        self.rank = check_int(self.rank, "rank", low=1, optional=True)
        self.tau = check_real(self.tau, "tau", low=0, optional=True)
        self.min_rank, self.max_rank = check_rank_bounds(self.min_rank, self.max_rank)
        self.passes = check_int(self.passes, "passes")
        if self.passes not in (1, 3):
            raise ValueError(f"passes must be 1 or 3, got {self.passes}")
        self.finetune_epochs = check_int(self.finetune_epochs, "finetune_epochs", low=0)
        self.n_train = check_int(self.n_train, "n_train", low=1, optional=True)
        self.n_test = check_int(self.n_test, "n_test", low=1, optional=True)
        self.validation = check_bool(self.validation, "validation")
        self.n_valid = check_int(self.n_valid, "n_valid", low=1, optional=True)
        if self.n_valid is not None and not self.validation:
            raise ValueError(f"n_valid is only used with validation=True (the validation part "
                             f"of the training set), got n_valid={self.n_valid} with "
                             f"validation=False")
        self.out = check_path(self.out, "out", optional=True)
        self.threads = check_threads(self.threads)
        self.ranks = (None if self.ranks is None
                      else check_int_list(self.ranks, "ranks", low=1))
        self.decay = check_real(self.decay, "decay", low=1.0, optional=True)
        self.init = check_choice(self.init, "init", TRAIN_INITS)
        self.adam_beta1 = check_real(self.adam_beta1, "adam_beta1", low=0, high=1, high_open=True)
        self.adam_beta2 = check_real(self.adam_beta2, "adam_beta2", low=0, high=1, high_open=True)
        self.adam_eps = check_real(self.adam_eps, "adam_eps", low=0, low_open=True)
        self.prune_from = check_path(self.prune_from, "prune_from", optional=True)
        self.prune_tau = check_real(self.prune_tau, "prune_tau", low=0, optional=True)

        if self.arch != "mlp":
            given = {name: getattr(self, name) for name, unset in _MLP_ONLY
                     if getattr(self, name) != unset}
            if given:
                raise ValueError(f"options {sorted(given)} apply to arch 'mlp' only (per-layer "
                                 f"ranks, pruning and init are built for the MLP), got "
                                 f"{given} for arch {self.arch!r}")
        # Options a method does not use must keep their defaults: a silently ignored
        # option is a wrong experiment (the method records say which method uses which).
        check_method_options(self.method, self.arch,
                             **{name: getattr(self, name) for name in METHOD_OPTIONS})
        if ("rank" in record.options and self.ranks is None and self.prune_from is None
                and self.rank is None):
            self.rank = default("rank")
        self._check_comparison_options()

    def _check_comparison_options(self) -> None:
        """The options of the comparisons (ranks, decay, init, optimizer, pruning) together."""
        if self.arch == "lenet5":
            self._check_optimizer_options()
            return
        n_hidden = len(self.sizes) - 2
        if self.ranks is not None:
            if len(self.ranks) != n_hidden:
                raise ValueError(f"ranks must give one rank per hidden layer ({n_hidden}), got "
                                 f"{self.ranks}")
            for i, (r, a, b) in enumerate(zip(self.ranks, self.sizes[:-2], self.sizes[1:-1])):
                if r > min(a, b):
                    raise ValueError(f"ranks[{i}] must be <= min(n_in, n_out) = {min(a, b)}, "
                                     f"got {r}")
            if self.rank is not None and self.rank != max(self.ranks):
                raise ValueError(f"rank must be None (or max(ranks) = {max(self.ranks)}) when "
                                 f"ranks is given, got rank={self.rank}")
            self.rank = max(self.ranks)
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
        self._check_optimizer_options()

    def _check_optimizer_options(self) -> None:
        """The direction rule (``optimizer``) against the method and its options."""
        m = self.method
        if self.optimizer != "sgd":
            if self.optimizer not in method_record(m).optimizers:
                raise ValueError(f"optimizer {self.optimizer!r} is implemented for methods "
                                 f"{methods_using_optimizer(self.optimizer)}, got method "
                                 f"{m!r}")
            if self.momentum != 0:
                raise ValueError(f"momentum is only used by optimizer 'sgd' (Adam has beta1), "
                                 f"got momentum={self.momentum} with optimizer {self.optimizer!r}")
            if self.optimizer == "adam" and self.passes != 1:
                raise ValueError(f"passes must be 1 with optimizer 'adam' (the paper's loop has "
                                 f"its own passes), got passes={self.passes}")
            if self.optimizer == "adam" and self.finetune_epochs:
                raise ValueError(f"finetune_epochs (S-only fine-tuning) is not implemented "
                                 f"with optimizer 'adam' (the paper's loop is the rank-adaptive "
                                 f"step): use 'adam-carried' or 'sgd', got finetune_epochs="
                                 f"{self.finetune_epochs}")
        else:
            for name in ("beta1", "beta2", "eps"):
                if getattr(self, f"adam_{name}") != ADAM_DEFAULTS[name]:
                    raise ValueError(f"adam_{name} is only used by the Adam optimizers, got "
                                     f"adam_{name}={getattr(self, f'adam_{name}')!r} with "
                                     f"optimizer 'sgd'")

    def to_dict(self) -> dict:
        """The configuration as a JSON-ready dict (field order)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are refused (ValueError naming them).

        A record written before the option ``validation`` existed was a run on the whole
        training set: without the key, ``validation`` is False.

        Examples
        --------
        >>> TrainConfig.from_dict({"method": "dense"}).validation
        False
        >>> TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()
        True
        """
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown configuration option(s) {unknown}; known: {sorted(names)}")
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
    a, b = old.to_dict(), new.to_dict()
    return [f"{k}: {a[k]!r} in the checkpoint, {b[k]!r} now" for k in a
            if k not in RESUMABLE_CHANGES and a[k] != b[k]]
