# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 — Dynamical low-rank approximation (DLRA)
#
# A matrix that changes in time, `A(t)` of shape `(m, n)`, is often close to a matrix of
# low rank `r`. Computing its best rank-`r` approximation at every time by an SVD costs
# `O(m n min(m, n))` per time. *Dynamical low-rank approximation* ([KL07] Koch & Lubich,
# SIAM J. Matrix Anal. Appl. 29, 2007) instead evolves a rank-`r` matrix
#
# $$Y(t) = U(t)\, S(t)\, V(t)^\top,\qquad U^\top U = I_r,\quad V^\top V = I_r,$$
#
# by a differential equation on the manifold `M_r` of rank-`r` matrices: at each time the
# derivative `Ydot` is chosen in the tangent space `T_Y M_r` so that the *defect* is smallest,
#
# $$\dot Y = \arg\min_{\delta \in T_Y\mathcal M_r} \|\delta - \dot A(t)\|_F
#          \quad\Longleftrightarrow\quad \dot Y = P(Y)\,\dot A(t),$$
#
# where `P(Y)` is the orthogonal projection onto the tangent space. For a matrix ODE
# `Adot = F(t, A)` the same construction gives `Ydot = P(Y) F(t, Y)`.
#
# This tutorial
#
# 1. sets up the standard test of [CL22] (Ceruti & Lubich, BIT 62 (2022)):
#    `A(t) = e^{t W1} e^t D e^{t W2}^T` with `D = diag(2^-1, 2^-2, ..., 2^-N)` and random
#    skew-symmetric `W1`, `W2` (`lowrank_ref.odes.ToyProblem`);
# 2. builds the tangent-space projection and checks numerically that it *is* an orthogonal
#    projection;
# 3. integrates the DLRA equations and compares with the best rank-`r` approximation;
# 4. shows why integrating the DLRA equations *in factored form* (they contain `S^{-1}`)
#    breaks down when the smallest kept singular value is small — the reason the integrators
#    of tutorial 02 exist.
#
# Read it on the documentation site, where it was run with its outputs and figures
# (`docs/tutorials/`), run it as a script (`python
# tutorials/01_dynamical_low_rank_approximation.py`, from any folder: figures open in a
# window), or open it as a notebook with jupytext. `LOWRANK_REF_FAST=1` shrinks the sizes;
# `LOWRANK_REF_TUTORIAL_OUT=DIR` also saves the figures as PNG files in `DIR`. Every tutorial
# ends with a recap, a table of where its pieces live in the library and exercises (answers
# in `tutorials/solutions/`).

# %%
import os
import time

import numpy as np

import matplotlib.pyplot as plt

from lowrank_ref import LowRank
from lowrank_ref.lowrank import normal_part, tangent_project
from lowrank_ref.checks import fit_slope
from lowrank_ref.integrators import projector_splitting_step
from lowrank_ref.odes import ToyProblem

from lowrank_ref.figures.display import show   # plt.show(); a PNG file only on request
from lowrank_ref.threads import set_blas_threads

set_blas_threads()   # the package's BLAS thread count (1) for this script: small products
                     # and factorisations are much slower with a thread pool (lowrank_ref.threads)
FAST = os.environ.get("LOWRANK_REF_FAST") == "1"
T_START = time.perf_counter()

rng = np.random.default_rng(2022)
N = 40 if FAST else 100          # [CL22] use N = 100
r = 10
print(f"FAST={FAST}: N = {N}, r = {r}")

# %% [markdown]
# ## 1. The toy problem and its best rank-r approximation
#
# `W1`, `W2` are random skew-symmetric matrices, so `e^{t W1}`, `e^{t W2}` are orthogonal
# and the singular values of `A(t)` are known exactly: `sigma_j(t) = e^t 2^{-j}`. By the
# Eckart–Young theorem the best rank-`r` approximation `X(t)` (the truncated SVD) has the
# error
#
# $$\|X(t) - A(t)\|_F = \Big(\sum_{j > r} \sigma_j(t)^2\Big)^{1/2}
#   = e^t\, 2^{-r} \sqrt{(1 - 4^{r-N})/3}.$$
#
# The problem comes in a "data" form: `F(t, A)` returns `Adot(t)` of the exact solution and
# ignores its argument — the "given matrix" case of [KL07].

# %%
prob = ToyProblem(rng, N)                      # form="data": F(t, A) = dA/dt (t)
A1 = prob.exact(1.0)
s = np.linalg.svd(A1, compute_uv=False)
print("sigma_1..3(A(1))   :", np.round(s[:3], 6), " expected e/2, e/4, e/8:",
      np.round(np.e * 2.0 ** -np.arange(1, 4), 6))
best_svd = np.sqrt(np.sum(s[r:] ** 2))
print(f"best rank-{r} error at t=1: SVD tail {best_svd:.6e}, "
      f"closed form {prob.best_error(1.0, r):.6e}")
assert np.allclose(s[:r], prob.singular_values(1.0)[:r], rtol=1e-10)
assert abs(best_svd - prob.best_error(1.0, r)) <= 1e-10 * best_svd

# %% [markdown]
# ## 2. The tangent space and its orthogonal projection
#
# Differentiating `Y = U S V^T` with the gauge conditions `U^T Udot = 0`, `V^T Vdot = 0`
# shows that the tangent space at `Y` is
# `T_Y M_r = { U S' V^T + U' S V^T + U S V'^T : U^T U' = 0, V^T V' = 0 }`,
# and the orthogonal (Frobenius) projection onto it is ([KL07]; [LO14] Lubich & Oseledets,
# BIT 54 (2014), where it is the starting point of the splitting)
#
# $$P(Y) Z = U U^\top Z + Z V V^\top - U U^\top Z V V^\top .$$
#
# Equivalently `(I - P(Y)) Z = (I - U U^T) Z (I - V V^T)`: the part of `Z` that is new on
# *both* sides is what the tangent space cannot follow. We check the defining properties:
# `P^2 = P`, `P` self-adjoint, `P(Y) Y = Y`, `rank P(Y) Z <= 2r`, and that `P(Y) Z` is the
# nearest tangent vector to `Z`.
#
# The package writes it once, beside the factor type: `lowrank.tangent_project(Y, Z)`
# computes `U (U^T Z) + (Z V - U (U^T Z V)) V^T` (only `U` and `V` of `Y` matter), and
# `lowrank.normal_part(Y, Z)` the rest, `(I - U U^T) Z (I - V V^T)`.

# %%
Y = LowRank.random(rng, N, N, r)
U, S, V = Y
Z1, Z2 = rng.standard_normal((N, N)), rng.standard_normal((N, N))
PZ1 = tangent_project(Y, Z1)
idem = np.linalg.norm(tangent_project(Y, PZ1) - PZ1) / np.linalg.norm(PZ1)
sym = abs(np.vdot(PZ1, Z2) - np.vdot(Z1, tangent_project(Y, Z2))) / (
    np.linalg.norm(Z1) * np.linalg.norm(Z2))
fix = np.linalg.norm(tangent_project(Y, Y.to_dense()) - Y.to_dense()) / np.linalg.norm(S)
normal = normal_part(Y, Z1)
normal_formula = np.linalg.norm(normal - (Z1 - U @ (U.T @ Z1)) @ (np.eye(N) - V @ V.T))
rank_PZ = np.linalg.matrix_rank(PZ1)
print(f"||P(PZ) - PZ|| / ||PZ||          = {idem:.1e}")
print(f"|<PZ1, Z2> - <Z1, PZ2>| (scaled) = {sym:.1e}")
print(f"||P(Y) Y - Y|| / ||Y||           = {fix:.1e}")
print(f"(I - P) Z vs its closed form     = {normal_formula:.1e}")
print(f"rank of P(Y) Z                   = {rank_PZ} (2r = {2 * r}, N = {N})")
assert max(idem, sym, fix) < 1e-13 and normal_formula < 1e-12 and rank_PZ <= 2 * r

# P(Y) Z is the nearest tangent vector: the defect Z - P(Y) Z is orthogonal to the tangent
# space, so for any other tangent vector P(Y) Z + delta (Pythagoras)
#     ||P(Y) Z + delta - Z||^2 = ||P(Y) Z - Z||^2 + ||delta||^2  >=  ||P(Y) Z - Z||^2.
delta = tangent_project(Y, rng.standard_normal((N, N)))
lhs = np.linalg.norm(PZ1 + delta - Z1) ** 2
rhs = np.linalg.norm(normal) ** 2 + np.linalg.norm(delta) ** 2
print(f"Pythagoras: ||PZ + delta - Z||^2 = {lhs:.10f}, ||PZ - Z||^2 + ||delta||^2 = {rhs:.10f}")
assert abs(lhs - rhs) <= 1e-12 * rhs

# %% [markdown]
# **A picture of the manifold and its tangent space.** Symmetric `2 x 2` matrices
# `[[a, b], [b, c]]` form a 3-dimensional space; in the coordinates `(a, sqrt(2) b, c)` its
# Euclidean length is the Frobenius norm, so angles and projections look right. The rank-1
# matrices among them (`a c = b^2`, zero left out) form a double cone: a 2-dimensional
# manifold `M_1` in this space. At a point `Y = u u^T` the tangent space is the plane that
# touches the cone along the line through `Y`; it is spanned by `u u^T` (moving along the
# line) and `u w^T + w u^T` with `w ⟂ u` (turning `u`). For a symmetric `Z`, `P(Y) Z` is the
# orthogonal projection of `Z` onto that plane, and the normal part `(I - P(Y)) Z` is the
# part along `w w^T`: new on both sides. The same `tangent_project` and `normal_part` as above
# draw it.

# %%
def coords(M):
    """A symmetric 2 x 2 matrix as a point of R^3 whose length is its Frobenius norm."""
    return np.array([M[0, 0], np.sqrt(2) * M[0, 1], M[1, 1]])


u = np.array([[np.cos(0.5)], [np.sin(0.5)]])
w = np.array([[-np.sin(0.5)], [np.cos(0.5)]])
Y_pic = 1.2 * u @ u.T                                   # a point of M_1
Z_pic = 0.4 * u @ u.T + 0.5 * (u @ w.T + w @ u.T) + 0.8 * w @ w.T   # a symmetric direction
Y_pic_lr = LowRank(u, np.array([[1.2]]), u)             # Y_pic as a LowRank
PZ_pic = tangent_project(Y_pic_lr, Z_pic)
normal_pic = normal_part(Y_pic_lr, Z_pic)
print("normal part (I - P) Z =", np.round(normal_pic, 4).tolist(),
      f"= {(w.T @ Z_pic @ w).item():.4f} w w^T: new on both sides")

fig = plt.figure(figsize=(6.5, 5.5))
ax = fig.add_subplot(projection="3d")
theta, s_ = np.meshgrid(np.linspace(0, np.pi, 25), np.linspace(-2.0, 2.0, 9))
cone = s_[..., None] * np.stack([np.cos(theta) ** 2, np.sqrt(2) * np.cos(theta) * np.sin(theta),
                                 np.sin(theta) ** 2], axis=-1)
ax.plot_wireframe(*cone.transpose(2, 0, 1), color="0.6", lw=0.5)
p_, q_ = np.meshgrid(np.linspace(-0.9, 0.9, 2), np.linspace(-0.9, 0.9, 2))
plane = (coords(Y_pic) + p_[..., None] * coords(u @ u.T)
         + q_[..., None] * coords(u @ w.T + w @ u.T) / np.sqrt(2))
ax.plot_surface(*plane.transpose(2, 0, 1), color="C0", alpha=0.35)
y0 = coords(Y_pic)
for vec, colour, label in ((Z_pic, "C3", "Z"), (PZ_pic, "C0", "P(Y) Z (tangent)")):
    ax.quiver(*y0, *coords(vec), color=colour, lw=2, arrow_length_ratio=0.12, label=label)
ax.plot(*np.stack([y0 + coords(PZ_pic), y0 + coords(Z_pic)]).T, "k--", lw=1,
        label="(I - P(Y)) Z (normal)")
ax.scatter(*y0, color="k", s=30, label="Y = 1.2 u u^T")
ax.set_xlabel("a"); ax.set_ylabel("sqrt(2) b"); ax.set_zlabel("c")
ax.set_title("rank-1 symmetric 2 x 2 matrices: the cone M_1,\nits tangent plane at Y", fontsize=10)
ax.view_init(elev=12, azim=-35)
ax.legend(fontsize=8, loc="upper left")
show(fig, "01_tangent_space")

# %% [markdown]
# ## 3. The DLRA equations in factored form, and the DLRA error
#
# Writing `Ydot = Udot S V^T + U Sdot V^T + U S Vdot^T = P(Y) Adot` and using the gauge
# `U^T Udot = 0 = V^T Vdot` gives the equations of motion of [KL07] (their Prop. 2.1):
#
# $$\dot S = U^\top \dot A V,\qquad
#   \dot U = (I - U U^\top)\, \dot A\, V S^{-1},\qquad
#   \dot V = (I - V V^\top)\, \dot A^\top U S^{-\top}.$$
#
# These are ODEs for small factors (`(N + N + r) r` numbers instead of `N^2`). Integrated
# with classical Runge–Kutta (RK4) and a small step from `Y(0) = X(0)` (the best
# approximation), they give the DLRA solution. [KL07] prove that the DLRA error stays of the
# size of the best-approximation error as long as the latter is small relative to
# `sigma_r`; here we just measure the ratio along the trajectory.

# %%
def factor_ode_rhs(t, U, S, V, F):
    """([KL07]) dU/dt, dS/dt, dV/dt for Y = U S V^T and dY/dt = P(Y) F(t, Y): needs S^{-1}."""
    Fv = F(t, (U @ S) @ V.T)
    FV, FtU = Fv @ V, Fv.T @ U
    dS = U.T @ FV
    S_inv = np.linalg.inv(S)
    dU = (FV - U @ dS) @ S_inv
    dV = (FtU - V @ dS.T) @ S_inv.T
    return dU, dS, dV


def integrate_factor_odes(Y0, F, h, T, record=None):
    """RK4 on the factor ODEs from t = 0 to T with step h. Returns the final LowRank, or
    None as soon as the factors become non-finite or explode (the blow-up of section 4)."""
    X = tuple(Y0)
    t = 0.0
    with np.errstate(all="ignore"):
        for k in range(int(round(T / h))):
            k1 = factor_ode_rhs(t, *X, F)
            k2 = factor_ode_rhs(t + h / 2, *(x + h / 2 * d for x, d in zip(X, k1)), F)
            k3 = factor_ode_rhs(t + h / 2, *(x + h / 2 * d for x, d in zip(X, k2)), F)
            k4 = factor_ode_rhs(t + h, *(x + h * d for x, d in zip(X, k3)), F)
            X = tuple(x + h / 6 * (a + 2 * b + 2 * c + d)
                      for x, a, b, c, d in zip(X, k1, k2, k3, k4))
            t = (k + 1) * h
            if not all(np.all(np.isfinite(x)) for x in X) or np.abs(X[1]).max() > 1e8:
                return None
            if record is not None:
                record(t, LowRank(*X))
    return LowRank(*X)


def safe_F(t, A):
    """prob.F, but a non-finite state (a blown-up integration) yields NaN instead of an error."""
    if not np.all(np.isfinite(A)):
        return np.full(A.shape, np.nan)
    return prob.F(t, A)


h_ref = 0.01 if FAST else 0.005
times, dlra_err, best_err = [], [], []


def record(t, Yt):
    times.append(t)
    dlra_err.append(np.linalg.norm(Yt.to_dense() - prob.exact(t)))
    best_err.append(prob.best_error(t, r))


Y0 = prob.best_approximation(0.0, r)
Y_dlra = integrate_factor_odes(Y0, safe_F, h_ref, 1.0, record)
ratio = np.array(dlra_err) / np.array(best_err)
print(f"RK4 on the factor ODEs, h = {h_ref}, r = {r}, sigma_r(0) = {2.0**-r:.1e}")
for k in np.linspace(0, len(times) - 1, 5).astype(int):
    print(f"  t = {times[k]:.2f}: DLRA error {dlra_err[k]:.3e}, best error {best_err[k]:.3e}, "
          f"ratio {ratio[k]:.3f}")
print(f"max ratio DLRA error / best error over [0, 1]: {ratio.max():.3f}")
assert np.all(ratio >= 1.0 - 1e-12)      # nothing of rank r beats the best approximation
assert ratio.max() <= 1.5                # ... and DLRA stays close to it

# %% [markdown]
# The projector-splitting integrator of tutorial 02 (`projector_splitting_step`, KSL) with
# the same step size `h_ref` (and RK4 on its sub-problems) lands on the same DLRA solution — a
# first sign that it solves the same equations, without `S^{-1}`:

# %%
Y_ksl = Y0
for k in range(int(round(1.0 / h_ref))):
    Y_ksl = projector_splitting_step(Y_ksl, prob.F, k * h_ref, h_ref, inner="rk4")
diff = np.linalg.norm(Y_ksl.to_dense() - Y_dlra.to_dense())
err_ksl = np.linalg.norm(Y_ksl.to_dense() - A1)
print(f"KSL (h = {h_ref}, rk4 substeps): error {err_ksl:.3e}; "
      f"||Y_KSL - Y_factorODE|| = {diff:.2e} (vs DLRA error {dlra_err[-1]:.2e})")
assert diff <= 0.2 * dlra_err[-1]

# %% [markdown]
# ## 4. Why not just integrate the factor ODEs? Small singular values.
#
# The factor equations contain `S^{-1}`. When the rank `r` is chosen large enough for a
# small approximation error, `sigma_r` — the smallest singular value *kept* — is small, and
# the right-hand side for `U` and `V` changes by `O(||Adot|| / sigma_r)` when the factors
# are perturbed a little: the system is stiff, with a Lipschitz constant `Lip ≈ c / sigma_r`,
# where `c` has the size of `Adot` in the kept directions. An explicit method is stable only
# while `h Lip` is of order one (classical RK4 on a negative real eigenvalue needs
# `h Lip <= 2.79`), so the step must satisfy `h ≲ 2.79 sigma_r / c`: a bound in units of
# `sigma_r / c`, not `h ≲ sigma_r` (below, `c ≈ 0.2` and the bound is about `14 sigma_r`).
# Overapproximation (choosing `r` larger than needed) — exactly what one wants for
# accuracy — makes the direct approach fail. [LO14] and [KLW16] (Kieri, Lubich & Walach,
# SINUM 2016) prove that the projector-splitting integrator has error bounds *independent*
# of `sigma_r`; [CL22] prove the same for the BUG integrator.
#
# First the stiffness. Perturbing `U` in a direction `D` with `U^T D = 0` changes `Udot` by
# `-eps (D U^T + U D^T) Adot V S^{-1}`; its first part has the size of
# `||D (U^T Adot V S^{-1})||`, largest for `D = w x^T` with `w` orthogonal to `U` and `x`
# the top left singular vector of `U^T Adot V S^{-1}` — a matrix whose entries contain
# ratios `sigma_i / sigma_j` up to `sigma_1 / sigma_r`. We measure the change for several `r`.

# %%
def lipschitz_U(r_, eps=1e-7, t=0.3):
    U_, S_, V_ = prob.best_approximation(t, r_)
    M = U_.T @ prob.F(t, (U_ @ S_) @ V_.T) @ V_ @ np.linalg.inv(S_)
    x = np.linalg.svd(M)[0][:, 0]
    w = rng.standard_normal(N)
    w -= U_ @ (U_.T @ w)
    D = np.outer(w / np.linalg.norm(w), x)     # unit Frobenius norm, U^T D = 0
    dU0 = factor_ode_rhs(t, U_, S_, V_, prob.F)[0]
    dU1 = factor_ode_rhs(t, U_ + eps * D, S_, V_, prob.F)[0]
    return np.linalg.norm(dU1 - dU0) / eps


ranks = [4, 8, 12, 16]
sig_r = np.array([prob.singular_values(0.3)[k - 1] for k in ranks])
lips = np.array([lipschitz_U(k) for k in ranks])
for k, sr, lp in zip(ranks, sig_r, lips):
    print(f"  r = {k:2d}: sigma_r = {sr:.2e}, Lipschitz constant of dU/dt ~ {lp:.2e}")
slope_lip = fit_slope(sig_r, lips)
c_lip = float(np.median(lips * sig_r))           # Lip ≈ c / sigma_r
print(f"fitted slope of log(Lipschitz) vs log(sigma_r): {slope_lip:.2f}  (theory: -1); "
      f"c = median of Lip * sigma_r = {c_lip:.2f}, so h_max ≈ 2.79 sigma_r / c "
      f"= {2.79 / c_lip:.0f} sigma_r")
assert -1.25 <= slope_lip <= -0.75

# %% [markdown]
# And the blow-up: the same RK4 on the factor ODEs, and the projector-splitting integrator,
# with the same step `h = 0.01` and growing rank. The column `h / h_max` compares the step
# with the estimate `h_max = 2.79 sigma_r(0) / c`: where it is below 1 (r = 6, 10: at r = 10,
# `h = 0.01` is about 10 `sigma_r`) the factor ODEs are as accurate as KSL; above it the
# factor-ODE solution is off by a factor of several or blows up ("inf"). The estimate is
# rough (one direction, one time), but it puts the boundary between the right ranks.

# %%
h = 0.01
rows = []
for r_ in ([6, 10, 14, 18] if FAST else [6, 10, 14, 18, 22]):
    Y0_ = prob.best_approximation(0.0, r_)
    Yn = integrate_factor_odes(Y0_, safe_F, h, 1.0)
    naive = np.inf if Yn is None else np.linalg.norm(Yn.to_dense() - A1)
    Yk = Y0_
    for k in range(int(round(1.0 / h))):
        Yk = projector_splitting_step(Yk, prob.F, k * h, h, inner="rk4")
    ksl = np.linalg.norm(Yk.to_dense() - A1)
    rows.append((r_, prob.singular_values(0.0)[r_ - 1], prob.best_error(1.0, r_), naive, ksl))
print(" r   sigma_r(0)  h / h_max  best error   factor-ODE RK4   KSL     (h = 0.01, t = 1)")
h_over = {}
for r_, sr, be, nv, ks in rows:
    h_over[r_] = h / (2.79 * sr / c_lip)
    print(f"{r_:2d}   {sr:.1e}    {h_over[r_]:7.2f}   {be:.2e}     {nv:10.2e}    {ks:.2e}   "
          f"ratios {nv / be:9.2e} {ks / be:5.2f}")
assert all(ks / be <= 1.5 for _, _, be, _, ks in rows)            # KSL: robust for every r
for r_, sr, be, nv, ks in rows:                                  # the estimate splits the table
    assert (nv / be <= 1.5) if h_over[r_] < 1 else (not np.isfinite(nv) or nv / be >= 2)

# %% [markdown]
# ## A figure
#
# Left: errors along the trajectory. Right: error at `t = 1` divided by the best error, as
# the rank grows. A blow-up has no finite ratio: it is drawn as a red cross on the top edge
# of the panel, not joined to the curve.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.semilogy(times, best_err, "k--", label="best rank-r (truncated SVD)")
ax1.semilogy(times, dlra_err, label="DLRA (RK4 on factor ODEs)")
ax1.set_xlabel("t"); ax1.set_ylabel("||Y(t) - A(t)||_F"); ax1.set_title(f"N = {N}, r = {r}")
ax1.legend()
rr = np.array([row[0] for row in rows])
naive_ratio = np.array([row[3] / row[2] for row in rows])
finite = np.isfinite(naive_ratio)
ax2.semilogy(rr[finite], naive_ratio[finite], "o-", ms=10, mfc="none",
             label="factor ODEs + RK4")
ax2.semilogy(rr, [row[4] / row[2] for row in rows], "s-", ms=5, label="projector splitting (KSL)")
top = 3 * max(naive_ratio[finite].max(), 10)
ax2.plot(rr[~finite], np.full((~finite).sum(), top), "rx", ms=10, mew=2, clip_on=False,
         label="factor ODEs blew up (no finite error)")
r_star = np.log2(2.79 / (c_lip * h))             # sigma_r(0) = 2^-r: where h = h_max
ax2.axvline(r_star, color="0.5", ls=":", label="estimate h = h_max")
ax2.set_ylim(top=top)
ax2.set_xlabel("rank r"); ax2.set_ylabel("error / best error at t = 1")
ax2.set_title("h = 0.01"); ax2.legend(fontsize=8, loc="center left")
fig.tight_layout()
show(fig, "01_dlra_errors")

# %% [markdown]
# ## What the real-scale method does differently
#
# * It never forms `A(t)`, `P(Y) Z` or any `m x n` matrix: `F(t, Y)` is applied to factors
#   (`F(t, U S V^T) V` through the factors, e.g. as a sum of low-rank terms or a
#   discretised operator applied column-wise), so a step costs `O((m + n) r^2)` plus the
#   cost of `F` on `r` vectors. Here the toy problem is dense and `N <= 100` so that the best
#   approximation can be checked by SVD.
# * It does not integrate the factor ODEs with `S^{-1}` at all; it uses the robust
#   integrators of tutorial 02 (projector splitting [LO14], BUG [CL22]) whose errors do not
#   depend on `sigma_r`, and the rank-adaptive ones of tutorial 03 ([CKL22]).
# * The true problem is usually an ODE `Adot = F(t, A)` whose exact solution is unknown;
#   the error against the best approximation is then estimated, not measured.
# * In training (tutorial 05) `F = -dL/dW` and the step is one explicit Euler step per
#   sub-problem — the "given matrix" `Adot` is replaced by a stochastic gradient.

# %%
print(f"tutorial 01 finished in {time.perf_counter() - T_START:.1f} s")

# %% [markdown]
# ## Recap
#
# * Dynamical low-rank approximation moves a rank-`r` matrix `Y = U S V^T` on the manifold
#   `M_r` by `Ydot = P(Y) F(t, Y)`, where `P(Y) Z = U U^T Z + Z V V^T - U U^T Z V V^T` is the
#   orthogonal projection onto the tangent space; what it drops, `(I - U U^T) Z (I - V V^T)`,
#   is the part of `Z` that is new on both sides.
# * On the toy problem its error stays within a few percent of the best rank-`r` error
#   (section 3), and nothing of rank `r` can do better.
# * Written as ODEs for the factors, the equations contain `S^{-1}`: their Lipschitz constant
#   grows like `c / sigma_r`, so an explicit method needs `h ≲ 2.79 sigma_r / c` and fails
#   exactly when a large rank makes `sigma_r` small. Tutorial 02's integrators never invert
#   `S` and have no such limit.

# %% [markdown]
# ## Where this lives in the library
#
# | claim | function | module | test |
# |---|---|---|---|
# | the toy problem's singular values and best error | `ToyProblem` | `lowrank_ref.odes` | `tests/test_odes.py::test_toy_singular_values_and_best_error` |
# | factors stay orthonormal (`LowRank` holds `U S V^T`) | `LowRank` | `lowrank_ref.lowrank` | `tests/test_integrators.py::test_factors_orthonormal_after_every_step_no_drift` |
# | the factor ODEs blow up as `sigma_r` gets small | `ToyProblem` | `lowrank_ref.odes` | `tests/test_integrators.py::test_naive_factor_ode_blows_up_as_sigma_r_gets_small` |
# | KSL's error does not depend on `sigma_r` | `projector_splitting_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_robust_to_small_singular_values` |
# | slopes are fitted in log-log | `fit_slope` | `lowrank_ref.checks` | `tests/test_plots.py::test_robustness_fast` |
#
# | `P(Y) Z` and `Z - P(Y) Z` | `tangent_project`, `normal_part` | `lowrank_ref.lowrank` | `tests/test_lowrank.py::test_tangent_projection_is_the_orthogonal_projection_onto_the_tangent_space` |
#
# (The integrators never form the tangent projection `P(Y)`; the tests of the parallel
# step use it.)
#
# ## Exercises
#
# Answers: `tutorials/solutions/01_solutions.py` (each checked by an `assert`).
#
# 1. The tangent space `T_Y M_r` of `m x n` matrices at a rank-`r` point has dimension
#    `(m + n - r) r`. Check it: write `P(Y)` for `m = 5`, `n = 4`, `r = 2` as a `20 x 20`
#    matrix acting on `vec(Z)` and compute its rank and its trace.
# 2. By the estimate of section 4, which step `h` should make RK4 on the factor ODEs accurate
#    again at `r = 14` (fast-mode size `N = 40`)? Try `h = 0.01` and a step below the
#    estimate, and compare the error ratios.
