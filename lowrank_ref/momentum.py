"""Heavy-ball momentum of the optimisers: plain for dense parameters, carried across bases
for the factors of low-rank layers.

Momentum is not part of the analysis of [SZKCT22] (whose steps are explicit Euler steps of
the gradient flow, momentum 0); it is a heuristic that trains faster. For a dense parameter
it is the usual heavy ball (:class:`PlainSGD`). For a low-rank layer the velocity is a
*matrix* of the weight's shape that lives in the (augmented) bases of the previous step and
is re-expressed exactly in each new basis (:class:`FactorMomentum`), so that it does not
depend on the factorisation and never forms a dense matrix.

[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import numpy as np

from .autodiff import Tensor

__all__ = ["PlainSGD", "FactorMomentum"]


class PlainSGD:
    """SGD with optional heavy-ball momentum for a list of leaf Tensors.

    ``v <- momentum v + g``; ``p <- p - lr v`` (the PyTorch convention; momentum 0 is the
    explicit Euler step of the gradient flow). Updates are in place and keep the dtype.
    """

    def __init__(self, momentum: float = 0.0):
        self.momentum = momentum
        self.buffers: dict = {}

    def update(self, key: str, p: Tensor, g: np.ndarray, lr: float) -> None:
        if self.momentum:
            v = self.buffers.get(key)
            v = g.copy() if v is None else np.add(self.momentum * v, g, out=v)
            self.buffers[key] = v
            g = v
        p.value -= lr * g

    def state_arrays(self) -> dict:
        return {f"momentum.{k}": v for k, v in self.buffers.items()}

    def load_state_arrays(self, arrays: dict) -> None:
        self.buffers = {k[len("momentum."):]: np.array(v) for k, v in arrays.items()
                        if k.startswith("momentum.")}


class FactorMomentum:
    """Heavy-ball momentum for low-rank layers, carried across basis changes.

    The velocity of a low-rank layer is a matrix ``M`` of the layer's shape, stored in
    factored form ``M = U_m B V_m^T`` with the (augmented) bases of the previous step.
    With ``G = dL/dW`` at the current point ``W0 = U0 S0 V0^T`` and momentum ``mu``:

    * K-step velocity ``(mu M + G) V0 = mu U_m (B (V_m^T V0)) + G V0``;
    * L-step velocity ``(mu M + G)^T U0 = mu V_m (B^T (U_m^T U0)) + G^T U0``;
    * S-step velocity ``U_hat^T (mu M + G) V_hat = mu (U_hat^T U_m) B (V_m^T V_hat) + U_hat^T G V_hat``,

    and the new velocity stored is ``U_hat (S-step velocity) V_hat^T``: the matrix
    ``mu M + G`` projected onto ``span(U_hat) x span(V_hat)`` (the component of ``G``
    outside the augmented bases is not remembered). The velocity is thus a matrix,
    re-expressed exactly in each new basis, independent of the factorisation; with
    ``mu = 0`` the optimisers are exactly the explicit Euler (SGD) steps of [SZKCT22].
    Costs ``O((n_in + n_out) r^2)`` per layer; nothing dense is formed.

    The fixed-rank step has no augmented basis: storing its velocity in the new bases
    ``U1 x V1`` would give a K-step velocity inside ``span(U1)``, i.e. momentum that never
    turns the basis. It stores instead (:meth:`remember_tangent`) the tangent-space
    projection at ``W0`` of ``N = mu M + G``,
    ``P_T N = N V0 V0^T + U0 U0^T N - U0 U0^T N V0 V0^T``, which needs only the K- and
    L-step velocities ``N V0``, ``N^T U0`` and is written in the same form
    ``U_m B V_m^T`` with ``U_m = [U0, N V0]``, ``V_m = [V0, N^T U0]`` (``U_m`` and ``V_m``
    need not be orthonormal: only products with them are taken).
    """

    def __init__(self, mu: float):
        self.mu = mu
        self.store: dict = {}

    def kl_velocities(self, i: int, U0, V0, GV, GtU):
        """Velocities of the K- and L-steps of layer ``i``."""
        vel = self.store.get(i) if self.mu else None
        if vel is None:
            return GV, GtU
        U_m, B, V_m = vel
        return (GV + self.mu * (U_m @ (B @ (V_m.T @ V0))),
                GtU + self.mu * (V_m @ (B.T @ (U_m.T @ U0))))

    def s_velocity(self, i: int, U_hat, V_hat, dS, remember: bool = True):
        """Velocity of the S-step of layer ``i`` in the bases ``U_hat``, ``V_hat``; remembered
        as ``U_hat (velocity) V_hat^T`` unless ``remember`` is False."""
        if not self.mu:
            return dS
        vel = self.store.get(i)
        if vel is not None:
            U_m, B, V_m = vel
            dS = dS + self.mu * ((U_hat.T @ U_m) @ B @ (V_m.T @ V_hat))
        if remember:
            self.store[i] = (U_hat, dS, V_hat)
        return dS

    def remember_tangent(self, i: int, U0, V0, vK, vL) -> None:
        """Store ``P_T N`` at ``W0 = U0 S0 V0^T`` from ``vK = N V0``, ``vL = N^T U0``:
        ``P_T N = [U0, vK] [[-U0^T vK, I], [I, 0]] [V0, vL]^T``."""
        if not self.mu:
            return
        r = U0.shape[1]
        B = np.zeros((2 * r, 2 * r), dtype=U0.dtype)
        B[:r, :r] = -(U0.T @ vK)
        B[:r, r:] = B[r:, :r] = np.eye(r, dtype=U0.dtype)
        self.store[i] = (np.concatenate([U0, vK], axis=1), B, np.concatenate([V0, vL], axis=1))

    def state_arrays(self) -> dict:
        out = {}
        for i, (U_m, B, V_m) in self.store.items():
            out.update({f"velocity.{i}.U": U_m, f"velocity.{i}.B": B, f"velocity.{i}.V": V_m})
        return out

    def load_state_arrays(self, arrays: dict) -> None:
        self.store = {}
        for key in arrays:
            if key.startswith("velocity.") and key.endswith(".B"):
                i = int(key.split(".")[1])
                self.store[i] = tuple(np.array(arrays[f"velocity.{i}.{part}"])
                                      for part in ("U", "B", "V"))
