"""The low-rank layers of dynamical low-rank training ([SZKCT22]).

A low-rank layer is a matrix ``W_mat = U S V^T`` of shape ``(n_out, n_in)`` in factored form
(``U (n_out, r)``, ``S (r, r)``, ``V (n_in, r)``) applied to *rows*: ``Z_rows = ((R @ V) @
S.T) @ U.T + b``, without forming ``W_mat``. :class:`LowRankLayer` owns everything DLRT
touches (the factors, the K-, L-, S- and W-modes with one trainable leaf each, the taps of
mode "W", ``set_factors``, ``refresh_orthonormality``); a subclass only says how its input
becomes rows ``R (n_rows, n_in)`` and how the rows ``Z_rows (n_rows, n_out)`` become its
output:

* :class:`LowRankDense`: the rows are the batch ``X (batch, n_in)`` itself
  (:class:`~lowrank_ref.nn.BatchRows`);
* :class:`lowrank_ref.conv.LowRankConv2d`: the rows are the unfolded input patches
  (:func:`lowrank_ref.ops.unfold`), ``W_mat`` is the kernel reshaped to
  ``(c_out, c_in * kh * kw)``, and the output rows are folded back to NCHW.

With ``G = dL/dW_mat`` and ``dZ = dL/dZ_rows``, ``G = dZ^T R`` (summed over the batch, and
over the output positions for a convolution), so the formulas of DLRT, ``G V0 = dZ^T (R V0)``
and ``G^T U0 = R^T (dZ U0)``, hold unchanged and the optimisers of :mod:`lowrank_ref.dlrt`
need not know which kind of layer they train.

[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import numpy as np

from . import ops
from ._validate import as_float_array, check_float_dtype, check_int, check_real, check_rng
from .autodiff import Tensor
from .lowrank import LowRank, reorthonormalize, validate_lowrank
from .nn import BatchRows, check_bias, init_params

__all__ = ["LowRankLayer", "LowRankDense", "decay_spectrum", "DecaySpectrum", "SPECTRUM_DECAY",
           "SPECTRUM_NORM"]


#: Initial spectrum of a low-rank layer (``spectrum="decay"``): decay length and
#: Frobenius norm as a fraction of the He draw's ``sqrt(2 n_out)``. Tuned on MNIST,
#: 784-500x4-10 (with the plain SVD cut the network barely trains in the first epochs), first
#: on the test accuracy, then checked on the validation split: the runs ``spectrum-*`` and
#: ``front-*`` under ``results/tuning/`` (at lr 0.2; docs/reproduce/01_mnist_table.md, "How
#: the recipe was chosen") find (40, 0.6) on the accuracy-compression front, norm 0.3
#: worse and norm 1.0 diverging at length 10; the runs ``atlr01-*`` (at lr 0.1) find the
#: lengths on one curve and norm 0.6 ahead of 0.3 and 1.0. A run can change them (the options
#: ``spectrum_length``, ``spectrum_norm`` of :class:`lowrank_ref.training.TrainConfig`).
SPECTRUM_DECAY = 40.0
SPECTRUM_NORM = 0.6


def decay_spectrum(sigma: np.ndarray, n_out: int, length: float = SPECTRUM_DECAY,
                   norm: float = SPECTRUM_NORM) -> np.ndarray:
    """The ``spectrum="decay"`` start of a low-rank layer for singular values ``sigma`` (r,).

    ``sigma_i exp(-i / length)``, ``i = 0, 1, ...``, rescaled so that its 2-norm is
    ``norm * sqrt(2 n_out)`` (``sqrt(2 n_out)``: the expected Frobenius norm of a He draw).

    Examples
    --------
    >>> s = decay_spectrum(np.ones(3), n_out=8)
    >>> bool(np.isclose(np.linalg.norm(s), SPECTRUM_NORM * 4.0)), bool(s[0] > s[1] > s[2])
    (True, True)
    """
    sigma = np.asarray(sigma, dtype=np.float64) * np.exp(-np.arange(len(sigma)) / length)
    return sigma * (norm * np.sqrt(2.0 * n_out) / np.linalg.norm(sigma))


class DecaySpectrum:
    """A ``spectrum`` of a low-rank layer's start other than the defaults of "decay":
    :func:`decay_spectrum` with decay length ``length`` and norm ``norm`` (both ``> 0``;
    ``DecaySpectrum()`` is ``"decay"``). Given as ``spectrum=`` to :class:`LowRankDense`,
    :class:`~lowrank_ref.conv.LowRankConv2d`, :func:`~lowrank_ref.networks.low_rank_mlp` and
    :func:`~lowrank_ref.networks.lenet5`; the configuration's options ``spectrum_length`` and
    ``spectrum_norm`` make one.

    >>> s = DecaySpectrum(length=1.0, norm=2.0)(np.ones(3), n_out=8)
    >>> bool(np.isclose(np.linalg.norm(s), 8.0)), bool(np.isclose(s[1] / s[0], np.exp(-1)))
    (True, True)
    """

    def __init__(self, length: float = SPECTRUM_DECAY, norm: float = SPECTRUM_NORM):
        self.length = check_real(length, "length", low=0, low_open=True)
        self.norm = check_real(norm, "norm", low=0, low_open=True)

    def __call__(self, sigma: np.ndarray, n_out: int) -> np.ndarray:
        return decay_spectrum(sigma, n_out, self.length, self.norm)

    def __eq__(self, other):
        return (isinstance(other, DecaySpectrum)
                and (self.length, self.norm) == (other.length, other.norm))

    def __repr__(self):
        return f"DecaySpectrum(length={self.length!r}, norm={self.norm!r})"


class LowRankLayer:
    """Base of the low-rank layers: ``W_mat = U S V^T`` ``(n_out, n_in)`` applied to rows.

    The forward is ``input -> rows R (n_rows, n_in) -> ((R V) S^T) U^T + b -> output``; the
    middle step is one :func:`lowrank_ref.ops.low_rank_linear` node whose factors depend on
    the *mode*, one per sub-problem of the KLS integrator ([SZKCT22]; [CL22]), each with
    its own trainable leaf so that the engine computes exactly the gradient that sub-step
    needs (``G = dL/dW_mat``):

    ===========  ======================================  =================================
    mode         rows are multiplied by                  gradient of the leaf
    ===========  ======================================  =================================
    ``"W"``      ``V0 S0^T U0^T`` (+ taps)               ``dL/dZ`` is recorded (DLRT)
    ``"K"``      ``V0 K^T``, leaf ``K = U0 S0``          ``dL/dK = G V0``
    ``"L"``      ``L U0^T``, leaf ``L = V0 S0^T``        ``dL/dL = G^T U0``
    ``"S"``      ``V_hat S_hat^T U_hat^T``               ``U_hat^T G V_hat``
    ===========  ======================================  =================================

    In every mode the bias ``b`` is a leaf too. In mode ``"W"`` the layer keeps, after a
    backward, ``self.taps = {"X": R, "XV": R @ V0, "dZ": dL/dZ_rows, "dZ_U": (dL/dZ_rows)
    @ U0}`` (arrays), from which the optimisers of :mod:`lowrank_ref.dlrt` form all factor
    gradients of one step: ``G V0 = dZ^T XV``, ``G^T U0 = X^T dZ_U``.

    A subclass sets ``n_in``, ``n_out`` (the matrix's shape) and implements

    * ``to_rows(X) -> (R, context)``: the input as a rows Tensor, checked;
    * ``from_rows(Z, context) -> Tensor``: the rows ``(n_rows, n_out)`` as the output;
    * ``to_rows_array`` / ``from_rows_array``: the same two maps on arrays (no graph), for
      :meth:`forward_array`.

    Attributes
    ----------
    U : (n_out, r) ndarray
    S : (r, r) ndarray
    V : (n_in, r) ndarray
    b : (n_out,) Tensor
    mode : str
    n_in, n_out : int
        The shape ``(n_out, n_in)`` of ``W_mat``.
    """

    MODES = ("W", "K", "L", "S")
    SPECTRA = ("decay", "svd")
    #: The layer's kind in a checkpoint (``layer{i}.kind``).
    KIND = "lowrank"

    # -- what a subclass provides --------------------------------------------------------
    def to_rows(self, X):
        raise NotImplementedError

    def from_rows(self, Z: Tensor, context) -> Tensor:
        raise NotImplementedError

    def to_rows_array(self, X: np.ndarray):
        raise NotImplementedError

    def from_rows_array(self, Z: np.ndarray, context) -> np.ndarray:
        raise NotImplementedError

    # -- construction --------------------------------------------------------------------
    def _init_factors(self, rank, rng, dtype, init: str, spectrum: str) -> None:
        """Draw the dense ``W_mat`` of ``init`` and keep its rank-``rank`` SVD cut."""
        rank = check_int(rank, "rank", low=1)
        if rank > min(self.n_in, self.n_out):
            raise ValueError(f"rank must be <= min(n_in, n_out) = {min(self.n_in, self.n_out)}, "
                             f"got {rank}")
        check_rng(rng)
        if not isinstance(spectrum, DecaySpectrum) and spectrum not in self.SPECTRA:
            raise ValueError(f"spectrum must be one of {self.SPECTRA} or a DecaySpectrum, got "
                             f"{spectrum!r}")
        dt = check_float_dtype(dtype)
        W, b = init_params(init, self.n_in, self.n_out, rng)
        P, sigma, Qt = np.linalg.svd(W, full_matrices=False)
        sigma = sigma[:rank]
        if spectrum == "decay":
            sigma = decay_spectrum(sigma, self.n_out)
        elif isinstance(spectrum, DecaySpectrum):
            sigma = spectrum(sigma, self.n_out)
        self._set(LowRank(P[:, :rank].astype(dt), np.diag(sigma).astype(dt),
                          Qt[:rank].T.astype(dt)), Tensor(b.astype(dt), requires_grad=True, name="b"))
        self.init = init

    @staticmethod
    def _truncated_svd(W_mat: np.ndarray, rank) -> LowRank:
        """The best rank-``rank`` approximation of a 2-d float array (``from_dense``)."""
        rank = check_int(rank, "rank", low=1)
        if rank > min(W_mat.shape):
            raise ValueError(f"rank must be <= min(n_out, n_in) = {min(W_mat.shape)} of the "
                             f"weight matrix {W_mat.shape}, got {rank}")
        P, sigma, Qt = np.linalg.svd(W_mat, full_matrices=False)
        return LowRank(P[:, :rank], np.diag(sigma[:rank]).astype(W_mat.dtype), Qt[:rank].T)

    def load_factors(self, Y, b) -> None:
        """Replace ``(U, S, V)`` and ``b`` by checked ones (``from_factors``, checkpoints).

        Raises
        ------
        TypeError, ValueError
            As :func:`lowrank_ref.lowrank.validate_lowrank` for ``Y`` (named ``Y``: a
            LowRank of finite float arrays with orthonormal ``U``, ``V``); ``Y`` not of the
            layer's shape ``(n_out, n_in)``; ``b`` not a finite real ``(n_out,)`` array.
        """
        Y = validate_lowrank(Y, "Y")
        check_float_dtype(Y.U.dtype)
        if Y.shape != (self.n_out, self.n_in):
            raise ValueError(f"Y must represent a ({self.n_out}, {self.n_in}) matrix for this "
                             f"layer, got {Y.shape}")
        b = check_bias(b, self.n_out, Y.U.dtype)
        self._set(Y, Tensor(b, requires_grad=True, name="b"))

    def _set(self, Y: LowRank, b: Tensor) -> None:
        self.U, self.S, self.V = Y
        self.b = b
        self.set_mode("W")

    # -- state ---------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return int(self.S.shape[0])

    @property
    def dtype(self):
        return self.b.dtype

    @property
    def factors(self) -> LowRank:
        """The current ``LowRank(U, S, V)``."""
        return LowRank(self.U, self.S, self.V)

    def set_factors(self, Y: LowRank) -> None:
        """Replace ``(U, S, V)`` (any rank) and return to mode ``"W"``.

        Shapes are checked, values are not (the optimisers call this every step, also on a
        diverging run, whose non-finite loss the training loop reports).
        """
        if not isinstance(Y, tuple) or len(Y) != 3 or not all(hasattr(a, "shape") for a in Y):
            raise TypeError(f"Y must be a LowRank(U, S, V) of arrays, got {type(Y).__name__}")
        U, S, V = Y
        if U.ndim != 2 or V.ndim != 2 or S.shape != (U.shape[1], V.shape[1]) \
                or U.shape[1] != V.shape[1]:
            raise ValueError(f"factors must have shapes (n_out, r), (r, r), (n_in, r), got "
                             f"U {U.shape}, S {S.shape}, V {V.shape}")
        if U.shape[0] != self.n_out or V.shape[0] != self.n_in:
            raise ValueError(f"factors must represent a ({self.n_out}, {self.n_in}) matrix, "
                             f"got {(U.shape[0], V.shape[0])}")
        self.U, self.S, self.V = (np.ascontiguousarray(a, dtype=self.dtype) for a in Y)
        self.set_mode("W")

    def refresh_orthonormality(self) -> None:
        """Re-orthonormalise ``U`` and ``V`` by QR, folding ``R`` into ``S`` (same weight).

        Call it before a forward pass, never between a forward and the use of its taps
        (the recorded ``X V`` belongs to the old ``V``).
        """
        self.U, self.S, self.V = reorthonormalize(self.factors)

    def set_mode(self, mode: str, U_hat=None, S_hat=None, V_hat=None) -> None:
        """Switch the trainable leaf: ``"W"``, ``"K"``, ``"L"`` or ``"S"`` (see the class doc).

        For ``"S"``, ``U_hat (n_out, k)``, ``S_hat (k, l)``, ``V_hat (n_in, l)`` default to
        the current ``U``, ``S``, ``V`` (S-only fine-tuning). Given ones must be finite real
        2-d arrays of those shapes (cast to the layer's dtype); other modes take none.

        Raises
        ------
        ValueError
            Unknown ``mode``; ``U_hat``/``S_hat``/``V_hat`` given for a mode other than
            ``"S"``, of the wrong shape or not finite.
        TypeError
            ``U_hat``/``S_hat``/``V_hat`` complex, of object or string dtype.
        """
        if not isinstance(mode, str) or mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        given = {k: v for k, v in (("U_hat", U_hat), ("S_hat", S_hat), ("V_hat", V_hat))
                 if v is not None}
        if given and mode != "S":
            raise ValueError(f"{', '.join(given)} only apply to mode 'S', got mode {mode!r}")
        given = {k: as_float_array(v, k, 2).astype(self.dtype, copy=False)
                 for k, v in given.items()}
        for k, rows in (("U_hat", self.n_out), ("V_hat", self.n_in)):
            if k in given and given[k].shape[0] != rows:
                raise ValueError(f"{k} must have {rows} rows, got shape {given[k].shape}")
        if mode == "S":
            U_hat = self.U if "U_hat" not in given else given["U_hat"]
            V_hat = self.V if "V_hat" not in given else given["V_hat"]
            S0 = self.S if "S_hat" not in given else given["S_hat"]
            if S0.shape != (U_hat.shape[1], V_hat.shape[1]):
                raise ValueError(f"S_hat must have shape {(U_hat.shape[1], V_hat.shape[1])}, "
                                 f"got {S0.shape}")
        self.mode = mode
        self.taps = None
        self.K = self.L = self.S_hat = None
        if mode == "K":
            self.K = Tensor(self.U @ self.S, requires_grad=True, name="K")
        elif mode == "L":
            self.L = Tensor(self.V @ self.S.T, requires_grad=True, name="L")
        elif mode == "S":
            self.U_hat, self.V_hat = U_hat, V_hat
            self.S_hat = Tensor(np.array(S0, dtype=self.dtype), requires_grad=True, name="S_hat")

    def parameters(self) -> list:
        """The leaves trained in the current mode: ``[b]``, ``[K, b]``, ``[L, b]`` or ``[S_hat, b]``."""
        leaf = {"W": None, "K": self.K, "L": self.L, "S": self.S_hat}[self.mode]
        return [self.b] if leaf is None else [leaf, self.b]

    # -- forward -------------------------------------------------------------------------
    def __call__(self, X) -> Tensor:
        """The layer's output through the factors, recorded for backward.

        ``to_rows``, then one :func:`lowrank_ref.ops.low_rank_linear` node ``R V S^T U^T +
        b`` whose factors depend on the mode: ``(U0, S0, V0)`` in "W", ``(K, I, V0)`` in
        "K", ``(U0, I, L)`` in "L", ``(U_hat, S_hat, V_hat)`` in "S"; then ``from_rows``.
        """
        R, context = self.to_rows(X)
        if self.mode == "K":            # R V0 K^T
            Z = ops.low_rank_linear(R, self.K, None, self.V, self.b)
        elif self.mode == "L":          # R L U0^T
            Z = ops.low_rank_linear(R, self.U, None, self.L, self.b)
        elif self.mode == "S":          # R V_hat S_hat^T U_hat^T
            Z = ops.low_rank_linear(R, self.U_hat, self.S_hat, self.V_hat, self.b)
        else:                           # "W": R V0 S0^T U0^T, and the arrays of DLRT's gradients
            taps = {"X": R.value}
            self.taps = taps

            def record(dZ, dZ_U, XV):
                taps.update(dZ=dZ, dZ_U=dZ_U, XV=XV)
            Z = ops.low_rank_linear(R, self.U, self.S, self.V, self.b, sink=record)
        return self.from_rows(Z, context)

    def forward_array(self, X: np.ndarray) -> np.ndarray:
        """The same map in plain NumPy (no graph), for evaluation: ``(R V) (U S)^T + b``,
        the order of :func:`lowrank_ref.ops.low_rank_linear` (``U S`` formed once, not per
        row)."""
        R, context = self.to_rows_array(X)
        return self.from_rows_array((R @ self.V) @ (self.U @ self.S).T + self.b.value, context)


class LowRankDense(BatchRows, LowRankLayer):
    """Low-rank layer ``Z = X @ (U S V^T)^T + b = ((X @ V) @ S.T) @ U.T + b`` ([SZKCT22]).

    The weight ``W = U S V^T`` of shape ``(n_out, n_in)`` is never formed: every product
    goes through the factors, so a forward costs ``O(batch (n_in + n_out) r + n_out r^2)``.
    The rows of :class:`LowRankLayer` are the batch ``X`` itself, so the modes ``"W"``,
    ``"K"``, ``"L"``, ``"S"`` and the taps are those described there with ``R = X``: after
    a backward in mode ``"W"``, ``self.taps = {"X": X, "XV": X @ V0, "dZ": dL/dZ, "dZ_U":
    (dL/dZ) @ U0}``, and ``(dL/dW) V0 = dZ^T XV``, ``(dL/dW)^T U0 = X^T dZ_U``.

    Parameters
    ----------
    n_in, n_out : int
    rank : int
        ``1 <= rank <= min(n_in, n_out)``.
    rng : numpy.random.Generator
    dtype : {float64, float32}
    init : str, default "he"
        The dense initialisation of :data:`INITS` is drawn and truncated to ``rank`` by an SVD
        (``U`` and ``V`` are its leading singular vectors); this dense draw happens once, at
        construction, never in training.
    spectrum : {"decay", "svd"} or DecaySpectrum, default "decay"
        The diagonal of ``S``. ``"svd"``: the ``rank`` largest singular values of the dense
        draw. Those keep only part of its norm (a rank-20 cut of a 500 x 784 He matrix
        shrinks the logits of the 4-layer MNIST network by a factor ~60 and training stalls),
        and their flat Marchenko-Pastur profile makes a relative truncation keep many random
        directions. ``"decay"``: ``sigma_i exp(-i / SPECTRUM_DECAY)``, ``i = 0, 1, ...``,
        rescaled so that ``||S||_F = SPECTRUM_NORM * sqrt(2 n_out)`` (``2 n_out`` is the
        expected ``||W||_F^2`` of the He draw). A :class:`DecaySpectrum`: the same with its
        own decay length and norm. The two constants were tuned on MNIST (see
        docs/reproduce/01_mnist_table.md).

    Attributes
    ----------
    U : (n_out, r) ndarray
    S : (r, r) ndarray
    V : (n_in, r) ndarray
    b : (n_out,) Tensor
    mode : str

    Examples
    --------
    >>> layer = LowRankDense(6, 4, rank=2, rng=np.random.default_rng(0))
    >>> layer.U.shape, layer.S.shape, layer.V.shape
    ((4, 2), (2, 2), (6, 2))
    >>> X = np.ones((3, 6))
    >>> np.allclose(layer(X).value, X @ (layer.U @ layer.S @ layer.V.T).T)
    True
    """

    def __init__(self, n_in: int, n_out: int, rank: int, rng, dtype=np.float64,
                 init: str = "he", spectrum: str = "decay"):
        self.n_in = check_int(n_in, "n_in", low=1)
        self.n_out = check_int(n_out, "n_out", low=1)
        self._init_factors(rank, rng, dtype, init, spectrum)

    @classmethod
    def from_dense(cls, W, b, rank: int) -> "LowRankDense":
        """Best rank-``rank`` approximation of a dense weight ``W (n_out, n_in)`` (truncated SVD).

        The "train from a pruned dense network" start of [SZKCT22].

        Raises
        ------
        ValueError
            ``W`` not a finite 2-d float32/float64 array, ``b`` not of shape ``(n_out,)`` or
            not finite, ``rank`` < 1 or > ``min(n_out, n_in)``.
        TypeError
            ``b`` not real (complex, object, strings), ``rank`` not an int.
        """
        W = np.asarray(W.value if isinstance(W, Tensor) else W)
        if W.ndim != 2 or W.dtype not in (np.float32, np.float64):
            raise ValueError(f"W must be a 2-d float32 or float64 array, got shape {W.shape} "
                             f"dtype {W.dtype}")
        if not np.all(np.isfinite(W)):
            raise ValueError(f"W must be finite, got "
                             f"{int(W.size - np.count_nonzero(np.isfinite(W)))} NaN/Inf entries")
        b = check_bias(b, W.shape[0], W.dtype)
        return cls.from_factors(cls._truncated_svd(W, rank), b)

    @classmethod
    def from_factors(cls, Y, b) -> "LowRankDense":
        """A layer holding ``W = Y.U @ Y.S @ Y.V.T`` (a :class:`LowRank`) and bias ``b``.

        Raises
        ------
        TypeError, ValueError
            As :func:`lowrank_ref.lowrank.validate_lowrank` for ``Y`` (named ``Y``); ``b``
            not a finite real ``(n_out,)`` array.
        """
        Y = validate_lowrank(Y, "Y")
        layer = cls.__new__(cls)
        layer.n_out, layer.n_in = Y.shape
        layer.init = "factors"
        layer.load_factors(Y, b)
        return layer

    def __repr__(self) -> str:
        return (f"LowRankDense(n_in={self.n_in}, n_out={self.n_out}, rank={self.rank}, "
                f"dtype={self.dtype}, mode={self.mode!r})")
