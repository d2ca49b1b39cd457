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
# last singular value into the tail (tutorial 03). On a case built so that the true tail
# with the last value exceeds the tolerance, the candidate returns a rank one too small:
# the checker reports the quantity `rank` among the failures (with the represented matrix,
# the singular values and the truncation error, which follow from the wrong rank).

# %%
def published_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
    P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
    theta = tol * np.linalg.norm(s) if relative else tol
    k = len(s)
    r = next((j for j in range(k - 1) if np.linalg.norm(s[j:k - 1]) < theta), k - 1)
    r = min(max(r, min_rank), max_rank, k)
    return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Qt[:r].T}


report = oracle.check("truncate", published_truncate)
print(str(report).splitlines()[0])
quantities = sorted({f.quantity for f in report.failures})
print("quantities that failed:", quantities)
assert not report.passed and "rank" in quantities

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

# %%
print(f"solutions 06 finished in {time.perf_counter() - T_START:.1f} s")
