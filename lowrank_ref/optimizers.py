"""The optimiser base classes, and :class:`Euclidean`: every parameter as an array of its own.

An optimiser of this package is an *integrator* (how the parameters move) combined with a
*direction rule* (what they move along, given the gradient: :mod:`lowrank_ref.directions`,
:mod:`lowrank_ref.adam`). :class:`Optimizer` holds what all of them share: the model, the
learning rate ``lr`` (checked whenever it is set), the rule and its state, the loss.
:class:`LowRankOptimizer` adds what the DLRT integrators of :mod:`lowrank_ref.dlrt` share:
the low-rank layers, the plain step of the biases and the other layers, the preparation of
the factors, the divergence check, the truncation. :class:`Euclidean` trains dense
networks and vanilla ``U V^T`` factorisations (no manifold).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import ops
from ._validate import check_callable, check_real
from .directions import SGD, Direction, Momentum
from .lowrank_layers import LowRankLayer
from .nn import Network
from .steps import all_finite, kl_gradients, singular_coordinates
from .threads import uses_blas_threads
from .truncation import truncate

__all__ = ["StepResult", "Optimizer", "Euclidean", "LowRankOptimizer", "forward_backward",
           "low_rank_layers", "layer_kl_gradients", "check_model"]


class StepResult(NamedTuple):
    """What an optimiser step reports: the loss and logits at the start point ``W0``."""
    loss: float
    logits: np.ndarray


def check_model(model):
    """``model`` if it is a :class:`~lowrank_ref.nn.Network` (TypeError otherwise)."""
    if not isinstance(model, Network):
        raise TypeError(f"model must be a Network (an MLP or a Sequential), got "
                        f"{type(model).__name__}")
    return model


def _resolve_direction(direction, momentum) -> Direction:
    """The rule of ``direction=`` or its shorthand ``momentum=`` (not both)."""
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    if direction is None:
        return Momentum(momentum) if momentum else SGD()
    if not isinstance(direction, Direction):
        raise TypeError(f"direction must be a Direction (SGD, Momentum, CarriedAdam, "
                        f"PaperAdam) or None, got {type(direction).__name__}")
    if momentum:
        raise ValueError(f"momentum is a shorthand for direction=Momentum(momentum): give one "
                         f"of them, got momentum={momentum!r} and direction={direction!r}")
    return direction


def forward_backward(model: Network, X, y, loss_fn=None) -> StepResult:
    """One forward and one backward pass; gradients are *set* (not accumulated).

    ``loss_fn(outputs: Tensor, y) -> 0-d Tensor`` defaults to :func:`ops.cross_entropy`.
    """
    model.zero_grad()
    logits = model(X)
    loss = (loss_fn or ops.cross_entropy)(logits, y)
    loss.backward()
    return StepResult(float(loss.value), logits.value)


def low_rank_layers(model: Network) -> list:
    """``(index in model.layers, layer)`` of every low-rank layer (any :class:`LowRankLayer`)."""
    return [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, LowRankLayer)]


def layer_kl_gradients(layer: LowRankLayer):
    """``G V0``, ``G^T U0`` of a layer after a backward in mode "W"
    (:func:`lowrank_ref.steps.kl_gradients` of its taps)."""
    t = layer.taps
    if t is None or "dZ" not in t:
        raise RuntimeError(f"{layer!r} has no recorded gradient: run forward and backward in mode 'W'")
    return kl_gradients(t)


class Optimizer:
    """What every optimiser shares: the model, ``lr`` (checked whenever it is set), the
    direction rule and its state, the loss.

    Subclasses set ``INTEGRATOR`` (the name the direction rules check) and ``step``.
    """

    INTEGRATOR = None

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None,
                 direction: Optional[Direction] = None):
        self.model = check_model(model)
        self.lr = lr
        self.direction = _resolve_direction(direction, momentum)
        if loss_fn is not None:
            check_callable(loss_fn, "loss_fn", "loss_fn(outputs, y) -> 0-d Tensor (or None)")
        self.loss_fn = loss_fn

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = check_real(value, "lr", low=0.0, low_open=True)

    def step(self, X, y) -> StepResult:      # pragma: no cover - every subclass has one
        raise NotImplementedError

    def state_arrays(self) -> dict:
        """The direction rule's state as named arrays (checkpoints)."""
        return self.direction.state_arrays()

    def load_state_arrays(self, arrays: dict) -> None:
        self.direction.load_state_arrays(arrays)


class Euclidean(Optimizer):
    """Every parameter as an array of its own (dense networks, vanilla ``U V^T`` factors).

    One step of the direction rule per parameter and batch: SGD (optionally with
    momentum), or Adam (:mod:`lowrank_ref.adam`; both forms are textbook Adam here).

    Parameters
    ----------
    model : Network
        An MLP or a Sequential without low-rank layers (their factors are not leaves in mode "W").
    lr : float
        Learning rate ``> 0`` (the Euler step ``h``); may be changed between steps (it is
        checked whenever it is set, here and in the DLRT optimisers).
    momentum : float in [0, 1), default 0
        Shorthand for ``direction=Momentum(momentum)``.
    loss_fn : callable, optional
    direction : Direction, optional, keyword-only
        Default :class:`~lowrank_ref.directions.SGD` (or ``Momentum(momentum)``).

    Raises
    ------
    TypeError, ValueError
        ``model`` not a Network or with low-rank layers, ``lr`` not finite and > 0,
        ``momentum`` outside [0, 1) or given with ``direction``, ``loss_fn`` not callable.

    Examples
    --------
    >>> from lowrank_ref.nn import MLP
    >>> rng = np.random.default_rng(0)
    >>> model = MLP.dense([4, 8, 3], rng)
    >>> opt = Euclidean(model, lr=0.1)
    >>> X, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    >>> first = opt.step(X, y).loss
    >>> for _ in range(20): last = opt.step(X, y).loss
    >>> last < first
    True
    """

    INTEGRATOR = "euclidean"

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None, *,
                 direction: Optional[Direction] = None):
        super().__init__(model, lr, momentum, loss_fn, direction)
        if low_rank_layers(model):
            raise ValueError("model must have no low-rank layers for Euclidean (it would "
                             "train only their biases), got low-rank layers "
                             f"{[i for i, _ in low_rank_layers(model)]}: use FixedRankBUG, "
                             "AdaptiveBUG, ParallelBUG or SOnly")
        self.direction.attach(self)

    @uses_blas_threads
    def step(self, X, y) -> StepResult:
        """One step on the batch ``X`` (what the model takes), labels ``y (batch,)``."""
        res = forward_backward(self.model, X, y, self.loss_fn)
        self.direction.start_step()
        for i, p in enumerate(self.model.parameters()):
            self.direction.update(str(i), p, p.grad, self.lr)
        return res


class LowRankOptimizer(Optimizer):
    """Shared parts of the DLRT optimisers: the low-rank layers, the plain parameters
    (biases, other layers: the direction rule's plain step with the gradient at the start
    point), the preparation of the factors, the divergence check and the truncation."""

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None,
                 direction: Optional[Direction] = None):
        super().__init__(model, lr, momentum, loss_fn, direction)
        if not low_rank_layers(model):
            raise ValueError("model must contain at least one low-rank layer (LowRankDense, "
                             "LowRankConv2d)")

    def start(self, X, y, mode: str = "W", refresh: bool = False):
        """The first part of every DLRT step: the factors prepared (:meth:`prepare_factors`),
        the layers in ``mode``, one forward/backward at the start point, the gradients of
        the plain parameters kept (:meth:`plain_gradients`), the rule's step begun.
        Returns the :class:`StepResult` and those gradients (for :meth:`apply_plain`)."""
        self.prepare_factors(refresh)
        self.set_modes(mode)
        res = forward_backward(self.model, X, y, self.loss_fn)
        plain = self.plain_gradients()
        self.direction.start_step()
        return res, plain

    def plain_gradients(self) -> list:
        """``(key, tensor, grad)``, copied at the start point, of every parameter trained as
        an array: the bias of a low-rank layer, all parameters of any other layer."""
        out = []
        for i, layer in enumerate(self.model.layers):
            params = [layer.b] if isinstance(layer, LowRankLayer) else layer.parameters()
            out += [(f"{i}.{p.name or j}", p, p.grad.copy()) for j, p in enumerate(params)]
        return out

    def apply_plain(self, grads) -> None:
        for key, p, g in grads:
            self.direction.update(key, p, g, self.lr)

    def set_modes(self, mode: str) -> None:
        for _, layer in low_rank_layers(self.model):
            layer.set_mode(mode)

    def prepare_factors(self, refresh: bool) -> None:
        """Before a step: re-orthonormalise the factors (``refresh``: the adaptive steps keep
        ``U0`` as a block of ``U_hat``), and write them in singular coordinates if the rule
        keeps a coordinatewise state (the weights do not change)."""
        coordinates = self.direction.singular_coordinates
        for _, layer in low_rank_layers(self.model):
            if coordinates:
                layer.set_factors(singular_coordinates(layer.factors))
            elif refresh:
                layer.refresh_orthonormality()      # same weight, orthonormal to rounding

    def check_finite(self, layer, what: str, *arrays) -> None:
        """FloatingPointError (the training loop reports divergence) on non-finite values."""
        if not all_finite(*arrays):
            raise FloatingPointError(f"{type(self).__name__}: the {what} of {layer!r} gave "
                                     f"non-finite values (lr {self.lr:g} too large?)")

    def truncate_layer(self, layer, U_hat, S_hat, V_hat, max_rank: int, tau: float,
                       min_rank: int, observer=None) -> None:
        """Set the layer to ``truncate(U_hat, S_hat, V_hat, tau)`` (relative), ranks clamped to
        ``[min(min_rank, max_rank), max_rank]``; ``observer(S_hat)`` first if given."""
        self.check_finite(layer, "S-step", S_hat)
        if observer is not None:
            observer(S_hat)
        layer.set_factors(truncate(U_hat, S_hat, V_hat, tau, relative=True,
                                   min_rank=min(min_rank, max_rank), max_rank=max_rank,
                                   check=False))
