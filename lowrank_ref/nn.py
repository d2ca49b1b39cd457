"""Layers, the multilayer perceptron, the loss and the metrics.

A *layer* is any object with

* ``__call__(X: Tensor) -> Tensor`` mapping a batch ``(batch, n_in)`` to ``(batch, n_out)``
  through :mod:`lowrank_ref.ops` (so ``backward`` reaches its parameters);
* ``parameters() -> list[Tensor]``: its trainable leaves;

and optionally ``n_in``/``n_out`` (checked between consecutive layers of an :class:`MLP`)
and ``forward_array(X: ndarray) -> ndarray``, the same map in plain NumPy used by
:meth:`MLP.predict` (no graph). :class:`Dense` is the dense layer ``Z = X @ W.T + b``
(docs/design.md, section "Notation"). :class:`LowRankDense` (factors ``U (n_out, r)``, ``S (r, r)``,
``V (n_in, r)``, bias ``b (n_out,)``, forward ``((X @ V) @ S.T) @ U.T + b``, [SZKCT22])
implements the same protocol, with one trainable leaf per K-, L-, S-step mode.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from . import ops
from .autodiff import Tensor
from ._validate import as_float_array, check_float_dtype, check_int, check_rng
from .lowrank import LowRank, reorthonormalize, validate_lowrank
from .ops import cross_entropy

__all__ = ["Layer", "Dense", "LowRankDense", "MLP", "cross_entropy", "accuracy",
           "stored_parameter_counts", "check_input", "decay_spectrum", "INITS", "ACTIVATIONS"]


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
    if not isinstance(X, Tensor):
        X = np.asarray(X)
        if X.dtype.kind != "f":
            raise TypeError(f"{where}: X must be a float array, got dtype {X.dtype}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{where}: X must be finite, got "
                             f"{int(X.size - np.count_nonzero(np.isfinite(X)))} NaN/Inf entries")
        X = Tensor(X)
    if X.ndim != 2 or (n_in is not None and X.shape[1] != n_in):
        raise ValueError(f"{where}: X must have shape (batch, {n_in or 'n_in'}), got {X.shape}")
    if X.dtype != np.dtype(dtype):
        raise TypeError(f"{where}: X has dtype {X.dtype} but the parameters are "
                        f"{np.dtype(dtype)}; cast X explicitly (no silent upcast)")
    return X


def _check_bias(b, n_out: int, dtype) -> np.ndarray:
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


def _init_params(init, n_in, n_out, rng):
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

    def __init__(self, n_in: int, n_out: int, rng, dtype=np.float64, init: str = "he"):
        self.n_in = check_int(n_in, "n_in", low=1)
        self.n_out = check_int(n_out, "n_out", low=1)
        check_rng(rng)
        dt = check_float_dtype(dtype)
        W, b = _init_params(init, self.n_in, self.n_out, rng)
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


class MLP:
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

    @property
    def dtype(self):
        params = self.parameters()
        return params[0].dtype if params else None

    def parameters(self) -> list:
        """All layers' parameters, layer by layer."""
        return [p for layer in self.layers for p in layer.parameters()]

    def __call__(self, X) -> Tensor:
        """Logits ``(batch, n_out)`` of a batch ``X (batch, n_in)``, recorded for backward."""
        act = ACTIVATIONS[self.activation][0]
        for i, layer in enumerate(self.layers):
            X = layer(X)
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
        batch_size = check_int(batch_size, "batch_size", low=1)
        X = check_input(X, getattr(self.layers[0], "n_in", None), self.dtype, "MLP.predict").value
        act = ACTIVATIONS[self.activation][1]
        out = []
        for start in range(0, X.shape[0], batch_size):
            Z = X[start:start + batch_size]
            for i, layer in enumerate(self.layers):
                fwd = getattr(layer, "forward_array", None)
                Z = fwd(Z) if fwd is not None else layer(Tensor(Z)).value
                if i < len(self.layers) - 1:
                    Z = act(Z)
            out.append(Z)
        if not out:
            n_out = getattr(self.layers[-1], "n_out", 0)
            return np.zeros((0, n_out), dtype=X.dtype)
        return np.concatenate(out, axis=0)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to ``None``."""
        for p in self.parameters():
            p.grad = None

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

    Weights are the 2-d arrays (for a :class:`LowRankDense` layer its factors ``U``, ``S``,
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
    >>> stored_parameter_counts(LowRankDense(784, 500, 10, np.random.default_rng(0)))
    {'weights': 12940, 'biases': 500, 'total': 13440}
    """
    if not hasattr(model, "parameters"):
        raise TypeError(f"model must have a parameters() method, got {type(model).__name__}")
    weights = biases = 0
    for layer in getattr(model, "layers", [model]):
        if isinstance(layer, LowRankDense):
            weights += layer.U.size + layer.S.size + layer.V.size
            biases += layer.b.value.size
            continue
        for p in layer.parameters():
            if p.ndim == 1:
                biases += p.value.size
            else:
                weights += p.value.size
    return {"weights": int(weights), "biases": int(biases), "total": int(weights + biases)}


# --- the low-rank layer ----------------------------------------------------------------

#: Initial spectrum of a :class:`LowRankDense` (``spectrum="decay"``): decay length and
#: Frobenius norm as a fraction of the He draw's ``sqrt(2 n_out)``. Tuned on MNIST,
#: 784-500x4-10: with the plain SVD cut the network barely trains in the first epochs.
SPECTRUM_DECAY = 40.0
SPECTRUM_NORM = 0.6


def decay_spectrum(sigma: np.ndarray, n_out: int) -> np.ndarray:
    """The ``spectrum="decay"`` start of :class:`LowRankDense` for singular values ``sigma`` (r,).

    ``sigma_i exp(-i / SPECTRUM_DECAY)``, ``i = 0, 1, ...``, rescaled so that its 2-norm is
    ``SPECTRUM_NORM * sqrt(2 n_out)`` (the expected Frobenius norm of a He draw).

    Examples
    --------
    >>> s = decay_spectrum(np.ones(3), n_out=8)
    >>> bool(np.isclose(np.linalg.norm(s), SPECTRUM_NORM * 4.0)), bool(s[0] > s[1] > s[2])
    (True, True)
    """
    sigma = np.asarray(sigma, dtype=np.float64) * np.exp(-np.arange(len(sigma)) / SPECTRUM_DECAY)
    return sigma * (SPECTRUM_NORM * np.sqrt(2.0 * n_out) / np.linalg.norm(sigma))


class LowRankDense:
    """Low-rank layer ``Z = X @ (U S V^T)^T + b = ((X @ V) @ S.T) @ U.T + b`` ([SZKCT22]).

    The weight ``W = U S V^T`` of shape ``(n_out, n_in)`` is never formed: every product
    goes through the factors, so a forward costs ``O(batch (n_in + n_out) r + batch r^2)``.
    The layer has one *mode* per sub-problem of the KLS integrator ([SZKCT22];
    [CL22]), each with its own trainable leaf so that the engine computes exactly
    the gradient that sub-step needs:

    ===========  ======================================  =================================
    mode         forward                                 gradient of the leaf
    ===========  ======================================  =================================
    ``"W"``      ``X V0 S0^T U0^T + b`` and taps         ``dL/dZ`` is recorded (DLRT)
    ``"K"``      ``X V0 K^T + b``, leaf ``K = U0 S0``     ``dL/dK = G^T X V0 = (dL/dW) V0``
    ``"L"``      ``X L U0^T + b``, leaf ``L = V0 S0^T``   ``dL/dL = X^T G U0 = (dL/dW)^T U0``
    ``"S"``      ``X V_hat S_hat^T U_hat^T + b``          ``U_hat^T (dL/dW) V_hat``
    ===========  ======================================  =================================

    In every mode the bias ``b`` is a leaf too. In mode ``"W"`` the layer keeps, after a
    backward, ``self.taps = {"X": X, "XV": X @ V0, "dZ": dL/dZ, "dZ_U": (dL/dZ) @ U0}``
    (arrays), from which the optimisers of :mod:`lowrank_ref.dlrt` form all factor
    gradients of one step: ``(dL/dW) V0 = dZ^T XV``, ``(dL/dW)^T U0 = X^T dZ_U``.

    Parameters
    ----------
    n_in, n_out : int
    rank : int
        ``1 <= rank <= min(n_in, n_out)``.
    rng : numpy.random.Generator
    dtype : {float64, float32}
    init : str, default "he"
        The dense initialisation of :data:`INITS` is drawn and truncated to ``rank`` by an SVD
        (``U`` and ``V`` are its leading singular vectors); this dense draw happens once, at
        construction, never in training.
    spectrum : {"decay", "svd"}, default "decay"
        The diagonal of ``S``. ``"svd"``: the ``rank`` largest singular values of the dense
        draw. Those keep only part of its norm (a rank-20 cut of a 500 x 784 He matrix
        shrinks the logits of the 4-layer MNIST network by a factor ~60 and training stalls),
        and their flat Marchenko-Pastur profile makes a relative truncation keep many random
        directions. ``"decay"``: ``sigma_i exp(-i / SPECTRUM_DECAY)``, ``i = 0, 1, ...``,
        rescaled so that ``||S||_F = SPECTRUM_NORM * sqrt(2 n_out)`` (``2 n_out`` is the
        expected ``||W||_F^2`` of the He draw). The two constants were tuned on MNIST (see
        README, "Reproducing the paper's table").

    Attributes
    ----------
    U : (n_out, r) ndarray
    S : (r, r) ndarray
    V : (n_in, r) ndarray
    b : (n_out,) Tensor
    mode : str

    Examples
    --------
    >>> layer = LowRankDense(6, 4, rank=2, rng=np.random.default_rng(0))
    >>> layer.U.shape, layer.S.shape, layer.V.shape
    ((4, 2), (2, 2), (6, 2))
    >>> X = np.ones((3, 6))
    >>> np.allclose(layer(X).value, X @ (layer.U @ layer.S @ layer.V.T).T)
    True
    """

    MODES = ("W", "K", "L", "S")
    SPECTRA = ("decay", "svd")

    def __init__(self, n_in: int, n_out: int, rank: int, rng, dtype=np.float64,
                 init: str = "he", spectrum: str = "decay"):
        n_in = check_int(n_in, "n_in", low=1)
        n_out = check_int(n_out, "n_out", low=1)
        rank = check_int(rank, "rank", low=1)
        if rank > min(n_in, n_out):
            raise ValueError(f"rank must be <= min(n_in, n_out) = {min(n_in, n_out)}, got {rank}")
        check_rng(rng)
        if spectrum not in self.SPECTRA:
            raise ValueError(f"spectrum must be one of {self.SPECTRA}, got {spectrum!r}")
        dt = check_float_dtype(dtype)
        W, b = _init_params(init, n_in, n_out, rng)
        P, sigma, Qt = np.linalg.svd(W, full_matrices=False)
        sigma = sigma[:rank]
        if spectrum == "decay":
            sigma = decay_spectrum(sigma, n_out)
        self._set(LowRank(P[:, :rank].astype(dt), np.diag(sigma).astype(dt),
                          Qt[:rank].T.astype(dt)), Tensor(b.astype(dt), requires_grad=True, name="b"))
        self.init = init

    @classmethod
    def from_dense(cls, W, b, rank: int) -> "LowRankDense":
        """Best rank-``rank`` approximation of a dense weight ``W (n_out, n_in)`` (truncated SVD).

        The "train from a pruned dense network" start of [SZKCT22].

        Raises
        ------
        ValueError
            ``W`` not a finite 2-d float32/float64 array, ``b`` not of shape ``(n_out,)`` or
            not finite, ``rank`` < 1 or > ``min(W.shape)``.
        TypeError
            ``b`` not real (complex, object, strings), ``rank`` not an int.
        """
        W = np.asarray(W.value if isinstance(W, Tensor) else W)
        if W.ndim != 2 or W.dtype not in (np.float32, np.float64):
            raise ValueError(f"W must be a 2-d float32 or float64 array, got shape {W.shape} "
                             f"dtype {W.dtype}")
        if not np.all(np.isfinite(W)):
            raise ValueError(f"W must be finite, got "
                             f"{int(W.size - np.count_nonzero(np.isfinite(W)))} NaN/Inf entries")
        b = _check_bias(b, W.shape[0], W.dtype)
        rank = check_int(rank, "rank", low=1)
        if rank > min(W.shape):
            raise ValueError(f"rank must be <= min(W.shape) = {min(W.shape)}, got {rank}")
        P, sigma, Qt = np.linalg.svd(W, full_matrices=False)
        return cls.from_factors(LowRank(P[:, :rank], np.diag(sigma[:rank]).astype(W.dtype),
                                        Qt[:rank].T), b)

    @classmethod
    def from_factors(cls, Y, b) -> "LowRankDense":
        """A layer holding ``W = Y.U @ Y.S @ Y.V.T`` (a :class:`LowRank`) and bias ``b``.

        Raises
        ------
        TypeError, ValueError
            As :func:`lowrank_ref.lowrank.validate_lowrank` for ``Y`` (named ``Y``); ``b``
            not a finite real ``(n_out,)`` array.
        """
        Y = validate_lowrank(Y, "Y")
        check_float_dtype(Y.U.dtype)
        b = _check_bias(b, Y.U.shape[0], Y.U.dtype)
        layer = cls.__new__(cls)
        layer.init = "factors"
        layer._set(Y, Tensor(b, requires_grad=True, name="b"))
        return layer

    def _set(self, Y: LowRank, b: Tensor) -> None:
        self.U, self.S, self.V = Y
        self.b = b
        self.n_out, self.n_in = self.U.shape[0], self.V.shape[0]
        self.set_mode("W")

    # -- state ---------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return int(self.S.shape[0])

    @property
    def dtype(self):
        return self.b.dtype

    @property
    def factors(self) -> LowRank:
        """The current ``LowRank(U, S, V)``."""
        return LowRank(self.U, self.S, self.V)

    def set_factors(self, Y: LowRank) -> None:
        """Replace ``(U, S, V)`` (any rank) and return to mode ``"W"``.

        Shapes are checked, values are not (the optimisers call this every step, also on a
        diverging run, whose non-finite loss the training loop reports).
        """
        if not isinstance(Y, tuple) or len(Y) != 3 or not all(hasattr(a, "shape") for a in Y):
            raise TypeError(f"Y must be a LowRank(U, S, V) of arrays, got {type(Y).__name__}")
        U, S, V = Y
        if U.ndim != 2 or V.ndim != 2 or S.shape != (U.shape[1], V.shape[1]) \
                or U.shape[1] != V.shape[1]:
            raise ValueError(f"factors must have shapes (n_out, r), (r, r), (n_in, r), got "
                             f"U {U.shape}, S {S.shape}, V {V.shape}")
        if U.shape[0] != self.n_out or V.shape[0] != self.n_in:
            raise ValueError(f"factors must represent a ({self.n_out}, {self.n_in}) matrix, "
                             f"got {(U.shape[0], V.shape[0])}")
        self.U, self.S, self.V = (np.ascontiguousarray(a, dtype=self.dtype) for a in Y)
        self.set_mode("W")

    def refresh_orthonormality(self) -> None:
        """Re-orthonormalise ``U`` and ``V`` by QR, folding ``R`` into ``S`` (same weight).

        Call it before a forward pass, never between a forward and the use of its taps
        (the recorded ``X V`` belongs to the old ``V``).
        """
        self.U, self.S, self.V = reorthonormalize(self.factors)

    def set_mode(self, mode: str, U_hat=None, S_hat=None, V_hat=None) -> None:
        """Switch the trainable leaf: ``"W"``, ``"K"``, ``"L"`` or ``"S"`` (see the class doc).

        For ``"S"``, ``U_hat (n_out, k)``, ``S_hat (k, l)``, ``V_hat (n_in, l)`` default to
        the current ``U``, ``S``, ``V`` (S-only fine-tuning). Given ones must be finite real
        2-d arrays of those shapes (cast to the layer's dtype); other modes take none.

        Raises
        ------
        ValueError
            Unknown ``mode``; ``U_hat``/``S_hat``/``V_hat`` given for a mode other than
            ``"S"``, of the wrong shape or not finite.
        TypeError
            ``U_hat``/``S_hat``/``V_hat`` complex, of object or string dtype.
        """
        if not isinstance(mode, str) or mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        given = {k: v for k, v in (("U_hat", U_hat), ("S_hat", S_hat), ("V_hat", V_hat))
                 if v is not None}
        if given and mode != "S":
            raise ValueError(f"{', '.join(given)} only apply to mode 'S', got mode {mode!r}")
        given = {k: as_float_array(v, k, 2).astype(self.dtype, copy=False)
                 for k, v in given.items()}
        for k, rows in (("U_hat", self.n_out), ("V_hat", self.n_in)):
            if k in given and given[k].shape[0] != rows:
                raise ValueError(f"{k} must have {rows} rows, got shape {given[k].shape}")
        if mode == "S":
            U_hat = self.U if "U_hat" not in given else given["U_hat"]
            V_hat = self.V if "V_hat" not in given else given["V_hat"]
            S0 = self.S if "S_hat" not in given else given["S_hat"]
            if S0.shape != (U_hat.shape[1], V_hat.shape[1]):
                raise ValueError(f"S_hat must have shape {(U_hat.shape[1], V_hat.shape[1])}, "
                                 f"got {S0.shape}")
        self.mode = mode
        self.taps = None
        self.K = self.L = self.S_hat = None
        if mode == "K":
            self.K = Tensor(self.U @ self.S, requires_grad=True, name="K")
        elif mode == "L":
            self.L = Tensor(self.V @ self.S.T, requires_grad=True, name="L")
        elif mode == "S":
            self.U_hat, self.V_hat = U_hat, V_hat
            self.S_hat = Tensor(np.array(S0, dtype=self.dtype), requires_grad=True, name="S_hat")

    def parameters(self) -> list:
        """The leaves trained in the current mode: ``[b]``, ``[K, b]``, ``[L, b]`` or ``[S_hat, b]``."""
        leaf = {"W": None, "K": self.K, "L": self.L, "S": self.S_hat}[self.mode]
        return [self.b] if leaf is None else [leaf, self.b]

    # -- forward -------------------------------------------------------------------------
    def __call__(self, X) -> Tensor:
        """``(batch, n_in) -> (batch, n_out)`` through the factors, recorded for backward.

        One :func:`lowrank_ref.ops.low_rank_linear` node ``X V S^T U^T + b`` whose factors
        depend on the mode: ``(U0, S0, V0)`` in "W", ``(K, I, V0)`` in "K", ``(U0, I, L)`` in
        "L", ``(U_hat, S_hat, V_hat)`` in "S".
        """
        X = check_input(X, self.n_in, self.dtype, "LowRankDense")
        if self.mode == "K":            # X V0 K^T
            return ops.low_rank_linear(X, self.K, None, self.V, self.b)
        if self.mode == "L":            # X L U0^T
            return ops.low_rank_linear(X, self.U, None, self.L, self.b)
        if self.mode == "S":            # X V_hat S_hat^T U_hat^T
            return ops.low_rank_linear(X, self.U_hat, self.S_hat, self.V_hat, self.b)
        # mode "W": X V0 S0^T U0^T, and record the arrays of the DLRT gradients
        taps = {"X": X.value}
        self.taps = taps

        def record(dZ, dZ_U, XV):
            taps.update(dZ=dZ, dZ_U=dZ_U, XV=XV)
        return ops.low_rank_linear(X, self.U, self.S, self.V, self.b, sink=record)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """``((X @ V) @ S.T) @ U.T + b`` in plain NumPy (no graph), for evaluation."""
        return ((X @ self.V) @ self.S.T) @ self.U.T + self.b.value

    def __repr__(self) -> str:
        return (f"LowRankDense(n_in={self.n_in}, n_out={self.n_out}, rank={self.rank}, "
                f"dtype={self.dtype}, mode={self.mode!r})")
