"""Layers, the multilayer perceptron, the loss and the metrics.

A *layer* is any object with

* ``__call__(X: Tensor) -> Tensor`` mapping a batch (``(batch, n_in)`` for a dense layer,
  images ``(batch, c, h, w)`` for a convolution) to its output through
  :mod:`lowrank_ref.ops` (so ``backward`` reaches its parameters);
* ``parameters() -> list[Tensor]``: its trainable leaves;

and optionally ``n_in``/``n_out`` (the shape ``(n_out, n_in)`` of its weight matrix;
checked between consecutive layers of an :class:`MLP`; a convolution's is its kernel
matrix) and ``forward_array(X: ndarray) -> ndarray``, the same map in plain NumPy used by
:meth:`Network.predict` (no graph). :class:`Dense` is the dense layer ``Z = X @ W.T + b``
(docs/design.md, section "Notation"). The low-rank layers of DLRT
(:class:`lowrank_ref.lowrank_layers.LowRankLayer`: :class:`~lowrank_ref.lowrank_layers.LowRankDense`
with factors ``U (n_out, r)``, ``S (r, r)``, ``V (n_in, r)``, bias ``b (n_out,)``, forward
``((X @ V) @ S.T) @ U.T + b``, [SZKCT22]; :class:`lowrank_ref.conv.LowRankConv2d`)
implement the same protocol, with one trainable leaf per K-, L-, S-step mode.

A *network* (:class:`Network`) is what the optimisers, the training loop and the checkpoints
take: :class:`MLP` (layers with one activation between them) and
:class:`lowrank_ref.networks.Sequential` (any chain of layers and parameter-free modules,
e.g. LeNet5). Its ``layers`` lists the layers with parameters, in order; the optimisers,
:func:`lowrank_ref.dlrt.parameter_counts` and the checkpoints iterate it.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from . import ops
from .autodiff import Tensor
from ._validate import as_float_array, check_float_dtype, check_int, check_rng
from .ops import cross_entropy

__all__ = ["Layer", "Network", "Dense", "MLP", "cross_entropy", "accuracy", "stored_parameter_counts",
           "check_input", "check_layer_input", "BatchRows", "check_bias", "init_params", "INITS",
           "ACTIVATIONS"]


@runtime_checkable
class Layer(Protocol):
    """What :class:`MLP` needs of a layer (``forward_array``, ``n_in``, ``n_out`` optional)."""

    def __call__(self, X: Tensor) -> Tensor: ...

    def parameters(self) -> list: ...


def check_input(X, n_in, dtype, where: str) -> Tensor:
    """Return ``X`` as a Tensor after checking it is a ``(batch, n_in)`` batch of ``dtype``.

    Parameters
    ----------
    X : (batch, n_in) Tensor or ndarray
    n_in : int or None
        Expected number of columns (``None``: any).
    dtype : numpy dtype
        The parameters' dtype; ``X`` must have it (no silent upcast).
    where : str
        Name of the caller, for messages.

    Raises
    ------
    TypeError
        If ``X`` is not a float array/Tensor of ``dtype``.
    ValueError
        If ``X`` is not 2-d with ``n_in`` columns, or is an array (data, not a Tensor of the
        graph) with NaN or Inf entries. Tensors are not checked: the values between layers
        of a diverging network may be non-finite, and training reports that itself.

    Examples
    --------
    >>> check_input(np.zeros((2, 3)), 3, np.float64, "Dense").shape
    (2, 3)
    """
    return check_layer_input(X, dtype, where, f"(batch, {n_in or 'n_in'})",
                             lambda s: len(s) == 2 and (n_in is None or s[1] == n_in))


def check_layer_input(X, dtype, where: str, expected: str, shape_ok) -> Tensor:
    """The input check of every layer: an array (data) must be a finite float array, and
    becomes a Tensor; a Tensor (values between layers, which may be non-finite in a diverging
    network: training reports that) is taken as it is; then ``shape_ok(X.shape)`` must hold
    (ValueError naming ``expected``) and ``X`` must have ``dtype`` (TypeError: no silent
    upcast). Used by :func:`check_input` and :func:`lowrank_ref.conv.check_images`.
    """
    if not isinstance(X, Tensor):
        X = np.asarray(X)
        if X.dtype.kind != "f":
            raise TypeError(f"{where}: X must be a float array, got dtype {X.dtype}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{where}: X must be finite, got "
                             f"{int(X.size - np.count_nonzero(np.isfinite(X)))} NaN/Inf entries")
        X = Tensor(X)
    if not shape_ok(X.shape):
        raise ValueError(f"{where}: X must have shape {expected}, got {X.shape}")
    if X.dtype != np.dtype(dtype):
        raise TypeError(f"{where}: X has dtype {X.dtype} but the parameters are "
                        f"{np.dtype(dtype)}; cast X explicitly (no silent upcast)")
    return X



class BatchRows:
    """The rows of a matrix layer are its input batch: ``X (batch, n_in)``, checked by
    :func:`check_input`, is multiplied as it is and the output rows are the output. Shared by
    :class:`~lowrank_ref.lowrank_layers.LowRankDense` and
    :class:`~lowrank_ref.factorized.FactorizedDense` (the convolutions unfold patches
    instead, :mod:`lowrank_ref.conv`)."""

    def to_rows(self, X):
        """``(Tensor R (batch, n_in), None)``: the input checked, as rows."""
        return check_input(X, self.n_in, self.dtype, type(self).__name__), None

    def from_rows(self, Z: Tensor, context) -> Tensor:
        return Z

    def to_rows_array(self, X: np.ndarray):
        return X, None

    def from_rows_array(self, Z: np.ndarray, context) -> np.ndarray:
        return Z

def check_bias(b, n_out: int, dtype) -> np.ndarray:
    """``b`` as a finite real ``(n_out,)`` array of ``dtype`` (TypeError/ValueError naming b)."""
    b = as_float_array(b.value if isinstance(b, Tensor) else b, "b", 1)
    if b.shape != (n_out,):
        raise ValueError(f"b must have shape ({n_out},), got {b.shape}")
    return b.astype(dtype)


#: Initialisations ``(W, b)`` for a layer ``(n_out, n_in)``, drawn in float64 then cast
#: (so float32 and float64 models from one seed agree to float32 rounding):
#:
#: * ``"he"``: Kaiming-uniform for ReLU, ``W ~ U(-sqrt(6/n_in), sqrt(6/n_in))`` (variance
#:   ``2/n_in``; He et al., ICCV 2015), ``b = 0``;
#: * ``"he_normal"``: ``W ~ N(0, 2/n_in)``, ``b = 0``;
#: * ``"glorot"``: ``W ~ U(-sqrt(6/(n_in+n_out)), +sqrt(6/(n_in+n_out)))`` (Glorot & Bengio,
#:   AISTATS 2010), ``b = 0``;
#: * ``"torch"``: PyTorch's ``nn.Linear`` default, ``W, b ~ U(-1/sqrt(n_in), 1/sqrt(n_in))``.
INITS = ("he", "he_normal", "glorot", "torch")


def init_params(init, n_in, n_out, rng):
    if init == "he":
        a = np.sqrt(6.0 / n_in)
        return rng.uniform(-a, a, (n_out, n_in)), np.zeros(n_out)
    if init == "he_normal":
        return rng.normal(0.0, np.sqrt(2.0 / n_in), (n_out, n_in)), np.zeros(n_out)
    if init == "glorot":
        a = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-a, a, (n_out, n_in)), np.zeros(n_out)
    if init == "torch":
        a = 1.0 / np.sqrt(n_in)
        return rng.uniform(-a, a, (n_out, n_in)), rng.uniform(-a, a, n_out)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


class Dense:
    """Dense layer ``Z = X @ W.T + b`` (the PyTorch convention; docs/design.md, section "Notation").

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    rng : numpy.random.Generator
    dtype : {float64, float32}, default float64
    init : {"he", "he_normal", "glorot", "torch"}, default "he"
        See :data:`INITS`; the default draws ``W ~ U(-sqrt(6/n_in), sqrt(6/n_in))``, ``b = 0``.

    Attributes
    ----------
    W : (n_out, n_in) Tensor
    b : (n_out,) Tensor

    Raises
    ------
    TypeError
        If ``n_in``/``n_out`` are not ints, ``rng`` is not a Generator, or ``dtype`` is
        not float32/float64.
    ValueError
        If a width is < 1 or ``init`` is unknown.

    Examples
    --------
    >>> layer = Dense(3, 2, np.random.default_rng(0))
    >>> layer.W.shape, layer.b.shape
    ((2, 3), (2,))
    >>> Z = layer(np.ones((4, 3)))
    >>> Z.shape
    (4, 2)
    >>> ops.sum(Z).backward(); layer.b.grad
    array([4., 4.])
    """

    #: The layer's kind in a checkpoint (``layer{i}.kind``).
    KIND = "dense"

    def __init__(self, n_in: int, n_out: int, rng, dtype=np.float64, init: str = "he"):
        self.n_in = check_int(n_in, "n_in", low=1)
        self.n_out = check_int(n_out, "n_out", low=1)
        check_rng(rng)
        dt = check_float_dtype(dtype)
        W, b = init_params(init, self.n_in, self.n_out, rng)
        self.init = init
        self.W = Tensor(W.astype(dt), requires_grad=True, name="W")
        self.b = Tensor(b.astype(dt), requires_grad=True, name="b")

    @property
    def dtype(self):
        return self.W.dtype

    def __call__(self, X) -> Tensor:
        """``(batch, n_in) -> (batch, n_out)``, recorded for backward."""
        X = check_input(X, self.n_in, self.dtype, "Dense")
        return ops.linear(X, self.W, self.b)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """The same map in plain NumPy (no graph), for evaluation."""
        return X @ self.W.value.T + self.b.value

    def parameters(self) -> list:
        """``[W, b]``."""
        return [self.W, self.b]

    def __repr__(self) -> str:
        return (f"Dense(n_in={self.n_in}, n_out={self.n_out}, dtype={self.dtype}, "
                f"init={self.init!r})")


#: Activation name -> (op on Tensors, the same function on arrays).
ACTIVATIONS = {
    "relu": (ops.relu, lambda Z: np.maximum(Z, 0)),
    "tanh": (ops.tanh, np.tanh),
    "identity": (lambda Z: Z, lambda Z: Z),
}


class Network:
    """Base of the models the optimisers train: :class:`MLP` and ``networks.Sequential``.

    A subclass sets ``layers`` (the layers with parameters, in the order of the forward
    pass: what the optimisers, :func:`lowrank_ref.dlrt.parameter_counts` and the checkpoints
    iterate) and implements ``__call__(X) -> Tensor`` (the logits, recorded for backward),
    ``forward_array(X) -> ndarray`` (the same in plain NumPy) and ``check_batch(X, where)
    -> ndarray`` (the input checked: kind, shape, dtype, finite). This class adds the
    parameters, ``zero_grad``, the dtype and the batched :meth:`predict`.
    """

    layers: list

    @property
    def dtype(self):
        params = self.parameters()
        return params[0].dtype if params else None

    def parameters(self) -> list:
        """All layers' parameters, layer by layer."""
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to ``None``."""
        for p in self.parameters():
            p.grad = None

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Logits of ``X`` in plain NumPy, ``batch_size`` samples at a time (no graph).

        Parameters
        ----------
        X : ndarray
            A batch the network takes (``(n, n_in)`` for an MLP, ``(n, c, h, w)`` for a
            convolutional network), of the parameters' dtype.
        batch_size : int, default 1024

        Returns
        -------
        (n, n_classes) ndarray
        """
        batch_size = check_int(batch_size, "batch_size", low=1)
        X = self.check_batch(X, f"{type(self).__name__}.predict")
        out = [self.forward_array(X[start:start + batch_size])
               for start in range(0, X.shape[0], batch_size)]
        return np.concatenate(out, axis=0) if out else self.forward_array(X)

    def check_batch(self, X, where: str) -> np.ndarray:
        raise NotImplementedError

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MLP(Network):
    """A feed-forward network: ``layers[-1](act(... act(layers[0](X))))``.

    The activation is applied between layers, not after the last one, so the output is
    the logits. Any object implementing the :class:`Layer` protocol can be a layer
    (:class:`Dense`, a low-rank layer, ...); ``model.layers[i]`` may be replaced.

    Parameters
    ----------
    layers : sequence of Layer
    activation : {"relu", "tanh", "identity"}, default "relu"

    Raises
    ------
    TypeError
        If a layer lacks ``__call__``/``parameters`` or parameters mix dtypes.
    ValueError
        If ``layers`` is empty, widths of consecutive layers disagree, or the activation
        is unknown.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = MLP([Dense(4, 8, rng), Dense(8, 3, rng)])
    >>> X, y = rng.standard_normal((5, 4)), np.array([0, 1, 2, 0, 1])
    >>> loss = cross_entropy(model(X), y)
    >>> loss.backward()
    >>> [p.grad.shape for p in model.parameters()]
    [(8, 4), (8,), (3, 8), (3,)]
    """

    def __init__(self, layers: Sequence, activation: str = "relu"):
        layers = list(layers)
        if not layers:
            raise ValueError("layers must contain at least one layer, got an empty sequence")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must have __call__ and parameters(), "
                                f"got {type(layer).__name__}")
        for i in range(len(layers) - 1):
            n_out = getattr(layers[i], "n_out", None)
            n_in = getattr(layers[i + 1], "n_in", None)
            if n_out is not None and n_in is not None and n_out != n_in:
                raise ValueError(f"layers[{i}].n_out = {n_out} does not match "
                                 f"layers[{i + 1}].n_in = {n_in}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.layers = layers
        self.activation = activation
        dtypes = {p.dtype for p in self.parameters()}
        if len(dtypes) > 1:
            raise TypeError(f"layers: all parameters must share one dtype, "
                            f"got {sorted(map(str, dtypes))}")

    @classmethod
    def dense(cls, sizes: Sequence[int], rng, dtype=np.float64, init: str = "he",
              activation: str = "relu") -> "MLP":
        """A stack of :class:`Dense` layers of widths ``sizes``, e.g. ``[784, 500, 500, 10]``.

        Layers are initialised in order from ``rng``.

        Examples
        --------
        >>> model = MLP.dense([784, 500, 500, 500, 500, 10], np.random.default_rng(0))
        >>> stored_parameter_counts(model)["total"]
        1149010
        """
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least 2 widths, got {sizes}")
        layers = [Dense(a, b, rng, dtype=dtype, init=init) for a, b in zip(sizes[:-1], sizes[1:])]
        return cls(layers, activation=activation)

    def __call__(self, X) -> Tensor:
        """Logits ``(batch, n_out)`` of a batch ``X (batch, n_in)``, recorded for backward."""
        act = ACTIVATIONS[self.activation][0]
        for i, layer in enumerate(self.layers):
            X = layer(X)
            if i < len(self.layers) - 1:
                X = act(X)
        return X

    def check_batch(self, X, where: str) -> np.ndarray:
        """``X`` checked as a ``(batch, n_in)`` array of the parameters' dtype (:func:`check_input`)."""
        return check_input(X, getattr(self.layers[0], "n_in", None), self.dtype, where).value

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """The logits in plain NumPy: each layer's ``forward_array`` (or its graph forward)."""
        act = ACTIVATIONS[self.activation][1]
        for i, layer in enumerate(self.layers):
            fwd = getattr(layer, "forward_array", None)
            X = fwd(X) if fwd is not None else layer(Tensor(X)).value
            if i < len(self.layers) - 1:
                X = act(X)
        return X

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Logits of ``X`` in plain NumPy, ``batch_size`` rows at a time (no graph).

        Uses each layer's ``forward_array`` (falls back to ``layer(Tensor(X)).value``).

        Parameters
        ----------
        X : (n, n_in) ndarray
            Of the parameters' dtype.
        batch_size : int, default 1024

        Returns
        -------
        (n, n_out) ndarray

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> model = MLP.dense([4, 8, 3], rng)
        >>> X = rng.standard_normal((10, 4))
        >>> np.allclose(model.predict(X, batch_size=3), model(X).value)
        True
        """
        return super().predict(X, batch_size)

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.layers))
        return f"MLP([{inner}], activation={self.activation!r})"


def accuracy(logits, labels) -> float:
    """Fraction of rows whose largest logit is at the label.

    Parameters
    ----------
    logits : (batch, k) ndarray or Tensor
    labels : (batch,) int array_like, values in ``[0, k)``

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    TypeError, ValueError
        If ``labels`` is not integer, has the wrong shape or is out of range.

    Examples
    --------
    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.array([0, 1, 1]))
    0.6666666666666666
    """
    if isinstance(logits, Tensor):
        logits = logits.value
    logits = np.asarray(logits)
    labels = ops.check_labels(labels, logits.shape, "accuracy")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def stored_parameter_counts(model) -> dict:
    """Stored parameter counts of a model or layer.

    Weights are the 2-d arrays (for a low-rank layer, one with ``factors``, its ``U``, ``S``,
    ``V``: ``(n_out + n_in) r + r^2``, whatever its mode), biases the 1-d ones. (The
    evaluation/training counts of the paper are :func:`lowrank_ref.dlrt.parameter_counts`.)

    Returns
    -------
    dict
        ``{"weights": int, "biases": int, "total": int}``.

    Examples
    --------
    >>> stored_parameter_counts(Dense(784, 500, np.random.default_rng(0)))
    {'weights': 392000, 'biases': 500, 'total': 392500}
    >>> from lowrank_ref.lowrank_layers import LowRankDense
    >>> stored_parameter_counts(LowRankDense(784, 500, 10, np.random.default_rng(0)))
    {'weights': 12940, 'biases': 500, 'total': 13440}
    """
    if not hasattr(model, "parameters"):
        raise TypeError(f"model must have a parameters() method, got {type(model).__name__}")
    weights = biases = 0
    for layer in getattr(model, "layers", [model]):
        if hasattr(layer, "factors"):           # a low-rank layer: U, S, V whatever its mode
            weights += sum(a.size for a in layer.factors)
            biases += layer.b.value.size
            continue
        for p in layer.parameters():
            if p.ndim == 1:
                biases += p.value.size
            else:
                weights += p.value.size
    return {"weights": int(weights), "biases": int(biases), "total": int(weights + biases)}
