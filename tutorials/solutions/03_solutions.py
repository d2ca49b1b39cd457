# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Answers to the exercises of tutorial 03
#
# Try the exercises first. Each answer is checked against the package by an `assert`.

# %%
import time

import numpy as np

from lowrank_ref import LowRank
from lowrank_ref.integrators import adaptive_bug_step
from lowrank_ref.truncation import truncate, truncation_rank

T_START = time.perf_counter()

# %% [markdown]
# ## 1. The 2 x 2 example with an absolute tolerance
#
# `S_hat1 = [[4, 3], [3, 0]]` has singular values `sqrt(13) + 2` and `sqrt(13) - 2`. With
# `relative=False` the threshold is `tol` itself: rank 1 is kept when the discarded tail,
# `sigma_2 = sqrt(13) - 2 = 1.6056`, is `<= tol`, i.e. for `tol >= 1.6056`. The truncation
# error is then exactly `sigma_2 = 1.6056` (Eckart–Young).

# %%
S_hat1 = np.array([[4.0, 3.0], [3.0, 0.0]])
I2 = np.eye(2)
for tol, rank in ((1.61, 1), (1.60, 2)):
    Y = truncate(I2, S_hat1, I2, tol, relative=False)
    err = np.linalg.norm(Y.to_dense() - S_hat1)
    print(f"absolute tol {tol}: rank {Y.rank}, error {err:.4f}")
    assert Y.rank == rank
    assert np.isclose(err, np.sqrt(13) - 2 if rank == 1 else 0.0, atol=1e-12)

# %% [markdown]
# ## 2. How fast the rank can grow
#
# One step augments `U0` (rank `r`) with the `r` columns of `K1`, so `U_hat` has at most
# `2r` columns: the rank can at most double per step (2, 4, 8). Here it grows by two per
# step, 2, 4, 6: this `F` creates at most two new directions per step in the range (the
# operator `E` applied to the range, and the forcing `b`) and likewise in the co-range. The
# explicit Euler iterates of the full problem show the same count of new directions, ranks
# 3, 5, 7 (`2k + 1`). The low-rank solution has one direction fewer: its first step, from
# rank 1, can add only one new column (`K1` has one column, a mixture of `E u` and `b`),
# and the later steps add two each, as the full iterates do.
# (`augment_basis` keeps only directions above rounding, so nothing spurious is added.)

# %%
rng = np.random.default_rng(3)
N = 40
R = rng.standard_normal((N, N))
E_op = (R - R.T) / np.sqrt(2 * N) - 0.5 * np.eye(N)      # E = W - I/2
b = rng.standard_normal((N, 1)); b /= np.linalg.norm(b)
c = rng.standard_normal((N, 1)); c /= np.linalg.norm(c)
F = lambda t, A: E_op @ A + A @ E_op.T + b @ c.T          # noqa: E731
Y = LowRank.random(rng, N, N, 1, singular_values=[1.0])
A = Y.to_dense()
ranks, full_ranks = [], []
for k in range(3):
    Y = adaptive_bug_step(Y, F, 0.01 * k, 0.01, 0.0)
    A = A + 0.01 * F(0.01 * k, A)
    ranks.append(Y.rank)
    full_ranks.append(int(np.linalg.matrix_rank(A, tol=1e-14 * np.linalg.norm(A))))
print("ranks after 1, 2, 3 steps with tol = 0:", ranks, "  full Euler iterates:", full_ranks)
assert ranks == [2, 4, 6] and full_ranks == [3, 5, 7]

# %% [markdown]
# ## 3. The published truncation loop at other tolerances
#
# With `tol = 0.015` the published loop stops at `j = 2` (`||sigma[2:3]|| = 0.01 < 0.015`)
# and discards `(0.01, 0.01)`, norm `0.01414 <= 0.015`: the bound holds, and `lowrank_ref`
# picks the same rank 2. In `[0.01, 0.02]` the two rules differ exactly for
# `0.01 <= tol < sqrt(2) * 0.01 = 0.01414`:
#
# * for `0.01 < tol < 0.01414` the loop's partial tail `||sigma[2:3]|| = 0.01` is below `tol`
#   and it returns 2, discarding `0.01414 > tol`: the bound breaks; the tail rule keeps 3;
# * at `tol = 0.01` no `j` passes the strict test `< tol`, and the loop leaves the rank at
#   the old `r = 2` (the core of a rank-`r` step has `2r = 4` values), again discarding
#   `0.01414 > tol`; the tail rule keeps 3 (`||sigma[3:]|| = 0.01 <= 0.01`).
#
# From `0.01414` on both keep 2 and meet the bound.

# %%
def published_rank(sigma, tol):
    """The published loop on the 2r values of an augmented core (tutorial 03, section 1)."""
    two_r = len(sigma)
    for j in range(0, two_r - 1):
        if np.linalg.norm(sigma[j:two_r - 1]) < tol:
            return j
    return two_r // 2                # no j broke the loop: the rank stays the old r


sigma4 = np.array([1.0, 0.5, 0.01, 0.01])
assert published_rank(sigma4, 0.015) == truncation_rank(sigma4, 0.015, relative=False) == 2
assert np.linalg.norm(sigma4[2:]) <= 0.015
grid = np.linspace(0.01, 0.02, 1001)
differ = [t for t in grid
          if published_rank(sigma4, t) != truncation_rank(sigma4, t, relative=False)]
print(f"the rules differ for tol in [{min(differ):.5f}, {max(differ):.5f}] "
      f"(sqrt(2) * 0.01 = {np.sqrt(2) * 0.01:.5f}); at tol = 0.01: published "
      f"{published_rank(sigma4, 0.01)}, tail rule {truncation_rank(sigma4, 0.01, relative=False)}")
assert differ == [t for t in grid if t < np.sqrt(2) * 0.01] and min(differ) == 0.01

# %% [markdown]
# ## 4. A rank-adaptive BUG step that passes the oracle
#
# Sections 1 and 2 of the tutorial in one function, for `F(Y) = A1 Y + Y A2 + B` and one
# Euler step per sub-flow. The augmented bases are orthonormalised rank-revealingly (an SVD
# that drops directions at rounding level), so `U_hat` never holds round-off directions.
# With the published loop as the rank rule the checker fails the cases built for it on the
# quantity `rank` (and on what follows from a wrong rank).

# %%
from lowrank_ref import oracle


def orth(B):
    Q, s, _ = np.linalg.svd(B, full_matrices=False)
    return Q[:, s > max(B.shape) * np.finfo(B.dtype).eps * s[0]]


def tail_rank(s, theta):
    tails = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])       # tails[j] = ||s[j:]||
    return int(np.count_nonzero(tails > theta))


def make_adaptive_bug_step(rank_rule=tail_rank):
    def my_adaptive_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank,
                             inner, substeps):
        if (inner, substeps) != ("euler", 1):
            raise ValueError(f"only inner='euler', substeps=1; got {inner!r}, {substeps}")

        def F(Y):
            return A1 @ Y + Y @ A2 + B

        FY0 = F(U0 @ S0 @ V0.T)
        K1 = U0 @ S0 + h * FY0 @ V0                      # K-step
        L1 = V0 @ S0.T + h * FY0.T @ U0                  # L-step
        U_hat, V_hat = orth(np.hstack([U0, K1])), orth(np.hstack([V0, L1]))
        S_hat0 = (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat)    # Y0 in the augmented bases
        S_hat1 = S_hat0 + h * U_hat.T @ F(U_hat @ S_hat0 @ V_hat.T) @ V_hat   # Galerkin
        P, s, Qt = np.linalg.svd(S_hat1, full_matrices=False)
        theta = tol * np.linalg.norm(s) if relative else tol
        r1 = min(max(rank_rule(s, theta), min_rank), max_rank, len(s))
        return {"U": U_hat @ P[:, :r1], "S": np.diag(s[:r1]), "V": V_hat @ Qt[:r1].T}
    return my_adaptive_bug_step


report = oracle.check("adaptive_bug_step", make_adaptive_bug_step())
print(report)
assert report.passed
published = oracle.check("adaptive_bug_step", make_adaptive_bug_step(
    lambda s, theta: published_rank(s, theta)))
print(str(published).splitlines()[0], "| failing cases:",
      sorted({f.case for f in published.failures}))
assert not published.passed and "rank" in {f.quantity for f in published.failures}

# %%
print(f"solutions 03 finished in {time.perf_counter() - T_START:.1f} s")
