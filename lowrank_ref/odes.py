"""Matrix ODE test problems ``dA/dt = F(t, A)`` with exact solutions.

Every problem object has

* ``m``, ``n`` : the shape of the matrices;
* ``A0`` : (m, n) ndarray, the initial value ``A(0)`` (problems start at ``t = 0``);
* ``F(t, A)`` : (m, n) ndarray, the right-hand side; it takes and returns dense arrays
  (the contract of the integrators, :mod:`lowrank_ref.integrators`);
* ``exact(t)`` : (m, n) ndarray, the exact solution ``A(t)``.

Problems:

* :class:`ToyProblem` -- the standard test of [CL22] (Ceruti & Lubich, BIT 62 (2022),
  numerical experiments), going back to [KLW16]: ``A(t) = e^{t W1} e^t D e^{t W2}^T``, singular values
  ``e^t 2^{-j}`` (a full-rank matrix whose best rank-r error is known in closed form).
* :class:`SylvesterProblem` -- ``dY/dt = W1 Y + Y W2^T (+ C)``: rank-preserving, or with a
  low-rank source ``C`` a flow whose rank grows; exact solution by ``scipy.linalg.expm``.
* :class:`CubicFlow` -- ``dY/dt = W1 Y + Y W2^T - c Y Y^T Y``: nonlinear and
  rank-preserving, with a known solution and prescribed singular values.
* :class:`RankRCurve` -- a prescribed smooth rank-r curve ``A(t) = U(t) S(t) V(t)^T`` with
  singular values that may go down to 1e-12: the exactness tests of [LO14] and [CL22].
* :class:`GradientFlow` -- ``dY/dt = -(Y - B)``, the gradient flow of ``||Y - B||_F^2 / 2``.

Only real problems are provided. The complex Schrödinger example of [CL22]/[CKL22] is left
out on purpose: :class:`~lowrank_ref.lowrank.LowRank` and the integrators support real
(float32/float64) factors only.

Randomness only through the ``rng`` argument (a ``numpy.random.Generator``).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import scipy.linalg

from ._validate import as_float_array, check_bool, check_int, check_real, check_rng
from .lowrank import LowRank

__all__ = ["ToyProblem", "SylvesterProblem", "CubicFlow", "RankRCurve", "GradientFlow"]


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _check_state(A, m, n):
    A = as_float_array(A, "A", 2)
    if A.shape != (m, n):
        raise ValueError(f"A must have shape ({m}, {n}), got {A.shape}")
    return A


class _SkewExp:
    """``exp(t W)`` for a real skew-symmetric ``W`` (k, k), for any ``t``, to rounding.

    ``i W`` is Hermitian, ``i W = P diag(mu) P^H`` (``eigh``), hence
    ``exp(t W) = P diag(exp(-i t mu)) P^H``: one eigendecomposition, then two matrix
    products per evaluation; the result is orthogonal to working precision.
    """

    def __init__(self, W):
        self.W = W
        self._mu, self._P = np.linalg.eigh(1j * W)

    def __call__(self, t):
        P = self._P
        return ((P * np.exp(-1j * t * self._mu)) @ P.conj().T).real


def _random_skew(rng, k, scale):
    """``scale * (G - G^T) / 2`` with ``G`` of i.i.d. uniform [0, 1) entries."""
    G = rng.random((k, k))
    return scale * (G - G.T) / 2.0


# ---------------------------------------------------------------------------------------
# (a) the toy problem of [CL22]
# ---------------------------------------------------------------------------------------
class ToyProblem:
    r"""``A(t) = e^{t W1} e^t D e^{t W2}^T``: the standard test of [CL22] ([KLW16]).

    ``D`` is the (m, n) diagonal matrix with ``D[j-1, j-1] = 2^{-j}``, ``j = 1..min(m, n)``
    (the example is square, ``N x N``; rectangular shapes are allowed here), and ``W1``
    (m, m), ``W2`` (n, n) are random skew-symmetric matrices,
    ``W = w_scale * (G - G^T) / 2`` with ``G`` uniform on ``[0, 1)`` entrywise. This random
    scaling is the one of public reproduction code of [CL22]'s example (which uses
    ``N = 100``); it was not checked against the paper's text. ``w_scale`` changes it.

    Because ``e^{t W1}`` and ``e^{t W2}`` are orthogonal, the singular values of ``A(t)``
    are exactly ``sigma_j(t) = e^t 2^{-j}``, ``j = 1..p``, ``p = min(m, n)``, and the best
    rank-r approximation error (Eckart-Young) is

    .. math::

        \mathrm{best\_error}(t, r) = e^t \Big(\sum_{j=r+1}^{p} 4^{-j}\Big)^{1/2}
                                   = e^t\, 2^{-r} \sqrt{(1 - 4^{r-p}) / 3},

    i.e. about ``e 2^{-r} / sqrt(3)`` at ``t = 1`` when ``p >> r``.

    Three forms of the same problem:

    * ``form="data"`` (default): ``F(t, A) = dA/dt (t) = W1 A(t) + A(t) + A(t) W2^T``
      evaluated on the exact ``A(t)``; it ignores its argument ``A`` (the "given matrix"
      case of [KL07], [LO14]). The last few values are cached by ``t``.
    * ``form="ode"``: ``F(t, Y) = W1 Y + Y + Y W2^T``, whose solution from ``A0 = D`` is the
      same ``A(t)``. This ``F`` is tangent to the rank-r manifold at every rank-r ``Y``
      (no normal component): from the best rank-r approximation of ``D`` the solution is
      the best rank-r approximation of ``A(t)``, :meth:`best_approximation`, exactly.
    * ``form="source"``: ``F(t, Y) = W1 Y + Y W2^T + A(t)``, the growth term given as a
      source; the solution from ``A0 = D`` is again ``A(t)``, and from any ``Y0`` it is
      ``A(t) + e^{t W1} (Y0 - D) e^{t W2}^T`` (at distance ``||Y0 - D||_F`` from ``A(t)``
      for all ``t``). At a rank-r ``Y`` this ``F`` has the normal component
      ``(I - U U^T) A(t) (I - V V^T)`` (about the best rank-r error of ``A(t)``): a
      non-tangent vector field with a known solution, for the order tests of the
      second- and higher-order integrators.

    Parameters
    ----------
    rng : numpy.random.Generator
    m : int
        Rows, ``>= 1``.
    n : int, optional
        Columns (default ``m``).
    form : {"data", "ode", "source"}
    w_scale : float, default 1.0
        Multiplier of the skew-symmetric matrices (``> 0``).

    Attributes
    ----------
    W1 : (m, m) ndarray
    W2 : (n, n) ndarray
    D : (m, n) ndarray
    A0 : (m, n) ndarray
        ``= D``.

    Examples
    --------
    >>> prob = ToyProblem(np.random.default_rng(0), 30)
    >>> s = np.linalg.svd(prob.exact(1.0), compute_uv=False)
    >>> bool(np.allclose(s[:3], np.e * 2.0 ** -np.arange(1, 4)))
    True
    >>> round(float(prob.best_error(1.0, 10) / (np.e * 2.0**-10 / np.sqrt(3))), 6)
    1.0
    """

    def __init__(self, rng: np.random.Generator, m: int, n=None, form: str = "data",
                 w_scale: float = 1.0):
        check_rng(rng)
        m = check_int(m, "m", low=1)
        n = m if n is None else check_int(n, "n", low=1)
        if form not in ("data", "ode", "source"):
            raise ValueError(f"form must be 'data', 'ode' or 'source', got {form!r}")
        w_scale = check_real(w_scale, "w_scale", low=0.0, low_open=True)
        self.m, self.n, self.form = m, n, form
        self.W1 = _random_skew(rng, m, w_scale)
        self.W2 = _random_skew(rng, n, w_scale)
        p = min(m, n)
        self.singular_values0 = 2.0 ** -np.arange(1, p + 1, dtype=np.float64)
        self.D = np.zeros((m, n))
        self.D[np.arange(p), np.arange(p)] = self.singular_values0
        self.A0 = self.D.copy()
        self._E1 = _SkewExp(self.W1)
        self._E2 = _SkewExp(self.W2)
        self._cache: OrderedDict = OrderedDict()

    def exact(self, t) -> np.ndarray:
        """``A(t) = e^{t W1} e^t D e^{t W2}^T``, shape (m, n)."""
        t = check_real(t, "t")
        p = min(self.m, self.n)
        E1 = self._E1(t)[:, :p] * (np.exp(t) * self.singular_values0)
        return E1 @ self._E2(t)[:, :p].T

    def _given(self, t):
        """``dA/dt(t)`` (data form) or ``A(t)`` (source form), cached by ``t``."""
        if t in self._cache:
            self._cache.move_to_end(t)
            return self._cache[t]
        A = self.exact(t)
        out = self.W1 @ A + A + A @ self.W2.T if self.form == "data" else A
        self._cache[t] = out
        if len(self._cache) > 8:
            self._cache.popitem(last=False)
        return out

    def F(self, t, A) -> np.ndarray:
        """Right-hand side, shape (m, n): ``dA/dt(t)`` (data form), ``W1 A + A + A W2^T``
        (ode form) or ``W1 A + A W2^T + A(t)`` (source form)."""
        t = check_real(t, "t")
        A = _check_state(A, self.m, self.n)
        if self.form == "data":
            return self._given(t).copy()
        if self.form == "source":
            return self.W1 @ A + A @ self.W2.T + self._given(t)
        return self.W1 @ A + A + A @ self.W2.T

    def singular_values(self, t) -> np.ndarray:
        """``sigma_j(A(t)) = e^t 2^{-j}``, ``j = 1..min(m, n)``, shape (min(m, n),)."""
        return np.exp(check_real(t, "t")) * self.singular_values0

    def best_error(self, t, r: int) -> float:
        """Frobenius error of the best rank-``r`` approximation of ``A(t)``.

        ``e^t sqrt(sum_{j=r+1}^{p} 4^{-j}) = e^t 2^{-r} sqrt((1 - 4^{r-p}) / 3)``,
        ``p = min(m, n)``; ``0 <= r <= p``.
        """
        p = min(self.m, self.n)
        r = check_int(r, "r", low=0, high=p)
        t = check_real(t, "t")
        return float(np.exp(t) * 2.0 ** -r * np.sqrt((1.0 - 4.0 ** (r - p)) / 3.0))

    def best_approximation(self, t, r: int) -> LowRank:
        """The best rank-``r`` approximation of ``A(t)`` (known factors, no SVD)."""
        p = min(self.m, self.n)
        r = check_int(r, "r", low=1, high=p)
        t = check_real(t, "t")
        return LowRank(self._E1(t)[:, :r], np.diag(self.singular_values(t)[:r]),
                       self._E2(t)[:, :r])


# ---------------------------------------------------------------------------------------
# (b) Sylvester flow
# ---------------------------------------------------------------------------------------
class SylvesterProblem:
    """``dY/dt = W1 Y + Y W2^T + C`` from a rank-r ``Y0``; ``C = 0`` by default.

    Without a source (``source_rank=0``) the exact solution ``A(t) = expm(t W1) A0 expm(t
    W2)^T`` keeps rank ``r``, and the right-hand side is tangent to the rank-r manifold, so
    the DLRA solution equals ``A(t)``. The projector-splitting integrator with exactly
    solved substeps reproduces it (the K-step gives ``range(U1) = e^{h W1} range(U0)``, and
    the backward S-step cancels the rest); the BUG integrators do *not* (their Galerkin
    step uses fixed bases), so they show first-order convergence on this problem.

    With a source ``C`` of rank ``source_rank`` the rank of ``A(t)`` grows (to the full
    ``min(m, n)`` in exact arithmetic, with singular values that decay quickly): the test
    of rank-adaptive integrators on a rank-growing problem. ``C`` is either random
    (``source_in_bases=False``: its ranges are generic, mostly outside ``range(U0)``,
    ``range(V0)``) or ``U0 M V0^T`` with a random ``M`` of rank ``source_rank``
    (``source_in_bases=True``: the rank still grows, through ``W1^k U0`` and ``W2^k V0``,
    but ``F(Y0)`` has no component outside the initial bases on both sides). The exact
    solution is ``A(t) = e^{t W1} A0 e^{t W2^T} + X(t) e^{t W2^T}`` with ``X(t) =
    int_0^t e^{(t - s) W1} C e^{-s W2^T} ds``, the upper right block of ``expm(t [[W1, C],
    [0, -W2^T]])`` (Van Loan's block formula).

    Parameters
    ----------
    rng : numpy.random.Generator
    m, n : int
        Shape, ``>= 1``.
    r : int
        Rank of ``Y0``, ``1 <= r <= min(m, n)``.
    w_scale : float, default 1.0
        ``W1 = w_scale * G1 / sqrt(m)`` with ``G1`` standard normal (a general, non-normal
        matrix with ``||W1||_2`` about ``2 w_scale``); ``W2`` likewise with ``n``.
    skew : bool, default False
        Use skew-symmetric ``W1``, ``W2`` (``(G - G^T) / sqrt(2k)``) instead.
    singular_values : (r,) array_like, optional
        Singular values of ``Y0`` (default uniform in [1, 2]).
    W1 : (m, m) array_like, optional
        Overrides the random ``W1`` (e.g. ``W2 = W1`` for a symmetry-preserving problem).
    W2 : (n, n) array_like, optional
    source_rank : int, default 0
        Rank of the source ``C`` (0: no source); at most ``r`` if ``source_in_bases``.
    source_in_bases : bool, default False
        ``C = U0 M V0^T`` instead of a random rank-``source_rank`` matrix (singular
        values uniform in [1, 2] in both cases).

    Attributes
    ----------
    Y0 : LowRank
        ``(U0, S0, V0)``, rank r.
    A0 : (m, n) ndarray
        ``Y0.to_dense()``.
    C : (m, n) ndarray
        The source (zeros if ``source_rank=0``).

    Examples
    --------
    >>> prob = SylvesterProblem(np.random.default_rng(1), 8, 6, 2)
    >>> A1 = prob.exact(0.5)
    >>> int(np.linalg.matrix_rank(A1)), A1.shape
    (2, (8, 6))
    >>> grow = SylvesterProblem(np.random.default_rng(1), 8, 6, 2, source_rank=1)
    >>> int(np.linalg.matrix_rank(grow.exact(0.5), tol=1e-12))      # rank grows from 2
    6
    """

    def __init__(self, rng: np.random.Generator, m: int, n: int, r: int,
                 w_scale: float = 1.0, skew: bool = False, singular_values=None,
                 W1=None, W2=None, source_rank: int = 0, source_in_bases: bool = False):
        check_rng(rng)
        m = check_int(m, "m", low=1)
        n = check_int(n, "n", low=1)
        r = check_int(r, "r", low=1, high=min(m, n))
        w_scale = check_real(w_scale, "w_scale", low=0.0, low_open=True)
        check_bool(source_in_bases, "source_in_bases")
        source_rank = check_int(source_rank, "source_rank", low=0,
                                high=r if source_in_bases else min(m, n))
        self.m, self.n, self.r = m, n, r

        def make(k):
            G = rng.standard_normal((k, k))
            if skew:
                return w_scale * (G - G.T) / np.sqrt(2.0 * k)
            return w_scale * G / np.sqrt(k)

        self.W1 = make(m) if W1 is None else as_float_array(W1, "W1", 2).astype(np.float64)
        self.W2 = make(n) if W2 is None else as_float_array(W2, "W2", 2).astype(np.float64)
        if self.W1.shape != (m, m):
            raise ValueError(f"W1 must have shape ({m}, {m}), got {self.W1.shape}")
        if self.W2.shape != (n, n):
            raise ValueError(f"W2 must have shape ({n}, {n}), got {self.W2.shape}")
        self.Y0 = LowRank.random(rng, m, n, r, singular_values=singular_values)
        self.A0 = self.Y0.to_dense()
        self.C = np.zeros((m, n))
        if source_rank and source_in_bases:
            M = LowRank.random(rng, r, r, source_rank).to_dense()
            self.C = (self.Y0.U @ M) @ self.Y0.V.T
        elif source_rank:
            self.C = LowRank.random(rng, m, n, source_rank).to_dense()

    def F(self, t, A) -> np.ndarray:
        """``W1 A + A W2^T + C``, shape (m, n)."""
        check_real(t, "t")
        A = _check_state(A, self.m, self.n)
        return self.W1 @ A + A @ self.W2.T + self.C

    def exact(self, t) -> np.ndarray:
        """``expm(t W1) A0 expm(t W2)^T`` plus the source's part (see above), (m, n)."""
        t = check_real(t, "t")
        m = self.m
        H = np.block([[self.W1, self.C], [np.zeros((self.n, m)), -self.W2.T]])
        E = scipy.linalg.expm(t * H)
        return (E[:m, :m] @ self.A0 + E[:m, m:]) @ scipy.linalg.expm(t * self.W2).T


# ---------------------------------------------------------------------------------------
# (b') a nonlinear rank-preserving flow
# ---------------------------------------------------------------------------------------
class CubicFlow:
    r"""``dY/dt = W1 Y + Y W2^T - c Y Y^T Y`` with skew-symmetric ``W1``, ``W2``: nonlinear,
    rank-preserving, with a known solution.

    ``Y Y^T Y = U S^3 V^T`` has the ranges of ``Y``, so ``F`` is tangent to the rank-r
    manifold and the rank of ``Y0`` is kept. With ``Y = e^{t W1} X e^{t W2}^T`` (orthogonal
    factors) the flow becomes ``dX/dt = -c X X^T X``, whose solution from ``X(0) = U0
    diag(sigma) V0^T`` keeps the singular vectors and has the singular values
    ``sigma_j(t) = sigma_j / sqrt(1 + 2 c sigma_j^2 t)``. So

    .. math::

        A(t) = e^{t W1} U_0 \,\mathrm{diag}(\sigma_j(t))\, V_0^T e^{t W2^T}:

    each singular value decays at its own, nonlinear rate while the bases rotate. The
    random ``W`` are ``w_scale (G - G^T) / 2`` with ``G`` uniform on ``[0, 1)`` (as
    :class:`ToyProblem`).

    Parameters
    ----------
    rng : numpy.random.Generator
    m, n : int
        Shape, ``>= 1``.
    singular_values : (r,) array_like
        The singular values ``sigma`` of ``Y0`` (positive), ``r <= min(m, n)``.
    c : float, default 1.0
        Strength of the cubic term (``>= 0``).
    w_scale : float, default 1.0
        Multiplier of the skew-symmetric matrices (``> 0``).

    Attributes
    ----------
    Y0 : LowRank
        ``(U0, diag(sigma), V0)``.
    A0 : (m, n) ndarray

    Examples
    --------
    >>> prob = CubicFlow(np.random.default_rng(0), 9, 7, [1.0, 1e-3])
    >>> s = np.linalg.svd(prob.exact(1.0), compute_uv=False)
    >>> bool(np.allclose(s[:2], [1 / np.sqrt(3), 1e-3 / np.sqrt(1 + 2e-6)])), bool(s[2] < 1e-14)
    (True, True)
    """

    def __init__(self, rng: np.random.Generator, m: int, n: int, singular_values,
                 c: float = 1.0, w_scale: float = 1.0):
        check_rng(rng)
        m = check_int(m, "m", low=1)
        n = check_int(n, "n", low=1)
        sigma = as_float_array(singular_values, "singular_values", 1).astype(np.float64)
        if not (1 <= sigma.size <= min(m, n)) or not np.all(sigma > 0):
            raise ValueError(f"singular_values must be 1 to {min(m, n)} positive numbers, "
                             f"got {sigma.tolist()}")
        self.c = check_real(c, "c", low=0.0)
        w_scale = check_real(w_scale, "w_scale", low=0.0, low_open=True)
        self.m, self.n, self.r = m, n, sigma.size
        self.sigma = sigma
        self.W1 = _random_skew(rng, m, w_scale)
        self.W2 = _random_skew(rng, n, w_scale)
        U0, _ = np.linalg.qr(rng.standard_normal((m, self.r)))
        V0, _ = np.linalg.qr(rng.standard_normal((n, self.r)))
        self.Y0 = LowRank(U0, np.diag(sigma), V0)
        self.A0 = self.Y0.to_dense()
        self._E1, self._E2 = _SkewExp(self.W1), _SkewExp(self.W2)

    def F(self, t, A) -> np.ndarray:
        """``W1 A + A W2^T - c A A^T A``, shape (m, n)."""
        check_real(t, "t")
        A = _check_state(A, self.m, self.n)
        return self.W1 @ A + A @ self.W2.T - self.c * (A @ (A.T @ A))

    def singular_values(self, t) -> np.ndarray:
        """``sigma_j / sqrt(1 + 2 c sigma_j^2 t)``, shape (r,)."""
        t = check_real(t, "t")
        return self.sigma / np.sqrt(1.0 + 2.0 * self.c * self.sigma ** 2 * t)

    def exact(self, t) -> np.ndarray:
        """``A(t)``, shape (m, n)."""
        t = check_real(t, "t")
        U0, _, V0 = self.Y0
        return ((self._E1(t) @ U0) * self.singular_values(t)) @ (self._E2(t) @ V0).T


# ---------------------------------------------------------------------------------------
# (c) a prescribed rank-r curve
# ---------------------------------------------------------------------------------------
class RankRCurve:
    r"""A smooth rank-r curve ``A(t) = U(t) S(t) V(t)^T`` and ``F(t, A) = dA/dt(t)``.

    * ``U(t) = e^{t Om1} U0``, ``V(t) = e^{t Om2} V0`` with skew-symmetric ``Om1`` (m, m),
      ``Om2`` (n, n), ``||Om||_2`` about ``omega``;
    * ``S(t) = (1 + t) R(t) diag(sigma)``, ``R(t) = e^{t Om_S}`` an r x r rotation: smooth,
      invertible for ``t > -1``, not diagonal for ``t != 0``;
    * ``sigma`` geometrically spaced from ``1`` down to ``sigma_min`` (e.g. ``1e-12``).

    The singular values of ``A(t)`` are ``(1 + t) sigma_j``. The derivative is analytic:

    .. math::

        \dot A = Om1 A + U (R \Sigma + (1 + t)\, Om_S R \Sigma) V^T + A\, Om2^T,

    and ``F(t, A)`` returns it, ignoring ``A``. The exactness theorems of [LO14],
    [CL22] and [CKL22] say that KSL, BUG and rank-adaptive BUG started from
    ``Y0 = A(t0)`` reproduce ``A(t1)`` when the substeps are solved exactly.

    Parameters
    ----------
    rng : numpy.random.Generator
    m, n : int
    r : int
        ``1 <= r <= min(m, n)``.
    sigma_min : float, default 1e-3
        Smallest singular value at ``t = 0`` (``0 < sigma_min <= 1``).
    omega : float, default 1.0
        Speed of the rotating bases (``> 0``).

    Attributes
    ----------
    Y0 : LowRank
        ``(U0, diag(sigma), V0)`` = ``A(0)``.
    A0 : (m, n) ndarray
    sigma : (r,) ndarray

    Examples
    --------
    >>> c = RankRCurve(np.random.default_rng(2), 10, 7, 3, sigma_min=1e-6)
    >>> s = np.linalg.svd(c.exact(1.0), compute_uv=False)
    >>> bool(np.allclose(s[:3], 2 * c.sigma, rtol=1e-8)), bool(s[3] < 1e-14)
    (True, True)
    """

    def __init__(self, rng: np.random.Generator, m: int, n: int, r: int,
                 sigma_min: float = 1e-3, omega: float = 1.0):
        check_rng(rng)
        m = check_int(m, "m", low=1)
        n = check_int(n, "n", low=1)
        r = check_int(r, "r", low=1, high=min(m, n))
        sigma_min = check_real(sigma_min, "sigma_min", low=0.0, low_open=True)
        if sigma_min > 1:
            raise ValueError(f"sigma_min must be <= 1, got {sigma_min!r}")
        omega = check_real(omega, "omega", low=0.0, low_open=True)
        self.m, self.n, self.r = m, n, r
        self.sigma = np.geomspace(1.0, sigma_min, r) if r > 1 else np.ones(1)
        self.Om1 = _random_skew(rng, m, 1.0)
        self.Om2 = _random_skew(rng, n, 1.0)
        self.OmS = _random_skew(rng, r, 1.0) if r > 1 else np.zeros((1, 1))
        # normalise the rotation speeds to ||Om||_2 = omega
        for name in ("Om1", "Om2", "OmS"):
            M = getattr(self, name)
            nrm = np.linalg.norm(M, 2)
            setattr(self, name, M * (omega / nrm) if nrm > 0 else M)
        U0, _ = np.linalg.qr(rng.standard_normal((m, r)))
        V0, _ = np.linalg.qr(rng.standard_normal((n, r)))
        self.Y0 = LowRank(U0, np.diag(self.sigma), V0)
        self.A0 = self.Y0.to_dense()
        self._E1, self._E2, self._ES = _SkewExp(self.Om1), _SkewExp(self.Om2), _SkewExp(self.OmS)

    def factors(self, t) -> LowRank:
        """``(U(t), S(t), V(t))`` with orthonormal ``U``, ``V``."""
        t = check_real(t, "t")
        U0, _, V0 = self.Y0
        return LowRank(self._E1(t) @ U0, (1.0 + t) * (self._ES(t) * self.sigma),
                       self._E2(t) @ V0)

    def exact(self, t) -> np.ndarray:
        """``A(t) = U(t) S(t) V(t)^T``, shape (m, n)."""
        return self.factors(t).to_dense()

    def F(self, t, A) -> np.ndarray:
        """``dA/dt(t)`` (analytic), shape (m, n); ignores ``A``."""
        t = check_real(t, "t")
        _check_state(A, self.m, self.n)
        U, S, V = self.factors(t)
        RS = self._ES(t) * self.sigma
        dS = RS + (1.0 + t) * (self.OmS @ RS)
        A_t = (U @ S) @ V.T
        return self.Om1 @ A_t + (U @ dS) @ V.T + A_t @ self.Om2.T


# ---------------------------------------------------------------------------------------
# (d) gradient flow
# ---------------------------------------------------------------------------------------
class GradientFlow:
    """``dY/dt = -(Y - B)``: gradient flow of ``f(Y) = ||Y - B||_F^2 / 2``.

    Exact solution ``A(t) = B + e^{-t} (A0 - B)``. [CKL22]: the rank-adaptive
    BUG integrator decreases ``f`` monotonically up to the truncation tolerance.

    Parameters
    ----------
    rng : numpy.random.Generator
    m, n : int
    r : int
        Rank of the start ``Y0``, ``1 <= r <= min(m, n)``.
    B : (m, n) array_like, optional
        Target (default: a random matrix with singular values ``2^{-j}``, full rank).
    singular_values : (r,) array_like, optional
        Singular values of ``Y0``.

    Attributes
    ----------
    B : (m, n) ndarray
    Y0 : LowRank
    A0 : (m, n) ndarray

    Examples
    --------
    >>> g = GradientFlow(np.random.default_rng(3), 5, 4, 2)
    >>> bool(np.allclose(g.exact(50.0), g.B))
    True
    """

    def __init__(self, rng: np.random.Generator, m: int, n: int, r: int, B=None,
                 singular_values=None):
        check_rng(rng)
        m = check_int(m, "m", low=1)
        n = check_int(n, "n", low=1)
        r = check_int(r, "r", low=1, high=min(m, n))
        self.m, self.n, self.r = m, n, r
        if B is None:
            p = min(m, n)
            self.B = LowRank.random(rng, m, n, p,
                                    singular_values=2.0 ** -np.arange(p)).to_dense()
        else:
            self.B = as_float_array(B, "B", 2).astype(np.float64)
            if self.B.shape != (m, n):
                raise ValueError(f"B must have shape ({m}, {n}), got {self.B.shape}")
        self.Y0 = LowRank.random(rng, m, n, r, singular_values=singular_values)
        self.A0 = self.Y0.to_dense()

    def F(self, t, A) -> np.ndarray:
        """``-(A - B)``, shape (m, n)."""
        check_real(t, "t")
        A = _check_state(A, self.m, self.n)
        return self.B - A

    def exact(self, t) -> np.ndarray:
        """``B + e^{-t} (A0 - B)``, shape (m, n)."""
        t = check_real(t, "t")
        return self.B + np.exp(-t) * (self.A0 - self.B)

    def objective(self, Y) -> float:
        """``||Y - B||_F`` for a dense (m, n) ``Y`` or a LowRank."""
        Yd = Y.to_dense() if isinstance(Y, LowRank) else np.asarray(Y)
        return float(np.linalg.norm(Yd - self.B))
