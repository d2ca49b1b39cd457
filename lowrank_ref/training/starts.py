"""Where a run's network starts: :func:`build_model`, the network of a configuration.

The plain starts are the package's networks (:func:`lowrank_ref.nn.MLP.dense`,
:func:`lowrank_ref.dlrt.low_rank_mlp`, :func:`lowrank_ref.networks.lenet5`);
:func:`start_model` builds the network of a :class:`~lowrank_ref.training.TrainConfig`
that asks for per-layer ``ranks``, the official code's decayed spectrum (``decay``), the
paper's "keras-normal" initialisation, the vanilla ``U V^T`` layers (method "vanilla") or a
pruned dense checkpoint (``prune_from``), for the MLP and (``decay``, method "vanilla") for
LeNet5.
The rule that makes comparisons fair: for one configuration, methods "fixed" and "vanilla"
draw the same numbers from the same generator and so start from the same matrices ``W0``
(the vanilla layer is the balanced split of the DLRT layer's factors,
:func:`lowrank_ref.factorized.split_factors`).

The decayed start keeps the official code's profile ``sigma_k = |z|_(k) decay^(-k)`` and
rescales it to ``||sigma||_2 = SPECTRUM_NORM sqrt(2 n_out)`` per layer (the package's norm;
the official singular values are of order one whatever the width, and with them the
4-hidden-layer MLP does not train), for both architectures alike.
"""
from __future__ import annotations

import numpy as np

from ..conv import FactorizedConv2d, LowRankConv2d
from ..dlrt import low_rank_mlp
from ..factorized import FactorizedDense, decayed_factors
from ..lowrank import LowRank, orthonormalize
from ..lowrank_layers import SPECTRUM_NORM, DecaySpectrum, LowRankDense
from ..methods import method_record
from ..networks import LENET5_MATRICES, lenet5, lenet5_from_layers
from ..nn import MLP, Dense, Network
from ..pruning import prune_model
from .checkpoint import load_checkpoint, restore_model
from .config import TrainConfig

__all__ = ["build_model", "model_to_restore", "start_model", "keras_normal_lowrank",
           "KERAS_NORMAL_STD"]

#: Standard deviation of Keras' "random_normal" initializer (mean 0), with which the paper's
#: TensorFlow code draws every variable of its dense MNIST networks.
KERAS_NORMAL_STD = 0.05


def keras_normal_lowrank(n_out: int, n_in: int, rank: int, rng, dtype) -> LowRank:
    """``W0 = U S V^T`` with ``U`` (n_out, r), ``S`` (r, r), ``V`` (n_in, r) all ``N(0, 0.05^2)``.

    The start of a low-rank layer in the paper's TensorFlow code (``DLRALayerAdaptive`` of
    ``src/dlranet.py`` in ``CSMMLab/DLRT-Net``: ``aux_U``, ``s``, ``aux_Vt`` drawn by
    ``initializer="random_normal"``, not orthonormalised). Returned with orthonormal factors
    (``U = Q_U R_U``, ``V = Q_V R_V``, ``S <- R_U S R_V^T``): the same matrix.

    Examples
    --------
    >>> Y = keras_normal_lowrank(500, 784, 150, np.random.default_rng(0), np.float64)
    >>> Y.U.shape, Y.S.shape, Y.V.shape, Y.orthonormality_error() < 1e-12
    ((500, 150), (150, 150), (784, 150), True)
    >>> round(float(Y.to_dense().std()), 3)       # sqrt(150 * 150) * 0.05^3
    0.019
    """
    U = rng.normal(0.0, KERAS_NORMAL_STD, (n_out, rank))
    S = rng.normal(0.0, KERAS_NORMAL_STD, (rank, rank))
    V = rng.normal(0.0, KERAS_NORMAL_STD, (n_in, rank))
    QU, RU = orthonormalize(U, return_r=True)
    QV, RV = orthonormalize(V, return_r=True)
    return LowRank(QU.astype(dtype), (RU @ S @ RV.T).astype(dtype), QV.astype(dtype))


def _keras_normal_dense(n_in, n_out, rng, dtype) -> Dense:
    layer = Dense(n_in, n_out, np.random.default_rng(0), dtype=dtype)   # values replaced:
    layer.W.value = rng.normal(0.0, KERAS_NORMAL_STD, (n_out, n_in)).astype(dtype)
    layer.b.value = rng.normal(0.0, KERAS_NORMAL_STD, n_out).astype(dtype)
    return layer


def _pruned(config, dtype) -> MLP:
    ckpt = load_checkpoint(config.prune_from)
    if ckpt["config"].method != "dense" or ckpt["config"].arch != "mlp":
        raise ValueError(f"prune_from must be a dense run of arch 'mlp', got {ckpt['path']} "
                         f"of method {ckpt['config'].method!r}, arch {ckpt['config'].arch!r}")
    if list(ckpt["config"].sizes) != list(config.sizes):
        raise ValueError(f"prune_from {ckpt['path']} has sizes {ckpt['config'].sizes}, the "
                         f"configuration {config.sizes}")
    dense = MLP.dense(config.sizes, np.random.default_rng(0), dtype)
    restore_model(dense, ckpt["arrays"], ckpt["path"], dtype)
    if config.ranks is not None:
        return prune_model(dense, ranks=config.ranks)
    return prune_model(dense, tau=config.prune_tau)


def _decayed(n_out: int, n_in: int, rank: int, decay: float, rng, dtype) -> LowRank:
    """:func:`~lowrank_ref.factorized.decayed_factors` at the package's norm (module doc)."""
    return decayed_factors(n_out, n_in, rank, decay, rng, dtype,
                           norm=SPECTRUM_NORM * np.sqrt(2.0 * n_out))


def _spectrum(config) -> DecaySpectrum:
    """The singular values of the drawn start of ``config``'s low-rank layers."""
    return DecaySpectrum(config.spectrum_length, config.spectrum_norm)


def _lenet5_start(config, rng: np.random.Generator, dtype) -> Network:
    """LeNet5 of method "fixed" or "vanilla", rank ``min(config.rank, full rank)`` per layer.

    ``decay`` None: the factors of :func:`~lowrank_ref.networks.lenet5` (the package's
    start); else the decayed spectra of conv1, conv2 and linear1 in that order (bias 0),
    then the dense classifier, all from ``rng``. Method "vanilla" splits each ``(Y, b)`` into
    :class:`~lowrank_ref.conv.FactorizedConv2d` / :class:`~lowrank_ref.factorized.FactorizedDense`.
    """
    if config.decay is None:
        model = lenet5(rng, dtype, ranks=config.rank, spectrum=_spectrum(config))
        starts = [(layer.factors, layer.b.value) for layer in model.layers[:3]]
        classifier = model.layers[3]
    else:
        starts = [(_decayed(n_out, n_in, min(config.rank, n_out, n_in), config.decay, rng,
                            dtype), np.zeros(n_out, dtype=dtype))
                  for n_out, n_in in LENET5_MATRICES[:3]]
        classifier = Dense(*LENET5_MATRICES[3][::-1], rng, dtype=dtype, init=config.init)
    if method_record(config.method).layers == "factorized":
        layers = [FactorizedConv2d.from_lowrank(Y, b, 5) for Y, b in starts[:2]]
        layers.append(FactorizedDense.from_lowrank(*starts[2]))
    else:
        layers = [LowRankConv2d.from_factors(Y, b, 5) for Y, b in starts[:2]]
        layers.append(LowRankDense.from_factors(*starts[2]))
    return lenet5_from_layers(layers + [classifier])


def start_model(config, rng: np.random.Generator, dtype) -> Network:
    """The network of ``config`` (a TrainConfig) for the starts described in the module doc.

    Hidden layers in order, then the dense last layer, all from ``rng``. Low-rank layers are
    :class:`~lowrank_ref.lowrank_layers.LowRankDense` (methods "fixed", "adaptive", "sonly")
    or :class:`~lowrank_ref.factorized.FactorizedDense` (method "vanilla") of rank
    ``config.ranks[i]`` or ``min(config.rank, n_in, n_out)``.

    Arch "lenet5": methods "fixed" and "vanilla" with ``decay`` or ``rank`` (the three
    low-rank layers of :func:`~lowrank_ref.networks.lenet5`, the classifier dense).

    Raises
    ------
    ValueError, FileNotFoundError, CheckpointError
        ``prune_from`` missing, not a dense run, or of other sizes.
    """
    dtype = np.dtype(dtype)
    if config.arch == "lenet5":
        return _lenet5_start(config, rng, dtype)
    if config.prune_from is not None:
        return _pruned(config, dtype)
    pairs = list(zip(config.sizes[:-1], config.sizes[1:]))
    layers_kind = method_record(config.method).layers
    if layers_kind == "dense":
        if config.init != "keras-normal":
            return MLP.dense(config.sizes, rng, dtype, init=config.init)
        return MLP([_keras_normal_dense(a, b, rng, dtype) for a, b in pairs])
    layers = []
    for i, (n_in, n_out) in enumerate(pairs[:-1]):
        r = config.ranks[i] if config.ranks is not None else min(config.rank, n_in, n_out)
        if config.decay is not None:
            Y = _decayed(n_out, n_in, r, config.decay, rng, dtype)
            b = np.zeros(n_out)
        elif config.init == "keras-normal":
            Y = keras_normal_lowrank(n_out, n_in, r, rng, dtype)
            b = rng.normal(0.0, KERAS_NORMAL_STD, n_out)
        else:
            start = LowRankDense(n_in, n_out, r, rng, dtype=dtype, init=config.init,
                                 spectrum=_spectrum(config))
            Y, b = start.factors, start.b.value
        b = np.asarray(b).astype(dtype)
        layers.append(FactorizedDense.from_lowrank(Y, b) if layers_kind == "factorized"
                      else LowRankDense.from_factors(Y, b))
    n_in, n_out = pairs[-1]
    last = (_keras_normal_dense(n_in, n_out, rng, dtype) if config.init == "keras-normal"
            else Dense(n_in, n_out, rng, dtype=dtype, init=config.init))
    return MLP(layers + [last])


def build_model(config: TrainConfig) -> Network:
    """The freshly initialised network of ``config`` (from ``default_rng(config.seed)``).

    Arch "mlp": dense for method "dense", else :func:`lowrank_ref.dlrt.low_rank_mlp` (last
    layer dense). Arch "lenet5": :func:`lowrank_ref.networks.lenet5`, dense or with its
    first three layers low-rank of starting rank ``config.rank`` (capped per layer).
    Arch "mlp" also: per-layer ``ranks``, ``decay``, ``init``, method "vanilla" and
    ``prune_from`` by :func:`start_model`; arch "lenet5" also ``decay`` and method
    "vanilla" (:class:`~lowrank_ref.conv.FactorizedConv2d`) there.

    Examples
    --------
    >>> m = build_model(TrainConfig(method="fixed", rank=3, sizes=[6, 5, 4, 2]))
    >>> [type(layer).__name__ for layer in m.layers]
    ['LowRankDense', 'LowRankDense', 'Dense']
    >>> m = build_model(TrainConfig(method="adaptive", arch="lenet5", tau=0.1))
    >>> [getattr(layer, "rank", None) for layer in m.layers]
    [20, 50, 500, None]
    """
    rng = np.random.default_rng(config.seed)
    dtype = np.dtype(config.dtype)
    kind = method_record(config.method).layers
    if config.arch == "lenet5" and kind != "factorized" and config.decay is None:
        if kind == "dense":
            return lenet5(rng, dtype, ranks=None)
        return lenet5(rng, dtype, ranks=config.rank, spectrum=_spectrum(config))
    # (method "sonly" has drawn its start as start_model does since its first records)
    if (config.arch == "lenet5" or kind == "factorized" or config.method == "sonly"
            or config.ranks is not None or config.init != "he" or config.decay is not None
            or config.prune_from is not None):
        return start_model(config, rng, dtype)
    if kind == "dense":
        return MLP.dense(config.sizes, rng, dtype)
    return low_rank_mlp(config.sizes, config.rank, rng, dtype, spectrum=_spectrum(config))


def model_to_restore(config: TrainConfig) -> Network:
    """A network of ``config``'s layers for a checkpoint to fill in (``restore_model``).

    :func:`build_model`, except for a pruned start (``prune_from``): the dense run it was cut
    from is not read (the checkpoint holds every parameter, and that run may have been moved
    or deleted since), and its low-rank layers start at rank 1 (the checkpoint sets each
    layer's factors and rank).

    Examples
    --------
    >>> c = TrainConfig(method="fixed", ranks=[3, 2], prune_from="gone", sizes=[6, 5, 4, 2])
    >>> [getattr(layer, "rank", None) for layer in model_to_restore(c).layers]
    [1, 1, None]
    """
    if config.prune_from is None:
        return build_model(config)
    return low_rank_mlp(config.sizes, 1, np.random.default_rng(0), np.dtype(config.dtype))
