"""Adam ([KB15]) for the optimisers of :mod:`lowrank_ref.dlrt`, in two forms for low-rank layers.

[SZKCT22] trained its MNIST table with Adam; the DLRT analysis covers explicit Euler (SGD)
steps only. A low-rank layer has no fixed coordinates -- its bases move every step -- so
"Adam of a low-rank layer" needs a choice of where the moments live:

* **(a) per factor variable, as the paper's code** (:class:`PaperAdamKLS`): one Adam state
  per variable ``K``, ``L``, ``S`` and bias, indexed by *position* in the variable, kept
  from step to step while the bases under those positions change. It replays the
  TensorFlow loop of the paper's dense MNIST runs step for step (below).
* **(b) carried across basis changes** (:class:`CarriedAdamKLS`): the first moments are
  matrices of the weight's shape stored in the bases of the previous step and re-expressed
  exactly in each new basis, as :class:`~lowrank_ref.momentum.FactorMomentum` does for the
  velocity; the second moments (coordinatewise by definition) are carried by the squared
  transition matrices, the exact second moments if the old coordinates were uncorrelated.
  Coordinates are the singular directions of ``W``, so that the trajectory depends on the
  weights only, not on their factorisation (tested).

Dense networks (and the vanilla ``U V^T`` factors) use textbook Adam, :class:`DenseAdam`.

The update, per array, with gradient ``g`` and step count ``t`` (Kingma & Ba, Algorithm 1):
``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``, ``p <- p - lr m_hat / (sqrt(v_hat)
+ eps)`` with ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)`` (:func:`adam_update`).

The paper's code
----------------
Repository ``CSMMLab/DLRT-Net`` (TensorFlow), ``src/mnist_DLRA.py`` (the dense MNIST runs:
batch 256, ``tf.keras.optimizers.Adam(learning_rate=1e-3)``, layers
``DLRALayerAdaptive`` of ``src/dlranet.py``). Per batch it

1. sets the variables ``k = U S`` and ``l_t = S V^T`` (TF orientation; in this package's
   notation ``W = U S V^T`` of shape ``(n_out, n_in)``, TF's ``k`` is our ``L = V S^T`` and
   its ``l_t`` our ``K^T``);
2. tapes the gradient of the K-pass and applies it to *all* trainable variables with one
   ``optimizer.apply_gradients``: the gradients of ``l_t``, ``s`` and of the biases are set to
   zero (``set_none_grads_to_zero``, ``set_dlra_bias_grads_to_zero``), the output layer is
   excluded (``toggle_non_s_step_training``);
3. the same for the L-pass (a second ``apply_gradients``);
4. augments ``U_hat = qr([K1, U0])`` (new directions first), ``V_hat = qr([L1, V0])`` (plain
   QR) and sets ``S_hat0 = (U_hat^T U0) S (V0^T V_hat)``;
5. tapes the S-pass at ``U_hat S_hat0 V_hat^T`` and applies its gradient (a third
   ``apply_gradients``; zero for ``k`` and ``l_t``, real for ``s``, the biases and the output
   layer);
6. truncates ``S_hat1`` (``rank_adaption``, at least rank 2).

An Adam step with a zero gradient still moves a variable (``m`` and ``v`` decay, ``m / sqrt(v)``
does not vanish), and each ``apply_gradients`` advances the step count. So, per batch: ``t``
grows by 3; ``K`` gets a zero-gradient step after its real one and before its QR; ``L`` a
zero-gradient step (with its moments of the previous batch) before its real one; ``S``
two zero-gradient steps with its position-indexed moments before ``S_hat0`` is formed from
it; the biases two zero-gradient steps before the S-pass. :class:`PaperAdamKLS` does all
of this. Its differences from the TF code: the layers' ``U``, ``V`` are orthonormal from the
start (the TF code's first step sees non-orthonormal random factors; the represented ``W0`` is
the same), the rank rule is :func:`lowrank_ref.truncation.truncate` (the TF loop leaves the
last singular value out of the tail; see that module), ``eps`` is added to ``sqrt(v_hat)``
as in Algorithm 1 (Keras adds it to ``sqrt(v)``), the loss is the cross-entropy of the
logits (Keras clips probabilities at ``1e-7``), and QR signs are LAPACK's.

[KB15] D. P. Kingma, J. Ba. Adam: a method for stochastic optimization. ICLR 2015.
[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import ops
from ._validate import check_callable, check_rank_bounds, check_real
from .dlrt import StepResult
from .lowrank import LowRank, augment_basis, orthonormalize, reorthonormalize, small_svd
from .lowrank_layers import LowRankDense
from .nn import MLP, Dense
from .threads import uses_blas_threads
from .truncation import truncate

__all__ = ["adam_update", "PlainAdam", "DenseAdam", "PaperAdamKLS", "CarriedAdamKLS",
           "ADAM_DEFAULTS"]

#: Adam's hyperparameters as in ``tf.keras.optimizers.Adam`` (the paper's code; Kingma & Ba
#: suggest ``eps = 1e-8``).
ADAM_DEFAULTS = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-7}


def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
                lr: float, beta1: float, beta2: float, eps: float) -> None:
    """One Adam step of ``p`` in place (Kingma & Ba, Algorithm 1); ``m``, ``v`` updated in place.

    ``p``, ``g``, ``m``, ``v`` have one shape; ``t >= 1`` is the step count after this step.

    Examples
    --------
    >>> p, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> adam_update(p, np.array([0.5]), m, v, 1, 0.1, 0.9, 0.999, 1e-8)
    >>> p.round(6).tolist()                  # the first step moves by lr * sign(g)
    [0.9]
    """
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    m_hat = m / (1.0 - beta1 ** t)
    v_hat = v / (1.0 - beta2 ** t)
    p -= (lr * m_hat / (np.sqrt(v_hat) + eps)).astype(p.dtype, copy=False)


def _check_adam(lr, beta1, beta2, eps):
    check_real(lr, "lr", low=0.0, low_open=True)
    check_real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
    check_real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
    check_real(eps, "eps", low=0.0, low_open=True)


class PlainAdam:
    """Adam states of named arrays: ``update(key, p, g, t, lr)`` steps ``p.value`` in place.

    Holds ``m`` and ``v`` per key (zeros at the first update); the step count ``t`` belongs to
    the caller (one count per optimiser).
    """

    def __init__(self, beta1: float, beta2: float, eps: float):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.buffers: dict = {}

    def update(self, key: str, p, g: np.ndarray, t: int, lr: float) -> None:
        if key not in self.buffers:
            self.buffers[key] = (np.zeros_like(g), np.zeros_like(g))
        m, v = self.buffers[key]
        adam_update(p.value, g, m, v, t, lr, self.beta1, self.beta2, self.eps)

    def state_arrays(self) -> dict:
        out = {}
        for k, (m, v) in self.buffers.items():
            out.update({f"adam_m.{k}": m, f"adam_v.{k}": v})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        self.buffers = {k[len("adam_m."):]: (np.array(a), np.array(arrays["adam_v." + k[7:]]))
                        for k, a in arrays.items() if k.startswith("adam_m.")}


class _AdamOptimizer:
    """Shared parts: checks, the learning rate, the step count, forward and backward."""

    def __init__(self, model, lr, beta1, beta2, eps, loss_fn):
        if not isinstance(model, MLP):
            raise TypeError(f"model must be an MLP, got {type(model).__name__}")
        self.model = model
        _check_adam(lr, beta1, beta2, eps)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        if loss_fn is not None:
            check_callable(loss_fn, "loss_fn", "loss_fn(outputs, y) -> 0-d Tensor (or None)")
        self.loss_fn = loss_fn
        self.t = 0
        self.plain = PlainAdam(beta1, beta2, eps)

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = check_real(value, "lr", low=0.0, low_open=True)

    def _forward_backward(self, X, y) -> StepResult:
        self.model.zero_grad()
        logits = self.model(X)
        loss = (self.loss_fn or ops.cross_entropy)(logits, y)
        loss.backward()
        return StepResult(float(loss.value), logits.value)

    def _low_rank(self) -> list:
        return [(i, layer) for i, layer in enumerate(self.model.layers)
                if isinstance(layer, LowRankDense)]

    def state_arrays(self) -> dict:
        return {"adam_t": np.array(float(self.t)), **self.plain.state_arrays()}

    def load_state_arrays(self, arrays: dict) -> None:
        self.t = int(arrays.get("adam_t", 0))
        self.plain.load_state_arrays(arrays)


class DenseAdam(_AdamOptimizer):
    """Adam of every parameter of an MLP without :class:`LowRankDense` layers.

    For a dense network, and for the vanilla factors of
    :class:`~lowrank_ref.factorized.FactorizedDense` layers. One Adam step per parameter and
    batch, ``t`` counting batches.

    Parameters
    ----------
    model : MLP
    lr : float
        ``> 0``.
    beta1, beta2 : float in [0, 1)
    eps : float
        ``> 0``.
    loss_fn : callable, optional

    Raises
    ------
    TypeError, ValueError
        ``model`` not an MLP or with LowRankDense layers; a hyperparameter out of range.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = MLP.dense([4, 8, 3], rng)
    >>> opt = DenseAdam(model, lr=0.01)
    >>> X, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    >>> first = opt.step(X, y).loss
    >>> for _ in range(30): last = opt.step(X, y).loss
    >>> last < first
    True
    """

    def __init__(self, model: MLP, lr: float, beta1: float = ADAM_DEFAULTS["beta1"],
                 beta2: float = ADAM_DEFAULTS["beta2"], eps: float = ADAM_DEFAULTS["eps"],
                 loss_fn=None):
        super().__init__(model, lr, beta1, beta2, eps, loss_fn)
        if self._low_rank():
            raise ValueError(f"model must have no LowRankDense layers for DenseAdam, got "
                             f"layers {[i for i, _ in self._low_rank()]}: use PaperAdamKLS "
                             f"or CarriedAdamKLS")

    @uses_blas_threads
    def step(self, X: np.ndarray, y: np.ndarray) -> StepResult:
        """One Adam step on the batch ``X (batch, n_in)``, labels ``y (batch,)``."""
        res = self._forward_backward(X, y)
        self.t += 1
        for i, p in enumerate(self.model.parameters()):
            self.plain.update(str(i), p, p.grad, self.t, self.lr)
        return res


class _AdaptiveAdam(_AdamOptimizer):
    """Rank-adaptive DLRT with Adam: the checks and the truncation of both forms."""

    def __init__(self, model, lr, tau, min_rank, max_rank, beta1, beta2, eps, loss_fn):
        super().__init__(model, lr, beta1, beta2, eps, loss_fn)
        self.tau = check_real(tau, "tau", low=0.0)
        self.min_rank, self.max_rank = check_rank_bounds(min_rank, max_rank)
        if not self._low_rank():
            raise ValueError("model must contain at least one LowRankDense layer")

    def _cap(self, layer) -> int:
        cap = max(min(layer.n_in, layer.n_out) // 2, 1)
        return cap if self.max_rank is None else min(self.max_rank, cap)

    def _truncate(self, layer, U_hat, S_hat1, V_hat) -> None:
        if not np.all(np.isfinite(S_hat1)):     # lr too large: the training loop reports it
            raise FloatingPointError(f"{type(self).__name__}: the S-step of {layer!r} gave "
                                     f"non-finite values (lr {self.lr:g} too large?)")
        hi = self._cap(layer)
        layer.set_factors(truncate(U_hat, S_hat1, V_hat, self.tau, relative=True,
                                   min_rank=min(self.min_rank, hi), max_rank=hi, check=False))

    def _dense_grads(self) -> list:
        """``(key, tensor, grad)`` of the last backward for every bias and dense weight."""
        out = []
        for i, layer in enumerate(self.model.layers):
            params = [("W", layer.W), ("b", layer.b)] if isinstance(layer, Dense) else [("b", layer.b)]
            out += [(f"{i}.{name}", p, p.grad.copy()) for name, p in params]
        return out


class PaperAdamKLS(_AdaptiveAdam):
    """Rank-adaptive DLRT with Adam as the paper's TensorFlow code runs it (form (a)).

    The sequence of the module docstring, "The paper's code": per batch one
    forward/backward at ``W0`` (it gives the K- and L-pass gradients, which the TF code
    tapes at the same point twice), three Adam applications (``t`` += 3) with zero
    gradients for the variables a pass does not touch, a plain-QR augmentation
    ``[K1, U0]``, ``[L1, V0]``, a second forward/backward at ``U_hat S_hat0 V_hat^T`` for the
    S-step, and the truncation. The moments of ``K`` (n_out, c), ``L`` (n_in, c) and
    ``S`` (2c, 2c) are indexed by position and kept whatever the bases do
    (``c`` = the layer's rank cap, ``min(n_in, n_out) // 2`` or ``max_rank``).

    Parameters
    ----------
    model : MLP
        With at least one :class:`LowRankDense` layer.
    lr : float
    tau : float
        Relative truncation tolerance, ``>= 0``.
    min_rank : int, default 1
        (The TF code keeps at least rank 2.)
    max_rank : int, optional
        Default: ``min(n_in, n_out) // 2`` per layer (as the TF code's ``rmax_total``).
    beta1, beta2, eps : float
        Default :data:`ADAM_DEFAULTS` (Keras').
    loss_fn : callable, optional

    Raises
    ------
    TypeError, ValueError
        ``model`` not an MLP with a LowRankDense layer; a hyperparameter out of range.
    """

    def __init__(self, model: MLP, lr: float, tau: float, min_rank: int = 1,
                 max_rank: Optional[int] = None, beta1: float = ADAM_DEFAULTS["beta1"],
                 beta2: float = ADAM_DEFAULTS["beta2"], eps: float = ADAM_DEFAULTS["eps"],
                 loss_fn=None):
        super().__init__(model, lr, tau, min_rank, max_rank, beta1, beta2, eps, loss_fn)
        for i, layer in self._low_rank():
            if layer.rank > self._cap(layer):
                raise ValueError(f"layer {i} has rank {layer.rank}, above its cap "
                                 f"{self._cap(layer)} (min(n_in, n_out) // 2 or max_rank): the "
                                 f"augmented basis [K1, U0] must fit")
        self.moments: dict = {}

    def _buffers(self, i, layer) -> dict:
        if i not in self.moments:
            c, dt = self._cap(layer), layer.dtype
            shapes = {"K": (layer.n_out, c), "L": (layer.n_in, c), "S": (2 * c, 2 * c),
                      "b": (layer.n_out,)}
            self.moments[i] = {k: (np.zeros(s, dt), np.zeros(s, dt)) for k, s in shapes.items()}
        return self.moments[i]

    def _apply(self, value, g, mv) -> None:
        """One Adam application to the leading block of a position-indexed variable.

        ``value`` is the block that exists (``None``: nothing to move), ``g`` its gradient
        (``None``: zero); every other entry of the moments decays as with a zero gradient.
        """
        m, v = mv
        m *= self.beta1
        v *= self.beta2
        if value is None:
            return
        block = tuple(slice(0, n) for n in value.shape)
        if g is not None:
            m[block] += (1.0 - self.beta1) * g
            v[block] += (1.0 - self.beta2) * (g * g)
        m_hat = m[block] / (1.0 - self.beta1 ** self.t)
        v_hat = v[block] / (1.0 - self.beta2 ** self.t)
        value -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(value.dtype, copy=False)

    @uses_blas_threads
    def step(self, X: np.ndarray, y: np.ndarray) -> StepResult:
        lr_layers = self._low_rank()
        for _, layer in lr_layers:
            layer.set_mode("W")
        res = self._forward_backward(X, y)                     # the K- and L-pass point W0
        var = {}
        for i, layer in lr_layers:
            U0, S0, V0 = layer.factors
            t = layer.taps
            var[i] = {"K": U0 @ S0, "L": V0 @ S0.T, "S": np.array(S0),
                      "GK": t["dZ"].T @ t["XV"], "GL": t["X"].T @ t["dZ_U"]}
        for real in ("L", "K"):                                # TF's K-apply, then L-apply
            self.t += 1
            for i, layer in lr_layers:
                buf, v = self._buffers(i, layer), var[i]
                self._apply(v["K"], v["GK"] if real == "K" else None, buf["K"])
                self._apply(v["L"], v["GL"] if real == "L" else None, buf["L"])
                self._apply(v["S"], None, buf["S"])
                self._apply(layer.b.value, None, buf["b"])
        for i, layer in lr_layers:
            U0, _, V0 = layer.factors
            v = var[i]
            if not (np.all(np.isfinite(v["K"])) and np.all(np.isfinite(v["L"]))):
                raise FloatingPointError(f"{type(self).__name__}: the K- and L-steps of "
                                         f"{layer!r} gave non-finite values (lr {self.lr:g} "
                                         f"too large?)")
            U_hat = orthonormalize(np.concatenate([v["K"], U0], axis=1))
            V_hat = orthonormalize(np.concatenate([v["L"], V0], axis=1))
            S_hat0 = (U_hat.T @ U0) @ v["S"] @ (V0.T @ V_hat)
            layer.set_mode("S", U_hat=U_hat, S_hat=S_hat0, V_hat=V_hat)
        self._forward_backward(X, y)                           # the S-pass
        self.t += 1
        for i, layer in lr_layers:
            buf = self._buffers(i, layer)
            self._apply(None, None, buf["K"])
            self._apply(None, None, buf["L"])
            S_hat1 = np.array(layer.S_hat.value)
            self._apply(S_hat1, layer.S_hat.grad, buf["S"])
            self._apply(layer.b.value, layer.b.grad, buf["b"])
            self._truncate(layer, layer.U_hat, S_hat1, layer.V_hat)
        for i, layer in enumerate(self.model.layers):           # the output layer(s)
            if isinstance(layer, Dense):
                for name, p in (("W", layer.W), ("b", layer.b)):
                    self.plain.update(f"{i}.{name}", p, p.grad, self.t, self.lr)
        return res

    def state_arrays(self) -> dict:
        out = super().state_arrays()
        for i, bufs in self.moments.items():
            for k, (m, v) in bufs.items():
                out.update({f"paper.{i}.{k}.m": m, f"paper.{i}.{k}.v": v})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        super().load_state_arrays(arrays)
        self.moments = {}
        for key in arrays:
            if key.startswith("paper.") and key.endswith(".m"):
                _, i, k, _ = key.split(".")
                self.moments.setdefault(int(i), {})[k] = (
                    np.array(arrays[key]), np.array(arrays[f"paper.{i}.{k}.v"]))


class CarriedAdamKLS(_AdaptiveAdam):
    """Rank-adaptive DLRT with Adam whose moments are carried across basis changes (form (b)).

    One forward/backward per step, as :class:`~lowrank_ref.dlrt.AdaptiveKLS` with
    ``passes=1``. For every low-rank layer, in the singular basis of ``W0 = U0 S0 V0^T``
    (``S0`` diagonalised by an SVD of the small core, which changes nothing for the weight):

    * the K-moments ``(m_K, v_K)`` (n_out, r) have columns along the previous ``V``; they are
      carried into the current one by ``T = V_prev^T V0``: ``m_K <- m_K T`` (the matrix
      ``m_K V_prev^T`` re-expressed: exact) and ``v_K <- v_K (T * T)`` (elementwise square);
      the L-moments likewise with ``U``;
    * ``K1 = U0 S0 - lr adam(G V0)``, ``L1 = V0 S0^T - lr adam(G^T U0)``, the augmented bases
      ``U_hat = [U0, U~]``, ``V_hat = [V0, V~]`` (:func:`~lowrank_ref.lowrank.augment_basis`);
    * the S-moments live in the previous augmented bases and are carried by
      ``T_U = U_hat^T U_hat_prev``, ``T_V = V_hat^T V_hat_prev``: ``m_S <- T_U m_S T_V^T``,
      ``v_S <- (T_U * T_U) v_S (T_V * T_V)^T``; then
      ``S_hat1 = S_hat0 - lr adam(U_hat^T G V_hat)`` and the truncation.

    ``t`` counts batches. Biases and dense layers: textbook Adam. With unchanged bases the
    transports are identities and every variable takes plain Adam steps.

    Parameters
    ----------
    As :class:`PaperAdamKLS`.
    """

    def __init__(self, model: MLP, lr: float, tau: float, min_rank: int = 1,
                 max_rank: Optional[int] = None, beta1: float = ADAM_DEFAULTS["beta1"],
                 beta2: float = ADAM_DEFAULTS["beta2"], eps: float = ADAM_DEFAULTS["eps"],
                 loss_fn=None):
        super().__init__(model, lr, tau, min_rank, max_rank, beta1, beta2, eps, loss_fn)
        self.carried: dict = {}

    def _direction(self, g, m, v) -> np.ndarray:
        """``m_hat / (sqrt(v_hat) + eps)`` after the moment update with ``g`` (in place)."""
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        return (m / (1.0 - self.beta1 ** self.t)) / (np.sqrt(v / (1.0 - self.beta2 ** self.t))
                                                      + self.eps)

    @staticmethod
    def _carry(m, v, T_left, T_right):
        """Moments in new coordinates: ``T_left m T_right^T`` and the squared-transition ``v``."""
        m = m if T_left is None else T_left @ m
        v = v if T_left is None else (T_left * T_left) @ v
        return m @ T_right.T, v @ (T_right * T_right).T

    @uses_blas_threads
    def step(self, X: np.ndarray, y: np.ndarray) -> StepResult:
        lr_layers = self._low_rank()
        for _, layer in lr_layers:
            U, S, V = reorthonormalize(layer.factors)
            P, s, Qt = small_svd(S)                 # coordinates: singular directions of W0
            layer.set_factors(LowRank(U @ P, np.diag(s).astype(S.dtype), V @ Qt.T))
        res = self._forward_backward(X, y)
        dense = self._dense_grads()
        self.t += 1
        for i, layer in lr_layers:
            U0, S0, V0 = layer.factors
            r = layer.rank
            t = layer.taps
            GV, GtU = t["dZ"].T @ t["XV"], t["X"].T @ t["dZ_U"]
            st = self.carried.get(i)
            if st is None:
                z = np.zeros_like
                st = {"mK": z(GV), "vK": z(GV), "mL": z(GtU), "vL": z(GtU)}
            else:
                st["mK"], st["vK"] = self._carry(st["mK"], st["vK"], None, V0.T @ st["V"])
                st["mL"], st["vL"] = self._carry(st["mL"], st["vL"], None, U0.T @ st["U"])
            K1 = U0 @ S0 - self.lr * self._direction(GV, st["mK"], st["vK"])
            L1 = V0 @ S0.T - self.lr * self._direction(GtU, st["mL"], st["vL"])
            if not (np.all(np.isfinite(K1)) and np.all(np.isfinite(L1))):
                raise FloatingPointError(f"{type(self).__name__}: the K- and L-steps of "
                                         f"{layer!r} gave non-finite values (lr {self.lr:g} "
                                         f"too large?)")
            U_hat, V_hat = augment_basis(U0, K1), augment_basis(V0, L1)
            dZ_U_hat = np.concatenate([t["dZ_U"], t["dZ"] @ U_hat[:, r:]], axis=1)
            XV_hat = np.concatenate([t["XV"], t["X"] @ V_hat[:, r:]], axis=1)
            dS = dZ_U_hat.T @ XV_hat                          # U_hat^T G0 V_hat
            if "U_hat" in st:
                st["mS"], st["vS"] = self._carry(st["mS"], st["vS"], U_hat.T @ st["U_hat"],
                                                 V_hat.T @ st["V_hat"])
            else:
                st["mS"], st["vS"] = np.zeros_like(dS), np.zeros_like(dS)
            S_hat1 = np.zeros_like(dS)
            S_hat1[:r, :r] = S0                               # S_hat0 represents W0
            S_hat1 -= self.lr * self._direction(dS, st["mS"], st["vS"])
            st.update(U=U0, V=V0, U_hat=U_hat, V_hat=V_hat)
            self.carried[i] = st
            self._truncate(layer, U_hat, S_hat1, V_hat)
        for key, p, g in dense:
            self.plain.update(key, p, g, self.t, self.lr)
        return res

    def state_arrays(self) -> dict:
        out = super().state_arrays()
        for i, st in self.carried.items():
            out.update({f"carried.{i}.{k}": a for k, a in st.items()})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        super().load_state_arrays(arrays)
        self.carried = {}
        for key, a in arrays.items():
            if key.startswith("carried."):
                _, i, k = key.split(".")
                self.carried.setdefault(int(i), {})[k] = np.array(a)
