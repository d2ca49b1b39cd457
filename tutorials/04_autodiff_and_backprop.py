# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 04 — Reverse-mode autodiff and backpropagation, checked
#
# Training a network is integrating the gradient flow `dW/dt = -dL/dW` ([SZKCT22]);
# DLRT (tutorial 05) needs the gradient *through the factors* of low-rank layers. The
# package has a small reverse-mode engine (`lowrank_ref.autodiff`, ops in
# `lowrank_ref.ops`), written like micrograd/minitorch: every op computes its value and
# records a `backward(g)` that maps `g = dL/d(output)` to `dL/d(input)` — a
# vector-Jacobian product ([GW08] Griewank & Walther, *Evaluating Derivatives*;
# backpropagation [RHW86] Rumelhart, Hinton & Williams 1986). `loss.backward()` visits the
# graph in reverse topological order and accumulates `.grad` on the leaves.
#
# This tutorial
#
# 1. runs a two-layer network forward with the engine;
# 2. derives backpropagation for it by hand with NumPy and checks the engine's gradients;
# 3. runs the gradient checker `gradcheck.check_grad` (central differences along random
#    directions) and shows that it catches a planted wrong gradient;
# 4. shows how the low-rank layer gets the gradients of the K-, L- and S-steps of DLRT
#    from the same engine.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor, make_node
from lowrank_ref.gradcheck import check_grad
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.nn import MLP, Dense

from lowrank_ref.figures.display import show   # plt.show(); a PNG file only on request
from lowrank_ref.threads import set_blas_threads

set_blas_threads()   # the package's BLAS thread count (1) for this script: small products
                     # and factorisations are much slower with a thread pool (lowrank_ref.threads)
FAST = os.environ.get("LOWRANK_REF_FAST") == "1"
T_START = time.perf_counter()
rng = np.random.default_rng(4)
batch, n_in, n_hidden, n_out = (16, 12, 10, 5) if FAST else (64, 30, 20, 7)
print(f"FAST={FAST}: batch {batch}, widths {n_in} -> {n_hidden} -> {n_out}")

# %% [markdown]
# ## 1. Forward
#
# Layers follow the PyTorch convention (docs/design.md, section "Notation"): `Z = X @ W.T + b` with `W` of shape
# `(n_out, n_in)`. The network is
#
# $$Z_1 = X W_1^\top + b_1,\quad H = \mathrm{relu}(Z_1),\quad Z_2 = H W_2^\top + b_2,\quad
#   \ell = -\frac1B \sum_{i=1}^B \log \mathrm{softmax}(Z_2)_{i, y_i}.$$

# %%
X = rng.standard_normal((batch, n_in))
y = rng.integers(0, n_out, batch)
model = MLP([Dense(n_in, n_hidden, rng), Dense(n_hidden, n_out, rng)], activation="relu")
W1, b1 = model.layers[0].W, model.layers[0].b
W2, b2 = model.layers[1].W, model.layers[1].b
b1.value[:] = rng.standard_normal(n_hidden) * 0.1    # nonzero biases: their gradients show
b2.value[:] = rng.standard_normal(n_out) * 0.1

loss = ops.cross_entropy(model(X), y)
print(f"loss = {loss.item():.6f} (log {n_out} = {np.log(n_out):.6f} for uniform predictions)")

# the same forward in plain NumPy
Z1 = X @ W1.value.T + b1.value
H = np.maximum(Z1, 0)
Z2 = H @ W2.value.T + b2.value
Zs = Z2 - Z2.max(axis=1, keepdims=True)
P = np.exp(Zs) / np.exp(Zs).sum(axis=1, keepdims=True)     # softmax
loss_np = -np.mean(np.log(P[np.arange(batch), y]))
assert abs(loss.item() - loss_np) <= 1e-14 * abs(loss_np)

# %% [markdown]
# ## 2. Backward by hand
#
# The chain rule, from the loss back (with `Y` the one-hot labels and `[Z1 > 0]` the
# derivative of relu, taken to be 0 at the kink):
#
# $$\frac{\partial\ell}{\partial Z_2} = \frac{\mathrm{softmax}(Z_2) - Y}{B},\quad
#   \frac{\partial\ell}{\partial W_2} = \Big(\frac{\partial\ell}{\partial Z_2}\Big)^{\!\top} H,\quad
#   \frac{\partial\ell}{\partial b_2} = \mathbf 1^\top \frac{\partial\ell}{\partial Z_2},\quad
#   \frac{\partial\ell}{\partial H} = \frac{\partial\ell}{\partial Z_2} W_2,$$
#
# $$\frac{\partial\ell}{\partial Z_1} = \frac{\partial\ell}{\partial H}\odot[Z_1 > 0],\quad
#   \frac{\partial\ell}{\partial W_1} = \Big(\frac{\partial\ell}{\partial Z_1}\Big)^{\!\top} X,\quad
#   \frac{\partial\ell}{\partial b_1} = \mathbf 1^\top \frac{\partial\ell}{\partial Z_1}.$$
#
# Note the shape of a weight gradient: `dL/dW = dZ^T X_in`, a sum of `B` outer products —
# the "delta" `dZ = dL/dZ` times the layer input. DLRT uses exactly this (section 4). In all
# the tutorials `G = dL/dW` is the gradient of a weight and `dZ` the delta
# (docs/design.md, section "Notation").

# %%
Yhot = np.eye(n_out)[y]
dZ2 = (P - Yhot) / batch
dW2 = dZ2.T @ H
db2 = dZ2.sum(axis=0)
dH = dZ2 @ W2.value
dZ1 = dH * (Z1 > 0)
dW1 = dZ1.T @ X
db1 = dZ1.sum(axis=0)

model.zero_grad()
loss = ops.cross_entropy(model(X), y)
loss.backward()
for name, by_hand, param in (("W1", dW1, W1), ("b1", db1, b1), ("W2", dW2, W2), ("b2", db2, b2)):
    rel = np.linalg.norm(param.grad - by_hand) / np.linalg.norm(by_hand)
    print(f"d loss / d {name}: shape {param.grad.shape}, "
          f"||engine - by hand|| / ||by hand|| = {rel:.1e}")
    assert rel <= 1e-13

# gradients accumulate until reset (the engine's documented semantics)
loss.backward()
assert np.allclose(W1.grad, 2 * dW1)
model.zero_grad()

# %% [markdown]
# ## 3. The gradient check, and a planted bug
#
# `check_grad(f, inputs, rng)` compares the directional derivative `<grad f(x), d>` from one
# backward with the central difference `(f(x + eps d) - f(x - eps d)) / (2 eps)`, for random
# unit directions `d` that move all inputs together and each input alone. The step
# `eps = eps64^(1/3) ≈ 6e-6` balances the truncation error `eps^2 |f'''| / 6` against the
# rounding error `eps64 |f| / eps` of the quotient: both are about `eps64^(2/3) ≈ 4e-11`
# **times the size of `f`** (and its third derivative) — an *absolute* error, not one
# relative to the directional derivative. The printed `rel` divides it by
# `|<grad f, d>|`, so a direction along which `f` hardly changes shows a larger relative
# error: below, every absolute error is under `10 eps64^(2/3) |f|`, and the largest relative
# error belongs to a direction whose derivative is smaller than most (below the median). The
# default tolerance `rtol = 1.1e-6` is far above these errors and far below a 0.1 % error in
# a backward. (Pre-activations close to the relu kink would spoil the difference quotient;
# with continuous random data that has probability `O(eps)`.)

# %%
def two_layer_loss(W1_, b1_, W2_, b2_):
    Z1_ = ops.add(ops.matmul(X, ops.transpose(W1_)), b1_)
    Z2_ = ops.add(ops.matmul(ops.relu(Z1_), ops.transpose(W2_)), b2_)
    return ops.cross_entropy(Z2_, y)


params = [W1.value.copy(), b1.value.copy(), W2.value.copy(), b2.value.copy()]
res = check_grad(two_layer_loss, params, rng, n_directions=3)
print(res)
assert res.passed and res.max_rel_error < 1e-8
f0 = two_layer_loss(*(Tensor(p) for p in params)).item()
abs_err = max(d["abs_error"] for d in res.details)
worst = max(res.details, key=lambda d: d["rel_error"])
median_deriv = np.median([abs(d["analytic"]) for d in res.details])
print(f"|f| = {f0:.3f}; largest absolute error {abs_err:.1e} = "
      f"{abs_err / (np.finfo(float).eps ** (2 / 3) * abs(f0)):.1f} x eps64^(2/3) |f|; "
      f"the largest relative error {worst['rel_error']:.1e} is at |<grad f, d>| = "
      f"{abs(worst['analytic']):.1e} (median over the directions {median_deriv:.1e})")
assert abs_err <= 10 * np.finfo(float).eps ** (2 / 3) * max(abs(f0), 1.0)

# %% [markdown]
# The balance, measured: the error of the central difference along one random direction, for
# steps `eps` from `1e-12` to `1e-1`. Left of the minimum the rounding error
# `~ eps64 |f| / eps` dominates, right of it the truncation error `~ eps^2`; the checker's
# step `eps64^(1/3)` (dotted) sits at the bottom of the V. Near `eps = 1e-3` the error jumps:
# the step now crosses the kink of a relu (some pre-activation `Z1` changes sign between
# `x - eps d` and `x + eps d`), where the loss has no second derivative.

# %%
leaves = [Tensor(p, requires_grad=True) for p in params]
two_layer_loss(*leaves).backward()
direction = [rng.standard_normal(p.shape) for p in params]
norm_d = np.sqrt(sum(np.sum(d * d) for d in direction))
direction = [d / norm_d for d in direction]
exact = sum(np.sum(leaf.grad * d) for leaf, d in zip(leaves, direction))
steps = np.logspace(-12, -1, 34)
fd_error = np.array([abs((two_layer_loss(*(Tensor(p + e * d) for p, d in zip(params, direction))).item()
                          - two_layer_loss(*(Tensor(p - e * d) for p, d in zip(params, direction))).item())
                         / (2 * e) - exact) for e in steps])
eps_checker = np.finfo(float).eps ** (1 / 3)
best = steps[np.argmin(fd_error)]
print(f"smallest error {fd_error.min():.1e} at eps = {best:.1e}; the checker's eps = {eps_checker:.1e}")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.loglog(steps, np.maximum(fd_error, 1e-17), "o-", ms=3, label="|central difference - <grad f, d>|")
ax.loglog(steps, np.finfo(float).eps * abs(f0) / steps, "k--", lw=1, label="eps64 |f| / eps (rounding)")
k4 = np.argmin(abs(np.log(steps / 1e-4)))
ax.loglog(steps, steps ** 2 * fd_error[k4] / steps[k4] ** 2, "k:", lw=1, label="c eps^2 (truncation)")
ax.axvline(eps_checker, color="C3", ls=":", label="eps64^(1/3), the checker's step")
ax.set_ylim(1e-13, 1)
ax.set_xlabel("step eps"); ax.set_ylabel("absolute error"); ax.legend(fontsize=8)
ax.set_title("the error of a central difference", fontsize=10)
fig.tight_layout()
show(fig, "04_finite_difference_error")

# %% [markdown]
# Now a wrong backward: `tanh` whose derivative is off by 0.1 % (`1.001 (1 - tanh^2)`), and
# one with a classic slip, `1 - tanh` instead of `1 - tanh^2`. An op is a forward value, its
# parents and a backward closure, passed to `make_node`:

# %%
def make_tanh(scale=1.0, squared=True):
    def op(x):
        t = np.tanh(x.value)

        def backward(g):
            return (g * scale * (1 - (t * t if squared else t)),)
        return make_node(t, (x,), backward, "tanh_variant")
    return op


def loss_with(act):
    def f(W1_, b1_, W2_, b2_):
        Z1_ = ops.add(ops.matmul(X, ops.transpose(W1_)), b1_)
        Z2_ = ops.add(ops.matmul(act(Z1_), ops.transpose(W2_)), b2_)
        return ops.cross_entropy(Z2_, y)
    return f


for label, act in (("correct tanh", make_tanh()), ("tanh' off by 0.1 %", make_tanh(1.001)),
                   ("1 - tanh instead of 1 - tanh^2", make_tanh(squared=False))):
    r_ = check_grad(loss_with(act), params, rng, n_directions=2)
    print(f"{label:32s}: passed = {r_.passed}, max relative error {r_.max_rel_error:.1e}")
    assert r_.passed == (label == "correct tanh")

# %% [markdown]
# ## 4. Gradients through the factors of a low-rank layer
#
# A `LowRankDense` layer stores `W = U S V^T` as `U (n_out, r)`, `S (r, r)`, `V (n_in, r)`
# and computes `Z = ((X V) S^T) U^T + b` — three thin products, never the dense `W`
# ([SZKCT22]). It has one *mode* per sub-step of the BUG integrator (which [SZKCT22] call
# "KLS": K- and L-steps, then the S-step; tutorial 02), each making a different matrix the
# trainable leaf:
#
# | mode | forward | gradient of the leaf |
# |---|---|---|
# | `"K"` | `X V0 K^T`, `K = U0 S0` | `(dL/dW) V0` |
# | `"L"` | `X L U0^T`, `L = V0 S0^T` | `(dL/dW)^T U0` |
# | `"S"` | `X V S^T U^T` | `U^T (dL/dW) V` |
# | `"W"` | `X V0 S0^T U0^T` + a *tap* | records `dZ = dL/dZ`, so `G = dL/dW = dZ^T X` |
#
# These are the right-hand sides of [SZKCT22] with `F = -dL/dW`. We check all
# four against the dense gradient of a `Dense` layer holding `W = U S V^T`.

# %%
r = 3
lr_layer = LowRankDense(n_in, n_hidden, r, rng)
U0, S0, V0 = lr_layer.factors
head = Dense(n_hidden, n_out, rng)
dense_layer = Dense(n_in, n_hidden, rng)
dense_layer.W.value[:] = U0 @ S0 @ V0.T
dense_layer.b.value[:] = lr_layer.b.value

dense_model = MLP([dense_layer, head])
dense_model.zero_grad()
ops.cross_entropy(dense_model(X), y).backward()
G_W = dense_layer.W.grad.copy()                       # G = dL/dW, (n_hidden, n_in)

lr_model = MLP([lr_layer, head])
expected = {"K": G_W @ V0, "L": G_W.T @ U0, "S": U0.T @ G_W @ V0}
for mode in ("K", "L", "S"):
    lr_layer.set_mode(mode)
    lr_model.zero_grad()
    ops.cross_entropy(lr_model(X), y).backward()
    leaf = {"K": lr_layer.K, "L": lr_layer.L, "S": lr_layer.S_hat}[mode]
    rel = np.linalg.norm(leaf.grad - expected[mode]) / np.linalg.norm(expected[mode])
    print(f"mode {mode}: leaf gradient {leaf.grad.shape}, vs dense formula: {rel:.1e}")
    assert rel <= 1e-12

lr_layer.set_mode("W")
lr_model.zero_grad()
ops.cross_entropy(lr_model(X), y).backward()
taps = lr_layer.taps
G_from_tap = taps["dZ"].T @ taps["X"]                 # dZ^T X: formed here only to check
rel = np.linalg.norm(G_from_tap - G_W) / np.linalg.norm(G_W)
rel_thin = np.linalg.norm(taps["dZ"].T @ taps["XV"] - G_W @ V0) / np.linalg.norm(G_W @ V0)
print(f"mode W: dZ^T X vs dense dL/dW: {rel:.1e}; "
      f"thin product dZ^T (X V0) vs G V0: {rel_thin:.1e}")
assert rel <= 1e-12 and rel_thin <= 1e-12

# and the factor-mode gradients pass the finite-difference check too
def loss_of_K(K):
    Z = ops.add(ops.matmul(ops.matmul(X, Tensor(V0)), ops.transpose(K)), lr_layer.b.value)
    return ops.cross_entropy(ops.add(ops.matmul(ops.relu(Z), ops.transpose(Tensor(head.W.value))),
                                     head.b.value), y)


res_K = check_grad(loss_of_K, [U0 @ S0], rng)
print(f"check_grad on the K-step loss: passed = {res_K.passed}, "
      f"max rel. error {res_K.max_rel_error:.1e}")
assert res_K.passed

# %% [markdown]
# ## What the real-scale method does differently
#
# * A framework (PyTorch, JAX) provides the engine, with fused kernels, GPU execution and
#   memory planning; the ops here are NumPy one-liners recomputing nothing and storing every
#   intermediate.
# * The dense `G = dL/dW = dZ^T X` is never formed for a low-rank layer: DLRT needs only
#   `dZ^T (X V0)`, `X^T (dZ U0)` and `(dZ U_hat)^T (X V_hat)`, each `O(B (n_in + n_out) r)`.
#   Section 4 formed `dZ^T X` only to check it.
# * The published DLRT code computes the K-, L- and S-gradients with three separate
#   forward/backward passes (modes `"K"`, `"L"`, `"S"`); `AdaptiveBUG(passes=1)` gets all
#   three from one backward in mode `"W"`, using the recorded `dZ` and `X` (tutorial 05).
# * Gradient checks run in float64 on small problems, as here; training itself may run in
#   float32.

# %%
print(f"tutorial 04 finished in {time.perf_counter() - T_START:.1f} s")

# %% [markdown]
# ## Recap
#
# * The engine records, for every op, its value and a backward that maps `dL/d(output)` to
#   `dL/d(input)`; `backward()` visits the graph in reverse topological order and adds the
#   gradients up on the leaves (until `zero_grad`).
# * Backpropagation by hand for a two-layer network gives the same gradients; a weight's
#   gradient is `dZ^T X_in`, the delta `dZ = dL/dZ` times the layer's input.
# * `check_grad` compares one backward with central differences along random directions;
#   their error is about `eps64^(2/3) |f|`, absolute, so a wrong backward (even by 0.1 %)
#   fails while a right one passes with room to spare.
# * A low-rank layer has one mode per DLRT sub-step; the leaf gradients are the projected
#   dense gradients `G V0`, `G^T U0`, `U^T G V`, and mode "W" records `X` and `dZ` so that all
#   three come from one backward without forming `G`.

# %% [markdown]
# ## Where this lives in the library
#
# | claim | function | module | test |
# |---|---|---|---|
# | gradients accumulate until `zero_grad` | `Tensor.backward` | `lowrank_ref.autodiff` | `tests/test_autodiff.py::test_accumulation_twice_gives_twice_and_zero_grad_resets` |
# | an op is a forward value, parents and a backward | `make_node` | `lowrank_ref.autodiff` | `tests/test_autodiff.py::test_topological_order_puts_parents_first` |
# | every op against central differences | `check_grad` | `lowrank_ref.gradcheck` | `tests/test_ops.py::test_op_gradient_float64` |
# | a planted wrong backward fails the check | `check_grad` | `lowrank_ref.gradcheck` | `tests/test_gradcheck.py::test_planted_wrong_backward_fails_and_correct_one_passes` |
# | default tolerances come from one table | `check_grad` | `lowrank_ref.gradcheck` | `tests/test_gradcheck.py::test_default_tolerances_come_from_the_table` |
# | the network's gradient by hand | `MLP`, `Dense` | `lowrank_ref.nn` | `tests/test_nn.py::test_dense_gradient_check_and_closed_form` |
# | mode gradients are the projected dense gradient | `LowRankDense.set_mode` | `lowrank_ref.lowrank_layers` | `tests/test_dlrt.py::test_mode_gradients_are_the_projected_dense_gradient` |
# | every mode's gradient checked | `LowRankDense` | `lowrank_ref.lowrank_layers` | `tests/test_dlrt.py::test_every_mode_gradient_checked` |
#
# ## Exercises
#
# Answers: `tutorials/solutions/04_solutions.py` (each checked by an `assert`).
#
# 1. Derive `dl/dW` for the mean-squared loss `l = ||X W^T - T||_F^2 / (2B)` by hand and
#    check it against the engine (`ops.sub`, `ops.mul`, `ops.sum`).
# 2. Plant a bug in a sigmoid: a backward `g * s` instead of `g * s (1 - s)`. Does
#    `check_grad` catch it? With how large a relative error?
# 3. Mode `"S"` makes `S` the leaf of `X V S^T U^T`. Show with the chain rule that its
#    gradient is `U^T (dL/dW) V`, and check it on a layer of your own.
# 4. **Backpropagation by hand in a DLRT step that passes the oracle.** The oracle family
#    `dlrt_layer_step` is one optimiser step on one low-rank layer `Z = X W^T + b`,
#    `W = U0 S0 V0^T`, with the mean cross-entropy of `Z` as the loss. Write the gradients
#    `G = dL/dW` and `dL/db` by hand (section 2: `dZ = (softmax(Z) - Y) / B`,
#    `G = dZ^T X`), then the fixed-rank step of tutorial 02 with one Euler step per sub-flow:
#    `K1 = U0 S0 - lr G V0`, `L1 = V0 S0^T - lr G^T U0`, `U1 = qr(K1)`, `V1 = qr(L1)`, the
#    Galerkin start `S~ = (U1^T U0) S0 (V0^T V1)`, **a second gradient** `G~` at
#    `W~ = U1 S~ V1^T`, and `S1 = S~ - lr U1^T G~ V1`; the bias takes `b0 - lr dL/db`.
#    As `my_step(U0, S0, V0, b0, X, y, lr, method, tau, min_rank, max_rank)` returning
#    `{"U0": U1, "S0": S1, "V0": V1, "b0": b1, "rank0": r}`, it passes when
#    `oracle.check("dlrt_layer_step", my_step, golden=fixed).passed` is true, with `fixed`
#    the cases whose `inputs["method"]` is `"fixed"`. What does the checker say if the
#    S-step uses the gradient at `W0` instead of `G~`?
