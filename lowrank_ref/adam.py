"""Adam ([KB15]) as direction rules of the optimisers of :mod:`lowrank_ref.dlrt`, in two forms.

[SZKCT22] trained its MNIST table with Adam; the DLRT analysis covers explicit Euler (SGD)
steps only. A low-rank layer has no fixed coordinates -- its bases move every step -- so
"Adam of a low-rank layer" needs a choice of where the moments live:

* **(a) per factor variable, as the paper's code** (:class:`PaperAdam`): one Adam state
  per variable ``K``, ``L``, ``S`` and bias, indexed by *position* in the variable, kept
  from step to step while the bases under those positions change. With
  :class:`~lowrank_ref.dlrt.AdaptiveBUG` it replays the TensorFlow loop of the paper's
  dense MNIST runs step for step (below); that loop interleaves the optimiser with the
  passes of the step, so this rule changes the step itself and works with that
  integrator only (and with :class:`~lowrank_ref.dlrt.Euclidean`, where it is textbook
  Adam).
* **(b) carried across basis changes** (:class:`CarriedAdam`): the first moments are
  matrices of the weight's shape stored in the bases of the previous step and re-expressed
  exactly in each new basis, as :class:`~lowrank_ref.directions.Momentum` does for the
  velocity; the second moments (coordinatewise by definition) are carried by the squared
  transition matrices, the exact second moments if the old coordinates were uncorrelated.
  Coordinates are the singular directions of ``W``, so that the trajectory depends on the
  weights only, not on their factorisation (tested). It works with every integrator.

Dense parameters (biases, dense layers, the vanilla ``U V^T`` factors) take textbook Adam
steps in both forms (``Euclidean(model, lr, direction=CarriedAdam())`` trains a dense
network by textbook Adam).

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
it; the biases two zero-gradient steps before the S-pass. :class:`PaperAdam` does all
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

import numpy as np

from ._validate import check_real
from .directions import Direction
from .optimizers import StepResult, forward_backward, layer_kl_gradients, low_rank_layers
from .lowrank import orthonormalize
from .steps import all_finite

__all__ = ["adam_update", "CarriedAdam", "PaperAdam", "ADAM_DEFAULTS"]

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


class _Adam(Direction):
    """What both forms share: the hyperparameters, the step count ``t`` (one per optimiser)
    and textbook Adam of the plain parameters (moments per key, zeros at the first update)."""

    def __init__(self, beta1: float = ADAM_DEFAULTS["beta1"],
                 beta2: float = ADAM_DEFAULTS["beta2"], eps: float = ADAM_DEFAULTS["eps"]):
        self.beta1 = check_real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = check_real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.eps = check_real(eps, "eps", low=0.0, low_open=True)
        self.t = 0
        self.buffers: dict = {}
        self.clear_layers()

    def clear_layers(self) -> None:
        """Forget the state of the low-rank layers (each form keeps its own)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g})"

    def start_step(self) -> None:
        self.t += 1

    def update(self, key, p, g, lr) -> None:
        if key not in self.buffers:
            self.buffers[key] = (np.zeros_like(g), np.zeros_like(g))
        m, v = self.buffers[key]
        adam_update(p.value, g, m, v, self.t, lr, self.beta1, self.beta2, self.eps)

    def state_arrays(self) -> dict:
        out = {"adam_t": np.array(float(self.t))}
        for k, (m, v) in self.buffers.items():
            out.update({f"adam_m.{k}": m, f"adam_v.{k}": v})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        self.t = int(arrays.get("adam_t", 0))
        self.buffers = {k[len("adam_m."):]: (np.array(a), np.array(arrays["adam_v." + k[7:]]))
                        for k, a in arrays.items() if k.startswith("adam_m.")}


def _carry(m, v, T_left, T_right):
    """Moments in new coordinates: ``T_left m T_right^T`` and the squared-transition ``v``."""
    m = m if T_left is None else T_left @ m
    v = v if T_left is None else (T_left * T_left) @ v
    return m @ T_right.T, v @ (T_right * T_right).T


class CarriedAdam(_Adam):
    """Adam whose moments are carried across basis changes (form (b)); every integrator.

    The optimiser writes every low-rank layer ``W0 = U0 S0 V0^T`` in its singular vectors
    before the step (``S0`` diagonal: :func:`lowrank_ref.steps.singular_coordinates`, which
    changes nothing for the weight). Then, with ``t`` counting steps:

    * the K-moments ``(m_K, v_K)`` (n_out, r) have columns along the previous ``V``; they are
      carried into the current one by ``T = V0^T V_prev``: ``m_K <- m_K T^T`` (the matrix
      ``m_K V_prev^T`` re-expressed: exact) and ``v_K <- v_K (T * T)^T`` (elementwise
      square); the L-moments likewise with ``U``; ``D_K = adam(G V0)``, ``D_L = adam(G^T U0)``
      (``adam(g) = m_hat / (sqrt(v_hat) + eps)`` after the moment update with ``g``);
    * the S-moments live in the bases ``(U, V)`` of the previous S-step (augmented, new or
      old ones: whatever the integrator used) and are carried into the current ones by
      ``T_U = U^T U_prev``, ``T_V = V^T V_prev``: ``m_S <- T_U m_S T_V^T``,
      ``v_S <- (T_U * T_U) v_S (T_V * T_V)^T``; then ``D_S = adam(U^T G V)``. (The new
      directions ``U~`` of the rank-adaptive step's ``U_hat = [U0, U~]`` are the left
      singular vectors of ``(I - U0 U0^T) K1``, :func:`~lowrank_ref.lowrank.augment_basis`:
      these coordinates too are determined by the matrices, up to signs.)

    Biases and dense parameters: textbook Adam. With unchanged bases the transports are
    identities and every variable takes plain Adam steps.

    Parameters
    ----------
    beta1, beta2 : float in [0, 1)
    eps : float, > 0
        Default :data:`ADAM_DEFAULTS` (Keras').

    Examples
    --------
    >>> from lowrank_ref.dlrt import AdaptiveBUG
    >>> from lowrank_ref.networks import low_rank_mlp
    >>> rng = np.random.default_rng(0)
    >>> model = low_rank_mlp([12, 10, 8, 4], rank=3, rng=rng)
    >>> opt = AdaptiveBUG(model, lr=0.01, tau=0.05, direction=CarriedAdam())
    >>> X, y = rng.standard_normal((32, 12)), rng.integers(0, 4, 32)
    >>> first = opt.step(X, y).loss
    >>> for _ in range(30): last = opt.step(X, y).loss
    >>> last < first
    True
    """

    name = "adam-carried"
    singular_coordinates = True

    def clear_layers(self) -> None:
        self.carried: dict = {}

    def _direction(self, g, m, v) -> np.ndarray:
        """``m_hat / (sqrt(v_hat) + eps)`` after the moment update with ``g`` (in place)."""
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        return (m / (1.0 - self.beta1 ** self.t)) / (np.sqrt(v / (1.0 - self.beta2 ** self.t))
                                                      + self.eps)

    def kl(self, i, U0, V0, GV, GtU):
        st = self.carried.setdefault(i, {})
        if "V" in st:
            st["mK"], st["vK"] = _carry(st["mK"], st["vK"], None, V0.T @ st["V"])
            st["mL"], st["vL"] = _carry(st["mL"], st["vL"], None, U0.T @ st["U"])
        else:
            st.update(mK=np.zeros_like(GV), vK=np.zeros_like(GV), mL=np.zeros_like(GtU),
                      vL=np.zeros_like(GtU))
        D_K = self._direction(GV, st["mK"], st["vK"])
        D_L = self._direction(GtU, st["mL"], st["vL"])
        st.update(U=np.array(U0), V=np.array(V0))
        return D_K, D_L

    def core(self, i, U, V, dS, tangent=None):
        st = self.carried.setdefault(i, {})
        if "U_hat" in st:
            st["mS"], st["vS"] = _carry(st["mS"], st["vS"], U.T @ st["U_hat"],
                                        V.T @ st["V_hat"])
        else:
            st["mS"], st["vS"] = np.zeros_like(dS), np.zeros_like(dS)
        D_S = self._direction(dS, st["mS"], st["vS"])
        st.update(U_hat=np.array(U), V_hat=np.array(V))
        return D_S

    def state_arrays(self) -> dict:
        out = super().state_arrays()
        for i, st in self.carried.items():
            out.update({f"carried.{i}.{k}": a for k, a in st.items()})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        super().load_state_arrays(arrays)
        self.clear_layers()
        for key, a in arrays.items():
            if key.startswith("carried."):
                _, i, k = key.split(".")
                self.carried.setdefault(int(i), {})[k] = np.array(a)


class PaperAdam(_Adam):
    """Adam per factor variable, as the paper's TensorFlow code runs it (form (a)).

    With :class:`~lowrank_ref.dlrt.AdaptiveBUG` (``passes=1``) the step is the sequence of
    the module docstring, "The paper's code": one forward/backward at ``W0`` (it gives the
    K- and L-pass gradients, which the TF code tapes at the same point twice), three Adam
    applications (``t`` += 3) with zero gradients for the variables a pass does not touch,
    a plain-QR augmentation ``[K1, U0]``, ``[L1, V0]``, a second forward/backward at
    ``U_hat S_hat0 V_hat^T`` for the S-step, and the truncation. The moments of ``K``
    (n_out, c), ``L`` (n_in, c), ``S`` (2c, 2c) and of the bias of every low-rank layer are
    indexed by position and kept whatever the bases do (``c`` = the layer's rank cap,
    ``min(n_in, n_out) // 2`` or the optimiser's ``max_rank``, as the TF code's
    ``rmax_total``); every other parameter (the output layer) takes a textbook Adam step
    with its gradient of the S-pass.

    With :class:`~lowrank_ref.dlrt.Euclidean` it is textbook Adam of every parameter. Every
    other integrator refuses it (docs/design.md, section "Optimisers: integrator x
    direction"): the published loop exists for the rank-adaptive step only, and
    position-indexed moments of variables whose bases change are not a direction rule one
    can carry to another step.

    Parameters
    ----------
    beta1, beta2 : float in [0, 1)
    eps : float, > 0
        Default :data:`ADAM_DEFAULTS` (Keras').
    """

    name = "adam"
    replaces_adaptive_step = True

    def clear_layers(self) -> None:
        self.moments: dict = {}

    def attach(self, optimizer) -> None:
        integrator = optimizer.INTEGRATOR
        if integrator not in ("adaptive", "euclidean"):
            raise ValueError(f"direction PaperAdam (the paper's per-variable Adam) works with "
                             f"AdaptiveBUG (the published loop) and Euclidean only, got "
                             f"{type(optimizer).__name__}: use CarriedAdam")
        if integrator == "adaptive":
            if optimizer.passes != 1:
                raise ValueError(f"passes must be 1 with PaperAdam (the paper's loop has its "
                                 f"own passes), got {optimizer.passes}")
            for i, layer in low_rank_layers(optimizer.model):
                if layer.rank > self.cap(optimizer, layer):
                    raise ValueError(f"layer {i} has rank {layer.rank}, above its cap "
                                     f"{self.cap(optimizer, layer)} (min(n_in, n_out) // 2 or "
                                     f"max_rank): the augmented basis [K1, U0] must fit")
        super().attach(optimizer)

    @staticmethod
    def cap(optimizer, layer) -> int:
        """The layer's rank cap ``c``: ``min(n_in, n_out) // 2`` (at least 1), or the
        optimiser's ``max_rank`` if smaller."""
        c = max(min(layer.n_in, layer.n_out) // 2, 1)
        return c if optimizer.max_rank is None else min(optimizer.max_rank, c)

    def kl(self, i, U0, V0, GV, GtU):      # pragma: no cover - refused by attach
        raise ValueError("PaperAdam has no K- and L-directions outside the paper's loop")

    def core(self, i, U, V, dS, tangent=None):      # pragma: no cover - refused by attach
        raise ValueError("PaperAdam has no S-direction outside the paper's loop")

    def _buffers(self, i, layer, c) -> dict:
        if i not in self.moments:
            dt = layer.dtype
            shapes = {"K": (layer.n_out, c), "L": (layer.n_in, c), "S": (2 * c, 2 * c),
                      "b": (layer.n_out,)}
            self.moments[i] = {k: (np.zeros(s, dt), np.zeros(s, dt)) for k, s in shapes.items()}
        return self.moments[i]

    def _apply(self, value, g, mv, lr) -> None:
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
        value -= (lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(value.dtype, copy=False)

    def adaptive_step(self, opt, X, y) -> StepResult:
        """One step of ``opt`` (an :class:`~lowrank_ref.dlrt.AdaptiveBUG`) as the paper's loop."""
        lr_layers = low_rank_layers(opt.model)
        caps = {i: self.cap(opt, layer) for i, layer in lr_layers}
        opt.set_modes("W")
        res = forward_backward(opt.model, X, y, opt.loss_fn)      # the K- and L-pass point W0
        var = {}
        for i, layer in lr_layers:
            U0, S0, V0 = layer.factors
            GK, GL = layer_kl_gradients(layer)
            var[i] = {"K": U0 @ S0, "L": V0 @ S0.T, "S": np.array(S0), "GK": GK, "GL": GL}
        for real in ("L", "K"):                                   # TF's K-apply, then L-apply
            self.t += 1
            for i, layer in lr_layers:
                buf, v = self._buffers(i, layer, caps[i]), var[i]
                self._apply(v["K"], v["GK"] if real == "K" else None, buf["K"], opt.lr)
                self._apply(v["L"], v["GL"] if real == "L" else None, buf["L"], opt.lr)
                self._apply(v["S"], None, buf["S"], opt.lr)
                self._apply(layer.b.value, None, buf["b"], opt.lr)
        for i, layer in lr_layers:
            U0, _, V0 = layer.factors
            v = var[i]
            if not all_finite(v["K"], v["L"]):
                raise FloatingPointError(f"{type(opt).__name__}: the K- and L-steps of "
                                         f"{layer!r} gave non-finite values (lr {opt.lr:g} "
                                         f"too large?)")
            U_hat = orthonormalize(np.concatenate([v["K"], U0], axis=1))
            V_hat = orthonormalize(np.concatenate([v["L"], V0], axis=1))
            S_hat0 = (U_hat.T @ U0) @ v["S"] @ (V0.T @ V_hat)
            layer.set_mode("S", U_hat=U_hat, S_hat=S_hat0, V_hat=V_hat)
        forward_backward(opt.model, X, y, opt.loss_fn)            # the S-pass
        self.t += 1
        for i, layer in lr_layers:
            buf = self._buffers(i, layer, caps[i])
            self._apply(None, None, buf["K"], opt.lr)
            self._apply(None, None, buf["L"], opt.lr)
            S_hat1 = np.array(layer.S_hat.value)
            self._apply(S_hat1, layer.S_hat.grad, buf["S"], opt.lr)
            self._apply(layer.b.value, layer.b.grad, buf["b"], opt.lr)
            opt.truncate_layer(layer, layer.U_hat, S_hat1, layer.V_hat, caps[i], opt.tau,
                               opt.min_rank, opt.observer)
        for i, layer in enumerate(opt.model.layers):               # the output layer(s)
            if i not in caps:
                for j, p in enumerate(layer.parameters()):
                    self.update(f"{i}.{p.name or j}", p, p.grad, opt.lr)
        return res

    def state_arrays(self) -> dict:
        out = super().state_arrays()
        for i, bufs in self.moments.items():
            for k, (m, v) in bufs.items():
                out.update({f"paper.{i}.{k}.m": m, f"paper.{i}.{k}.v": v})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        super().load_state_arrays(arrays)
        self.clear_layers()
        for key in arrays:
            if key.startswith("paper.") and key.endswith(".m"):
                _, i, k, _ = key.split(".")
                self.moments.setdefault(int(i), {})[k] = (
                    np.array(arrays[key]), np.array(arrays[f"paper.{i}.{k}.v"]))
