# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Answers to the exercises of tutorial 02
#
# Try the exercises first. Each answer is computed by hand (the numbers in the text) and
# checked against the package by an `assert`.

# %%
import time

import numpy as np

from lowrank_ref import LowRank
from lowrank_ref.integrators import bug_step, projector_splitting_step

T_START = time.perf_counter()
C = np.array([[2.0, 3.0], [3.0, 0.0]])
F = lambda t, Y: C                                   # noqa: E731  (constant F)
e1 = np.array([[1.0], [0.0]])
Y0 = LowRank(e1, np.array([[2.0]]), e1)              # 2 e1 e1^T

# %% [markdown]
# ## 1. One KSL step of the 2 x 2 example
#
# * K-step as in BUG: `K1 = (4, 3)`, QR `K1 = U1 S_hat1` with `U1 = (0.8, 0.6)`, `S_hat1 = 5`.
# * S-step backward: `S_tilde0 = S_hat1 - h U1^T C V0 = 5 - (0.8 * 2 + 0.6 * 3) = 5 - 3.4 = 1.6`.
# * L-step from `L0 = V0 S_tilde0 = (1.6, 0)` with the **new** `U1`:
#   `L1 = L0 + h C^T U1 = (1.6, 0) + (3.4, 2.4) = (5, 2.4)`.
# * `Y1 = U1 L1^T = [[4, 1.92], [3, 1.44]]`.
#
# The **first** column is exact, `Y1 e1 = (4, 3) = A(1) e1`. With `V0 = e1` it is
# `Y1 V0 = U1 L1^T V0 = U1 (S_tilde0 + h U1^T C V0) = U1 S_hat1 = K1 = (Y0 + h C) V0`: the
# L-step adds back exactly what the backward S-step took away (for a constant `F`), so the
# result keeps everything the K-step found in the direction `V0`. BUG's result
# `Y1 = 5.44 U1 V1^T` matches neither column of `A(1)`: its Galerkin step projects onto the
# new `V1 = (0.8, 0.6)` on the right as well, and `V0 = e1` is not in its span, so even the
# first column becomes `5.44 * 0.8 * U1 = (3.4816, 2.6112)`. Errors:
# `||Y1 - A(1)|| = ||(1.08, -1.44)|| = 1.8` for KSL, 2.0991 for BUG.

# %%
Y1_ksl = projector_splitting_step(Y0, F, 0.0, 1.0, inner="euler").to_dense()
print("KSL Y1 =", np.round(Y1_ksl, 4).tolist())
A1 = Y0.to_dense() + C
print(f"KSL error {np.linalg.norm(Y1_ksl - A1):.4f}")
Y1_bug = bug_step(Y0, F, 0.0, 1.0, inner="euler").to_dense()
print("BUG Y1 =", np.round(Y1_bug, 4).tolist(), "  A(1) =", A1.tolist())
assert np.allclose(Y1_ksl, [[4.0, 1.92], [3.0, 1.44]], atol=1e-14)
assert np.allclose(Y1_ksl[:, 0], A1[:, 0]) and not np.allclose(Y1_ksl[:, 1], A1[:, 1])
assert not np.allclose(Y1_bug[:, 0], A1[:, 0]) and not np.allclose(Y1_bug[:, 1], A1[:, 1])
assert np.isclose(np.linalg.norm(Y1_ksl - A1), 1.8)

# %% [markdown]
# ## 2. BUG at full rank is the explicit Euler step
#
# At full rank `U1`, `V1` are square orthogonal, so `M S0 N^T = U1^T Y0 V1` (the projection is
# the identity) and the S-step gives
# `S1 = U1^T Y0 V1 + h U1^T F(U1 U1^T Y0 V1 V1^T) V1 = U1^T (Y0 + h F(Y0)) V1`, i.e.
# `Y1 = Y0 + h F(Y0)`. For `Y0 = diag(2, 1)`, `C` as above: `Y1 = [[4, 3], [3, 1]]`.
# (Also true for an `F` that depends on `Y`; `tests/test_integrators.py` checks it with a
# nonlinear `F`.)

# %%
Y0_full = LowRank(np.eye(2), np.diag([2.0, 1.0]), np.eye(2))
Y1_full = bug_step(Y0_full, F, 0.0, 1.0, inner="euler").to_dense()
print("full-rank BUG Y1 =", np.round(Y1_full, 12).tolist())
assert np.allclose(Y1_full, [[4.0, 3.0], [3.0, 1.0]], atol=1e-14)
F_nonlinear = lambda t, Y: Y @ Y - np.sin(Y)        # noqa: E731
Y1_nl = bug_step(Y0_full, F_nonlinear, 0.0, 0.3, inner="euler").to_dense()
euler = Y0_full.to_dense() + 0.3 * F_nonlinear(0.0, Y0_full.to_dense())
assert np.allclose(Y1_nl, euler, atol=1e-14)

# %% [markdown]
# ## 3. Two BUG steps of length 1/2
#
# First step (`h = 1/2`): `K1 = (2, 0) + (1, 1.5) = (3, 1.5)`, `U1 = (2, 1)/sqrt(5)`, likewise
# `V1`; `S_tilde0 = 2 (2/sqrt(5))^2 = 1.6`; `U1^T C V1 = (2, 1) C (2, 1)^T / 5 = 20/5 = 4`,
# so `S1 = 1.6 + 0.5 * 4 = 3.6` and `Y_half = 3.6 U1 U1^T = [[2.88, 1.44], [1.44, 0.72]]`.
# The second step from this rank-1 matrix (same arithmetic, with `u = (2, 1)/sqrt(5)`) is left
# to the computer: the error at `t = 1` falls from 2.0991 (one step of `h = 1`) to 1.6982,
# close to the best rank-1 error 1.6056, which no rank-1 matrix can beat.

# %%
Y_half = bug_step(Y0, F, 0.0, 0.5, inner="euler")
print("Y after one step of 1/2 =", np.round(Y_half.to_dense(), 4).tolist())
assert np.allclose(Y_half.to_dense(), [[2.88, 1.44], [1.44, 0.72]], atol=1e-14)
Y_two = bug_step(Y_half, F, 0.5, 0.5, inner="euler")
err_one = np.linalg.norm(bug_step(Y0, F, 0.0, 1.0, inner="euler").to_dense() - A1)
err_two = np.linalg.norm(Y_two.to_dense() - A1)
print(f"error at t = 1: one step {err_one:.4f}, two steps {err_two:.4f}, "
      f"best rank 1 {np.sqrt(13) - 2:.4f}")
assert round(err_one, 4) == 2.0991 and round(err_two, 4) == 1.6982
assert np.sqrt(13) - 2 < err_two < err_one

# %% [markdown]
# ## 4. A KSL step that passes the oracle
#
# The three sub-flows of section 2 of the tutorial, each one explicit Euler step, for
# `F(Y) = A1 Y + Y A2 + B` (it does not depend on `t`). The S-step runs backward: it
# *subtracts* `h U1^T F V0`. Run forward, the step adds that part twice; the checker then
# reports the represented matrix `U S V^T` (and the singular values), because the result
# is another matrix, not another factorisation of the same one.

# %%
from lowrank_ref import oracle


def my_ksl_step(U0, S0, V0, A1, A2, B, t0, h, inner, substeps, order, backward=True):
    if (inner, substeps, order) != ("euler", 1, 1):
        raise ValueError(f"only inner='euler', substeps=1, order=1; got {inner!r}, "
                         f"{substeps}, {order}")

    def F(Y):
        return A1 @ Y + Y @ A2 + B

    K1 = U0 @ S0 + h * F(U0 @ S0 @ V0.T) @ V0                  # K-step
    U1, S_hat = np.linalg.qr(K1)
    sign = -1.0 if backward else 1.0
    S_tilde = S_hat + sign * h * U1.T @ F(U1 @ S_hat @ V0.T) @ V0   # S-step
    L1 = V0 @ S_tilde.T + h * F(U1 @ S_tilde @ V0.T).T @ U1     # L-step, with the new U1
    V1, S1T = np.linalg.qr(L1)
    return {"U": U1, "S": S1T.T, "V": V1}


lie = [c for c in oracle.cases("projector_splitting_step") if c.inputs["order"] == 1]
report = oracle.check("projector_splitting_step", my_ksl_step, golden=lie)
print(report)
assert report.passed and report.n_cases == len(lie) >= 5
forward = oracle.check("projector_splitting_step",
                       lambda **kw: my_ksl_step(**kw, backward=False), golden=lie)
print(str(forward).splitlines()[0], "| quantities:", sorted({f.quantity for f in forward.failures}))
assert not forward.passed and "matrix" in {f.quantity for f in forward.failures}

# %%
print(f"solutions 02 finished in {time.perf_counter() - T_START:.1f} s")
