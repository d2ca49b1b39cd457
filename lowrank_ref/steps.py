"""The pieces of one low-rank step, shared by the integrators and the DLRT optimisers.

Every step of :mod:`lowrank_ref.integrators` and :mod:`lowrank_ref.dlrt` is assembled from
the same few operations on the factors of ``W0 = U0 S0 V0^T`` (docs/design.md, section
"Notation"; ``K = U S``, ``L = V S^T``):

* :func:`k_step`, :func:`l_step` -- the K- and L-steps in explicit Euler form,
  ``K1 = U0 S0 - h D_K``, ``L1 = V0 S0^T - h D_L``, where ``D_K``, ``D_L`` are the
  directions of the sub-steps (``G V0`` and ``G^T U0`` for plain SGD on the gradient
  ``G = dL/dW``; ``-F V0``, ``-F^T U0`` for the matrix ODE ``dW/dt = F``);
* :func:`lowrank_ref.lowrank.augment_basis` -- the augmented bases ``U_hat = [U0, U~]``;
* :func:`galerkin_core` -- the Galerkin start ``(U1^T U0) S0 (V0^T V1)`` in new bases, and
  :func:`augmented_core`, its exact value ``[[S0, 0], [0, 0]]`` when ``U1 = [U0, U~]``;
* :func:`parallel_core` -- the augmented core of the parallel step ([CKL24]; GeoLoRA,
  [SZCTK24]): the S-step in the old bases and the two off-diagonal blocks from ``K1`` and
  ``L1``, a zero new-new block;
* :func:`lowrank_ref.truncation.truncate` -- the rank rule;
* :func:`kl_gradients`, :func:`projected_gradient`, :func:`augmented_gradient` -- the
  projected gradients ``G V0``, ``G^T U0``, ``U1^T G V1`` and ``U_hat^T G V_hat`` of a
  training step, from the arrays a low-rank layer records in one backward (its *taps*,
  :class:`lowrank_ref.lowrank_layers.LowRankLayer`): ``G = dZ^T X`` is never formed;
* :func:`singular_coordinates` -- ``W0`` written in its singular vectors (the coordinates
  in which Adam's coordinatewise second moments do not depend on the factorisation).

Only arrays go in and out (no autodiff engine): the functions do not check their arguments
(the callers built them) and keep the dtype of their inputs.

[CKL24] G. Ceruti, J. Kusch, C. Lubich. A parallel rank-adaptive integrator for dynamical
low-rank approximation. SISC (2024).
[SZCTK24] S. Schotthöfer, E. Zangrando, G. Ceruti, F. Tudisco, J. Kusch. GeoLoRA: geometric
integration for parameter efficient fine-tuning. arXiv 2410.18720 (2024).
"""
from __future__ import annotations

import numpy as np

from .lowrank import LowRank, reorthonormalize, small_svd

__all__ = ["k_step", "l_step", "galerkin_core", "augmented_core", "parallel_core",
           "kl_gradients", "projected_gradient", "augmented_gradient", "core_gradient",
           "singular_coordinates", "all_finite"]


def k_step(U0: np.ndarray, S0: np.ndarray, D_K: np.ndarray, h: float) -> np.ndarray:
    """The K-step in explicit Euler form: ``K1 = U0 S0 - h D_K`` (m, r).

    ``D_K`` is the direction of the K-step at ``W0 = U0 S0 V0^T``: ``G V0`` for SGD on the
    gradient ``G`` (the K-step of [SZKCT22]), a momentum or Adam direction of it
    (:mod:`lowrank_ref.directions`, :mod:`lowrank_ref.adam`).

    Examples
    --------
    >>> k_step(np.eye(2), np.diag([2.0, 1.0]), np.ones((2, 2)), 0.5).tolist()
    [[1.5, -0.5], [-0.5, 0.5]]
    """
    return U0 @ S0 - h * D_K


def l_step(V0: np.ndarray, S0: np.ndarray, D_L: np.ndarray, h: float) -> np.ndarray:
    """The L-step in explicit Euler form: ``L1 = V0 S0^T - h D_L`` (n, r); ``D_L`` is
    ``G^T U0`` for SGD (see :func:`k_step`)."""
    return V0 @ S0.T - h * D_L


def galerkin_core(U1: np.ndarray, U0: np.ndarray, S0: np.ndarray, V0: np.ndarray,
                  V1: np.ndarray) -> np.ndarray:
    """The Galerkin start ``S~0 = (U1^T U0) S0 (V0^T V1)``: ``W0`` projected onto the new
    bases, ``U1 S~0 V1^T = P_{U1} W0 P_{V1}`` ([CL22], [CKL22]).

    Examples
    --------
    >>> U0 = np.eye(3, 1); U1 = np.eye(3, 2)
    >>> galerkin_core(U1, U0, np.array([[2.0]]), U0, U1).tolist()
    [[2.0, 0.0], [0.0, 0.0]]
    """
    return (U1.T @ U0) @ S0 @ (V0.T @ V1)


def augmented_core(S0: np.ndarray, k_u: int, k_v: int) -> np.ndarray:
    """``S_hat0`` (k_u, k_v): ``S0`` in the top-left block, zeros elsewhere.

    The Galerkin start :func:`galerkin_core` in augmented bases ``U_hat = [U0, U~]``,
    ``V_hat = [V0, V~]`` (``U~ ⟂ U0``), formed without products: ``U_hat S_hat0 V_hat^T =
    W0`` exactly, so the S-step of the rank-adaptive step is evaluated at ``W0``.
    """
    r = S0.shape[0]
    S_hat0 = np.zeros((k_u, k_v), dtype=S0.dtype)
    S_hat0[:r, :r] = S0
    return S_hat0


def parallel_core(S_bar: np.ndarray, K1: np.ndarray, L1: np.ndarray, U_hat: np.ndarray,
                  V_hat: np.ndarray) -> np.ndarray:
    """The augmented core of the parallel step ([CKL24]; the GeoLoRA step, [SZCTK24])::

        S_hat = [[ S_bar,           L1^T V~ ],      (r + p_u, r + p_v)
                 [ U~^T K1,         0       ]]

    with ``U_hat = [U0, U~]``, ``V_hat = [V0, V~]`` (``r`` = the rows of ``S_bar``), so that
    ``U_hat S_hat V_hat^T = U0 S_bar V0^T + U0 L1^T P_{V~} + P_{U~} K1 V0^T``: the S-step in
    the old bases plus the new directions of the K- and L-steps, and no new-new block.
    """
    r = S_bar.shape[0]
    U_tilde, V_tilde = U_hat[:, r:], V_hat[:, r:]
    S_hat = np.zeros((U_hat.shape[1], V_hat.shape[1]), dtype=np.result_type(S_bar, K1, L1))
    S_hat[:r, :r] = S_bar
    S_hat[:r, r:] = L1.T @ V_tilde          # L~^T  (r, p_v)
    S_hat[r:, :r] = U_tilde.T @ K1          # K~    (p_u, r)
    return S_hat


def kl_gradients(taps: dict):
    """``G V0`` (n_out, r) and ``G^T U0`` (n_in, r) from the taps of one backward at ``W0``.

    With ``G = dL/dW = dZ^T X`` (``X`` the layer's rows -- its input, or the unfolded
    patches of a convolution -- and ``dZ = dL/dZ``, the "delta" of backpropagation;
    [SZKCT22]): ``G V0 = dZ^T (X V0)`` and ``G^T U0 = X^T (dZ U0)``, where ``X V0`` and
    ``dZ U0`` were formed by the forward and the backward anyway (``taps["XV"]``,
    ``taps["dZ_U"]``).
    """
    return taps["dZ"].T @ taps["XV"], taps["X"].T @ taps["dZ_U"]


def core_gradient(taps: dict) -> np.ndarray:
    """``U0^T G V0 = (dZ U0)^T (X V0)`` (r, r): the S-step gradient in the old bases."""
    return taps["dZ_U"].T @ taps["XV"]


def projected_gradient(taps: dict, U1: np.ndarray, V1: np.ndarray) -> np.ndarray:
    """``U1^T G V1 = (dZ U1)^T (X V1)`` for any bases ``U1`` (n_out, k), ``V1`` (n_in, l)."""
    return (taps["dZ"] @ U1).T @ (taps["X"] @ V1)


def augmented_gradient(taps: dict, U_hat: np.ndarray, V_hat: np.ndarray,
                       G_V0: np.ndarray) -> np.ndarray:
    """``U_hat^T G V_hat`` for ``V_hat = [V0, V~]``, reusing ``G V0`` of the K-step.

    ``G V_hat = [G V0, dZ^T (X V~)]``: one more pass over the rows, for the new columns only.
    """
    r = G_V0.shape[1]
    G_V_hat = np.concatenate([G_V0, taps["dZ"].T @ (taps["X"] @ V_hat[:, r:])], axis=1)
    return U_hat.T @ G_V_hat


def singular_coordinates(Y: LowRank) -> LowRank:
    """The same matrix written in its singular vectors: ``(U P, diag(s), V Q)``.

    ``U``, ``V`` are re-orthonormalised first (:func:`lowrank_ref.lowrank.reorthonormalize`),
    then the small core is diagonalised, ``S = P diag(s) Q^T``. These coordinates are
    determined by the matrix up to the signs of singular vector pairs (and rotations within
    repeated singular values): Adam's coordinatewise second moments carried in them do not
    depend on the factorisation (:class:`lowrank_ref.adam.CarriedAdam`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y = LowRank.random(rng, 5, 4, 2)
    >>> Z = singular_coordinates(LowRank(Y.U, np.array([[1.0, 2.0], [0.0, 1.0]]), Y.V))
    >>> bool(np.allclose(Z.S, np.diag(np.diag(Z.S))))
    True
    """
    U, S, V = reorthonormalize(Y)
    P, s, Qt = small_svd(S)
    return LowRank(U @ P, np.diag(s).astype(S.dtype), V @ Qt.T)


def all_finite(*arrays) -> bool:
    """Whether every entry of every array is finite (the optimisers' divergence check)."""
    return all(bool(np.all(np.isfinite(a))) for a in arrays)
