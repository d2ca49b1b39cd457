# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Answers to the exercises of tutorial 01
#
# Try the exercises first. Each answer is checked by an `assert`.

# %%
import time

import numpy as np

from lowrank_ref import LowRank
from lowrank_ref.lowrank import tangent_project
from lowrank_ref.odes import ToyProblem

T_START = time.perf_counter()
rng = np.random.default_rng(1)

# %% [markdown]
# ## 1. The dimension of the tangent space
#
# `P(Y) Z = U U^T Z + Z V V^T - U U^T Z V V^T` is linear in `Z`; its matrix acting on
# `vec(Z)` (column-major) is `I ⊗ P_U + P_V ⊗ I - P_V ⊗ P_U` with `P_U = U U^T`,
# `P_V = V V^T`. Its eigenvalues are 0 and 1 (it is an orthogonal projection), so its rank
# equals its trace: `n r + m r - r r = (m + n - r) r`, i.e. `(5 + 4 - 2) 2 = 14`.

# %%
m, n, r = 5, 4, 2
Y = LowRank.random(rng, m, n, r)
U, S, V = Y
PU, PV = U @ U.T, V @ V.T
P = np.kron(np.eye(n), PU) + np.kron(PV, np.eye(m)) - np.kron(PV, PU)
Z = rng.standard_normal((m, n))
direct = tangent_project(Y, Z)
assert np.allclose(P @ Z.flatten(order="F"), direct.flatten(order="F"))
print(f"rank {np.linalg.matrix_rank(P)}, trace {np.trace(P):.6f}, "
      f"(m + n - r) r = {(m + n - r) * r}")
assert np.linalg.matrix_rank(P) == (m + n - r) * r == 14
assert np.isclose(np.trace(P), 14) and np.allclose(P @ P, P) and np.allclose(P, P.T)

# %% [markdown]
# ## 2. A step below the estimate at r = 14
#
# With `c ≈ 0.2` (section 4 of the tutorial), `h_max ≈ 2.79 sigma_14(0) / c ≈ 14 * 6.1e-5
# ≈ 8.5e-4`. With `h = 0.01` (about 12 `h_max`) the error ratio at `t = 1` was 5.6 in fast
# mode; with `h = 5e-4` (below `h_max`) RK4 on the factor ODEs is accurate again — at 20
# times the cost of `h = 0.01`, which is the point: the robust integrators need no such
# step.

# %%
N, r14 = 40, 14
prob = ToyProblem(np.random.default_rng(2022), N)


def factor_rk4(Y0, h, T=1.0):
    def rhs(t, U, S, V):
        Fv = prob.F(t, U @ S @ V.T)
        FV, FtU = Fv @ V, Fv.T @ U
        dS = U.T @ FV
        S_inv = np.linalg.inv(S)
        return (FV - U @ dS) @ S_inv, dS, (FtU - V @ dS.T) @ S_inv.T
    X = tuple(Y0)
    with np.errstate(all="ignore"):
        for k in range(int(round(T / h))):
            t = k * h
            k1 = rhs(t, *X)
            k2 = rhs(t + h / 2, *(x + h / 2 * d for x, d in zip(X, k1)))
            k3 = rhs(t + h / 2, *(x + h / 2 * d for x, d in zip(X, k2)))
            k4 = rhs(t + h, *(x + h * d for x, d in zip(X, k3)))
            X = tuple(x + h / 6 * (a + 2 * b + 2 * c + d)
                      for x, a, b, c, d in zip(X, k1, k2, k3, k4))
    return X[0] @ X[1] @ X[2].T


Y0 = prob.best_approximation(0.0, r14)
best = prob.best_error(1.0, r14)
ratios = {h: np.linalg.norm(factor_rk4(Y0, h) - prob.exact(1.0)) / best for h in (0.01, 5e-4)}
print(f"r = 14: error / best error at t = 1: h = 0.01 -> {ratios[0.01]:.2f}, "
      f"h = 5e-4 -> {ratios[5e-4]:.2f}")
assert round(ratios[0.01], 1) == 5.6 and ratios[5e-4] <= 1.5

# %%
print(f"solutions 01 finished in {time.perf_counter() - T_START:.1f} s")
