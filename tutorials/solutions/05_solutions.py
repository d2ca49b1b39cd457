# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Answers to the exercises of tutorial 05
#
# Try the exercises first. Each answer is checked by an `assert`. No MNIST is needed.

# %%
import time

import numpy as np

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor
from lowrank_ref.dlrt import AdaptiveBUG, low_rank_mlp, parameter_counts
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.nn import MLP

T_START = time.perf_counter()

# %% [markdown]
# ## 1. Parameter counts of the paper's network at rank 20
#
# Dense: `784*500 + 3*500*500 + 500*10 = 392,000 + 750,000 + 5,000 = 1,147,000`.
#
# * Evaluation, `r (n_in + n_out)` per low-rank layer: `20 (784 + 500) + 3 * 20 * 1000 =
#   25,680 + 60,000 = 85,680`, plus the dense last layer 5,000: **90,680**, compression
#   `1 - 90,680 / 1,147,000 = 92.1 %`.
# * Training, rank-adaptive, `2 r n_in + 4 r^2 + 2 r n_out`: `2*20*1284 + 1600 = 52,960`
#   for the first layer, `2*20*1000 + 1600 = 41,600` for each of the other three, plus 5,000:
#   **182,760**, compression 84.1 %.
# * Training, fixed rank, `r (n_in + n_out) + r^2`: `25,680 + 400 + 3 (20,000 + 400) + 5,000
#   = 92,280`, compression 92.0 %.

# %%
model = low_rank_mlp([784, 500, 500, 500, 500, 10], rank=20, rng=np.random.default_rng(0))
c = parameter_counts(model)
fixed_train = sum(20 * (layer.n_in + layer.n_out) + 400 if hasattr(layer, "rank")
                  else layer.n_in * layer.n_out for layer in model.layers)
print(f"dense {c['dense_params']:,}; eval {c['eval_params']:,} ({c['eval_cr']:.1%}); "
      f"adaptive train {c['train_params']:,} ({c['train_cr']:.1%}); fixed-rank train "
      f"{fixed_train:,} ({1 - fixed_train / c['dense_params']:.1%})")
assert c["dense_params"] == 1_147_000
assert c["eval_params"] == 90_680 and round(100 * c["eval_cr"], 1) == 92.1
assert c["train_params"] == 182_760 and round(100 * c["train_cr"], 1) == 84.1
assert fixed_train == 92_280 and round(100 * (1 - fixed_train / c["dense_params"]), 1) == 92.0

# %% [markdown]
# ## 2. and 3. A too-large step, and momentum
#
# With `lr = 2.5 / Lip` the loss grows at almost every step and explodes: the bound needs
# `lr <= 1 / Lip` (step 3 of its proof), and plain gradient descent on a quadratic already
# diverges for `lr > 2 / Lip`. With momentum 0.9 and `lr = 1 / Lip` the loss is no longer
# monotone (it rises at several steps: the heavy ball overshoots) and after 30 steps it is
# far above the momentum-free run: on this small, well-conditioned, full-batch problem
# momentum does not help. It is a heuristic for stochastic, badly conditioned training —
# outside the guarantee of section 2.

# %%
rng_ls = np.random.default_rng(0)
n_in, n_out, B = 20, 15, 60
X = rng_ls.standard_normal((B, n_in))
W_star = rng_ls.standard_normal((n_out, 6)) @ rng_ls.standard_normal((6, n_in)) / np.sqrt(n_in)
Y = X @ W_star.T + 0.1 * rng_ls.standard_normal((B, n_out))
X1 = np.hstack([X, np.ones((B, 1))])
Lip = float(np.linalg.eigvalsh(X1.T @ X1 / B).max())


def lsq_loss(Z, T):
    D = ops.sub(Z, Tensor(T))
    return ops.mul(ops.sum(ops.mul(D, D)), 1.0 / (2 * B))


def losses(lr_factor, momentum, steps=30):
    layer = LowRankDense(n_in, n_out, 2, np.random.default_rng(1))
    opt = AdaptiveBUG(MLP([layer], activation="identity"), lr_factor / Lip, tau=0.1,
                      max_rank=min(n_in, n_out), loss_fn=lsq_loss, momentum=momentum)
    return np.array([float(opt.step(X, Y).loss) for _ in range(steps)])


runs = {(1.0, 0.0): losses(1.0, 0.0), (2.5, 0.0): losses(2.5, 0.0), (1.0, 0.9): losses(1.0, 0.9)}
for (f, mu), L in runs.items():
    print(f"lr = {f}/Lip, momentum {mu}: loss at steps 1, 10, 30: {L[0]:.3f}, {L[9]:.3g}, "
          f"{L[-1]:.3g}; steps where the loss rose: {int(np.sum(np.diff(L) > 0))}")
assert np.all(np.diff(runs[(1.0, 0.0)]) < 0)
assert runs[(2.5, 0.0)][-1] > 1e6 * runs[(2.5, 0.0)][0]
assert np.sum(np.diff(runs[(2.5, 0.0)]) > 0) >= 25             # rises at almost every step
assert np.sum(np.diff(runs[(1.0, 0.9)]) > 0) >= 3
assert runs[(1.0, 0.9)][-1] > 10 * runs[(1.0, 0.0)][-1]

# %% [markdown]
# ## 4. A rank-adaptive DLRT step that passes the oracle
#
# One backward at `W0` gives `G` and `dℒ/db`; the augmented bases contain `U0`, `V0`, so the
# Galerkin start `S_hat0 = (U_hat^T U0) S0 (V0^T V_hat)` represents `W0` itself and the
# S-step's gradient is `U_hat^T G V_hat` from the same backward. Without the Galerkin start
# (`S0` padded with zeros instead) the core starts from another matrix whenever the QR of
# the bases turned `U0`, `V0`: the checker names the represented matrix.

# %%
from lowrank_ref import oracle


def loss_gradients(W, b, X, y):
    """G = dl/dW and dl/db of the mean cross-entropy of Z = X W^T + b (tutorial 04)."""
    Z = X @ W.T + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    P[np.arange(len(y)), y] -= 1.0
    dZ = P / len(y)
    return dZ.T @ X, dZ.sum(axis=0)


def orth(B):
    """Orthonormal basis of the range of B, directions at rounding level dropped."""
    Q, s, _ = np.linalg.svd(B, full_matrices=False)
    return Q[:, s > max(B.shape) * np.finfo(B.dtype).eps * s[0]]


def make_adaptive_step(galerkin=True):
    def my_step(U0, S0, V0, b0, X, y, lr, method, tau, min_rank, max_rank):
        if method != "adaptive":
            raise ValueError(f"only method='adaptive', got {method!r}")
        G, gb = loss_gradients(U0 @ S0 @ V0.T, b0, X, y)
        U_hat = orth(np.hstack([U0, U0 @ S0 - lr * G @ V0]))        # [U0, K1]
        V_hat = orth(np.hstack([V0, V0 @ S0.T - lr * G.T @ U0]))    # [V0, L1]
        if galerkin:
            S_hat0 = (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat)
        else:
            S_hat0 = np.zeros((U_hat.shape[1], V_hat.shape[1]))
            S_hat0[:S0.shape[0], :S0.shape[1]] = S0
        S_hat1 = S_hat0 - lr * U_hat.T @ G @ V_hat
        P, s, Qt = np.linalg.svd(S_hat1, full_matrices=False)
        tails = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])             # tails[j] = ||s[j:]||
        r = int(np.count_nonzero(tails > tau * np.linalg.norm(s)))
        r = min(max(r, min(min_rank, max_rank)), max_rank, len(s))
        return {"U0": U_hat @ P[:, :r], "S0": np.diag(s[:r]), "V0": V_hat @ Qt[:r].T,
                "b0": b0 - lr * gb, "rank0": r}
    return my_step


adaptive = [c for c in oracle.cases("dlrt_layer_step") if c.inputs["method"] == "adaptive"]
report = oracle.check("dlrt_layer_step", make_adaptive_step(), golden=adaptive)
print(report)
assert report.passed and report.n_cases == len(adaptive) >= 3
no_galerkin = oracle.check("dlrt_layer_step", make_adaptive_step(galerkin=False),
                           golden=adaptive)
print(str(no_galerkin).splitlines()[0], "| quantities:",
      sorted({f.quantity for f in no_galerkin.failures}))
assert not no_galerkin.passed and "matrix[0]" in {f.quantity for f in no_galerkin.failures}

# %%
print(f"solutions 05 finished in {time.perf_counter() - T_START:.1f} s")
