"""Primitive ops of convolutional networks: each forward next to its backward.

Images are NCHW: ``x (batch, c, h, w)``. A convolution is one matrix product on the
unfolded patches (im2col, [CPS06] Chellapilla, Puri & Simard, "High performance
convolutional neural networks for document processing", 2006): every output pixel is the
dot product of one flattened input patch with one flattened filter. All loops below run
over the ``kh * kw`` kernel offsets only, never over the batch or the output pixels.

The graph ops follow the contract of :mod:`lowrank_ref.ops` (which re-exports them:
``ops.conv2d`` is :func:`conv2d`); with ``G = dL/dZ``:

============================  ===============================================
``Z = conv2d(X, W, b)``       ``dW = G_mat^T C``, ``db = sum G``, ``dX = col2im(G_mat W_mat)``
``C = unfold(X, kh, kw)``     ``dX = col2im(G)`` (``C = im2col(X)``, the patches as rows)
``Y = rows_to_nchw(Z, ...)``  ``dZ = G`` transposed back to rows ``(batch*h*w, c)``
``Z = max_pool2d(X, k, s)``   ``dX = col2im`` of each window's ``G`` on its first maximum
``Z = reshape(A)``, flatten   ``dA = G`` reshaped back to the shape of ``A``
============================  ===============================================

For ``conv2d``, ``C = im2col(X)`` holds one flattened input patch per output pixel,
``W_mat = W.reshape(c_out, c_in * kh * kw)``, ``Z_mat = C W_mat^T + b`` and ``G_mat`` is
``G`` in the rows of ``Z_mat``; ``col2im`` is the adjoint of ``im2col`` ([CPS06]).
"""
from __future__ import annotations

import numbers

import numpy as np

from .autodiff import Tensor, as_tensor, make_node

__all__ = ["im2col", "col2im", "conv2d", "unfold", "rows_to_nchw", "max_pool2d", "reshape",
           "flatten"]


def _check_int(op, name, value, minimum):
    """``value`` as an int ``>= minimum``; TypeError if it is no int, ValueError if too small."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_nchw(op, name, shape):
    if len(shape) != 4:
        raise ValueError(f"{op}: {name} must be 4-d (batch, channels, height, width), "
                         f"got shape {tuple(shape)}")


def _output_size(op, x_shape, kh, kw, stride, padding, what="kernel"):
    """``(h_out, w_out)`` with ``h_out = (h + 2 padding - kh) // stride + 1`` (likewise w_out).

    Raises ValueError naming ``op`` if the window does not fit in the padded input.
    """
    hp, wp = x_shape[2] + 2 * padding, x_shape[3] + 2 * padding
    if kh > hp or kw > wp:
        raise ValueError(f"{op}: {what} (kh, kw) = ({kh}, {kw}) is larger than the padded "
                         f"input (h + 2 padding, w + 2 padding) = ({hp}, {wp})")
    return (hp - kh) // stride + 1, (wp - kw) // stride + 1


def _check_geometry(op, x_shape, kh, kw, stride, padding):
    """Validate a window geometry on an NCHW shape.

    Returns ``(kh, kw, stride, padding, (h_out, w_out))`` with the sizes as Python ints.
    """
    _check_nchw(op, "x", x_shape)
    kh = _check_int(op, "kh", kh, 1)
    kw = _check_int(op, "kw", kw, 1)
    stride = _check_int(op, "stride", stride, 1)
    padding = _check_int(op, "padding", padding, 0)
    return kh, kw, stride, padding, _output_size(op, x_shape, kh, kw, stride, padding)


def im2col(x, kh, kw, stride=1, padding=0) -> np.ndarray:
    """Unfold the ``kh x kw`` patches of an image batch into the rows of a matrix (NumPy).

    Row ``(n, i, j)`` (in that row-major order) holds the patch whose top-left corner is at
    ``(i * stride, j * stride)`` of the zero-padded image ``n``, flattened in the order
    ``(c_in, kh, kw)``: the order of ``w.reshape(c_out, c_in * kh * kw)``, so that
    ``im2col(x) @ w.reshape(c_out, -1).T`` is the convolution ([CPS06]).

    Parameters
    ----------
    x : (batch, c_in, h, w) ndarray
    kh, kw : int >= 1
        Kernel height and width.
    stride : int >= 1, default 1
    padding : int >= 0, default 0
        Zeros added on each side of both spatial axes.

    Returns
    -------
    (batch * h_out * w_out, c_in * kh * kw) ndarray
        Of the dtype of ``x``, with ``h_out = (h + 2 padding - kh) // stride + 1`` and
        ``w_out = (w + 2 padding - kw) // stride + 1``. A new array, stored column-major
        (the transpose of a C-ordered ``(c_in * kh * kw, batch * h_out * w_out)`` array):
        each column is contiguous and filled from one strided slice of the image, and the
        matrix products of :func:`conv2d` take either layout at the same speed.

    Raises
    ------
    ValueError
        If ``x`` is not 4-d, the kernel is larger than the padded input, ``kh``, ``kw`` or
        ``stride`` is < 1 or ``padding`` < 0.
    TypeError
        If ``x`` is a Tensor (pass ``x.value``) or a size is not an int.

    See Also
    --------
    col2im : the adjoint (transpose) of this linear map.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> im2col(x, 2, 2, stride=2)
    array([[ 0.,  1.,  4.,  5.],
           [ 2.,  3.,  6.,  7.],
           [ 8.,  9., 12., 13.],
           [10., 11., 14., 15.]])
    """
    if isinstance(x, Tensor):
        raise TypeError("im2col: x must be an ndarray (a NumPy helper), got a Tensor; "
                        "pass x.value")
    x = np.asarray(x)
    kh, kw, stride, padding, (h_out, w_out) = _check_geometry("im2col", x.shape, kh, kw,
                                                              stride, padding)
    batch, c_in = x.shape[:2]
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    x = x.transpose(1, 0, 2, 3)                               # (c_in, batch, h_pad, w_pad)
    # patches[c, a, b, n, i, j] = x_pad[n, c, i * stride + a, j * stride + b]: for each
    # kernel offset (a, b), entry (c, a, b) of every patch is one strided slice of the image.
    patches = np.empty((c_in, kh, kw, batch, h_out, w_out), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            patches[:, a, b] = x[:, :, a:a + stride * h_out:stride, b:b + stride * w_out:stride]
    # Stored entry-major, returned transposed (a view): row (n, i, j), column (c, a, b).
    return patches.reshape(c_in * kh * kw, batch * h_out * w_out).T


def col2im(cols, x_shape, kh, kw, stride, padding) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every patch row back onto the image it came from.

    Where patches overlap (``stride < kernel``) their entries are summed, and entries that
    land in the padding are dropped, so ``<im2col(x), C> = <x, col2im(C)>`` for all ``x``,
    ``C``. The backward of a convolution with respect to its input is
    ``col2im(dL/d cols)``.

    Parameters
    ----------
    cols : (batch * h_out * w_out, c_in * kh * kw) ndarray
        Rows and columns in the order produced by :func:`im2col`. Any memory layout;
        column-major (as :func:`im2col` returns and :func:`conv2d` passes it) saves a
        transposing copy.
    x_shape : tuple of 4 ints
        ``(batch, c_in, h, w)``, the shape of the image batch.
    kh, kw, stride, padding : int
        As for :func:`im2col`.

    Returns
    -------
    (batch, c_in, h, w) ndarray
        Of the dtype of ``cols``.

    Raises
    ------
    ValueError
        If the geometry is invalid (as for :func:`im2col`) or ``cols`` has the wrong shape.

    Examples
    --------
    Each pixel collects one entry per 2x2 patch that covers it:

    >>> col2im(np.ones((9, 4)), (1, 1, 4, 4), 2, 2, stride=1, padding=0)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    cols = np.asarray(cols)
    x_shape = tuple(x_shape)
    kh, kw, stride, padding, (h_out, w_out) = _check_geometry("col2im", x_shape, kh, kw,
                                                              stride, padding)
    batch, c_in, h, w = x_shape
    expected = (batch * h_out * w_out, c_in * kh * kw)
    if cols.shape != expected:
        raise ValueError(f"col2im: cols must have shape (batch * h_out * w_out, "
                         f"c_in * kh * kw) = {expected} for x_shape {x_shape}, "
                         f"got {cols.shape}")
    # patches[c, a, b, n, i, j] = cols[(n, i, j), (c, a, b)], as built by im2col (a view
    # when cols is stored column-major as im2col returns it, else one transposing copy)
    patches = cols.T.reshape(c_in, kh, kw, batch, h_out, w_out)
    x = np.zeros((c_in, batch, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):                 # += : overlapping patches accumulate
            x[:, :, a:a + stride * h_out:stride, b:b + stride * w_out:stride] += patches[:, a, b]
    return x[:, :, padding:padding + h, padding:padding + w].transpose(1, 0, 2, 3)


def conv2d(x, w, b=None, stride=1, padding=0) -> Tensor:
    """2-d convolution of NCHW images (strictly a cross-correlation: the kernel is not flipped).

    ``Z[n, o, i, j] = b[o] + sum_{c, a, d} x_pad[n, c, i*stride + a, j*stride + d] w[o, c, a, d]``,
    computed as one matrix product on the unfolded patches ([CPS06]):
    ``Z_mat = im2col(x) @ W_mat.T + b`` with ``W_mat = w.reshape(c_out, c_in * kh * kw)``.

    Backward, with ``G_mat = dL/dZ`` as rows ``(batch * h_out * w_out, c_out)``:
    ``dW = (G_mat^T im2col(x)).reshape(w.shape)``, ``db = sum G``,
    ``dX = col2im(G_mat W_mat)``; each only if that input requires a gradient.

    Parameters
    ----------
    x : (batch, c_in, h, w) Tensor
    w : (c_out, c_in, kh, kw) Tensor
    b : (c_out,) Tensor or None, default None
    stride : int >= 1, default 1
    padding : int >= 0, default 0
        Zeros on each side of both spatial axes.

    Returns
    -------
    (batch, c_out, h_out, w_out) Tensor
        ``h_out = (h + 2 padding - kh) // stride + 1``, ``w_out = (w + 2 padding - kw) //
        stride + 1``; dtype of the inputs.

    Raises
    ------
    ValueError
        If ``x`` or ``w`` is not 4-d, the channels of ``x`` and ``w`` differ, ``b`` is not
        ``(c_out,)``, the kernel is larger than the padded input, ``stride < 1`` or
        ``padding < 0``.
    TypeError
        If ``stride`` or ``padding`` is not an int, or the inputs' dtypes differ.

    Examples
    --------
    >>> x = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    >>> w = Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    >>> z = conv2d(x, w, np.zeros(1)); z.shape
    (1, 1, 2, 2)
    >>> z.sum().backward(); x.grad[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    like = x.dtype if isinstance(x, Tensor) else w.dtype if isinstance(w, Tensor) else None
    x, w = as_tensor(x, like), as_tensor(w, like)      # a scalar takes the other's dtype
    _check_nchw("conv2d", "x", x.shape)
    if w.ndim != 4:
        raise ValueError(f"conv2d: w must be 4-d (c_out, c_in, kh, kw), got shape {w.shape}")
    c_out, c_in, kh, kw = w.shape
    if x.shape[1] != c_in:
        raise ValueError(f"conv2d: x has c_in = {x.shape[1]} channels (shape {x.shape}) but "
                         f"w expects c_in = {c_in} (shape {w.shape})")
    if min(c_out, kh, kw) < 1:
        raise ValueError(f"conv2d: w must have c_out, kh, kw >= 1, got shape {w.shape}")
    stride = _check_int("conv2d", "stride", stride, 1)
    padding = _check_int("conv2d", "padding", padding, 0)
    if b is not None:
        b = as_tensor(b, w.dtype)
        if b.shape != (c_out,):
            raise ValueError(f"conv2d: b must have shape (c_out,) = ({c_out},), got {b.shape}")
    h_out, w_out = _output_size("conv2d", x.shape, kh, kw, stride, padding)
    batch = x.shape[0]

    cols = im2col(x.value, kh, kw, stride, padding)       # (batch*h_out*w_out, c_in*kh*kw)
    W_mat = w.value.reshape(c_out, c_in * kh * kw)
    Z = cols @ W_mat.T                                      # (batch*h_out*w_out, c_out)
    if b is not None:
        Z += b.value
    Z = np.ascontiguousarray(Z.reshape(batch, h_out, w_out, c_out).transpose(0, 3, 1, 2))
    kept_cols = cols if w.requires_grad else None          # the patches only dW needs
    del cols

    def backward(g):
        # G_mat^T: (c_out, batch*h_out*w_out), columns in the row order of cols
        G_T = g.transpose(1, 0, 2, 3).reshape(c_out, batch * h_out * w_out)
        # dcols = G_mat W_mat, formed as (W_mat^T G_mat^T)^T: stored column-major like
        # the output of im2col, the layout col2im reads without a transposing copy
        dx = (col2im((W_mat.T @ G_T).T, x.shape, kh, kw, stride, padding)
              if x.requires_grad else None)
        dw = (G_T @ kept_cols).reshape(w.shape) if w.requires_grad else None
        if b is None:
            return dx, dw
        return dx, dw, (g.sum(axis=(0, 2, 3)) if b.requires_grad else None)
    parents = (x, w) if b is None else (x, w, b)
    return make_node(Z, parents, backward, "conv2d")


def unfold(x, kh, kw, stride=1, padding=0) -> Tensor:
    """The patches of an image batch as the rows of a matrix, recorded for backward.

    The graph op of :func:`im2col`: ``C = im2col(X)``, row ``(n, i, j)`` the flattened
    ``(c_in, kh, kw)`` patch under output pixel ``(i, j)`` of image ``n``. A convolution is
    then the matrix ``W_mat = w.reshape(c_out, c_in * kh * kw)`` applied to these rows,
    ``Z_mat = C W_mat^T``, and any matrix layer (in particular the factored
    ``C V S^T U^T`` of a low-rank convolution, which never forms ``W_mat``) can act on
    them. The map is linear, so its backward is its adjoint: ``dX = col2im(G)`` (overlapping
    patches add up, entries in the padding are dropped).

    Parameters
    ----------
    x : (batch, c_in, h, w) Tensor
    kh, kw : int >= 1
    stride : int >= 1, default 1
    padding : int >= 0, default 0

    Returns
    -------
    (batch * h_out * w_out, c_in * kh * kw) Tensor
        As :func:`im2col` (stored column-major).

    Raises
    ------
    ValueError, TypeError
        As :func:`im2col`, naming ``unfold``.

    Examples
    --------
    >>> x = Tensor(np.arange(9.0).reshape(1, 1, 3, 3), requires_grad=True)
    >>> C = unfold(x, 2, 2); C.shape
    (4, 4)
    >>> C.sum().backward(); x.grad[0, 0]          # how many patches cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    x = as_tensor(x)
    kh, kw, stride, padding, _ = _check_geometry("unfold", x.shape, kh, kw, stride, padding)
    cols = im2col(x.value, kh, kw, stride, padding)

    def backward(g):
        return (col2im(g, x.shape, kh, kw, stride, padding),)
    return make_node(cols, (x,), backward, "unfold")


def rows_to_nchw(z, batch, h, w) -> Tensor:
    """Rows ``(batch * h * w, c)`` in the order ``(n, i, j)`` of :func:`unfold` -> NCHW.

    ``Y[n, k, i, j] = Z[(n, i, j), k]``: the output of a matrix layer acting on unfolded
    patches, as images of ``c`` channels (a reshape and a transpose, copied C-contiguous).
    The backward is the same permutation inverted, ``dZ[(n, i, j), k] = G[n, k, i, j]``.

    Parameters
    ----------
    z : (batch * h * w, c) Tensor
    batch, h, w : int >= 1

    Returns
    -------
    (batch, c, h, w) Tensor

    Raises
    ------
    ValueError
        If ``z`` is not 2-d with ``batch * h * w`` rows, or a size is < 1.
    TypeError
        If a size is not an int.

    Examples
    --------
    >>> z = Tensor(np.arange(8.0).reshape(4, 2))     # 1 image, 2 x 2 pixels, 2 channels
    >>> rows_to_nchw(z, 1, 2, 2).value[0]
    array([[[0., 2.],
            [4., 6.]],
    <BLANKLINE>
           [[1., 3.],
            [5., 7.]]])
    """
    z = as_tensor(z)
    batch = _check_int("rows_to_nchw", "batch", batch, 1)
    h = _check_int("rows_to_nchw", "h", h, 1)
    w = _check_int("rows_to_nchw", "w", w, 1)
    if z.ndim != 2 or z.shape[0] != batch * h * w:
        raise ValueError(f"rows_to_nchw: z must have shape (batch * h * w, c) = "
                         f"({batch * h * w}, c), got {z.shape}")
    c = z.shape[1]
    value = np.ascontiguousarray(z.value.reshape(batch, h, w, c).transpose(0, 3, 1, 2))

    def backward(g):
        return (np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(batch * h * w, c),)
    return make_node(value, (z,), backward, "rows_to_nchw")


def max_pool2d(x, size, stride=None) -> Tensor:
    """Maximum over each ``size x size`` window of NCHW images, without padding.

    ``Z[n, c, i, j] = max_{a, d < size} x[n, c, i*stride + a, j*stride + d]``. The windows
    are the rows of :func:`im2col` applied to each channel as its own image; the backward
    puts each window's gradient on one entry of its row and folds the rows back with
    :func:`col2im`, which sums where windows overlap.

    **Ties.** The whole gradient of a window goes to ONE of its maxima: the first in
    row-major order within the window (the one ``np.argmax`` of the flattened window
    picks). With overlapping windows (``stride < size``) an entry that is the chosen
    maximum of several windows receives the sum of their gradients. A window containing
    NaN has the value NaN and passes no gradient.

    Parameters
    ----------
    x : (batch, c, h, w) Tensor
    size : int >= 1
        Window height and width.
    stride : int >= 1, optional
        Defaults to ``size`` (non-overlapping windows).

    Returns
    -------
    (batch, c, h_out, w_out) Tensor
        ``h_out = (h - size) // stride + 1``, ``w_out = (w - size) // stride + 1``.

    Raises
    ------
    ValueError
        If ``x`` is not 4-d, the window is larger than the input or ``size``/``stride`` < 1.
    TypeError
        If ``size`` or ``stride`` is not an int.

    Examples
    --------
    Both windows have two tied maxima; each gradient goes to the first one:

    >>> x = Tensor(np.array([[[[1.0, 3.0, 2.0, 0.0],
    ...                         [3.0, 0.0, 1.0, 2.0]]]]), requires_grad=True)
    >>> z = max_pool2d(x, 2); z.value[0, 0]
    array([[3., 2.]])
    >>> z.sum().backward(); x.grad[0, 0]
    array([[0., 1., 1., 0.],
           [0., 0., 0., 0.]])
    """
    x = as_tensor(x)
    _check_nchw("max_pool2d", "x", x.shape)
    size = _check_int("max_pool2d", "size", size, 1)
    stride = size if stride is None else _check_int("max_pool2d", "stride", stride, 1)
    h_out, w_out = _output_size("max_pool2d", x.shape, size, size, stride, 0, what="window")
    batch, c, h, w = x.shape
    one_channel = (batch * c, 1, h, w)                    # every channel its own image
    # windows[k, m]: entry k (row-major within the window) of window m = (n, c, i, j)
    windows = im2col(x.value.reshape(one_channel), size, size, stride, 0).T
    Z_flat = windows.max(axis=0)
    kept_windows = windows if x.requires_grad else None
    del windows

    def backward(g):
        # The tie rule: walking each window in row-major order, its gradient goes to the
        # first entry equal to its maximum (the entry np.argmax picks), and only to it.
        g = g.reshape(-1)
        d_windows = np.empty_like(kept_windows)                 # (size * size, windows)
        unclaimed = np.ones(g.shape, dtype=bool)
        for k in range(size * size):
            first = kept_windows[k] == Z_flat
            first &= unclaimed
            np.multiply(g, first, out=d_windows[k])
            unclaimed &= ~first
        dx = col2im(d_windows.T, one_channel, size, size, stride, 0)   # sums overlaps
        return (dx.reshape(x.shape),)
    return make_node(Z_flat.reshape(batch, c, h_out, w_out), (x,), backward, "max_pool2d")


def reshape(x, shape) -> Tensor:
    """``X.reshape(shape)`` (one entry may be -1); the backward reshapes ``G`` back.

    Examples
    --------
    >>> reshape(Tensor(np.zeros((2, 6))), (3, -1)).shape
    (3, 4)
    """
    x = as_tensor(x)
    try:
        value = x.value.reshape(shape)
    except TypeError:
        raise TypeError(f"reshape: shape must be an int or a tuple of ints, "
                        f"got {shape!r}") from None
    except ValueError:
        raise ValueError(f"reshape: cannot reshape shape {x.shape} ({x.value.size} entries) "
                         f"to {shape!r}") from None

    def backward(g):
        return (g.reshape(x.shape),)
    return make_node(value, (x,), backward, "reshape")


def flatten(x) -> Tensor:
    """``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``, e.g. conv features into a dense layer.

    The entries of one sample keep their row-major (C) order; the backward reshapes ``G``
    back to the shape of ``x``.

    Examples
    --------
    >>> flatten(Tensor(np.zeros((2, 50, 4, 4)))).shape
    (2, 800)
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"flatten: x must have ndim >= 2 (batch, ...), got shape {x.shape}")
    features = int(np.prod(x.shape[1:]))

    def backward(g):
        return (g.reshape(x.shape),)
    return make_node(x.value.reshape(x.shape[0], features), (x,), backward, "flatten")
