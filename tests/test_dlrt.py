"""DLRT layers and optimisers ([SZKCT22]): gradients of every mode, the one-gradient
adaptive step against the 3-pass one, orthonormality, rank bounds, loss descent and the
descent inequality (docs/design.md, section "Guarantees and the tests that show them")."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor
from lowrank_ref.checks import orthonormality_error, tolerance
from lowrank_ref.gradcheck import assert_grad
from lowrank_ref.dlrt import (AdaptiveKLS, DenseSGD, FixedRankKLS, SOnlySGD, low_rank_mlp,
                              parameter_counts)
from lowrank_ref.methods import make_optimizer
from lowrank_ref.lowrank import LowRank, tangent_project
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.nn import MLP, Dense


def _blobs(rng, n=64, d=12, k=4):
    centers = 3 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.standard_normal((n, d)), y


def _net(rng, sizes=(12, 10, 8, 4), rank=3):
    return low_rank_mlp(list(sizes), rank=rank, rng=rng)


# --- gradients of every layer mode --------------------------------------------------------

def _layer_loss(layer, X, y, Wout):
    Z = ops.relu(layer(X))
    return ops.cross_entropy(ops.matmul(Z, Tensor(Wout)), y)


@pytest.mark.parametrize("mode", ["K", "L", "S", "W"])
def test_every_mode_gradient_checked(mode):
    rng = np.random.default_rng(1)
    layer = LowRankDense(7, 6, 3, rng)
    X, y = rng.standard_normal((9, 7)), rng.integers(0, 4, 9)
    Wout = rng.standard_normal((6, 4))
    if mode == "S":   # an augmented S-step: U_hat (6, 5), V_hat (7, 4), S_hat (5, 4)
        U_hat = np.linalg.qr(rng.standard_normal((6, 5)))[0]
        V_hat = np.linalg.qr(rng.standard_normal((7, 4)))[0]
        layer.set_mode("S", U_hat=U_hat, S_hat=rng.standard_normal((5, 4)), V_hat=V_hat)
    else:
        layer.set_mode(mode)
    names = {"K": ["K", "b"], "L": ["L", "b"], "S": ["S_hat", "b"], "W": ["b"]}[mode]
    start = [getattr(layer, name).value.copy() for name in names]

    def f(*tensors):                 # install the checker's leaves, then run the layer
        for name, t in zip(names, tensors):
            setattr(layer, name, t)
        return _layer_loss(layer, Tensor(X), y, Wout)

    assert_grad(f, start, rng)


def test_mode_gradients_are_the_projected_dense_gradient():
    """dK = G V0, dL = G^T U0, dS = U^T G V with G = dL/dW of the dense layer at W0."""
    rng = np.random.default_rng(2)
    layer = LowRankDense(7, 6, 3, rng)
    X, y = rng.standard_normal((9, 7)), rng.integers(0, 4, 9)
    Wout = rng.standard_normal((6, 4))
    U, S, V = layer.factors
    dense = Dense(7, 6, rng)
    dense.W = Tensor(U @ S @ V.T, requires_grad=True)
    dense.b = Tensor(layer.b.value.copy(), requires_grad=True)
    _layer_loss(dense, Tensor(X), y, Wout).backward()
    G = dense.W.grad
    expected = {"K": G @ V, "L": G.T @ U, "S": U.T @ G @ V}
    for mode, want in expected.items():
        layer.set_mode(mode)
        _layer_loss(layer, Tensor(X), y, Wout).backward()
        got = layer.parameters()[0].grad
        assert np.linalg.norm(got - want) <= tolerance("step", size=7) * np.linalg.norm(want)


# --- the optimisers -------------------------------------------------------------------------

def _represented(model):
    return [layer.factors.to_dense() if isinstance(layer, LowRankDense) else layer.W.value
            for layer in model.layers] + [layer.b.value for layer in model.layers]


@given(seed=st.integers(0, 2**32 - 1), rank=st.integers(1, 4), tau=st.sampled_from([0.0, 0.05, 0.3]),
       lr=st.sampled_from([0.01, 0.1, 0.5]), momentum=st.sampled_from([0.0, 0.9]))
def test_one_gradient_adaptive_step_equals_three_pass_step(seed, rank, tau, lr, momentum):
    rng = np.random.default_rng(seed)
    X, y = _blobs(rng)
    a = _net(np.random.default_rng(seed), rank=rank)
    b = _net(np.random.default_rng(seed), rank=rank)
    opt1 = AdaptiveKLS(a, lr=lr, tau=tau, passes=1, momentum=momentum)
    opt3 = AdaptiveKLS(b, lr=lr, tau=tau, passes=3, momentum=momentum)
    for _ in range(3):
        r1, r3 = opt1.step(X, y), opt3.step(X, y)
        assert abs(r1.loss - r3.loss) <= 1e-12 * max(1.0, abs(r1.loss))
        assert parameter_counts(a)["ranks"] == parameter_counts(b)["ranks"]
        for A, B in zip(_represented(a), _represented(b)):
            assert np.linalg.norm(A - B) <= tolerance("step", size=12) * max(1.0, np.linalg.norm(A))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("method", ["dense", "fixed", "adaptive", "adaptive3", "sonly"])
def test_loss_decreases_orthonormal_and_ranks_in_bounds(method, momentum):
    rng = np.random.default_rng(3)
    X, y = _blobs(rng, n=128)
    if method == "dense":
        model = MLP.dense([12, 10, 8, 4], rng)
        opt = DenseSGD(model, lr=0.1, momentum=momentum)
    else:
        model = _net(rng, rank=3)
        kw = dict(lr=0.1, momentum=momentum)
        opt = {"fixed": lambda: FixedRankKLS(model, **kw),
               "adaptive": lambda: AdaptiveKLS(model, tau=0.1, min_rank=1, max_rank=4, **kw),
               "adaptive3": lambda: AdaptiveKLS(model, tau=0.1, max_rank=4, passes=3, **kw),
               "sonly": lambda: SOnlySGD(model, **kw)}[method]()
    losses = []
    for _ in range(30):
        losses.append(opt.step(X, y).loss)
        for layer in model.layers:
            if isinstance(layer, LowRankDense):
                assert orthonormality_error(layer.U) <= tolerance("orthonormality", size=12)
                assert orthonormality_error(layer.V) <= tolerance("orthonormality", size=12)
                if method in ("fixed", "sonly"):
                    assert layer.rank == 3
                if method.startswith("adaptive"):
                    assert 1 <= layer.rank <= 4
    # S-only training keeps the initial bases, so it descends more slowly
    assert losses[-1] < (0.75 if method == "sonly" else 0.5) * losses[0], losses


def test_adaptive_ranks_fall_with_large_tau_and_grow_with_zero_tau():
    rng = np.random.default_rng(4)
    X, y = _blobs(rng, n=128)
    model = _net(np.random.default_rng(0), rank=4)
    opt = AdaptiveKLS(model, lr=0.1, tau=0.5)
    opt.step(X, y)
    assert all(r < 4 for r in parameter_counts(model)["ranks"][:-1])
    model = _net(np.random.default_rng(0), rank=1)
    opt = AdaptiveKLS(model, lr=0.1, tau=0.0, max_rank=4)
    opt.step(X, y)
    assert all(r == 2 for r in parameter_counts(model)["ranks"][:-1])   # doubled, nothing cut


def test_fixed_rank_step_is_the_bug_integrator_on_one_layer():
    """One FixedRankKLS step equals integrators.bug_step with F = -G (frozen), inner Euler,
    when the loss is linear in W (G does not depend on W, so the S-pass sees the same G)."""
    from lowrank_ref.integrators import bug_step
    rng = np.random.default_rng(5)
    layer = LowRankDense(7, 6, 3, rng)
    model = MLP([layer], activation="identity")
    X = rng.standard_normal((9, 7))
    C = rng.standard_normal((9, 6))

    def linear_loss(Z, _y):          # L(W) = sum(C * (X W^T + b)): dL/dW = C^T X
        return ops.sum(ops.mul(Z, Tensor(C)))

    Y0 = layer.factors
    G = C.T @ X
    lr = 0.3
    FixedRankKLS(model, lr=lr, loss_fn=linear_loss).step(X, None)
    Y_bug = bug_step(Y0, lambda t, A: -G, 0.0, lr, inner="euler")
    assert np.linalg.norm(layer.factors.to_dense() - Y_bug.to_dense()) <= \
        tolerance("step", size=7) * np.linalg.norm(Y_bug.to_dense())


def test_fixed_rank_one_pass_is_the_galerkin_projection_of_the_sgd_step():
    """FixedRankKLS(passes=1): the bases of the two-pass step, and
    S1 = U1^T (W0 - lr G0) V1 with G0 = dL/dW at W0 (formed densely here, only to check)."""
    rng = np.random.default_rng(6)
    X, y = _blobs(rng, n=32)
    models = [_net(np.random.default_rng(0), rank=3) for _ in range(3)]
    layer = models[0].layers[0]
    W0, b0 = layer.factors.to_dense(), layer.b.value.copy()
    FixedRankKLS(models[0], lr=0.2, passes=1).step(X, y)
    FixedRankKLS(models[1], lr=0.2, passes=2).step(X, y)
    for l1, l2 in zip(models[0].layers[:-1], models[1].layers[:-1]):   # same bases
        for P1, P2 in ((l1.U @ l1.U.T, l2.U @ l2.U.T), (l1.V @ l1.V.T, l2.V @ l2.V.T)):
            assert np.linalg.norm(P1 - P2) <= tolerance("step", size=12)
    dense = MLP([Dense(12, 10, rng)] + models[2].layers[1:])     # the same network, layer 0 dense
    dense.layers[0].W.value, dense.layers[0].b.value = W0, b0
    dense.zero_grad()
    ops.cross_entropy(dense(X), y).backward()
    G0 = dense.layers[0].W.grad
    expected = layer.U.T @ (W0 - 0.2 * G0) @ layer.V
    assert np.linalg.norm(layer.S - expected) <= tolerance("step", size=12) * np.linalg.norm(expected)
    # and not the two-pass S (whose gradient is taken at W~): a test that can fail
    assert np.linalg.norm(models[1].layers[0].S - layer.S) > 1e-6 * np.linalg.norm(layer.S)


def test_fixed_rank_one_pass_trains():
    rng = np.random.default_rng(3)
    X, y = _blobs(rng, n=128)
    model = _net(rng, rank=3)
    opt = FixedRankKLS(model, lr=0.1, momentum=0.9, passes=1)
    losses = [opt.step(X, y).loss for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    for bad, exc in ((0, ValueError), (3, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="passes"):
            FixedRankKLS(model, lr=0.1, passes=bad)


def test_descent_inequality_least_squares_layer():
    """The descent inequality: L(W1) <= L(W0) - lr/2 (||P_T G||^2 + ||g_b||^2) + ||grad L(W_hat1)|| t + Lip t^2/2
    for the adaptive step on L(W, b) = ||X W^T + b - Y||^2 / (2 batch), lr <= 1/Lip, with
    t = ||W1 - W_hat1||_F the truncation error (the bias is part of the SGD step, so the
    Lipschitz constant is that of the data [X, 1])."""
    rng = np.random.default_rng(6)
    for trial in range(20):
        n_in, n_out, batch, r = rng.integers(4, 12), rng.integers(4, 12), rng.integers(5, 30), 2
        X = rng.standard_normal((batch, n_in))
        Yt = rng.standard_normal((batch, n_out))
        X1 = np.hstack([X, np.ones((batch, 1))])
        Lip = np.linalg.eigvalsh(X1.T @ X1 / batch).max()
        layer = LowRankDense(n_in, n_out, r, rng)
        model = MLP([layer], activation="identity")

        def lsq(Z, Y):
            D = ops.sub(Z, Tensor(Y))
            return ops.mul(ops.sum(ops.mul(D, D)), 1.0 / (2 * batch))

        def loss_and_grads(W, b):
            R = X @ W.T + b - Yt
            return (R * R).sum() / (2 * batch), R.T @ X / batch, R.sum(0) / batch

        U0, S0, V0 = layer.factors
        W0, b0 = U0 @ S0 @ V0.T, layer.b.value.copy()
        L0, G, gb = loss_and_grads(W0, b0)
        PTG = tangent_project(LowRank(U0, S0, V0), G)
        lr = float(rng.uniform(0.2, 1.0)) / Lip
        tau = float(rng.choice([0.0, 0.05, 0.2, 0.5]))
        # the untruncated W_hat1 of the same step (tau = 0, no rank cap)
        twin = LowRankDense.from_factors(LowRank(U0, S0, V0), b0)
        AdaptiveKLS(MLP([twin], activation="identity"), lr=lr, tau=0.0, max_rank=min(n_in, n_out),
                    loss_fn=lsq).step(X, Yt)
        W_hat1 = twin.factors.to_dense()
        AdaptiveKLS(model, lr=lr, tau=tau, max_rank=min(n_in, n_out), loss_fn=lsq).step(X, Yt)
        W1, b1 = layer.factors.to_dense(), layer.b.value
        t = np.linalg.norm(W1 - W_hat1)
        _, G_hat, _ = loss_and_grads(W_hat1, b1)
        L1, _, _ = loss_and_grads(W1, b1)
        bound = (L0 - lr / 2 * (np.linalg.norm(PTG) ** 2 + gb @ gb)
                 + np.linalg.norm(G_hat) * t + Lip * t * t / 2)
        assert L1 <= bound + 1e-12 * max(1.0, L0), (trial, L1, bound)


# --- counts and bad input ----------------------------------------------------------------------

def test_parameter_counts_match_the_paper_definition():
    model = low_rank_mlp([784, 500, 500, 500, 500, 10], rank=20, rng=np.random.default_rng(0))
    c = parameter_counts(model)
    lr_eval = 20 * (784 + 500) + 3 * 20 * 1000
    assert c["eval_params"] == lr_eval + 5000
    assert c["train_params"] == (2 * 20 * 784 + 4 * 400 + 2 * 20 * 500
                                 + 3 * (2 * 20 * 1000 + 4 * 400) + 5000)
    assert c["dense_params"] == 784 * 500 + 3 * 500 * 500 + 5000
    assert c["eval_cr"] == pytest.approx(1 - c["eval_params"] / c["dense_params"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="adaptive", lr=0.1), "tau"),
    (dict(method="sgd", lr=0.1), "method"),
    (dict(method="fixed", lr=-1.0), "lr"),
    (dict(method="fixed", lr=0.1, momentum=1.0), "momentum"),
    (dict(method="adaptive", lr=0.1, tau=-0.1), "tau"),
    (dict(method="adaptive", lr=0.1, tau=0.1, passes=2), "passes"),
    (dict(method="dense", lr=0.1), "dense"),
])
def test_bad_optimizer_arguments(kwargs, match):
    model = _net(np.random.default_rng(0))
    with pytest.raises(ValueError, match=match):
        make_optimizer(model=model, **kwargs)


def test_bad_layer_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="rank"):
        LowRankDense(4, 3, 4, rng)
    with pytest.raises(ValueError, match="mode"):
        LowRankDense(4, 3, 2, rng).set_mode("Q")
    with pytest.raises(ValueError, match="X"):
        LowRankDense(4, 3, 2, rng)(np.ones((2, 5)))


def test_factor_momentum_is_a_matrix_independent_of_the_factorisation():
    """Two networks representing the same weights in different gauges (U Q1, Q1^T S Q2, V Q2)
    follow the same trajectory with momentum: the velocity is re-expressed, not copied."""
    rng = np.random.default_rng(8)
    X, y = _blobs(rng)
    a = _net(np.random.default_rng(1), rank=3)
    b = _net(np.random.default_rng(1), rank=3)
    for layer in b.layers:
        if isinstance(layer, LowRankDense):
            Q1 = np.linalg.qr(rng.standard_normal((3, 3)))[0]
            Q2 = np.linalg.qr(rng.standard_normal((3, 3)))[0]
            U, S, V = layer.factors
            layer.set_factors(LowRank(U @ Q1, Q1.T @ S @ Q2, V @ Q2))
    opts = [AdaptiveKLS(m, lr=0.1, tau=0.05, momentum=0.9) for m in (a, b)]
    for _ in range(5):
        for opt in opts:
            opt.step(X, y)
    for A, B in zip(_represented(a), _represented(b)):
        assert np.linalg.norm(A - B) <= 1e-10 * max(1.0, np.linalg.norm(A))


def test_fixed_rank_momentum_turns_the_basis():
    """With a constant gradient G, the fixed-rank K-step velocity after two steps must carry
    mu * (the previous velocity) along G V0, also outside span(U0): the stored velocity is
    the tangent projection at W0, not its restriction to the new bases."""
    rng = np.random.default_rng(9)
    layer = LowRankDense(7, 6, 2, rng)
    model = MLP([layer], activation="identity")
    X, C = rng.standard_normal((9, 7)), rng.standard_normal((9, 6))

    def linear_loss(Z, _y):          # dL/dW = C^T X, the same at every point
        return ops.sum(ops.mul(Z, Tensor(C)))

    opt = FixedRankKLS(model, lr=1e-3, momentum=0.9, loss_fn=linear_loss)
    G = C.T @ X
    opt.step(X, None)
    U0, S0, V0 = layer.factors
    vK, vL = opt.direction.kl(0, U0, V0, G @ V0, G.T @ U0)
    # the stored velocity is P_T(G) at the previous point, whose product with V0 is close
    # to G V0 (the point moved by lr only): vK ~ (1 + mu) G V0, outside span(U0) too
    out = lambda A: A - U0 @ (U0.T @ A)
    assert np.linalg.norm(out(vK) - 1.9 * out(G @ V0)) <= 0.05 * np.linalg.norm(out(G @ V0))


# --- the parallel step -------------------------------------------------------------------------

def _parallel_case(kind, rng):
    """A network whose layer 0 is low-rank (dense or a strided, padded convolution), a batch,
    labels, and the dense gradient ``G = dL/dW`` of layer 0's matrix at the start point (from
    the dense twin: a Dense layer / Conv2d holding ``W0``)."""
    from lowrank_ref.conv import Conv2d, LowRankConv2d
    from lowrank_ref.networks import Flatten, ReLU, Sequential
    if kind == "dense":
        layer = LowRankDense(20, 16, 3, rng)
        model = MLP([layer, Dense(16, 5, rng)])
        X, y = rng.standard_normal((24, 20)), rng.integers(0, 5, 24)
        twin_layer = Dense(20, 16, rng)
        twin_layer.W = Tensor(layer.factors.to_dense(), requires_grad=True)
        twin_layer.b = Tensor(layer.b.value.copy(), requires_grad=True)
        twin = MLP([twin_layer, model.layers[1]])
    else:
        layer = LowRankConv2d(3, 8, 3, 3, rng, stride=2, padding=1)
        model = Sequential([layer, ReLU(), Flatten(), Dense(8 * 4 * 4, 5, rng)])
        X, y = rng.standard_normal((6, 3, 7, 7)), rng.integers(0, 5, 6)
        twin_layer = Conv2d.from_weights(layer.kernel(), layer.b.value, stride=2, padding=1)
        twin = Sequential([twin_layer, ReLU(), Flatten(), model.layers[1]])
    twin.zero_grad()
    ops.cross_entropy(twin(X), y).backward()
    return model, layer, X, y, twin_layer.W.grad.reshape(layer.n_out, layer.n_in)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_parallel_step_is_the_projected_gradient_step_then_its_best_approximation(kind):
    """The closed form of ParallelBUG under plain SGD: before the truncation (tau = 0, which
    keeps every nonzero singular value) the matrix is ``W0 - lr P_T(W0) G`` to rounding; with
    a tolerance it is the best approximation of that matrix at the rank the rule chooses
    (``truncation_rank`` of its singular values), on a dense and on a convolutional layer."""
    from lowrank_ref.truncation import truncation_rank
    from lowrank_ref.dlrt import ParallelBUG
    lr, ranks = 0.3, set()
    for tau in (0.0, {"dense": 1e-3, "conv": 3e-3}[kind], 0.05, 0.55):
        model, layer, X, y, G = _parallel_case(kind, np.random.default_rng(11))
        Y0 = layer.factors
        W_hat = Y0.to_dense() - lr * tangent_project(Y0, G)
        ParallelBUG(model, lr, tau=tau).step(X, y)
        P, s, Qt = np.linalg.svd(W_hat)
        r = truncation_rank(s[:2 * Y0.rank], tau, relative=True)     # rank W_hat <= 2r
        assert layer.rank == r and (tau > 0 or r == 2 * Y0.rank), (tau, layer.rank, r)
        best = (P[:, :r] * s[:r]) @ Qt[:r]
        err = np.linalg.norm(layer.factors.to_dense() - best)
        assert err <= tolerance("step", size=max(W_hat.shape)) * np.linalg.norm(W_hat), (tau, err)
        assert layer.factors.orthonormality_error() <= tolerance("orthonormality", size=20)
        ranks.add(r)
    assert len(ranks) == 4, ranks          # 2r, a cut inside the new block, r, below r
    # the contrast: the rank-adaptive step adds the new-new block P_U~ G P_V~ (it is not the
    # projected gradient step), so the closed form is a property of the parallel step
    model, layer, X, y, G = _parallel_case(kind, np.random.default_rng(11))
    Y0 = layer.factors
    AdaptiveKLS(model, lr, tau=0.0).step(X, y)
    gap = np.linalg.norm(layer.factors.to_dense() - Y0.to_dense() + lr * tangent_project(Y0, G))
    assert gap > 1e3 * tolerance("step", size=20) * np.linalg.norm(Y0.to_dense())


def test_parallel_step_trains_and_keeps_ranks_within_twice_the_rank():
    from lowrank_ref.dlrt import ParallelBUG
    rng = np.random.default_rng(3)
    X, y = _blobs(rng, n=128)
    model = _net(rng, rank=2)
    opt = ParallelBUG(model, lr=0.1, tau=0.05, momentum=0.9)
    losses, ranks = [], [2, 2]
    for _ in range(30):
        losses.append(opt.step(X, y).loss)
        new = parameter_counts(model)["ranks"][:-1]
        assert all(1 <= b <= 2 * a for a, b in zip(ranks, new)), (ranks, new)
        ranks = new
        for layer in model.layers[:-1]:
            assert orthonormality_error(layer.U) <= tolerance("orthonormality", size=12)
    assert losses[-1] < 0.5 * losses[0], losses
