"""Convolutional layers and networks: Conv2d, LowRankConv2d (every mode), Sequential, LeNet5,
and the DLRT optimisers on them (docs/design.md, section "Guarantees and the tests that show
them").

The optimisers do not know which kind of low-rank layer they train: these tests show that a
convolution's kernel matrix ``W_mat = W.reshape(c_out, -1)`` is trained exactly as a dense
layer's weight (the fixed-rank step is the BUG integrator on it, the one-gradient adaptive
step equals the three-pass one), that momentum does not depend on the factorisation, and that
the gradients of every mode are the projections of the dense kernel gradient.
"""
import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor, make_node
from lowrank_ref.checks import orthonormality_error, tolerance
from lowrank_ref.conv import Conv2d, LowRankConv2d
from lowrank_ref.dlrt import AdaptiveKLS, DenseSGD, FixedRankKLS, SOnlySGD, parameter_counts
from lowrank_ref.gradcheck import assert_grad, check_grad
from lowrank_ref.integrators import bug_step
from lowrank_ref.lowrank import LowRank
from lowrank_ref.lowrank_layers import LowRankDense, LowRankLayer
from lowrank_ref.networks import Flatten, MaxPool2d, ReLU, Sequential, lenet5
from lowrank_ref.nn import Dense, stored_parameter_counts

MAX_REL = 1e-7


def _images(rng, n=6, c=2, h=11, w=11):
    return rng.standard_normal((n, c, h, w))


def _conv_net(rng, rank=2, lowrank=True, dtype=np.float64):
    """conv 2->4 (3x3, stride 2, padding 1), ReLU, max-pool 2, conv 4->5 (2x2), ReLU,
    flatten (20), linear 20->6, ReLU, linear 6->3 on (n, 2, 11, 11) images: the first three
    layers low-rank (or dense)."""
    if lowrank:
        first = [LowRankConv2d(2, 4, 3, rank, rng, dtype=dtype, stride=2, padding=1),
                 LowRankConv2d(4, 5, 2, rank, rng, dtype=dtype),
                 LowRankDense(20, 6, rank, rng, dtype=dtype)]
    else:
        first = [Conv2d(2, 4, 3, rng, dtype=dtype, stride=2, padding=1),
                 Conv2d(4, 5, 2, rng, dtype=dtype), Dense(20, 6, rng, dtype=dtype)]
    return Sequential([first[0], ReLU(), MaxPool2d(2), first[1], ReLU(), Flatten(), first[2],
                       ReLU(), Dense(6, 3, rng, dtype=dtype)], input_shape=(2, 11, 11))


def _contract_loss(out_shape, rng):
    C = Tensor(rng.standard_normal(out_shape))
    return lambda Z: ops.sum(ops.mul(ops.tanh(Z), C))


# --- the layers: forward and gradients -----------------------------------------------------

def test_conv2d_layer_forward_and_gradient():
    rng = np.random.default_rng(0)
    layer = Conv2d(2, 3, (3, 2), rng, stride=2, padding=1)
    X = _images(rng)
    Z = layer(X)
    np.testing.assert_array_equal(Z.value, ops.conv2d(X, layer.W.value, layer.b.value,
                                                      stride=2, padding=1).value)
    np.testing.assert_allclose(layer.forward_array(X), Z.value, rtol=1e-13, atol=1e-13)
    assert (layer.n_in, layer.n_out) == (12, 3) and layer.parameters() == [layer.W, layer.b]
    loss = _contract_loss(Z.shape, rng)

    def f(X_, W, b):
        layer.W, layer.b = W, b
        return loss(layer(X_))
    assert_grad(f, [X, layer.W.value.copy(), rng.standard_normal(3)], rng)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_low_rank_conv_forward_is_the_convolution_with_its_kernel(stride, padding):
    rng = np.random.default_rng(1)
    layer = LowRankConv2d(2, 5, 3, 2, rng, stride=stride, padding=padding)
    X = _images(rng)
    kernel = layer.kernel()
    assert kernel.shape == (5, 2, 3, 3)
    np.testing.assert_allclose(kernel.reshape(5, -1), layer.U @ layer.S @ layer.V.T)
    expected = ops.conv2d(X, kernel, layer.b.value, stride=stride, padding=padding).value
    for mode in ("W", "K", "L", "S"):
        layer.set_mode(mode)
        np.testing.assert_allclose(layer(X).value, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.forward_array(X), expected, rtol=1e-12, atol=1e-12)


def test_low_rank_conv_forward_never_forms_the_kernel(monkeypatch):
    """The graph forward and forward_array only multiply the patches by V, S^T, U^T: with
    to_dense and conv2d disabled they still give the convolution."""
    rng = np.random.default_rng(2)
    layer = LowRankConv2d(3, 4, 3, 2, rng, padding=1)
    X = _images(rng, c=3)
    expected = ops.conv2d(X, layer.kernel(), layer.b.value, padding=1).value

    def forbidden(*args, **kwargs):
        raise AssertionError("the kernel was formed")
    monkeypatch.setattr(LowRank, "to_dense", forbidden)
    monkeypatch.setattr(ops, "conv2d", forbidden)
    np.testing.assert_allclose(layer(X).value, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.forward_array(X), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["K", "L", "S", "W"])
def test_every_mode_of_the_low_rank_conv_gradient_checked(mode):
    """The leaf of each mode, the bias and the input images, against central differences."""
    rng = np.random.default_rng(3)
    layer = LowRankConv2d(2, 5, 3, 2, rng, stride=2, padding=1)
    X = _images(rng)
    if mode == "S":   # an augmented S-step: U_hat (5, 4), V_hat (18, 3), S_hat (4, 3)
        layer.set_mode("S", U_hat=np.linalg.qr(rng.standard_normal((5, 4)))[0],
                       S_hat=rng.standard_normal((4, 3)),
                       V_hat=np.linalg.qr(rng.standard_normal((18, 3)))[0])
    else:
        layer.set_mode(mode)
    names = {"K": ["K", "b"], "L": ["L", "b"], "S": ["S_hat", "b"], "W": ["b"]}[mode]
    start = [getattr(layer, name).value.copy() for name in names]
    loss = _contract_loss(layer(X).shape, rng)

    def f(X_, *tensors):
        for name, t in zip(names, tensors):
            setattr(layer, name, t)
        return loss(layer(X_))
    res = check_grad(f, [X] + start, rng, n_directions=2)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)


def test_low_rank_conv_mode_gradients_are_the_projected_kernel_gradient():
    """dK = G V0, dL = G^T U0, dS = U^T G V with G the gradient of the dense convolution's
    kernel matrix at W0; the taps of mode W give G V0 and G^T U0 as dZ^T (X V0), X^T (dZ U0)."""
    rng = np.random.default_rng(4)
    layer = LowRankConv2d(2, 5, 3, 2, rng, stride=2, padding=1)
    X = _images(rng)
    loss = _contract_loss(layer(X).shape, rng)
    W = Tensor(layer.kernel(), requires_grad=True)
    loss(ops.conv2d(X, W, layer.b.value, stride=2, padding=1)).backward()
    G = W.grad.reshape(5, -1)
    U, S, V = layer.factors
    expected = {"K": G @ V, "L": G.T @ U, "S": U.T @ G @ V}
    for mode, want in expected.items():
        layer.set_mode(mode)
        loss(layer(X)).backward()
        got = layer.parameters()[0].grad
        assert np.linalg.norm(got - want) <= tolerance("step", size=18) * np.linalg.norm(want)
    layer.set_mode("W")
    loss(layer(X)).backward()
    t = layer.taps
    assert t["X"].shape == (6 * 6 * 6, 18) and t["dZ"].shape == (6 * 6 * 6, 5)
    for got, want in ((t["dZ"].T @ t["XV"], G @ V), (t["X"].T @ t["dZ_U"], G.T @ U)):
        assert np.linalg.norm(got - want) <= tolerance("step", size=18) * np.linalg.norm(want)


def test_checker_catches_a_planted_wrong_backward_in_the_low_rank_conv(monkeypatch):
    """The layer's input gradient goes through the unfold's col2im; one that drops the
    accumulation of overlapping patches fails the gradient check (the control passes)."""
    rng = np.random.default_rng(5)
    X = _images(rng)
    real_unfold = ops.unfold

    def unfold_without_overlaps(x, kh, kw, stride=1, padding=0):
        C = real_unfold(x, kh, kw, stride=stride, padding=padding)

        def backward(g):          # every input pixel takes the gradient of one patch only
            patches = np.zeros_like(x.value)
            dx = ops.col2im(g, x.shape, kh, kw, stride, padding)
            ones = ops.col2im(np.ones_like(g), x.shape, kh, kw, stride, padding)
            np.divide(dx, ones, out=patches, where=ones > 0)
            return (patches,)
        return make_node(C.value, (x,), backward, "unfold_without_overlaps")

    for planted in (False, True):
        if planted:
            monkeypatch.setattr(ops, "unfold", unfold_without_overlaps)
        layer = LowRankConv2d(2, 4, 3, 2, np.random.default_rng(6), padding=1)
        loss = _contract_loss((6, 4, 11, 11), np.random.default_rng(7))
        res = check_grad(lambda X_: loss(layer(X_)), [X], np.random.default_rng(8),
                         n_directions=2)
        if planted:
            assert not res.passed and res.max_rel_error > 1e-2, str(res)
        else:
            assert res.passed and res.max_rel_error < MAX_REL, str(res)


def test_from_dense_and_from_factors():
    rng = np.random.default_rng(9)
    W, b = rng.standard_normal((4, 3, 2, 3)), rng.standard_normal(4)
    layer = LowRankConv2d.from_dense(W, b, rank=4, stride=2, padding=1)   # full rank: exact
    np.testing.assert_allclose(layer.kernel(), W, rtol=1e-12, atol=1e-12)
    assert (layer.in_channels, layer.kernel_size, layer.stride, layer.padding) == (3, (2, 3), 2, 1)
    cut = LowRankConv2d.from_dense(W, b, rank=2)
    P, s, Qt = np.linalg.svd(W.reshape(4, -1))
    np.testing.assert_allclose(cut.kernel().reshape(4, -1), (P[:, :2] * s[:2]) @ Qt[:2],
                               rtol=1e-12, atol=1e-12)
    again = LowRankConv2d.from_factors(cut.factors, b, (2, 3))
    np.testing.assert_array_equal(again.kernel(), cut.kernel())
    assert isinstance(again, LowRankLayer) and again.init == "factors"


# --- networks --------------------------------------------------------------------------------

def test_sequential_lists_its_layers_and_predicts_in_batches():
    rng = np.random.default_rng(10)
    model = _conv_net(rng)
    assert [type(m).__name__ for m in model.layers] == ["LowRankConv2d", "LowRankConv2d",
                                                        "LowRankDense", "Dense"]
    assert len(model.modules) == 9 and model.dtype == np.float64
    X = _images(rng, n=7)
    np.testing.assert_allclose(model.predict(X, batch_size=3), model(X).value,
                               rtol=1e-12, atol=1e-12)
    assert model.predict(X[:0]).shape == (0, 3)


def test_lenet5_shapes_and_parameter_counts():
    """Dense LeNet5 has 430,500 weights (the count of [SZKCT22], biases excluded); the
    low-rank counts follow the definition r (n_in + n_out) on each kernel matrix."""
    dense = lenet5(np.random.default_rng(0))
    c = parameter_counts(dense)
    assert c["dense_params"] == c["eval_params"] == 20 * 25 + 50 * 500 + 500 * 800 + 10 * 500
    assert c["dense_params"] == 430_500 and c["ranks"] == [None] * 4
    assert stored_parameter_counts(dense) == {"weights": 430_500, "biases": 580,
                                              "total": 431_080}
    model = lenet5(np.random.default_rng(0), np.float32, ranks=(3, 7, 11))
    c = parameter_counts(model)
    assert c["ranks"] == [3, 7, 11, None]
    assert c["eval_params"] == 3 * (25 + 20) + 7 * (500 + 50) + 11 * (800 + 500) + 5000
    assert c["train_params"] == sum(2 * r * (a + b) + 4 * r * r for r, a, b in
                                    ((3, 25, 20), (7, 500, 50), (11, 800, 500))) + 5000
    X = np.zeros((2, 1, 28, 28), np.float32)
    assert model(X).shape == (2, 10) and model(X).dtype == np.float32


# --- the optimisers on convolutional networks -------------------------------------------

def _blob_images(rng, n=48):
    centers = rng.standard_normal((3, 2, 11, 11))
    y = rng.integers(0, 3, n)
    return centers[y] + rng.standard_normal((n, 2, 11, 11)), y


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_fixed_rank_step_on_a_conv_is_the_bug_integrator_on_its_kernel_matrix(stride, padding):
    """One FixedRankKLS step on a LowRankConv2d equals integrators.bug_step on W_mat with
    F = -G (frozen), inner Euler, for a loss linear in the kernel: L = sum(C * conv(X, W)),
    whose kernel-matrix gradient G = C_rows^T im2col(X) does not depend on W."""
    rng = np.random.default_rng(11)
    layer = LowRankConv2d(2, 5, 3, 2, rng, stride=stride, padding=padding)
    model = Sequential([layer, Flatten()])
    X = _images(rng)
    C = rng.standard_normal(layer(X).shape)

    def linear_loss(Z, _y):
        return ops.sum(ops.mul(Z, Tensor(C.reshape(Z.shape))))

    C_rows = C.transpose(0, 2, 3, 1).reshape(-1, 5)
    G = C_rows.T @ ops.im2col(X, 3, 3, stride, padding)
    Y0 = layer.factors
    lr = 0.3
    FixedRankKLS(model, lr=lr, loss_fn=linear_loss).step(X, None)
    Y_bug = bug_step(Y0, lambda t, A: -G, 0.0, lr, inner="euler")
    assert layer.rank == 2
    assert np.linalg.norm(layer.factors.to_dense() - Y_bug.to_dense()) <= \
        tolerance("step", size=18) * np.linalg.norm(Y_bug.to_dense())


def _represented(model):
    return ([layer.factors.to_dense() if isinstance(layer, LowRankLayer) else layer.W.value
             for layer in model.layers] + [layer.b.value for layer in model.layers])


@pytest.mark.parametrize("tau, lr, momentum", [(0.0, 0.1, 0.0), (0.05, 0.3, 0.0),
                                               (0.3, 0.1, 0.9), (0.05, 0.1, 0.9)])
def test_one_gradient_adaptive_step_equals_three_pass_step_on_a_conv_network(tau, lr, momentum):
    X, y = _blob_images(np.random.default_rng(12))
    a, b = _conv_net(np.random.default_rng(13)), _conv_net(np.random.default_rng(13))
    opt1 = AdaptiveKLS(a, lr=lr, tau=tau, passes=1, momentum=momentum)
    opt3 = AdaptiveKLS(b, lr=lr, tau=tau, passes=3, momentum=momentum)
    for _ in range(3):
        r1, r3 = opt1.step(X, y), opt3.step(X, y)
        assert abs(r1.loss - r3.loss) <= 1e-12 * max(1.0, abs(r1.loss))
        assert parameter_counts(a)["ranks"] == parameter_counts(b)["ranks"]
        for A, B in zip(_represented(a), _represented(b)):
            assert np.linalg.norm(A - B) <= tolerance("step", size=18) * max(1.0, np.linalg.norm(A))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("method", ["dense", "fixed", "adaptive", "adaptive3", "sonly"])
def test_every_optimiser_trains_a_conv_network(method, momentum):
    rng = np.random.default_rng(14)
    X, y = _blob_images(rng)
    model = _conv_net(rng, rank=2, lowrank=method != "dense")
    kw = dict(lr=0.05 if momentum else 0.3, momentum=momentum)
    opt = {"dense": lambda: DenseSGD(model, **kw),
           "fixed": lambda: FixedRankKLS(model, **kw),
           "adaptive": lambda: AdaptiveKLS(model, tau=0.05, max_rank=3, **kw),
           "adaptive3": lambda: AdaptiveKLS(model, tau=0.05, max_rank=3, passes=3, **kw),
           "sonly": lambda: SOnlySGD(model, **kw)}[method]()
    losses = [opt.step(X, y).loss for _ in range(25)]
    for layer in model.layers:
        if isinstance(layer, LowRankLayer):
            assert orthonormality_error(layer.U) <= tolerance("orthonormality", size=18)
            assert orthonormality_error(layer.V) <= tolerance("orthonormality", size=18)
            assert 1 <= layer.rank <= (2 if method in ("fixed", "sonly") else 3)
    assert losses[-1] < (0.8 if method == "sonly" else 0.5) * losses[0], losses


def test_conv_factor_momentum_is_independent_of_the_factorisation():
    """Two conv networks holding the same kernels in different gauges follow the same
    trajectory with momentum 0.9 (the velocity is a matrix, re-expressed in each basis)."""
    rng = np.random.default_rng(15)
    X, y = _blob_images(rng)
    a, b = _conv_net(np.random.default_rng(16)), _conv_net(np.random.default_rng(16))
    for layer in b.layers:
        if isinstance(layer, LowRankLayer):
            Q1 = np.linalg.qr(rng.standard_normal((2, 2)))[0]
            Q2 = np.linalg.qr(rng.standard_normal((2, 2)))[0]
            U, S, V = layer.factors
            layer.set_factors(LowRank(U @ Q1, Q1.T @ S @ Q2, V @ Q2))
    for make in (lambda m: AdaptiveKLS(m, lr=0.1, tau=0.05, momentum=0.9),
                 lambda m: FixedRankKLS(m, lr=0.1, momentum=0.9)):
        opts = [make(a), make(b)]
        for _ in range(4):
            for opt in opts:
                opt.step(X, y)
        for A, B in zip(_represented(a), _represented(b)):
            assert np.linalg.norm(A - B) <= 1e-10 * max(1.0, np.linalg.norm(A))


def test_adaptive_default_max_rank_allows_a_full_rank_start():
    """LeNet5 starts at full rank: with tau = 0 nothing is cut, and the default cap (the full
    rank of each matrix, not half of it) keeps a full-rank start at full rank."""
    rng = np.random.default_rng(17)
    model = Sequential([LowRankConv2d(2, 4, 3, 4, rng, stride=2, padding=1), ReLU(),
                        MaxPool2d(2), LowRankConv2d(4, 5, 2, 5, rng), ReLU(), Flatten(),
                        LowRankDense(20, 6, 6, rng), ReLU(), Dense(6, 3, rng)])
    X, y = _blob_images(rng)
    opt = AdaptiveKLS(model, lr=0.1, tau=0.0)
    for _ in range(2):
        opt.step(X, y)
        assert parameter_counts(model)["ranks"] == [4, 5, 6, None]
    assert parameter_counts(lenet5(np.random.default_rng(0), np.float32, ranks=500))["ranks"] \
        == [20, 50, 500, None]


# --- a conv network step driven by plain arrays (what an oracle family takes) ----------------

def _conv_step_from_arrays(inputs: dict, method: str, passes: int = 1) -> dict:
    """One DLRT step of conv (low-rank, stride 2, padding 1), ReLU, max-pool 2, conv
    (low-rank), ReLU, flatten, linear (dense) given by arrays; returns arrays only."""
    geometry = [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2)]
    layers = [LowRankConv2d.from_factors(LowRank(inputs[f"U{i}"], inputs[f"S{i}"],
                                                 inputs[f"V{i}"]), inputs[f"b{i}"], **geo)
              for i, geo in enumerate(geometry)]
    W2 = inputs["W2"]
    dense = Dense(W2.shape[1], W2.shape[0], np.random.default_rng(0), dtype=W2.dtype)
    dense.W.value, dense.b.value = W2.copy(), inputs["b2"].copy()
    model = Sequential([layers[0], ReLU(), MaxPool2d(2), layers[1], ReLU(), Flatten(), dense])
    opt = (FixedRankKLS(model, inputs["lr"]) if method == "fixed" else
           AdaptiveKLS(model, inputs["lr"], inputs["tau"], passes=passes))
    opt.step(inputs["X"], inputs["y"])
    out = {}
    for i, layer in enumerate(layers):
        out[f"U{i}"], out[f"S{i}"], out[f"V{i}"] = (np.array(a) for a in layer.factors)
        out[f"b{i}"], out[f"rank{i}"] = np.array(layer.b.value), layer.rank
    out["W2"], out["b2"] = np.array(dense.W.value), np.array(dense.b.value)
    return out


def _conv_step_inputs(rng, dtype=np.float64):
    inputs = {}
    for i, (c_in, c_out, k, r) in enumerate([(2, 4, 3, 2), (4, 5, 2, 3)]):
        Y = LowRank.random(rng, c_out, c_in * k * k, r, dtype=dtype)
        inputs.update({f"U{i}": Y.U, f"S{i}": Y.S, f"V{i}": Y.V,
                       f"b{i}": (0.1 * rng.standard_normal(c_out)).astype(dtype)})
    inputs["W2"] = (rng.standard_normal((3, 20)) / np.sqrt(20)).astype(dtype)
    inputs["b2"] = np.zeros(3, dtype)
    X, y = _blob_images(rng, n=16)
    inputs.update(X=X.astype(dtype), y=y.astype(np.int64), lr=0.5, tau=0.1)
    return inputs


@pytest.mark.parametrize("method, passes", [("fixed", 1), ("adaptive", 1), ("adaptive", 3)])
def test_a_conv_network_step_is_driven_by_plain_arrays(method, passes):
    """The interface an oracle family needs: arrays in (factors, biases, kernel, images,
    labels), arrays out; repeatable bit for bit, float32 kept, and a different factorisation
    of the same kernels (U Q1, Q1^T S Q2, V Q2) gives the same represented kernels."""
    inputs = _conv_step_inputs(np.random.default_rng(30))
    out = _conv_step_from_arrays(inputs, method, passes)
    again = _conv_step_from_arrays(inputs, method, passes)
    assert out.keys() == again.keys()
    for k in out:
        assert isinstance(out[k], (np.ndarray, int))
        np.testing.assert_array_equal(out[k], again[k], err_msg=k)
    rng = np.random.default_rng(31)
    gauged = dict(inputs)
    for i in (0, 1):
        r = inputs[f"S{i}"].shape[0]
        Q1, Q2 = (np.linalg.qr(rng.standard_normal((r, r)))[0] for _ in range(2))
        gauged.update({f"U{i}": inputs[f"U{i}"] @ Q1, f"S{i}": Q1.T @ inputs[f"S{i}"] @ Q2,
                       f"V{i}": inputs[f"V{i}"] @ Q2})
    other = _conv_step_from_arrays(gauged, method, passes)
    for i in (0, 1):
        A = out[f"U{i}"] @ out[f"S{i}"] @ out[f"V{i}"].T
        B = other[f"U{i}"] @ other[f"S{i}"] @ other[f"V{i}"].T
        assert out[f"rank{i}"] == other[f"rank{i}"]
        assert np.linalg.norm(A - B) <= tolerance("step", size=20) * np.linalg.norm(A)
    out32 = _conv_step_from_arrays(_conv_step_inputs(np.random.default_rng(30), np.float32),
                                   method, passes)
    assert all(v.dtype == np.float32 for v in out32.values() if isinstance(v, np.ndarray))


def test_conv2d_from_weights_holds_copies():
    rng = np.random.default_rng(32)
    W, b = rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    layer = Conv2d.from_weights(W, b, stride=2, padding=1)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 2), 2, 1)
    X = _images(rng)
    np.testing.assert_array_equal(layer(X).value, ops.conv2d(X, W, b, stride=2, padding=1).value)
    layer.W.value -= 1.0
    assert not np.shares_memory(layer.W.value, W) and np.all(W != layer.W.value)
