"""A small reverse-mode automatic differentiation engine (backpropagation).

Reverse mode ([GW08] Griewank & Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008,
the reverse mode) applied to neural networks is backpropagation ([RHW86] Rumelhart, Hinton &
Williams, *Learning representations by back-propagating errors*, Nature 323, 1986).
The design follows micrograd and minitorch: every value is a :class:`Tensor`; an op
(in :mod:`lowrank_ref.ops`) computes its forward value with NumPy and returns
``make_node(value, parents, backward, op)``, where ``backward(g)`` maps the gradient
``g = dL/d(output)`` to one gradient per parent (vector-Jacobian products). This file
holds only the graph and the sweep; every derivative formula lives next to its forward
in ``ops.py``.

Semantics, stated once
----------------------
* **Leaves.** A tensor made by the user (``Tensor(value, requires_grad=True)``) is a
  leaf. ``value`` is stored without copying; do not modify it in place between a forward
  and its backward (backward closures read the forward values).
* **Accumulation.** ``loss.backward()`` *adds* ``dloss/dleaf`` into ``leaf.grad`` for every
  leaf with ``requires_grad=True``: calling ``backward`` twice gives twice the gradient, and
  gradients of several losses add up, until :func:`zero_grad` (or ``Tensor.zero_grad``)
  sets ``.grad`` back to ``None``.
* **Intermediates.** Gradients of non-leaf tensors are held only during the sweep and
  freed as soon as they have been passed to the parents; their ``.grad`` stays ``None``.
  The graph itself is kept (``backward`` may be called again) until the output tensor is
  dropped.
* **No graph without gradients.** If no parent requires a gradient the result has no
  parents and no backward: evaluating with plain tensors builds nothing.
* **Shapes.** A gradient always has the shape of the tensor's value; an op whose backward
  returns another shape raises ``ValueError`` naming the op.
* **dtypes.** float64 is the reference; float32 is kept end to end. Parents of one op must
  share a dtype, and an op's value and gradients must have that dtype: a silent upcast
  (e.g. float32 -> float64) raises ``TypeError`` naming the op. Integer and boolean
  values are converted to float64 when a tensor is made.
* **Traversal.** The topological order is computed with an explicit stack (no recursion),
  so graphs of any depth work.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence

import numpy as np

__all__ = ["Tensor", "as_tensor", "make_node", "zero_grad", "topological_order"]


class Tensor:
    """A value in the computation graph, with an optional gradient ([RHW86], [GW08]).

    Parameters
    ----------
    value : array_like
        The value (stored as an ndarray without copying). Integer/boolean input becomes
        float64; float32 and float64 are kept.
    requires_grad : bool, default False
        Whether ``backward`` accumulates a gradient into ``.grad`` (leaves) and whether
        ops record a graph through this tensor.
    name : str, optional
        A label used in error messages and ``repr``.

    Attributes
    ----------
    value : ndarray
    grad : ndarray or None
        Same shape and dtype as ``value``; ``None`` until a backward reaches this leaf.
    requires_grad : bool
    name : str or None
    op : str
        ``"leaf"`` for user tensors, else the name of the op that made it.
    parents : tuple of Tensor
        Inputs of the op (empty for leaves and for results that need no gradient).

    Examples
    --------
    >>> x = Tensor(np.array([[1.0, -2.0]]), requires_grad=True, name="x")
    >>> y = (x * 3.0).sum()
    >>> y.backward()
    >>> x.grad
    array([[3., 3.]])
    >>> y.backward()          # gradients accumulate ...
    >>> x.grad
    array([[6., 6.]])
    >>> x.zero_grad()         # ... until reset
    >>> print(x.grad)
    None
    """

    __slots__ = ("value", "grad", "requires_grad", "name", "op", "parents", "_backward")
    # Make NumPy defer to Tensor's reflected operators (ndarray @ Tensor -> Tensor.__rmatmul__).
    __array_ufunc__ = None

    def __init__(self, value, requires_grad: bool = False, name: Optional[str] = None):
        value = np.asarray(value)
        if value.dtype.kind in "biu":
            value = value.astype(np.float64)
        elif value.dtype.kind != "f":
            raise TypeError(f"value must be a real (float or integer) array, got dtype "
                            f"{value.dtype}" + (f" for tensor {name!r}" if name else ""))
        self.value = value
        self.grad: Optional[np.ndarray] = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op = "leaf"
        self.parents: tuple = ()
        self._backward: Optional[Callable] = None

    # -- small conveniences ------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        return float(self.value)

    def detach(self) -> "Tensor":
        """A new leaf sharing this value, without graph and without gradient."""
        return Tensor(self.value, name=self.name)

    def zero_grad(self) -> None:
        """Set ``.grad`` to ``None`` (the next backward starts from zero)."""
        self.grad = None

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        return (f"Tensor(shape={self.shape}, dtype={self.dtype}, op={self.op!r}, "
                f"requires_grad={self.requires_grad}{label})")

    # -- operator sugar: the ops themselves live in ops.py (see _ops below) --------------
    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(self, other)

    def __truediv__(self, c):
        if isinstance(c, Tensor):
            raise TypeError("division is only defined by a scalar constant, got a Tensor")
        return _ops().mul(self, 1.0 / c)

    def __neg__(self):
        return _ops().mul(self, -1.0)

    @property
    def T(self) -> "Tensor":
        return _ops().transpose(self)

    def sum(self, axis=None) -> "Tensor":
        return _ops().sum(self, axis=axis)

    def mean(self, axis=None) -> "Tensor":
        return _ops().mean(self, axis=axis)

    # -- the reverse sweep ---------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate ``d self / d leaf`` into ``leaf.grad`` for every leaf that requires it.

        One reverse sweep over the graph in reverse topological order ([GW08]):
        each node's gradient is complete when it is visited (all its consumers come later
        in the topological order, so earlier in the sweep).

        Parameters
        ----------
        grad : array_like, optional
            Seed ``dL/d self`` with the shape of ``self.value``. Defaults to 1 for a
            one-element tensor (a scalar loss).

        Raises
        ------
        RuntimeError
            If this tensor does not require a gradient.
        ValueError
            If ``grad`` is omitted for a non-scalar tensor or has the wrong shape, or an
            op's backward returns a gradient of the wrong shape (the message names the op).
        TypeError
            If an op's backward returns a gradient of another dtype than its input.
        """
        if not self.requires_grad:
            raise RuntimeError(f"backward() called on a tensor that does not require a "
                               f"gradient ({self!r}): no leaf with requires_grad=True feeds it")
        if grad is None:
            if self.value.size != 1:
                raise ValueError(f"grad must be given for a non-scalar tensor, "
                                 f"got None for shape {self.shape}")
            grad = np.ones_like(self.value)
        else:
            grad = np.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"grad must have shape {self.shape}, got {grad.shape}")

        pending = {id(self): grad}          # gradients not yet passed on, freed as we go
        for node in reversed(topological_order(self)):
            g = pending.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:      # a leaf: accumulate
                if node.requires_grad:
                    node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            parent_grads = node._backward(g)
            for i, (parent, pg) in enumerate(zip(node.parents, parent_grads)):
                if pg is None or not parent.requires_grad:
                    continue
                pg = np.asarray(pg)
                _check_grad_of(node.op, i, parent, pg)
                key = id(parent)
                pending[key] = pg if key not in pending else pending[key] + pg


def _ops():
    """The module :mod:`lowrank_ref.ops`, imported when an operator is first used.

    The only import between the engine and its ops that points "up": ``ops`` is built on
    ``Tensor`` and ``make_node`` (it imports this module), and ``Tensor``'s operator sugar
    (``a @ b``, ``a + b``, ``x.T``, ``x.sum()``, ...) calls the ops. Importing ``ops`` at
    call time instead of at module level keeps the import graph acyclic at load time;
    nothing else in the engine depends on ``ops``.
    """
    from . import ops
    return ops


def _check_grad_of(op: str, i: int, parent: Tensor, pg: np.ndarray) -> None:
    who = f"input {i}" + (f" ({parent.name!r})" if parent.name else "")
    if pg.shape != parent.shape:
        raise ValueError(f"backward of op {op!r} returned a gradient of shape {pg.shape} "
                         f"for {who} of shape {parent.shape}")
    if pg.dtype != parent.dtype:
        raise TypeError(f"backward of op {op!r} returned a {pg.dtype} gradient for {who} "
                        f"of dtype {parent.dtype} (silent dtype change)")


def topological_order(root: Tensor) -> list:
    """Tensors reachable from ``root``, each after all of its parents (iterative DFS).

    An explicit stack replaces recursion, so a chain of any length works. A node is pushed
    twice: once to expand its parents and once (``done=True``) to be emitted after them.

    Examples
    --------
    >>> a = Tensor(1.0, requires_grad=True, name="a")
    >>> b = a * 2.0
    >>> [t.op for t in topological_order(b)]
    ['leaf', 'mul']
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if id(p) not in seen)
    return order


def as_tensor(x, dtype=None) -> Tensor:
    """``x`` if it is a Tensor, else a constant leaf (no gradient) holding ``x``.

    Python scalars take ``dtype`` (so a constant ``1.0`` next to a float32 tensor stays
    float32); arrays keep their own dtype (a mismatch is reported by the op).

    Examples
    --------
    >>> as_tensor(2.0, dtype=np.float32).dtype
    dtype('float32')
    """
    if isinstance(x, Tensor):
        return x
    if dtype is not None and np.ndim(x) == 0 and not isinstance(x, np.ndarray):
        return Tensor(np.asarray(x, dtype=dtype))
    return Tensor(x)


def make_node(value, parents: Sequence[Tensor], backward: Callable, op: str) -> Tensor:
    """The result of op ``op``: a tensor that knows its parents and its backward.

    Parameters
    ----------
    value : array_like
        The forward value.
    parents : sequence of Tensor
        The op's inputs.
    backward : callable
        ``backward(g) -> tuple`` with one entry per parent: ``dL/d parent`` (an array of the
        parent's shape and dtype) or ``None``. ``g`` is ``dL/d value``.
    op : str
        Name used in error messages.

    Raises
    ------
    TypeError
        If the parents have different dtypes, or ``value`` does not have their dtype.

    Examples
    --------
    >>> x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> y = make_node(x.value ** 2, (x,), lambda g: (2 * x.value * g,), "square")
    >>> y.sum().backward(); x.grad
    array([2., 4.])
    """
    parents = tuple(parents)
    dtypes = {p.dtype for p in parents}
    if len(dtypes) > 1:
        desc = ", ".join(f"{p.name or 'input ' + str(i)}: {p.dtype}" for i, p in enumerate(parents))
        raise TypeError(f"{op}: inputs must share one dtype (no silent upcast), got {desc}; "
                        f"cast explicitly with .astype")
    value = np.asarray(value)
    if dtypes and value.dtype != next(iter(dtypes)):
        raise TypeError(f"{op}: forward produced dtype {value.dtype} from {next(iter(dtypes))} "
                        f"inputs (silent dtype change)")
    out = Tensor(value)
    out.op = op
    if any(p.requires_grad for p in parents):
        out.requires_grad = True
        out.parents = parents
        out._backward = backward
    return out


def zero_grad(tensors: Iterable[Tensor]) -> None:
    """Set ``.grad = None`` for every tensor in ``tensors`` (e.g. ``model.parameters()``).

    Examples
    --------
    >>> w = Tensor(np.ones(2), requires_grad=True)
    >>> (w * 2.0).sum().backward(); zero_grad([w]); print(w.grad)
    None
    """
    for t in tensors:
        t.grad = None
