# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 07 — Low-rank convolutions: the unfold, and a forward that never forms the kernel
#
# DLRT ([SZKCT22]) trains a weight *matrix* `W = U S V^T`. A convolution has a kernel
# `W` of shape `(c_out, c_in, kh, kw)`, a 4-d tensor. The step that makes DLRT apply
# unchanged is the **unfold** (im2col, [CPS06] Chellapilla, Puri & Simard 2006): every
# output pixel of a convolution is the dot product of one flattened input patch with one
# flattened filter, so the convolution is the matrix `W_mat = W.reshape(c_out, c_in*kh*kw)`
# applied to the *rows* of the patch matrix. This tutorial
#
# 1. builds the patch matrix of a tiny image by hand and checks that a convolution is one
#    matrix product on it;
# 2. shows that the unfold's backward is its adjoint `col2im`, and checks it;
# 3. factorises the kernel matrix, `W_mat = U S V^T`, and shows why the forward
#    `patches @ V @ S^T @ U^T` never forms the kernel (and what that saves);
# 4. shows that DLRT's gradients of a convolution are those of a dense layer whose rows are
#    the patches, and trains a small convolutional network with the rank-adaptive step.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor
from lowrank_ref.conv import LowRankConv2d
from lowrank_ref.dlrt import AdaptiveBUG, parameter_counts
from lowrank_ref.gradcheck import check_grad
from lowrank_ref.integrators import bug_step
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.networks import Flatten, MaxPool2d, ReLU, Sequential
from lowrank_ref.nn import Dense
from lowrank_ref.figures.display import show   # plt.show(); a PNG file only on request
from lowrank_ref.threads import set_blas_threads

set_blas_threads()   # the package's BLAS thread count (1) for this script: small products
                     # and factorisations are much slower with a thread pool (lowrank_ref.threads)

FAST = os.environ.get("LOWRANK_REF_FAST") == "1"
T_START = time.perf_counter()
rng = np.random.default_rng(7)
N_STEPS = 120 if FAST else 400
print(f"FAST={FAST}: {N_STEPS} training steps in section 4")

# %% [markdown]
# ## 1. The unfold: a convolution is a matrix product on patches
#
# For one image with `c_in = 2` channels of 4 x 4 pixels and a 3 x 3 kernel (stride 1, no
# padding) there are 2 x 2 output pixels. Row `(n, i, j)` of the patch matrix holds the
# patch under output pixel `(i, j)`, flattened in the order `(channel, row, column)` — the
# order of `W.reshape(c_out, -1)`.

# %%
x = np.arange(32.0).reshape(1, 2, 4, 4)
kh = kw = 3
rows = []
for i in range(2):
    for j in range(2):
        rows.append(x[0, :, i:i + kh, j:j + kw].reshape(-1))    # (c, a, b) order
patches_by_hand = np.array(rows)
patches = ops.im2col(x, kh, kw)
print("patch matrix", patches.shape, "(output pixels x c_in*kh*kw)")
print(patches[:, :9])
assert np.array_equal(patches, patches_by_hand)

W = rng.standard_normal((3, 2, kh, kw))                        # c_out = 3 filters
b = rng.standard_normal(3)
W_mat = W.reshape(3, -1)                                        # (c_out, c_in kh kw)
Z_rows = patches @ W_mat.T + b                                  # (output pixels, c_out)
Z = Z_rows.reshape(1, 2, 2, 3).transpose(0, 3, 1, 2)            # rows back to NCHW
direct = np.array([[[np.sum(x[0, :, i:i + kh, j:j + kw] * W[o]) + b[o] for j in range(2)]
                    for i in range(2)] for o in range(3)])
assert np.allclose(Z[0], direct) and np.allclose(Z, ops.conv2d(x, W, b).value)
print("conv2d == rows_to_nchw(im2col(x) @ W_mat^T + b): checked against a direct loop")

# %% [markdown]
# Stride and padding only change *which* patches are taken: zeros are added around the
# image, and the patch corners move by `stride`. The package's graph op `ops.unfold` is
# this `im2col`, and `ops.rows_to_nchw` turns output rows back into images.

# %%
x5 = rng.standard_normal((2, 2, 7, 6))
W5 = rng.standard_normal((4, 2, 3, 3))
C5 = ops.unfold(Tensor(x5), 3, 3, stride=2, padding=1)
Z5 = ops.rows_to_nchw(ops.matmul(C5, W5.reshape(4, -1).T), 2, 4, 3)
assert np.allclose(Z5.value, ops.conv2d(x5, W5, stride=2, padding=1).value)
print("stride 2, padding 1:", C5.shape, "patch rows ->", Z5.shape)

# %% [markdown]
# ## 2. The backward of the unfold is its adjoint, col2im
#
# The unfold is linear, `C = A x`, so the gradient of a loss through it is `A^T (dL/dC)`:
# every entry of a patch row is added back onto the pixel it was copied from (pixels
# covered by several patches collect several contributions; entries that came from the
# padding are dropped). That map is `col2im`, and `<im2col(x), C> = <x, col2im(C)>`:

# %%
C_any = rng.standard_normal(C5.shape)
lhs = np.sum(ops.im2col(x5, 3, 3, 2, 1) * C_any)
rhs = np.sum(x5 * ops.col2im(C_any, x5.shape, 3, 3, 2, 1))
print(f"<im2col(x), C> = {lhs:.12f}\n<x, col2im(C)> = {rhs:.12f}")
assert abs(lhs - rhs) <= 1e-12 * abs(lhs)

coverage = ops.col2im(np.ones((9, 9)), (1, 1, 5, 5), 3, 3, 1, 0)[0, 0]
print("how many 3x3 patches cover each pixel of a 5x5 image:\n", coverage.astype(int))
C_weights = rng.standard_normal((2 * 4 * 3, 18))
res = check_grad(lambda t: ops.sum(ops.mul(ops.tanh(ops.unfold(t, 3, 3, 2, 1)),
                                           Tensor(C_weights))), [x5], rng)
print(res.__str__().splitlines()[0])
assert res.passed

# %% [markdown]
# ## 3. A low-rank convolution never forms its kernel
#
# `LowRankConv2d` keeps the kernel *matrix* factored, `W_mat = U S V^T` with `U (c_out, r)`
# and `V (c_in kh kw, r)`. Its forward is
#
# `Z_rows = (patches @ V) @ (U S)^T + b`,
#
# two thin products over the rows, after the small `U S` (`c_out x r`) is formed once
# (`ops.low_rank_linear`). Forming the kernel first (`U S V^T`, then a dense convolution)
# would cost the dense convolution, `rows x n_in x c_out` multiply-adds, whatever the rank;
# the factored forward costs `rows x (n_in + c_out) x r + c_out x r^2`. For LeNet5's second
# convolution (20 -> 50 channels, 5 x 5, on 12 x 12 maps: 64 output pixels per image) at
# rank 8, for a batch of 128:

# %%
n_rows, n_in, c_out, r = 128 * 64, 20 * 25, 50, 8
dense_madds = n_rows * n_in * c_out
factored_madds = n_rows * (n_in + c_out) * r + c_out * r * r
print(f"dense forward    {dense_madds / 1e6:7.1f} M multiply-adds")
print(f"factored forward {factored_madds / 1e6:7.1f} M multiply-adds "
      f"({dense_madds / factored_madds:.1f}x fewer)")
assert factored_madds < dense_madds / 5

layer = LowRankConv2d(2, 4, 3, rank=2, rng=rng, stride=2, padding=1)
kernel = layer.kernel()                     # formed here only to check the layer
assert np.allclose(layer(x5).value, ops.conv2d(x5, kernel, layer.b.value, stride=2,
                                               padding=1).value)
print("LowRankConv2d(x) == conv2d(x, U S V^T reshaped): checked; the layer itself only "
      "multiplies the patches by V, S^T and U^T")

# %% [markdown]
# The same holds for training. DLRT needs `G V0` and `G^T U0` with `G = dL/dW_mat`, the
# gradient of the kernel matrix. With `dZ` the output gradient in rows and `X` the patch
# matrix, `G = dZ^T X` (summed over the batch *and* the output positions: that is exactly
# the kernel gradient of a convolution), so `G V0 = dZ^T (X V0)` and
# `G^T U0 = X^T (dZ U0)` — the formulas of a dense layer with the patches as its batch. In
# mode "W" the layer records those arrays (`layer.taps`):

# %%
loss_weights = Tensor(rng.standard_normal(layer(x5).shape))
W_leaf = Tensor(kernel, requires_grad=True)
ops.sum(ops.mul(ops.tanh(ops.conv2d(x5, W_leaf, layer.b.value, stride=2, padding=1)),
                loss_weights)).backward()
G = W_leaf.grad.reshape(4, -1)             # the dense kernel gradient, as a matrix
ops.sum(ops.mul(ops.tanh(layer(x5)), loss_weights)).backward()
t = layer.taps
print("taps:", {k: v.shape for k, v in t.items()})
assert np.allclose(t["dZ"].T @ t["XV"], G @ layer.V)        # G V0
assert np.allclose(t["X"].T @ t["dZ_U"], G.T @ layer.U)     # G^T U0

# %% [markdown]
# So a fixed-rank DLRT step on a convolution *is* the BUG integrator ([CL22]) on its kernel
# matrix. With a loss linear in the kernel (its gradient does not change along the step)
# the two agree to rounding:

# %%
from lowrank_ref.dlrt import FixedRankBUG

conv = LowRankConv2d(2, 4, 3, rank=2, rng=rng, stride=2, padding=1)
weights = rng.standard_normal(conv(x5).shape)
G_lin = weights.transpose(0, 2, 3, 1).reshape(-1, 4).T @ ops.im2col(x5, 3, 3, 2, 1)
Y0 = conv.factors
FixedRankBUG(Sequential([conv, Flatten()]), lr=0.2,
             loss_fn=lambda Z, _y: ops.sum(ops.mul(Z, Tensor(weights.reshape(Z.shape))))
             ).step(x5, None)
Y_bug = bug_step(Y0, lambda t_, A: -G_lin, 0.0, 0.2, inner="euler")
gap = np.linalg.norm(conv.factors.to_dense() - Y_bug.to_dense()) / np.linalg.norm(Y_bug.to_dense())
print(f"FixedRankBUG step vs bug_step on the kernel matrix: relative difference {gap:.1e}")
assert gap < 1e-12

# %% [markdown]
# ## 4. Rank-adaptive training of a small convolutional network
#
# A LeNet-like network on made-up 12 x 12 images of three classes (a horizontal, a vertical
# or a diagonal bar at a random place, with noise): two low-rank convolutions, a low-rank
# linear layer and a dense classifier, trained by `AdaptiveBUG` from full rank. The
# optimiser does not know which layers are convolutions: it finds every low-rank layer by
# its base class and uses the taps.

# %%
def bar_images(n, rng):
    X = 0.3 * rng.standard_normal((n, 1, 12, 12))
    y = rng.integers(0, 3, n)
    for k in range(n):
        i, j = rng.integers(2, 10, 2)
        if y[k] == 0:
            X[k, 0, i, j - 2:j + 3] += 1.0
        elif y[k] == 1:
            X[k, 0, i - 2:i + 3, j] += 1.0
        else:
            for d in range(-2, 3):
                X[k, 0, i + d, j + d] += 1.0
    return X, y


X_train, y_train = bar_images(512, rng)
X_test, y_test = bar_images(256, rng)
model = Sequential([LowRankConv2d(1, 8, 3, 8, rng), ReLU(), MaxPool2d(2),
                    LowRankConv2d(8, 16, 3, 16, rng), ReLU(), Flatten(),
                    LowRankDense(144, 32, 32, rng), ReLU(), Dense(32, 3, rng)],
                   input_shape=(1, 12, 12))
print("starting ranks:", parameter_counts(model)["ranks"])
opt = AdaptiveBUG(model, lr=0.05, tau=0.15, momentum=0.9)
history = []
for step in range(N_STEPS):
    idx = rng.integers(0, len(y_train), 64)
    loss = opt.step(X_train[idx], y_train[idx]).loss
    history.append((loss, *parameter_counts(model)["ranks"][:3]))
acc = float(np.mean(model.predict(X_test).argmax(1) == y_test))
counts = parameter_counts(model)
print(f"after {N_STEPS} steps: loss {history[-1][0]:.3f}, test accuracy {100 * acc:.1f}%, "
      f"ranks {counts['ranks'][:3]}, evaluation compression {100 * counts['eval_cr']:.1f}%")
assert history[-1][0] < 0.5 * history[0][0] and acc > 0.8

# %% [markdown]
# **What the compression counts.** The evaluation parameters of a low-rank layer are
# `r (n_in + n_out)` (the factors `U S` and `V`), of a dense one `n_in n_out`. The factored
# form is smaller only while `r < n_in n_out / (n_in + n_out)`: for the first convolution,
# `n_out = 8` filters of `n_in = 1 * 3 * 3 = 9` entries, that is `r < 72 / 17 ≈ 4.2`. At rank
# 5, for example, its factors hold 85 numbers against the 72 of its dense kernel (the table
# below has the rank this run ended at): the low-rank form of
# such a small layer *costs* memory, and the overall compression printed above comes from
# the other two layers. Per layer:

# %%
print(f"{'layer':16s} {'n_out x n_in':>12s} {'rank':>5s} {'dense':>7s} {'factored':>9s}  "
      f"break-even rank")
per_layer = 0
for name, layer in zip(["conv 1->8", "conv 8->16", "linear 144->32", "dense 32->3"],
                       [l_ for l_ in model.layers if hasattr(l_, "n_in")]):
    dense_n = layer.n_in * layer.n_out
    r_ = getattr(layer, "rank", None)
    factored = dense_n if r_ is None else r_ * (layer.n_in + layer.n_out)
    per_layer += factored
    print(f"{name:16s} {layer.n_out:5d} x {layer.n_in:<5d} {r_ if r_ else '-':>5} {dense_n:7d} "
          f"{factored:9d}  " + (f"{dense_n / (layer.n_in + layer.n_out):.1f}" if r_ else "-"))
print(f"total {per_layer} evaluation parameters = parameter_counts: {counts['eval_params']}")
assert per_layer == counts["eval_params"]

# %% [markdown]
# A practical implementation keeps such a layer dense, or caps its rank below the
# break-even rank (`max_rank`). Exercise 3 asks the same question of the time a forward
# takes, for LeNet5's first convolution.

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
ax0.imshow(ops.im2col(X_train[:1], 3, 3), aspect="auto", cmap="gray", interpolation="nearest")
ax0.set_title("patch matrix of one 12x12 image\n(100 output pixels x 9 kernel entries)",
              fontsize=9)
ax0.set_xlabel("kernel entry (row-major 3x3)")
ax0.set_ylabel("output pixel (i, j)")
H = np.array(history)
for k, name in enumerate(["conv 1->8", "conv 8->16", "linear 144->32"]):
    ax1.plot(H[:, k + 1], label=name)
ax1.set_xlabel("step")
ax1.set_ylabel("rank")
ax1.set_title(f"rank-adaptive DLRT (tau 0.15): test accuracy {100 * acc:.1f}%", fontsize=9)
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3)
fig.tight_layout()
show(fig, "07_unfold_and_ranks")

# %% [markdown]
# LeNet5 on MNIST with the paper's settings is `python -m lowrank_ref train --arch lenet5
# --method adaptive --tau 0.2`; the table of [SZKCT22] is reproduced by the one `sweep`
# command of docs/reproduce/02_lenet5_table.md.

# %%
print(f"tutorial 07 finished in {time.perf_counter() - T_START:.1f} s")

# %% [markdown]
# ## Recap
#
# * A convolution is the kernel matrix `W.reshape(c_out, c_in kh kw)` applied to the rows of
#   the patch matrix (the unfold, im2col); the unfold's backward is its adjoint, col2im.
# * A low-rank convolution keeps `U S V^T` and multiplies the patches by `V`, then by
#   `(U S)^T`: it never forms the kernel, and costs `rows (n_in + c_out) r` instead of
#   `rows n_in c_out`, which pays off only for `r < n_in c_out / (n_in + c_out)`.
# * DLRT's gradients of a convolution are those of a dense layer whose rows are the patches,
#   so the optimisers train convolutions unchanged; for a small first layer the factored
#   form can store more numbers than the dense kernel.

# %% [markdown]
# ## Where this lives in the library
#
# | claim | function | module | test |
# |---|---|---|---|
# | a convolution is one matrix product on the unfolded patches | `conv2d`, `im2col`, `unfold`, `rows_to_nchw` | `lowrank_ref.ops` | `tests/test_conv_ops.py::test_conv2d_is_a_matrix_layer_on_unfolded_patches` |
# | col2im is the adjoint of im2col | `col2im` | `lowrank_ref.ops` | `tests/test_conv_ops.py::test_im2col_col2im_adjoint` |
# | a planted wrong backward of the unfold fails the gradient check | `check_grad` | `lowrank_ref.gradcheck` | `tests/test_conv_ops.py::test_checker_catches_a_planted_wrong_unfold_backward` |
# | the low-rank convolution never forms its kernel | `LowRankConv2d` | `lowrank_ref.conv` | `tests/test_conv_layers.py::test_low_rank_conv_forward_never_forms_the_kernel` |
# | a fixed-rank DLRT step on a convolution is BUG on its kernel matrix | `FixedRankBUG` | `lowrank_ref.dlrt` | `tests/test_conv_layers.py::test_fixed_rank_step_on_a_conv_is_the_bug_integrator_on_its_kernel_matrix` |
# | the one-gradient adaptive step equals the three-pass one on a conv network | `AdaptiveBUG` | `lowrank_ref.dlrt` | `tests/test_conv_layers.py::test_one_gradient_adaptive_step_equals_three_pass_step_on_a_conv_network` |
# | LeNet5's layers and parameter counts | `lenet5` | `lowrank_ref.networks` | `tests/test_conv_layers.py::test_lenet5_shapes_and_parameter_counts` |
#
# ## Exercises
#
# Answers: `tutorials/solutions/07_solutions.py` (each checked by an `assert`).
#
# 1. An image of `h x w` pixels, padded by `p` on every side, with a `kh x kw` kernel and
#    stride `s`, gives `floor((h + 2p - kh) / s) + 1` output rows (and the same for columns).
#    Check the formula against the shape of `ops.im2col` for a few geometries, including
#    one where the last column of the padded image is never covered.
# 2. With stride equal to the kernel size (non-overlapping patches, no padding, sizes that
#    divide), what is `col2im(im2col(x))`? And with stride 1?
# 3. At which ranks is the factored forward of LeNet5's *first* convolution (1 -> 20
#    channels, 5 x 5, 24 x 24 outputs per image, a batch of 128) cheaper than the dense one,
#    counting `rows (n_in + c_out) r + c_out r^2` multiply-adds against `rows n_in c_out`?
#    What does that say about training that layer from its full rank 20?
# 4. **A DLRT step on a convolution that passes the oracle.** The oracle family
#    `dlrt_conv_layer_step` is one step on a small network: a low-rank convolution (kernel
#    matrix `U0 S0 V0^T`, bias `b0`), ReLU, flatten (NCHW order), a dense layer `W1`, `b1`,
#    and the mean cross-entropy. Write the fixed-rank step with NumPy only: the unfold of
#    section 1 with stride and padding, the forward, backpropagation by hand (tutorial 04)
#    to `G = dZ^T patches` and the other gradients, the K-, L- and Galerkin S-step of
#    tutorial 02 with a second gradient at `W~`, and one SGD step for `b0`, `W1`, `b1` at
#    the start point. As `my_conv_step(U0, S0, V0, b0, W1, b1, X, y, kernel_size, stride,
#    padding, lr, method, tau, min_rank, max_rank)` returning `{"U0", "S0", "V0", "b0",
#    "rank0", "W1", "b1"}`, it passes when
#    `oracle.check("dlrt_conv_layer_step", my_conv_step, golden=fixed).passed` is true, with
#    `fixed` the cases whose `inputs["method"]` is `"fixed"`. What fails if the patch
#    entries are ordered `(p, q, c)` instead of `(c, p, q)`?
