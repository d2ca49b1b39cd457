"""Primitive ops of dense networks, each forward next to its backward (its VJP).

Every op takes :class:`~lowrank_ref.autodiff.Tensor` inputs (arrays and Python scalars are
wrapped as constants), computes its value with NumPy and returns
``make_node(value, parents, backward, name)``. ``backward(g)`` receives ``g = dL/d out``
and returns ``dL/d input`` for each input: the chain rule of backpropagation ([RHW86]
Rumelhart, Hinton & Williams 1986; [GW08] Griewank & Walther 2008). The formulas,
with ``G = dL/dZ``:

============================  ===============================================
``Z = A @ B``                 ``dA = G @ B.T``, ``dB = A.T @ G``
``Z = X @ W.T + b``           ``dX = G W``, ``dW = G^T X``, ``db = sum_i G_i`` (``linear``)
``Z = X V S^T U^T + b``       ``dX = G U S V^T``, ``dS = (G U)^T X V``, ``dU = G^T X V S^T``,
                              ``dV = X^T G U S`` (``low_rank_linear``)
``Z = A + B`` (broadcast)     ``dA = G`` and ``dB = G`` summed over broadcast axes
``Z = A - B``                 ``dA = G``, ``dB = -G`` (summed likewise)
``Z = c * A``                 ``dA = c G`` (and ``A * B`` elementwise: ``dA = G B``)
``Z = relu(A)``               ``dA = G [A > 0]`` (the subgradient 0 at the kink)
``Z = tanh(A)``               ``dA = G (1 - Z^2)``
``z = sum(A)``, ``mean(A)``   ``dA = g`` broadcast back (divided by the count)
``Z = A.T``                   ``dA = G.T``
``Y = log_softmax(A)``        ``dA = G - softmax(A) * sum(G, axis)``
``l = cross_entropy(A, y)``   ``dA = g (softmax(A) - onehot(y)) / batch``
``Z = tap(A, sink)``          ``dA = G``, and ``sink(G)`` is called with it
============================  ===============================================

A low-rank layer needs nothing more: ``((X @ V) @ S.T) @ U.T + b`` is three matmuls,
a transpose and a broadcast add, and never forms the dense ``U S V^T``. :func:`low_rank_linear`
computes exactly those products in one node (a training step then has a quarter of the
nodes; ``tests/test_ops.py`` checks it against the chain of primitive nodes).

The ops of convolutional networks (``conv2d``, ``unfold``, ``rows_to_nchw``,
``max_pool2d``, ``reshape``, ``flatten`` and the NumPy functions ``im2col``, ``col2im``) are
in :mod:`lowrank_ref.conv_ops`, with their own table; this module re-exports them, so
``ops.<name>`` reaches every op.
"""
from __future__ import annotations

import numbers

import numpy as np

from .autodiff import Tensor, as_tensor, make_node
from .conv_ops import (col2im, conv2d, flatten, im2col, max_pool2d, reshape,
                       rows_to_nchw, unfold)

__all__ = ["matmul", "linear", "low_rank_linear", "add", "sub", "mul", "relu", "tanh", "sum",
           "mean", "transpose", "log_softmax", "cross_entropy", "check_labels", "tap",
           # the convolution ops, defined in lowrank_ref.conv_ops
           "im2col", "col2im", "conv2d", "unfold", "rows_to_nchw", "max_pool2d", "reshape",
           "flatten"]


def _pair(a, b):
    """Wrap ``a``, ``b`` as tensors; a Python scalar takes the dtype of the other operand."""
    like = a.dtype if isinstance(a, Tensor) else b.dtype if isinstance(b, Tensor) else None
    return as_tensor(a, like), as_tensor(b, like)


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes NumPy broadcasting added or stretched to reach ``g.shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def matmul(a, b) -> Tensor:
    """Matrix product ``A @ B`` of 2-d tensors, ``(m, k) @ (k, n) -> (m, n)``.

    Examples
    --------
    >>> A = Tensor(np.ones((2, 3)), requires_grad=True)
    >>> matmul(A, np.arange(3.0).reshape(3, 1)).sum().backward(); A.grad
    array([[0., 1., 2.],
           [0., 1., 2.]])
    """
    a, b = _pair(a, b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: expected 2-d operands (m, k) @ (k, n), "
                         f"got {a.shape} @ {b.shape}")

    def backward(g):                  # only the gradients somebody needs
        return (g @ b.value.T if a.requires_grad else None,
                a.value.T @ g if b.requires_grad else None)
    return make_node(a.value @ b.value, (a, b), backward, "matmul")


def linear(x, w, b) -> Tensor:
    """The dense layer ``X @ W.T + b`` as one node: ``(batch, n_in), (n_out, n_in), (n_out,)``.

    Backward: ``dX = G W``, ``dW = G^T X`` (computed directly in the layout of ``W``),
    ``db = sum_i G_i``; each only if that input requires a gradient.

    Examples
    --------
    >>> W = Tensor(np.ones((2, 3)), requires_grad=True)
    >>> linear(np.ones((4, 3)), W, np.zeros(2)).sum().backward(); W.grad
    array([[4., 4., 4.],
           [4., 4., 4.]])
    """
    x, w = _pair(x, w)
    b = as_tensor(b, w.dtype)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1] or b.shape != (w.shape[0],):
        raise ValueError(f"linear: expected X (batch, n_in), W (n_out, n_in), b (n_out,), "
                         f"got {x.shape}, {w.shape}, {b.shape}")

    def backward(g):
        return (g @ w.value if x.requires_grad else None,
                g.T @ x.value if w.requires_grad else None,
                g.sum(axis=0) if b.requires_grad else None)
    Z = x.value @ w.value.T
    Z += b.value
    return make_node(Z, (x, w, b), backward, "linear")


def low_rank_linear(x, U, S, V, b, sink=None) -> Tensor:
    """The low-rank layer ``Z = ((X @ V) @ S.T) @ U.T + b`` as one node ([SZKCT22]).

    ``X (batch, n_in)``, ``U (n_out, k)``, ``S (k, l)`` or None (the identity, ``k = l``),
    ``V (n_in, l)``, ``b (n_out,)`` -> ``Z (batch, n_out)``. The weight ``U S V^T`` is never
    formed: the forward is ``Z = (X V) (U S)^T + b`` (``U S`` is only ``(n_out, l)``), which
    costs ``O(batch (n_in + n_out) l + n_out k l)``. Any of ``X, U, S, V, b``
    may be a leaf; with ``G = dL/dZ`` the backward computes ``G U`` once and from it only
    the gradients that are needed:

    * ``dU = G^T (X V S^T)``, ``dS = (G U)^T (X V)``, ``dV = X^T (G U S)``,
    * ``dX = (G U S) V^T``, ``db = sum_i G_i``.

    ``dX`` has the memory layout of ``X`` (row- or column-major; the patches of
    :func:`unfold` are column-major, the layout :func:`col2im` reads without a copy).

    The products of the chain of :func:`matmul` nodes ``X @ V``, ``@ S.T``, ``@ U.T`` and
    :func:`add` (equal to rounding), in one node instead of five, and with one pass less
    over the ``batch`` rows: ``U S`` is formed before the rows are multiplied by it.

    Parameters
    ----------
    x, U, S, V, b : Tensor or ndarray (S may be None)
    sink : callable, optional
        Called in the backward as ``sink(G, GU, XV)`` with ``G = dL/dZ`` (batch, n_out),
        ``GU = G @ U`` (batch, k) and ``XV = X @ V`` (batch, l): the arrays from which the
        DLRT optimisers form every factor gradient of a step (e.g. ``(dL/dW) V = G^T XV``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, U, S, V = (rng.standard_normal(s) for s in ((4, 5), (3, 2), (2, 2), (5, 2)))
    >>> S_leaf = Tensor(S, requires_grad=True)
    >>> Z = low_rank_linear(X, U, S_leaf, V, np.zeros(3))
    >>> bool(np.allclose(Z.value, X @ (U @ S @ V.T).T))
    True
    >>> sum(Z).backward(); bool(np.allclose(S_leaf.grad, U.T @ np.ones((3, 4)) @ X @ V))
    True
    """
    x, U = _pair(x, U)
    V = as_tensor(V, U.dtype)
    S = None if S is None else as_tensor(S, U.dtype)
    b = as_tensor(b, U.dtype)
    k, l = U.shape[-1], V.shape[-1]
    if (x.ndim != 2 or U.ndim != 2 or V.ndim != 2 or x.shape[1] != V.shape[0]
            or b.shape != (U.shape[0],) or (S is None and k != l)
            or (S is not None and S.shape != (k, l))):
        raise ValueError(f"low_rank_linear: expected X (batch, n_in), U (n_out, k), "
                         f"S (k, l) or None (k = l), V (n_in, l), b (n_out,), got "
                         f"{x.shape}, {U.shape}, {None if S is None else S.shape}, "
                         f"{V.shape}, {b.shape}")
    if sink is not None and not callable(sink):
        raise TypeError(f"low_rank_linear: sink must be callable, got {type(sink).__name__}")
    XV = x.value @ V.value
    Z = XV @ (U.value if S is None else U.value @ S.value).T      # (X V) (U S)^T
    Z += b.value

    def backward(g):
        GU = g @ U.value
        if sink is not None:
            sink(g, GU, XV)
        GUS = None
        if x.requires_grad or V.requires_grad:
            GUS = GU if S is None else GU @ S.value
        dX = None
        if x.requires_grad:       # in the layout of X: unfolded patches are column-major,
            dX = ((V.value @ GUS.T).T if _column_major(x.value)    # the layout col2im
                  else GUS @ V.value.T)                            # reads without a copy
        grads = (dX,                                                 # dX
                 (g.T @ (XV if S is None else XV @ S.value.T)        # dU
                  if U.requires_grad else None),
                 x.value.T @ GUS if V.requires_grad else None,       # dV
                 g.sum(axis=0) if b.requires_grad else None)         # db
        return grads if S is None else grads + (GU.T @ XV if S.requires_grad else None,)
    parents = (x, U, V, b) if S is None else (x, U, V, b, S)
    return make_node(Z, parents, backward, "low_rank_linear")


def _column_major(a: np.ndarray) -> bool:
    """Whether ``a`` is stored column-major (Fortran order) and not also row-major."""
    return a.flags.f_contiguous and not a.flags.c_contiguous


def _broadcast_shape(op, a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast") from None


def add(a, b) -> Tensor:
    """``A + B`` with NumPy broadcasting, e.g. ``(batch, k) + (k,)`` for a bias.

    Examples
    --------
    >>> b = Tensor(np.zeros(2), requires_grad=True)
    >>> add(np.ones((3, 2)), b).sum().backward(); b.grad
    array([3., 3.])
    """
    a, b = _pair(a, b)
    _broadcast_shape("add", a, b)

    def backward(g):
        return _unbroadcast(g, a.shape), _unbroadcast(g, b.shape)
    return make_node(a.value + b.value, (a, b), backward, "add")


def sub(a, b) -> Tensor:
    """``A - B`` with NumPy broadcasting.

    Examples
    --------
    >>> b = Tensor(np.zeros(2), requires_grad=True)
    >>> sub(np.ones((3, 2)), b).sum().backward(); b.grad
    array([-3., -3.])
    """
    a, b = _pair(a, b)
    _broadcast_shape("sub", a, b)

    def backward(g):
        return _unbroadcast(g, a.shape), -_unbroadcast(g, b.shape)
    return make_node(a.value - b.value, (a, b), backward, "sub")


def mul(a, c) -> Tensor:
    """``c * A`` for a real scalar constant ``c``, or the elementwise ``A * C`` of tensors.

    A scalar is used as a Python float, so it never changes the dtype of ``A``.

    Examples
    --------
    >>> x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> mul(x, 3.0).sum().backward(); x.grad
    array([3., 3.])
    """
    if isinstance(c, Tensor) and not isinstance(a, Tensor):
        a, c = c, a                                   # mul(2.0, x) == mul(x, 2.0)
    a = as_tensor(a)
    if isinstance(c, numbers.Real) or (isinstance(c, np.ndarray) and c.ndim == 0):
        c = float(c)

        def backward_scalar(g):
            return (g * c,)
        return make_node(a.value * c, (a,), backward_scalar, "mul")
    c = as_tensor(c)
    _broadcast_shape("mul", a, c)

    def backward(g):
        return _unbroadcast(g * c.value, a.shape), _unbroadcast(g * a.value, c.shape)
    return make_node(a.value * c.value, (a, c), backward, "mul")


def relu(x) -> Tensor:
    """``max(X, 0)`` elementwise; the derivative at 0 is taken to be 0.

    Examples
    --------
    >>> x = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    >>> relu(x).sum().backward(); x.grad
    array([0., 1.])
    """
    x = as_tensor(x)

    def backward(g):
        return (g * (x.value > 0),)
    return make_node(np.maximum(x.value, 0), (x,), backward, "relu")


def tanh(x) -> Tensor:
    """``tanh(X)`` elementwise, with ``d tanh = 1 - tanh^2``.

    Examples
    --------
    >>> x = Tensor(np.array([0.0]), requires_grad=True)
    >>> tanh(x).sum().backward(); x.grad
    array([1.])
    """
    x = as_tensor(x)
    y = np.tanh(x.value)

    def backward(g):
        return (g * (1 - y * y),)
    return make_node(y, (x,), backward, "tanh")


def _check_axis(op, x, axis):
    if axis is not None and not (isinstance(axis, numbers.Integral) and -x.ndim <= axis < x.ndim):
        raise ValueError(f"{op}: axis must be None or an int in [-{x.ndim}, {x.ndim}), "
                         f"got {axis!r}")


def sum(x, axis=None) -> Tensor:  # noqa: A001 - mirrors numpy's name
    """Sum of all entries (``axis=None``, a 0-d tensor) or along one axis.

    Examples
    --------
    >>> x = Tensor(np.ones((2, 3)), requires_grad=True)
    >>> sum(x, axis=1).value
    array([3., 3.])
    """
    x = as_tensor(x)
    _check_axis("sum", x, axis)

    def backward(g):
        g = g if axis is None else np.expand_dims(g, axis)
        return (np.broadcast_to(g, x.shape).copy(),)
    return make_node(x.value.sum(axis=axis), (x,), backward, "sum")


def mean(x, axis=None) -> Tensor:
    """Mean of all entries (``axis=None``) or along one axis.

    Examples
    --------
    >>> x = Tensor(np.ones((2, 4)), requires_grad=True)
    >>> mean(x).backward(); x.grad[0]
    array([0.125, 0.125, 0.125, 0.125])
    """
    x = as_tensor(x)
    _check_axis("mean", x, axis)
    count = x.value.size if axis is None else x.shape[axis]

    def backward(g):
        g = g if axis is None else np.expand_dims(g, axis)
        return (np.broadcast_to(g / count, x.shape).copy(),)
    return make_node(x.value.mean(axis=axis), (x,), backward, "mean")


def transpose(x) -> Tensor:
    """``X.T`` of a 2-d tensor.

    Examples
    --------
    >>> transpose(Tensor(np.zeros((2, 3)))).shape
    (3, 2)
    """
    x = as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"transpose: expected a 2-d tensor, got shape {x.shape}")

    def backward(g):
        return (g.T,)
    return make_node(x.value.T, (x,), backward, "transpose")


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    """Stable ``z - log(sum(exp(z)))``: shift by the max so every exponent is <= 0."""
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def log_softmax(x, axis: int = -1) -> Tensor:
    """``log(softmax(X))`` along ``axis`` via the shifted log-sum-exp.

    Examples
    --------
    >>> y = log_softmax(Tensor(np.array([[0.0, 0.0]])))
    >>> np.round(y.value, 4)
    array([[-0.6931, -0.6931]])
    """
    x = as_tensor(x)
    _check_axis("log_softmax", x, axis)
    y = _log_softmax(x.value, axis)

    def backward(g):
        return (g - np.exp(y) * g.sum(axis=axis, keepdims=True),)
    return make_node(y, (x,), backward, "log_softmax")


def cross_entropy(logits, labels) -> Tensor:
    """Mean cross-entropy ``-(1/batch) sum_i log softmax(logits_i)[labels_i]``.

    Stable for any finite logits (shifted log-sum-exp); the backward is the fused
    ``(softmax(logits) - onehot(labels)) / batch``.

    Parameters
    ----------
    logits : (batch, k) Tensor
    labels : (batch,) int array_like
        Class indices in ``[0, k)``.

    Returns
    -------
    () Tensor
        The loss, a 0-d tensor of the dtype of ``logits``.

    Raises
    ------
    ValueError
        If ``logits`` is not 2-d, ``labels`` has the wrong shape, or a label is out of range.
    TypeError
        If ``labels`` is not an integer array.

    Examples
    --------
    >>> z = Tensor(np.array([[2.0, 0.0], [0.0, 2.0]]), requires_grad=True)
    >>> loss = cross_entropy(z, np.array([0, 1]))
    >>> round(loss.item(), 6)
    0.126928
    >>> loss.backward(); np.round(z.grad, 4)
    array([[-0.0596,  0.0596],
           [ 0.0596, -0.0596]])
    """
    logits = as_tensor(logits)
    labels = check_labels(labels, logits.shape, "cross_entropy")
    batch = logits.shape[0]
    rows = np.arange(batch)
    logp = _log_softmax(logits.value, axis=1)
    loss = -logp[rows, labels].mean()

    def backward(g):
        d = np.exp(logp)
        d[rows, labels] -= 1
        return (d * (g / batch),)
    return make_node(loss, (logits,), backward, "cross_entropy")


def check_labels(labels, logits_shape, where) -> np.ndarray:
    """Validate integer class labels for ``(batch, k)`` logits; return them as an int array.

    Examples
    --------
    >>> check_labels([2, 0], (2, 3), "accuracy")
    array([2, 0])
    """
    if len(logits_shape) != 2:
        raise ValueError(f"{where}: logits must be 2-d (batch, classes), got shape {logits_shape}")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{where}: labels must be an integer array, got dtype {labels.dtype}")
    batch, k = logits_shape
    if batch < 1:
        raise ValueError(f"{where}: logits must have at least one row, got shape {logits_shape}")
    if labels.shape != (batch,):
        raise ValueError(f"{where}: labels must have shape ({batch},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"{where}: labels must be in [0, {k}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels



def tap(x, sink) -> Tensor:
    """Identity whose backward hands ``G = dL/dx`` to ``sink(G)`` before passing it on.

    DLRT uses it on a low-rank layer's pre-activation ``Z``: with ``G = dL/dZ`` (the
    "delta" of backpropagation) and the layer input ``X``, the gradient of the loss with
    respect to the weight is ``dL/dW = G^T X`` and every factor gradient of the K-, L- and
    S-steps is a product through the factors, e.g. ``dL/dW V0 = G^T (X V0)``, without ever
    forming the dense ``(n_out, n_in)`` matrix ([SZKCT22]).

    Parameters
    ----------
    x : Tensor
    sink : callable
        Called once per backward sweep with the gradient array (shape and dtype of ``x``).

    Examples
    --------
    >>> seen = []
    >>> x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> (tap(x, seen.append) * 3.0).sum().backward()
    >>> seen[0], x.grad
    (array([3., 3.]), array([3., 3.]))
    """
    x = as_tensor(x)
    if not callable(sink):
        raise TypeError(f"tap: sink must be callable, got {type(sink).__name__}")

    def backward(g):
        sink(g)
        return (g,)
    return make_node(x.value, (x,), backward, "tap")
