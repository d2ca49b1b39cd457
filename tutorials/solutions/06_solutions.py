# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Answers to the exercises of tutorial 06
#
# Try the exercises first. Each answer is checked by an `assert`.

# %%
import time

import numpy as np

from lowrank_ref import oracle

T_START = time.perf_counter()

# %% [markdown]
# ## 1. The published truncation loop as a candidate
#
# The loop `for j in range(2r - 1): if norm(sigma[j : 2r - 1]) < tol: break` never puts the
# last singular value into the tail, and when no `j` breaks it the rank stays the old `r`
# (tutorial 03, section 1; the core of a rank-`r` step has `k = 2r` values, so the old rank
# is `k // 2`). On the cases built for either bug the candidate returns a wrong rank: the
# checker reports the quantity `rank` among the failures (with the represented matrix, the
# singular values and the truncation error, which follow from the wrong rank).

# %%
def published_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
    P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
    theta = tol * np.linalg.norm(s) if relative else tol
    k = len(s)
    r = next((j for j in range(k - 1) if np.linalg.norm(s[j:k - 1]) < theta), k // 2)
    r = min(max(r, min_rank), max_rank, k)
    return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Qt[:r].T}


report = oracle.check("truncate", published_truncate)
print(str(report).splitlines()[0])
quantities = sorted({f.quantity for f in report.failures})
print("quantities that failed:", quantities)
assert not report.passed and "rank" in quantities
failed = {f.case for f in report.failures}
print("cases failed:", sorted(failed))
assert {"truncate.last_value_excluded", "truncate.tail_met_only_at_last_index"} <= failed

# %% [markdown]
# ## 2. Another factorisation of the same result passes
#
# `U Q1, Q1^T S Q2, V Q2` with orthogonal `Q1`, `Q2` represents the same matrix with the
# same singular values and projectors, and it is as orthonormal as `U`, `V`: the checker
# compares exactly these invariants, so the candidate passes although every factor differs
# from the expected one.

# %%
reference_bug = oracle.reference("bug_step")
rng = np.random.default_rng(0)


def regauged_bug_step(**inputs):
    out = reference_bug(**inputs)
    r = out["S"].shape[0]
    Q1 = np.linalg.qr(rng.standard_normal((r, r)))[0]
    Q2 = np.linalg.qr(rng.standard_normal((r, r)))[0]
    return {"U": out["U"] @ Q1, "S": Q1.T @ out["S"] @ Q2, "V": out["V"] @ Q2}


report = oracle.check("bug_step", regauged_bug_step)
print(report)
assert report.passed

# %% [markdown]
# ## 3. The parallel BUG from its docstring
#
# The docstring of `lowrank_ref.integrators.parallel_bug_step` lists the steps ([CKL24]): the
# K-, L- and S-steps all start from `Y0` (the S-step in the *old* bases), the new directions
# are orthonormal bases of `(I - U0 U0^T) K1` and `(I - V0 V0^T) L1`, and the augmented core
# is `[[S_bar1, L_tilde1^T], [K_tilde1, 0]]`, truncated as always. The one delicate part is
# the new directions: after one projection a small remainder of `K1` is not orthogonal to
# `U0` to working accuracy (Gram-Schmidt needs a second pass), and directions at rounding
# level must be dropped, not normalised up to unit length; without that the checker fails
# the orthonormality of the result.

# %%
def new_directions(U0, K1):
    """Orthonormal basis of (I - U0 U0^T) K1, directions at rounding level dropped."""
    R = K1 - U0 @ (U0.T @ K1)
    R = R - U0 @ (U0.T @ R)                      # twice is enough (Gram-Schmidt)
    Q, s, _ = np.linalg.svd(R, full_matrices=False)
    keep = s > max(U0.shape) * np.finfo(K1.dtype).eps * np.linalg.norm(K1, 2)
    Q = Q[:, keep]
    Q = Q - U0 @ (U0.T @ Q)                      # small directions: orthogonal again
    return np.linalg.qr(Q)[0]

def my_parallel_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank, inner, substeps):
    F = lambda Y: A1 @ Y + Y @ A2 + B
    FY0 = F(U0 @ S0 @ V0.T)
    K1 = U0 @ S0 + h * FY0 @ V0
    L1 = V0 @ S0.T + h * FY0.T @ U0
    S_bar = S0 + h * U0.T @ FY0 @ V0
    Ut, Vt = new_directions(U0, K1), new_directions(V0, L1)
    r, pu, pv = S0.shape[0], Ut.shape[1], Vt.shape[1]
    S_hat = np.zeros((r + pu, r + pv))
    S_hat[:r, :r] = S_bar
    S_hat[:r, r:] = (Vt.T @ L1).T
    S_hat[r:, :r] = Ut.T @ K1
    U_hat, V_hat = np.hstack([U0, Ut]), np.hstack([V0, Vt])
    P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
    theta = tol * np.linalg.norm(s) if relative else tol
    tails = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])
    r1 = min(max(int(np.count_nonzero(tails > theta)), min_rank), max_rank, len(s))
    return {"U": U_hat @ P[:, :r1], "S": np.diag(s[:r1]), "V": V_hat @ Qt[:r1].T}


report = oracle.check("parallel_bug_step", my_parallel_bug_step)
print(report)
assert report.passed


def one_pass_directions(U0, K1):
    """The naive version: one projection, every direction normalised to unit length."""
    Q, s, _ = np.linalg.svd(K1 - U0 @ (U0.T @ K1), full_matrices=False)
    return Q[:, s > 0]


careful_directions, new_directions = new_directions, one_pass_directions
naive = oracle.check("parallel_bug_step", my_parallel_bug_step)
new_directions = careful_directions
print(str(naive).splitlines()[0], "| quantities:", sorted({f.quantity for f in naive.failures}))
assert not naive.passed and "orthonormality" in {f.quantity for f in naive.failures}

# %%
print(f"solutions 06 finished in {time.perf_counter() - T_START:.1f} s")
