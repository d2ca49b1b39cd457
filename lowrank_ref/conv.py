"""Convolutional layers: the dense :class:`Conv2d`, the low-rank :class:`LowRankConv2d` and the
vanilla factorised :class:`FactorizedConv2d`.

A convolution with kernel ``W`` of shape ``(c_out, c_in, kh, kw)`` is the matrix
``W_mat = W.reshape(c_out, c_in * kh * kw)`` applied to the rows of unfolded input patches
(:func:`lowrank_ref.ops.unfold`, im2col [CPS06]): row ``(n, i, j)`` holds the patch under
output pixel ``(i, j)`` of image ``n``, and ``Z_rows = patches @ W_mat.T + b`` is the output
in rows, folded back to ``(batch, c_out, h_out, w_out)``.

:class:`LowRankConv2d` keeps ``W_mat = U S V^T`` factored (``U (c_out, r)``,
``V (c_in kh kw, r)``) as in [SZKCT22], and is a :class:`lowrank_ref.lowrank_layers.LowRankLayer`
whose rows are the patches: the forward is ``((patches @ V) @ S.T) @ U.T + b`` and never
forms the kernel, and the K-, L-, S- and W-modes, the taps and every optimiser of
:mod:`lowrank_ref.dlrt` work unchanged (``G = dL/dW_mat = dZ_rows^T patches`` sums over the
batch and the output positions: it *is* the gradient of the convolution's kernel).
:class:`FactorizedConv2d` is the vanilla ``W_mat = U V^T`` (plain factors, trained by plain
SGD) on the same patch rows: a :class:`lowrank_ref.factorized.FactorizedLayer`.

Images are NCHW. The matrix of a layer has ``n_in = c_in * kh * kw`` columns and
``n_out = c_out`` rows; :func:`lowrank_ref.dlrt.parameter_counts` counts it as such.

[CPS06] K. Chellapilla, S. Puri, P. Simard. High performance convolutional neural networks
for document processing. 2006.
[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import ops
from ._validate import as_float_array, check_float_dtype, check_int, check_rng
from .autodiff import Tensor
from .factorized import FactorizedLayer, decayed_factors, split_factors
from .lowrank import LowRank, validate_lowrank
from .lowrank_layers import LowRankLayer
from .nn import check_bias, check_layer_input, init_params

__all__ = ["Conv2d", "LowRankConv2d", "FactorizedConv2d", "check_images", "kernel_size_pair", "conv_output_size"]


def kernel_size_pair(kernel_size, name: str = "kernel_size") -> tuple:
    """``(kh, kw)`` from an int ``k`` (a ``k x k`` kernel) or a pair of ints, each >= 1.

    Examples
    --------
    >>> kernel_size_pair(5), kernel_size_pair((3, 2))
    ((5, 5), (3, 2))
    """
    if isinstance(kernel_size, numbers.Integral) and not isinstance(kernel_size, bool):
        k = check_int(kernel_size, name, low=1)
        return k, k
    if isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 2:
        return (check_int(kernel_size[0], f"{name}[0]", low=1),
                check_int(kernel_size[1], f"{name}[1]", low=1))
    raise TypeError(f"{name} must be an int >= 1 or a pair of them, got "
                    f"{type(kernel_size).__name__} {kernel_size!r}")


def conv_output_size(h: int, w: int, kh: int, kw: int, stride: int, padding: int) -> tuple:
    """``(h_out, w_out)``, ``h_out = (h + 2 padding - kh) // stride + 1`` (likewise ``w_out``).

    Examples
    --------
    >>> conv_output_size(28, 28, 5, 5, 1, 0)
    (24, 24)
    """
    return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1


def check_images(X, channels: int, dtype, where: str) -> Tensor:
    """Return ``X`` as a Tensor after checking it is a ``(batch, channels, h, w)`` batch of ``dtype``.

    Arrays (data) must be finite; Tensors (values between layers) are not checked for
    that, as in :func:`lowrank_ref.nn.check_input`.

    Raises
    ------
    TypeError
        ``X`` not a float array/Tensor, or of another dtype than the parameters'.
    ValueError
        ``X`` not 4-d with ``channels`` channels, or an array with NaN/Inf entries.

    Examples
    --------
    >>> check_images(np.zeros((2, 1, 5, 5)), 1, np.float64, "Conv2d").shape
    (2, 1, 5, 5)
    """
    return check_layer_input(X, dtype, where, f"(batch, {channels}, h, w)",
                             lambda s: len(s) == 4 and s[1] == channels)


class _Geometry:
    """Channels, kernel size, stride and padding shared by both convolution layers."""

    def _set_geometry(self, in_channels, out_channels, kernel_size, stride, padding) -> None:
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = kernel_size_pair(kernel_size)
        self.stride = check_int(stride, "stride", low=1)
        self.padding = check_int(padding, "padding", low=0)
        kh, kw = self.kernel_size
        self.n_in, self.n_out = self.in_channels * kh * kw, self.out_channels

    @property
    def kernel_shape(self) -> tuple:
        """``(c_out, c_in, kh, kw)``."""
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def _geometry_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")


class Conv2d(_Geometry):
    """Dense 2-d convolution of NCHW images, ``Z = conv2d(X, W) + b`` (:func:`lowrank_ref.ops.conv2d`).

    Parameters
    ----------
    in_channels, out_channels : int >= 1
    kernel_size : int or (int, int)
    rng : numpy.random.Generator
    dtype : {float64, float32}, default float64
    init : {"he", "he_normal", "glorot", "torch"}, default "he"
        As for :class:`lowrank_ref.nn.Dense` (:data:`lowrank_ref.nn.INITS`) with the fan-in
        ``n_in = c_in kh kw``: the kernel is drawn as the ``(c_out, c_in kh kw)`` matrix and
        reshaped.
    stride : int >= 1, default 1
    padding : int >= 0, default 0

    Attributes
    ----------
    W : (c_out, c_in, kh, kw) Tensor
    b : (c_out,) Tensor
    n_in, n_out : int
        The kernel matrix's shape ``(c_out, c_in kh kw)`` is ``(n_out, n_in)``.

    Raises
    ------
    TypeError, ValueError
        A size not an int (TypeError) or < 1 (``padding`` < 0), ``rng`` not a Generator,
        ``dtype`` not float32/float64, ``init`` unknown.

    Examples
    --------
    >>> layer = Conv2d(1, 4, 3, np.random.default_rng(0), padding=1)
    >>> layer.W.shape, layer(np.zeros((2, 1, 6, 6))).shape
    ((4, 1, 3, 3), (2, 4, 6, 6))
    """

    KIND = "conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, rng,
                 dtype=np.float64, init: str = "he", stride: int = 1, padding: int = 0):
        self._set_geometry(in_channels, out_channels, kernel_size, stride, padding)
        check_rng(rng)
        dt = check_float_dtype(dtype)
        W, b = init_params(init, self.n_in, self.n_out, rng)
        self.init = init
        self.W = Tensor(W.reshape(self.kernel_shape).astype(dt), requires_grad=True, name="W")
        self.b = Tensor(b.astype(dt), requires_grad=True, name="b")

    @classmethod
    def from_weights(cls, W, b, stride: int = 1, padding: int = 0) -> "Conv2d":
        """A layer holding the kernel ``W (c_out, c_in, kh, kw)`` and bias ``b (c_out,)``
        (copies, of ``W``'s dtype): a network given by plain arrays, e.g. a golden case.

        Raises
        ------
        TypeError
            ``W`` or ``b`` not real, ``stride``/``padding`` not ints.
        ValueError
            ``W`` not a finite 4-d array with every dimension >= 1, ``b`` not a finite
            ``(c_out,)`` array, ``stride`` < 1, ``padding`` < 0.

        Examples
        --------
        >>> layer = Conv2d.from_weights(np.ones((2, 1, 3, 3)), np.zeros(2), padding=1)
        >>> layer(np.ones((1, 1, 4, 4))).shape
        (1, 2, 4, 4)
        """
        W = as_float_array(W.value if isinstance(W, Tensor) else W, "W", 4)
        if min(W.shape) < 1:
            raise ValueError(f"W must have every dimension >= 1, got shape {W.shape}")
        b = check_bias(b, W.shape[0], W.dtype)
        layer = cls.__new__(cls)
        layer._set_geometry(W.shape[1], W.shape[0], W.shape[2:], stride, padding)
        layer.init = "weights"
        layer.W = Tensor(np.array(W), requires_grad=True, name="W")
        layer.b = Tensor(np.array(b), requires_grad=True, name="b")
        return layer

    @property
    def dtype(self):
        return self.W.dtype

    def __call__(self, X) -> Tensor:
        """``(batch, c_in, h, w) -> (batch, c_out, h_out, w_out)``, recorded for backward."""
        X = check_images(X, self.in_channels, self.dtype, "Conv2d")
        return ops.conv2d(X, self.W, self.b, stride=self.stride, padding=self.padding)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """The same map in plain NumPy (no graph): ``im2col(X) @ W_mat.T + b`` folded to NCHW."""
        batch, _, h, w = X.shape
        h_out, w_out = conv_output_size(h, w, *self.kernel_size, self.stride, self.padding)
        cols = ops.im2col(X, *self.kernel_size, self.stride, self.padding)
        Z = cols @ self.W.value.reshape(self.n_out, self.n_in).T + self.b.value
        return Z.reshape(batch, h_out, w_out, self.n_out).transpose(0, 3, 1, 2)

    def parameters(self) -> list:
        """``[W, b]``."""
        return [self.W, self.b]

    def __repr__(self) -> str:
        return f"Conv2d({self._geometry_repr()}, dtype={self.dtype}, init={self.init!r})"


class _PatchRows(_Geometry):
    """The rows of a matrix layer acting on convolution patches, shared by :class:`LowRankConv2d`
    and :class:`FactorizedConv2d`: the input unfolded to ``(batch h_out w_out, c_in kh kw)``,
    the output rows ``(batch h_out w_out, c_out)`` folded back to NCHW."""

    def _output_size(self, shape) -> tuple:
        return conv_output_size(shape[2], shape[3], *self.kernel_size, self.stride, self.padding)

    def to_rows(self, X):
        """The patches ``unfold(X)`` ``(batch h_out w_out, c_in kh kw)``, and the output shape."""
        X = check_images(X, self.in_channels, self.dtype, type(self).__name__)
        R = ops.unfold(X, *self.kernel_size, stride=self.stride, padding=self.padding)
        return R, (X.shape[0], *self._output_size(X.shape))

    def from_rows(self, Z: Tensor, context) -> Tensor:
        """The output rows ``(batch h_out w_out, c_out)`` as images ``(batch, c_out, h_out, w_out)``."""
        return ops.rows_to_nchw(Z, *context)

    def to_rows_array(self, X: np.ndarray):
        R = ops.im2col(X, *self.kernel_size, self.stride, self.padding)
        return R, (X.shape[0], *self._output_size(X.shape))

    def from_rows_array(self, Z: np.ndarray, context) -> np.ndarray:
        batch, h_out, w_out = context
        return Z.reshape(batch, h_out, w_out, self.n_out).transpose(0, 3, 1, 2)


class LowRankConv2d(_PatchRows, LowRankLayer):
    """Low-rank 2-d convolution: the kernel matrix ``W_mat = U S V^T`` applied to the patches ([SZKCT22]).

    ``U (c_out, r)``, ``S (r, r)``, ``V (c_in kh kw, r)``; the forward is
    ``rows_to_nchw(((unfold(X) @ V) @ S.T) @ U.T + b)`` and never forms the kernel, so it
    costs ``O(batch h_out w_out (c_in kh kw + c_out) r)`` after the unfold. The rows of
    :class:`~lowrank_ref.lowrank_layers.LowRankLayer` are the unfolded patches
    ``(batch h_out w_out, c_in kh kw)``; the modes ``"W"``, ``"K"``, ``"L"``, ``"S"``, the taps
    (``X`` is the patch matrix, ``dZ`` the output gradient in rows), ``set_factors`` and
    ``refresh_orthonormality`` are those of the base class, so the optimisers of
    :mod:`lowrank_ref.dlrt` train it as they train :class:`~lowrank_ref.lowrank_layers.LowRankDense`.

    Parameters
    ----------
    in_channels, out_channels : int >= 1
    kernel_size : int or (int, int)
    rank : int
        ``1 <= rank <= min(c_out, c_in kh kw)``.
    rng : numpy.random.Generator
    dtype : {float64, float32}, default float64
    init : str, default "he"
        The dense ``(c_out, c_in kh kw)`` draw of :data:`lowrank_ref.nn.INITS`, truncated to
        ``rank`` by an SVD (once, at construction), as for
        :class:`~lowrank_ref.lowrank_layers.LowRankDense`.
    spectrum : {"decay", "svd"} or DecaySpectrum, default "decay"
        The diagonal of ``S``, as for :class:`~lowrank_ref.lowrank_layers.LowRankDense`
        (``"svd"`` at full rank is exactly the dense draw).
    stride : int >= 1, default 1
    padding : int >= 0, default 0

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> layer = LowRankConv2d(3, 8, 3, rank=2, rng=rng, padding=1)
    >>> layer.U.shape, layer.S.shape, layer.V.shape
    ((8, 2), (2, 2), (27, 2))
    >>> X = rng.standard_normal((2, 3, 5, 5))
    >>> dense = ops.conv2d(X, layer.kernel(), layer.b.value, padding=1)
    >>> bool(np.allclose(layer(X).value, dense.value))
    True
    """

    KIND = "lowrank_conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, rank: int, rng,
                 dtype=np.float64, init: str = "he", spectrum: str = "decay",
                 stride: int = 1, padding: int = 0):
        self._set_geometry(in_channels, out_channels, kernel_size, stride, padding)
        self._init_factors(rank, rng, dtype, init, spectrum)

    @classmethod
    def from_dense(cls, W, b, rank: int, stride: int = 1, padding: int = 0) -> "LowRankConv2d":
        """Best rank-``rank`` approximation of a kernel ``W (c_out, c_in, kh, kw)`` (truncated
        SVD of its matrix ``W.reshape(c_out, -1)``).

        Raises
        ------
        TypeError
            ``W`` or ``b`` not real (complex, object, strings), a size not an int.
        ValueError
            ``W`` not a finite 4-d array, ``b`` not a finite ``(c_out,)`` array, ``rank`` < 1
            or > ``min(c_out, c_in kh kw)``, ``stride`` < 1, ``padding`` < 0.
        """
        W = as_float_array(W.value if isinstance(W, Tensor) else W, "W", 4)
        c_out, c_in, kh, kw = W.shape
        if min(W.shape) < 1:
            raise ValueError(f"W must have every dimension >= 1, got shape {W.shape}")
        b = check_bias(b, c_out, W.dtype)
        Y = cls._truncated_svd(W.reshape(c_out, c_in * kh * kw), rank)
        return cls.from_factors(Y, b, (kh, kw), stride=stride, padding=padding)

    @classmethod
    def from_factors(cls, Y, b, kernel_size, stride: int = 1, padding: int = 0) -> "LowRankConv2d":
        """A layer whose kernel matrix is ``Y.U @ Y.S @ Y.V.T`` (``(c_out, c_in kh kw)``).

        ``c_out`` is the number of rows of ``Y.U``; ``c_in = Y.V.shape[0] / (kh kw)``.

        Raises
        ------
        TypeError, ValueError
            As :func:`lowrank_ref.lowrank.validate_lowrank` for ``Y``; ``Y.V`` of a row count
            that is not a multiple of ``kh kw``; ``b`` not a finite real ``(c_out,)`` array;
            a bad ``kernel_size``, ``stride`` or ``padding``.
        """
        Y = validate_lowrank(Y, "Y")
        kh, kw = kernel_size_pair(kernel_size)
        c_out, n_in = Y.shape
        if n_in % (kh * kw):
            raise ValueError(f"Y.V must have c_in * kh * kw rows (a multiple of kh * kw = "
                             f"{kh * kw}), got {n_in}")
        layer = cls.__new__(cls)
        layer._set_geometry(n_in // (kh * kw), c_out, (kh, kw), stride, padding)
        layer.init = "factors"
        layer.load_factors(Y, b)
        return layer

    def kernel(self) -> np.ndarray:
        """The dense kernel ``(U S V^T).reshape(c_out, c_in, kh, kw)`` (tests and small problems
        only: training never forms it)."""
        return self.factors.to_dense().reshape(self.kernel_shape)

    def __repr__(self) -> str:
        return (f"LowRankConv2d({self._geometry_repr()}, rank={self.rank}, dtype={self.dtype}, "
                f"mode={self.mode!r})")


class FactorizedConv2d(_PatchRows, FactorizedLayer):
    """Vanilla factorised convolution: the kernel matrix ``W_mat = U V^T`` on the patches ([SZKCT22]).

    ``U (c_out, r)`` and ``V (c_in kh kw, r)`` are plain trainable leaves (no orthonormality,
    no core), trained by :class:`lowrank_ref.optimizers.Euclidean` with any direction rule
    (method "vanilla").
    The forward is ``rows_to_nchw((unfold(X) @ V) @ U.T + b)``, one
    :func:`lowrank_ref.ops.low_rank_linear` node on the patches, and never forms the kernel;
    the layer is :class:`~lowrank_ref.factorized.FactorizedDense` with the patches as rows,
    as :class:`LowRankConv2d` is :class:`~lowrank_ref.lowrank_layers.LowRankDense` with them.
    The official code's counterpart is ``Conv2d_lr`` of ``UV_vanilla/my_conv_vanilla.py``
    (``COMPiLELab/DLRT-Net``).

    Parameters
    ----------
    in_channels, out_channels : int >= 1
    kernel_size : int or (int, int)
    rank : int
        ``1 <= rank <= min(c_out, c_in kh kw)``.
    rng : numpy.random.Generator
    dtype : {float64, float32}, default float64
    decay : float, optional
        None (default): the start of a :class:`LowRankConv2d` drawn from the same ``rng``,
        split by :func:`~lowrank_ref.factorized.split_factors`; a number >= 1:
        :func:`~lowrank_ref.factorized.decayed_factors` with that decay (bias 0, the official
        profile at its own scale), split likewise. With None the layer represents the ``W0``
        of the :class:`LowRankConv2d` built from the same ``rng`` state; the training runs'
        decayed starts (rescaled, the same ``W0`` for both methods) are built by
        :mod:`lowrank_ref.training.starts` with :meth:`from_lowrank`.
    stride : int >= 1, default 1
    padding : int >= 0, default 0

    Attributes
    ----------
    U : (c_out, r) Tensor
    V : (c_in kh kw, r) Tensor
    b : (c_out,) Tensor

    Raises
    ------
    TypeError, ValueError
        As :class:`LowRankConv2d`; ``decay`` not a finite number >= 1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> layer = FactorizedConv2d(3, 8, 3, rank=2, rng=rng, padding=1)
    >>> layer.U.shape, layer.V.shape, [p.shape for p in layer.parameters()][2]
    ((8, 2), (27, 2), (8,))
    >>> X = rng.standard_normal((2, 3, 5, 5))
    >>> dense = ops.conv2d(X, layer.kernel(), layer.b.value, padding=1)
    >>> bool(np.allclose(layer(X).value, dense.value))
    True
    """

    KIND = "factorized_conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, rank: int, rng,
                 dtype=np.float64, decay=None, stride: int = 1, padding: int = 0):
        self._set_geometry(in_channels, out_channels, kernel_size, stride, padding)
        rank = check_int(rank, "rank", low=1)
        if rank > min(self.n_in, self.n_out):
            raise ValueError(f"rank must be <= min(n_in, n_out) = {min(self.n_in, self.n_out)}, "
                             f"got {rank}")
        check_rng(rng)
        dt = check_float_dtype(dtype)
        if decay is None:
            start = LowRankConv2d(in_channels, out_channels, kernel_size, rank, rng, dtype=dt,
                                  stride=stride, padding=padding)
            Y, b = start.factors, start.b.value
        else:
            Y = decayed_factors(self.n_out, self.n_in, rank, decay, rng, dtype=np.float64)
            b = np.zeros(self.n_out)
        A, B = split_factors(Y)
        self._set(A.astype(dt), B.astype(dt), np.asarray(b).astype(dt))

    @classmethod
    def from_lowrank(cls, Y, b, kernel_size, stride: int = 1,
                     padding: int = 0) -> "FactorizedConv2d":
        """The layer whose kernel matrix is ``Y.U @ Y.S @ Y.V.T`` (``(c_out, c_in kh kw)``), split
        by :func:`~lowrank_ref.factorized.split_factors`, bias ``b``.

        Raises
        ------
        TypeError, ValueError
            As :func:`~lowrank_ref.factorized.split_factors` for ``Y``; as :meth:`from_factors`.

        Examples
        --------
        >>> Y = LowRank.random(np.random.default_rng(2), 4, 18, 3)
        >>> layer = FactorizedConv2d.from_lowrank(Y, np.zeros(4), 3)
        >>> layer.kernel_shape, bool(np.allclose(layer.weight(), Y.to_dense()))
        ((4, 2, 3, 3), True)
        """
        A, B = split_factors(Y)
        return cls.from_factors(A, B, b, kernel_size, stride=stride, padding=padding)

    @classmethod
    def from_factors(cls, U, V, b, kernel_size, stride: int = 1,
                     padding: int = 0) -> "FactorizedConv2d":
        """The layer with kernel matrix ``U V^T`` (factors copied, any scaling) and bias ``b``.

        ``c_out`` is the number of rows of ``U``; ``c_in = V.shape[0] / (kh kw)``.

        Raises
        ------
        TypeError, ValueError
            ``U``/``V`` not finite real 2-d arrays with the same number of columns (the rank,
            ``<= min(n_in, n_out)``); ``V`` of a row count that is not a multiple of
            ``kh kw``; ``b`` not a finite real ``(c_out,)`` array; a bad ``kernel_size``,
            ``stride`` or ``padding``.
        """
        U, V, b = cls._checked_factors(U, V, b)
        kh, kw = kernel_size_pair(kernel_size)
        if V.shape[0] % (kh * kw):
            raise ValueError(f"V must have c_in * kh * kw rows (a multiple of kh * kw = "
                             f"{kh * kw}), got {V.shape[0]}")
        layer = cls.__new__(cls)
        layer._set_geometry(V.shape[0] // (kh * kw), U.shape[0], (kh, kw), stride, padding)
        layer._set(U, V, b)
        return layer

    def kernel(self) -> np.ndarray:
        """The dense kernel ``(U V^T).reshape(c_out, c_in, kh, kw)`` (tests and small problems
        only: training never forms it)."""
        return self.weight().reshape(self.kernel_shape)

    def __repr__(self) -> str:
        return (f"FactorizedConv2d({self._geometry_repr()}, rank={self.rank}, "
                f"dtype={self.dtype})")
