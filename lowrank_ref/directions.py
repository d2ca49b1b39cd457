"""Direction rules of the optimisers: plain SGD and heavy-ball momentum carried across bases.

Every optimiser of :mod:`lowrank_ref.dlrt` is an *integrator* (how the factors of a low-rank
layer move: fixed-rank BUG, rank-adaptive BUG, the parallel step, S-only) combined with a
*direction rule* (what each sub-step moves along, given the gradient), in the spirit of
optax's gradient transformations: the rule owns its state and says how that state is
carried into a new basis. The integrator asks the rule, per step,

* :meth:`Direction.update` -- to step a plain parameter (a bias, a dense weight, a vanilla
  factor) in place: ``p <- p - lr d(g)``;
* :meth:`Direction.kl` -- for the directions ``D_K``, ``D_L`` of the K- and L-steps of a
  low-rank layer at ``W0 = U0 S0 V0^T``, given ``G V0`` and ``G^T U0``;
* :meth:`Direction.core` -- for the direction ``D_S`` of the S-step in the bases ``(U, V)``
  the step uses (the new, the augmented or the old ones), given ``U^T G V``; the rule then
  keeps its state for the next step, in those bases or (``tangent=...``) as a tangent
  vector at ``W0``.

The rules here are :class:`SGD` (``D = G``: the explicit Euler step of the gradient flow,
the case the analysis of [SZKCT22] covers) and :class:`Momentum` (heavy ball, a velocity
matrix re-expressed exactly in each new basis). The Adam rules are in
:mod:`lowrank_ref.adam`. Which rule works with which integrator, and why some pairs are
refused: docs/design.md, section "Optimisers: integrator x direction".

[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import numpy as np

from ._validate import check_real

__all__ = ["Direction", "SGD", "Momentum"]


class Direction:
    """Base of the direction rules (the protocol the integrators call; see the module doc).

    A rule is attached to one optimiser (:meth:`attach`, called by the optimiser's
    constructor): its state belongs to that optimiser's model. Low-rank layers are
    identified by their index ``i`` in ``model.layers``, plain parameters by a string key.

    Class attributes
    ----------------
    name : str
        The rule's name in messages.
    singular_coordinates : bool
        The rule needs each low-rank layer written in its singular vectors before a step
        (:func:`lowrank_ref.steps.singular_coordinates`): a coordinatewise state.
    replaces_adaptive_step : bool
        The rule changes the rank-adaptive step itself (:class:`lowrank_ref.adam.PaperAdam`,
        the published loop): the integrator calls ``rule.adaptive_step(optimizer, X, y)``.
    """

    name = "direction"
    singular_coordinates = False
    replaces_adaptive_step = False

    def attach(self, optimizer) -> None:
        """Bind the rule to ``optimizer``; ValueError if it is bound to another one or does
        not work with its integrator (``optimizer.INTEGRATOR``)."""
        owner = getattr(self, "_owner", None)
        if owner is not None and owner is not optimizer:
            raise ValueError(f"direction {self!r} is already used by another optimiser: its "
                             f"state belongs to that model; create a new {type(self).__name__}")
        self._owner = optimizer

    def start_step(self) -> None:
        """Called once per optimiser step, before any direction of the step is asked."""

    def update(self, key: str, p, g: np.ndarray, lr: float) -> None:
        """Step the plain parameter ``p`` (a Tensor) in place along the direction of ``g``."""
        raise NotImplementedError

    def kl(self, i: int, U0: np.ndarray, V0: np.ndarray, GV: np.ndarray, GtU: np.ndarray):
        """Directions ``(D_K, D_L)`` of the K- and L-steps of low-rank layer ``i``."""
        raise NotImplementedError

    def core(self, i: int, U: np.ndarray, V: np.ndarray, dS: np.ndarray, tangent=None):
        """Direction ``D_S`` of the S-step of layer ``i`` in the bases ``U``, ``V``, given
        ``dS = U^T G V``; ``tangent = (U0, V0, D_K, D_L)`` when the step's update is a tangent
        vector at ``W0 = U0 S0 V0^T`` (fixed-rank and parallel steps)."""
        raise NotImplementedError

    def state_arrays(self) -> dict:
        """The state as named arrays (checkpoints)."""
        return {}

    def load_state_arrays(self, arrays: dict) -> None:
        """Restore the state from :meth:`state_arrays` (other keys are ignored)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SGD(Direction):
    """Plain SGD: the direction is the gradient, ``p <- p - lr g``; no state.

    With it every integrator is an explicit Euler step of the gradient flow restricted to
    the low-rank manifold ([SZKCT22]), e.g. the K-step ``K1 = U0 S0 - lr G V0``.

    Examples
    --------
    >>> from lowrank_ref.autodiff import Tensor
    >>> p = Tensor(np.array([1.0, 2.0]))
    >>> SGD().update("p", p, np.array([1.0, -1.0]), 0.5)
    >>> p.value.tolist()
    [0.5, 2.5]
    """

    name = "sgd"

    def update(self, key, p, g, lr) -> None:
        p.value -= lr * g

    def kl(self, i, U0, V0, GV, GtU):
        return GV, GtU

    def core(self, i, U, V, dS, tangent=None):
        return dS


class Momentum(Direction):
    """Heavy-ball momentum ``mu``: plain for dense parameters, carried across bases for the
    factors of low-rank layers.

    Momentum is not part of the analysis of [SZKCT22] (whose steps are explicit Euler steps
    of the gradient flow, momentum 0); it is a heuristic that trains faster.

    **Plain parameters**: ``v <- mu v + g``, ``p <- p - lr v`` (the PyTorch convention;
    ``v = g`` at the first step). Updates are in place and keep the dtype.

    **Low-rank layers**: the velocity is a matrix ``M`` of the layer's shape, stored in
    factored form ``M = U_m B V_m^T`` with the bases of the previous step. With
    ``G = dL/dW`` at the current point ``W0 = U0 S0 V0^T`` and ``N = mu M + G``:

    * K-step direction ``N V0 = mu U_m (B (V_m^T V0)) + G V0``;
    * L-step direction ``N^T U0 = mu V_m (B^T (U_m^T U0)) + G^T U0``;
    * S-step direction in the bases ``(U, V)`` of the step:
      ``U^T N V = mu (U^T U_m) B (V_m^T V) + U^T G V``,

    and the velocity kept for the next step is ``U D_S V^T`` (``N`` restricted to
    ``span(U) x span(V)``: the augmented bases of the rank-adaptive step, the frozen ones
    of S-only training), or, for steps whose update is a tangent vector at ``W0``
    (fixed-rank BUG, the parallel step: ``tangent=(U0, V0, N V0, N^T U0)``), the tangent
    projection ``P_T N = N V0 V0^T + U0 U0^T N - U0 U0^T N V0 V0^T`` written as
    ``[U0, N V0] [[-U0^T N V0, I], [I, 0]] [V0, N^T U0]^T`` (storing ``N`` in the new bases
    ``U1 x V1`` of the fixed-rank step would give a K-step velocity inside ``span(U1)``:
    momentum that never turns the basis). The velocity is thus a matrix, re-expressed
    exactly in each new basis, independent of the factorisation; costs ``O((n_in + n_out)
    r^2)`` per layer, nothing dense is formed. The state owns its arrays (copies of the
    layer's bases), so an uninterrupted run and a resumed one compute the same products.

    Parameters
    ----------
    mu : float in [0, 1)
        0 gives plain SGD exactly.

    Examples
    --------
    >>> from lowrank_ref.autodiff import Tensor
    >>> p, rule = Tensor(np.array([1.0])), Momentum(0.5)
    >>> for _ in range(2): rule.update("p", p, np.array([1.0]), 0.1)
    >>> p.value.round(6).tolist()                # 1 - 0.1 * 1 - 0.1 * (0.5 + 1)
    [0.75]
    """

    name = "momentum"

    def __init__(self, mu: float):
        self.mu = check_real(mu, "momentum", low=0.0, high=1.0, high_open=True)
        self.buffers: dict = {}
        self.store: dict = {}

    def __repr__(self) -> str:
        return f"Momentum({self.mu:g})"

    def update(self, key, p, g, lr) -> None:
        if self.mu:
            v = self.buffers.get(key)
            v = g.copy() if v is None else np.add(self.mu * v, g, out=v)
            self.buffers[key] = v
            g = v
        p.value -= lr * g

    def kl(self, i, U0, V0, GV, GtU):
        vel = self.store.get(i) if self.mu else None
        if vel is None:
            return GV, GtU
        U_m, B, V_m = vel
        return (GV + self.mu * (U_m @ (B @ (V_m.T @ V0))),
                GtU + self.mu * (V_m @ (B.T @ (U_m.T @ U0))))

    def core(self, i, U, V, dS, tangent=None):
        if not self.mu:
            return dS
        vel = self.store.get(i)
        if vel is not None:
            U_m, B, V_m = vel
            dS = dS + self.mu * ((U.T @ U_m) @ B @ (V_m.T @ V))
        if tangent is None:
            self.store[i] = (np.array(U), np.array(dS), np.array(V))   # owned copies
        else:
            self.store[i] = self.tangent_velocity(*tangent)
        return dS

    @staticmethod
    def tangent_velocity(U0, V0, vK, vL) -> tuple:
        """``P_T N`` at ``W0 = U0 S0 V0^T`` from ``vK = N V0``, ``vL = N^T U0``, as
        ``(U_m, B, V_m) = ([U0, vK], [[-U0^T vK, I], [I, 0]], [V0, vL])``."""
        r = U0.shape[1]
        B = np.zeros((2 * r, 2 * r), dtype=U0.dtype)
        B[:r, :r] = -(U0.T @ vK)
        B[:r, r:] = B[r:, :r] = np.eye(r, dtype=U0.dtype)
        return np.concatenate([U0, vK], axis=1), B, np.concatenate([V0, vL], axis=1)

    def state_arrays(self) -> dict:
        out = {f"momentum.{k}": v for k, v in self.buffers.items()}
        for i, (U_m, B, V_m) in self.store.items():
            out.update({f"velocity.{i}.U": U_m, f"velocity.{i}.B": B, f"velocity.{i}.V": V_m})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        self.buffers = {k[len("momentum."):]: np.array(v) for k, v in arrays.items()
                        if k.startswith("momentum.")}
        self.store = {}
        for key in arrays:
            if key.startswith("velocity.") and key.endswith(".B"):
                i = int(key.split(".")[1])
                self.store[i] = tuple(np.array(arrays[f"velocity.{i}.{part}"])
                                      for part in ("U", "B", "V"))
