"""Dense layers, the MLP, the loss, metrics and the layer protocol."""
import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor
from lowrank_ref.gradcheck import check_grad
from lowrank_ref.nn import (ACTIVATIONS, INITS, MLP, Dense, Layer, accuracy, stored_parameter_counts,
                            cross_entropy)

MAX_REL = 1e-7


class TinyLowRank:
    """A stand-in low-rank layer (the protocol a LowRankDense implements)."""

    def __init__(self, n_in, n_out, r, rng, with_forward_array=True):
        self.n_in, self.n_out = n_in, n_out
        self.U = Tensor(np.linalg.qr(rng.standard_normal((n_out, r)))[0], requires_grad=True)
        self.S = Tensor(np.diag(np.linspace(1.0, 0.5, r)), requires_grad=True)
        self.V = Tensor(np.linalg.qr(rng.standard_normal((n_in, r)))[0], requires_grad=True)
        self.b = Tensor(np.zeros(n_out), requires_grad=True)
        if with_forward_array:
            self.forward_array = lambda X: ((X @ self.V.value) @ self.S.value.T) @ self.U.value.T \
                + self.b.value

    def __call__(self, X):
        return ops.add(ops.matmul(ops.matmul(ops.matmul(X, self.V), ops.transpose(self.S)),
                                  ops.transpose(self.U)), self.b)

    def parameters(self):
        return [self.U, self.S, self.V, self.b]


def _install(model, tensors):
    """Put ``tensors`` into the model's parameter slots (for check_grad)."""
    it = iter(tensors)
    for layer in model.layers:
        names = ["W", "b"] if isinstance(layer, Dense) else ["U", "S", "V", "b"]
        for name in names:
            setattr(layer, name, next(it))


def _data(rng, batch, n_in, k):
    return rng.standard_normal((batch, n_in)), rng.integers(0, k, batch)


# -- Dense -------------------------------------------------------------------------------
def test_dense_shapes_and_forward():
    rng = np.random.default_rng(0)
    layer = Dense(5, 3, rng)
    assert layer.W.shape == (3, 5) and layer.b.shape == (3,)
    assert layer.parameters() == [layer.W, layer.b] and isinstance(layer, Layer)
    X = rng.standard_normal((4, 5))
    np.testing.assert_allclose(layer(X).value, X @ layer.W.value.T + layer.b.value, rtol=1e-15)
    np.testing.assert_array_equal(layer.forward_array(X), layer(X).value)


def test_dense_he_init_is_kaiming_uniform_with_zero_bias():
    rng = np.random.default_rng(1)
    n_in, n_out = 400, 300
    W, b = Dense(n_in, n_out, rng).W.value, Dense(n_in, n_out, rng).b.value
    bound = np.sqrt(6 / n_in)
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound
    assert W.var() == pytest.approx(2 / n_in, rel=0.02) and np.all(b == 0)


@pytest.mark.parametrize("init, var, bias_zero", [
    ("he_normal", lambda i, o: 2 / i, True),
    ("glorot", lambda i, o: 2 / (i + o), True),
    ("torch", lambda i, o: 1 / (3 * i), False),
])
def test_dense_other_inits(init, var, bias_zero):
    layer = Dense(400, 300, np.random.default_rng(2), init=init)
    assert layer.W.value.var() == pytest.approx(var(400, 300), rel=0.03)
    assert np.all(layer.b.value == 0) == bias_zero
    assert set(INITS) >= {init}


def test_dense_seeded_and_float32_is_rounded_float64():
    a = Dense(6, 4, np.random.default_rng(3))
    b = Dense(6, 4, np.random.default_rng(3))
    c = Dense(6, 4, np.random.default_rng(3), dtype=np.float32)
    np.testing.assert_array_equal(a.W.value, b.W.value)
    assert c.W.dtype == np.float32 and c.b.dtype == np.float32
    np.testing.assert_array_equal(c.W.value, a.W.value.astype(np.float32))


def test_dense_gradient_check_and_closed_form():
    rng = np.random.default_rng(4)
    layer = Dense(5, 4, rng, init="torch")
    X, y = _data(rng, 7, 5, 4)

    def f(X_, W, b):
        layer.W, layer.b = W, b
        return cross_entropy(layer(X_), y)

    res = check_grad(f, [X, layer.W.value.copy(), layer.b.value.copy()], rng)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)

    layer = Dense(5, 4, np.random.default_rng(4))
    Z = layer(X)
    cross_entropy(Z, y).backward()
    P = np.exp(Z.value - Z.value.max(1, keepdims=True))
    G = (P / P.sum(1, keepdims=True) - np.eye(4)[y]) / 7
    np.testing.assert_allclose(layer.W.grad, G.T @ X, rtol=1e-12)       # dW = G^T X
    np.testing.assert_allclose(layer.b.grad, G.sum(0), rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("call, exc, match", [
    (lambda r: Dense(0, 3, r), ValueError, "n_in"),
    (lambda r: Dense(3, 2.0, r), TypeError, "n_out"),
    (lambda r: Dense(3, 2, np.random.RandomState(0)), TypeError, "rng"),
    (lambda r: Dense(3, 2, r, dtype=np.float16), TypeError, "dtype"),
    (lambda r: Dense(3, 2, r, init="xavier"), ValueError, "init"),
    (lambda r: Dense(3, 2, r)(np.ones((4, 5))), ValueError, r"X.*\(batch, 3\).*\(4, 5\)"),
    (lambda r: Dense(3, 2, r)(np.ones(3)), ValueError, "X"),
    (lambda r: Dense(3, 2, r)(np.ones((4, 3), np.float32)), TypeError, "X.*float32"),
    (lambda r: Dense(3, 2, r)(np.ones((4, 3), int)), TypeError, "X"),
])
def test_dense_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call(np.random.default_rng(0))


# -- MLP ---------------------------------------------------------------------------------
def test_mlp_dense_paper_architecture_counts():
    model = MLP.dense([784, 500, 500, 500, 500, 10], np.random.default_rng(5))
    counts = stored_parameter_counts(model)
    assert counts == {"weights": 784 * 500 + 3 * 500 * 500 + 500 * 10, "biases": 2010,
                      "total": 1_149_010}
    assert len(model.layers) == 5 and model.dtype == np.float64


def test_mlp_no_activation_after_last_layer():
    rng = np.random.default_rng(6)
    model = MLP.dense([3, 4, 2], rng)
    X = rng.standard_normal((50, 3))
    l0, l1 = model.layers
    expected = np.maximum(X @ l0.W.value.T + l0.b.value, 0) @ l1.W.value.T + l1.b.value
    out = model(X).value
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    assert out.min() < 0                         # logits, not ReLU outputs


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_mlp_gradient_check(activation):
    rng = np.random.default_rng(7)
    model = MLP.dense([5, 7, 6, 4], rng, init="torch", activation=activation)
    X, y = _data(rng, 8, 5, 4)

    def f(*params):
        _install(model, params)
        return cross_entropy(model(X), y)

    res = check_grad(f, [p.value.copy() for p in model.parameters()], rng, n_directions=2)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)


def test_mlp_with_a_lowrank_layer_fits_and_gradient_checks():
    rng = np.random.default_rng(8)
    model = MLP([TinyLowRank(6, 5, 2, rng), Dense(5, 3, rng, init="torch")])
    X, y = _data(rng, 9, 6, 3)
    cross_entropy(model(X), y).backward()
    assert [p.grad.shape for p in model.parameters()] == [(5, 2), (2, 2), (6, 2), (5,), (3, 5), (3,)]
    assert stored_parameter_counts(model) == {"weights": (5 + 6) * 2 + 4 + 15, "biases": 8,
                                       "total": (5 + 6) * 2 + 4 + 15 + 8}

    def f(*params):
        _install(model, params)
        return cross_entropy(model(X), y)

    res = check_grad(f, [p.value.copy() for p in model.parameters()], rng, n_directions=2)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)


def test_predict_matches_forward_in_batches_and_without_forward_array():
    rng = np.random.default_rng(9)
    model = MLP([Dense(4, 6, rng), TinyLowRank(6, 5, 3, rng, with_forward_array=False),
                 Dense(5, 3, rng)])
    X = rng.standard_normal((11, 4))
    full = model(X).value
    for bs in (1, 4, 11, 100):
        np.testing.assert_allclose(model.predict(X, batch_size=bs), full, rtol=1e-13, atol=1e-14)
    assert model.predict(np.zeros((0, 4))).shape == (0, 3)


def test_float32_model_end_to_end():
    rng = np.random.default_rng(10)
    model = MLP.dense([4, 8, 3], rng, dtype=np.float32)
    X = rng.standard_normal((5, 4)).astype(np.float32)
    loss = cross_entropy(model(X), np.array([0, 1, 2, 0, 1]))
    assert loss.dtype == np.float32
    loss.backward()
    assert {p.grad.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert model.predict(X).dtype == np.float32
    with pytest.raises(TypeError, match="X"):
        model.predict(X.astype(np.float64))


def test_sgd_on_a_toy_problem_decreases_the_loss():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((64, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)               # XOR-like: needs the hidden layer
    model = MLP.dense([2, 16, 2], rng)
    losses = []
    for _ in range(200):
        model.zero_grad()
        loss = cross_entropy(model(X), y)
        loss.backward()
        for p in model.parameters():
            p.value -= 0.5 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy(model.predict(X), y) > 0.9


@pytest.mark.parametrize("call, exc, match", [
    (lambda r: MLP([]), ValueError, "layers"),
    (lambda r: MLP([Dense(3, 4, r), Dense(5, 2, r)]), ValueError, r"layers\[0\].n_out = 4"),
    (lambda r: MLP([Dense(3, 4, r), object()]), TypeError, r"layers\[1\]"),
    (lambda r: MLP([Dense(3, 4, r), Dense(4, 2, r, dtype=np.float32)]), TypeError, "dtype"),
    (lambda r: MLP([Dense(3, 4, r)], activation="sigmoid"), ValueError, "activation"),
    (lambda r: MLP.dense([3], r), ValueError, "sizes"),
    (lambda r: MLP.dense([3, 2], r)(np.ones((2, 4))), ValueError, "X"),
    (lambda r: MLP.dense([3, 2], r).predict(np.ones((2, 4))), ValueError, "X"),
    (lambda r: MLP.dense([3, 2], r).predict(np.ones((2, 3)), batch_size=0), ValueError,
     "batch_size"),
])
def test_mlp_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call(np.random.default_rng(0))


# -- loss and metrics --------------------------------------------------------------------
def test_accuracy():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert accuracy(logits, np.array([0, 1, 1, 1])) == 0.75
    assert accuracy(Tensor(logits), [0, 1, 0, 1]) == 1.0
    with pytest.raises(ValueError, match="labels"):
        accuracy(logits, np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="labels"):
        accuracy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match="labels"):
        accuracy(logits, np.array([0.0, 1.0, 1.0, 1.0]))


def test_count_parameters_of_a_layer_and_validation():
    assert stored_parameter_counts(Dense(3, 2, np.random.default_rng(0))) == {
        "weights": 6, "biases": 2, "total": 8}
    with pytest.raises(TypeError, match="model"):
        stored_parameter_counts(object())


def test_zero_grad_on_model():
    rng = np.random.default_rng(12)
    model = MLP.dense([3, 4, 2], rng)
    cross_entropy(model(rng.standard_normal((2, 3))), [0, 1]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
