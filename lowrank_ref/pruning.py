"""Pruning after training: a trained dense network cut to low rank by truncated SVDs.

The baseline of [SZKCT22] against which DLRT is compared at equal compression: train the
dense network, replace each hidden layer's weight ``W`` by its best rank-``r`` approximation
(Eckart-Young: the truncated SVD, error ``sqrt(sum_{j > r} sigma_j^2)`` in the Frobenius
norm), and evaluate it as it is or fine-tune the factors afterwards (with fixed-rank DLRT,
or the cores ``S`` alone, :mod:`lowrank_ref.dlrt`). The ranks are given per layer, or chosen
by a tolerance ``tau`` with the same rule as rank-adaptive DLRT
(:func:`lowrank_ref.truncation.truncation_rank`, relative to ``||W||_F``).

[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import numpy as np

from ._validate import check_int_list, check_rank_bounds, check_real
from .lowrank import LowRank
from .lowrank_layers import LowRankDense
from .nn import MLP, Dense
from .truncation import truncation_rank

__all__ = ["prune_model", "pruned_ranks"]


def _dense_hidden_layers(model) -> list:
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    if not all(isinstance(layer, Dense) for layer in model.layers):
        kinds = sorted({type(layer).__name__ for layer in model.layers})
        raise ValueError(f"model must be a dense network (only Dense layers), got layers {kinds}")
    if len(model.layers) < 2:
        raise ValueError(f"model must have at least one hidden layer to prune (the last "
                         f"layer stays dense), got {len(model.layers)} layer(s)")
    for i, layer in enumerate(model.layers):       # before any SVD: LAPACK may hang on Inf
        for name in ("W", "b"):
            a = getattr(layer, name).value
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            if bad:
                raise ValueError(f"model.layers[{i}].{name} must be finite, got {bad} NaN/Inf "
                                 f"entries")
    return model.layers[:-1]


def pruned_ranks(model: MLP, tau: float, min_rank: int = 1,
                 max_rank: Optional[int] = None) -> list:
    """The rank of each hidden layer of a dense ``model`` under tolerance ``tau``.

    ``r_i = truncation_rank(sigma(W_i), tau, relative=True, min_rank, max_rank)``: the
    smallest rank whose truncation error is at most ``tau ||W_i||_F`` (the rule of
    rank-adaptive DLRT), clamped to ``[min_rank, max_rank]`` (``max_rank`` None: no cap
    below ``min(n_in, n_out)``).

    Raises
    ------
    TypeError, ValueError
        ``model`` not an MLP of Dense layers with at least one hidden layer, or with a NaN or
        Inf weight or bias (named: ``model.layers[i].W``); ``tau`` not a finite number >= 0;
        bad ``min_rank``/``max_rank``.

    Examples
    --------
    >>> model = MLP.dense([6, 5, 3], np.random.default_rng(0))
    >>> pruned_ranks(model, tau=0.0), pruned_ranks(model, tau=1.0)
    ([5], [1])
    """
    hidden = _dense_hidden_layers(model)
    tau = check_real(tau, "tau", low=0.0)
    min_rank, max_rank = check_rank_bounds(min_rank, max_rank)
    ranks = []
    for layer in hidden:
        sigma = np.linalg.svd(np.asarray(layer.W.value, dtype=np.float64), compute_uv=False)
        hi = min(layer.n_in, layer.n_out) if max_rank is None else max_rank
        ranks.append(truncation_rank(sigma, tau, relative=True, min_rank=min(min_rank, hi),
                                     max_rank=hi))
    return ranks


def prune_model(model: MLP, ranks: Optional[Sequence[int]] = None, tau: Optional[float] = None,
                min_rank: int = 1, max_rank: Optional[int] = None) -> MLP:
    """A copy of the dense ``model`` whose hidden layers are truncated SVDs of their weights.

    Each hidden :class:`~lowrank_ref.nn.Dense` layer ``W_i = P diag(sigma) Q^T`` becomes a
    :class:`~lowrank_ref.lowrank_layers.LowRankDense` with ``U = P[:, :r_i]``,
    ``S = diag(sigma[:r_i])``, ``V = Q[:, :r_i]`` and the same bias; the last layer stays
    dense (copied). The SVD is computed in float64 and the factors cast to the model's dtype.

    Parameters
    ----------
    model : MLP
        A dense network (only :class:`~lowrank_ref.nn.Dense` layers), not modified.
    ranks : sequence of int, optional
        One rank per hidden layer, ``1 <= r_i <= min(n_in, n_out)``.
    tau : float, optional
        Instead of ``ranks``: :func:`pruned_ranks` with this tolerance (and ``min_rank``,
        ``max_rank``).
    min_rank, max_rank : int
        Used with ``tau`` only.

    Returns
    -------
    MLP
        Same activation; ``LowRankDense`` hidden layers, a dense last layer.

    Raises
    ------
    TypeError, ValueError
        ``model`` not a dense MLP with a hidden layer, or with a NaN or Inf weight or bias
        (named: ``model.layers[i].W``, checked before any SVD); neither or both of ``ranks`` and
        ``tau``; ``ranks`` not one int per hidden layer within ``[1, min(n_in, n_out)]``;
        ``tau``/``min_rank``/``max_rank`` invalid, or given with ``ranks``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> dense = MLP.dense([6, 5, 4, 3], rng)
    >>> pruned = prune_model(dense, ranks=[2, 1])
    >>> [getattr(layer, "rank", None) for layer in pruned.layers]
    [2, 1, None]
    >>> W = dense.layers[0].W.value
    >>> s = np.linalg.svd(W, compute_uv=False)
    >>> err = np.linalg.norm(W - pruned.layers[0].factors.to_dense())
    >>> bool(np.isclose(err, np.linalg.norm(s[2:])))       # Eckart-Young
    True
    """
    hidden = _dense_hidden_layers(model)
    if (ranks is None) == (tau is None):
        raise ValueError(f"give exactly one of ranks and tau, got ranks={ranks!r}, tau={tau!r}")
    if ranks is None:
        ranks = pruned_ranks(model, tau, min_rank, max_rank)
    else:
        if (min_rank, max_rank) != (1, None):
            raise ValueError(f"min_rank and max_rank are only used with tau, got "
                             f"min_rank={min_rank!r}, max_rank={max_rank!r} with ranks")
        ranks = check_int_list(ranks, "ranks", low=1)
        if len(ranks) != len(hidden):
            raise ValueError(f"ranks must give one rank per hidden layer ({len(hidden)}), "
                             f"got {len(ranks)}: {ranks}")
        for i, (r, layer) in enumerate(zip(ranks, hidden)):
            if r > min(layer.n_in, layer.n_out):
                raise ValueError(f"ranks[{i}] must be <= min(n_in, n_out) = "
                                 f"{min(layer.n_in, layer.n_out)}, got {r}")
    layers = []
    for r, layer in zip(ranks, hidden):
        dt = layer.dtype
        P, sigma, Qt = np.linalg.svd(np.asarray(layer.W.value, dtype=np.float64),
                                     full_matrices=False)
        Y = LowRank(P[:, :r].astype(dt), np.diag(sigma[:r]).astype(dt), Qt[:r].T.astype(dt))
        layers.append(LowRankDense.from_factors(Y, layer.b.value.copy()))
    last = copy.deepcopy(model.layers[-1])
    last.W.grad = last.b.grad = None
    return MLP(layers + [last], activation=model.activation)
