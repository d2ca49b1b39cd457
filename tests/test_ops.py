"""Every primitive op: gradient-checked in float64, dtype-preserving, validated."""
import warnings

import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor
from lowrank_ref.gradcheck import check_grad

# A gradient check must reach ~1e-7 or better (the checker's own rtol is ~1.1e-6).
MAX_REL = 1e-7


def _away_from_zero(rng, shape, margin=0.1):
    """Entries with |x| >= margin (for ReLU: no kink within the finite-difference step)."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def _scalarise(op, inputs):
    """``f(*t) = sum(op(*t) * C)`` with the constant ``C = op(inputs) + noise``.

    Contracting with ``C`` turns any output into a scalar that weighs every entry of
    the output differently (so a wrong entry of the gradient cannot cancel) and keeps
    ``|f|`` of the order of ``||op||^2`` (no cancellation to zero).
    """
    rng = np.random.default_rng(123)
    Z0 = op(*[Tensor(x) for x in inputs]).value
    C = Z0 + 0.5 * rng.standard_normal(Z0.shape)

    def f(*tensors):
        return ops.sum(ops.mul(op(*tensors), Tensor(C)))
    return f


# name -> (op of Tensors, list of input shapes / arrays from rng)
CASES = {
    "matmul": (ops.matmul, lambda r: [r.standard_normal((4, 3)), r.standard_normal((3, 5))]),
    "linear": (ops.linear, lambda r: [r.standard_normal((6, 4)), r.standard_normal((3, 4)),
                                      r.standard_normal(3)]),
    "add_same": (ops.add, lambda r: [r.standard_normal((4, 3)), r.standard_normal((4, 3))]),
    "add_bias": (ops.add, lambda r: [r.standard_normal((6, 3)), r.standard_normal(3)]),
    "add_column": (ops.add, lambda r: [r.standard_normal((6, 3)), r.standard_normal((6, 1))]),
    "sub_same": (ops.sub, lambda r: [r.standard_normal((4, 3)), r.standard_normal((4, 3))]),
    "sub_bias": (ops.sub, lambda r: [r.standard_normal((6, 3)), r.standard_normal(3)]),
    "mul_scalar": (lambda x: ops.mul(x, -1.7), lambda r: [r.standard_normal((3, 4))]),
    "mul_elementwise": (ops.mul, lambda r: [r.standard_normal((3, 4)), r.standard_normal(4)]),
    "relu": (ops.relu, lambda r: [_away_from_zero(r, (5, 4))]),
    "tanh": (ops.tanh, lambda r: [r.standard_normal((5, 4))]),
    "sum_all": (ops.sum, lambda r: [r.standard_normal((3, 4))]),
    "sum_axis0": (lambda x: ops.sum(x, axis=0), lambda r: [r.standard_normal((3, 4))]),
    "sum_axis1": (lambda x: ops.sum(x, axis=1), lambda r: [r.standard_normal((3, 4))]),
    "mean_all": (ops.mean, lambda r: [r.standard_normal((3, 4))]),
    "mean_axis0": (lambda x: ops.mean(x, axis=0), lambda r: [r.standard_normal((3, 4))]),
    "mean_axis-1": (lambda x: ops.mean(x, axis=-1), lambda r: [r.standard_normal((3, 4))]),
    "transpose": (ops.transpose, lambda r: [r.standard_normal((3, 5))]),
    "log_softmax": (ops.log_softmax, lambda r: [2 * r.standard_normal((4, 6))]),
    "log_softmax_axis0": (lambda x: ops.log_softmax(x, axis=0), lambda r: [r.standard_normal((4, 6))]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradient_float64(name):
    op, make = CASES[name]
    rng = np.random.default_rng(7)
    inputs = make(rng)
    res = check_grad(_scalarise(op, inputs), inputs, rng, n_directions=3)
    assert res.passed, str(res)
    assert res.max_rel_error < MAX_REL, str(res)


def test_cross_entropy_gradient_float64():
    rng = np.random.default_rng(8)
    logits, labels = 3 * rng.standard_normal((7, 5)), rng.integers(0, 5, 7)
    res = check_grad(lambda z: ops.cross_entropy(z, labels), [logits], rng, n_directions=5)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)


def test_lowrank_chain_gradient_and_closed_forms():
    """``Z = ((X @ V) @ S.T) @ U.T + b`` with leaf factors ([SZKCT22])."""
    rng = np.random.default_rng(9)
    batch, n_in, n_out, r = 6, 5, 4, 2
    X = rng.standard_normal((batch, n_in))
    U = np.linalg.qr(rng.standard_normal((n_out, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n_in, r)))[0]
    S, b = rng.standard_normal((r, r)), rng.standard_normal(n_out)
    labels = rng.integers(0, n_out, batch)

    def forward(U, S, V, b):
        return ops.add(ops.matmul(ops.matmul(ops.matmul(X, V), ops.transpose(S)),
                                  ops.transpose(U)), b)

    def f(U, S, V, b):
        return ops.cross_entropy(forward(U, S, V, b), labels)

    res = check_grad(f, [U, S, V, b], rng, n_directions=3)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)

    leaves = [Tensor(a, requires_grad=True) for a in (U, S, V, b)]
    Z = forward(*leaves)
    np.testing.assert_allclose(Z.value, X @ (U @ S @ V.T).T + b, rtol=1e-13, atol=1e-13)
    ops.cross_entropy(Z, labels).backward()
    # G = dL/dZ; dU = G^T X V S^T, dS = U^T G^T X V, dV = X^T G U S, db = sum_rows G
    P = np.exp(Z.value - Z.value.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    G = (P - np.eye(n_out)[labels]) / batch
    for leaf, expected in zip(leaves, (G.T @ X @ V @ S.T, U.T @ G.T @ X @ V,
                                       X.T @ G @ U @ S, G.sum(0))):
        np.testing.assert_allclose(leaf.grad, expected, rtol=1e-12, atol=1e-15)


def _low_rank_inputs(rng, k=3, l=2, batch=6, n_in=5, n_out=4):
    return [rng.standard_normal((batch, n_in)), rng.standard_normal((n_out, k)),
            rng.standard_normal((k, l)), rng.standard_normal((n_in, l)),
            rng.standard_normal(n_out)]


def _chain(X, U, S, V, b):
    """The unfused path: three matmul nodes, two transposes and an add."""
    XV = ops.matmul(X, V)
    XVSt = XV if S is None else ops.matmul(XV, ops.transpose(S))
    return ops.add(ops.matmul(XVSt, ops.transpose(U)), b)


@pytest.mark.parametrize("with_S", [True, False])
def test_low_rank_linear_gradient_float64(with_S):
    rng = np.random.default_rng(11)
    X, U, S, V, b = _low_rank_inputs(rng, k=3, l=3 if not with_S else 2)
    if with_S:
        op = ops.low_rank_linear
        inputs = [X, U, S, V, b]
    else:
        def op(X, U, V, b):
            return ops.low_rank_linear(X, U, None, V, b)
        inputs = [X, U, V, b]
    res = check_grad(_scalarise(op, inputs), inputs, rng, n_directions=3)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)


@pytest.mark.parametrize("leaves", ["XUSVb", "S", "U", "V", "X", "b", "SVb", ""])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_low_rank_linear_equals_the_chain_of_primitive_nodes(leaves, dtype):
    """The fused node computes the products of the unfused chain: equal to rounding."""
    rng = np.random.default_rng(12)
    arrays = [a.astype(dtype) for a in _low_rank_inputs(rng)]
    G = rng.standard_normal((6, 4)).astype(dtype)
    results = []
    for build in (ops.low_rank_linear, _chain):
        ts = [Tensor(a, requires_grad=name in leaves) for name, a in zip("XUSVb", arrays)]
        Z = build(*ts)
        assert Z.dtype == dtype
        if leaves:
            Z.backward(G)
        results.append([Z.value] + [t.grad for t in ts])
    eps = np.finfo(dtype).eps
    for fused, chain in zip(*results):
        if chain is None:
            assert fused is None
            continue
        assert fused.dtype == dtype
        np.testing.assert_allclose(fused, chain, rtol=50 * eps, atol=50 * eps * np.abs(chain).max())


def test_low_rank_linear_sink_and_errors():
    rng = np.random.default_rng(13)
    X, U, S, V, b = _low_rank_inputs(rng)
    seen = {}
    Xt = Tensor(X, requires_grad=True)
    Z = ops.low_rank_linear(Xt, U, S, V, b, sink=lambda G, GU, XV: seen.update(G=G, GU=GU, XV=XV))
    G = rng.standard_normal(Z.shape)
    Z.backward(G)
    np.testing.assert_allclose(seen["G"], G)
    np.testing.assert_allclose(seen["GU"], G @ U, rtol=1e-14)
    np.testing.assert_allclose(seen["XV"], X @ V, rtol=1e-14)
    with pytest.raises(ValueError, match="low_rank_linear"):
        ops.low_rank_linear(X, U, S.T, V, b)                     # S of the wrong shape
    with pytest.raises(ValueError, match="low_rank_linear"):
        ops.low_rank_linear(X, U, None, V, b)                    # k != l needs an S
    with pytest.raises(ValueError, match="low_rank_linear"):
        ops.low_rank_linear(X[:, :3], U, S, V, b)
    with pytest.raises(ValueError, match="low_rank_linear"):
        ops.low_rank_linear(X, U, S, V, b[:2])
    with pytest.raises(TypeError, match="sink"):
        ops.low_rank_linear(X, U, S, V, b, sink=3)


def test_cross_entropy_value_matches_definition():
    rng = np.random.default_rng(10)
    z, y = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(5), y]))
    assert ops.cross_entropy(Tensor(z), y).item() == pytest.approx(expected, rel=1e-14)


def test_cross_entropy_and_log_softmax_stable_for_huge_logits():
    z = Tensor(np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]]), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):  # underflow to 0 is harmless
        warnings.simplefilter("error")
        loss = ops.cross_entropy(z, np.array([0, 0]))
        loss.backward()
        y = ops.log_softmax(Tensor(z.value)).value
    # row 0: label at the max -> 0; row 1: 1e4 below two tied maxima -> 1e4 + log 2
    assert loss.item() == pytest.approx((0.0 + 1e4 + np.log(2)) / 2, rel=1e-15)
    assert np.all(np.isfinite(z.grad)) and np.all(np.isfinite(y))
    np.testing.assert_allclose(z.grad, [[0, 0, 0], [-0.5, 0.25, 0.25]], atol=1e-15)
    np.testing.assert_allclose(z.grad.sum(axis=1), 0.0, atol=1e-15)


def test_relu_subgradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    ops.sum(ops.relu(x)).backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


UNARY32 = [ops.relu, ops.tanh, ops.sum, ops.mean, ops.transpose, ops.log_softmax,
           lambda x: ops.mul(x, np.float64(2.0)), lambda x: ops.sum(x, axis=0),
           lambda x: ops.add(x, 1.0), lambda x: ops.sub(1.0, x)]


@pytest.mark.parametrize("i", range(len(UNARY32)))
def test_unary_ops_keep_float32(i):
    x = Tensor(np.random.default_rng(11).standard_normal((3, 4)).astype(np.float32),
               requires_grad=True)
    y = UNARY32[i](x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32


def test_binary_ops_and_cross_entropy_keep_float32():
    rng = np.random.default_rng(12)
    a = Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    b = Tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
    c = Tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    y = ops.cross_entropy(ops.mul(ops.sub(ops.add(ops.matmul(a, b), c), c), c), [0, 1, 3])
    assert y.dtype == np.float32
    y.backward()
    assert {t.grad.dtype for t in (a, b, c)} == {np.dtype(np.float32)}


@pytest.mark.parametrize("call, match", [
    (lambda: ops.matmul(np.ones((3, 4)), np.ones((5, 2))), r"matmul.*\(3, 4\) @ \(5, 2\)"),
    (lambda: ops.matmul(np.ones(3), np.ones((3, 2))), "matmul"),
    (lambda: ops.add(np.ones((3, 4)), np.ones(3)), r"add.*\(3, 4\).*\(3,\)"),
    (lambda: ops.sub(np.ones((3, 4)), np.ones((2, 4))), "sub"),
    (lambda: ops.mul(np.ones((3, 4)), Tensor(np.ones(3))), "mul"),
    (lambda: ops.transpose(np.ones(3)), "transpose"),
    (lambda: ops.sum(np.ones((2, 2)), axis=2), "sum.*axis"),
    (lambda: ops.mean(np.ones((2, 2)), axis=-3), "mean.*axis"),
    (lambda: ops.log_softmax(np.ones((2, 2)), axis=5), "log_softmax.*axis"),
    (lambda: ops.cross_entropy(np.ones(3), [0]), "cross_entropy.*logits"),
    (lambda: ops.cross_entropy(np.ones((2, 3)), [0, 3]), r"cross_entropy.*labels.*\[0, 3\)"),
    (lambda: ops.cross_entropy(np.ones((2, 3)), [-1, 0]), "cross_entropy.*labels"),
    (lambda: ops.cross_entropy(np.ones((2, 3)), [0, 1, 2]), r"cross_entropy.*labels.*\(2,\)"),
    (lambda: ops.cross_entropy(np.ones((0, 3)), np.zeros(0, int)), "cross_entropy.*one row"),
])
def test_shape_errors_name_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cross_entropy_rejects_float_labels():
    with pytest.raises(TypeError, match="labels"):
        ops.cross_entropy(np.ones((2, 3)), np.array([0.0, 1.0]))


def test_mul_scalar_first_keeps_dtype():
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    assert ops.mul(2.0, x).dtype == np.float32


# -- property test: the dense/low-rank layer algebra on random shapes ---------------------
from hypothesis import given, strategies as st  # noqa: E402


@given(batch=st.integers(1, 5), n_in=st.integers(1, 6), n_out=st.integers(1, 6),
       r=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_lowrank_layer_gradient_on_random_shapes(batch, n_in, n_out, r, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, n_in))
    U, S, V = (rng.standard_normal((n_out, r)), rng.standard_normal((r, r)),
               rng.standard_normal((n_in, r)))
    b, labels = rng.standard_normal(n_out), rng.integers(0, n_out, batch)

    def f(X, U, S, V, b):
        Z = ops.add(ops.matmul(ops.matmul(ops.matmul(X, V), ops.transpose(S)), ops.transpose(U)), b)
        return ops.cross_entropy(ops.tanh(Z), labels)

    res = check_grad(f, [X, U, S, V, b], rng, n_directions=1)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)


def test_matmul_and_linear_skip_gradients_nobody_needs():
    """A constant operand gets no gradient computed (the first layer's dX, a frozen factor)."""
    W = Tensor(np.ones((2, 3)), requires_grad=True)
    X = np.ones((4, 3))
    out = ops.linear(X, W, np.zeros(2))
    grads = out._backward(np.ones((4, 2)))
    assert grads[0] is None and grads[2] is None and grads[1].shape == (2, 3)
    grads = ops.matmul(X, ops.transpose(W))._backward(np.ones((4, 2)))
    assert grads[0] is None and grads[1].shape == (3, 2)
