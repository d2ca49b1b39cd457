"""Every optimiser: integrator x direction rule x layer kind, step by step against a plain
re-derivation (docs/design.md, section "Optimisers: integrator x direction").

The re-derivation here never calls the package's optimisers, directions or steps: the
gradient of each layer's matrix comes from a *dense twin* of the network (every low-rank
layer replaced by a Dense layer or a dense Conv2d holding ``W = U S V^T``; its gradients are
checked against central differences in test_nn.py and test_conv_ops.py), and the step is
written with dense matrices from the formulas of the integrators: ``P_T`` is
``lowrank.tangent_project``, bases come from NumPy's QR and SVD. The direction rules are
written out in dense form: the momentum's velocity is a dense matrix ``M`` (``N = mu M + G``;
kept as ``P_T N`` for the fixed-rank and parallel steps, as ``P_U N P_V`` in the S-step's
bases otherwise), Adam's moments live in the singular coordinates of ``W`` (dense SVD).
Two steps are compared, so that the state carried into the new bases matters. The
networks have a low-rank layer (dense or convolutional) and plain parameters of every kind
(a vanilla ``U V^T`` layer, a dense convolution, a dense layer, biases).
"""
import copy

import numpy as np
import pytest

from lowrank_ref import ops
from lowrank_ref.adam import CarriedAdam, PaperAdam
from lowrank_ref.autodiff import Tensor
from lowrank_ref.checks import tolerance
from lowrank_ref.conv import Conv2d, LowRankConv2d
from lowrank_ref.directions import SGD, Momentum
from lowrank_ref.dlrt import AdaptiveBUG, Euclidean, FixedRankBUG, ParallelBUG, SOnly
from lowrank_ref.factorized import FactorizedDense
from lowrank_ref.lowrank import LowRank, tangent_project
from lowrank_ref.lowrank_layers import LowRankDense, LowRankLayer
from lowrank_ref.networks import Flatten, ReLU, Sequential
from lowrank_ref.nn import MLP, Dense
from lowrank_ref.training.specs import flat_options

B1, B2, EPS, MU = 0.9, 0.999, 1e-3, 0.8


# ---------------------------------------------------------------------------------------
# the networks and their dense twins
# ---------------------------------------------------------------------------------------
def make_model(kind):
    """A network with a low-rank layer of ``kind`` and plain parameters of every kind, a
    batch and labels."""
    rng = np.random.default_rng(3)
    if kind == "dense":
        layers = [LowRankDense(10, 9, 2, rng), FactorizedDense(9, 8, 2, rng), Dense(8, 4, rng)]
        for layer in layers:
            layer.b.value = 0.1 * rng.standard_normal(layer.b.shape)
        return MLP(layers), rng.standard_normal((16, 10)), rng.integers(0, 4, 16)
    conv = LowRankConv2d(2, 5, 3, 2, rng)
    conv.b.value = 0.1 * rng.standard_normal(5)
    modules = [conv, ReLU(), Conv2d(5, 3, 3, rng), ReLU(), Flatten(), Dense(12, 3, rng)]
    return Sequential(modules), rng.standard_normal((6, 2, 6, 6)), rng.integers(0, 3, 6)


def snapshot(model):
    """Per layer: the matrix ``W`` of a low-rank layer (and its rank), the values of the
    parameters of every other layer; the biases of the low-rank layers."""
    W, ranks, plain = {}, {}, {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, LowRankLayer):
            W[i], ranks[i] = layer.factors.to_dense(), layer.rank
            plain[f"{i}.b"] = layer.b.value.copy()
        else:
            for j, p in enumerate(layer.parameters()):
                plain[f"{i}.{p.name or j}"] = p.value.copy()
    return W, ranks, plain


def twin(model, W, plain):
    """The network without low-rank layers: low-rank layer ``i`` holds the matrix ``W[i]``
    (a Dense layer, or a Conv2d with the kernel ``W[i]`` reshaped), every parameter the value
    ``plain[key]``."""
    new = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, LowRankConv2d):
            d = Conv2d.from_weights(W[i].reshape(layer.kernel_shape), plain[f"{i}.b"],
                                    stride=layer.stride, padding=layer.padding)
        elif isinstance(layer, LowRankLayer):
            d = Dense(layer.n_in, layer.n_out, np.random.default_rng(0))
            d.W = Tensor(W[i].copy(), requires_grad=True, name="W")
            d.b = Tensor(plain[f"{i}.b"].copy(), requires_grad=True, name="b")
        else:
            d = copy.deepcopy(layer)
            for j, p in enumerate(d.parameters()):
                p.value = plain[f"{i}.{p.name or j}"].copy()
        new.append(d)
    if isinstance(model, MLP):
        return MLP(new)
    swap = {id(layer): d for layer, d in zip(model.layers, new)}
    return Sequential([swap.get(id(m), m) for m in model.modules])


def gradients(model, W, plain, X, y):
    """``G_i = dL/dW_i`` (the matrix of every low-rank layer) and the gradient of every plain
    parameter, from one backward of the dense twin."""
    t = twin(model, W, plain)
    t.zero_grad()
    ops.cross_entropy(t(X), y).backward()
    G, g = {}, {}
    for i, (layer, d) in enumerate(zip(model.layers, t.layers)):
        if isinstance(layer, LowRankLayer):
            G[i] = d.W.grad.reshape(layer.n_out, layer.n_in)
            g[f"{i}.b"] = d.b.grad
        else:
            for j, p in enumerate(d.parameters()):
                g[f"{i}.{p.name or j}"] = p.grad
    return G, g


# ---------------------------------------------------------------------------------------
# the direction rules in dense form
# ---------------------------------------------------------------------------------------
def P(U, Z, V):
    return U @ (U.T @ Z @ V) @ V.T


class RefSGD:
    coordinatewise = False

    def start(self):
        pass

    def plain(self, key, g):
        return g

    def begin(self, i, G0):
        self.N0 = {**getattr(self, "N0", {}), i: G0}

    def kl(self, i, U0, V0):
        return self.N0[i] @ V0, self.N0[i].T @ U0

    def core(self, i, U, V, G, tangent=None):
        return U.T @ G @ V


class RefMomentum(RefSGD):
    """Heavy ball: the velocity of a low-rank layer is a dense matrix ``M``."""

    def __init__(self):
        self.M, self.v = {}, {}

    def plain(self, key, g):
        self.v[key] = g if key not in self.v else MU * self.v[key] + g
        return self.v[key]

    def begin(self, i, G0):
        super().begin(i, G0 + MU * self.M[i] if i in self.M else G0)

    def core(self, i, U, V, G, tangent=None):
        N = G + MU * self.M[i] if i in self.M else G
        D = U.T @ N @ V
        if tangent is None:
            self.M[i] = U @ D @ V.T                   # N restricted to span U x span V
        else:
            U0, V0 = tangent
            self.M[i] = tangent_project(LowRank(U0, np.eye(U0.shape[1]), V0), self.N0[i])
        return D


class RefCarriedAdam(RefSGD):
    """Adam in the singular coordinates of ``W``: moments of K (columns along V), L (along
    U), S (in the S-step's bases), carried by the transitions and their squares."""

    coordinatewise = True

    def __init__(self):
        self.t, self.plain_m, self.st = 0, {}, {}

    def start(self):
        self.t += 1

    def adam(self, g, m, v):
        m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g
        d = (m / (1 - B1 ** self.t)) / (np.sqrt(v / (1 - B2 ** self.t)) + EPS)
        return d, m, v

    def plain(self, key, g):
        m, v = self.plain_m.get(key, (0 * g, 0 * g))
        d, m, v = self.adam(g, m, v)
        self.plain_m[key] = (m, v)
        return d

    def kl(self, i, U0, V0):
        s = self.st.setdefault(i, {})
        G = self.N0[i]
        if "V" in s:
            T, Q = V0.T @ s["V"], U0.T @ s["U"]
            mK, vK, mL, vL = s["mK"] @ T.T, s["vK"] @ (T * T).T, s["mL"] @ Q.T, s["vL"] @ (Q * Q).T
        else:
            mK = vK = np.zeros((U0.shape[0], U0.shape[1]))
            mL = vL = np.zeros((V0.shape[0], V0.shape[1]))
        DK, s["mK"], s["vK"] = self.adam(G @ V0, mK, vK)
        DL, s["mL"], s["vL"] = self.adam(G.T @ U0, mL, vL)
        s["U"], s["V"] = U0, V0
        return DK, DL

    def core(self, i, U, V, G, tangent=None):
        s = self.st.setdefault(i, {})
        if "Uh" in s:
            A, B = U.T @ s["Uh"], V.T @ s["Vh"]
            m, v = A @ s["mS"] @ B.T, (A * A) @ s["vS"] @ (B * B).T
        else:
            m = v = np.zeros((U.shape[1], V.shape[1]))
        D, s["mS"], s["vS"] = self.adam(U.T @ G @ V, m, v)
        s["Uh"], s["Vh"] = U, V
        return D


# ---------------------------------------------------------------------------------------
# the integrators in dense form
# ---------------------------------------------------------------------------------------
def factors(W0, r, rule, layer_factors):
    """``U0, S0, V0`` of ``W0``: its singular vectors for a coordinatewise rule, else the
    layer's own factorisation (the result does not depend on it)."""
    if rule.coordinatewise:
        P_, s, Qt = np.linalg.svd(W0)
        return P_[:, :r], np.diag(s[:r]), Qt[:r].T
    return layer_factors


COND = []          # the conditioning of the new directions of the current step


def new_directions(U0, K1):
    """Orthonormal basis of ``(I - U0 U0^T) K1``: its left singular vectors (nonzero ones).

    Their rounding error is ``eps ||K1|| / s_min`` (``s_min`` the smallest kept singular
    value): recorded in ``COND`` for the tolerance."""
    R = K1 - U0 @ (U0.T @ K1)
    Q, s, _ = np.linalg.svd(R, full_matrices=False)
    p = min(int(np.sum(s > 1e-12 * max(s.max(), 1e-300))), U0.shape[0] - U0.shape[1])
    if p:
        COND.append(np.linalg.norm(K1, 2) / s[p - 1])
    return Q[:, :p]


def ref_step(method, rule, model, X, y, lr, passes):
    """The expected matrices, ranks and plain parameters after one step of ``method``."""
    W, ranks, plain = snapshot(model)
    G0, g0 = gradients(model, W, plain, X, y)
    rule.start()
    new, new_ranks, later = {}, {}, {}
    for i, r in ranks.items():
        layer = model.layers[i]
        W0 = W[i]
        U0, S0, V0 = factors(W0, r, rule, layer.factors)
        rule.begin(i, G0[i])
        if method == "sonly":
            new[i] = U0 @ (S0 - lr * rule.core(i, U0, V0, G0[i])) @ V0.T
            new_ranks[i] = r
            continue
        D_K, D_L = rule.kl(i, U0, V0)
        K1, L1 = U0 @ S0 - lr * D_K, V0 @ S0.T - lr * D_L
        if method == "fixed":
            U1, V1 = np.linalg.qr(K1)[0], np.linalg.qr(L1)[0]
            later[i] = (U1, U1.T @ W0 @ V1, V1, (U0, V0))
            new_ranks[i] = r
        elif method == "adaptive":
            Uh = np.hstack([U0, new_directions(U0, K1)])
            Vh = np.hstack([V0, new_directions(V0, L1)])
            D_S = rule.core(i, Uh, Vh, G0[i])
            new[i] = Uh @ (Uh.T @ W0 @ Vh - lr * D_S) @ Vh.T      # tau = 0: nothing cut
            new_ranks[i] = min(Uh.shape[1], Vh.shape[1])
        else:                                                     # parallel
            D_S = rule.core(i, U0, V0, G0[i], tangent=(U0, V0))
            PU, PV = U0 @ U0.T, V0 @ V0.T
            step = U0 @ D_S @ V0.T + (D_K - PU @ D_K) @ V0.T + U0 @ (D_L.T - D_L.T @ PV)
            new[i] = W0 - lr * step
            new_ranks[i] = min(r + new_directions(U0, K1).shape[1],
                               r + new_directions(V0, L1).shape[1])
    if method == "fixed":                # the S-step at W~ = U1 S~ V1^T (or at W0: passes 1)
        Wt = {i: U1 @ St @ V1.T for i, (U1, St, V1, _) in later.items()}
        Gt = gradients(model, Wt, plain, X, y)[0] if passes == 2 else G0
        for i, (U1, St, V1, tangent) in later.items():
            new[i] = U1 @ (St - lr * rule.core(i, U1, V1, Gt[i], tangent=tangent)) @ V1.T
    return new, new_ranks, {k: v - lr * rule.plain(k, g0[k]) for k, v in plain.items()}


# ---------------------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------------------
INTEGRATORS = {
    "fixed": lambda m, lr, d: FixedRankBUG(m, lr, direction=d),
    "fixed1": lambda m, lr, d: FixedRankBUG(m, lr, passes=1, direction=d),
    "adaptive": lambda m, lr, d: AdaptiveBUG(m, lr, tau=0.0, direction=d),
    "adaptive3": lambda m, lr, d: AdaptiveBUG(m, lr, tau=0.0, passes=3, direction=d),
    "parallel": lambda m, lr, d: ParallelBUG(m, lr, tau=0.0, direction=d),
    "sonly": lambda m, lr, d: SOnly(m, lr, direction=d),
}
RULES = {"sgd": (SGD, RefSGD, 0.1), "momentum": (lambda: Momentum(MU), RefMomentum, 0.1),
         "adam-carried": (lambda: CarriedAdam(eps=EPS), RefCarriedAdam, 0.02)}


def _close(a, b, what, cond=1.0):
    tol = tolerance("step", np.float64, max(a.shape), cond) * max(1.0, np.linalg.norm(b))
    assert np.linalg.norm(a - b) <= tol, (what, np.linalg.norm(a - b), tol)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("integrator", list(INTEGRATORS))
def test_two_steps_equal_the_plain_re_derivation(integrator, rule, kind):
    make_rule, make_ref, lr = RULES[rule]
    model, X, y = make_model(kind)
    opt = INTEGRATORS[integrator](model, lr, make_rule())
    ref = make_ref()
    method = integrator.rstrip("13")
    passes = 1 if integrator == "fixed1" else 2
    for step in range(2):
        before = snapshot(model)[2]
        COND.clear()
        W, ranks, plain = ref_step(method, ref, model, X, y, lr, passes)
        opt.step(X, y)
        W1, ranks1, plain1 = snapshot(model)
        assert ranks1 == ranks, (step, ranks1, ranks)
        for i in W:     # the augmented bases are as well conditioned as their new directions
            _close(W1[i], W[i], (step, i), max(COND) if method == "adaptive" else 1.0)
        assert plain1.keys() == plain.keys()
        for k in plain:          # every plain parameter moved: vanilla factors, conv, dense
            assert not np.array_equal(plain1[k], before[k]), k
            _close(plain1[k], plain[k], (step, k))


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("rule", ["sgd", "momentum", "adam-carried", "adam"])
def test_euclidean_trains_every_parameter_with_every_rule(rule, kind):
    """The dense twin of each network trained by Euclidean: the rule's plain step on every
    parameter (both Adam forms are textbook Adam here)."""
    make_rule = {"adam": lambda: PaperAdam(eps=EPS), **{k: v[0] for k, v in RULES.items()}}[rule]
    ref = {"adam": RefCarriedAdam, **{k: v[1] for k, v in RULES.items()}}[rule]()
    lr = 0.02 if rule.startswith("adam") else 0.1
    model, X, y = make_model(kind)
    W, _, plain = snapshot(model)
    dense = twin(model, W, plain)
    opt = Euclidean(dense, lr, direction=make_rule())
    for _ in range(2):
        params = [p.value.copy() for p in dense.parameters()]
        dense.zero_grad()
        ops.cross_entropy(dense(X), y).backward()
        grads = [p.grad.copy() for p in dense.parameters()]
        ref.start()
        expected = [p - lr * ref.plain(str(k), g) for k, (p, g) in enumerate(zip(params, grads))]
        opt.step(X, y)
        for p, e in zip(dense.parameters(), expected):
            _close(p.value, e, "parameter")


class RefPaperAdam:
    """The paper's loop (lowrank_ref.adam, "The paper's code"), written out: moments by
    position, three applications per step with zero gradients for the untouched variables."""

    def __init__(self, lr):
        self.lr, self.t, self.mom, self.plain_m = lr, 0, {}, {}

    def apply(self, key, value, grad, shape):
        m, v = self.mom.setdefault(key, (np.zeros(shape), np.zeros(shape)))
        m *= B1
        v *= B2
        if value is None:
            return None
        blk = tuple(slice(0, n) for n in value.shape)
        if grad is not None:
            m[blk] += (1 - B1) * grad
            v[blk] += (1 - B2) * grad ** 2
        return value - self.lr * (m[blk] / (1 - B1 ** self.t)) / (
            np.sqrt(v[blk] / (1 - B2 ** self.t)) + EPS)

    def step(self, model, X, y):
        W, ranks, plain = snapshot(model)
        G0, _ = gradients(model, W, plain, X, y)
        var, caps = {}, {}
        for i in ranks:
            layer = model.layers[i]
            U0, S0, V0 = (np.array(a) for a in layer.factors)
            c = caps[i] = min(layer.n_in, layer.n_out) // 2
            var[i] = dict(U0=U0, V0=V0, K=U0 @ S0, L=V0 @ S0.T, S=S0, b=plain[f"{i}.b"],
                          shapes={"K": (layer.n_out, c), "L": (layer.n_in, c),
                                  "S": (2 * c, 2 * c), "b": (layer.n_out,)}, G=G0[i])
        for real in ("L", "K"):                                 # the K-apply, then the L-apply
            self.t += 1
            for i, v in var.items():
                sh = v["shapes"]
                v["K"] = self.apply((i, "K"), v["K"], v["G"] @ v["V0"] if real == "K" else None,
                                    sh["K"])
                v["L"] = self.apply((i, "L"), v["L"], v["G"].T @ v["U0"] if real == "L" else None,
                                    sh["L"])
                v["S"] = self.apply((i, "S"), v["S"], None, sh["S"])
                v["b"] = self.apply((i, "b"), v["b"], None, sh["b"])
        WS, plain_S = {}, dict(plain)
        for i, v in var.items():
            v["Uh"] = np.linalg.qr(np.hstack([v["K"], v["U0"]]))[0]
            v["Vh"] = np.linalg.qr(np.hstack([v["L"], v["V0"]]))[0]
            v["Sh"] = (v["Uh"].T @ v["U0"]) @ v["S"] @ (v["V0"].T @ v["Vh"])
            WS[i] = v["Uh"] @ v["Sh"] @ v["Vh"].T
            plain_S[f"{i}.b"] = v["b"]
        GS, gS = gradients(model, WS, plain_S, X, y)             # the S-pass
        self.t += 1
        new, new_ranks, new_plain = {}, {}, {}
        for i, v in var.items():
            self.apply((i, "K"), None, None, v["shapes"]["K"])
            self.apply((i, "L"), None, None, v["shapes"]["L"])
            Sh1 = self.apply((i, "S"), v["Sh"], v["Uh"].T @ GS[i] @ v["Vh"], v["shapes"]["S"])
            new_plain[f"{i}.b"] = self.apply((i, "b"), v["b"], gS[f"{i}.b"], v["shapes"]["b"])
            P_, s, Qt = np.linalg.svd(Sh1)
            r = min(int(np.sum(s > 0)), caps[i])                  # tau = 0: the cap decides
            new[i], new_ranks[i] = v["Uh"] @ P_[:, :r] @ np.diag(s[:r]) @ Qt[:r] @ v["Vh"].T, r
        for k, p in plain.items():                                # the output layer(s)
            if k not in new_plain:
                m, vv = self.plain_m.get(k, (0 * p, 0 * p))
                m, vv = B1 * m + (1 - B1) * gS[k], B2 * vv + (1 - B2) * gS[k] ** 2
                self.plain_m[k] = (m, vv)
                new_plain[k] = p - self.lr * (m / (1 - B1 ** self.t)) / (
                    np.sqrt(vv / (1 - B2 ** self.t)) + EPS)
        return new, new_ranks, new_plain


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_the_paper_adam_loop_on_every_layer_kind(kind):
    """AdaptiveBUG with PaperAdam against the loop written out: the convolution and the
    vanilla layer are trained too (the earlier PaperAdamKLS refused a Sequential and left a
    vanilla layer frozen)."""
    model, X, y = make_model(kind)
    opt = AdaptiveBUG(model, 0.02, tau=0.0, direction=PaperAdam(eps=EPS))
    ref = RefPaperAdam(0.02)
    for step in range(3):
        before = snapshot(model)[2]
        W, ranks, plain = ref.step(model, X, y)
        opt.step(X, y)
        W1, ranks1, plain1 = snapshot(model)
        assert ranks1 == ranks, (step, ranks1, ranks)
        for i in W:
            _close(W1[i], W[i], (step, i), 10.0)
        for k in plain:
            assert not np.array_equal(plain1[k], before[k]), k
            _close(plain1[k], plain[k], (step, k), 10.0)
    assert opt.direction.t == 9


def test_cli_trains_lenet5_convolutions_with_carried_adam_and_the_parallel_step(tmp_path,
                                                                                monkeypatch):
    """``train --arch lenet5 --method adaptive --optimizer adam-carried`` moves the
    convolutions' factors (earlier, Adam refused LeNet5); ``--method parallel`` trains the
    MLP and LeNet5."""
    import json

    import lowrank_ref.data
    from lowrank_ref.__main__ import main
    from lowrank_ref.data import Dataset, split_validation
    from lowrank_ref.training import TrainConfig, build_model, load_checkpoint
    rng = np.random.default_rng(0)
    X, y = rng.random((112, 784)), rng.integers(0, 10, 112)
    images = Dataset(X[:80], y[:80], X[80:], y[80:], "noise", "made up in test_optimizers.py")
    monkeypatch.setattr(lowrank_ref.data, "load",          # the CLI validates by default
                        lambda *a, validation=False, **k: split_validation(images, 16)
                        if validation else images)
    common = ["--epochs", "1", "--batch-size", "32", "--n-train", "64", "--warmup", "0"]
    out = tmp_path / "adam"
    assert main(["train", "--arch", "lenet5", "--method", "adaptive", "--optimizer",
                 "adam-carried", "--tau", "0.2", "--rank", "6", "--lr", "0.01", *common,
                 "--out", str(out)]) == 0
    config = TrainConfig.from_dict(json.loads((out / "run.json").read_text())["config"])
    assert (config.arch, config.optimizer) == ("lenet5", "adam-carried")
    start, arrays = build_model(config), load_checkpoint(out)["arrays"]
    for i in (0, 1):                                   # the two low-rank convolutions
        U, S, V = (arrays[f"layer{i}.{k}"] for k in "USV")
        W0 = start.layers[i].factors.to_dense()
        assert np.linalg.norm(U @ S @ V.T - W0) > 1e-3 * np.linalg.norm(W0), i
    assert any(k.startswith("opt.carried.0.") for k in arrays)
    for arch in ("lenet5", "mlp"):
        out = tmp_path / f"parallel-{arch}"
        assert main(["train", "--arch", arch, "--method", "parallel", "--tau", "0.2",
                     "--rank", "6", *common, "--out", str(out)]) == 0
        run = json.loads((out / "run.json").read_text())
        assert flat_options(run["config"])["method"] == "parallel" and run["status"] == "finished"
