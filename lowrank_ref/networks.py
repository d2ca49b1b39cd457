"""Networks beyond the MLP: :class:`Sequential`, its parameter-free modules, LeNet5, the
low-rank MLP and the parameter counts of [SZKCT22].

A :class:`Sequential` chains *modules*: layers with parameters (:class:`~lowrank_ref.nn.Dense`,
:class:`~lowrank_ref.conv.Conv2d` and the low-rank layers) and parameter-free modules
(:class:`ReLU`, :class:`MaxPool2d`, :class:`Flatten`). It is a
:class:`~lowrank_ref.nn.Network`: ``model.layers`` lists only the modules with parameters,
in order, and that list is what the optimisers of :mod:`lowrank_ref.dlrt`,
:func:`lowrank_ref.dlrt.parameter_counts` and the checkpoints iterate, exactly as for an
:class:`~lowrank_ref.nn.MLP`. ``model.modules`` is the whole chain.

:func:`lenet5` builds the LeNet5 of the convolutional experiment of [SZKCT22]: conv 1->20
(5x5), ReLU, max-pool 2; conv 20->50 (5x5), ReLU, max-pool 2; flatten (800); linear
800->500, ReLU; linear 500->10. Its low-rank version has the first three layers low-rank
and the classifier dense. :func:`low_rank_mlp` is the fully connected network of the
paper's MNIST table, :func:`parameter_counts` its definitions of the parameter counts.

[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import ops
from ._validate import check_bool, check_float_dtype, check_int, check_int_list, check_rng
from .autodiff import Tensor
from .conv import Conv2d, LowRankConv2d
from .factorized import FactorizedLayer
from .lowrank_layers import LowRankDense, LowRankLayer
from .nn import MLP, Dense, Layer, Network

__all__ = ["Sequential", "ReLU", "MaxPool2d", "Flatten", "lenet5", "lenet5_from_layers",
           "low_rank_mlp", "parameter_counts",
           "LENET5_INPUT_SHAPE", "LENET5_FULL_RANKS", "LENET5_MATRICES"]

#: The input of :func:`lenet5`: one channel of 28 x 28 pixels (MNIST, Fashion-MNIST).
LENET5_INPUT_SHAPE = (1, 28, 28)
#: The full ranks of the three low-rank layers of :func:`lenet5`: ``min(n_out, n_in)`` of
#: the matrices ``20 x 25``, ``50 x 500`` and ``500 x 800``.
LENET5_FULL_RANKS = (20, 50, 500)
#: The matrices ``(n_out, n_in)`` of the four layers of :func:`lenet5`: the kernel matrices
#: ``(c_out, c_in kh kw)`` of the two 5 x 5 convolutions, then the two linear layers.
LENET5_MATRICES = ((20, 25), (50, 500), (500, 800), (10, 500))


class ReLU:
    """``max(X, 0)`` as a module (no parameters).

    Examples
    --------
    >>> ReLU().forward_array(np.array([-1.0, 2.0]))
    array([0., 2.])
    """

    def __call__(self, X) -> Tensor:
        return ops.relu(X)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        return np.maximum(X, 0)

    def parameters(self) -> list:
        return []

    def __repr__(self) -> str:
        return "ReLU()"


class MaxPool2d:
    """Maximum over ``size x size`` windows of NCHW images (:func:`lowrank_ref.ops.max_pool2d`).

    Parameters
    ----------
    size : int >= 1
    stride : int >= 1, optional
        Default ``size`` (non-overlapping windows).

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> MaxPool2d(2).forward_array(x)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def __init__(self, size: int, stride: Optional[int] = None):
        self.size = check_int(size, "size", low=1)
        self.stride = self.size if stride is None else check_int(stride, "stride", low=1)

    def __call__(self, X) -> Tensor:
        return ops.max_pool2d(X, self.size, self.stride)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """The same maximum in plain NumPy: the windows of every channel as im2col rows."""
        batch, c, h, w = X.shape
        windows = ops.im2col(X.reshape(batch * c, 1, h, w), self.size, self.size, self.stride)
        h_out, w_out = (h - self.size) // self.stride + 1, (w - self.size) // self.stride + 1
        return windows.max(axis=1).reshape(batch, c, h_out, w_out)

    def parameters(self) -> list:
        return []

    def __repr__(self) -> str:
        return f"MaxPool2d(size={self.size}, stride={self.stride})"


class Flatten:
    """``(batch, d1, d2, ...) -> (batch, d1 d2 ...)`` in row-major order (:func:`lowrank_ref.ops.flatten`).

    Examples
    --------
    >>> Flatten().forward_array(np.zeros((2, 50, 4, 4))).shape
    (2, 800)
    """

    def __call__(self, X) -> Tensor:
        return ops.flatten(X)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        return X.reshape(X.shape[0], int(np.prod(X.shape[1:])))

    def parameters(self) -> list:
        return []

    def __repr__(self) -> str:
        return "Flatten()"


class Sequential(Network):
    """A chain of modules, ``modules[-1](... modules[0](X))``; the output is the logits.

    Parameters
    ----------
    modules : sequence
        Each with ``__call__`` and ``parameters()`` (the :class:`~lowrank_ref.nn.Layer`
        protocol) and ``forward_array`` (plain NumPy, used by :meth:`predict`): layers and
        parameter-free modules such as :class:`ReLU`, :class:`MaxPool2d`, :class:`Flatten`.
    input_shape : tuple of int, optional
        The shape of one sample, e.g. ``(1, 28, 28)``; checked on an array given to
        ``__call__`` or :meth:`predict` (a Tensor, already inside a graph, is passed on as
        it is; None: any shape).

    Attributes
    ----------
    modules : list
        All modules, in order.
    layers : list
        The modules with parameters (at construction), in order: what the optimisers,
        :func:`lowrank_ref.dlrt.parameter_counts` and the checkpoints iterate. To replace a
        layer, build a new Sequential.

    Raises
    ------
    TypeError
        A module without ``__call__``/``parameters()``/``forward_array``; parameters of
        mixed dtypes; ``input_shape`` not a sequence of ints.
    ValueError
        ``modules`` empty or without any layer with parameters; ``input_shape`` entries < 1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential([Conv2d(1, 4, 3, rng), ReLU(), MaxPool2d(2), Flatten(),
    ...                     Dense(36, 3, rng)], input_shape=(1, 8, 8))
    >>> [type(layer).__name__ for layer in model.layers]
    ['Conv2d', 'Dense']
    >>> X = rng.standard_normal((5, 1, 8, 8))
    >>> model(X).shape, bool(np.allclose(model.predict(X, batch_size=2), model(X).value))
    ((5, 3), True)
    """

    def __init__(self, modules: Sequence, input_shape: Optional[Sequence[int]] = None):
        if isinstance(modules, (str, bytes)) or not hasattr(modules, "__iter__"):
            raise TypeError(f"modules must be a sequence of modules, got {type(modules).__name__}")
        modules = list(modules)
        if not modules:
            raise ValueError("modules must contain at least one module, got an empty sequence")
        for i, m in enumerate(modules):
            if not isinstance(m, Layer) or not callable(getattr(m, "forward_array", None)):
                raise TypeError(f"modules[{i}] must have __call__, parameters() and "
                                f"forward_array(), got {type(m).__name__}")
        self.modules = modules
        self.layers = [m for m in modules if m.parameters()]
        if not self.layers:
            raise ValueError("modules must contain at least one layer with parameters")
        self.input_shape = (None if input_shape is None else
                            tuple(check_int_list(input_shape, "input_shape", low=1)))
        dtypes = {p.dtype for p in self.parameters()}
        if len(dtypes) > 1:
            raise TypeError(f"modules: all parameters must share one dtype, "
                            f"got {sorted(map(str, dtypes))}")

    def check_batch(self, X, where: str) -> np.ndarray:
        """``X`` checked as a float array ``(batch, *input_shape)`` of the parameters' dtype.

        Raises TypeError (not a float array, another dtype than the parameters') or
        ValueError (the wrong shape, NaN/Inf entries), naming ``where``.
        """
        if isinstance(X, Tensor):
            X = X.value
        X = np.asarray(X)
        if X.dtype.kind != "f":
            raise TypeError(f"{where}: X must be a float array, got dtype {X.dtype}")
        if X.ndim < 1:
            raise ValueError(f"{where}: X must have a batch axis, got shape {X.shape}")
        if self.input_shape is not None and X.shape[1:] != self.input_shape:
            raise ValueError(f"{where}: X must have shape (batch, "
                             f"{', '.join(map(str, self.input_shape))}), got {X.shape}")
        if X.dtype != self.dtype:
            raise TypeError(f"{where}: X has dtype {X.dtype} but the parameters are "
                            f"{self.dtype}; cast X explicitly (no silent upcast)")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{where}: X must be finite, got "
                             f"{int(X.size - np.count_nonzero(np.isfinite(X)))} NaN/Inf entries")
        return X

    def __call__(self, X) -> Tensor:
        """Logits of a batch, recorded for backward."""
        if not isinstance(X, Tensor):
            X = Tensor(self.check_batch(X, "Sequential"))
        for m in self.modules:
            X = m(X)
        return X

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """The logits in plain NumPy: each module's ``forward_array`` in turn."""
        for m in self.modules:
            X = m.forward_array(X)
        return X

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.modules))
        return f"Sequential([{inner}])"


def lenet5(rng, dtype=np.float64, ranks=None, init: str = "he",
           spectrum: str = "decay") -> Sequential:
    """LeNet5 of [SZKCT22]'s convolutional experiment, dense or with three low-rank layers.

    ``conv 1->20 (5x5), ReLU, max-pool 2; conv 20->50 (5x5), ReLU, max-pool 2; flatten (800);
    linear 800->500, ReLU; linear 500->10`` on ``(batch, 1, 28, 28)`` images. The layers are
    initialised in this order from ``rng``.

    Parameters
    ----------
    rng : numpy.random.Generator
    dtype : {float64, float32}, default float64
    ranks : int or sequence of 3 ints, optional
        None: dense (:class:`~lowrank_ref.conv.Conv2d`, :class:`~lowrank_ref.nn.Dense`).
        Otherwise the starting ranks of the low-rank first three layers
        (:class:`~lowrank_ref.conv.LowRankConv2d` twice, then
        :class:`~lowrank_ref.lowrank_layers.LowRankDense`), each capped at its matrix's full
        rank :data:`LENET5_FULL_RANKS` (an int applies to all three: ``ranks=500`` is the
        full-rank start of the paper). The classifier stays dense.
    init : str, default "he"
    spectrum : {"decay", "svd"} or DecaySpectrum, default "decay"
        Initial singular values of the low-rank layers (see
        :class:`~lowrank_ref.lowrank_layers.LowRankDense`); at full rank ``"svd"`` is the
        dense draw itself.

    Raises
    ------
    TypeError, ValueError
        ``ranks`` not an int >= 1 or a sequence of three; and as the layers.

    Examples
    --------
    >>> from lowrank_ref.dlrt import parameter_counts
    >>> parameter_counts(lenet5(np.random.default_rng(0)))["dense_params"]
    430500
    >>> model = lenet5(np.random.default_rng(0), ranks=500)
    >>> parameter_counts(model)["ranks"]
    [20, 50, 500, None]
    """
    check_rng(rng)
    dtype = check_float_dtype(dtype)
    if ranks is not None:
        if isinstance(ranks, (str, bytes)) or hasattr(ranks, "__iter__"):
            ranks = check_int_list(ranks, "ranks", low=1)
            if len(ranks) != 3:
                raise ValueError(f"ranks must list 3 ranks (two convolutions and the first "
                                 f"linear layer), got {ranks}")
        else:
            ranks = [check_int(ranks, "ranks", low=1)] * 3
        ranks = [min(r, full) for r, full in zip(ranks, LENET5_FULL_RANKS)]
    kw = dict(dtype=dtype, init=init)
    if ranks is None:
        convs = [Conv2d(1, 20, 5, rng, **kw), Conv2d(20, 50, 5, rng, **kw)]
        hidden = Dense(800, 500, rng, **kw)
    else:
        convs = [LowRankConv2d(1, 20, 5, ranks[0], rng, spectrum=spectrum, **kw),
                 LowRankConv2d(20, 50, 5, ranks[1], rng, spectrum=spectrum, **kw)]
        hidden = LowRankDense(800, 500, ranks[2], rng, spectrum=spectrum, **kw)
    return lenet5_from_layers([*convs, hidden, Dense(500, 10, rng, **kw)])


def lenet5_from_layers(layers: Sequence) -> Sequential:
    """LeNet5's chain around four given layers: ``conv1, ReLU, max-pool 2, conv2, ReLU,
    max-pool 2, flatten, linear1, ReLU, linear2`` on ``(batch, 1, 28, 28)`` images.

    For starts that :func:`lenet5` does not draw itself (e.g. the decayed spectra of
    :mod:`lowrank_ref.training.starts`, or vanilla ``U V^T`` layers).

    Parameters
    ----------
    layers : sequence of 4 layers
        Two convolutions with 5 x 5 kernels, 1 -> 20 and 20 -> 50 channels (any of
        :class:`~lowrank_ref.conv.Conv2d`, :class:`~lowrank_ref.conv.LowRankConv2d`,
        :class:`~lowrank_ref.conv.FactorizedConv2d`), then two matrix layers 800 -> 500 and
        500 -> 10: matrices :data:`LENET5_MATRICES`.

    Raises
    ------
    TypeError, ValueError
        ``layers`` not a sequence of 4, a layer whose matrix ``(n_out, n_in)`` is not the
        one of :data:`LENET5_MATRICES`; and as :class:`Sequential`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = lenet5_from_layers([Conv2d(1, 20, 5, rng), Conv2d(20, 50, 5, rng),
    ...                             Dense(800, 500, rng), Dense(500, 10, rng)])
    >>> model.predict(np.zeros((2, 1, 28, 28))).shape
    (2, 10)
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be a sequence of 4 layers, got {type(layers).__name__}")
    layers = list(layers)
    if len(layers) != 4:
        raise ValueError(f"layers must hold the 4 layers of LeNet5, got {len(layers)}")
    for i, (layer, shape) in enumerate(zip(layers, LENET5_MATRICES)):
        got = (getattr(layer, "n_out", None), getattr(layer, "n_in", None))
        if got != shape:
            raise ValueError(f"layers[{i}] must have the matrix (n_out, n_in) = {shape}, got "
                             f"{got} ({type(layer).__name__})")
    for i in (0, 1):                    # the convolutions: 5 x 5, stride 1, no padding
        geometry = tuple(getattr(layers[i], name, None)
                         for name in ("kernel_size", "stride", "padding"))
        if geometry != ((5, 5), 1, 0):
            raise ValueError(f"layers[{i}] must be a 5 x 5 convolution with stride 1 and "
                             f"padding 0, got (kernel_size, stride, padding) = {geometry}")
    return Sequential([layers[0], ReLU(), MaxPool2d(2), layers[1], ReLU(), MaxPool2d(2),
                       Flatten(), layers[2], ReLU(), layers[3]], input_shape=LENET5_INPUT_SHAPE)


def low_rank_mlp(sizes, rank: int, rng: np.random.Generator, dtype=np.float64,
                 init: str = "he", dense_last: bool = True, spectrum: str = "decay") -> MLP:
    """An MLP whose layers are :class:`LowRankDense` of rank ``min(rank, n_in, n_out)``.

    Parameters
    ----------
    sizes : sequence of int
        Widths, e.g. ``[784, 500, 500, 500, 500, 10]``.
    rank : int
        Starting rank of every low-rank layer (capped at ``min(n_in, n_out)``).
    rng : numpy.random.Generator
    dtype : float32 or float64
    init : str
        Dense initialisation truncated by SVD (see :class:`LowRankDense`).
    dense_last : bool, default True
        Keep the last (classifier) layer dense, as the paper does.
    spectrum : {"decay", "svd"} or DecaySpectrum, default "decay"
        Initial singular values (see :class:`LowRankDense`).

    Raises
    ------
    TypeError, ValueError
        ``sizes`` not a sequence of at least 2 ints >= 1, ``rank`` not an int >= 1,
        ``dense_last`` not a bool, and as :class:`LowRankDense` / :class:`Dense`.

    Examples
    --------
    >>> model = low_rank_mlp([784, 500, 500, 10], rank=20, rng=np.random.default_rng(0))
    >>> [getattr(layer, "rank", None) for layer in model.layers]
    [20, 20, None]
    """
    sizes = check_int_list(sizes, "sizes", low=1, min_len=2)
    rank = check_int(rank, "rank", low=1)
    check_bool(dense_last, "dense_last")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if dense_last and i == len(sizes) - 2:
            layers.append(Dense(n_in, n_out, rng, dtype=dtype, init=init))
        else:
            layers.append(LowRankDense(n_in, n_out, min(rank, n_in, n_out), rng, dtype=dtype,
                                       init=init, spectrum=spectrum))
    return MLP(layers)


def parameter_counts(model: Network) -> dict:
    """Parameter counts and compression rates as defined in [SZKCT22] (the MNIST table).

    Biases are excluded. Every layer is counted as its matrix ``(n_out, n_in)``: for a
    convolution the kernel matrix ``(c_out, c_in kh kw)``. For a low-rank layer of rank ``r``:

    * evaluation parameters ``r (n_in + n_out)`` (the factors ``U S`` and ``V``);
    * training parameters ``2 r n_in + 4 r^2 + 2 r n_out`` (augmented bases and ``S_hat``);

    dense layers count ``n_in n_out`` in both. The compression rate is
    ``c.r. = 1 - params / dense params`` with dense params ``sum n_in n_out``.

    Returns
    -------
    dict
        ``ranks`` (list, ``None`` for dense layers), ``eval_params``, ``train_params``,
        ``dense_params``, ``eval_cr``, ``train_cr`` (fractions, not percent).

    Examples
    --------
    >>> model = low_rank_mlp([784, 500, 10], rank=10, rng=np.random.default_rng(0))
    >>> c = parameter_counts(model)
    >>> c["ranks"], c["eval_params"], c["dense_params"]
    ([10, None], 17840, 397000)
    """
    if not isinstance(model, Network):
        raise TypeError(f"model must be a Network (an MLP or a Sequential), got "
                        f"{type(model).__name__}")
    ranks, ev, tr, dense = [], 0, 0, 0
    for layer in model.layers:
        n_in, n_out = layer.n_in, layer.n_out
        dense += n_in * n_out
        if isinstance(layer, LowRankLayer):
            r = layer.rank
            ranks.append(r)
            ev += r * (n_in + n_out)
            tr += 2 * r * n_in + 4 * r * r + 2 * r * n_out
        elif isinstance(layer, FactorizedLayer):     # vanilla U V^T: nothing augmented
            ranks.append(layer.rank)
            ev, tr = ev + layer.rank * (n_in + n_out), tr + layer.rank * (n_in + n_out)
        else:
            ranks.append(None)
            ev += n_in * n_out
            tr += n_in * n_out
    return {"ranks": ranks, "eval_params": ev, "train_params": tr, "dense_params": dense,
            "eval_cr": 1.0 - ev / dense, "train_cr": 1.0 - tr / dense}
