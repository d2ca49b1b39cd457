# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Answers to the exercises of tutorial 07
#
# Try the exercises first. Each answer is checked by an `assert`.

# %%
import time

import numpy as np

from lowrank_ref import ops

T_START = time.perf_counter()
rng = np.random.default_rng(70)

# %% [markdown]
# ## 1. The output size of a convolution
#
# The patch corners sit at `0, s, 2s, ...` in the padded image of `h + 2p` pixels, and a
# patch fits while its corner is at most `h + 2p - kh`: `floor((h + 2p - kh) / s) + 1`
# corners. When `s` does not divide `h + 2p - kh`, the last pixels of the padded image are
# never under a patch (below: an 8 x 8 image, kernel 3, stride 2, no padding: the corners
# 0, 2, 4 cover the rows and columns 0-6; row and column 7 never enter the convolution).

# %%
def out_size(h, k, s, p):
    return (h + 2 * p - k) // s + 1


for (h, w, kh, kw, s, p) in [(4, 4, 3, 3, 1, 0), (7, 6, 3, 3, 2, 1), (8, 8, 3, 3, 2, 1),
                             (28, 28, 5, 5, 1, 0), (9, 5, 4, 2, 3, 2)]:
    x = rng.standard_normal((2, 3, h, w))
    rows = ops.im2col(x, kh, kw, s, p).shape[0]
    ho, wo = out_size(h, kh, s, p), out_size(w, kw, s, p)
    print(f"h x w = {h} x {w}, kernel {kh} x {kw}, stride {s}, padding {p}: "
          f"{ho} x {wo} outputs, im2col rows {rows} = 2 x {ho} x {wo}")
    assert rows == 2 * ho * wo

# the skipped column: the gradient of the unfold is zero on it
x = rng.standard_normal((1, 1, 8, 8))
cover = ops.col2im(np.ones(ops.im2col(x, 3, 3, 2, 0).shape), x.shape, 3, 3, 2, 0)[0, 0]
print("patches covering each pixel (8 x 8, kernel 3, stride 2, no padding), last column:",
      cover[:, -1].astype(int))
assert np.all(cover[:, -1] == 0) and np.all(cover[-1] == 0) and np.all(cover[:-1, :-1] > 0)

# %% [markdown]
# ## 2. `col2im(im2col(x))`
#
# `col2im` adds every patch entry back onto the pixel it was copied from, so
# `col2im(im2col(x)) = c * x` with `c` the number of patches covering each pixel. With
# non-overlapping patches every pixel is covered once and the round trip is the identity;
# with stride 1 the count grows towards the middle of the image (up to `kh kw`).

# %%
x = rng.standard_normal((2, 3, 6, 6))
back = ops.col2im(ops.im2col(x, 3, 3, 3, 0), x.shape, 3, 3, 3, 0)
print(f"stride = kernel = 3: max |col2im(im2col(x)) - x| = {np.max(np.abs(back - x)):.1e}")
assert np.array_equal(back, x)

back1 = ops.col2im(ops.im2col(x, 3, 3, 1, 0), x.shape, 3, 3, 1, 0)
count = ops.col2im(np.ones(ops.im2col(x, 3, 3, 1, 0).shape), x.shape, 3, 3, 1, 0)
print("stride 1: coverage of one channel\n", count[0, 0].astype(int))
assert np.allclose(back1, count * x) and count.max() == 9

# %% [markdown]
# ## 3. When the factored forward of LeNet5's first convolution pays off
#
# Per patch row, `n_in = 1 * 5 * 5 = 25` and `c_out = 20`: dense `25 * 20 = 500`
# multiply-adds, factored `(25 + 20) r` plus the product `U S` (`20 r^2`) once per batch,
# negligible against 73,728 patch rows. That is cheaper only while `45 r < 500`, i.e. for
# `r <= 11`; at the full rank 20 the factored forward costs 1.8 times the dense one. A layer
# this small gains little from a low-rank form: it has only 500 weights, and the work is in
# its 24 x 24 = 576 patch rows per image. Training it from full rank, as the paper's LeNet5
# runs do, is slower than training the dense layer until its rank has fallen below 12 (at
# the end of the LeNet5 runs of docs/reproduce/02_lenet5_table.md the first convolution keeps ranks 2 to 13,
# depending on tau). The DLRT step adds more passes over the same rows (the gradients
# `G V0`, `G^T U0` and the S-step's), which is why LeNet5's rank-adaptive epoch is not
# faster than the dense one (docs/benchmarks.md).

# %%
rows, n_in, c_out = 128 * 24 * 24, 25, 20
dense = rows * n_in * c_out


def factored(r):
    return rows * (n_in + c_out) * r + c_out * r * r


cheaper = [r for r in range(1, 21) if factored(r) < dense]
print(f"dense: {dense / 1e6:.1f} M multiply-adds per batch; factored cheaper for ranks "
      f"{cheaper[0]}..{cheaper[-1]}; at rank 20: {factored(20) / dense:.2f}x the dense cost")
assert cheaper == list(range(1, 12))
assert abs(factored(20) / dense - 1.8) < 1e-3

# %% [markdown]
# ## 4. A fixed-rank DLRT step on a convolution that passes the oracle
#
# The convolution is its kernel matrix applied to the patch rows (section 1 of the
# tutorial), so the step is the dense layer's step with the patches as the batch: the same
# K-, L- and S-steps, with `G = dZ^T patches` summed over the batch and the output pixels.
# The output rows go back to NCHW before the ReLU and the channel-major flatten, and the
# gradient comes back the same way. With the patch entries in the order `(p, q, c)` the
# kernel matrix's columns no longer match `W[o, c, p, q]`: for one input channel the two
# orders coincide, but with several the step is another one, and the checker fails it on the
# represented matrix of layer 0 (`matrix[0]`).

# %%
from lowrank_ref import oracle

def im2col(x, k, stride, padding, order="cpq"):
    """Patch rows (n, i, j) x entries (c, p, q), as in section 1 of the tutorial
    (``order="pqc"``: the entries in the wrong order, for the question at the end)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    rows = [x[b, :, i * stride:i * stride + k, j * stride:j * stride + k]
            for b in range(n) for i in range(ho) for j in range(wo)]
    rows = [r.transpose(1, 2, 0).reshape(-1) if order == "pqc" else r.reshape(-1) for r in rows]
    return np.array(rows), ho, wo

def conv_net_gradients(W0, b0, W1, b1, X, y, k, stride, padding, order="cpq"):
    P, ho, wo = im2col(X, k, stride, padding, order)
    n, c_out = X.shape[0], W0.shape[0]
    Z = (P @ W0.T + b0).reshape(n, ho, wo, c_out).transpose(0, 3, 1, 2)   # NCHW
    H = np.maximum(Z, 0).reshape(n, -1)                                   # channel-major
    logits = H @ W1.T + b1
    Pr = np.exp(logits - logits.max(axis=1, keepdims=True))
    Pr /= Pr.sum(axis=1, keepdims=True)
    Pr[np.arange(n), y] -= 1.0
    dlogits = Pr / n
    dH = (dlogits @ W1).reshape(Z.shape) * (Z > 0)
    dZ = dH.transpose(0, 2, 3, 1).reshape(-1, c_out)                       # back to rows
    return dZ.T @ P, dZ.sum(axis=0), dlogits.T @ H, dlogits.sum(axis=0)

def my_conv_step(U0, S0, V0, b0, W1, b1, X, y, kernel_size, stride, padding, lr, method,
                 tau, min_rank, max_rank, order="cpq"):
    if method != "fixed":
        raise ValueError(f"only method='fixed', got {method!r}")
    geo = (kernel_size, stride, padding, order)
    G, gb0, gW1, gb1 = conv_net_gradients(U0 @ S0 @ V0.T, b0, W1, b1, X, y, *geo)
    U1, _ = np.linalg.qr(U0 @ S0 - lr * G @ V0)
    V1, _ = np.linalg.qr(V0 @ S0.T - lr * G.T @ U0)
    S_t = (U1.T @ U0) @ S0 @ (V0.T @ V1)
    G_t = conv_net_gradients(U1 @ S_t @ V1.T, b0, W1, b1, X, y, *geo)[0]
    S1 = S_t - lr * U1.T @ G_t @ V1
    return {"U0": U1, "S0": S1, "V0": V1, "b0": b0 - lr * gb0, "rank0": S1.shape[0],
            "W1": W1 - lr * gW1, "b1": b1 - lr * gb1}


fixed = [c for c in oracle.cases("dlrt_conv_layer_step") if c.inputs["method"] == "fixed"]
report = oracle.check("dlrt_conv_layer_step", my_conv_step, golden=fixed)
print(report)
assert report.passed and report.n_cases == len(fixed) >= 2
wrong_order = oracle.check("dlrt_conv_layer_step",
                           lambda **kw: my_conv_step(**kw, order="pqc"), golden=fixed)
print(str(wrong_order).splitlines()[0], "| quantities:",
      sorted({f.quantity for f in wrong_order.failures}))
assert not wrong_order.passed and "matrix[0]" in {f.quantity for f in wrong_order.failures}

# %%
print(f"tutorial 07 solutions finished in {time.perf_counter() - T_START:.1f} s")
