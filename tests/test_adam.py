"""Adam (lowrank_ref.adam): textbook Adam on a dense layer (computed here independently,
Kingma & Ba Algorithm 1), the paper's TensorFlow loop replayed step by step (form a,
PaperAdam with AdaptiveBUG), and moments carried across bases that do not depend on the
factorisation (form b, CarriedAdam)."""
import dataclasses

import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.adam import ADAM_DEFAULTS, CarriedAdam, PaperAdam, adam_update
from lowrank_ref.autodiff import Tensor
from lowrank_ref.data import Dataset, split_validation
from lowrank_ref.dlrt import AdaptiveBUG, Euclidean, low_rank_mlp
from lowrank_ref.lowrank import LowRank
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.nn import MLP, Dense
from lowrank_ref.training import TrainConfig, build_model, train
from lowrank_ref.training.config import build_optimizer

B1, B2 = 0.9, 0.999


def _blobs(rng, n=64, d=12, k=4):
    centers = 3 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.standard_normal((n, d)), y


def test_dense_adam_is_the_textbook_update():
    """Three steps on one Dense layer with softmax cross-entropy: the gradient by its formula
    (dW = (P - Y)^T X / n), Adam by Algorithm 1, both written here."""
    rng = np.random.default_rng(0)
    layer = Dense(5, 3, rng, init="torch")
    model = MLP([layer])
    X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    W, b = layer.W.value.copy(), layer.b.value.copy()
    lr, eps = 0.01, 1e-8
    opt = Euclidean(model, lr=lr, direction=PaperAdam(eps=eps))
    state = {"W": [np.zeros_like(W), np.zeros_like(W)], "b": [np.zeros_like(b), np.zeros_like(b)]}
    for t in range(1, 4):
        Z = X @ W.T + b
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        D = (P - np.eye(3)[y]) / len(y)
        for name, g in (("W", D.T @ X), ("b", D.sum(axis=0))):
            m, v = state[name]
            m[...] = B1 * m + (1 - B1) * g
            v[...] = B2 * v + (1 - B2) * g * g
            step = lr * (m / (1 - B1 ** t)) / (np.sqrt(v / (1 - B2 ** t)) + eps)
            if name == "W":
                W = W - step
            else:
                b = b - step
        opt.step(X, y)
    assert np.allclose(layer.W.value, W, rtol=1e-13, atol=1e-15)
    assert np.allclose(layer.b.value, b, rtol=1e-13, atol=1e-15)
    assert opt.direction.t == 3


def test_adam_update_first_step_moves_every_entry_by_lr():
    p = np.array([1.0, -2.0, 3.0])
    adam_update(p, np.array([1e-6, -5.0, 0.3]), np.zeros(3), np.zeros(3), 1, 0.1, B1, B2, 1e-12)
    assert np.allclose(p, [0.9, -1.9, 2.9])


def _linear_loss(C):
    def loss(Z, _y):                 # dL/dZ = C, so dL/dW = C^T X and dL/db = sum_i C_i
        return ops.sum(ops.mul(Z, Tensor(C)))
    return loss


def test_paper_form_replays_the_tensorflow_loop():
    """Two steps of AdaptiveBUG with PaperAdam on one layer against the loop of the paper's TF code written
    out here (module docstring of lowrank_ref.adam): the K- and L-applications with zero
    gradients for the other variables, t += 3 per batch, the plain-QR augmentation [K1, U0],
    S_hat0 from the twice-moved S, the S-application, the truncation."""
    rng = np.random.default_rng(1)
    n_in, n_out, r, cap, lr, tau, eps = 9, 8, 3, 4, 0.01, 0.05, 1e-7
    layer = LowRankDense(n_in, n_out, r, rng)
    layer.b.value = rng.standard_normal(n_out)
    X, C = rng.standard_normal((7, n_in)), rng.standard_normal((7, n_out))
    G, gb = C.T @ X, C.sum(axis=0)
    U, S, V, b = (*(a.copy() for a in layer.factors), layer.b.value.copy())
    opt = AdaptiveBUG(MLP([layer], activation="identity"), lr=lr, tau=tau,
                      loss_fn=_linear_loss(C), direction=PaperAdam(eps=eps))
    mom = {k: [np.zeros(s), np.zeros(s)] for k, s in
           (("K", (n_out, cap)), ("L", (n_in, cap)), ("S", (2 * cap, 2 * cap)), ("b", (n_out,)))}
    t = 0

    def apply(name, value, grad):    # one Keras-style application to one variable
        m, v = mom[name]
        m *= B1
        v *= B2
        if value is None:
            return value
        blk = tuple(slice(0, n) for n in value.shape)
        if grad is not None:
            m[blk] += (1 - B1) * grad
            v[blk] += (1 - B2) * grad ** 2
        return value - lr * (m[blk] / (1 - B1 ** t)) / (np.sqrt(v[blk] / (1 - B2 ** t)) + eps)

    for _ in range(2):
        K, L = U @ S, V @ S.T
        t += 1                                   # TF's K-apply: our L moves, the rest ghosts
        L, K, S, b = apply("L", L, G.T @ U), apply("K", K, None), apply("S", S, None), apply("b", b, None)
        t += 1                                   # TF's L-apply: our K moves
        K, L, S, b = apply("K", K, G @ V), apply("L", L, None), apply("S", S, None), apply("b", b, None)
        U_hat = np.linalg.qr(np.concatenate([K, U], axis=1))[0]
        V_hat = np.linalg.qr(np.concatenate([L, V], axis=1))[0]
        S_hat = (U_hat.T @ U) @ S @ (V.T @ V_hat)
        t += 1                                   # the S-apply
        apply("K", None, None), apply("L", None, None)
        S_hat, b = apply("S", S_hat, U_hat.T @ G @ V_hat), apply("b", b, gb)
        P, s, Qt = np.linalg.svd(S_hat)
        tails = [np.linalg.norm(s[k:]) for k in range(len(s) + 1)]
        k = min(max(min(k for k in range(len(s) + 1) if tails[k] <= tau * np.linalg.norm(s)), 1),
                cap)
        U, S, V = U_hat @ P[:, :k], np.diag(s[:k]), V_hat @ Qt[:k].T
        opt.step(X, None)
        assert layer.rank == k
        assert np.allclose(layer.factors.to_dense(), U @ S @ V.T, rtol=1e-11, atol=1e-13)
        assert np.allclose(layer.b.value, b, rtol=1e-12, atol=1e-14)
    assert opt.direction.t == 6


def _represented(model):
    return [layer.factors.to_dense() for layer in model.layers if isinstance(layer, LowRankDense)]


def _regauge(model, rng):
    for layer in model.layers:
        if isinstance(layer, LowRankDense):
            r = layer.rank
            Q1 = np.linalg.qr(rng.standard_normal((r, r)))[0]
            Q2 = np.linalg.qr(rng.standard_normal((r, r)))[0]
            U, S, V = layer.factors
            layer.set_factors(LowRank(U @ Q1, Q1.T @ S @ Q2, V @ Q2))


def test_carried_moments_do_not_depend_on_the_factorisation():
    """As the momentum's test (test_dlrt.py::test_factor_momentum_is_a_matrix_independent_of_
    the_factorisation), and more: the second network is re-gauged at the start *and* after
    three steps, when its moments are stored; the weights follow the same trajectory.

    ``eps = 1e-3``: Adam's normalisation ``m / (sqrt(v) + eps)`` amplifies a rounding
    difference in a coordinate whose gradient is far below ``eps`` by ``lr / eps``, so the
    two runs agree to ``~1e-13`` with ``eps = 1e-3``, ``~1e-9`` with ``1e-7`` and ``~1e-4``
    with ``1e-12`` (measured): rounding, not a dependence on the factorisation, which is of
    order one (the next test)."""
    rng = np.random.default_rng(8)
    X, y = _blobs(rng)
    a = low_rank_mlp([12, 10, 8, 4], rank=3, rng=np.random.default_rng(1))
    b = low_rank_mlp([12, 10, 8, 4], rank=3, rng=np.random.default_rng(1))
    _regauge(b, rng)
    opts = [AdaptiveBUG(m, lr=0.01, tau=0.05, direction=CarriedAdam(eps=1e-3)) for m in (a, b)]
    for step in range(6):
        if step == 3:
            _regauge(b, rng)
        for opt in opts:
            opt.step(X, y)
    for A, B in zip(_represented(a), _represented(b)):
        assert np.linalg.norm(A - B) <= 1e-11 * max(1.0, np.linalg.norm(A))


def test_the_paper_form_depends_on_the_factorisation():
    """The contrast: position-indexed moments see a re-gauged network differently."""
    rng = np.random.default_rng(8)
    X, y = _blobs(rng)
    a = low_rank_mlp([12, 10, 8, 4], rank=3, rng=np.random.default_rng(1))
    b = low_rank_mlp([12, 10, 8, 4], rank=3, rng=np.random.default_rng(1))
    opts = [AdaptiveBUG(m, lr=0.01, tau=0.05, direction=PaperAdam(eps=1e-3)) for m in (a, b)]
    for step in range(6):
        if step == 3:
            _regauge(b, rng)
        for opt in opts:
            opt.step(X, y)
    diff = max(np.linalg.norm(A - B) / np.linalg.norm(A)
               for A, B in zip(_represented(a), _represented(b)))
    assert diff > 1e-3


def test_carried_first_moment_of_a_constant_gradient_is_its_average_in_the_new_basis():
    """With dL/dW = G constant and small steps, the K-moment carried into the current basis
    is (1 - b1^t) G V0 (the average of t equal gradients), also the part outside the span
    of U0: it is re-expressed, not reset or left in old coordinates."""
    rng = np.random.default_rng(9)
    layer = LowRankDense(7, 6, 2, rng)
    X, C = rng.standard_normal((9, 7)), rng.standard_normal((9, 6))
    opt = AdaptiveBUG(MLP([layer], activation="identity"), lr=1e-6, tau=0.0, max_rank=2,
                      loss_fn=_linear_loss(C), direction=CarriedAdam())
    for _ in range(5):
        opt.step(X, None)
    st = opt.direction.carried[0]
    mK = st["mK"] @ (st["V"].T @ layer.V)                       # into the current basis
    target = (1 - B1 ** 5) * (C.T @ X) @ layer.V
    assert np.linalg.norm(mK - target) <= 1e-4 * np.linalg.norm(target)


def test_both_forms_train():
    rng = np.random.default_rng(3)
    X, y = _blobs(rng, n=128)
    for rule in (PaperAdam, CarriedAdam):
        model = low_rank_mlp([12, 10, 8, 4], rank=3, rng=np.random.default_rng(1))
        opt = AdaptiveBUG(model, lr=0.01, tau=0.05, direction=rule())
        first = opt.step(X, y).loss
        for _ in range(60):
            last = opt.step(X, y).loss
        assert last < 0.3 * first, rule.__name__


@pytest.mark.parametrize("rule", [PaperAdam, CarriedAdam])
@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(beta1=1.0), ValueError, "beta1 must be a finite number >= 0 and < 1"),
    (dict(beta2=-0.1), ValueError, "beta2"),
    (dict(eps=0.0), ValueError, "eps must be a finite number > 0"),
    (dict(eps="1e-8"), TypeError, "eps must be a finite number"),
])
def test_bad_hyperparameters_are_refused(rule, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rule(**kwargs)


@pytest.mark.parametrize("rule", [PaperAdam, CarriedAdam])
@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(lr=0.0), ValueError, "lr must be a finite number > 0"),
    (dict(tau=-1.0), ValueError, "tau"),
    (dict(min_rank=3, max_rank=2), ValueError, "max_rank"),
    (dict(lr="0.1"), TypeError, "lr must be a finite number"),
    (dict(momentum=0.9), ValueError, "momentum is a shorthand for direction=Momentum"),
])
def test_bad_optimizer_arguments_with_adam_are_refused(rule, kwargs, exc, match):
    model = low_rank_mlp([12, 10, 8, 4], rank=3, rng=np.random.default_rng(1))
    args = {"lr": 0.01, "tau": 0.1, **kwargs}
    with pytest.raises(exc, match=match):
        AdaptiveBUG(model, direction=rule(), **args)


def test_models_each_form_refuses():
    dense = MLP.dense([4, 5, 3], np.random.default_rng(0))
    low = low_rank_mlp([12, 10, 8, 4], rank=3, rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match="model must have no low-rank layers for Euclidean"):
        Euclidean(low, lr=0.01, direction=PaperAdam())
    with pytest.raises(ValueError, match="at least one low-rank layer"):
        AdaptiveBUG(dense, lr=0.01, tau=0.1, direction=CarriedAdam())
    with pytest.raises(ValueError, match="above its cap"):
        AdaptiveBUG(low_rank_mlp([12, 10, 4, 4], rank=3, rng=np.random.default_rng(1)),
                    lr=0.01, tau=0.1, direction=PaperAdam())
    with pytest.raises(TypeError, match="model must be a Network"):
        Euclidean(dense.layers[0], lr=0.01, direction=CarriedAdam())


@pytest.mark.parametrize("kw, match", [
    (dict(method="fixed", optimizer="adam"), "optimizer 'adam' is implemented for methods"),
    (dict(method="sonly", optimizer="adam"), "implemented for methods"),
    (dict(method="parallel", tau=0.1, optimizer="adam"), "implemented for methods"),
    (dict(method="adaptive", tau=0.1, optimizer="adam", passes=3), "passes must be 1"),
    (dict(method="adaptive", tau=0.1, optimizer="adam", momentum=0.9), "momentum is only used"),
    (dict(method="dense", adam_beta1=0.8), "adam_beta1 is only used"),
    (dict(method="adaptive", tau=0.1, optimizer="adam", finetune_epochs=1), "finetune_epochs"),
    (dict(optimizer="rmsprop"), "optimizer must be one of"),
    (dict(optimizer="adam", adam_eps=0.0), "adam_eps"),
])
def test_config_options_of_adam_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_config_builds_each_form_with_adam_defaults():
    c = TrainConfig(method="adaptive", tau=0.1, optimizer="adam", sizes=[12, 10, 8, 4], rank=3)
    assert (c.lr, c.momentum, c.adam_eps) == (1e-3, 0.0, ADAM_DEFAULTS["eps"])
    model = build_model(c)
    opt = build_optimizer(c, model)
    assert isinstance(opt, AdaptiveBUG) and isinstance(opt.direction, PaperAdam)
    assert opt.direction.eps == ADAM_DEFAULTS["eps"]
    c2 = dataclasses.replace(c, optimizer="adam-carried")
    opt2 = build_optimizer(c2, build_model(c2))
    assert isinstance(opt2, AdaptiveBUG) and isinstance(opt2.direction, CarriedAdam)
    c3 = TrainConfig(method="vanilla", rank=2, optimizer="adam", sizes=[12, 10, 8, 4])
    opt3 = build_optimizer(c3, build_model(c3))
    assert isinstance(opt3, Euclidean) and isinstance(opt3.direction, PaperAdam)


@pytest.mark.parametrize("kw", [dict(method="adaptive", tau=0.1, rank=3, optimizer="adam"),
                                dict(method="adaptive", tau=0.1, rank=3, optimizer="adam-carried"),
                                dict(method="vanilla", rank=3, optimizer="adam")])
def test_a_resumed_adam_run_is_bit_identical(tmp_path, kw):
    rng = np.random.default_rng(0)
    X, y = _blobs(rng, n=256)
    data = split_validation(Dataset(X[:192], y[:192], X[192:], y[192:], "blobs",
                                    "made up in test_adam.py"), 32)
    base = dict(sizes=[12, 10, 8, 4], batch_size=32, schedule="constant", **kw)
    a = train(TrainConfig(epochs=3, out=str(tmp_path / "a"), **base), log=lambda s: None,
              data=data)
    out = str(tmp_path / "b")
    train(TrainConfig(epochs=2, out=out, **base), log=lambda s: None, data=data)
    b = train(TrainConfig(epochs=3, out=out, **base), log=lambda s: None, data=data, resume=out)
    assert a["test_loss"] == b["test_loss"] and a["ranks"] == b["ranks"]
