"""Dynamical low-rank training (DLRT): the optimisers, an integrator times a direction rule.

Schotthöfer, Zangrando, Kusch, Ceruti, Tudisco, "Low-rank lottery tickets: finding efficient
low-rank neural networks via matrix differential equations", NeurIPS 2022 ([SZKCT22];
its equation numbers are not quoted: not checked against the published text). Training is
the gradient flow ``dW/dt = -dL/dW`` restricted to the manifold of rank-r matrices,
``W = U S V^T``, integrated with the K-, L- and S-steps of the unconventional BUG
integrator ([CL22]) and its rank-adaptive version ([CKL22]). With ``G = dL/dW`` (never
formed: ``G = dZ^T X`` for a layer with rows ``X`` and ``dZ = dL/dZ``, so ``G V0 = dZ^T (X
V0)`` etc.; :mod:`lowrank_ref.steps`) and the step ``h = lr``:

* K-step:  ``K1 = U0 S0 - lr D_K``,   L-step:  ``L1 = V0 S0^T - lr D_L``,
* S-step:  ``S1 = S~0 - lr D_S``  (Galerkin, in the bases the integrator chooses),

where ``D_K``, ``D_L``, ``D_S`` are given by a *direction rule*: ``G V0``, ``G^T U0``,
``U^T G V`` for plain SGD (:class:`~lowrank_ref.directions.SGD`, the explicit Euler step
that [SZKCT22] analyses), heavy-ball momentum carried across bases
(:class:`~lowrank_ref.directions.Momentum`), or Adam (:mod:`lowrank_ref.adam`). Every
optimiser takes ``direction=`` (or ``momentum=``, a shorthand for
``Momentum(momentum)``) and works on every low-rank layer (dense and convolutional:
:class:`~lowrank_ref.lowrank_layers.LowRankLayer`); biases and all other layers (dense
layers, dense convolutions, vanilla ``U V^T`` layers) take the rule's plain step with their
gradient at the start point. The integrators:

* :class:`FixedRankBUG` -- fixed rank ([SZKCT22], BUG [CL22] with Euler): ``U1 = qr(K1)``,
  ``V1 = qr(L1)``, ``S~0 = (U1^T U0) S0 (V0^T V1)``, a second forward/backward at
  ``W~ = U1 S~0 V1^T`` gives the S-step.
* :class:`AdaptiveBUG` -- rank-adaptive ([SZKCT22], [CKL22]):
  ``U_hat = [U0, U~]`` spanning ``[U0, K1]``, ``V_hat`` likewise,
  ``S_hat1 = S_hat0 - lr D_S(U_hat^T G V_hat)``, truncation to ``tau ||S_hat1||_F``.
  ``passes=3`` runs it as published (a K-, an L- and an S-pass); ``passes=1`` (the
  default) takes all three gradients from one backward at ``W0`` (``U_hat S_hat0 V_hat^T
  = W0``), equal to rounding.
* :class:`ParallelBUG` -- the parallel step ([CKL24] for matrix ODEs; GeoLoRA [SZCTK24]):
  K, L and S move simultaneously from one gradient at ``W0`` (the S-step in the old
  bases), the basis is augmented afterwards, the augmented core has a zero new-new block
  (:func:`~lowrank_ref.steps.parallel_core`); truncation to ``tau``. Under plain SGD the
  matrix before the truncation is ``W0 - lr P_T(W0) G`` (tested).
* :class:`SOnly` -- fine-tuning of ``S`` with ``U``, ``V`` frozen ([SZKCT22]).
* :class:`Euclidean` -- every parameter as an array of its own: dense networks and vanilla
  ``U V^T`` factorisations (no manifold).

The training methods that use them ("dense", "fixed", ...), with their options and
defaults, are the records of :mod:`lowrank_ref.methods` (``make_optimizer`` is there).

Old names (kept as aliases of the same classes): ``FixedRankKLS``, ``AdaptiveKLS`` (the
paper's "KLS" is BUG, not projector splitting), ``SOnlySGD``, ``DenseSGD``. Also importable
from here, as before: :class:`~lowrank_ref.optimizers.Euclidean`,
:class:`~lowrank_ref.optimizers.StepResult` (:mod:`lowrank_ref.optimizers`, the bases of the
optimisers), :func:`~lowrank_ref.networks.low_rank_mlp` and
:func:`~lowrank_ref.networks.parameter_counts` (:mod:`lowrank_ref.networks`).

[SZCTK24] S. Schotthöfer, E. Zangrando, G. Ceruti, F. Tudisco, J. Kusch. GeoLoRA: geometric
integration for parameter efficient fine-tuning. arXiv 2410.18720 (2024).
"""
from __future__ import annotations

from typing import Optional

from ._validate import check_callable, check_int, check_rank_bounds, check_real
from .directions import Direction
from .lowrank import LowRank, augment_basis, orthonormalize
from .networks import low_rank_mlp, parameter_counts
from .nn import Network
from .optimizers import (Euclidean, LowRankOptimizer, StepResult, forward_backward,
                         layer_kl_gradients, low_rank_layers)
from .steps import (augmented_core, augmented_gradient, core_gradient, galerkin_core, k_step,
                    l_step, parallel_core, projected_gradient)
from .threads import uses_blas_threads

__all__ = ["FixedRankBUG", "AdaptiveBUG", "ParallelBUG", "SOnly",
           "FixedRankKLS", "AdaptiveKLS", "SOnlySGD", "DenseSGD",
           "Euclidean", "StepResult", "low_rank_mlp", "parameter_counts"]



class FixedRankBUG(LowRankOptimizer):
    """Fixed-rank DLRT step of [SZKCT22] (the BUG integrator [CL22] with Euler; the paper's "KLS").

    For every low-rank layer, with ``G0 = dL/dW`` at ``W0 = U0 S0 V0^T``:

    1. one forward/backward at ``W0`` (mode ``"W"``) gives ``G0 V0`` and ``G0^T U0``;
    2. K-step ``K1 = U0 S0 - lr D_K``, ``U1 = qr(K1)``; L-step ``L1 = V0 S0^T - lr D_L``,
       ``V1 = qr(L1)`` (``D_K = G0 V0``, ``D_L = G0^T U0`` under SGD);
    3. Galerkin start ``S~0 = (U1^T U0) S0 (V0^T V1)``;
    4. a second forward/backward at ``W~ = U1 S~0 V1^T`` (mode ``"S"``) gives
       ``U1^T G(W~) V1`` and ``S1 = S~0 - lr D_S``.

    The rank never changes.

    Parameters
    ----------
    model : Network
        With at least one low-rank layer (any :class:`~lowrank_ref.lowrank_layers.LowRankLayer`).
    lr : float
    momentum : float in [0, 1), default 0
        Shorthand for ``direction=Momentum(momentum)``.
    loss_fn : callable, optional
    passes : {2, 1}, default 2
        2: the algorithm above. 1 (opt-in, *not* the algorithm of [SZKCT22]): the S-step
        gradient is taken at ``W0`` instead of ``W~``, ``U1^T G0 V1 = (dZ U1)^T (X V1)``
        from the taps of the first backward, so that (SGD) ``S1 = U1^T (W0 - lr G0) V1``:
        the Galerkin projection of the SGD step onto the new bases. It saves the second
        forward/backward (measured in ``benchmarks/README.md``); it is still a first-order
        step of the projected gradient flow, but its S-step sees the old weight.
    direction : Direction, optional, keyword-only
        Default SGD (or ``Momentum(momentum)``); any rule but
        :class:`~lowrank_ref.adam.PaperAdam` (docs/design.md, section "Optimisers:
        integrator x direction").
    """

    INTEGRATOR = "fixed"

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None,
                 passes: int = 2, *, direction: Optional[Direction] = None):
        super().__init__(model, lr, momentum, loss_fn, direction)
        if check_int(passes, "passes") not in (1, 2):
            raise ValueError(f"passes must be 2 (the algorithm of [SZKCT22]) or 1, got {passes!r}")
        self.passes = int(passes)
        self.direction.attach(self)

    @uses_blas_threads
    def step(self, X, y) -> StepResult:
        res, plain = self.start(X, y)
        tangents, dS_at_W0 = {}, {}
        for i, layer in low_rank_layers(self.model):
            U0, S0, V0 = layer.factors
            D_K, D_L = self.direction.kl(i, U0, V0, *layer_kl_gradients(layer))
            K1, L1 = k_step(U0, S0, D_K, self.lr), l_step(V0, S0, D_L, self.lr)
            self.check_finite(layer, "K- and L-steps", K1, L1)
            U1, V1 = orthonormalize(K1), orthonormalize(L1)
            if self.passes == 1:                               # U1^T G0 V1 from the taps
                dS_at_W0[i] = projected_gradient(layer.taps, U1, V1)
            tangents[i] = (U0, V0, D_K, D_L)
            layer.set_factors(LowRank(U1, galerkin_core(U1, U0, S0, V0, V1), V1))
            layer.set_mode("S")
        if self.passes == 2:
            forward_backward(self.model, X, y, self.loss_fn)   # S-step gradient at W~
        for i, layer in low_rank_layers(self.model):
            dS = layer.S_hat.grad if self.passes == 2 else dS_at_W0[i]
            D_S = self.direction.core(i, layer.U, layer.V, dS, tangent=tangents[i])
            layer.set_factors(LowRank(layer.U, layer.S_hat.value - self.lr * D_S, layer.V))
        self.apply_plain(plain)
        return res


class _Truncating(LowRankOptimizer):
    """The options of the rank-adaptive steps: ``tau``, the rank clamp, the observer."""

    def __init__(self, model, lr, tau, min_rank, max_rank, momentum, loss_fn, direction,
                 observer):
        super().__init__(model, lr, momentum, loss_fn, direction)
        self.tau = check_real(tau, "tau", low=0.0)
        self.min_rank, self.max_rank = check_rank_bounds(min_rank, max_rank)
        if observer is not None:
            check_callable(observer, "observer", "observer(S_hat) or None")
        self.observer = observer

    def layer_max_rank(self, layer) -> int:
        """``max_rank``, or the full rank ``min(n_in, n_out)`` of the layer if None."""
        return min(layer.n_in, layer.n_out) if self.max_rank is None else self.max_rank

    def finish(self, layer, U_hat, S_hat1, V_hat) -> None:
        self.truncate_layer(layer, U_hat, S_hat1, V_hat, self.layer_max_rank(layer),
                            self.tau, self.min_rank, self.observer)


_TRUNCATION_PARAMETERS = """tau : float
        Relative truncation tolerance, ``>= 0``.
    min_rank : int, default 1
    max_rank : int or None
        Default ``None``: the full rank ``min(n_in, n_out)`` of each layer's matrix (the
        augmented basis is capped there by :func:`~lowrank_ref.lowrank.augment_basis`), so a
        layer may start at full rank, as the LeNet5 runs of [SZKCT22] do."""


class AdaptiveBUG(_Truncating):
    """Rank-adaptive DLRT step of [SZKCT22] ([CKL22] with Euler).

    For every low-rank layer, with ``G0 = dL/dW`` at ``W0 = U0 S0 V0^T``:

    1. K-step ``K1 = U0 S0 - lr D_K``; L-step ``L1 = V0 S0^T - lr D_L``;
    2. augmented bases ``U_hat = [U0, U~]``, ``V_hat = [V0, V~]`` spanning ``[U0, K1]`` and
       ``[V0, L1]`` (:func:`lowrank_ref.lowrank.augment_basis`, rank-revealing, at most 2r
       and at most ``n_out``/``n_in`` columns); ``U0``, ``V0`` are re-orthonormalised first
       (:func:`lowrank_ref.lowrank.reorthonormalize`), since ``U_hat`` keeps them as its first
       block and round-off would otherwise accumulate over thousands of steps;
    3. Galerkin start ``S_hat0 = (U_hat^T U0) S0 (V0^T V_hat)``, which is ``S0`` in the top-left
       block and zero elsewhere because ``U_hat`` starts with ``U0`` (so
       ``U_hat S_hat0 V_hat^T = W0``: the S-step gradient is evaluated at ``W0`` too);
    4. S-step ``S_hat1 = S_hat0 - lr D_S`` (``D_S = U_hat^T G0 V_hat`` under SGD);
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
    {truncation}
    passes : {1, 3}, default 1
    momentum : float in [0, 1), default 0
        Shorthand for ``direction=Momentum(momentum)``: heavy-ball momentum carried across
        basis changes (:class:`~lowrank_ref.directions.Momentum`). 0 is plain SGD.
    loss_fn : callable, optional
        ``loss_fn(outputs: Tensor, y) -> 0-d Tensor``; default cross-entropy.
    direction : Direction, optional, keyword-only
        Any rule; :class:`~lowrank_ref.adam.PaperAdam` replaces the step by the paper's
        TensorFlow loop (``passes`` must be 1).
    observer : callable or None, keyword-only
        Called as ``observer(S_hat1)`` with each layer's core before its truncation (the
        oracle records the singular values each rank decision is made from).
    """

    INTEGRATOR = "adaptive"

    def __init__(self, model: Network, lr: float, tau: float, min_rank: int = 1,
                 max_rank: Optional[int] = None, passes: int = 1, momentum: float = 0.0,
                 loss_fn=None, *, direction: Optional[Direction] = None, observer=None):
        super().__init__(model, lr, tau, min_rank, max_rank, momentum, loss_fn, direction,
                         observer)
        if check_int(passes, "passes") not in (1, 3):
            raise ValueError(f"passes must be 1 or 3, got {passes!r}")
        self.passes = passes
        self.direction.attach(self)

    @uses_blas_threads
    def step(self, X, y) -> StepResult:
        if self.direction.replaces_adaptive_step:
            return self.direction.adaptive_step(self, X, y)
        return self._step_one_pass(X, y) if self.passes == 1 else self._step_three_passes(X, y)

    def augmented_start(self, layer, K1, L1):
        """``U_hat``, ``S_hat0``, ``V_hat`` of the layer at ``W0`` after its K- and L-steps."""
        self.check_finite(layer, "K- and L-steps", K1, L1)
        U0, S0, V0 = layer.factors
        U_hat, V_hat = augment_basis(U0, K1), augment_basis(V0, L1)
        return U_hat, augmented_core(S0, U_hat.shape[1], V_hat.shape[1]), V_hat

    def _step_one_pass(self, X, y) -> StepResult:
        res, plain = self.start(X, y, refresh=True)
        for i, layer in low_rank_layers(self.model):
            U0, S0, V0 = layer.factors
            G_V0, GtU = layer_kl_gradients(layer)
            D_K, D_L = self.direction.kl(i, U0, V0, G_V0, GtU)
            U_hat, S_hat0, V_hat = self.augmented_start(layer, k_step(U0, S0, D_K, self.lr),
                                                        l_step(V0, S0, D_L, self.lr))
            dS = augmented_gradient(layer.taps, U_hat, V_hat, G_V0)     # U_hat^T G0 V_hat
            D_S = self.direction.core(i, U_hat, V_hat, dS)
            self.finish(layer, U_hat, S_hat0 - self.lr * D_S, V_hat)
        self.apply_plain(plain)
        return res

    def _step_three_passes(self, X, y) -> StepResult:
        self.prepare_factors(refresh=True)
        lr_layers = low_rank_layers(self.model)
        self.set_modes("K")
        res = forward_backward(self.model, X, y, self.loss_fn)   # K-pass at W0
        GV = {i: layer.K.grad for i, layer in lr_layers}
        self.set_modes("L")
        forward_backward(self.model, X, y, self.loss_fn)         # L-pass at W0
        self.direction.start_step()
        K1, L1 = {}, {}
        for i, layer in lr_layers:
            U0, S0, V0 = layer.factors
            D_K, D_L = self.direction.kl(i, U0, V0, GV[i], layer.L.grad)
            K1[i], L1[i] = k_step(U0, S0, D_K, self.lr), l_step(V0, S0, D_L, self.lr)
        for i, layer in lr_layers:
            U_hat, S_hat0, V_hat = self.augmented_start(layer, K1[i], L1[i])
            layer.set_mode("S", U_hat=U_hat, S_hat=S_hat0, V_hat=V_hat)
        forward_backward(self.model, X, y, self.loss_fn)         # S-pass at W0
        plain = self.plain_gradients()
        for i, layer in lr_layers:
            D_S = self.direction.core(i, layer.U_hat, layer.V_hat, layer.S_hat.grad)
            self.finish(layer, layer.U_hat, layer.S_hat.value - self.lr * D_S, layer.V_hat)
        self.apply_plain(plain)
        return res


class ParallelBUG(_Truncating):
    """The parallel DLRT step: K, L and S from one gradient, the basis augmented afterwards.

    The training analogue of :func:`lowrank_ref.integrators.parallel_bug_step` ([CKL24])
    and the step of GeoLoRA ([SZCTK24]). For every low-rank layer, from one
    forward/backward at ``W0 = U0 S0 V0^T`` (``U0``, ``V0`` re-orthonormalised first):

    1. in parallel, ``K1 = U0 S0 - lr D_K``, ``L1 = V0 S0^T - lr D_L`` and the S-step in the
       *old* bases ``S_bar = S0 - lr D_S`` (SGD: ``D_K = G V0``, ``D_L = G^T U0``,
       ``D_S = U0^T G V0``, all from the taps of the one backward: no extra pass);
    2. new directions ``U~``, ``V~``: orthonormal bases of the parts of ``K1``, ``L1``
       orthogonal to ``U0``, ``V0`` (:func:`~lowrank_ref.lowrank.augment_basis`),
       ``U_hat = [U0, U~]``, ``V_hat = [V0, V~]``;
    3. the augmented core (:func:`~lowrank_ref.steps.parallel_core`)
       ``S_hat = [[S_bar, L1^T V~], [U~^T K1, 0]]`` -- no new-new block;
    4. truncation by ``tau`` relative to ``||S_hat||_F``, ranks clamped to
       ``[min_rank, max_rank]``.

    Under SGD, ``U_hat S_hat V_hat^T = W0 - lr P_T(W0) G`` exactly
    (:func:`~lowrank_ref.lowrank.tangent_project`): the projected gradient step, and the
    truncation returns its best approximation of the chosen rank (tested on dense and
    convolutional layers). It needs no Galerkin pass in the augmented bases, so it is
    cheaper than :class:`AdaptiveBUG`; unlike it, the step misses the new-new block
    ``P_{U~} G P_{V~}`` (of size ``O(lr)``: the step is first order, not exact for rank-r
    data). The rank grows by at most ``r`` per step.

    Parameters
    ----------
    model : Network
        With at least one low-rank layer.
    lr : float
    {truncation}
    momentum : float in [0, 1), default 0
        Shorthand for ``direction=Momentum(momentum)`` (its velocity is kept as the tangent
        vector ``P_T N`` at ``W0``, as for the fixed-rank step).
    loss_fn : callable, optional
    direction : Direction, optional, keyword-only
        Default SGD; any rule but :class:`~lowrank_ref.adam.PaperAdam`.
    observer : callable or None, keyword-only
        As :class:`AdaptiveBUG`.
    """

    INTEGRATOR = "parallel"

    def __init__(self, model: Network, lr: float, tau: float, min_rank: int = 1,
                 max_rank: Optional[int] = None, momentum: float = 0.0, loss_fn=None, *,
                 direction: Optional[Direction] = None, observer=None):
        super().__init__(model, lr, tau, min_rank, max_rank, momentum, loss_fn, direction,
                         observer)
        self.direction.attach(self)

    @uses_blas_threads
    def step(self, X, y) -> StepResult:
        res, plain = self.start(X, y, refresh=True)
        for i, layer in low_rank_layers(self.model):
            U0, S0, V0 = layer.factors
            D_K, D_L = self.direction.kl(i, U0, V0, *layer_kl_gradients(layer))
            K1, L1 = k_step(U0, S0, D_K, self.lr), l_step(V0, S0, D_L, self.lr)
            self.check_finite(layer, "K- and L-steps", K1, L1)
            D_S = self.direction.core(i, U0, V0, core_gradient(layer.taps),
                                      tangent=(U0, V0, D_K, D_L))
            U_hat, V_hat = augment_basis(U0, K1), augment_basis(V0, L1)
            S_hat = parallel_core(S0 - self.lr * D_S, K1, L1, U_hat, V_hat)
            self.finish(layer, U_hat, S_hat, V_hat)
        self.apply_plain(plain)
        return res


AdaptiveBUG.__doc__ = AdaptiveBUG.__doc__.replace("{truncation}", _TRUNCATION_PARAMETERS)
ParallelBUG.__doc__ = ParallelBUG.__doc__.replace("{truncation}", _TRUNCATION_PARAMETERS)


class SOnly(LowRankOptimizer):
    """Fine-tuning of the cores ``S`` with ``U``, ``V`` frozen ([SZKCT22]).

    ``S1 = S0 - lr D_S`` (SGD: ``D_S = U0^T G0 V0``) for every low-rank layer (mode ``"S"``
    with ``U_hat = U0``, ``V_hat = V0``); biases and other layers by the rule's plain step.
    Ranks and the spans of the bases never change. Parameters as :class:`FixedRankBUG`
    (without ``passes``); any rule but :class:`~lowrank_ref.adam.PaperAdam`.
    """

    INTEGRATOR = "sonly"

    def __init__(self, model: Network, lr: float, momentum: float = 0.0, loss_fn=None, *,
                 direction: Optional[Direction] = None):
        super().__init__(model, lr, momentum, loss_fn, direction)
        self.direction.attach(self)

    @uses_blas_threads
    def step(self, X, y) -> StepResult:
        res, plain = self.start(X, y, mode="S")
        for i, layer in low_rank_layers(self.model):
            D_S = self.direction.core(i, layer.U, layer.V, layer.S_hat.grad)
            layer.set_factors(LowRank(layer.U, layer.S - self.lr * D_S, layer.V))
        self.apply_plain(plain)
        return res


#: The names of earlier versions, kept for existing code: the same classes.
FixedRankKLS, AdaptiveKLS, SOnlySGD, DenseSGD = FixedRankBUG, AdaptiveBUG, SOnly, Euclidean
