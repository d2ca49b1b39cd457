"""The vanilla factorised layer W = U V^T (lowrank_ref.factorized) and the shared starts:
gradients against central differences, the balanced split, the official code's decayed
spectrum, and the same W0 for fixed-rank DLRT and vanilla runs of one configuration."""
import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor
from lowrank_ref.dlrt import DenseSGD, make_optimizer, parameter_counts
from lowrank_ref.factorized import FactorizedDense, decayed_factors, split_factors
from lowrank_ref.gradcheck import assert_grad
from lowrank_ref.lowrank import LowRank
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.nn import MLP, Dense
from lowrank_ref.training import TrainConfig, build_model

SIZES = [12, 10, 8, 4]


def _blobs(rng, n=96, d=12, k=4):
    centers = 3 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.standard_normal((n, d)), y


def test_forward_is_x_v_u_transpose_plus_b_in_both_paths():
    rng = np.random.default_rng(0)
    U, V, b = rng.standard_normal((5, 3)), rng.standard_normal((7, 3)), rng.standard_normal(5)
    layer = FactorizedDense.from_factors(U, V, b)
    X = rng.standard_normal((4, 7))
    expected = X @ (U @ V.T).T + b                        # the dense weight, formed here only
    assert np.allclose(layer(X).value, expected, rtol=1e-13, atol=1e-13)
    assert np.allclose(layer.forward_array(X), expected, rtol=1e-13, atol=1e-13)
    assert [p.shape for p in layer.parameters()] == [(5, 3), (7, 3), (5,)]


def test_every_gradient_checked_against_central_differences():
    rng = np.random.default_rng(1)
    layer = FactorizedDense(7, 6, 3, rng)
    X, y = rng.standard_normal((9, 7)), rng.integers(0, 4, 9)
    Wout = rng.standard_normal((6, 4))
    start = [layer.U.value.copy(), layer.V.value.copy(), layer.b.value.copy() + 0.1]

    def f(U, V, b):
        layer.U, layer.V, layer.b = U, V, b
        return ops.cross_entropy(ops.matmul(ops.tanh(layer(Tensor(X))), Tensor(Wout)), y)

    assert_grad(f, start, rng)


def test_split_reproduces_the_matrix_and_balances_the_factors():
    rng = np.random.default_rng(2)
    Y = LowRank.random(rng, 8, 6, 3)
    Y = LowRank(Y.U, rng.standard_normal((3, 3)), Y.V)          # a non-diagonal core
    A, B = split_factors(Y)
    assert np.allclose(A @ B.T, Y.to_dense(), rtol=1e-13, atol=1e-13)
    s = np.linalg.svd(Y.S, compute_uv=False)
    assert np.allclose(np.linalg.norm(A, axis=0), np.sqrt(s))
    assert np.allclose(np.linalg.norm(B, axis=0), np.sqrt(s))


@pytest.mark.parametrize("decay", [1.0, 2.0, 10.0])
def test_decayed_spectrum_is_the_official_form(decay):
    """sigma_k = |z|_(k) decay^(-k): the ratios of consecutive values are >= decay (the sorted
    half-normal profile is non-increasing), exactly decay times the ratio of the |z|."""
    rng = np.random.default_rng(3)
    Y = decayed_factors(30, 20, 8, decay, rng)
    s = np.diag(Y.S)
    z = np.sort(np.abs(np.random.default_rng(3).standard_normal(8)))[::-1]   # the same draw
    assert np.allclose(s, z * decay ** -np.arange(8), rtol=1e-14)
    assert np.all(s[:-1] / s[1:] >= decay * (1 - 1e-12))
    assert Y.orthonormality_error() < 1e-13
    scaled = decayed_factors(30, 20, 8, decay, np.random.default_rng(3), norm=5.0)
    assert np.isclose(np.linalg.norm(np.diag(scaled.S)), 5.0)
    assert np.allclose(np.diag(scaled.S) / s, 5.0 / np.linalg.norm(s))


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-13), ("float32", 2e-6)])
@pytest.mark.parametrize("start", [dict(rank=3), dict(ranks=[4, 2]), dict(rank=5, decay=10.0),
                                   dict(ranks=[3, 3], decay=2.0), dict(rank=3, init="glorot")])
def test_fixed_and_vanilla_runs_start_from_the_same_W0(start, dtype, tol):
    """The issue's requirement: one configuration, methods fixed and vanilla, same W0 (every
    hidden layer), same biases and the same dense last layer."""
    fixed = build_model(TrainConfig(method="fixed", sizes=SIZES, dtype=dtype, **start))
    vanilla = build_model(TrainConfig(method="vanilla", sizes=SIZES, dtype=dtype, **start))
    for a, b in zip(fixed.layers[:-1], vanilla.layers[:-1]):
        assert isinstance(a, LowRankDense) and isinstance(b, FactorizedDense)
        W_dlrt = a.factors.to_dense().astype(np.float64)
        W_vanilla = b.weight().astype(np.float64)
        assert np.linalg.norm(W_dlrt - W_vanilla) <= tol * np.linalg.norm(W_dlrt)
        assert np.array_equal(a.b.value, b.b.value)
        assert a.rank == b.rank
    assert np.array_equal(fixed.layers[-1].W.value, vanilla.layers[-1].W.value)
    X = np.random.default_rng(4).standard_normal((5, SIZES[0])).astype(dtype)
    assert np.allclose(fixed.predict(X), vanilla.predict(X), rtol=20 * tol, atol=20 * tol)


def test_the_default_start_of_fixed_is_unchanged_by_the_new_path():
    """ranks=[r, r] and rank=r build the same network (the new start path reproduces
    low_rank_mlp's draws)."""
    a = build_model(TrainConfig(method="fixed", sizes=SIZES, rank=3, dtype="float64"))
    b = build_model(TrainConfig(method="fixed", sizes=SIZES, ranks=[3, 3], dtype="float64"))
    for la, lb in zip(a.layers[:-1], b.layers[:-1]):
        assert all(np.array_equal(x, y) for x, y in zip(la.factors, lb.factors))


def test_vanilla_trains_by_sgd_and_counts_as_the_paper_counts():
    rng = np.random.default_rng(5)
    X, y = _blobs(rng)
    model = MLP([FactorizedDense(12, 10, 3, rng), FactorizedDense(10, 8, 2, rng), Dense(8, 4, rng)])
    opt = make_optimizer("vanilla", model, lr=0.05, momentum=0.9)
    assert isinstance(opt, DenseSGD)
    first = opt.step(X, y).loss
    for _ in range(60):
        last = opt.step(X, y).loss
    assert last < 0.5 * first
    c = parameter_counts(model)
    assert c["ranks"] == [3, 2, None]
    assert c["eval_params"] == c["train_params"] == 3 * 22 + 2 * 18 + 32
