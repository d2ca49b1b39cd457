"""The published code's truncation, reproduced for an experiment (lowrank_ref.published_truncation):
the rank rule as the code reads, the transposed right factor, and the optimiser that uses it."""
import numpy as np
import pytest

from lowrank_ref.dlrt import low_rank_mlp
from lowrank_ref.published_truncation import (PublishedTruncationBUG, published_truncate,
                                              published_truncation_rank)
from lowrank_ref.truncation import truncate, truncation_rank

#: Rounding of products of orthonormal factors of the sizes below (at most 30 rows): a few
#: hundred units of float64 roundoff per entry.
TOL = 16 * 30 * np.finfo(np.float64).eps


def _loop_as_published(d, theta):
    """The published loop, transcribed literally (floor(k/2), range(0, 2 r - 1), strict <)."""
    rmax = int(np.floor(d.shape[0] / 2))
    for j in range(0, 2 * rmax - 1):
        if np.linalg.norm(d[j:2 * rmax - 1]) < theta:
            rmax = j
            break
    return rmax


@pytest.mark.parametrize("seed", range(20))
def test_the_rank_is_the_published_loop_then_the_clamps(seed):
    rng = np.random.default_rng(seed)
    k = 2 * int(rng.integers(1, 12))
    d = np.sort(np.abs(rng.standard_normal(k)) * np.exp(-rng.uniform(0, 1) * np.arange(k)))[::-1]
    tol = float(rng.uniform(0.01, 0.6))
    cap = int(rng.integers(1, k + 2))
    want = max(min(_loop_as_published(d, tol * np.linalg.norm(d)), cap), 2)
    assert published_truncation_rank(d, tol, max_rank=cap) == min(want, k)


def test_where_the_published_rank_differs_from_the_stated_rule():
    flat = np.ones(8)                            # no tail below theta: the rank stays k / 2
    assert published_truncation_rank(flat, 0.01) == 4 and truncation_rank(flat, 0.01) == 8
    d = np.array([4.0, 0.4, 0.3, 0.3])           # the smallest value is never in the tail
    assert published_truncation_rank(d, 0.55, relative=False, min_rank=1) == 1
    assert truncation_rank(d, 0.55, relative=False) == 2
    d = np.array([4.0, 2.0, 1.0, 0.5, 0.2, 0.1])  # strict <: a tail equal to theta is kept
    theta = float(np.linalg.norm(d[3:5]))
    assert published_truncation_rank(d, theta, relative=False) == 4
    assert published_truncation_rank(d, theta * (1 + 1e-12), relative=False) == 3
    assert published_truncation_rank(np.array([1.0, 1e-9, 1e-9, 1e-9]), 0.1) == 2  # floor 2
    assert published_truncation_rank(np.array([1.0, 1e-9, 1e-9, 1e-9]), 0.1, min_rank=0) == 1
    assert published_truncation_rank(np.array([1.0, 1e-9]), 0.1, min_rank=0) == 1  # j = 1 untested


@pytest.mark.parametrize("side", ["U", "V"])
def test_one_factor_is_the_transposed_one(side):
    """With S_hat = P diag(d) Q^T (numpy's vh is Q^T): "U" (TensorFlow code) takes
    U1 = U_hat (P^T)[:, :r], "V" (PyTorch code) V1 = V_hat (Q^T)[:, :r], the other factor
    right; both stay orthonormal, but U1 S1 V1^T is not the truncated matrix. For a diagonal
    core (P, Q symmetric) it is."""
    rng = np.random.default_rng(0)
    m, n, k = 30, 20, 8
    U_hat = np.linalg.qr(rng.standard_normal((m, k)))[0]
    V_hat = np.linalg.qr(rng.standard_normal((n, k)))[0]
    S_hat = rng.standard_normal((k, k)) * np.exp(-0.5 * np.arange(k))
    P, d, vh = np.linalg.svd(S_hat)
    Y = published_truncate(U_hat, S_hat, V_hat, 0.1, transposed=side)
    r = Y.S.shape[0]
    assert r == published_truncation_rank(d, 0.1)
    want_U = U_hat @ (P.T[:, :r] if side == "U" else P[:, :r])
    want_V = V_hat @ (vh[:, :r] if side == "V" else vh.T[:, :r])
    assert np.allclose(np.abs(Y.U), np.abs(want_U), atol=TOL)
    assert np.allclose(np.abs(Y.V), np.abs(want_V), atol=TOL)
    assert np.allclose(Y.V.T @ Y.V, np.eye(r), atol=TOL)
    assert np.allclose(Y.U.T @ Y.U, np.eye(r), atol=TOL)
    full = U_hat @ S_hat @ V_hat.T
    best = np.sqrt(np.sum(d[r:] ** 2))
    err = np.linalg.norm(full - Y.U @ Y.S @ Y.V.T)
    assert err > 2 * best, (err, best)
    D = np.diag(np.sort(rng.uniform(0.1, 1.0, k))[::-1])
    Y = published_truncate(U_hat, D, V_hat, 0.3, transposed=side)
    exact = truncate(U_hat, D, V_hat, 0.3, relative=True, min_rank=Y.S.shape[0],
                     max_rank=Y.S.shape[0])
    assert np.allclose(Y.U @ Y.S @ Y.V.T, exact.to_dense(), atol=TOL)
    with pytest.raises(ValueError, match="transposed"):
        published_truncate(U_hat, D, V_hat, 0.3, transposed="W")


def test_bad_shapes_are_refused_and_rectangular_cores_are_taken():
    with pytest.raises(ValueError, match="S_hat"):
        published_truncate(np.eye(4)[:, :2], np.eye(3), np.eye(4)[:, :2], 0.1)
    with pytest.raises(TypeError, match="U_hat"):
        published_truncate("not a matrix", np.eye(2), np.eye(2), 0.1)
    for bad in ([], [1.0, 2.0], [1.0, -0.5]):
        with pytest.raises(ValueError, match="d must be a non-empty descending array"):
            published_truncation_rank(np.array(bad), 0.1)
    rng = np.random.default_rng(1)
    U_hat = np.linalg.qr(rng.standard_normal((9, 5)))[0]
    V_hat = np.linalg.qr(rng.standard_normal((7, 6)))[0]
    for side in ("U", "V"):
        Y = published_truncate(U_hat, rng.standard_normal((5, 6)), V_hat, 0.2, min_rank=1,
                               transposed=side)
        assert Y.U.shape[1] == Y.S.shape[0] == Y.V.shape[1] <= 5
        assert np.allclose(Y.V.T @ Y.V, np.eye(Y.V.shape[1]), atol=TOL)
        assert np.allclose(Y.U.T @ Y.U, np.eye(Y.U.shape[1]), atol=TOL)


def test_the_optimiser_truncates_as_published():
    """Every layer's new rank is the published rule on its core, capped at
    min(n_in, n_out) // 2 and floored at 2."""
    rng = np.random.default_rng(3)
    model = low_rank_mlp([12, 10, 8, 3], rank=4, rng=rng)
    cores = []
    opt = PublishedTruncationBUG(model, lr=0.1, tau=0.3, observer=cores.append)
    X, y = rng.standard_normal((16, 12)), rng.integers(0, 3, 16)
    for _ in range(3):
        cores.clear()
        opt.step(X, y)
        layers = [layer for layer in model.layers if hasattr(layer, "rank")]
        assert len(cores) == len(layers) == 2
        for layer, S_hat in zip(layers, cores):
            d = np.linalg.svd(S_hat, compute_uv=False)
            cap = min(layer.n_in, layer.n_out) // 2
            assert layer.rank == published_truncation_rank(d, 0.3, max_rank=cap)
            assert 2 <= layer.rank <= cap
    for layer in layers:                                  # the factors stay orthonormal
        U, S, V = layer.factors
        assert np.allclose(U.T @ U, np.eye(layer.rank), atol=TOL)
        assert np.allclose(V.T @ V, np.eye(layer.rank), atol=TOL)
