"""hypothesis strategies for structured low-rank test inputs.

Everything random is drawn as a *seed* and turned into arrays by ``numpy.random.Generator``
(hypothesis shrinks seeds and sizes, not float arrays): orthonormal factors come from the
thin QR of Gaussian matrices, singular values are spread over many decades with a capped
condition number.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lowrank_ref.lowrank import LowRank

MIN_SIZE, MAX_SIZE = 2, 60

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def sizes(min_size: int = MIN_SIZE, max_size: int = MAX_SIZE):
    """A matrix dimension in ``[min_size, max_size]``."""
    return st.integers(min_value=min_size, max_value=max_size)


def orthonormal(rng: np.random.Generator, m: int, r: int) -> np.ndarray:
    """(m, r) matrix with orthonormal columns: thin QR of a Gaussian matrix."""
    Q, R = np.linalg.qr(rng.standard_normal((m, r)))
    return Q * np.sign(np.diag(R))  # Haar distributed


def spread_singular_values(rng: np.random.Generator, r: int, max_cond: float,
                           scale_decades: float = 2.0) -> np.ndarray:
    """``r`` descending singular values, largest ``10^U(-d, d)``, condition <= ``max_cond``.

    The log-condition is drawn uniformly in ``[0, log10(max_cond)]``; the values are
    log-uniform between the largest and the smallest (both ends included when r >= 2).
    """
    top = 10.0 ** rng.uniform(-scale_decades, scale_decades)
    if r == 1:
        return np.array([top])
    cond = 10.0 ** rng.uniform(0.0, np.log10(max_cond))
    inner = np.sort(rng.uniform(0.0, 1.0, size=r - 2))[::-1]
    logs = np.concatenate([[1.0], inner, [0.0]]) * np.log10(cond)
    return top * 10.0 ** (logs - np.log10(cond))


@st.composite
def shapes_and_rank(draw, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE,
                    max_rank: int | None = None):
    """``(m, n, r)`` with ``1 <= r <= min(m, n, max_rank)``."""
    m = draw(sizes(min_size, max_size))
    n = draw(sizes(min_size, max_size))
    hi = min(m, n) if max_rank is None else min(m, n, max_rank)
    r = draw(st.integers(min_value=1, max_value=hi))
    return m, n, r


@st.composite
def lowrank_matrices(draw, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE,
                     max_rank: int | None = None, max_cond: float = 1e8,
                     diagonal: bool = False):
    """A :class:`LowRank` with orthonormal factors and spread singular values.

    ``S = P diag(sigma) Q^T`` with random orthogonal ``P``, ``Q`` unless ``diagonal``
    (so that ``S`` is a general invertible core, as between truncations).
    """
    m, n, r = draw(shapes_and_rank(min_size, max_size, max_rank))
    rng = np.random.default_rng(draw(seeds))
    sigma = spread_singular_values(rng, r, max_cond)
    U = orthonormal(rng, m, r)
    V = orthonormal(rng, n, r)
    if diagonal:
        S = np.diag(sigma)
    else:
        S = orthonormal(rng, r, r) @ np.diag(sigma) @ orthonormal(rng, r, r).T
    return LowRank(U, S, V)


@st.composite
def augmented_triples(draw, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE,
                      max_cond: float = 1e10):
    """``(U_hat, S_hat, V_hat)`` as entering :func:`truncate`: k <= min(m, n), any core."""
    m, n, k = draw(shapes_and_rank(min_size, max_size))
    rng = np.random.default_rng(draw(seeds))
    sigma = spread_singular_values(rng, k, max_cond)
    S_hat = orthonormal(rng, k, k) @ np.diag(sigma) @ orthonormal(rng, k, k).T
    return orthonormal(rng, m, k), S_hat, orthonormal(rng, n, k)


def gauge(rng: np.random.Generator, Y: LowRank) -> LowRank:
    """The same matrix in another gauge: ``(U Q1, Q1^T S Q2, V Q2)``."""
    r = Y.rank
    Q1, Q2 = orthonormal(rng, r, r), orthonormal(rng, r, r)
    return LowRank(Y.U @ Q1, Q1.T @ Y.S @ Q2, Y.V @ Q2)
