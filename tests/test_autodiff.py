"""The reverse-mode engine: graph, sweep, accumulation, shapes and dtypes."""
import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor, as_tensor, make_node, topological_order, zero_grad


def test_leaf_basics_and_dtype_conversion():
    t = Tensor([1, 2, 3], name="t")
    assert t.dtype == np.float64 and t.is_leaf and t.op == "leaf" and t.parents == ()
    assert t.grad is None and not t.requires_grad
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    with pytest.raises(TypeError, match="value"):
        Tensor(np.ones(2, dtype=complex))
    assert "name='t'" in repr(t)


def test_value_is_not_copied():
    a = np.zeros(3)
    assert Tensor(a).value is a


def test_backward_seeds_one_for_a_scalar():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    ops.sum(ops.mul(x, 2.0)).backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_backward_with_explicit_seed_and_its_validation():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = ops.mul(x, 3.0)
    with pytest.raises(ValueError, match="grad must be given"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad must have shape \(2, 3\)"):
        y.backward(np.ones((3, 2)))
    y.backward(np.full((2, 3), 2.0))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 6.0))


def test_backward_on_tensor_without_grad_raises():
    y = ops.sum(Tensor(np.ones(3)))
    assert not y.requires_grad and y.parents == ()     # no graph was built
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()


def test_accumulation_twice_gives_twice_and_zero_grad_resets():
    rng = np.random.default_rng(0)
    W = Tensor(rng.standard_normal((3, 4)), requires_grad=True, name="W")
    X = Tensor(rng.standard_normal((5, 4)))
    loss = ops.mean(ops.tanh(ops.matmul(X, ops.transpose(W))))
    loss.backward()
    g1 = W.grad.copy()
    loss.backward()                      # the graph is kept: a second sweep adds again
    np.testing.assert_allclose(W.grad, 2 * g1, rtol=0, atol=0)
    zero_grad([W])
    assert W.grad is None
    loss.backward()
    np.testing.assert_array_equal(W.grad, g1)
    W.zero_grad()
    assert W.grad is None


def test_gradients_of_two_losses_add_up():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    ops.sum(ops.mul(x, 2.0)).backward()
    ops.sum(ops.mul(x, 5.0)).backward()
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])


def test_intermediate_grads_are_not_kept():
    x = Tensor(np.ones(3), requires_grad=True)
    h = ops.tanh(x)
    y = ops.sum(h)
    y.backward()
    assert h.grad is None and y.grad is None and x.grad is not None


def test_shared_leaf_and_diamond_accumulate_within_one_sweep():
    x = Tensor(np.array([0.3, -0.2]), requires_grad=True)
    a = ops.tanh(x)
    y = ops.sum(ops.add(ops.mul(a, 2.0), ops.mul(a, a)))      # 2 tanh x + tanh^2 x
    y.backward()
    t = np.tanh(x.value)
    np.testing.assert_allclose(x.grad, (2 + 2 * t) * (1 - t**2), rtol=1e-15)
    z = Tensor(np.ones(2), requires_grad=True)
    ops.sum(ops.add(z, z)).backward()
    np.testing.assert_array_equal(z.grad, [2.0, 2.0])


def test_leaf_not_reached_keeps_grad_none():
    x = Tensor(np.ones(2), requires_grad=True)
    unused = Tensor(np.ones(2), requires_grad=True)
    ops.sum(x).backward()
    assert unused.grad is None


def test_constant_inputs_get_no_grad():
    x = Tensor(np.ones(2), requires_grad=True)
    c = Tensor(np.ones(2))
    ops.sum(ops.add(x, c)).backward()
    assert c.grad is None


def test_iterative_toposort_handles_a_10000_op_chain():
    c = 1.0 + 1e-4
    x = Tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(10_000):              # far deeper than Python's recursion limit
        y = ops.mul(y, c)
    order = topological_order(y)
    assert len(order) == 10_001 and order[0] is x and order[-1] is y
    ops.sum(y).backward()
    np.testing.assert_allclose(x.grad, [c**10_000], rtol=1e-11)


def test_topological_order_puts_parents_first():
    a = Tensor(1.0, requires_grad=True)
    b = ops.mul(a, 2.0)
    c = ops.add(a, b)
    d = ops.add(b, c)
    order = topological_order(d)
    pos = {id(t): i for i, t in enumerate(order)}
    assert len(order) == 4
    for t in order:
        for p in t.parents:
            assert pos[id(p)] < pos[id(t)]


def test_wrong_gradient_shape_raises_naming_the_op():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    bad = make_node(x.value * 2, (x,), lambda g: (np.ones((3, 2)),), "bad_double")
    with pytest.raises(ValueError, match=r"bad_double.*\(3, 2\).*\(2, 3\)"):
        ops.sum(bad).backward()


def test_wrong_gradient_dtype_raises_naming_the_op():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    bad = make_node(x.value * 2, (x,), lambda g: (np.ones(3),), "upcasting_double")
    with pytest.raises(TypeError, match="upcasting_double"):
        ops.sum(bad).backward()


def test_forward_upcast_and_mixed_dtypes_raise_naming_the_op():
    x32 = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="sneaky"):
        make_node(x32.value.astype(np.float64), (x32,), lambda g: (g,), "sneaky")
    with pytest.raises(TypeError, match="matmul"):
        ops.matmul(x32, Tensor(np.ones((2, 2))))
    with pytest.raises(TypeError, match="add"):
        ops.add(x32, np.ones(2))                     # a float64 array constant


def test_float32_stays_float32_end_to_end():
    rng = np.random.default_rng(1)
    f32 = np.float32
    X = Tensor(rng.standard_normal((4, 5)).astype(f32))
    W = Tensor(rng.standard_normal((3, 5)).astype(f32), requires_grad=True)
    b = Tensor(np.zeros(3, f32), requires_grad=True)
    Z = ops.add(ops.matmul(X, ops.transpose(W)), b)
    H = ops.sub(ops.mul(ops.tanh(ops.relu(Z)), 0.5), 1.0)
    H = ops.log_softmax(ops.add(H, ops.mean(H, axis=0)))
    loss = ops.add(ops.cross_entropy(H, np.array([0, 1, 2, 0])), ops.mean(ops.sum(H, axis=0)))
    for t in (Z, H, loss):
        assert t.dtype == f32, t.op
    loss.backward()
    assert W.grad.dtype == f32 and b.grad.dtype == f32


def test_operator_overloads_delegate_to_ops():
    rng = np.random.default_rng(2)
    A = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    B = rng.standard_normal((3, 2))
    Y = (A @ B + 1.0 - 0.5) * 2.0 / 4.0
    assert Y.op == "mul"
    np.testing.assert_allclose(Y.value, (A.value @ B + 0.5) * 0.5)
    Z = B @ A                              # ndarray @ Tensor defers to Tensor.__rmatmul__
    assert isinstance(Z, Tensor) and Z.shape == (3, 3)
    (-A).sum().backward()
    np.testing.assert_array_equal(A.grad, -np.ones((2, 3)))
    assert A.T.shape == (3, 2) and (3.0 * A).op == "mul" and (1.0 - A).op == "sub"


def test_as_tensor_scalar_takes_dtype():
    assert as_tensor(1.0, np.float32).dtype == np.float32
    t = Tensor(np.ones(1))
    assert as_tensor(t) is t


def test_detach_and_item():
    x = Tensor(np.array(2.5), requires_grad=True)
    d = ops.mul(x, 2.0).detach()
    assert d.is_leaf and not d.requires_grad and d.item() == 5.0
