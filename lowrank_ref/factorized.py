"""The vanilla factorised layer ``W = U V^T`` and the starting spectrum it shares with DLRT.

[SZKCT22] compares dynamical low-rank training with training the two factors of
``W = U V^T`` directly by gradient descent ("vanilla" factorisation): the factors are plain
trainable arrays, with no orthonormality, so that a small singular value of ``W`` makes
the gradient flow in ``(U, V)`` ill-conditioned. :class:`FactorizedDense` is that layer,
trained by the optimiser of every parameter as an array
(:class:`~lowrank_ref.optimizers.Euclidean`, method ``"vanilla"``).

For the comparison to mean anything, DLRT and vanilla runs must start from the **same**
matrix ``W0``. :func:`decayed_factors` draws the starting factors ``W0 = P Sigma Q^T``
(the official code's form, below); a :class:`~lowrank_ref.lowrank_layers.LowRankDense`
starts from ``U = P, S = Sigma, V = Q`` and a :class:`FactorizedDense` from the balanced
split ``U = P Sigma^(1/2)``, ``V = Q Sigma^(1/2)`` (:meth:`FactorizedDense.from_lowrank`),
so both represent ``P Sigma Q^T`` exactly (to one rounding of the square roots).

The official code's starting spectrum
-------------------------------------
The PyTorch code of the paper's vanilla-versus-DLRT experiment (repository
``COMPiLELab/DLRT-Net``, files ``UV_vanilla/Linear_layer_new_dlrt.py`` and
``UV_vanilla/Linear_layer_lr_new_vanilla.py``, the fixed-rank branch of ``Linear.__init__``)
draws ``z ~ N(0, 1)^r``, takes ``s`` = the singular values of ``diag(|z|)`` (that is,
``|z|`` sorted in descending order), multiplies ``s_k`` by ``decay^(-k)`` for
``k = 0, ..., r - 1``, and takes ``U``, ``V`` as the first ``r`` left singular vectors of
Gaussian ``(n_out, r)`` and ``(n_in, r)`` draws. The DLRT layer keeps ``S = diag(s)``, the
vanilla layer ``U diag(sqrt(s))`` and ``V diag(sqrt(s))`` (both as here). The run script
``UV_vanilla/dlrt_factorization_run.py`` uses ``decay`` in {1, 2, 10}. This is the
geometric form ``sigma_k = |z|_(k) exp(-k ln(decay))``: the form
``sigma_1 exp(-d k / r)`` of the issue with ``d = r ln(decay)`` and a random (sorted
half-normal) profile in place of a constant ``sigma_1``. The scale is the code's: the
singular values are of order one whatever the layer's width.

[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import numpy as np

from . import ops
from ._validate import (as_float_array, check_float_dtype, check_int, check_real, check_rng)
from .autodiff import Tensor
from .lowrank import LowRank, small_svd, validate_lowrank
from .lowrank_layers import LowRankDense
from .nn import BatchRows, check_bias

__all__ = ["FactorizedLayer", "FactorizedDense", "decayed_factors", "split_factors"]


def decayed_factors(n_out: int, n_in: int, rank: int, decay: float, rng,
                    dtype=np.float64, norm=None) -> LowRank:
    """The starting matrix ``W0 = P diag(sigma) Q^T`` of the official code's decay experiment.

    ``sigma_k = |z|_(k) * decay^(-k)``, ``k = 0, ..., rank - 1``, with ``|z|_(0) >= |z|_(1)
    >= ...`` the sorted absolute values of ``z ~ N(0, 1)^rank``; ``P`` (n_out, rank) and
    ``Q`` (n_in, rank) are the leading left singular vectors of Gaussian draws (a random
    orthonormal frame). ``decay = 1`` gives a spectrum of order one without decay; the
    condition number of ``diag(sigma)`` grows like ``decay^(rank - 1)``. Drawn in float64
    (``z``, then the ``P`` draw, then the ``Q`` draw), then cast to ``dtype``.

    Parameters
    ----------
    n_out, n_in, rank : int
        ``1 <= rank <= min(n_in, n_out)``.
    decay : float
        ``>= 1``.
    rng : numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    LowRank
        ``U = P`` (n_out, rank), ``S = diag(sigma)`` (rank, rank), ``V = Q`` (n_in, rank).

    Raises
    ------
    TypeError, ValueError
        Widths or rank not ints >= 1, rank above ``min(n_in, n_out)``, ``decay`` not a
        finite number >= 1, ``rng`` not a Generator, ``dtype`` not float32/float64.

    Examples
    --------
    >>> Y = decayed_factors(6, 5, 3, decay=10.0, rng=np.random.default_rng(0))
    >>> s = np.diag(Y.S)
    >>> bool(s[0] > 10 * s[1] > 100 * s[2] > 0), Y.orthonormality_error() < 1e-14
    (True, True)
    """
    n_out = check_int(n_out, "n_out", low=1)
    n_in = check_int(n_in, "n_in", low=1)
    rank = check_int(rank, "rank", low=1, high=min(n_in, n_out))
    decay = check_real(decay, "decay", low=1.0)
    check_rng(rng)
    dt = check_float_dtype(dtype)
    norm = check_real(norm, "norm", low=0.0, low_open=True, optional=True)
    sigma = np.sort(np.abs(rng.standard_normal(rank)))[::-1] * decay ** -np.arange(rank)
    if norm is not None:
        sigma *= norm / np.linalg.norm(sigma)
    P = np.linalg.svd(rng.standard_normal((n_out, rank)), full_matrices=False)[0]
    Q = np.linalg.svd(rng.standard_normal((n_in, rank)), full_matrices=False)[0]
    return LowRank(P.astype(dt), np.diag(sigma).astype(dt), Q.astype(dt))


def split_factors(Y) -> tuple:
    """The balanced vanilla factors of ``W = U S V^T``: ``(U P sqrt(s), V Q sqrt(s))``.

    With the SVD ``S = P diag(s) Q^T`` of the small core (any ``S``, not only diagonal),
    ``A = U P diag(sqrt(s))`` and ``B = V Q diag(sqrt(s))`` give ``A B^T = U S V^T``, and
    column ``k`` of ``A`` and of ``B`` has norm ``sqrt(s_k)`` (the split that balances the
    two factors, as the official code's vanilla layer does).

    Parameters
    ----------
    Y : LowRank
        Orthonormal ``U`` (m, r), ``V`` (n, r), any ``S`` (r, r).

    Returns
    -------
    (A, B) : (m, r) and (n, r) ndarrays

    Raises
    ------
    TypeError, ValueError
        As :func:`lowrank_ref.lowrank.validate_lowrank` (named ``Y``).

    Examples
    --------
    >>> Y = LowRank.random(np.random.default_rng(1), 5, 4, 2)
    >>> A, B = split_factors(Y)
    >>> bool(np.allclose(A @ B.T, Y.to_dense()))
    True
    """
    U, S, V = validate_lowrank(Y, "Y")
    P, s, Qt = small_svd(S)
    root = np.sqrt(s)
    return (U @ P) * root, (V @ Qt.T) * root


class FactorizedLayer:
    """What every vanilla ``W_mat = U V^T`` layer shares: the plain factors and the forward on rows.

    ``U (n_out, r)``, ``V (n_in, r)`` and ``b (n_out,)`` are trainable leaves (no
    orthonormality, no core). As for :class:`~lowrank_ref.lowrank_layers.LowRankLayer`, a
    subclass says how its input becomes rows ``R (n_rows, n_in)`` (``to_rows``,
    ``to_rows_array``) and how the output rows ``Z (n_rows, n_out)`` become its output
    (``from_rows``, ``from_rows_array``); the forward in between is one
    :func:`lowrank_ref.ops.low_rank_linear` node ``Z = (R V) U^T + b`` (``S = None``), whose
    backward gives ``dU = G^T (R V)``, ``dV = R^T (G U)`` with ``G = dL/dZ``. Checkpoints
    (``U``, ``V``, ``b`` under the layer's ``KIND``) and
    :func:`lowrank_ref.dlrt.parameter_counts` (``r (n_in + n_out)``) treat every subclass
    alike: :class:`FactorizedDense` and :class:`lowrank_ref.conv.FactorizedConv2d`.
    """

    #: The layer's kind in a checkpoint (``layer{i}.kind``); set by each subclass.
    KIND = None

    def _set(self, U, V, b) -> None:
        self.U = Tensor(np.array(U), requires_grad=True, name="U")
        self.V = Tensor(np.array(V), requires_grad=True, name="V")
        self.b = Tensor(np.array(b), requires_grad=True, name="b")
        self.n_out, self.n_in = self.U.shape[0], self.V.shape[0]

    @staticmethod
    def _checked_factors(U, V, b):
        """``(U, V, b)`` as arrays of one float dtype, checked (see ``from_factors``)."""
        U = as_float_array(U, "U", 2)
        V = as_float_array(V, "V", 2)
        if U.shape[1] != V.shape[1] or U.shape[1] < 1:
            raise ValueError(f"U and V must have the same number (>= 1) of columns, got U "
                             f"{U.shape}, V {V.shape}")
        if U.shape[1] > min(U.shape[0], V.shape[0]):
            raise ValueError(f"rank must be <= min(n_in, n_out) = "
                             f"{min(U.shape[0], V.shape[0])}, got {U.shape[1]}")
        dt = check_float_dtype(np.result_type(U, V))
        return U.astype(dt), V.astype(dt), check_bias(b, U.shape[0], dt)

    @property
    def rank(self) -> int:
        return int(self.U.shape[1])

    @property
    def dtype(self):
        return self.b.dtype

    def weight(self) -> np.ndarray:
        """The dense ``(n_out, n_in)`` matrix ``U V^T`` (for tests and small layers only)."""
        return self.U.value @ self.V.value.T

    def parameters(self) -> list:
        """``[U, V, b]``."""
        return [self.U, self.V, self.b]

    # -- what a subclass provides (nn.BatchRows, or conv's patch rows) -------------------
    def to_rows(self, X):
        """``(Tensor R (n_rows, n_in), context)``: the input checked, as rows."""
        raise NotImplementedError

    def from_rows(self, Z: Tensor, context) -> Tensor:
        raise NotImplementedError

    def to_rows_array(self, X: np.ndarray):
        raise NotImplementedError

    def from_rows_array(self, Z: np.ndarray, context) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, X) -> Tensor:
        """The rows of ``X`` through one ``low_rank_linear`` node ``R V U^T + b``, recorded."""
        R, context = self.to_rows(X)
        return self.from_rows(ops.low_rank_linear(R, self.U, None, self.V, self.b), context)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """``(R @ V) @ U^T + b`` in plain NumPy (no graph), for evaluation."""
        R, context = self.to_rows_array(X)
        return self.from_rows_array((R @ self.V.value) @ self.U.value.T + self.b.value, context)


class FactorizedDense(BatchRows, FactorizedLayer):
    """Vanilla factorised layer ``Z = X @ (U V^T)^T + b = (X @ V) @ U^T + b`` ([SZKCT22]).

    ``U`` (n_out, r) and ``V`` (n_in, r) are plain trainable leaves (no orthonormality, no
    core), so that any SGD optimiser trains them; the forward is one
    :func:`lowrank_ref.ops.low_rank_linear` node with ``S = None``, whose backward gives
    ``dU = G^T (X V)`` and ``dV = X^T (G U)`` with ``G = dL/dZ``. The weight ``U V^T`` is never
    formed in training.

    Parameters
    ----------
    n_in, n_out, rank : int
        ``1 <= rank <= min(n_in, n_out)``.
    rng : numpy.random.Generator
    dtype : {float64, float32}
    decay : float, optional
        None (default): the start of a :class:`~lowrank_ref.lowrank_layers.LowRankDense`
        drawn from the same ``rng`` (the package's default), split by :func:`split_factors`;
        a number >= 1: :func:`decayed_factors` with that decay, split likewise. Either way the
        layer represents exactly the ``W0`` that the DLRT layer built from the same ``rng``
        state represents.

    Attributes
    ----------
    U : (n_out, r) Tensor
    V : (n_in, r) Tensor
    b : (n_out,) Tensor

    Examples
    --------
    >>> layer = FactorizedDense(6, 4, rank=2, rng=np.random.default_rng(0))
    >>> layer.U.shape, layer.V.shape, layer.rank
    ((4, 2), (6, 2), 2)
    >>> X = np.ones((3, 6))
    >>> bool(np.allclose(layer(X).value, X @ layer.weight().T + layer.b.value))
    True
    """

    #: The layer's kind in a checkpoint (``layer{i}.kind``).
    KIND = "factorized"

    def __init__(self, n_in: int, n_out: int, rank: int, rng, dtype=np.float64, decay=None):
        n_in = check_int(n_in, "n_in", low=1)
        n_out = check_int(n_out, "n_out", low=1)
        rank = check_int(rank, "rank", low=1)
        if rank > min(n_in, n_out):
            raise ValueError(f"rank must be <= min(n_in, n_out) = {min(n_in, n_out)}, got {rank}")
        check_rng(rng)
        dt = check_float_dtype(dtype)
        if decay is None:
            start = LowRankDense(n_in, n_out, rank, rng, dtype=dt)
            Y, b = start.factors, start.b.value
        else:
            Y = decayed_factors(n_out, n_in, rank, decay, rng, dtype=np.float64)
            b = np.zeros(n_out)
        A, B = split_factors(Y)
        self._set(A.astype(dt), B.astype(dt), np.asarray(b).astype(dt))

    @classmethod
    def from_lowrank(cls, Y, b) -> "FactorizedDense":
        """The layer representing ``Y.U @ Y.S @ Y.V.T`` (split by :func:`split_factors`), bias ``b``.

        Raises
        ------
        TypeError, ValueError
            As :func:`split_factors` for ``Y``; ``b`` not a finite real ``(n_out,)`` array.

        Examples
        --------
        >>> Y = LowRank.random(np.random.default_rng(2), 5, 4, 2)
        >>> layer = FactorizedDense.from_lowrank(Y, np.zeros(5))
        >>> bool(np.allclose(layer.weight(), Y.to_dense()))
        True
        """
        A, B = split_factors(Y)
        dt = check_float_dtype(A.dtype)
        return cls.from_factors(A, B, check_bias(b, A.shape[0], dt))

    @classmethod
    def from_factors(cls, U, V, b) -> "FactorizedDense":
        """The layer ``X V U^T + b`` with the given factors (copied), any scaling.

        Raises
        ------
        TypeError, ValueError
            ``U``/``V`` not finite real 2-d arrays with the same number of columns (the rank,
            ``<= min(n_in, n_out)``); ``b`` not a finite real ``(n_out,)`` array.
        """
        layer = cls.__new__(cls)
        layer._set(*cls._checked_factors(U, V, b))
        return layer

    def __repr__(self) -> str:
        return (f"FactorizedDense(n_in={self.n_in}, n_out={self.n_out}, rank={self.rank}, "
                f"dtype={self.dtype})")
