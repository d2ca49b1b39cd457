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

# %%
print(f"tutorial 07 solutions finished in {time.perf_counter() - T_START:.1f} s")
