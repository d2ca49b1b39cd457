"""The families of golden cases and this package's implementation of each, wrapped as a
candidate: ``candidate(**case.inputs) -> dict`` (the contract of
:mod:`lowrank_ref.oracle`).
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np

from .._validate import check_choice, check_int
from ..lowrank import LowRank

__all__ = ["FAMILIES", "FIXED_RANK", "FIRST_ORDER_ADAPTIVE", "HIGHER_ORDER", "RANK_ADAPTIVE",
           "INTEGRATORS", "DLRT_MLP", "DLRT_CONV", "DLRT_PARALLEL", "DLRT_STATE", "DLRT",
           "check_family", "linear_rhs", "reference", "run_integrator", "run_dlrt",
           "layer_indices", "lowrank_dict"]

#: Fixed-rank integrator families (projector splitting [LO14], BUG [CL22]).
FIXED_RANK = ("projector_splitting_step", "bug_step")
#: First-order rank-adaptive integrator families ([CKL22], [CKL24]).
FIRST_ORDER_ADAPTIVE = ("adaptive_bug_step", "parallel_bug_step")
#: Second- and higher-order rank-adaptive integrator families ([CEKL24], [NR25], [Kus24]).
HIGHER_ORDER = ("midpoint_bug_step", "rk_bug_step", "second_order_parallel_bug_step")
#: The integrator families whose rank is decided by truncations.
RANK_ADAPTIVE = FIRST_ORDER_ADAPTIVE + HIGHER_ORDER
#: Every integrator family: one step of ``lowrank_ref.integrators.<family>``.
INTEGRATORS = FIXED_RANK + RANK_ADAPTIVE
#: One optimiser step of DLRT [SZKCT22] on a one-layer and on a three-layer network of
#: fully connected layers.
DLRT_MLP = ("dlrt_layer_step", "dlrt_network_step")
#: One optimiser step of DLRT on a small convolutional network: low-rank convolution,
#: ReLU, flatten, dense.
DLRT_CONV = ("dlrt_conv_layer_step",)
#: One step of the parallel DLRT optimiser (:class:`~lowrank_ref.dlrt.ParallelBUG`), on
#: fully connected networks and on the convolutional network of ``dlrt_conv_layer_step``.
DLRT_PARALLEL = ("dlrt_parallel_step",)
#: Short trajectories with optimiser state (several steps on fixed batches, bases and ranks
#: changing inside): heavy-ball momentum carried across bases, Adam with carried moments.
DLRT_STATE = ("dlrt_momentum_trajectory", "dlrt_adam_trajectory")
#: Every DLRT family: the network is given by flat per-layer keys ``U{i}``, ``b{i}``, ...
DLRT = DLRT_MLP + DLRT_CONV + DLRT_PARALLEL + DLRT_STATE

#: The case families; each name is the function (or step) it checks. The order is the
#: order of the golden files in the manifest: families added later go at the end.
FAMILIES = ("truncate",) + FIXED_RANK + FIRST_ORDER_ADAPTIVE + DLRT_MLP + HIGHER_ORDER[:2] \
    + DLRT_CONV + HIGHER_ORDER[2:] + DLRT_PARALLEL + DLRT_STATE


def check_family(family) -> str:
    """``family`` if it is one of :data:`FAMILIES` (ValueError otherwise)."""
    return check_choice(family, "family", FAMILIES)


def linear_rhs(A1: np.ndarray, A2: np.ndarray, B: np.ndarray) -> Callable:
    """The right-hand side ``F(t, A) = A1 @ A + A @ A2 + B`` of the integrator families.

    Parameters
    ----------
    A1 : (m, m) ndarray
    A2 : (n, n) ndarray
    B : (m, n) ndarray

    Returns
    -------
    callable
        ``F(t, A) -> (m, n) ndarray`` (independent of ``t``).

    Examples
    --------
    >>> F = linear_rhs(np.eye(2), np.zeros((3, 3)), np.ones((2, 3)))
    >>> F(0.0, np.zeros((2, 3))).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    def F(t, A):
        return A1 @ A + A @ A2 + B
    return F


def lowrank_dict(Y) -> dict:
    """A low-rank result ``(U, S, V)`` as the candidate's output dict ``{"U", "S", "V"}``."""
    return {"U": np.asarray(Y[0]), "S": np.asarray(Y[1]), "V": np.asarray(Y[2])}


def layer_indices(inputs: Mapping) -> list:
    """Layer indices ``0, 1, ...`` of a DLRT case (every layer has a bias ``b{i}``)."""
    out, i = [], 0
    while f"b{i}" in inputs:
        out.append(i)
        i += 1
    return out


def run_integrator(family: str, inputs: Mapping,
                   observer: Optional[Callable] = None) -> LowRank:
    """One step of ``lowrank_ref.integrators.<family>`` on the inputs of a case.

    Parameters
    ----------
    family : str
        One of :data:`INTEGRATORS`.
    inputs : dict
        ``U0 (m, r), S0 (r, r), V0 (n, r), A1 (m, m), A2 (n, n), B (m, n), t0, h`` and the
        family's keyword arguments (``inner``, ``substeps``, ``order``, ``tol``,
        ``variant``, ...).
    observer : callable, optional
        Rank-adaptive families: passed on to the step, which calls ``observer(S_hat)``
        with the core of every truncation it makes.

    Returns
    -------
    LowRank
    """
    from .. import integrators
    kwargs = {k: v for k, v in inputs.items()
              if k not in ("U0", "S0", "V0", "A1", "A2", "B", "t0", "h")}
    if observer is not None:
        kwargs["observer"] = observer
    step = getattr(integrators, family)
    return step(LowRank(inputs["U0"], inputs["S0"], inputs["V0"]),
                linear_rhs(inputs["A1"], inputs["A2"], inputs["B"]), inputs["t0"],
                inputs["h"], **kwargs)


def _truncate_candidate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
    from ..truncation import truncate
    return lowrank_dict(truncate(U_hat, S_hat, V_hat, tol, relative=relative,
                                 min_rank=min_rank, max_rank=max_rank))


def _integrator_candidate(family: str) -> Callable:
    def candidate(**inputs):
        return lowrank_dict(run_integrator(family, inputs))

    candidate.__name__ = f"reference_{family}"
    return candidate


def _dense_layer(W, b):
    """A :class:`~lowrank_ref.nn.Dense` layer holding copies of ``W (n_out, n_in)``,
    ``b (n_out,)``."""
    from ..autodiff import Tensor
    from ..nn import Dense
    W = np.asarray(W)
    layer = Dense(W.shape[1], W.shape[0], np.random.default_rng(0), dtype=W.dtype)
    layer.W = Tensor(W.copy(), requires_grad=True, name="W")
    layer.b = Tensor(np.array(b, dtype=W.dtype), requires_grad=True, name="b")
    return layer


def _direction(inp: Mapping):
    """The direction rule of a case: momentum or carried Adam (trajectories), else SGD."""
    if "momentum" in inp:
        from ..directions import Momentum
        return Momentum(inp["momentum"])
    if "beta1" in inp:
        from ..adam import CarriedAdam
        return CarriedAdam(inp["beta1"], inp["beta2"], inp["eps"])
    return None


def _dlrt_step(model, inp: Mapping, passes: int, observer=None) -> dict:
    """The steps of the optimiser ``inp["method"]`` on ``model`` (a Network whose layers are
    layers ``0, 1, ...`` of the case): one on the batch ``inp["X"], inp["y"]``, or, for a
    trajectory, one per batch ``X[k], y[k]``; the new value of every layer key, and
    ``rank{i}`` of every low-rank layer."""
    from ..dlrt import AdaptiveBUG, FixedRankBUG, ParallelBUG
    from ..lowrank_layers import LowRankLayer
    method = check_choice(inp["method"], "method", ("fixed", "adaptive", "parallel"))
    direction = _direction(inp)
    if method == "fixed":
        opt = FixedRankBUG(model, inp["lr"], direction=direction)   # lr: the learning rate
    elif method == "adaptive":
        opt = AdaptiveBUG(model, inp["lr"], inp["tau"], min_rank=inp["min_rank"],
                          max_rank=inp["max_rank"], passes=passes, direction=direction,
                          observer=observer)
    else:
        opt = ParallelBUG(model, inp["lr"], inp["tau"], min_rank=inp["min_rank"],
                          max_rank=inp["max_rank"], direction=direction, observer=observer)
    X, y = np.asarray(inp["X"]), np.asarray(inp["y"])
    if direction is None:
        opt.step(X, y)
    else:
        for Xk, yk in zip(X, y):
            opt.step(Xk, yk)
    out = {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, LowRankLayer):
            out[f"U{i}"], out[f"S{i}"], out[f"V{i}"] = (np.array(a) for a in layer.factors)
            out[f"rank{i}"] = layer.rank
        else:
            out[f"W{i}"] = np.array(layer.W.value)
        out[f"b{i}"] = np.array(layer.b.value)
    return out


def _mlp(inp: Mapping):
    from ..lowrank_layers import LowRankDense
    from ..nn import MLP
    return MLP([LowRankDense.from_factors(LowRank(inp[f"U{i}"], inp[f"S{i}"], inp[f"V{i}"]),
                                          inp[f"b{i}"])
                if f"U{i}" in inp else _dense_layer(inp[f"W{i}"], inp[f"b{i}"])
                for i in layer_indices(inp)], activation="relu")


def _conv_network(U0, S0, V0, b0, W1, b1, X, kernel_size, stride, padding):
    """The network of ``dlrt_conv_layer_step`` (and the conv cases of ``dlrt_parallel_step``):
    a low-rank convolution with the kernel matrix ``U0 S0 V0^T``, ReLU, flatten, dense ``W1``;
    a ValueError names ``X`` or ``W1`` if its shape does not fit the convolution (and
    ``LowRankConv2d.from_factors`` names a bad factor or geometry)."""
    from ..conv import LowRankConv2d, conv_output_size
    from ..networks import Flatten, ReLU, Sequential
    conv = LowRankConv2d.from_factors(LowRank(U0, S0, V0), b0, kernel_size, stride=stride,
                                      padding=padding)
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(f"X must have shape (batch, c_in, h, w), got {X.shape}")
    h_out, w_out = conv_output_size(X.shape[2], X.shape[3], *conv.kernel_size, conv.stride,
                                    conv.padding)
    if h_out < 1 or w_out < 1:
        raise ValueError(f"X must have images of at least the kernel's size "
                         f"{conv.kernel_size} after padding {conv.padding}, got {X.shape}")
    features = conv.out_channels * h_out * w_out
    if np.ndim(W1) != 2 or np.shape(W1)[1] != features:
        raise ValueError(f"W1 must have shape (n_classes, {features}): c_out h_out w_out "
                         f"= {conv.out_channels} * {h_out} * {w_out} columns, got "
                         f"{np.shape(W1)}")
    return Sequential([conv, ReLU(), Flatten(), _dense_layer(W1, b1)])


def run_dlrt(inputs: Mapping, passes: int = 1, observer: Optional[Callable] = None) -> dict:
    """This package's DLRT step (or trajectory) on the inputs of a DLRT case: the network
    built from the arrays (a convolutional one if ``kernel_size`` is given), the optimiser of
    ``inputs["method"]`` with the case's direction rule, the candidate's output dict.

    Parameters
    ----------
    inputs : dict
        The inputs of a case of a family in :data:`DLRT`.
    passes : {1, 3}, default 1
        The rank-adaptive step in one or three passes.
    observer : callable, optional
        Rank-adaptive methods: called as ``observer(S_hat)`` with every core the optimiser
        truncates (per step, the low-rank layers in order).
    """
    if "kernel_size" in inputs:
        keys = ("U0", "S0", "V0", "b0", "W1", "b1", "X", "kernel_size", "stride", "padding")
        model = _conv_network(*(inputs[k] for k in keys))
    else:
        model = _mlp(inputs)
    return _dlrt_step(model, dict(inputs, X=np.asarray(inputs["X"])), passes, observer)


def _dlrt_candidate(passes: int) -> Callable:
    def candidate(**inp):
        return run_dlrt(inp, passes)

    candidate.__name__ = f"reference_dlrt_passes{passes}"
    return candidate


def _dlrt_conv_candidate(passes: int) -> Callable:
    """``dlrt_conv_layer_step``: one DLRT step of a low-rank convolution, ReLU, flatten,
    dense, built from the arrays of the case as a :class:`~lowrank_ref.networks.Sequential`.

    The candidate takes ``U0 (c_out, r), S0 (r, r), V0 (c_in k k, r), b0 (c_out,)`` (the
    kernel matrix ``U0 S0 V0^T`` of the ``k x k`` convolution, ``k = kernel_size``),
    ``W1 (n_classes, c_out h_out w_out), b1 (n_classes,)``, ``X (batch, c_in, h, w)``, the
    ints ``kernel_size``, ``stride``, ``padding``, and ``y, lr, method, tau, min_rank,
    max_rank`` as the other DLRT families (see :func:`_conv_network` for its checks)."""
    def candidate(U0, S0, V0, b0, W1, b1, X, kernel_size, stride, padding, **inp):
        return run_dlrt(dict(inp, U0=U0, S0=S0, V0=V0, b0=b0, W1=W1, b1=b1, X=X,
                             kernel_size=kernel_size, stride=stride, padding=padding), passes)

    candidate.__name__ = f"reference_dlrt_conv_passes{passes}"
    return candidate


def reference(family: str, passes: int = 1) -> Callable:
    """This package's implementation of ``family`` as a candidate for
    :func:`lowrank_ref.oracle.check`.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    passes : {1, 3}, default 1
        DLRT families: the one-gradient (1) or the published 3-pass (3) adaptive step.

    Returns
    -------
    callable
        ``candidate(**case.inputs) -> dict``.

    Raises
    ------
    ValueError
        For an unknown family, ``passes`` not 1 or 3.
    TypeError
        For ``passes`` not an int.

    Examples
    --------
    >>> from lowrank_ref import oracle
    >>> oracle.check("bug_step", reference("bug_step")).passed
    True
    """
    check_family(family)
    check_int(passes, "passes")
    if passes not in (1, 3):
        raise ValueError(f"passes must be 1 or 3, got {passes!r}")
    if family == "truncate":
        return _truncate_candidate
    if family in INTEGRATORS:
        return _integrator_candidate(family)
    if family in DLRT_CONV:
        return _dlrt_conv_candidate(passes)
    return _dlrt_candidate(passes)
