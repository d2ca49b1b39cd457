# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 — Rank adaptivity: augment, Galerkin, truncate
#
# The integrators of tutorial 02 keep the rank `r` fixed. The rank-adaptive BUG integrator
# ([CKL22] Ceruti, Kusch & Lubich, BIT 62 (2022)) lets the rank follow the
# solution. One step from `Y0 = U0 S0 V0^T` (rank `r`) to `t1 = t0 + h`:
#
# 1. **K-step** as in BUG, `K1 ≈ K(t1)`, `dK/dt = F(t, K V0^T) V0`, `K(t0) = U0 S0`; then
#    the *augmented* basis `U_hat = orth[K1, U0]` (`m x 2r` at most);
# 2. **L-step** likewise, `V_hat = orth[L1, V0]`;
# 3. **Galerkin S-step** in the augmented bases, started from `Y0` written in them:
#    `S_hat(t0) = (U_hat^T U0) S0 (V0^T V_hat)`,
#    `dS_hat/dt = U_hat^T F(t, U_hat S_hat V_hat^T) V_hat`;
# 4. **truncation** of `U_hat S_hat1 V_hat^T` (rank `<= 2r`) by an SVD of the small
#    `S_hat1` to the smallest rank `r1` whose discarded singular values satisfy
#    `sqrt(sum_{j > r1} sigma_j^2) <= theta`, with `theta = tol` or `tol * ||S_hat1||_F`.
#
# Because `U_hat` contains `U0` (and `V_hat` contains `V0`), `Y0` itself is representable
# and the rank can grow by up to `r` per step; truncation lets it shrink. DLRT's
# rank-adaptive training ([SZKCT22]) is exactly this with one Euler step per
# substep (tutorial 05).

# %%
import os
import time

import numpy as np

import matplotlib.pyplot as plt

from lowrank_ref import LowRank
from lowrank_ref.checks import fit_slope, tolerance
from lowrank_ref.integrators import adaptive_bug_step
from lowrank_ref.truncation import truncate, truncation_rank

from lowrank_ref.figures.display import show   # plt.show(); a PNG file only on request
from lowrank_ref.threads import set_blas_threads

set_blas_threads()   # the package's BLAS thread count (1) for this script: small products
                     # and factorisations are much slower with a thread pool (lowrank_ref.threads)
FAST = os.environ.get("LOWRANK_REF_FAST") == "1"
T_START = time.perf_counter()

rng = np.random.default_rng(3)
N = 40 if FAST else 60
T = 1.5 if FAST else 3.0
print(f"FAST={FAST}: N = {N}, T = {T}")

# %% [markdown]
# ## 1. Truncation to a tolerance, and its error bound
#
# ### By hand first: the 2 x 2 example of tutorial 02, rank-adaptive
#
# Tutorial 02, section 1, did one fixed-rank BUG step from `Y0 = 2 e1 e1^T` with the constant
# `F = C = [[2, 3], [3, 0]]` and `h = 1`, and found `Y1 = 5.44 (0.8, 0.6)(0.8, 0.6)^T`, error
# 2.0991. The rank-adaptive step:
#
# 1. K- and L-steps as before, `K1 = L1 = (4, 3)`; the augmented basis
#    `U_hat = orth[U0, K1] = orth[e1, (4, 3)] = [e1, e2] = I`, likewise `V_hat = I`;
# 2. Galerkin start `S_hat0 = (U_hat^T U0) S0 (V0^T V_hat) = diag(2, 0)`: this *is* `Y0`
#    (the augmented bases contain `U0`, `V0`);
# 3. S-step `S_hat1 = S_hat0 + h U_hat^T C V_hat = [[4, 3], [3, 0]]`, the exact `A(1)`;
# 4. truncation: `S_hat1` is symmetric with eigenvalues `2 ± sqrt(13)`, so its singular
#    values are `sigma = (sqrt(13) + 2, sqrt(13) - 2) = (5.6056, 1.6056)` and
#    `||S_hat1||_F = sqrt(16 + 9 + 9) = sqrt(34) = 5.8310`. Rank 1 is kept when the tail
#    `sigma_2 <= tau ||S_hat1||_F`, i.e. for `tau >= 1.6056 / 5.8310 = 0.2753`.
#
# With `tau = 0.3` the step returns the best rank-1 approximation of `A(1)` (error 1.6056,
# smaller than fixed-rank BUG's 2.0991) and its rank stays 1; with `tau = 0.2` it keeps rank
# 2 and is exact.

# %%
C22 = np.array([[2.0, 3.0], [3.0, 0.0]])
e1 = np.array([[1.0], [0.0]])
Y0_22 = LowRank(e1, np.array([[2.0]]), e1)
A1_22 = Y0_22.to_dense() + C22
sig22 = np.linalg.svd(A1_22, compute_uv=False)
tau_min = sig22[1] / np.linalg.norm(A1_22)
print(f"singular values of S_hat1 = A(1): {np.round(sig22, 4)}, ||S_hat1||_F = "
      f"{np.linalg.norm(A1_22):.4f}; rank 1 for tau >= {tau_min:.4f}")
assert round(tau_min, 4) == 0.2753
for tau22, rank22, err22 in ((0.3, 1, np.sqrt(13) - 2), (0.2, 2, 0.0)):
    Y22 = adaptive_bug_step(Y0_22, lambda t, Y: C22, 0.0, 1.0, tau22, inner="euler")
    e22 = np.linalg.norm(Y22.to_dense() - A1_22)
    print(f"tau = {tau22}: rank {Y22.rank}, singular values {np.round(np.diag(Y22.S), 4)}, "
          f"error {e22:.4f}")
    assert Y22.rank == rank22 and abs(e22 - err22) <= 1e-12

# %% [markdown]
# ### At size
#
# `truncate(U_hat, S_hat, V_hat, tol, relative=True)` computes `S_hat = P diag(sigma) Q^T`
# and returns `U1 = U_hat P[:, :r1]`, `S1 = diag(sigma_1..sigma_r1)`, `V1 = V_hat Q[:, :r1]`.
# Since `U_hat`, `V_hat` are orthonormal, the error is exactly the discarded tail of
# `sigma` (Eckart–Young on the small core):
#
# $$\|\hat U \hat S \hat V^\top - U_1 S_1 V_1^\top\|_F
#   = \Big(\sum_{j>r_1}\sigma_j^2\Big)^{1/2} \le \vartheta = \mathrm{tol}\cdot\|\hat S\|_F,$$
#
# and `r1` is the *smallest* rank meeting the bound. We check both for a range of
# tolerances, on a `2r x 2r` core with geometrically decaying singular values.

# %%
m, n, k = 50, 30, 16
U_hat, _ = np.linalg.qr(rng.standard_normal((m, k)))
V_hat, _ = np.linalg.qr(rng.standard_normal((n, k)))
sig = 0.5 ** np.arange(k)
P, _ = np.linalg.qr(rng.standard_normal((k, k)))
Q, _ = np.linalg.qr(rng.standard_normal((k, k)))
S_hat = P @ np.diag(sig) @ Q.T                     # a full, non-diagonal core
Y_hat = U_hat @ S_hat @ V_hat.T
norm_S = np.linalg.norm(S_hat)
slack = tolerance("truncation", size=m) * norm_S   # rounding only
print("  tol      rank r1   error/||S_hat||   bound holds   rank r1 - 1 would break it")
for tol in (1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-9):
    Y = truncate(U_hat, S_hat, V_hat, tol)
    err = np.linalg.norm(Y_hat - Y.to_dense())
    tail_one_less = np.sqrt(np.sum(sig[Y.rank - 1:] ** 2))   # the error with rank r1 - 1
    print(f"  {tol:7.0e}  {Y.rank:5d}      {err / norm_S:12.3e}      {err <= tol * norm_S + slack}"
          f"          {Y.rank == 1 or tail_one_less > tol * norm_S}")
    assert err <= tol * norm_S + slack
    assert Y.rank == 1 or tail_one_less > tol * norm_S           # minimal

# %% [markdown]
# **A detail that matters.** The published DLRT code of [SZKCT22] loops
# `for j in range(0, 2r - 1): if norm(sigma[j : 2r - 1]) < tol: break` over the `2r`
# singular values of the augmented core, starting from the old rank `r`: its tail never
# includes the *last* singular value `sigma_{2r}`, and when no `j` breaks the loop the rank
# stays the old `r` (tutorial 06 shows the oracle catching both). `lowrank_ref` counts every
# value (see the docstring of `lowrank_ref.truncation`). With `sigma = (1, 0.5, 0.01, 0.01)` and an
# absolute tolerance `0.012`, the published rule keeps rank 2 and discards
# `||(0.01, 0.01)|| = 0.0141 > 0.012`, breaking the bound:

# %%
def published_rank(sigma, tol):
    """The published loop on the 2r singular values of an augmented core."""
    two_r = len(sigma)
    for j in range(0, two_r - 1):
        if np.linalg.norm(sigma[j:two_r - 1]) < tol:
            return j
    return two_r // 2                # no j broke the loop: the rank stays the old r


sigma4, tol_abs = np.array([1.0, 0.5, 0.01, 0.01]), 0.012
r_pub = published_rank(sigma4, tol_abs)
r_ours = truncation_rank(sigma4, tol_abs, relative=False)
err_pub, err_ours = (np.sqrt(np.sum(sigma4[q:] ** 2)) for q in (r_pub, r_ours))
print(f"published rule: rank {r_pub}, error {err_pub:.4f};  lowrank_ref: rank {r_ours}, "
      f"error {err_ours:.4f};  tolerance {tol_abs}")
assert err_pub > tol_abs and err_ours <= tol_abs

# %% [markdown]
# ## 2. One rank-adaptive step by hand
#
# Our problem is a *forced* matrix ODE whose rank grows:
#
# $$\dot A = E A + A E^\top + b\,c^\top,\qquad A(0) = u v^\top\ (\text{rank } 1),$$
#
# with `E = W - I/2` (`W` skew-symmetric: rotation, `-I/2`: decay) and unit vectors `b`, `c`
# (`E`, not `L`: in these tutorials `L = V S^T` is the L-factor).
# The solution `A(t) = e^{tE} A(0) e^{tE^T} + int_0^t e^{sE} b c^T e^{sE^T} ds` accumulates
# rotated copies of `b c^T`: its numerical rank grows with `t` (like a finite-time
# controllability Gramian).
#
# We write one step with `inner="euler"` by hand. For the augmented basis we use an SVD of
# `[K1, U0]` and drop singular values at rounding level — a *rank-revealing*
# orthonormalisation (a plain QR of a rank-deficient block would add round-off directions;
# docs/design.md, section "Architecture"). The package's `augment_basis` keeps `U0` as the first block instead;
# both span the same space, so the results agree as matrices.

# %%
R = rng.standard_normal((N, N))
E_op = (R - R.T) / np.sqrt(2 * N) - 0.5 * np.eye(N)      # E = W - I/2
b = rng.standard_normal((N, 1)); b /= np.linalg.norm(b)
c = rng.standard_normal((N, 1)); c /= np.linalg.norm(c)


def F(t, A):
    return E_op @ A + A @ E_op.T + b @ c.T


def orth_rank_revealing(B):
    Qb, s, _ = np.linalg.svd(B, full_matrices=False)
    keep = s > max(B.shape) * np.finfo(float).eps * s[0]
    return Qb[:, keep]


def adaptive_step_by_hand(Y0, F, t0, h, tol):
    U0, S0, V0 = Y0
    K1 = U0 @ S0 + h * F(t0, Y0.to_dense()) @ V0          # K-step (one Euler step)
    L1 = V0 @ S0.T + h * F(t0, Y0.to_dense()).T @ U0      # L-step (one Euler step)
    U_hat = orth_rank_revealing(np.hstack([K1, U0]))
    V_hat = orth_rank_revealing(np.hstack([L1, V0]))
    S_hat0 = (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat)          # Y0 in the augmented bases
    S_hat1 = S_hat0 + h * U_hat.T @ F(t0, U_hat @ S_hat0 @ V_hat.T) @ V_hat   # Galerkin
    Pc, s, Qct = np.linalg.svd(S_hat1)
    theta = tol * np.linalg.norm(s)
    tails = np.sqrt(np.cumsum((s ** 2)[::-1])[::-1])      # tails[j] = ||s[j:]||
    r1 = next((j for j in range(1, len(s)) if tails[j] <= theta), len(s))
    return LowRank(U_hat @ Pc[:, :r1], np.diag(s[:r1]), V_hat @ Qct[:r1].T), U_hat, S_hat0, V_hat


Ystart = LowRank.random(rng, N, N, 3, singular_values=[1.0, 0.3, 0.1])
h, tol = 0.05, 1e-8
Y_hand, U_hat, S_hat0, V_hat = adaptive_step_by_hand(Ystart, F, 0.0, h, tol)
Y_pack = adaptive_bug_step(Ystart, F, 0.0, h, tol)
start_err = np.linalg.norm(U_hat @ S_hat0 @ V_hat.T - Ystart.to_dense())
diff = np.linalg.norm(Y_hand.to_dense() - Y_pack.to_dense()) / np.linalg.norm(Y_pack.to_dense())
print(f"augmented bases: U_hat {U_hat.shape}, V_hat {V_hat.shape} (r = {Ystart.rank})")
print(f"||U_hat S_hat0 V_hat^T - Y0|| = {start_err:.1e}  (the Galerkin start is Y0)")
print(f"rank after the step: by hand {Y_hand.rank}, package {Y_pack.rank}; "
      f"||by hand - package|| / ||Y1|| = {diff:.1e}")
assert start_err <= tolerance("reconstruction", size=N)
assert diff <= tolerance("step", size=N)

# %% [markdown]
# ## 3. What rank adaptivity cannot see
#
# The augmented bases contain only directions produced by `F(t, Y) V0` and `F(t, Y)^T U0`.
# A change that is new on *both* sides — in `(I - U0 U0^T) F (I - V0 V0^T)`, the normal
# component of tutorial 01 — is invisible. Take `F = b c^T` with `b` orthogonal to `U0` and
# `c` orthogonal to `V0`, from the rank-3 `Y0` of section 2: `A(t) = Y0 + t b c^T` has rank
# 4, but `P(Y) F = 0`, so the DLRA solution, and every step of the integrator, stays at
# `Y0`. The error is the modelling error `t ||(I - P) F||` of DLRA, whatever the tolerance.

# %%
U0_, _, V0_ = Ystart
b_perp = b - U0_ @ (U0_.T @ b)
c_perp = c - V0_ @ (V0_.T @ c)
F_normal = lambda t, A: b_perp @ c_perp.T                 # noqa: E731
Yn = Ystart
for step in range(10):
    Yn = adaptive_bug_step(Yn, F_normal, step * 0.1, 0.1, tol=1e-12)
A_exact = Ystart.to_dense() + 1.0 * b_perp @ c_perp.T
rank_exact = np.linalg.matrix_rank(A_exact)
err_normal = np.linalg.norm(Yn.to_dense() - A_exact)
print(f"after 10 steps: rank {Yn.rank} (exact solution has rank {rank_exact}), unchanged: "
      f"{np.allclose(Yn.to_dense(), Ystart.to_dense(), atol=1e-13)}, error {err_normal:.4f} "
      f"= t ||b_perp c_perp^T|| = {np.linalg.norm(b_perp @ c_perp.T):.4f}")
assert Yn.rank == Ystart.rank and abs(err_normal - np.linalg.norm(b_perp @ c_perp.T)) < 1e-12

# %% [markdown]
# **A milder form: the one-step delay.** The augmented basis of a step is `[U0, K1]`, and
# `K1 = U0 S0 + h F(t0, Y0) V0` contains only the directions that `F` produces *through the
# current* `V0`. A direction that `F` produces only through a direction *not yet* in `V0`
# enters `U_hat` one step later — after an L-step has put that direction into `V`. This is a
# property of the augmentation, and it is easy to build: with
# `F(t, Y) = (b_perp + Y g) c_perp^T` (the same `b_perp`, `c_perp`; any vector `g`),
#
# * `F V0 = 0` (since `c_perp ⟂ V0`): the first K-step adds nothing, `b_perp` stays outside
#   `U1`;
# * `F^T U0 = c_perp (g^T Y0^T U0)`: the first L-step adds `c_perp` to `V`;
# * at the second step `F V1 = (b_perp + Y1 g)(c_perp^T V1) != 0`, and `b_perp` enters `U`.

# %%
g = np.random.default_rng(7).standard_normal((N, 1))     # own generator: sections 4-5 unchanged
F_delay = lambda t, Y: (b_perp + Y @ g) @ c_perp.T      # noqa: E731
bn, cn = b_perp / np.linalg.norm(b_perp), c_perp / np.linalg.norm(c_perp)
Yd = Ystart
seen = []
for step in range(2):
    Yd = adaptive_bug_step(Yd, F_delay, 0.1 * step, 0.1, tol=1e-12)
    seen.append((np.linalg.norm(Yd.U.T @ bn), np.linalg.norm(Yd.V.T @ cn)))
    print(f"after step {step + 1}: rank {Yd.rank}; part of b_perp in span(U): {seen[-1][0]:.1e}, "
          f"part of c_perp in span(V): {seen[-1][1]:.1e}")
assert seen[0][0] < 1e-12 and seen[0][1] > 0.1           # step 1: c_perp in V, b_perp not in U
assert seen[1][0] > 0.1                                  # step 2: b_perp arrives in U

# %% [markdown]
# In the forced problem of section 4 the same happens along the way: directions that the
# rotation `W` and the forcing create from directions just added to the bases are seen one
# step later. Each step loses a part of size `O(h^2)`, an `O(h)` error after `T/h` steps.
#
# ## 4. Ranks that follow the solution
#
# We integrate from the rank-1 `A(0)` to `T` with `h = 0.01` for several tolerances and
# compare the rank of `Y` with the *numerical rank* of the exact `A(t)` at the same
# tolerance (the same rule, `truncation_rank(svd(A(t)), tol)`). The reference `A(t)` is RK4
# on the full `N x N` problem (error ~1e-12).

# %%
def rk4_full(A, t, h, substeps=4):
    tau = h / substeps
    for i in range(substeps):
        s_ = t + i * tau
        k1 = F(s_, A); k2 = F(s_ + tau / 2, A + tau / 2 * k1)
        k3 = F(s_ + tau / 2, A + tau / 2 * k2); k4 = F(s_ + tau, A + tau * k3)
        A = A + tau / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return A


A0 = LowRank.random(rng, N, N, 1, singular_values=[1.0])
h = 0.01
nsteps = int(round(T / h))
times = h * np.arange(1, nsteps + 1)
reference = []
A = A0.to_dense()
for k_ in range(nsteps):
    A = rk4_full(A, k_ * h, h)
    reference.append(A)

tols = (1e-3, 1e-6, 1e-9)
ranks = {tol: [] for tol in tols}
numranks = {tol: [] for tol in tols}
errs = {}
for tol in tols:
    Y = A0
    for k_ in range(nsteps):
        Y = adaptive_bug_step(Y, F, k_ * h, h, tol)
        ranks[tol].append(Y.rank)
        numranks[tol].append(truncation_rank(np.linalg.svd(reference[k_], compute_uv=False),
                                             tol))
    errs[tol] = np.linalg.norm(Y.to_dense() - reference[-1]) / np.linalg.norm(reference[-1])

print("  t    " + "".join(f"  tol={tol:.0e}: rank / num.rank" for tol in tols))
for k_ in np.linspace(0, nsteps - 1, 7).astype(int):
    print(f"{times[k_]:5.2f}  " + "".join(f"          {ranks[tol][k_]:3d} / {numranks[tol][k_]:3d}"
                                          "        " for tol in tols))
gaps = {tol: np.array(ranks[tol]) - np.array(numranks[tol]) for tol in tols}
for tol in tols:
    print(f"tol = {tol:.0e}: rank - numerical rank over [0, T] in [{gaps[tol].min()}, "
          f"{gaps[tol].max()}]; relative error at T = {T}: {errs[tol]:.2e}")
assert np.abs(gaps[1e-6]).max() <= 2                       # tol = 1e-6: follows within +-2
assert gaps[1e-3].max() <= 0                               # tol = 1e-3: never too high
assert gaps[1e-9].max() >= 2 and 1e-3 <= errs[1e-9] <= 1e-1   # overshoot; O(h) error ~1e-2

# %% [markdown]
# For `tol = 1e-6` the rank follows the numerical rank of `A(t)` within ±2, growing from 1.
# The other two tolerances show that the rank of `Y` reflects *`Y`'s* singular values, which
# include the integrator's error:
#
# * the error is **first order in h**, not of size `tol`: [CKL22] bound it by
#   `c1 eps + c2 h + c3 n theta` (`eps`: modelling error, `n theta`: accumulated truncation
#   errors). Here the `O(h)` part comes from the Euler substeps and the one-step delay in
#   seeing new directions (section 3);
# * with `tol = 1e-9`, far below that `O(h)` error (~1e-2), the error's own singular values
#   exceed `tol` and the rank overshoots the numerical rank of `A(t)` by a few;
# * with the coarse `tol = 1e-3` the rank stays too low and the error is much larger:
#   each step throws away the newly created small directions before they can grow, and
#   `n theta` accumulates over `n = T/h` steps — the tolerance per step should be small
#   compared with the change per step.
#
# The slope of the error in `h` for `tol = 1e-9`:

# %%
H = np.array([0.04, 0.02, 0.01, 0.005])
T_slope = 1.0
A = A0.to_dense()
for k_ in range(400):
    A = rk4_full(A, k_ * T_slope / 400, T_slope / 400, substeps=1)
err_h = []
for h_ in H:
    Y = A0
    for k_ in range(int(round(T_slope / h_))):
        Y = adaptive_bug_step(Y, F, k_ * h_, h_, 1e-9)
    err_h.append(np.linalg.norm(Y.to_dense() - A) / np.linalg.norm(A))
slope = fit_slope(H, err_h)
print(f"h = {H}: relative errors at t = 1: "
      f"{np.array2string(np.array(err_h), formatter={'float_kind': lambda x: f'{x:.2e}'})}, "
      f"slope {slope:.2f}")
assert 0.8 <= slope <= 1.2
assert errs[1e-3] > 5 * errs[1e-9]

# %% [markdown]
# The figure: left, the ranks of section 4 against the numerical rank of `A(t)` (dashed, same
# colour, same tolerance). Right, the quantity the rank rule tests — not single singular
# values but the *tail* `||(sigma_{r+1}, sigma_{r+2}, ...)|| / ||sigma||` discarded by a
# truncation to rank `r` — for the exact `A(T)`; the rank chosen for a tolerance is the first
# `r` at which the tail falls below it (circles).

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for tol, style in zip(tols, ("C0", "C1", "C2")):
    ax1.plot(times, ranks[tol], style, label=f"adaptive BUG, tol = {tol:.0e}")
    ax1.plot(times, numranks[tol], style + "--", lw=1)
ax1.plot([], [], "k--", lw=1, label="numerical rank of A(t), same tol (dashed)")
ax1.set_xlabel("t"); ax1.set_ylabel("rank"); ax1.legend(fontsize=7)
ax1.set_title(f"forced problem, N = {N}, h = {h}")
s_end = np.linalg.svd(reference[-1], compute_uv=False)
tail_end = np.sqrt(np.cumsum((s_end ** 2)[::-1])[::-1]) / np.linalg.norm(s_end)   # ||s[j:]||
jj = np.arange(0, 25)
ax2.semilogy(jj, tail_end[jj], "k.-", lw=0.8, label="tail ||(sigma_{r+1}, ...)|| / ||sigma||")
for tol, style in zip(tols, ("C0", "C1", "C2")):
    ax2.axhline(tol, color=style, ls=":")
    r_tol = truncation_rank(s_end, tol)
    ax2.plot(r_tol, tail_end[r_tol], "o", color=style, ms=8, mfc="none",
             label=f"tol = {tol:.0e}: rank {r_tol}")
ax2.set_xlabel("rank r"); ax2.set_ylabel("discarded part / ||A(T)||_F"); ax2.legend(fontsize=8)
ax2.set_title(f"the rank rule at T = {T}: smallest r with tail <= tol")
fig.tight_layout()
show(fig, "03_rank_adaptivity")

# %% [markdown]
# ## 5. Second order: the midpoint BUG, and why it needs the augmented basis
#
# The explicit midpoint rule `Y1 = Y0 + h F(t_half, Y_half)` is second order even if
# `Y_half ≈ Y(t0 + h/2)` is only first-order accurate: its error enters multiplied by `h`.
# The midpoint BUG integrator ([CEKL24] Ceruti, Einkemmer, Kusch & Lubich, BIT 64 (2024);
# `midpoint_bug_step`) does this on the low-rank manifold: `Y_half = U_half S_half V_half^T`
# is a half step of the rank-adaptive BUG of sections 2-4, `F_half = F(t_half, Y_half)`
# gives the direction of the flow at the midpoint, and the step is a Galerkin step over the
# whole interval in the augmented bases
#
# $$\hat U = \mathrm{orth}[U_0,\ U_{1/2},\ F_{1/2} V_{1/2}],\qquad
#   \hat V = \mathrm{orth}[V_0,\ V_{1/2},\ F_{1/2}^\top U_{1/2}],$$
#
# $$\dot S = \hat U^\top F(t, \hat U S \hat V^\top)\,\hat V,\quad S(t_0) = \hat U^\top Y_0 \hat V,
#   \qquad Y_1 = \hat U S(t_0 + h) \hat V^\top,$$
#
# then truncated. Its flows must be solved to second order or better (here one classical
# Runge-Kutta step each, `inner="rk4"`, the default of `midpoint_bug_step`). Truncating the
# half step to rank r gives at most `3r` columns (`variant="3r"`); keeping it at its
# augmented rank `2r` gives `4r` (`variant="4r"`, the default). In this section we use the
# 3r variant and hold both truncations, of the half step and of the result, at the rank `r`
# of `Y0` (`min_rank = max_rank = r`), so that the orders below compare fixed-rank methods.
# Which columns does `U_hat` need? We leave each out in turn and fit the order on the toy
# problem of [CL22] in its ODE form (`ToyProblem(form="ode")`, the Sylvester flow of
# tutorial 02, section 2), whose solution from the best rank-r approximation is known
# exactly and has rank r.

# %%
from lowrank_ref.integrators import integrate, midpoint_bug_step
from lowrank_ref.odes import ToyProblem

toy = ToyProblem(np.random.default_rng(0), 20 if FAST else 40, form="ode")
r_mid = 4
Y0_mid = toy.best_approximation(0.0, r_mid)
A_end = toy.best_approximation(1.0, r_mid).to_dense()
H_mid = np.array([0.1, 0.05, 0.025, 0.0125])


def midpoint_by_hand(Y0, F, t0, h, columns):
    """A midpoint BUG step (half step truncated to rank r: the 3r variant) whose bases span
    the given ``columns`` (a subset of "U0", "U_half", "F_half V_half"); every flow by one
    classical Runge-Kutta step."""
    U0, S0, V0 = Y0
    r = Y0.rank
    U_half, S_half, V_half = adaptive_bug_step(Y0, F, t0, h / 2, 0.0, min_rank=r,
                                               max_rank=r, inner="rk4")
    F_half = F(t0 + h / 2, U_half @ S_half @ V_half.T)
    pick = {"U0": (U0, V0), "U_half": (U_half, V_half),
            "F_half V_half": (F_half @ V_half, F_half.T @ U_half)}
    U_hat = orth_rank_revealing(np.hstack([pick[c][0] for c in columns]))
    V_hat = orth_rank_revealing(np.hstack([pick[c][1] for c in columns]))
    galerkin = lambda t, S: U_hat.T @ F(t, U_hat @ S @ V_hat.T) @ V_hat   # noqa: E731
    S_hat1 = integrate(galerkin, (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat), t0, h, "rk4", 1)
    return truncate(U_hat, S_hat1, V_hat, 0.0, min_rank=r, max_rank=r)


def order(step):
    errs = []
    for h_ in H_mid:
        Y = Y0_mid
        for k_ in range(int(round(1.0 / h_))):
            Y = step(Y, toy.F, k_ * h_, h_)
        errs.append(np.linalg.norm(Y.to_dense() - A_end) / np.linalg.norm(A_end))
    return fit_slope(H_mid, errs), errs[-1]


variants = {"U0, U_half, F_half V_half": ["U0", "U_half", "F_half V_half"],
            "without U0": ["U_half", "F_half V_half"],
            "without F_half V_half": ["U0", "U_half"],
            "without U_half": ["U0", "F_half V_half"],
            "U_half only": ["U_half"]}
slopes_mid = {}
print(f"toy problem (ODE form), N = {toy.m}, r = {r_mid}, h = {H_mid}")
for label, cols in variants.items():
    slopes_mid[label], last = order(lambda Y, F, t, h, c=cols: midpoint_by_hand(Y, F, t, h, c))
    print(f"  bases: {label:27s}  fitted order {slopes_mid[label]:5.2f}, "
          f"error at h = {H_mid[-1]}: {last:.1e}")
pkg = midpoint_bug_step(Y0_mid, toy.F, 0.0, 0.1, 0.0, min_rank=r_mid, max_rank=r_mid,
                        variant="3r")
hand = midpoint_by_hand(Y0_mid, toy.F, 0.0, 0.1, variants["U0, U_half, F_half V_half"])
agree = np.linalg.norm(pkg.to_dense() - hand.to_dense()) / np.linalg.norm(pkg.to_dense())
print(f"by hand vs midpoint_bug_step(variant='3r'): relative difference {agree:.1e}")
assert abs(slopes_mid["U0, U_half, F_half V_half"] - 2) <= 0.15
assert slopes_mid["without U0"] <= 1.3 and slopes_mid["without F_half V_half"] <= 1.3
assert slopes_mid["U_half only"] <= 0.5
assert agree <= tolerance("step", size=toy.m)

# %% [markdown]
# * **`U0`** must be in the basis because the step starts from `Y0`: without it
#   `P_U_hat Y0 P_V_hat != Y0`, an error proportional to how far the basis moved, `O(h)`
#   per step -- the method drops to first order. (The same reason as the Galerkin start of
#   section 2.)
# * **`F_half V_half`** carries the direction in which the solution moves at the midpoint:
#   without it the step can only follow the flow with the basis of the *half* step, and
#   the method is first order again.
# * **`U_half`** did not matter on this problem (its columns are nearly in the span of the
#   other two); the authors' public code and `midpoint_bug_step` include it.
# * With the half-step basis alone (`U_half only`) the step does not even converge: `Y0`
#   is not representable.
#
# The same idea at every stage of an explicit Runge-Kutta method gives the Runge-Kutta BUG
# integrator ([NR25] Nobile & Riffaud, `rk_bug_step`): stage `i` is the Galerkin projection
# of the Runge-Kutta stage onto bases grown by `F_j V_j` of every earlier stage. On
# rank-preserving problems it has the order of its tableau; on a rank-growing problem its
# order is that of the tableau only while the new directions can be seen from the bases:
# where a source lies outside `span(U0)`, `span(V0)`, every tableau is about second order
# (`tests/test_high_order_orders.py` names the problems, `figures/integrators_high_order.png`
# shows them). The second-order parallel BUG ([Kus24] Kusch, `second_order_parallel_bug_step`)
# augments the bases by `F(Y0)` first and then runs the K-, L- and S-flows in parallel.
#
# ## What the real-scale method does differently
#
# * The augmented bases are built from `K1` and `L1` computed through the factors (never an
#   `m x n` matrix), and the `2r x 2r` Galerkin problem is formed from `F` applied to the
#   augmented bases; the truncation SVD is of the `2r x 2r` core only — as here.
# * Tolerances are chosen relative to the problem (here `tol * ||S_hat||_F`) and usually
#   together with `max_rank` (memory) and `min_rank`; in training ([SZKCT22]) a relative
#   `tau` of a few percent is typical, because the "solution" is a network, not a matrix to
#   reproduce.
# * The parallel integrator of [CKL24] (`parallel_bug_step`) computes the K-, L- and
#   S-steps all from `Y0` at once, at the price of losing exactness (tutorial 02's property).
# * For problems with a dominant normal component (section 3) the rank is increased by other
#   means (e.g. adding directions of `F` itself, or a step-rejection strategy).

# %%
print(f"tutorial 03 finished in {time.perf_counter() - T_START:.1f} s")

# %% [markdown]
# ## Recap
#
# * The rank-adaptive BUG step augments the bases with the K- and L-steps' results,
#   `U_hat = orth[U0, K1]`, `V_hat = orth[V0, L1]` (at most `2r` columns), takes a Galerkin
#   step in them from `Y0` itself, and truncates the core to the smallest rank whose
#   discarded tail `sqrt(sum_{j > r1} sigma_j^2)` is at most `theta` (`tol` or
#   `tol * ||S_hat||_F`): that tail *is* the truncation error.
# * The published DLRT loop leaves the last singular value out of the tail and keeps the old
#   rank when no index meets the tolerance; the package's rule counts every value.
# * The rank can grow by at most `r` per step, and only in directions that `F` produces
#   through the current bases: a change new on both sides is invisible, and a direction
#   produced through a new direction arrives one step late.
# * The rank follows `Y`'s singular values, error included: a tolerance far below the
#   `O(h)` error overshoots, a coarse one throws away what would grow.
# * The midpoint BUG reaches order 2 by one more Galerkin step in bases that contain `U0`
#   and the midpoint direction `F(Y_half) V_half`.

# %% [markdown]
# ## Where this lives in the library
#
# | claim | function | module | test |
# |---|---|---|---|
# | truncation error `<= tol`, minimal rank | `truncate`, `truncation_rank` | `lowrank_ref.truncation` | `tests/test_truncation.py::test_truncate_meets_bound_and_is_minimal` |
# | the published loop can exceed the tolerance | `truncation_rank` | `lowrank_ref.truncation` | `tests/test_truncation.py::test_published_rule_can_exceed_tolerance_ours_does_not` |
# | rank-revealing augmentation `[U0, K1]` | `augment_basis` | `lowrank_ref.lowrank` | `tests/test_lowrank.py::test_augment_basis_rank_deficient_new_directions` |
# | the augmented Galerkin start is `Y0` | `adaptive_bug_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_augmented_galerkin_start_equals_Y0` |
# | ranks within `[min_rank, max_rank]`, at most `2r` | `adaptive_bug_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_rank_bounds` |
# | the rank-adaptive BUG decreases a gradient flow's objective | `adaptive_bug_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_descent_adaptive_bug_on_gradient_flow` |
# | the midpoint BUG is second order | `midpoint_bug_step` | `lowrank_ref.integrators` | `tests/test_high_order_orders.py::test_fitted_order` |
#
# ## Exercises
#
# Answers: `tutorials/solutions/03_solutions.py` (each checked by an `assert`).
#
# 1. In the `2 x 2` example, use an **absolute** tolerance instead (`relative=False`):
#    for which `tol` is rank 1 kept? What is the truncation error then?
# 2. How fast can the rank grow? Start the forced problem of section 2 from a rank-1 `A(0)`
#    with `tol = 0` (no truncation beyond exact zeros): what are the ranks after one, two and
#    three steps, and why?
# 3. Apply the published truncation loop of section 1 to `sigma = (1, 0.5, 0.01, 0.01)` with
#    the absolute tolerance `0.015`. Does it meet the bound this time? For which tolerances
#    in `[0.01, 0.02]` do the two rules pick different ranks?
# 4. **Write a rank-adaptive BUG step and pass the oracle.** Write
#    `my_adaptive_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank,
#    inner, substeps)` for `F(t, Y) = A1 Y + Y A2 + B`, one explicit Euler step per sub-flow,
#    with NumPy only: the K- and L-steps, the augmented bases (rank-revealing, as
#    `orth_rank_revealing` of section 2), the Galerkin step from `Y0`, and the truncation of
#    section 1 clamped to `[min_rank, min(max_rank, k)]`; return `{"U", "S", "V"}`. It passes
#    when `oracle.check("adaptive_bug_step", my_adaptive_bug_step).passed` is true. Then
#    replace the tail rule by the published loop above: which case fails, on which
#    quantity?
