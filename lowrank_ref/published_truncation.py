"""The published code's truncation, reproduced as an experiment -- never a default.

Hypothesis tested with it (docs/reproduce/04_paper_recipe.md): the layer-dependent ranks of
the paper's MNIST table come from the truncation of its code, not from DLRT. The published
rank adaption of [SZKCT22] (TensorFlow, ``DLRALayerAdaptive.rank_adaption`` of
``CSMMLab/DLRT-Net``, ``src/networks/dense_layers.py``; the same rule in the PyTorch
``S_postprocess_step`` of ``COMPiLELab/DLRT-Net``, ``optimizer_KLS/dlrt_optimizer.py``)
does, with the augmented core ``S_hat`` (k, k), ``k = 2 r``, and its SVD
``S_hat = P diag(d) Q^T``:

1. ``theta = tol * ||d||_2`` (relative), ``r = floor(k / 2)``;
2. for ``j = 0, 1, ..., 2 r - 2``: if ``||d[j : 2r - 1]||_2 < theta`` then ``r = j``, stop.
   The measured tail never contains the smallest value ``d[k - 1]`` (a Python slice
   excludes its end), the comparison is strict, ``j = 2 r - 1`` is never tested, and when
   no ``j`` passes the rank stays ``k / 2``, the rank before the step;
3. ``r = min(r, rmax_total)`` with ``rmax_total = min(n_in, n_out) / 2`` (integer part),
   then ``r = max(r, 2)``;
4. ``S1 = diag(d[:r])`` and the new bases from the first ``r`` singular vectors -- but one
   side from the transposed factor. The TensorFlow layer computes ``x U_tf s V_tf^T`` with
   the input-side basis first, so its core is this package's ``S^T``; it sets
   ``aux_Vt = v2[:r, :] aux_Vtnp1`` with ``v2`` the right factor of ``tf.linalg.svd``
   (``s = u2 diag(d) v2^T``), where ``v2[:, :r]^T`` is meant. In this package's orientation
   (``W = U S V^T``, ``U`` on the output side) that is ``U1 = U_hat (P^T)[:, :r]`` with
   ``V1 = V_hat Q[:, :r]`` right (``transposed="U"``, the code of the paper's MNIST table).
   The PyTorch code multiplies ``V_hat`` by ``Vh[:, :r]`` (``Vh = Q^T`` from
   ``torch.linalg.svd``): ``V1 = V_hat (Q^T)[:, :r]`` with ``U1 = U_hat P[:, :r]`` right
   (``transposed="V"``). Either factor keeps orthonormal columns, but ``U1 S1 V1^T`` is not
   the truncated ``U_hat S_hat V_hat^T`` unless that factor is symmetric.

:func:`lowrank_ref.truncation.truncate` is the rule as stated in the paper; this module is
what the code does, for the experiment only.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._validate import as_float_array, check_int, check_real
from .dlrt import AdaptiveBUG
from .lowrank import LowRank

__all__ = ["published_truncation_rank", "published_truncate", "PublishedTruncationBUG"]


def published_truncation_rank(d, tol: float, relative: bool = True,
                              max_rank: Optional[int] = None, min_rank: int = 2) -> int:
    """The rank the published code keeps for the descending singular values ``d`` (k,).

    Steps 1-3 of the module docstring; ``max_rank`` is the code's ``rmax_total``
    (None: no cap), ``min_rank`` its floor 2. The result is at most ``k``.

    Examples
    --------
    >>> from lowrank_ref.truncation import truncation_rank
    >>> d = np.array([4.0, 2.0, 1.0, 0.9])      # no tail below 1.0 before the last value:
    >>> published_truncation_rank(d, 1.0, relative=False), truncation_rank(d, 1.0, relative=False)
    (2, 3)
    >>> d = np.array([4.0, 0.4, 0.3, 0.3])      # the tail at j = 1 leaves out the last 0.3:
    >>> published_truncation_rank(d, 0.55, relative=False, min_rank=1), truncation_rank(
    ...     d, 0.55, relative=False)
    (1, 2)
    """
    d = as_float_array(d, "d", ndim=1)
    if d.size == 0 or np.any(d < 0) or np.any(np.diff(d) > 0):
        raise ValueError(f"d must be a non-empty descending array of singular values >= 0, "
                         f"got {d.tolist() if d.size <= 8 else d.shape}")
    check_real(tol, "tol", low=0.0)
    k = d.shape[0]
    theta = tol * float(np.linalg.norm(d)) if relative else tol
    r = k // 2
    for j in range(0, 2 * r - 1):
        if float(np.linalg.norm(d[j:2 * r - 1])) < theta:
            r = j
            break
    if max_rank is not None:
        r = min(r, check_int(max_rank, "max_rank", low=1))
    return min(max(r, check_int(min_rank, "min_rank", low=0)), k)


def published_truncate(U_hat: np.ndarray, S_hat: np.ndarray, V_hat: np.ndarray, tol: float,
                       relative: bool = True, max_rank: Optional[int] = None,
                       min_rank: int = 2, transposed: str = "U") -> LowRank:
    """The published code's truncation of ``U_hat S_hat V_hat^T`` (module docstring).

    Parameters
    ----------
    U_hat : (m, k_u) ndarray, S_hat : (k_u, k_v) ndarray, V_hat : (n, k_v) ndarray
        Orthonormal ``U_hat``, ``V_hat`` (published: ``k_u = k_v = 2 r``).
    tol, relative, max_rank, min_rank
        As :func:`published_truncation_rank`.
    transposed : {"U", "V"}
        The side built from the transposed factor: "U" as the TensorFlow code of the MNIST
        table, "V" as the PyTorch code (module docstring).

    Returns
    -------
    LowRank
        ``S1 = diag(d[:r])``; "U": ``U1 = U_hat (P^T)[:, :r]``, ``V1 = V_hat Q[:, :r]``;
        "V": ``U1 = U_hat P[:, :r]``, ``V1 = V_hat (Q^T)[:, :r]``.
    """
    if transposed not in ("U", "V"):
        raise ValueError(f"transposed must be 'U' (TensorFlow code) or 'V' (PyTorch code), "
                         f"got {transposed!r}")
    U_hat = as_float_array(U_hat, "U_hat", ndim=2)
    V_hat = as_float_array(V_hat, "V_hat", ndim=2)
    S_hat = as_float_array(S_hat, "S_hat", ndim=2)
    if U_hat.shape[1] != S_hat.shape[0] or V_hat.shape[1] != S_hat.shape[1]:
        raise ValueError(f"expected U_hat (m, k_u), S_hat (k_u, k_v), V_hat (n, k_v), got "
                         f"{U_hat.shape}, {S_hat.shape}, {V_hat.shape}")
    # Full SVD: for a rectangular core (the package's augmentation drops dependent new
    # directions, the published QR never does) P is (k_u, k_u) and Q^T (k_v, k_v), so that
    # the transposed factors are defined; for a square core this is the published update.
    P, d, Qt = np.linalg.svd(S_hat, full_matrices=True)
    r = published_truncation_rank(d, tol, relative, max_rank, min_rank)
    S1 = np.diag(d[:r]).astype(S_hat.dtype)
    if transposed == "U":
        return LowRank(U_hat @ P.T[:, :r], S1, V_hat @ Qt[:r, :].T)
    return LowRank(U_hat @ P[:, :r], S1, V_hat @ Qt[:, :r])


class PublishedTruncationBUG(AdaptiveBUG):
    """:class:`~lowrank_ref.dlrt.AdaptiveBUG` with the published code's truncation
    (:func:`published_truncate`): an experiment, never a default.

    The step is the rank-adaptive BUG step (same arguments, ``passes`` as there); only its
    truncation is replaced. Ranks are capped
    at ``min(n_in, n_out) // 2`` per layer (the code's ``rmax_total``; ``max_rank`` lowers it
    further) and floored at ``min_rank`` (default 2, the code's floor); ``transposed`` as
    :func:`published_truncate` (default "U", the TensorFlow code of the MNIST table).

    Examples
    --------
    >>> from lowrank_ref.dlrt import low_rank_mlp
    >>> model = low_rank_mlp([6, 8, 3], rank=3, rng=np.random.default_rng(0))
    >>> opt = PublishedTruncationBUG(model, lr=0.1, tau=0.2)
    >>> rng = np.random.default_rng(1)
    >>> _ = opt.step(rng.standard_normal((5, 6)), rng.integers(0, 3, 5))
    >>> 2 <= model.layers[0].rank <= 3
    True
    """

    def __init__(self, model, lr: float, tau: float, min_rank: int = 2,
                 max_rank: Optional[int] = None, passes: int = 1, momentum: float = 0.0,
                 loss_fn=None, *, direction=None, observer=None, transposed: str = "U"):
        if transposed not in ("U", "V"):
            raise ValueError(f"transposed must be 'U' or 'V', got {transposed!r}")
        self.transposed = transposed
        super().__init__(model, lr, tau, min_rank=min_rank, max_rank=max_rank, passes=passes,
                         momentum=momentum, loss_fn=loss_fn, direction=direction,
                         observer=observer)

    def layer_max_rank(self, layer) -> int:
        cap = min(layer.n_in, layer.n_out) // 2
        return cap if self.max_rank is None else min(cap, self.max_rank)

    def finish(self, layer, U_hat, S_hat1, V_hat) -> None:
        self.check_finite(layer, "S-step", S_hat1)
        if self.observer is not None:
            self.observer(S_hat1)
        layer.set_factors(published_truncate(U_hat, S_hat1, V_hat, self.tau, relative=True,
                                             max_rank=self.layer_max_rank(layer),
                                             min_rank=self.min_rank,
                                             transposed=self.transposed))
