"""The gradient checker itself: it passes right gradients and catches a 0.1 % error."""
import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor, make_node
from lowrank_ref.checks import TOLERANCE_FACTORS
from lowrank_ref.gradcheck import GradCheckResult, assert_grad, check_grad


def _tanh_with_factor(factor):
    """tanh whose backward is multiplied by ``factor`` (1.0: correct)."""
    def op(x):
        y = np.tanh(x.value)
        return make_node(y, (x,), lambda g: (factor * g * (1 - y * y),), "planted_tanh")
    return op


def _loss(op, X, labels):
    return lambda W: ops.cross_entropy(op(ops.matmul(X, ops.transpose(W))), labels)


def test_planted_wrong_backward_fails_and_correct_one_passes():
    rng = np.random.default_rng(0)
    X, labels, W = rng.standard_normal((6, 4)), rng.integers(0, 3, 6), rng.standard_normal((3, 4))
    good = check_grad(_loss(_tanh_with_factor(1.0), X, labels), [W], rng)
    bad = check_grad(_loss(_tanh_with_factor(1.001), X, labels), [W], rng)   # raises nothing
    assert good.passed and good.max_rel_error < 1e-8, str(good)
    assert not bad.passed, str(bad)
    assert bad.max_rel_error == pytest.approx(1e-3, rel=0.01)   # the planted 0.1 %
    with pytest.raises(AssertionError, match="FAILED"):
        assert_grad(_loss(_tanh_with_factor(1.001), X, labels), [W], rng)


def test_planted_error_in_one_input_of_a_real_op_is_caught(monkeypatch):
    """Monkeypatch ops.matmul so that only dL/dB is scaled by 1.001."""
    real_matmul = ops.matmul

    def planted_matmul(a, b):
        out = real_matmul(a, b)
        backward = out._backward
        if backward is not None:
            out._backward = lambda g: (lambda ga, gb: (ga, None if gb is None else 1.001 * gb))(
                *backward(g))
        return out

    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))

    def f(a, b):
        return ops.sum(ops.tanh(ops.matmul(a, b)))

    assert check_grad(f, [A, B], rng).passed
    monkeypatch.setattr(ops, "matmul", planted_matmul)
    res = check_grad(f, [A, B], rng)
    assert not res.passed
    failing = {d["inputs"] for d in res.details if not d["passed"]}
    assert 1 in failing and 0 not in failing      # localised to the second input


def test_result_structure_and_str():
    rng = np.random.default_rng(2)
    res = check_grad(lambda a, b: ops.sum(ops.mul(ops.tanh(a), b)),
                     [rng.standard_normal(3), rng.standard_normal(3)], rng, n_directions=2)
    assert isinstance(res, GradCheckResult)
    assert len(res.details) == 2 * (1 + 2)                # joint + each input, per draw
    assert {d["inputs"] for d in res.details} == {"all", 0, 1}
    assert res.passed and "passed" in str(res) and res.rtol == pytest.approx(1.1e-6, rel=0.05)
    single = check_grad(lambda a: ops.sum(ops.tanh(a)), [rng.standard_normal(3)], rng,
                        n_directions=4)
    assert len(single.details) == 4


def test_default_tolerances_come_from_the_table():
    assert "grad_check_rtol" in TOLERANCE_FACTORS and "grad_check_roundoff" in TOLERANCE_FACTORS
    eps = np.finfo(np.float64).eps
    rng = np.random.default_rng(3)
    res = check_grad(lambda x: ops.sum(ops.tanh(x)), [np.ones(2)], rng)
    assert res.rtol == TOLERANCE_FACTORS["grad_check_rtol"] * eps ** (2 / 3)
    assert res.details[0]["step"] == pytest.approx(eps ** (1 / 3))


def test_step_scales_with_input_size():
    rng = np.random.default_rng(4)
    res = check_grad(lambda x: ops.sum(ops.tanh(ops.mul(x, 1e-3))), [np.full(3, 1e3)], rng)
    assert res.passed and res.details[0]["step"] == pytest.approx(1e3 * np.finfo(float).eps ** (1 / 3))


def test_too_large_step_shows_truncation_error():
    rng = np.random.default_rng(5)
    x = [rng.standard_normal(4)]
    assert not check_grad(lambda t: ops.sum(ops.tanh(t)), x, rng, eps=0.1).passed


def test_relu_passes_away_from_kinks_and_flags_a_kink():
    rng = np.random.default_rng(6)
    x = rng.standard_normal(8)
    x = np.where(x >= 0, x + 0.1, x - 0.1)
    assert check_grad(lambda t: ops.sum(ops.mul(ops.relu(t), Tensor(np.arange(8.0)))), [x], rng).passed
    at_kink = np.array([0.0, 1.0])          # the subgradient 0 vs the two-sided slope 1/2
    assert not check_grad(lambda t: ops.sum(ops.relu(t)), [at_kink], rng).passed


def test_function_independent_of_an_input():
    rng = np.random.default_rng(7)
    res = check_grad(lambda a, b: ops.sum(ops.tanh(a)), [rng.standard_normal(3), np.ones(2)], rng)
    assert res.passed
    const = check_grad(lambda a: ops.sum(Tensor(np.ones(2))), [np.ones(3)], rng)
    assert const.passed and const.max_rel_error == 0.0


def test_inputs_not_modified():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2))
    x0 = x.copy()
    check_grad(lambda t: ops.sum(ops.tanh(t)), [x], rng)
    np.testing.assert_array_equal(x, x0)


def test_nan_gradient_fails():
    def f(x):
        return make_node(np.sum(x.value), (x,), lambda g: (np.full(x.shape, np.nan),), "nan_sum")
    res = check_grad(f, [np.ones(3)], np.random.default_rng(9))
    assert not res.passed and res.max_rel_error == np.inf


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(inputs=[np.ones(2, np.float32)]), TypeError, r"inputs\[0\].*float64"),
    (dict(inputs=np.ones(2)), TypeError, "inputs"),
    (dict(rng=np.random.RandomState(0)), TypeError, "rng"),
    (dict(n_directions=0), ValueError, "n_directions"),
    (dict(f=lambda x: ops.tanh(x)), ValueError, "one-element"),
    (dict(f=lambda x: 1.0), TypeError, "Tensor"),
])
def test_argument_validation(kwargs, exc, match):
    args = dict(f=lambda x: ops.sum(x), inputs=[np.ones(2)], rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        check_grad(**args)
