# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 — The projector-splitting (KSL) and BUG integrators
#
# Tutorial 01 showed that the DLRA equations `Ydot = P(Y) F(t, Y)` cannot be integrated in
# factored form when `sigma_r` is small: the factor ODEs contain `S^{-1}`. The two robust
# integrators of this tutorial never invert `S`. Both work with the matrices
#
# $$K = U S \in \mathbb R^{m\times r},\qquad L = V S^\top \in \mathbb R^{n\times r},$$
#
# i.e. `Y = K V^T = U L^T`, and solve three *small* matrix ODEs per step `[t0, t1]`,
# `t1 = t0 + h`:
#
# * **KSL**, the projector-splitting integrator ([LO14] Lubich & Oseledets, BIT 54 (2014)).
#   The tangent projection of tutorial 01 is a sum of three projections,
#   `P(Y) Z = Z V V^T - U U^T Z V V^T + U U^T Z`, and the Lie–Trotter splitting solves the
#   three projected flows one after the other. In factors (the derivation is below):
#   1. *K-step*: `dK/dt = F(t, K V0^T) V0`, `K(t0) = U0 S0`; QR `K1 = U1 S_hat1`;
#   2. *S-step*, **backward in time** (the minus sign comes from the `-U U^T Z V V^T` term):
#      `dS/dt = -U1^T F(t, U1 S V0^T) V0`, `S(t0) = S_hat1`, giving `S_tilde0`;
#   3. *L-step*: `dL/dt = F(t, U1 L^T)^T U1`, `L(t0) = V0 S_tilde0^T`; QR `L1 = V1 S1^T`.
#
#   Result `Y1 = U1 S1 V1^T`. Symmetric (Strang) composition gives order 2 (`order=2`).
#
#   *Where the factor ODEs come from*, with `Z = F(t, Y)`. On the first split flow
#   `dY/dt = Z V V^T` every column of `dY/dt` is a combination of the columns of `V^T`, so
#   the row space of `Y` never moves: `V` stays constant, and with `Y = K V^T` the flow reads
#   `(dK/dt) V^T = Z V V^T`, i.e. `dK/dt = Z V`. On `dY/dt = U U^T Z` the column space stays,
#   `U` is constant, and `Y = U L^T` gives `dL/dt = Z^T U`. On `dY/dt = -U U^T Z V V^T` both
#   stay and `Y = U S V^T` gives `dS/dt = -U^T Z V`. The picture of tutorial 01, section 2: the
#   tangent plane is spanned by moving `U` (K-step), moving `V` (L-step) and moving `S`; the
#   S-step runs backward because `U U^T Z V V^T` was counted in both of the other two.
# * **BUG**, the "unconventional" basis-update & Galerkin integrator ([CL22] Ceruti &
#   Lubich, BIT 62 (2022)):
#   1. *K-step* as above, `U1 = orth(K1)`, `M_U = U1^T U0`;
#   2. *L-step* from the **old** `U0`, `S0` (so 1 and 2 run in parallel):
#      `dL/dt = F(t, U0 L^T)^T U0`, `L(t0) = V0 S0^T`, `V1 = orth(L1)`, `M_V = V1^T V0`
#      ([CL22] call these two `M` and `N`; here `N` is a matrix size);
#   3. *Galerkin S-step* **forward** in the new bases: `dS/dt = U1^T F(t, U1 S V1^T) V1`,
#      `S(t0) = M_U S0 M_V^T`.
#
#   No backward step (which can be unstable for dissipative problems), more parallelism,
#   and it preserves symmetry. This is the integrator DLRT builds on ([SZKCT22], tutorial 05).
#
# **Galerkin**, and where the S-step starts. With the new bases fixed, BUG looks for the
# solution in the *trial space* of matrices `U1 S V1^T` (`S` free) and asks that the residual
# be orthogonal to that space: `U1^T (Ydot - F(t, Y)) V1 = 0` for `Y = U1 S V1^T`. Since
# `U1^T Ydot V1 = Sdot`, this is exactly `Sdot = U1^T F(t, U1 S V1^T) V1`. The start obeys the
# same rule: `U1 (M_U S0 M_V^T) V1^T = U1 U1^T Y0 V1 V1^T` is the orthogonal projection of `Y0`
# onto the trial space, the nearest matrix of the form `U1 S V1^T`. It is **not** `Y0`,
# which in general is not of that form (the worked example of section 1 shows the
# difference); in the rank-adaptive BUG of tutorial 03 the bases contain `U0`, `V0` and the
# projection *is* `Y0`.
#
# **Names.** KSL is named after the order of its sub-steps: K, then S (backward), then L.
# The DLRT paper [SZKCT22] calls the BUG integrator "**KLS**": the K- and L-steps first (in
# parallel), then the S-step (forward). Same letters, different methods; `FixedRankBUG` and
# `AdaptiveBUG` of tutorial 05 are BUG and rank-adaptive BUG with one Euler step per sub-flow
# (docs/design.md, section "Notation").
#
# The substeps are ODEs for `(m, r)`, `(n, r)`, `(r, r)` matrices; `lowrank_ref` solves them
# with `inner="euler"` (one explicit Euler step: the DLRT case) or `inner="rk4"`.

# %%
import os
import time

import numpy as np
import matplotlib.ticker

import matplotlib.pyplot as plt

from lowrank_ref import LowRank
from lowrank_ref.lowrank import tangent_project
from lowrank_ref.checks import fit_slope, tolerance
from lowrank_ref.integrators import bug_step, projector_splitting_step
from lowrank_ref.odes import RankRCurve, SylvesterProblem, ToyProblem

from lowrank_ref.figures.display import show   # plt.show(); a PNG file only on request
from lowrank_ref.threads import set_blas_threads

set_blas_threads()   # the package's BLAS thread count (1) for this script: small products
                     # and factorisations are much slower with a thread pool (lowrank_ref.threads)
FAST = os.environ.get("LOWRANK_REF_FAST") == "1"
T_START = time.perf_counter()

rng = np.random.default_rng(14)
N = 40 if FAST else 100
print(f"FAST={FAST}: N = {N}")


def fmt(a):
    return np.array2string(np.asarray(a), formatter={"float_kind": lambda x: f"{x:.2e}"})

# %% [markdown]
# ## 1. One BUG step with pencil and paper
#
# A `2 x 2` example small enough to do by hand. Start from the rank-1 matrix
# `Y0 = 2 e1 e1^T` (`U0 = V0 = e1`, `S0 = 2`) and let `F(t, Y) = C` be constant,
#
# $$Y_0 = \begin{pmatrix} 2 & 0\\ 0 & 0\end{pmatrix},\qquad
#   C = \begin{pmatrix} 2 & 3\\ 3 & 0\end{pmatrix},\qquad h = 1,$$
#
# so the exact solution is `A(1) = Y0 + C = [[4, 3], [3, 0]]` (rank 2). With a constant `F`
# one Euler step solves every sub-flow exactly, and `h = 1` keeps the arithmetic short:
#
# 1. K-step: `K1 = U0 S0 + h C V0 = (2, 0) + (2, 3) = (4, 3)`, `||K1|| = 5`, so
#    `U1 = (0.8, 0.6)`;
# 2. L-step: `L1 = V0 S0 + h C^T U0 = (4, 3)`, `V1 = (0.8, 0.6)`;
# 3. Galerkin start: `M_U = U1^T U0 = 0.8`, `M_V = V1^T V0 = 0.8`, `S_tilde0 = M_U S0 M_V = 1.28`;
#    S-step: `U1^T C V1 = 0.8 (1.6 + 1.8) + 0.6 (2.4 + 0) = 4.16`, `S1 = 1.28 + 4.16 = 5.44`;
# 4. `Y1 = 5.44 U1 V1^T = [[3.4816, 2.6112], [2.6112, 1.9584]]`.
#
# The Galerkin start `U1 S_tilde0 V1^T = 1.28 U1 V1^T` is the projection of `Y0` onto the
# trial space, not `Y0` (it differs from `Y0` by 1.5367 in the Frobenius norm). The error
# `||Y1 - A(1)||_F = 2.0991` is larger than the best rank-1 error `sqrt(13) - 2 = 1.6056`
# (the eigenvalues of the symmetric `A(1)` are `2 ± sqrt(13)`), as it may be: one step of
# length 1 is a coarse step. The package agrees (its factors may
# differ in sign — compare matrices, not factors):

# %%
C = np.array([[2.0, 3.0], [3.0, 0.0]])
e1 = np.array([[1.0], [0.0]])
Y0_22 = LowRank(e1, np.array([[2.0]]), e1)
K1 = Y0_22.U @ Y0_22.S + C @ Y0_22.V
U1 = K1 / np.linalg.norm(K1)
L1 = Y0_22.V @ Y0_22.S.T + C.T @ Y0_22.U
V1 = L1 / np.linalg.norm(L1)
S_tilde0 = (U1.T @ Y0_22.U) @ Y0_22.S @ (Y0_22.V.T @ V1)
S1_22 = S_tilde0 + U1.T @ C @ V1
Y1_22 = U1 @ S1_22 @ V1.T
Y1_pkg = bug_step(Y0_22, lambda t, Y: C, 0.0, 1.0, inner="euler").to_dense()
A1_22 = Y0_22.to_dense() + C
err_bug22 = np.linalg.norm(Y1_22 - A1_22)
best22 = np.sqrt(np.sum(np.linalg.svd(A1_22, compute_uv=False)[1:] ** 2))
print(f"K1 = {K1.ravel()}, U1 = {U1.ravel()}, L1 = {L1.ravel()}, V1 = {V1.ravel()}")
print(f"S_tilde0 = {S_tilde0.item():.4f}, U1^T C V1 = {(U1.T @ C @ V1).item():.4f}, "
      f"S1 = {S1_22.item():.4f}")
print("Y1 =", np.round(Y1_22, 4).tolist(), "  package:", np.round(Y1_pkg, 4).tolist())
print(f"||Y1 - A(1)|| = {err_bug22:.4f}; best rank-1 error {best22:.4f} = sqrt(13) - 2; "
      f"||U1 S_tilde0 V1^T - Y0|| = {np.linalg.norm(U1 @ S_tilde0 @ V1.T - Y0_22.to_dense()):.4f}")
assert np.allclose(Y1_22, [[3.4816, 2.6112], [2.6112, 1.9584]])      # the hand computation
assert np.allclose(Y1_pkg, Y1_22, atol=1e-14)                         # ... is the package's

# %% [markdown]
# ## 2. One step by hand, at size
#
# We write the sub-problem solver ourselves (Euler or RK4 with `substeps` steps) and the
# three substeps of each method, and compare with the package. The problem is the toy
# problem of [CL22] in its ODE form (`ToyProblem(form="ode")`), `F(t, Y) = W1 Y + Y + Y W2^T`:
# a Sylvester flow `A Y + Y B^T` (`A = W1 + I`, `B = W2`), whose solution from a rank-`r`
# start keeps rank `r` (section 5 shows that KSL is even exact on such flows). Here `F`
# depends on its argument, so evaluating it at the wrong point would show. The start `Y0` gets a random
# *non-diagonal* `S0` (same matrix, other factorisation: `U0 Q1, Q1^T S0 Q2, V0 Q2`), so that
# a forgotten transpose would show too.
#
# "Agree" needs a tolerance. `checks.tolerance(key, dtype, size)` is the one table of the
# package: `factor(key) * eps(dtype) * size`, here for `"step"` (one integrator step) at
# size `N`, about `1e-11` for `N = 100` — rounding, far below any error of the method.

# %%
def solve(f, Y0, t0, h, inner="euler", substeps=1):
    """Approximate Y(t0 + h) for dY/dt = f(t, Y), Y(t0) = Y0: Euler or classical RK4."""
    tau, Y = h / substeps, Y0
    for i in range(substeps):
        t = t0 + i * tau
        if inner == "euler":
            Y = Y + tau * f(t, Y)
        else:
            k1 = f(t, Y)
            k2 = f(t + tau / 2, Y + tau / 2 * k1)
            k3 = f(t + tau / 2, Y + tau / 2 * k2)
            k4 = f(t + tau, Y + tau * k3)
            Y = Y + tau / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return Y


def ksl_by_hand(Y0, F, t0, h, inner="euler", substeps=1):
    U0, S0, V0 = Y0
    # K-step: dK/dt = F(t, K V0^T) V0,  K(t0) = U0 S0
    K1 = solve(lambda t, K: F(t, K @ V0.T) @ V0, U0 @ S0, t0, h, inner, substeps)
    U1, S_hat1 = np.linalg.qr(K1)
    # S-step backwards: dS/dt = -U1^T F(t, U1 S V0^T) V0,  S(t0) = S_hat1
    S_tilde0 = solve(lambda t, S: -U1.T @ F(t, U1 @ S @ V0.T) @ V0, S_hat1, t0, h, inner,
                     substeps)
    # L-step: dL/dt = F(t, U1 L^T)^T U1,  L(t0) = V0 S_tilde0^T
    L1 = solve(lambda t, L: F(t, U1 @ L.T).T @ U1, V0 @ S_tilde0.T, t0, h, inner, substeps)
    V1, S1T = np.linalg.qr(L1)
    return LowRank(U1, S1T.T, V1)


def bug_by_hand(Y0, F, t0, h, inner="euler", substeps=1):
    U0, S0, V0 = Y0
    K1 = solve(lambda t, K: F(t, K @ V0.T) @ V0, U0 @ S0, t0, h, inner, substeps)
    L1 = solve(lambda t, L: F(t, U0 @ L.T).T @ U0, V0 @ S0.T, t0, h, inner, substeps)
    U1, _ = np.linalg.qr(K1)
    V1, _ = np.linalg.qr(L1)
    M_U, M_V = U1.T @ U0, V1.T @ V0
    S1 = solve(lambda t, S: U1.T @ F(t, U1 @ S @ V1.T) @ V1, M_U @ S0 @ M_V.T, t0, h, inner,
               substeps)
    return LowRank(U1, S1, V1)


ode = ToyProblem(rng, N, form="ode")
r = 6
Ub, Sb, Vb = ode.best_approximation(0.3, r)
Q1, _ = np.linalg.qr(rng.standard_normal((r, r)))
Q2, _ = np.linalg.qr(rng.standard_normal((r, r)))
Y0 = LowRank(Ub @ Q1, Q1.T @ Sb @ Q2, Vb @ Q2)            # non-diagonal S0
print("S0 is diagonal?", np.allclose(Y0.S, np.diag(np.diag(Y0.S))))

h = 0.05
tol = tolerance("step", size=N)
for inner, substeps in (("euler", 1), ("rk4", 3)):
    for name, by_hand, package in (("KSL", ksl_by_hand, projector_splitting_step),
                                   ("BUG", bug_by_hand, bug_step)):
        Y_hand = by_hand(Y0, ode.F, 0.3, h, inner, substeps)
        Y_pack = package(Y0, ode.F, 0.3, h, inner=inner, substeps=substeps)
        rel = (np.linalg.norm(Y_hand.to_dense() - Y_pack.to_dense())
               / np.linalg.norm(Y_pack.to_dense()))
        print(f"{name} {inner:5s} x{substeps}: ||by hand - package|| / ||Y1|| = {rel:.1e} "
              f"(tolerance {tol:.1e}); orthonormality error {Y_pack.orthonormality_error():.1e}")
        assert rel <= tol

# %% [markdown]
# The two methods are different: KSL's L-step uses the *new* `U1` and the backward-evolved
# `S_tilde0`, BUG's L-step the old `U0`, `S0`. One step of each differs by `O(h^2)` (both are
# consistent first-order methods for the same DLRA equation):

# %%
H1 = np.array([0.1, 0.05, 0.025])
one_step = np.array([np.linalg.norm(projector_splitting_step(Y0, ode.F, 0.3, h_).to_dense()
                                    - bug_step(Y0, ode.F, 0.3, h_).to_dense()) for h_ in H1])
print(f"h = {H1}: ||Y1_KSL - Y1_BUG|| = {fmt(one_step)}, slope {fit_slope(H1, one_step):.2f}")
assert 1.8 <= fit_slope(H1, one_step) <= 2.2

# %% [markdown]
# ## 3. Exactness for rank-r curves
#
# If `A(t)` has rank `r` for all `t` and `Y0 = A(t0)`, both integrators with *exactly
# solved* substeps reproduce `A(t1)` ([LO14], exactness theorem; [CL22], exactness
# property) — whatever the singular values, even `1e-12`. For BUG the argument is three
# lines with `F(t, Y) = Adot(t)`: the K-step gives `K1 = K0 + (A(t1) - A(t0)) V0 = A(t1) V0`,
# whose range is the range of `A(t1)` (if `V(t1)^T V0` is invertible); likewise
# `range L1 = range A(t1)^T`; the Galerkin step then gives
# `Y1 = U1 U1^T A(t1) V1 V1^T = A(t1)`.
#
# `odes.RankRCurve` is a rank-`r` curve `U(t) S(t) V(t)^T` with rotating bases and singular
# values from `1` down to `sigma_min = 1e-12`. With RK4 substeps ("exact" up to the RK4
# error of the data quadrature) both integrators reproduce it to ~1e-11; with one Euler
# step per substep (not an exact sub-flow) they do not.

# %%
curve = RankRCurve(rng, 30, 20, 5, sigma_min=1e-12)
print("singular values of A(0):", curve.sigma)
h, steps = 0.1, 5
A_end = curve.exact(h * steps)
# the RK4 error on the full 30 x 20 problem, with the same steps: what "exact" means here
full = solve(curve.F, curve.A0, 0.0, h * steps, "rk4", steps * 12)
full_err = np.linalg.norm(full - A_end) / np.linalg.norm(A_end)
print(f"RK4 on the full problem: relative error {full_err:.1e}")
exact_err = {}
for name, step in (("KSL", projector_splitting_step), ("BUG", bug_step)):
    for inner, substeps in (("rk4", 12), ("euler", 1)):
        Y = curve.Y0
        for k in range(steps):
            Y = step(Y, curve.F, k * h, h, inner=inner, substeps=substeps)
        err = np.linalg.norm(Y.to_dense() - A_end) / np.linalg.norm(A_end)
        exact_err[(name, inner)] = err
        print(f"{name} inner={inner:5s}: relative error at t = {h * steps}: {err:.1e}")
for name in ("KSL", "BUG"):
    assert exact_err[(name, "rk4")] <= 10 * full_err + tolerance("step", size=30)
    assert exact_err[(name, "euler")] >= 1e6 * exact_err[(name, "rk4")]

# %% [markdown]
# ## 4. Error versus step size, robust to small singular values
#
# On the toy problem (data form, full rank, so DLRA has a modelling error) [KLW16] (Kieri,
# Lubich & Walach, SINUM 2016) for KSL and [CL22] for BUG prove
#
# $$\|Y_n - A(t_n)\|_F \le c_0\,\delta + c_1\,\varepsilon + c_2\, h,$$
#
# where `delta` is the initial error, `epsilon` bounds the normal component
# `(I - P(Y)) F` (the modelling error) and the constants do **not** depend on `sigma_r`.
# With one Euler step per substep (as in training), the `h`-term dominates. We measure the
# error at `t = 1` for two ranks: `r = 8` (`sigma_8 = 4e-3`) and `r = 16`
# (`sigma_16 = 1.5e-5`, where the factor ODEs of tutorial 01 blow up), fit slopes with
# `checks.fit_slope`, and compare with the *full* `N x N` explicit Euler method.

# %%
data = ToyProblem(np.random.default_rng(0), N)            # form="data"
A1 = data.exact(1.0)
H = np.array([0.1, 0.05, 0.025, 0.0125])


def run(step, Y0_, F, h_, T, **kw):
    Y_ = Y0_
    for k in range(int(round(T / h_))):
        Y_ = step(Y_, F, k * h_, h_, **kw)
    return Y_


errors = {}
for r_ in (8, 16):
    Y0_ = data.best_approximation(0.0, r_)
    for name, step in (("KSL", projector_splitting_step), ("BUG", bug_step)):
        errors[(name, r_)] = np.array([np.linalg.norm(run(step, Y0_, data.F, h_, 1.0).to_dense()
                                                      - A1) for h_ in H])
full_euler = np.array([np.linalg.norm(solve(data.F, data.A0, 0.0, 1.0, "euler",
                                            int(round(1 / h_))) - A1) for h_ in H])
print(f"h:           {fmt(H)}")
print(f"full Euler:  {fmt(full_euler)}  slope {fit_slope(H, full_euler):.2f}")
slopes = {}
for (name, r_), e in errors.items():
    slopes[(name, r_)] = fit_slope(H, e)
    print(f"{name} r = {r_:2d}:  {fmt(e)}  slope {slopes[(name, r_)]:.2f}"
          f"   (best rank-r error {data.best_error(1.0, r_):.1e})")
for key, sl in slopes.items():
    assert 0.85 <= sl <= 1.15, (key, sl)
for name in ("KSL", "BUG"):       # same constant for sigma_r = 4e-3 and 1.5e-5: robust
    assert np.all(errors[(name, 16)] <= 1.1 * errors[(name, 8)])
    assert np.all(errors[(name, 16)] <= 1.1 * full_euler + data.best_error(1.0, 16))


# %% [markdown]
# The low-rank integrators are as accurate as explicit Euler on the full problem: their error
# is the time-discretisation error plus the (tiny, for `r = 16`) best-approximation error.
# (In the figure below the curves nearly coincide for that reason: the `r = 16` errors lie
# within 2 % of explicit Euler's at every `h`, the `r = 8` ones within 20 %, where the
# modelling error of DLRA is larger.)

# %%
spread = {r_: max(np.max(errors[(name, r_)] / full_euler) for name in ("KSL", "BUG"))
          for r_ in (8, 16)}
print(f"largest ratio low-rank error / full Euler error over all h: r = 8: {spread[8]:.3f}, "
      f"r = 16: {spread[16]:.3f}")
assert spread[16] <= 1.02 and spread[8] <= 1.2

# %% [markdown]
# ## 5. Where KSL and BUG differ: the Sylvester flow, and order 2
#
# On the Sylvester equation `Ydot = A Y + Y B^T` (`odes.SylvesterProblem`, `A = W1`,
# `B = W2`) the exact solution `e^{tA} Y0 e^{tB^T}` keeps rank `r`. KSL with RK4 substeps
# reproduces it up to the RK4 error (its errors drop like `h^4`), while BUG — a Galerkin
# method in bases fixed during the S-step — has a first-order error ([CL22]).
#
# *Why* is KSL exact here? Not because `F` is tangent and the solution keeps rank `r`: the
# tangent flow `Ydot = P(Y) C` (constant `C`) below has both properties, and KSL is only
# first order on it. The reason is the **linear structure** `A Y + Y B^T`: every sub-flow
# is linear, with one part acting from the left and one from the right. With
# `a1 = U1^T A U1`, `b0 = V0^T B V0` and exactly solved sub-flows,
#
# * K-step: `dK/dt = A K + K b0^T`, so `K1 = e^{hA} K0 e^{h b0^T}`;
# * S-step (backward): `dS/dt = -(a1 S + S b0^T)`, so `S_tilde0 = e^{-h a1} S_hat1 e^{-h b0^T}`;
# * L-step: `dL/dt = B L + L a1^T`, so `L1 = e^{hB} V0 S_tilde0^T e^{h a1^T}`,
#
# and `Y1 = U1 L1^T = U1 e^{h a1} S_tilde0 V0^T e^{hB^T} = U1 S_hat1 e^{-h b0^T} V0^T e^{hB^T}
# = K1 e^{-h b0^T} V0^T e^{hB^T} = e^{hA} Y0 e^{hB^T}`. The backward S-step cancels exactly
# the restricted parts that the other two steps add: `b0` (the K-step's view of `B`) and
# `a1` (the L-step's view of `A`). For a general `F` the three sub-flows do not cancel, and
# KSL is a first-order method like BUG. The Strang version of KSL (`order=2`) is second order
# [LO14]; we measure it by self-convergence (`||Y_h - Y_{h/2}||`) on the toy problem, where no
# integrator is exact.

# %%
syl = SylvesterProblem(np.random.default_rng(3), 30, 20, 4)
S1 = syl.exact(1.0)
syl_err = {name: np.array([np.linalg.norm(run(step, syl.Y0, syl.F, h_, 1.0,
                                              inner="rk4").to_dense() - S1) / np.linalg.norm(S1)
                           for h_ in H])
           for name, step in (("KSL", projector_splitting_step), ("BUG", bug_step))}
for name, e in syl_err.items():
    print(f"Sylvester, {name} (rk4 substeps): relative errors {fmt(e)}"
          f"  slope {fit_slope(H, e):.2f}")
assert 0.85 <= fit_slope(H, syl_err["BUG"]) <= 1.15
assert fit_slope(H, syl_err["KSL"]) >= 3.5 and syl_err["KSL"].max() <= 1e-4

# %% [markdown]
# The tangent flow `Ydot = P(Y) C` on the same `30 x 20` shape, rank 4: `F(t, Y) = P(Y) C`
# lies in the tangent space at every `Y` (so the solution keeps rank 4), but it is not of
# the form `A Y + Y B^T`. The reference solution is RK4 on the full `30 x 20` equation with a
# step 10 times smaller than the smallest `h` (its `P(Y)` from an SVD of `Y`).

# %%
def tangent_projection(Y, Z, r):
    """P(Y) Z for a dense Y of rank r (U, V from its SVD; lowrank.tangent_project)."""
    Uy, sy, Vty = np.linalg.svd(Y, full_matrices=False)
    return tangent_project(LowRank(Uy[:, :r], np.diag(sy[:r]), Vty[:r].T), Z)


r_tan = 4
C_tan = np.random.default_rng(5).standard_normal((30, 20))
C_tan /= np.linalg.norm(C_tan)                                 # ||C|| = 1
Y0_tan = LowRank.random(np.random.default_rng(6), 30, 20, r_tan,
                        singular_values=[1.0, 0.7, 0.5, 0.3])
F_tan = lambda t, Y: tangent_projection(Y, C_tan, r_tan)      # noqa: E731
T_tan = 0.5
ref_tan = solve(F_tan, Y0_tan.to_dense(), 0.0, T_tan, "rk4", int(round(T_tan / (H[-1] / 10))))
tan_err = np.array([np.linalg.norm(run(projector_splitting_step, Y0_tan, F_tan, h_, T_tan,
                                       inner="rk4").to_dense() - ref_tan)
                    / np.linalg.norm(ref_tan) for h_ in H])
slope_tan = fit_slope(H, tan_err)
print(f"tangent flow P(Y) C, KSL (rk4 substeps): relative errors {fmt(tan_err)}  "
      f"slope {slope_tan:.2f}")
assert 0.85 <= slope_tan <= 1.15 and np.all(tan_err >= 100 * syl_err["KSL"])

# %%
small = ToyProblem(np.random.default_rng(0), 20)
Ys0 = small.best_approximation(0.0, 4)
order_slope, order_diffs = {}, {}
for order in (1, 2):
    sols = [run(projector_splitting_step, Ys0, small.F, h_, 0.5, inner="rk4", substeps=2,
                order=order).to_dense() for h_ in list(H) + [H[-1] / 2]]
    order_diffs[order] = np.array([np.linalg.norm(a - b) for a, b in zip(sols[:-1], sols[1:])])
    order_slope[order] = fit_slope(H, order_diffs[order])
    print(f"KSL order={order}: ||Y_h - Y_h/2|| = {fmt(order_diffs[order])}"
          f"  slope {order_slope[order]:.2f}")
assert 0.8 <= order_slope[1] <= 1.3 and 1.8 <= order_slope[2] <= 2.3

# %% [markdown]
# ## A figure
#
# Left: the toy problem — the curves nearly coincide (the `O(h)` error of Euler dominates;
# open markers so that the overlap stays visible). Middle: the Sylvester flow, where KSL is
# exact up to its RK4 substeps (slope 4) and BUG is first order, and the tangent flow
# `P(Y) C`, where KSL is first order too. Right: KSL Lie (order 1) and Strang (order 2) by
# self-convergence. Grey lines are reference slopes `c h^p` through the last point of a
# curve.

# %%
def reference_slope(ax, H_, last_value, p, label):
    ax.loglog(H_, last_value * (H_ / H_[-1]) ** p, color="0.6", lw=1, ls="--", zorder=0)
    ax.annotate(label, (H_[0], last_value * (H_[0] / H_[-1]) ** p), fontsize=8, color="0.4",
                textcoords="offset points", xytext=(4, 0))


fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
ax1.loglog(H, full_euler, "k-", lw=1, label="Euler on the full matrix")
for ((name, r_), e), mk in zip(errors.items(), ("o", "s", "^", "v")):
    ax1.loglog(H, e, mk, mfc="none", ms=7, label=f"{name}, r = {r_}")
reference_slope(ax1, H, full_euler[-1] * 0.7, 1, "h")
ax1.set_xlabel("h"); ax1.set_ylabel("error at t = 1"); ax1.legend(fontsize=8)
ax1.set_title(f"toy problem N = {N}, inner = euler")
ax2.loglog(H, syl_err["KSL"], "o-", label="KSL, Sylvester")
ax2.loglog(H, syl_err["BUG"], "s-", label="BUG, Sylvester")
ax2.loglog(H, tan_err, "^-", label="KSL, tangent flow P(Y) C")
reference_slope(ax2, H, syl_err["KSL"][-1] * 0.5, 4, "h^4")
reference_slope(ax2, H, syl_err["BUG"][-1] * 0.5, 1, "h")
ax2.set_xlabel("h"); ax2.set_ylabel("relative error"); ax2.legend(fontsize=8)
ax2.set_title("rank-preserving flows, inner = rk4")
ax3.loglog(H, order_diffs[1], "o-", label="KSL Lie (order=1)")
ax3.loglog(H, order_diffs[2], "s-", label="KSL Strang (order=2)")
reference_slope(ax3, H, order_diffs[1][-1] * 0.5, 1, "h")
reference_slope(ax3, H, order_diffs[2][-1] * 0.5, 2, "h^2")
ax3.set_xlabel("h"); ax3.set_ylabel("||Y_h - Y_h/2||"); ax3.legend(fontsize=8)
ax3.set_title("toy problem N = 20, r = 4, self-convergence")
for ax in (ax1, ax2, ax3):
    ax.set_xticks(H, [f"{h_:g}" for h_ in H])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
fig.tight_layout()
show(fig, "02_convergence")

# %% [markdown]
# ## What the real-scale method does differently
#
# * `F` is applied through the factors: the K-step needs `F(t, K V0^T) V0`, an `(m, r)`
#   matrix, which for a structured `F` (sums of Kronecker/low-rank terms, a discretised
#   differential operator, a network's gradient `G = delta^T X`) costs `O((m + n) r)` per
#   term; nothing `m x n` is formed. Here `F` takes and returns dense matrices (for checks).
# * The sub-problems are solved by the method fitting the application (implicit for stiff
#   parabolic problems, exponential integrators, one SGD step in DLRT), not always RK4.
# * BUG's K- and L-steps (and, in [CKL24], even the S-step) run in parallel; KSL's backward
#   S-step is avoided for dissipative problems.
# * Higher order comes from other constructions (Strang KSL here; the midpoint and
#   Runge–Kutta BUG integrators of tutorial 03, section 5), and rank is usually adapted
#   (tutorial 03).

# %%
print(f"tutorial 02 finished in {time.perf_counter() - T_START:.1f} s")

# %% [markdown]
# ## Recap
#
# * Both integrators work with `K = U S` and `L = V S^T` and solve three small matrix ODEs
#   per step, never inverting `S`. KSL (K, S backward, L) splits the tangent projection into
#   its three terms; BUG (K and L from the old factors, then a Galerkin S-step forward in the
#   new bases) is the integrator DLRT is built on.
# * BUG's S-step starts from the projection of `Y0` onto the new bases, not from `Y0`.
# * With exact sub-flows both reproduce any rank-`r` curve, whatever its singular values;
#   with Euler sub-flows both are first order, with an error that does not grow as
#   `sigma_r` falls.
# * KSL is exact on Sylvester flows `A Y + Y B^T` because its backward S-step cancels what
#   the other two add; on other flows it is first order, and Strang's composition second.

# %% [markdown]
# ## Where this lives in the library
#
# | claim | function | module | test |
# |---|---|---|---|
# | KSL (Lie, Strang) as in section 2 | `projector_splitting_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_ksl_lie_order_1_strang_order_2_self_convergence` |
# | BUG as in sections 1-2 | `bug_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_first_order_bug_and_parallel_on_sylvester` |
# | at full rank BUG is the inner solver | `bug_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_full_rank_bug_is_the_inner_solver` |
# | exact on rank-r curves, any `sigma_r` | `bug_step`, `projector_splitting_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_exact_on_rank_r_curve` |
# | KSL exact on Sylvester, BUG first order | `SylvesterProblem` | `lowrank_ref.odes` | `tests/test_integrators.py::test_ksl_exact_on_sylvester_but_bug_is_not` |
# | error independent of `sigma_r` | `ToyProblem` | `lowrank_ref.odes` | `tests/test_integrators.py::test_robust_to_small_singular_values` |
# | the Galerkin S-step decreases the distance to `B` in the new bases | `bug_step` | `lowrank_ref.integrators` | `tests/test_integrators.py::test_descent_bug_galerkin_step` |
# | slopes are fitted, not read off one step | `fit_slope` | `lowrank_ref.checks` | `tests/test_plots.py::test_convergence_orders_fast` |
#
# ## Exercises
#
# Answers: `tutorials/solutions/02_solutions.py` (each checked by an `assert`).
#
# 1. Do one **KSL** step of the `2 x 2` example of section 1 by hand (`h = 1`, one Euler
#    step per sub-flow, which is exact for a constant `F`). What is `Y1`? One of its columns
#    equals that of the exact `A(1)` while BUG's `Y1` matches neither column: which one,
#    and why?
# 2. BUG at **full rank**: take `Y0 = diag(2, 1)` (rank 2, so `U1`, `V1` are `2 x 2`
#    orthogonal) and the same `C`, `h = 1`. Show that the BUG step is the explicit Euler
#    step `Y0 + h F(Y0)` of the full problem, whatever `F`.
# 3. For the rank-1 example of section 1, what does BUG give with `h = 1/2` applied twice?
#    Is the error at `t = 1` smaller than with one step of `h = 1`?
# 4. **Write a KSL step and pass the oracle.** `lowrank_ref.oracle` (tutorial 06) holds
#    golden cases of `projector_splitting_step` for the matrix ODE
#    `F(t, Y) = A1 Y + Y A2 + B`. Write a function
#    `my_ksl_step(U0, S0, V0, A1, A2, B, t0, h, inner, substeps, order)` that does one Lie
#    step (`order=1`) with one explicit Euler step per sub-flow (`inner="euler"`,
#    `substeps=1`) and returns `{"U": U1, "S": S1, "V": V1}`, using NumPy only (not the
#    package). It passes when
#    `oracle.check("projector_splitting_step", my_ksl_step, golden=lie).passed` is true, with
#    `lie = [c for c in oracle.cases("projector_splitting_step") if c.inputs["order"] == 1]`.
#    Then run the S-step forward instead of backward: which quantity does the checker name?
