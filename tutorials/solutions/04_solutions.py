# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Answers to the exercises of tutorial 04
#
# Try the exercises first. Each answer is checked by an `assert`.

# %%
import time

import numpy as np

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor, make_node
from lowrank_ref.gradcheck import check_grad

T_START = time.perf_counter()
rng = np.random.default_rng(40)
B, n_in, n_out = 8, 5, 3
X = rng.standard_normal((B, n_in))
T = rng.standard_normal((B, n_out))
W0 = rng.standard_normal((n_out, n_in))

# %% [markdown]
# ## 1. The gradient of the mean-squared loss
#
# With `R = X W^T - T`, `l = sum(R * R) / (2B)`: `dl/dR = R / B`, and `R` depends on `W`
# through `X W^T`, so `dl/dW = (dl/dR)^T X = R^T X / B` — again "delta transposed times the
# layer input".

# %%
def mse(W):
    R = ops.sub(ops.matmul(X, ops.transpose(W)), Tensor(T))
    return ops.mul(ops.sum(ops.mul(R, R)), 1.0 / (2 * B))


W = Tensor(W0.copy(), requires_grad=True)
mse(W).backward()
by_hand = (X @ W0.T - T).T @ X / B
print(f"||engine - by hand|| / ||by hand|| = "
      f"{np.linalg.norm(W.grad - by_hand) / np.linalg.norm(by_hand):.1e}")
assert np.allclose(W.grad, by_hand, rtol=1e-13, atol=0)
assert check_grad(mse, [W0], rng).passed

# %% [markdown]
# ## 2. A sigmoid with a wrong backward
#
# The right derivative is `s (1 - s)`; `s` alone is too large by the factor `1 / (1 - s)`,
# about 2 for pre-activations near 0. The check fails with a relative error of order one.

# %%
def make_sigmoid(correct):
    def op(x):
        s = 1.0 / (1.0 + np.exp(-x.value))

        def backward(g):
            return (g * s * (1 - s) if correct else g * s,)
        return make_node(s, (x,), backward, "sigmoid_variant")
    return op


def loss_with(act):
    return lambda W_: ops.sum(act(ops.matmul(X, ops.transpose(W_))))


good = check_grad(loss_with(make_sigmoid(True)), [W0], rng)
bad = check_grad(loss_with(make_sigmoid(False)), [W0], rng)
print(f"correct sigmoid: passed {good.passed}; g * s: passed {bad.passed}, "
      f"max relative error {bad.max_rel_error:.2f}")
assert good.passed and not bad.passed and bad.max_rel_error > 0.1

# %% [markdown]
# ## 3. The gradient of the S-mode leaf
#
# `Z = (X V) S^T U^T`. With `dZ = dL/dZ`: `dL/d(S^T) = (X V)^T dZ U`, so
# `dL/dS = U^T dZ^T X V = U^T (dL/dW) V` because `dL/dW = dZ^T X` for `Z = X W^T`.

# %%
r = 2
U = np.linalg.qr(rng.standard_normal((n_out, r)))[0]
V = np.linalg.qr(rng.standard_normal((n_in, r)))[0]
S0 = rng.standard_normal((r, r))


def loss_of_S(S):
    Z = ops.matmul(ops.matmul(ops.matmul(X, Tensor(V)), ops.transpose(S)), Tensor(U.T))
    return ops.sum(ops.mul(ops.tanh(Z), Tensor(T)))


S = Tensor(S0.copy(), requires_grad=True)
loss_of_S(S).backward()
W_full = Tensor(U @ S0 @ V.T, requires_grad=True)
ops.sum(ops.mul(ops.tanh(ops.matmul(X, ops.transpose(W_full))), Tensor(T))).backward()
expected = U.T @ W_full.grad @ V
print(f"||dL/dS - U^T (dL/dW) V|| = {np.linalg.norm(S.grad - expected):.1e}")
assert np.allclose(S.grad, expected, rtol=1e-12, atol=1e-14)
assert check_grad(loss_of_S, [S0], rng).passed

# %% [markdown]
# ## 4. A fixed-rank DLRT step, with backpropagation by hand, that passes the oracle
#
# The loss `l = -mean log softmax(Z)_{i, y_i}` of `Z = X W^T + b` has `dl/dZ = (softmax(Z) -
# Y) / B` (section 2 of the tutorial), so `G = dZ^T X` and `dl/db = 1^T dZ`. The S-step of
# the fixed-rank step needs the gradient at the Galerkin start `W~`, a new point: a second
# forward and backward. With the gradient at `W0` instead, the step is another method (the
# opt-in `passes=1` shortcut of `FixedRankBUG`): the checker fails it on the represented
# matrix of layer 0 (`matrix[0]`).

# %%
from lowrank_ref import oracle


def loss_gradients(W, b, X, y):
    """G = dl/dW and dl/db of the mean cross-entropy of Z = X W^T + b, by hand."""
    Z = X @ W.T + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dZ = P
    dZ[np.arange(len(y)), y] -= 1.0
    dZ /= len(y)
    return dZ.T @ X, dZ.sum(axis=0)


def make_fixed_rank_step(second_pass=True):
    def my_step(U0, S0, V0, b0, X, y, lr, method, tau, min_rank, max_rank):
        if method != "fixed":
            raise ValueError(f"only method='fixed', got {method!r}")
        G, gb = loss_gradients(U0 @ S0 @ V0.T, b0, X, y)
        U1, _ = np.linalg.qr(U0 @ S0 - lr * G @ V0)          # K-step
        V1, _ = np.linalg.qr(V0 @ S0.T - lr * G.T @ U0)      # L-step
        S_t = (U1.T @ U0) @ S0 @ (V0.T @ V1)                 # Galerkin start
        G_t = loss_gradients(U1 @ S_t @ V1.T, b0, X, y)[0] if second_pass else G
        S1 = S_t - lr * U1.T @ G_t @ V1                      # S-step
        return {"U0": U1, "S0": S1, "V0": V1, "b0": b0 - lr * gb, "rank0": S1.shape[0]}
    return my_step


fixed = [c for c in oracle.cases("dlrt_layer_step") if c.inputs["method"] == "fixed"]
report = oracle.check("dlrt_layer_step", make_fixed_rank_step(), golden=fixed)
print(report)
assert report.passed and report.n_cases == len(fixed) >= 3
one_pass = oracle.check("dlrt_layer_step", make_fixed_rank_step(second_pass=False),
                        golden=fixed)
print(str(one_pass).splitlines()[0], "| quantities:",
      sorted({f.quantity for f in one_pass.failures}))
assert not one_pass.passed and "matrix[0]" in {f.quantity for f in one_pass.failures}

# %%
print(f"solutions 04 finished in {time.perf_counter() - T_START:.1f} s")
