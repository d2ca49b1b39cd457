"""Dynamical low-rank training (DLRT): the optimisers of [SZKCT22].

Schotthöfer, Zangrando, Kusch, Ceruti, Tudisco, "Low-rank lottery tickets: finding efficient
low-rank neural networks via matrix differential equations", NeurIPS 2022 ([SZKCT22]; its
equation numbers are not quoted: not checked against the published text). Training is the
gradient flow ``dW/dt = -dL/dW`` restricted to the manifold of rank-r matrices, ``W = U S V^T``,
integrated with the K-, L- and S-steps of the unconventional BUG integrator ([CL22]) and its
rank-adaptive version ([CKL22]). One SGD step with learning rate ``lr`` is one explicit Euler
step of length ``h = lr`` of each sub-flow. With ``G = dL/dW`` (never formed: ``G = dZ^T X``
for a layer with input ``X`` and ``dZ = dL/dZ``, so ``G V0 = dZ^T (X V0)`` etc.):

* K-step ([SZKCT22]):  ``K1 = U0 S0 - lr G V0``          -> ``U1``
* L-step ([SZKCT22]):  ``L1 = V0 S0^T - lr G^T U0``      -> ``V1``
* S-step ([SZKCT22]):  ``S1 = S~0 - lr U1^T G(W~) V1``   (Galerkin, at the new basis)

Optimisers (one ``step(X, y)`` per batch; all return the loss and logits at the start point):

* :class:`DenseSGD` -- plain (momentum) SGD of a dense network: the baseline.
* :class:`FixedRankKLS` -- fixed rank ([SZKCT22]): K and L from one backward at
  ``W0``; ``U1 = qr(K1)``, ``V1 = qr(L1)``; ``S~0 = (U1^T U0) S0 (V0^T V1)``; a second
  forward/backward at ``W~ = U1 S~0 V1^T`` gives the S-step.
* :class:`AdaptiveKLS` -- rank-adaptive ([SZKCT22], [CKL22]):
  ``U_hat = orth[U0, K1]``, ``V_hat = orth[V0, L1]``, ``S_hat0 = (U_hat^T U0) S0 (V0^T V_hat)``,
  ``S_hat1 = S_hat0 - lr U_hat^T G V_hat``, truncation to ``tau * ||S_hat1||_F``.
  ``passes=3`` runs it as published (a K-, an L- and an S-pass, 3 forward/backward);
  ``passes=1`` (the default) uses that all three passes evaluate the same weight ``W0``
  (``U_hat S_hat0 V_hat^T = W0`` because the augmented basis contains the old one), so one
  backward gives ``G V0``, ``G^T U0`` and ``U_hat^T G V_hat`` -- equal to rounding under SGD.
* :class:`SOnlySGD` -- fine-tuning of ``S`` with ``U``, ``V`` frozen ([SZKCT22]).

Biases and dense layers (the paper keeps the last layer dense) take an SGD step with the
gradient at the start point. Heavy-ball momentum (``momentum > 0``) keeps one velocity per
parameter; a low-rank layer's is a matrix in the augmented bases, re-expressed in each new
basis (:class:`~lowrank_ref.momentum.FactorMomentum`).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import ops
from ._validate import (check_bool, check_callable, check_choice, check_int, check_int_list,
                        check_rank_bounds, check_real)
from .lowrank import LowRank, augment_basis, orthonormalize
from .factorized import FactorizedLayer
from .momentum import FactorMomentum, PlainSGD
from .lowrank_layers import LowRankDense, LowRankLayer
from .nn import MLP, Dense, Network
from .threads import uses_blas_threads
from .truncation import truncate

__all__ = ["StepResult", "DenseSGD", "FixedRankKLS", "AdaptiveKLS", "SOnlySGD",
           "parameter_counts", "low_rank_mlp", "make_optimizer", "check_method_options",
           "METHODS"]

METHODS = ("dense", "fixed", "adaptive", "vanilla", "sonly")


class StepResult(NamedTuple):
    """What an optimiser step reports: the loss and logits at the start point ``W0``."""
    loss: float
    logits: np.ndarray


def _check_lr(lr):
    return check_real(lr, "lr", low=0.0, low_open=True)


def _check_momentum(momentum):
    return check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)


def _check_model(model):
    if not isinstance(model, Network):
        raise TypeError(f"model must be a Network (an MLP or a Sequential), got "
                        f"{type(model).__name__}")
    return model


def _check_loss_fn(loss_fn):
    if loss_fn is not None:
        check_callable(loss_fn, "loss_fn", "loss_fn(outputs, y) -> 0-d Tensor (or None)")
    return loss_fn


class _LearningRate:
    """The ``lr`` attribute of an optimiser, checked (finite, > 0) whenever it is set."""

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _check_lr(value)


def _forward_backward(model: Network, X: np.ndarray, y: np.ndarray, loss_fn=None) -> StepResult:
    """One forward and one backward pass; gradients are *set* (not accumulated).

    ``loss_fn(outputs: Tensor, y) -> 0-d Tensor`` defaults to :func:`ops.cross_entropy`.
    """
    model.zero_grad()
    logits = model(X)
    loss = (loss_fn or ops.cross_entropy)(logits, y)
    loss.backward()
    return StepResult(float(loss.value), logits.value)


class DenseSGD(_LearningRate):
    """SGD (optionally with momentum) of every parameter of a dense network.

    Parameters
    ----------
    model : Network
        An MLP or a Sequential without low-rank layers (their factors are not leaves in mode "W").
    lr : float
        Learning rate ``> 0`` (the Euler step ``h``); may be changed between steps (it is
        checked whenever it is set, here and in the DLRT optimisers).
    momentum : float in [0, 1), default 0
    loss_fn : callable, optional

    Raises
    ------
    TypeError, ValueError
        ``model`` not a Network or with low-rank layers, ``lr`` not finite and > 0,
        ``momentum`` outside [0, 1), ``loss_fn`` not callable.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = MLP.dense([4, 8, 3], rng)
    >>> opt = DenseSGD(model, lr=0.1)
    >>> X, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    >>> first = opt.step(X, y).loss
    >>> for _ in range(20): last = opt.step(X, y).loss
    >>> last < first
    True
    """

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None):
        self.model = _check_model(model)
        if _low_rank_layers(model):
            raise ValueError("model must have no low-rank layers for DenseSGD (it would "
                             "train only their biases), got low-rank layers "
                             f"{[i for i, _ in _low_rank_layers(model)]}: use FixedRankKLS, "
                             "AdaptiveKLS or SOnlySGD")
        self.lr = lr
        self.sgd = PlainSGD(_check_momentum(momentum))
        self.loss_fn = _check_loss_fn(loss_fn)

    @uses_blas_threads
    def step(self, X: np.ndarray, y: np.ndarray) -> StepResult:
        """One SGD step on the batch ``X`` (what the model takes), labels ``y (batch,)``."""
        res = _forward_backward(self.model, X, y, self.loss_fn)
        for i, p in enumerate(self.model.parameters()):
            self.sgd.update(str(i), p, p.grad, self.lr)
        return res

    def state_arrays(self) -> dict:
        return self.sgd.state_arrays()

    def load_state_arrays(self, arrays: dict) -> None:
        self.sgd.load_state_arrays(arrays)


# --- networks and their parameter counts ------------------------------------------------

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
    spectrum : {"decay", "svd"}, default "decay"
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
    _check_model(model)
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


# --- the DLRT optimisers ------------------------------------------------------------------

def _low_rank_layers(model):
    """``(index in model.layers, layer)`` of every low-rank layer (any :class:`LowRankLayer`)."""
    return [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, LowRankLayer)]


class _DLRTBase(_LearningRate):
    """Shared parts: the model check, ``lr``, momentum, SGD of biases and dense layers."""

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None):
        self.model = _check_model(model)
        self.lr = lr
        momentum = _check_momentum(momentum)
        self.sgd = PlainSGD(momentum)
        self.factor_momentum = FactorMomentum(momentum)
        self.loss_fn = _check_loss_fn(loss_fn)
        if not _low_rank_layers(model):
            raise ValueError("model must contain at least one low-rank layer (LowRankDense, "
                             "LowRankConv2d)")

    def _dense_and_bias_grads(self) -> list:
        """``(key, tensor, grad)``, copied at the start point, of every parameter trained by
        SGD: the bias of a low-rank layer, all parameters of any other layer."""
        out = []
        for i, layer in enumerate(self.model.layers):
            params = [layer.b] if isinstance(layer, LowRankLayer) else layer.parameters()
            out += [(f"{i}.{p.name or j}", p, p.grad.copy()) for j, p in enumerate(params)]
        return out

    def _apply_dense_and_bias(self, grads) -> None:
        for key, p, g in grads:
            self.sgd.update(key, p, g, self.lr)

    def _set_modes(self, mode: str) -> None:
        for _, layer in _low_rank_layers(self.model):
            layer.set_mode(mode)

    def state_arrays(self) -> dict:
        return {**self.sgd.state_arrays(), **self.factor_momentum.state_arrays()}

    def load_state_arrays(self, arrays: dict) -> None:
        self.sgd.load_state_arrays(arrays)
        self.factor_momentum.load_state_arrays(arrays)


def _check_finite_step(opt, layer, what: str, *arrays) -> None:
    """Raise FloatingPointError (the training loop reports divergence) on non-finite values."""
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise FloatingPointError(f"{type(opt).__name__}: the {what} of {layer!r} gave "
                                 f"non-finite values (lr {opt.lr:g} too large?)")


def _kl_gradients(layer: LowRankLayer):
    """``G V0`` (n_out, r) and ``G^T U0`` (n_in, r) from the taps of one backward at ``W0``.

    With ``G = dL/dW = dZ^T X`` (``dZ = dL/dZ``, the "delta" of backpropagation, and the
    layer's rows ``X``: its input, or the unfolded patches of a convolution; [SZKCT22]):
    ``G V0 = dZ^T (X V0)`` and ``G^T U0 = X^T (dZ U0)``; ``X V0`` and ``dZ U0`` were formed
    by the forward and the backward anyway.
    """
    t = layer.taps
    if t is None or "dZ" not in t:
        raise RuntimeError(f"{layer!r} has no recorded gradient: run forward and backward in mode 'W'")
    return t["dZ"].T @ t["XV"], t["X"].T @ t["dZ_U"]


class FixedRankKLS(_DLRTBase):
    """Fixed-rank DLRT step of [SZKCT22] (the KLS/BUG integrator [CL22] with Euler).

    For every low-rank layer, with ``G0 = dL/dW`` at ``W0 = U0 S0 V0^T``:

    1. one forward/backward at ``W0`` (mode ``"W"``) gives ``G0 V0`` and ``G0^T U0``;
    2. K-step ``K1 = U0 S0 - lr G0 V0``, ``U1 = qr(K1)``; L-step ``L1 = V0 S0^T - lr G0^T U0``,
       ``V1 = qr(L1)``;
    3. Galerkin start ``S~0 = M S0 N^T`` with ``M = U1^T U0``, ``N = V1^T V0``;
    4. a second forward/backward at ``W~ = U1 S~0 V1^T`` (mode ``"S"``) gives
       ``dS = U1^T G(W~) V1`` and ``S1 = S~0 - lr dS``.

    Biases and dense layers take one SGD step with their gradient at the start point.
    The rank never changes.

    Parameters
    ----------
    model : Network
        With at least one low-rank layer (any :class:`~lowrank_ref.lowrank_layers.LowRankLayer`).
    lr : float
    momentum : float in [0, 1), default 0
    loss_fn : callable, optional
    passes : {2, 1}, default 2
        2: the algorithm above. 1 (opt-in, *not* the algorithm of [SZKCT22]): the S-step
        gradient is taken at ``W0`` instead of ``W~``, ``dS = U1^T G0 V1 =
        (dZ U1)^T (X V1)`` from the taps of the first backward, so that
        ``S1 = U1^T (W0 - lr G0) V1``: the Galerkin projection of the SGD step onto the new
        bases. It saves the second forward/backward (measured in ``benchmarks/README.md``);
        it is still a first-order step of the projected gradient flow, but its S-step
        sees the old weight.
    """

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None,
                 passes: int = 2):
        super().__init__(model, lr, momentum, loss_fn)
        if check_int(passes, "passes") not in (1, 2):
            raise ValueError(f"passes must be 2 (the algorithm of [SZKCT22]) or 1, got {passes!r}")
        self.passes = int(passes)

    @uses_blas_threads
    def step(self, X: np.ndarray, y: np.ndarray) -> StepResult:
        self._set_modes("W")
        res = _forward_backward(self.model, X, y, self.loss_fn)
        dense = self._dense_and_bias_grads()
        velocities, dS_at_W0 = {}, {}
        for i, layer in _low_rank_layers(self.model):
            U0, S0, V0 = layer.factors
            GV, GtU = _kl_gradients(layer)
            GV, GtU = self.factor_momentum.kl_velocities(i, U0, V0, GV, GtU)
            velocities[i] = (U0, V0, GV, GtU)
            K1, L1 = U0 @ S0 - self.lr * GV, V0 @ S0.T - self.lr * GtU
            _check_finite_step(self, layer, "K- and L-steps", K1, L1)
            U1 = orthonormalize(K1)                            # K-step
            V1 = orthonormalize(L1)                            # L-step
            S_tilde = (U1.T @ U0) @ S0 @ (V0.T @ V1)           # Galerkin start M S0 N^T
            if self.passes == 1:                               # U1^T G0 V1 from the taps
                t = layer.taps
                dS_at_W0[i] = (t["dZ"] @ U1).T @ (t["X"] @ V1)
            layer.set_factors(LowRank(U1, S_tilde, V1))
            layer.set_mode("S")
        if self.passes == 2:
            _forward_backward(self.model, X, y, self.loss_fn)   # S-step gradient at W~
        for i, layer in _low_rank_layers(self.model):
            dS = layer.S_hat.grad if self.passes == 2 else dS_at_W0[i]
            dS = self.factor_momentum.s_velocity(i, layer.U, layer.V, dS, remember=False)
            layer.set_factors(LowRank(layer.U, layer.S_hat.value - self.lr * dS, layer.V))
            self.factor_momentum.remember_tangent(i, *velocities[i])
        self._apply_dense_and_bias(dense)
        return res


class AdaptiveKLS(_DLRTBase):
    """Rank-adaptive DLRT step of [SZKCT22] ([CKL22] with Euler).

    For every low-rank layer, with ``G0 = dL/dW`` at ``W0 = U0 S0 V0^T``:

    1. K-step ``K1 = U0 S0 - lr G0 V0``; L-step ``L1 = V0 S0^T - lr G0^T U0``;
    2. augmented bases ``U_hat = [U0, U~]``, ``V_hat = [V0, V~]`` spanning ``[U0, K1]`` and
       ``[V0, L1]`` (:func:`lowrank_ref.lowrank.augment_basis`, rank-revealing, at most 2r
       and at most ``n_out``/``n_in`` columns); ``U0``, ``V0`` are re-orthonormalised first
       (:func:`lowrank_ref.lowrank.reorthonormalize`), since ``U_hat`` keeps them as its first
       block and round-off would otherwise accumulate over thousands of steps;
    3. Galerkin start ``S_hat0 = (U_hat^T U0) S0 (V0^T V_hat)``, which is ``S0`` in the top-left
       block and zero elsewhere because ``U_hat`` starts with ``U0`` (so
       ``U_hat S_hat0 V_hat^T = W0``: the S-step gradient is evaluated at ``W0`` too);
    4. S-step ``S_hat1 = S_hat0 - lr U_hat^T G0 V_hat``;
    5. truncation: :func:`lowrank_ref.truncation.truncate` with ``tol = tau`` relative to
       ``||S_hat1||_F``, ranks clamped to ``[min_rank, max_rank]``.

    ``passes=3`` evaluates ``G0 V0``, ``G0^T U0`` and ``U_hat^T G0 V_hat`` with three
    forward/backward passes in modes ``"K"``, ``"L"`` and ``"S"``, as in the published code.
    ``passes=1`` takes all three from one backward in mode ``"W"``:
    ``U_hat^T G0 V_hat = U_hat^T [G0 V0, dZ^T (X V~)]`` (``V_hat = [V0, V~]``), reusing
    ``G0 V0`` of the K-step. The two are equal to rounding (tested).

    Parameters
    ----------
    model : Network
        With at least one low-rank layer (any :class:`~lowrank_ref.lowrank_layers.LowRankLayer`).
    lr : float
    tau : float
        Relative truncation tolerance, ``>= 0``.
    min_rank : int, default 1
    max_rank : int or None
        Default ``None``: the full rank ``min(n_in, n_out)`` of each layer's matrix (the
        augmented basis is capped there by :func:`~lowrank_ref.lowrank.augment_basis`), so a
        layer may start at full rank, as the LeNet5 runs of [SZKCT22] do.
    passes : {1, 3}, default 1
    momentum : float in [0, 1), default 0
        Heavy-ball momentum; for the factors it is carried across basis changes as
        described in :class:`~lowrank_ref.momentum.FactorMomentum`. 0 is plain SGD (explicit Euler).
    loss_fn : callable, optional
        ``loss_fn(outputs: Tensor, y) -> 0-d Tensor``; default cross-entropy.
    """

    def __init__(self, model: Network, lr: float, tau: float, min_rank: int = 1,
                 max_rank: Optional[int] = None, passes: int = 1, momentum: float = 0.0,
                 loss_fn=None):
        super().__init__(model, lr, momentum, loss_fn)
        check_real(tau, "tau", low=0.0)
        check_rank_bounds(min_rank, max_rank)
        if check_int(passes, "passes") not in (1, 3):
            raise ValueError(f"passes must be 1 or 3, got {passes!r}")
        self.tau, self.min_rank, self.max_rank, self.passes = float(tau), min_rank, max_rank, passes

    def _layer_max_rank(self, layer) -> int:
        return min(layer.n_in, layer.n_out) if self.max_rank is None else self.max_rank

    def _truncate(self, layer, U_hat, S_hat1, V_hat) -> None:
        if not np.all(np.isfinite(S_hat1)):   # lr too large: the training loop reports it
            raise FloatingPointError(f"{type(self).__name__}: the S-step of {layer!r} gave "
                                     f"non-finite values (lr {self.lr:g} too large?)")
        hi = self._layer_max_rank(layer)
        Y1 = truncate(U_hat, S_hat1, V_hat, self.tau, relative=True,
                      min_rank=min(self.min_rank, hi), max_rank=hi, check=False)
        layer.set_factors(Y1)

    def _augmented_start(self, layer, K1, L1):
        _check_finite_step(self, layer, "K- and L-steps", K1, L1)
        U0, S0, V0 = layer.factors
        r = layer.rank
        U_hat = augment_basis(U0, K1)
        V_hat = augment_basis(V0, L1)
        S_hat0 = np.zeros((U_hat.shape[1], V_hat.shape[1]), dtype=S0.dtype)
        S_hat0[:r, :r] = S0   # = (U_hat^T U0) S0 (V0^T V_hat), since U_hat = [U0, U~], U~ ⟂ U0
        return U_hat, S_hat0, V_hat

    @uses_blas_threads
    def step(self, X: np.ndarray, y: np.ndarray) -> StepResult:
        for _, layer in _low_rank_layers(self.model):
            layer.refresh_orthonormality()      # same weight, orthonormal to rounding
        return self._step_one_pass(X, y) if self.passes == 1 else self._step_three_passes(X, y)

    def _step_one_pass(self, X, y) -> StepResult:
        self._set_modes("W")
        res = _forward_backward(self.model, X, y, self.loss_fn)
        dense = self._dense_and_bias_grads()
        for i, layer in _low_rank_layers(self.model):
            U0, S0, V0 = layer.factors
            r = layer.rank
            G_V0, GtU = _kl_gradients(layer)
            GV, GtU = self.factor_momentum.kl_velocities(i, U0, V0, G_V0, GtU)
            K1 = U0 @ S0 - self.lr * GV
            L1 = V0 @ S0.T - self.lr * GtU
            U_hat, S_hat0, V_hat = self._augmented_start(layer, K1, L1)
            t = layer.taps        # G V_hat = [G V0, dZ^T (X V~)]: one more pass over the rows
            G_V_hat = np.concatenate([G_V0, t["dZ"].T @ (t["X"] @ V_hat[:, r:])], axis=1)
            dS = self.factor_momentum.s_velocity(i, U_hat, V_hat, U_hat.T @ G_V_hat)  # U_hat^T G0 V_hat
            S_hat1 = S_hat0 - self.lr * dS
            self._truncate(layer, U_hat, S_hat1, V_hat)
        self._apply_dense_and_bias(dense)
        return res

    def _step_three_passes(self, X, y) -> StepResult:
        lr_layers = _low_rank_layers(self.model)
        self._set_modes("K")
        res = _forward_backward(self.model, X, y, self.loss_fn)   # K-pass at W0
        GV = {i: layer.K.grad for i, layer in lr_layers}
        self._set_modes("L")
        _forward_backward(self.model, X, y, self.loss_fn)   # L-pass at W0
        K1, L1 = {}, {}
        for i, layer in lr_layers:
            vK, vL = self.factor_momentum.kl_velocities(i, layer.U, layer.V, GV[i], layer.L.grad)
            K1[i] = layer.U @ layer.S - self.lr * vK
            L1[i] = layer.V @ layer.S.T - self.lr * vL
        for i, layer in lr_layers:
            U_hat, S_hat0, V_hat = self._augmented_start(layer, K1[i], L1[i])
            layer.set_mode("S", U_hat=U_hat, S_hat=S_hat0, V_hat=V_hat)
        _forward_backward(self.model, X, y, self.loss_fn)   # S-pass at W0
        dense = self._dense_and_bias_grads()
        for i, layer in lr_layers:
            dS = self.factor_momentum.s_velocity(i, layer.U_hat, layer.V_hat, layer.S_hat.grad)
            self._truncate(layer, layer.U_hat, layer.S_hat.value - self.lr * dS, layer.V_hat)
        self._apply_dense_and_bias(dense)
        return res


class SOnlySGD(_DLRTBase):
    """Fine-tuning of the cores ``S`` with ``U``, ``V`` frozen ([SZKCT22]).

    ``S1 = S0 - lr U0^T G0 V0`` for every low-rank layer (mode ``"S"`` with ``U_hat = U0``,
    ``V_hat = V0``); biases and dense layers by SGD. Ranks and bases never change.
    """

    @uses_blas_threads
    def step(self, X: np.ndarray, y: np.ndarray) -> StepResult:
        self._set_modes("S")
        res = _forward_backward(self.model, X, y, self.loss_fn)
        dense = self._dense_and_bias_grads()
        for i, layer in _low_rank_layers(self.model):
            dS = self.factor_momentum.s_velocity(i, layer.U, layer.V, layer.S_hat.grad)
            layer.set_factors(LowRank(layer.U, layer.S - self.lr * dS, layer.V))
        self._apply_dense_and_bias(dense)
        return res


def make_optimizer(method: str, model: Network, lr: float, momentum: float = 0.0,
                   tau: Optional[float] = None, min_rank: int = 1,
                   max_rank: Optional[int] = None, passes: int = 1):
    """The optimiser of ``method`` in :data:`METHODS`: ``"dense"`` -> :class:`DenseSGD`,
    ``"fixed"`` -> :class:`FixedRankKLS`, ``"adaptive"`` -> :class:`AdaptiveKLS` (needs ``tau``),
    ``"vanilla"`` -> :class:`DenseSGD` (``U V^T`` factors), ``"sonly"`` -> :class:`SOnlySGD`.

    Raises
    ------
    ValueError
        Unknown method, missing ``tau`` for ``"adaptive"``, ``tau``/``min_rank``/
        ``max_rank``/``passes`` given for another method (they would be ignored), or a
        dense method on a model with low-rank layers (and vice versa).
    """
    check_method_options(method, tau=tau, min_rank=min_rank, max_rank=max_rank, passes=passes)
    _check_model(model)
    if method in ("dense", "vanilla"):
        if _low_rank_layers(model):
            raise ValueError(f"method {method!r} needs a model without low-rank layers")
        return DenseSGD(model, lr, momentum)
    if method in ("fixed", "sonly"):
        return (FixedRankKLS if method == "fixed" else SOnlySGD)(model, lr, momentum)
    return AdaptiveKLS(model, lr, tau, min_rank, max_rank, passes, momentum)


def check_method_options(method: str, tau: Optional[float] = None, min_rank: int = 1,
                         max_rank: Optional[int] = None, passes: int = 1) -> None:
    """Refuse options that ``method`` would ignore, and a missing ``tau`` for "adaptive".

    A silently ignored option is a wrong experiment: ``tau``, ``min_rank``, ``max_rank`` and
    ``passes`` belong to ``"adaptive"`` only and must keep their defaults for the other
    methods. (Their values are checked by the optimiser itself.)

    Raises
    ------
    ValueError
        Unknown ``method``; an option of "adaptive" given for another method; ``tau``
        None for "adaptive".

    Examples
    --------
    >>> check_method_options("fixed", tau=0.1)
    Traceback (most recent call last):
    ...
    ValueError: tau is only used by method 'adaptive', got tau=0.1 for method 'fixed'
    """
    check_choice(method, "method", METHODS)
    if method == "adaptive":
        if tau is None:
            raise ValueError("tau is required for method 'adaptive' (relative truncation "
                             "tolerance, e.g. tau=0.1), got None")
        return
    unused = {"tau": (tau, None), "min_rank": (min_rank, 1), "max_rank": (max_rank, None),
              "passes": (passes, 1)}
    for name, (value, default) in unused.items():
        if value is not default and value != default:
            raise ValueError(f"{name} is only used by method 'adaptive', got "
                             f"{name}={value!r} for method {method!r}")
