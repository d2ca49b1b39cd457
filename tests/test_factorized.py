"""The vanilla factorised layers W = U V^T (lowrank_ref.factorized, FactorizedConv2d of
lowrank_ref.conv) and the shared starts: gradients against central differences, the balanced
split, the official code's decayed spectrum, and the same W0 for fixed-rank DLRT and vanilla
runs of one configuration, for the MLP and for LeNet5."""
import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor
from lowrank_ref.dlrt import DenseSGD, parameter_counts
from lowrank_ref.methods import make_optimizer
from lowrank_ref.conv import FactorizedConv2d, LowRankConv2d
from lowrank_ref.factorized import FactorizedDense, decayed_factors, split_factors
from lowrank_ref.gradcheck import assert_grad, check_grad
from lowrank_ref.lowrank import LowRank
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.networks import lenet5
from lowrank_ref.nn import MLP, Dense
from lowrank_ref.training import TrainConfig, build_model
from lowrank_ref.training.checkpoint import (CheckpointError, load_checkpoint, restore_model,
                                             save_checkpoint)

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


# --- the vanilla convolution and LeNet5 (the LeNet5 rows of the ill-conditioning comparison) ---

def _images(rng, n=5, c=2, h=9, w=9):
    return rng.standard_normal((n, c, h, w))


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (1, 2)])
def test_factorized_conv_forward_is_the_convolution_with_the_kernel_u_v_transpose(stride, padding):
    rng = np.random.default_rng(10)
    layer = FactorizedConv2d(2, 5, 3, 2, rng, stride=stride, padding=padding)
    assert (layer.n_out, layer.n_in, layer.rank) == (5, 18, 2)
    kernel = (layer.U.value @ layer.V.value.T).reshape(5, 2, 3, 3)     # formed here only
    np.testing.assert_array_equal(layer.kernel(), kernel)
    X = _images(rng)
    expected = ops.conv2d(X, kernel, layer.b.value, stride=stride, padding=padding).value
    np.testing.assert_allclose(layer(X).value, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.forward_array(X), expected, rtol=1e-12, atol=1e-12)
    assert [p.shape for p in layer.parameters()] == [(5, 2), (18, 2), (5,)]


def test_factorized_conv_forward_never_forms_the_kernel(monkeypatch):
    rng = np.random.default_rng(11)
    layer = FactorizedConv2d(3, 4, (3, 2), 2, rng, padding=1)
    X = _images(rng, c=3)
    expected = ops.conv2d(X, layer.kernel(), layer.b.value, padding=1).value

    def forbidden(*args, **kwargs):
        raise AssertionError("the kernel was formed")
    monkeypatch.setattr(FactorizedConv2d, "weight", forbidden)
    monkeypatch.setattr(ops, "conv2d", forbidden)
    np.testing.assert_allclose(layer(X).value, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.forward_array(X), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_factorized_conv_gradients_checked_against_central_differences(stride, padding):
    """dU, dV, db and the input gradient (float64) of U V^T on the patches."""
    rng = np.random.default_rng(12)
    layer = FactorizedConv2d(2, 4, 3, 2, rng, stride=stride, padding=padding)
    X = _images(rng)
    C = Tensor(rng.standard_normal(layer(X).shape))
    start = [X, layer.U.value.copy(), layer.V.value.copy(), layer.b.value + 0.1]

    def f(X_, U, V, b):
        layer.U, layer.V, layer.b = U, V, b
        return ops.sum(ops.mul(ops.tanh(layer(X_)), C))

    res = check_grad(f, start, rng, n_directions=2)
    assert res.passed and res.max_rel_error < 1e-7, str(res)


def test_factorized_conv_from_lowrank_and_from_factors():
    rng = np.random.default_rng(13)
    Y = LowRank(*LowRank.random(rng, 4, 18, 3)[:2], LowRank.random(rng, 4, 18, 3).V)
    b = rng.standard_normal(4)
    layer = FactorizedConv2d.from_lowrank(Y, b, 3, stride=2, padding=1)
    assert layer.kernel_shape == (4, 2, 3, 3) and (layer.stride, layer.padding) == (2, 1)
    np.testing.assert_allclose(layer.weight(), Y.to_dense(), rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(layer.b.value, b)
    U = rng.standard_normal((4, 2))
    copy = FactorizedConv2d.from_factors(U, rng.standard_normal((18, 2)), b, (3, 3))
    U[0, 0] = 99.0
    assert copy.U.value[0, 0] != 99.0 and copy.kernel_shape == (4, 2, 3, 3)
    dlrt = LowRankConv2d.from_factors(Y, b, 3)
    X = _images(rng)
    np.testing.assert_allclose(FactorizedConv2d.from_lowrank(Y, b, 3)(X).value, dlrt(X).value,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("decay", [None, 1.0, 2.0, 10.0])
def test_factorized_conv_starts_where_the_dlrt_conv_of_the_same_rng_starts(decay):
    a = FactorizedConv2d(2, 6, 3, 4, np.random.default_rng(14), decay=decay)
    if decay is None:
        W0 = LowRankConv2d(2, 6, 3, 4, np.random.default_rng(14)).factors.to_dense()
    else:
        W0 = decayed_factors(6, 18, 4, decay, np.random.default_rng(14)).to_dense()
    np.testing.assert_allclose(a.weight(), W0, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-13), ("float32", 2e-6)])
@pytest.mark.parametrize("start", [dict(), dict(decay=1.0), dict(decay=2.0), dict(decay=10.0),
                                   dict(rank=30, decay=10.0)])
def test_lenet5_fixed_and_vanilla_runs_start_from_the_same_W0(start, dtype, tol):
    """LeNet5, one configuration, methods fixed and vanilla: the same W0 in each of the three
    low-rank layers (ranks capped per layer), the same biases and dense classifier."""
    cfg = dict(arch="lenet5", dtype=dtype, **start)
    fixed = build_model(TrainConfig(method="fixed", **cfg))
    vanilla = build_model(TrainConfig(method="vanilla", **cfg))
    kinds = [(type(a).__name__, type(b).__name__) for a, b in zip(fixed.layers, vanilla.layers)]
    assert kinds == [("LowRankConv2d", "FactorizedConv2d"), ("LowRankConv2d", "FactorizedConv2d"),
                     ("LowRankDense", "FactorizedDense"), ("Dense", "Dense")]
    rank = start.get("rank", 20)
    assert [layer.rank for layer in vanilla.layers[:3]] == [min(rank, f) for f in (20, 50, 500)]
    for a, b in zip(fixed.layers[:3], vanilla.layers[:3]):
        W_dlrt = a.factors.to_dense().astype(np.float64)
        W_vanilla = b.weight().astype(np.float64)
        assert np.linalg.norm(W_dlrt - W_vanilla) <= tol * np.linalg.norm(W_dlrt)
        assert np.array_equal(a.b.value, b.b.value) and a.rank == b.rank
        if "decay" in start:            # the official profile: ratios >= decay
            s = np.diag(a.S).astype(np.float64)
            assert np.all(s[:-1] / s[1:] >= start["decay"] * (1 - 1e-5))
    assert np.array_equal(fixed.layers[3].W.value, vanilla.layers[3].W.value)
    X = np.random.default_rng(4).random((3, 1, 28, 28)).astype(dtype)
    assert np.allclose(fixed.predict(X), vanilla.predict(X), rtol=50 * tol, atol=50 * tol)


def test_lenet5_default_fixed_start_is_lenet5s_own():
    """Without decay, method fixed builds lenet5(rng, ranks=rank) as before, and vanilla splits
    exactly those factors."""
    a = build_model(TrainConfig(arch="lenet5", method="fixed", dtype="float64"))
    b = lenet5(np.random.default_rng(0), np.float64, ranks=20)
    for la, lb in zip(a.layers[:3], b.layers[:3]):
        assert all(np.array_equal(x, y) for x, y in zip(la.factors, lb.factors))


def test_lenet5_rank_20_counts_and_the_published_count():
    """r (n_in + n_out) per low-rank layer: 20 (25 + 20) + 20 (500 + 50) + 20 (800 + 500)
    + 500 * 10 = 42,900 evaluation parameters (90.03 % compression of 430,500) for both methods.
    The official experiment's 16,460 (96.2 %) is sum r (n_out + 1) + 5000: no V factors."""
    for method in ("fixed", "vanilla"):
        c = parameter_counts(build_model(TrainConfig(arch="lenet5", method=method, decay=10.0)))
        assert c["ranks"] == [20, 20, 20, None]
        assert (c["eval_params"], c["dense_params"]) == (42900, 430500)
        assert round(100 * c["eval_cr"], 2) == 90.03
        if method == "vanilla":
            assert c["train_params"] == 42900
    assert sum(20 * (n_out + 1) for n_out in (20, 50, 500)) + 5000 == 16460


def test_vanilla_lenet5_checkpoint_round_trip_and_kind_check(tmp_path):
    """save/restore of the vanilla convolution's U, V, b (KIND "factorized_conv2d") after SGD
    steps; a fixed-rank configuration refuses that checkpoint by kind."""
    cfg = TrainConfig(arch="lenet5", method="vanilla", decay=2.0, dtype="float64", lr=0.01)
    model = build_model(cfg)
    opt = make_optimizer("vanilla", model, lr=0.01, momentum=0.9)
    rng = np.random.default_rng(15)
    X, y = rng.random((8, 1, 28, 28)), rng.integers(0, 10, 8)
    for _ in range(2):
        opt.step(X, y)
    save_checkpoint(tmp_path / "c.npz", model, opt, cfg, [], 0, 0, "train")
    ckpt = load_checkpoint(tmp_path / "c.npz")
    assert [str(ckpt["arrays"][f"layer{i}.kind"]) for i in range(4)] == [
        "factorized_conv2d", "factorized_conv2d", "factorized", "dense"]
    fresh = build_model(cfg)
    restore_model(fresh, ckpt["arrays"], ckpt["path"], np.float64)
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert np.array_equal(a.value, b.value)
    np.testing.assert_array_equal(model.predict(X), fresh.predict(X))
    fixed = build_model(TrainConfig(arch="lenet5", method="fixed", decay=2.0, dtype="float64"))
    with pytest.raises(CheckpointError, match="layer 0 is 'factorized_conv2d'"):
        restore_model(fixed, ckpt["arrays"], ckpt["path"], np.float64)


def test_vanilla_lenet5_trains_by_sgd():
    model = build_model(TrainConfig(arch="lenet5", method="vanilla", decay=2.0, dtype="float64"))
    opt = make_optimizer("vanilla", model, lr=0.05, momentum=0.9)
    assert isinstance(opt, DenseSGD)
    rng = np.random.default_rng(16)
    X, y = rng.random((16, 1, 28, 28)), rng.integers(0, 10, 16)
    first = opt.step(X, y).loss
    for _ in range(15):
        last = opt.step(X, y).loss
    assert last < 0.8 * first


def test_lenet5_config_takes_vanilla_and_decay():
    c = TrainConfig(arch="lenet5", method="vanilla", decay=10.0)
    assert (c.rank, c.lr, c.batch_size, c.decay) == (20, 0.05, 128, 10.0)
    assert TrainConfig(arch="lenet5", method="fixed", decay=2.0, rank=8).rank == 8
