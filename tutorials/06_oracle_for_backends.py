# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 06 — Checking a faster backend against the oracle
#
# `lowrank_ref` is slow on purpose: it is written to be read and verified against the theory
# (tutorials 01-05). Real training runs on PyTorch, JAX or C++ reimplementations of the same
# steps. `lowrank_ref.oracle` turns the reference into a **test oracle** for them: a fixed set
# of named, deterministic float64 *golden cases* per family (the family names are the function
# names: `truncate`, `bug_step`, `adaptive_bug_step`, ..., `dlrt_network_step`), and a checker
#
# ```python
# report = oracle.check(family, candidate, dtype=np.float64)   # or np.float32
# ```
#
# that calls `candidate(**case.inputs)` with plain NumPy arrays and Python scalars on every
# case and compares the dict it returns (`{"U": ..., "S": ..., "V": ...}` for a low-rank
# result, docs/design.md, section "The oracle") with the case's expected output. This tutorial
#
# 1. opens one golden case — inputs, expected output, tolerances — and shows why the
#    checker compares *invariants* (`U S V^T`, singular values, ranks, projectors) and never
#    the factors themselves;
# 2. writes a small independent NumPy candidate for `truncate` and `bug_step` and checks it in
#    float64 and float32;
# 3. plants four bugs known from other implementations (docs/design.md, section "Known
#    bugs of other implementations") and watches the checker name them -- also case by
#    case, as a backend's own pytest suite runs the oracle: one test per golden case;
# 4. exports the golden files for a backend in another language, verifies them and catches a
#    tampered file;
# 5. wraps a PyTorch implementation as a candidate (runs only where `torch` is importable).

# %%
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import matplotlib

if not os.environ.get("MPLBACKEND") and "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

from lowrank_ref import oracle
from lowrank_ref.checks import tolerance

# The PyTorch section (5) runs only where torch is importable; LOWRANK_REF_NO_TORCH=1
# switches it off even then (to see the other branch).
if os.environ.get("LOWRANK_REF_NO_TORCH") == "1":
    torch, TORCH_NOTE = None, "switched off (LOWRANK_REF_NO_TORCH=1)"
else:
    try:
        import torch
        TORCH_NOTE = torch.__version__
    except ImportError:
        torch, TORCH_NOTE = None, "not importable"

from lowrank_ref.threads import set_blas_threads

set_blas_threads()   # the package's BLAS thread count (1) for this script: small products
                     # and factorisations are much slower with a thread pool (lowrank_ref.threads)
FAST = os.environ.get("LOWRANK_REF_FAST") == "1"
OUT = Path(os.environ.get("LOWRANK_REF_TUTORIAL_OUT") or "tutorial_output")   # in the working directory
OUT.mkdir(parents=True, exist_ok=True)
T_START = time.perf_counter()

rng = np.random.default_rng(6)
N_GAUGES = 3 if FAST else 25          # random re-factorisations tried in section 1
print(f"FAST={FAST}: {N_GAUGES} random gauges; figures go to {OUT}; "
      f"torch: {TORCH_NOTE}")


def fmt(a):
    return np.array2string(np.asarray(a), formatter={"float_kind": lambda x: f"{x:.3g}"})


def dense(U, S, V):
    return np.asarray(U, dtype=np.float64) @ np.asarray(S, dtype=np.float64) \
        @ np.asarray(V, dtype=np.float64).T


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))

# %% [markdown]
# ## 1. What a golden case is
#
# A `Case` is `(name, family, inputs, expected, tol)`: `inputs` are exactly the keyword
# arguments of the candidate, `expected` is the reference's output on them, and `tol` maps
# each *compared quantity* to a `Tol(key, size, cond, margin)`. The cases are generated from
# fixed seeds (the seed is the CRC32 of the case name), so every machine gets the same ones.

# %%
counts = {f: len(oracle.cases(f)) for f in oracle.FAMILIES}
print("golden cases per family:", counts, "total", sum(counts.values()))
assert 40 <= sum(counts.values()) <= 150 and counts["truncate"] == 16

case = next(c for c in oracle.cases("truncate") if c.name == "truncate.6x5_k4_relative")
print(f"\n{case.name}")
for k, v in case.inputs.items():
    print(f"  input    {k:9s}", f"{v.dtype} {v.shape}" if isinstance(v, np.ndarray) else repr(v))
for k, v in case.expected.items():
    print(f"  expected {k:9s} {v.dtype} {v.shape}")
s_hat = np.linalg.svd(case.inputs["S_hat"], compute_uv=False)
s_exp = np.linalg.svd(case.expected["S"], compute_uv=False)
print("  singular values of S_hat:     ", fmt(s_hat))
print("  singular values of expected S:", fmt(s_exp))
print(f"  {'quantity':17s} {'key':15s} {'size':>4s} {'cond':>5s} {'margin':>8s} "
      f"{'float64 tol':>12s} {'float32 tol':>12s}")
for q, t in case.tol.items():
    margin = "-" if t.margin is None else f"{t.margin:.3g}"
    print(f"  {q:17s} {t.key:15s} {t.size:4d} {t.cond:5.2g} {margin:>8s} "
          f"{t.value(np.float64):12.3e} {t.value(np.float32):12.3e}")

# %% [markdown]
# Reading the case: `S_hat` has singular values `3, 1.5, 0.4, 0.05`, `tol = 0.05` is
# relative, so `theta = 0.05 ||S_hat||_F = 0.169`; the tail `0.05` fits under it, the tail
# `||(0.4, 0.05)|| = 0.403` does not, hence rank 3 and a truncation error of exactly `0.05`.
#
# A tolerance is `checks.tolerance(key, dtype, size, cond) = factor(key) * eps(dtype) * size
# * cond`: `size` is the largest dimension of the case, `cond` the condition number of that
# quantity, *measured* when the case was generated (the reference re-run on inputs perturbed
# by `1e-10`). Ranks are compared exactly; their `margin` is how far (relative to
# `||S_hat||_F`) the threshold is from changing the rank — a case whose margin is below the
# resolution of a dtype is *skipped* in that dtype, never silently passed.

# %%
r_exp = case.expected["S"].shape[0]
Y_hat = dense(case.inputs["U_hat"], case.inputs["S_hat"], case.inputs["V_hat"])
trunc_err = np.linalg.norm(Y_hat - dense(*(case.expected[k] for k in "USV")))
print(f"expected rank {r_exp}; ||Y_hat - Y_expected||_F = {trunc_err:.15f} "
      f"(the discarded sigma_4 = {s_hat[3]:.15f})")
assert r_exp == 3 and abs(trunc_err - 0.05) <= tolerance("truncation", size=6)
assert np.allclose(s_exp, [3.0, 1.5, 0.4], rtol=0, atol=tolerance("step", size=6))
t = case.tol["matrix"]
ratio32 = t.value(np.float32) / t.value(np.float64)
print(f"matrix tolerance = 500 * eps * {t.size} * {t.cond} = {t.value():.3e}; "
      f"float32 / float64 = {ratio32:.3e} = eps32 / eps64")
assert t.value() == tolerance("step", np.float64, t.size, t.cond)
assert ratio32 == np.finfo(np.float32).eps / np.finfo(np.float64).eps

# %% [markdown]
# ### Why invariants, not factors
#
# `Y = U S V^T` does not determine its factors: for any orthogonal `Q1`, `Q2`
#
# $$Y = (U Q_1)\,(Q_1^\top S Q_2)\,(V Q_2)^\top ,$$
#
# and even a diagonal `S` from an SVD leaves the sign of each singular vector pair free —
# two LAPACKs (or NumPy and PyTorch) legitimately disagree on it. So a checker that compared
# `U` with `U_expected` would fail a correct backend. Below, the expected result and random
# re-factorisations of it differ in `U` by `O(1)` but agree in the matrix `U S V^T`, the
# singular values of `S` and the projectors `U U^T`, `V V^T` to rounding — and the oracle
# passes them.

# %%
U, S, V = (case.expected[k] for k in "USV")


def random_orthogonal(k):
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    return Q * np.sign(np.diag(R))


signs = np.diag([1.0, -1.0, -1.0])                      # the sign freedom of an SVD
gauges = [(signs, signs)] + [(random_orthogonal(r_exp), random_orthogonal(r_exp))
                             for _ in range(N_GAUGES)]
worst = dict(U=np.inf, matrix=0.0, sv=0.0, proj=0.0)
for Q1, Q2 in gauges:
    U2, S2, V2 = U @ Q1, Q1.T @ S @ Q2, V @ Q2
    worst["U"] = min(worst["U"], np.linalg.norm(U2 - U))
    worst["matrix"] = max(worst["matrix"], rel(dense(U2, S2, V2), dense(U, S, V)))
    worst["sv"] = max(worst["sv"], rel(np.linalg.svd(S2, compute_uv=False), s_exp))
    worst["proj"] = max(worst["proj"], np.linalg.norm(U2 @ U2.T - U @ U.T),
                        np.linalg.norm(V2 @ V2.T - V @ V.T))
    report = oracle.check("truncate", lambda **kw: {"U": U2, "S": S2, "V": V2},
                          golden=[case])
    assert report.passed, report
print(f"{len(gauges)} re-factorisations: min ||U' - U||_F = {worst['U']:.2f}, but "
      f"max relative error of U S V^T {worst['matrix']:.1e}, of the singular values "
      f"{worst['sv']:.1e}, of the projectors {worst['proj']:.1e} -> all pass the oracle")
assert worst["U"] > 0.5
assert worst["matrix"] <= tolerance("reconstruction", size=6)
assert worst["sv"] <= tolerance("reconstruction", size=6)
assert worst["proj"] <= tolerance("reconstruction", size=6)

# %% [markdown]
# A quantity is compared only where the *inputs* determine it. In `truncate.ties_at_cut`
# the cut falls between two equal singular values (`2, 1, 1, 1e-3`, keep 2): which of the
# two directions survives is arbitrary, so the matrix and the projectors are not compared —
# only what is determined (rank, singular values, truncation error, orthonormality):

# %%
ties = next(c for c in oracle.cases("truncate") if c.name == "truncate.ties_at_cut")
print(f"{ties.name}: S_hat singular values "
      f"{fmt(np.linalg.svd(ties.inputs['S_hat'], compute_uv=False))}, compared: "
      f"{sorted(ties.tol)}")
assert "matrix" not in ties.tol and "projector_U" not in ties.tol and "rank" in ties.tol

# %% [markdown]
# ## 2. An independent candidate
#
# A candidate is a function of the case's keyword arguments returning a dict of arrays. We
# write `truncate` ([CKL22], step 3) and `bug_step` ([CL22] with one
# explicit Euler step per substep, for the linear test equation
# `dA/dt = F(t, A) = A1 A + A A2 + B` of the integrator families) from the papers, without
# calling `lowrank_ref`. Nothing is hard-wired to float64: in a float32 check the float
# inputs arrive as float32 and the computation stays in float32.
#
# Truncation: with `S_hat = P diag(s) Vh` (NumPy's `svd` returns `Vh`, whose *rows* are the
# right singular vectors), keep the smallest `r` with `||s[r:]||_2 <= theta`, clamp it to
# `[min_rank, min(max_rank, k)]`, and return `U_hat P[:, :r]`, `diag(s[:r])`,
# `V_hat Vh.T[:, :r]`. The optional switches plant the bugs of section 3.

# %%
def tail_rank(s, theta):
    """Smallest r with ||s[r:]||_2 <= theta, for s sorted decreasingly."""
    tails = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])        # tails[j] = ||s[j:]||, decreasing
    return int(np.count_nonzero(tails > theta))


def published_rank(s, theta):
    """The loop of the published DLRT code: the first j with ||s[j:k-1]|| < theta, i.e. the
    last singular value is never counted in the discarded tail."""
    k = len(s)
    for j in range(k):
        if np.linalg.norm(s[j:k - 1]) < theta:
            return j
    return k


def make_truncate(rank_rule=tail_rank, transposed_v=False):
    def my_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
        P, s, Vh = np.linalg.svd(S_hat, full_matrices=False)   # S_hat = P diag(s) Vh
        k = s.shape[0]
        theta = tol * np.linalg.norm(s) if relative else tol
        r = min(max(rank_rule(s, theta), min_rank), max_rank, k)
        Q = Vh[:, :r] if transposed_v else Vh.T[:, :r]          # the bug: columns of Vh
        return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Q}
    return my_truncate


def make_bug_step(galerkin=True):
    def my_bug_step(U0, S0, V0, A1, A2, B, t0, h, inner, substeps):
        if (inner, substeps) != ("euler", 1):
            raise ValueError(f"only inner='euler', substeps=1; got {inner!r}, {substeps}")

        def F(Y):                                   # autonomous: t is not needed
            return A1 @ Y + Y @ A2 + B

        FY0 = F(U0 @ S0 @ V0.T)
        K1 = U0 @ S0 + h * FY0 @ V0                 # K-step
        L1 = V0 @ S0.T + h * FY0.T @ U0             # L-step, from the old U0, S0
        U1, _ = np.linalg.qr(K1)
        V1, _ = np.linalg.qr(L1)
        S_start = (U1.T @ U0) @ S0 @ (V0.T @ V1) if galerkin else S0
        S1 = S_start + h * U1.T @ F(U1 @ S_start @ V1.T) @ V1     # Galerkin S-step
        return {"U": U1, "S": S1, "V": V1}
    return my_bug_step


my_truncate, my_bug_step = make_truncate(), make_bug_step()

# %% [markdown]
# Check them in float64 and float32. A wrapper records the dtypes the candidate receives and
# returns, to confirm that the float32 check really runs in float32.

# %%
def recording(candidate, seen):
    def wrapped(**kw):
        out = candidate(**kw)
        seen.update(a.dtype.name for a in [*kw.values(), *out.values()]
                    if isinstance(a, np.ndarray) and a.dtype.kind == "f")
        return out
    return wrapped


reports = {}
for family, cand in (("truncate", my_truncate), ("bug_step", my_bug_step)):
    for dtype in (np.float64, np.float32):
        seen = set()
        rep = oracle.check(family, recording(cand, seen), dtype=dtype)
        reports[(family, np.dtype(dtype).name)] = rep
        print(rep, f"  (dtypes seen: {sorted(seen)})")
        assert rep.passed and seen == {np.dtype(dtype).name}
assert reports[("truncate", "float64")].n_cases == 16
assert reports[("truncate", "float32")].n_cases == 14
assert set(reports[("truncate", "float32")].skipped) == {
    "truncate.tol0_absolute_small_tail", "truncate.300x200_k40_spread_absolute_1e-9"}
assert reports[("bug_step", "float32")].n_cases == 10

# %% [markdown]
# The two skipped float32 cases ask for decisions float32 cannot make (e.g. an absolute
# tolerance of `1e-9` on singular values of size 1, where float32 rounding is `6e-8`): they
# are listed, not passed.
#
# How much room does a correct candidate leave? The ratio error / tolerance of the matrix
# `U S V^T` per `bug_step` case, in both dtypes — and, to see that the dtype argument
# matters, the float32 results held to the *float64* tolerances:

# %%
def matrix_ratios(family, candidate, dtype=np.float64, tol_dtype=None):
    """error / tolerance of U S V^T per case (cases without a compared matrix left out)."""
    out = {}
    for c in oracle.cases(family):
        if "matrix" not in c.tol:
            continue
        inputs = {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                  else v for k, v in c.inputs.items()}
        res = candidate(**inputs)
        err = rel(dense(res["U"], res["S"], res["V"]), dense(*(c.expected[k] for k in "USV")))
        out[c.name.split(".", 1)[1]] = err / c.tol["matrix"].value(tol_dtype or dtype)
    return out


ratio = {"correct, float64": matrix_ratios("bug_step", my_bug_step),
         "correct, float32": matrix_ratios("bug_step", my_bug_step, np.float32),
         "correct, float32 vs float64 tol": matrix_ratios("bug_step", my_bug_step, np.float32,
                                                          np.float64)}
for label, rs in ratio.items():
    print(f"bug_step, {label:31s}: max error/tol = {max(rs.values()):.2e}")
assert max(ratio["correct, float64"].values()) < 0.1
assert max(ratio["correct, float32"].values()) < 0.1
assert max(ratio["correct, float32 vs float64 tol"].values()) > 1e3

# %% [markdown]
# ## 3. Planting known bugs
#
# docs/design.md, section "Known bugs of other implementations", lists bugs found in other
# implementations. The first: rebuilding `V` from the SVD of the core with the transposed
# factor, `V_hat @ Vh[:, :r]` instead of `V_hat @ Vh.T[:, :r]`. It is easy to miss because
# every shape is right and `V` is still orthonormal — but it is the wrong matrix, even
# when nothing is truncated (`tol = 0`):

# %%
def first_lines(report, n=5):
    lines = str(report).splitlines()
    return "\n".join(lines[:n] + ([f"  ... ({len(lines) - n} more lines)"]
                                  if len(lines) > n else []))


rep_t = oracle.check("truncate", make_truncate(transposed_v=True))
print(first_lines(rep_t))
matrix_failures = [f for f in rep_t.failures if f.quantity == "matrix"]
tol0 = next(f for f in matrix_failures if f.case == "truncate.tol0_relative")
print(f"-> {len(matrix_failures)} cases fail on 'matrix'; at tol = 0: error {tol0.error:.2f} "
      f"vs tol {tol0.tol:.1e}; failing quantities: {sorted({f.quantity for f in rep_t.failures})}")
assert not rep_t.passed and tol0.error > 1e10 * tol0.tol
assert "[matrix]" in str(rep_t) and "orthonormality" not in {f.quantity for f in rep_t.failures}

# %% [markdown]
# The second: the published DLRT truncation loop stops at the first `j` with
# `||s[j:k-1]|| < theta`, i.e. it never counts the last singular value in the discarded
# tail. When the last value matters it cuts one direction too many, and its truncation
# error then exceeds the tolerance it was asked to meet — far above rounding. The golden case
# `truncate.last_value_excluded` (`s = 3, 1.5, 0.4, 0.3`, absolute `tol = 0.45`: the tail
# `||(0.4, 0.3)|| = 0.5` is too big, so rank 3; the published rule sees `||0.4|| < 0.45`
# and keeps 2) is built to decide exactly this:

# %%
rep_e = oracle.check("truncate", make_truncate(rank_rule=published_rank))
print(rep_e)
f0 = rep_e.failures[0]
print(f"first failure: case={f0.case!r} quantity={f0.quantity!r} error={f0.error} "
      f"tol={f0.tol}: {f0.message}")
assert not rep_e.passed and (f0.case, f0.quantity) == ("truncate.last_value_excluded", "rank")
assert f0.message == "rank 2, expected 3"
lv = next(c for c in oracle.cases("truncate") if c.name == "truncate.last_value_excluded")
out_lv = make_truncate(rank_rule=published_rank)(**lv.inputs)
err_lv = np.linalg.norm(dense(lv.inputs["U_hat"], lv.inputs["S_hat"], lv.inputs["V_hat"])
                        - dense(*(out_lv[k] for k in "USV")))
print(f"published rule on {lv.name}: ||Y_hat - Y||_F = {err_lv:.4f} > tol = {lv.inputs['tol']}")
assert err_lv > lv.inputs["tol"]

# %% [markdown]
# The same loop has a second bug: it runs `for j in range(2r - 1)` over the `k = 2r`
# singular values of the augmented core, starting from the old rank `r`, so it never tests
# the last index `j = 2r - 1`. When only the last tail `sigma_{2r}` fits under `theta`, the
# rank should grow to `2r - 1`; the loop finds nothing and silently keeps the old `r`.
# `truncate.tail_met_only_at_last_index` (`s = 3, 2, 1, 0.01`, absolute `tol = 0.05`) is
# built for it — the other bug of the loop does not change the rank there, so the case
# isolates this one:

# %%
def untested_last_index_rank(s, theta):
    """The published loop with a correct tail: r starts at the old rank k // 2 and the
    last index j = k - 1 is never tested."""
    tails = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])
    k, r = len(s), len(s) // 2
    for j in range(k - 1):
        if tails[j] <= theta:
            return j
    return r


last = next(c for c in oracle.cases("truncate")
            if c.name == "truncate.tail_met_only_at_last_index")
fails_last = oracle.check_case(last, make_truncate(rank_rule=untested_last_index_rank))
for f in fails_last:
    print(f)
assert fails_last[0].quantity == "rank" and fails_last[0].message == "rank 2, expected 3"
assert oracle.check_case(last, make_truncate(rank_rule=published_rank)) == []
assert oracle.check_case(last, my_truncate) == []

# %% [markdown]
# `oracle.check_case(case, candidate, dtype)` is the per-case form of `oracle.check`: it
# returns the case's list of `Failure`s, empty if the candidate passed. In a backend's test
# suite it gives one pytest test per golden case, named by the case — `pytest -k
# truncate.tail_met_only_at_last_index` runs one, and a failing test shows that case's
# failures:
#
# ```python
# import pytest
# from lowrank_ref import oracle
#
# @pytest.mark.parametrize("case", oracle.cases("truncate"), ids=lambda c: c.name)
# def test_truncate(case):
#     assert oracle.check_case(case, my_truncate) == []
# ```
#
# Below, the loop that test runs, for the correct candidate and the two published bugs.
# (For a float32 backend: `check_case(case, candidate, dtype=np.float32)`, after
# `pytest.skip` for the cases `oracle.resolvable(case, np.float32)` rejects.)

# %%
for label, cand in (("correct", my_truncate),
                    ("last value left out of the tail", make_truncate(rank_rule=published_rank)),
                    ("last index never tested", make_truncate(rank_rule=untested_last_index_rank))):
    per_case = {c.name: oracle.check_case(c, cand) for c in oracle.cases("truncate")}
    failed = sorted(name for name, fs in per_case.items() if fs)
    print(f"{label:32s}: {len(per_case) - len(failed)} passed, {len(failed)} failed "
          f"{failed}")
    if label == "correct":
        assert not failed
    else:
        assert failed and all(any(f.quantity == "rank" for f in per_case[n]) for n in failed)

# %% [markdown]
# A fourth, for `bug_step`: forgetting the Galerkin projection and starting the S-step from
# `S0` instead of `(U1^T U0) S0 (V0^T V1)` (the factors of `Y0` in the new bases):

# %%
rep_g = oracle.check("bug_step", make_bug_step(galerkin=False))
print(first_lines(rep_g, 4))
ratio["bug: no Galerkin projection"] = matrix_ratios("bug_step", make_bug_step(galerkin=False))
print(f"-> min error/tol of U S V^T over the cases: "
      f"{min(ratio['bug: no Galerkin projection'].values()):.1e}")
assert not rep_g.passed and any(f.quantity == "matrix" for f in rep_g.failures)

# %%
fig, ax = plt.subplots(figsize=(10.5, 4))
names = list(ratio["correct, float64"])
x = np.arange(len(names))
for (label, rs), marker in zip(ratio.items(), "os^x"):
    ax.semilogy(x, [max(rs[n], 1e-8) for n in names], marker, label=label)
ax.axhline(1.0, color="k", lw=1)
ax.text(len(names) - 0.5, 1.5, "tolerance", ha="right", va="bottom", fontsize=8)
ax.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
ax.set_ylabel("error of U S V^T / tolerance\n(exact 0 drawn at 1e-8)")
ax.set_title("bug_step golden cases: correct candidates, and a planted bug")
ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
fig.tight_layout()
fig.savefig(OUT / "06_error_over_tolerance.png", dpi=110)
plt.close(fig)
print("figure:", OUT / "06_error_over_tolerance.png")

# %% [markdown]
# Correct candidates sit orders of magnitude below the line (the tolerances are generous
# for any LAPACK, including float32), bugs orders of magnitude above it: there is no grey
# zone to tune. The float32 results are correct, but *not* to float64 accuracy — which is
# why the check must be told the candidate's dtype.
#
# ## 4. Golden files for a backend in another language
#
# `oracle.export(directory)` writes one `<case name>.npz` per case (arrays `input.<key>` and
# `expected.<key>`, scalars as 0-d arrays, strings as unicode arrays, no pickles — readable
# from C++ (cnpy), Julia (NPZ.jl), Rust (ndarray-npy), ...) and a `manifest.json` with per
# case the file's sha256, the shapes and dtypes and the tolerances (float64 and float32
# values). `python -m lowrank_ref oracle export DIR` does the same from the shell.
# `oracle.verify(directory)` checks every hash *and* regenerates the cases and compares.

# %%
with tempfile.TemporaryDirectory() as tmp:
    golden_dir = Path(tmp) / "golden"
    manifest_path = oracle.export(golden_dir)
    manifest = json.loads(manifest_path.read_text())
    files = sorted(golden_dir.glob("*.npz"))
    print(f"exported {len(files)} .npz files + {manifest_path.name} "
          f"(lowrank_ref {manifest['version']}, format {manifest['format']})")
    assert len(files) == len(manifest["cases"]) == sum(counts.values())

    entry = next(e for e in manifest["cases"] if e["name"] == "bug_step.10x8_r2")
    print(f"\nmanifest entry {entry['name']!r}:")
    for key in ("family", "file", "sha256", "dtype"):
        print(f"  {key}: {entry[key]}")
    print("  inputs:  ", json.dumps(entry["inputs"]))
    print("  expected:", json.dumps(entry["expected"]))
    for q, tq in entry["tolerance"].items():
        print(f"  tolerance[{q!r}]:", json.dumps(tq))
    sha = hashlib.sha256((golden_dir / entry["file"]).read_bytes()).hexdigest()
    assert sha == entry["sha256"] and entry["inputs"]["U0"] == {"shape": [10, 2], "dtype": "<f8"}
    assert entry["tolerance"]["rank"]["float64"] == 0.0

    # what a non-Python backend reads: plain .npy arrays in a zip
    with np.load(golden_dir / entry["file"], allow_pickle=False) as z:
        print(f"\n{entry['file']}: {sorted(z.files)}; input.inner = {z['input.inner']!r}")
        assert z["input.inner"].dtype.kind == "U" and z["expected.U"].shape == (10, 2)

    t0 = time.perf_counter()
    rep_v = oracle.verify(golden_dir)
    print(f"\n{rep_v}   ({time.perf_counter() - t0:.1f} s)")
    assert rep_v.passed and rep_v.n_cases == sum(counts.values())

    # the loaded cases drive the same checker (what a CI job with pinned files does)
    rep_l = oracle.check("bug_step", my_bug_step, golden=oracle.load(golden_dir))
    print("from the files:", rep_l)
    assert rep_l.passed and rep_l.n_cases == counts["bug_step"]

    # tamper with one expected value (relative change 1e-6) and verify again
    target = golden_dir / entry["file"]
    with np.load(target, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["expected.S"] = arrays["expected.S"] * (1 + 1e-6)
    np.savez(target, **arrays)
    rep_bad = oracle.verify(golden_dir)
    print("\nafter tampering:", rep_bad)
    assert not rep_bad.passed
    assert [(f.case, f.quantity) for f in rep_bad.failures] == [("bug_step.10x8_r2", "sha256")]
    assert entry["file"] in str(rep_bad)

    # the hash is not the only guard: forge it, and the regeneration catches the values
    entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    rep_forged = oracle.verify(golden_dir)
    print("\nwith a forged hash:", first_lines(rep_forged, 3))
    assert {f.case for f in rep_forged.failures} == {"bug_step.10x8_r2"}
    assert {"matrix", "singular_values"} <= {f.quantity for f in rep_forged.failures}

# %% [markdown]
# ## 5. A PyTorch candidate
#
# A real backend is wrapped the same way: NumPy arrays in, `torch.from_numpy` (no copy; the
# checker hands every candidate fresh arrays), compute with torch ops, `.numpy()` out. The
# torch `bug_step` below also computes differently from the NumPy one: it applies `F`
# through the factors, as a real implementation would, and never forms an `m x n` matrix
# (using `U0^T U0 = V0^T V0 = I`):
#
# $$F(Y_0) V_0 = A_1 K_0 + K_0 (V_0^\top A_2 V_0) + B V_0,\qquad
#   F(Y_0)^\top U_0 = L_0 (U_0^\top A_1^\top U_0) + A_2^\top L_0 + B^\top U_0,$$
#
# $$U_1^\top F(U_1 S V_1^\top) V_1 = (U_1^\top A_1 U_1) S + S (V_1^\top A_2 V_1)
#   + U_1^\top B V_1 .$$
#
# The oracle accepts any evaluation order that is correct to rounding. This section runs only
# where `torch` is importable (`pip install torch`); elsewhere it prints a note.

# %%
if torch is None:
    print(f"PyTorch {TORCH_NOTE}: section 5 is not run here. `pip install torch` and "
          "re-run the tutorial to check the torch candidate.")
else:
    def torch_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
        U_hat, S_hat, V_hat = (torch.from_numpy(a) for a in (U_hat, S_hat, V_hat))
        P, s, Vh = torch.linalg.svd(S_hat, full_matrices=False)
        theta = tol * torch.linalg.vector_norm(s) if relative else tol
        tails = torch.sqrt(torch.flip(torch.cumsum(torch.flip(s * s, (0,)), 0), (0,)))
        r = min(max(int((tails > theta).sum()), min_rank), max_rank, s.shape[0])
        return {"U": (U_hat @ P[:, :r]).numpy(), "S": torch.diag(s[:r]).numpy(),
                "V": (V_hat @ Vh.T[:, :r]).numpy()}

    def torch_bug_step(U0, S0, V0, A1, A2, B, t0, h, inner, substeps):
        if (inner, substeps) != ("euler", 1):
            raise ValueError(f"only inner='euler', substeps=1; got {inner!r}, {substeps}")
        U0, S0, V0, A1, A2, B = (torch.from_numpy(a) for a in (U0, S0, V0, A1, A2, B))
        K0, L0 = U0 @ S0, V0 @ S0.T
        K1 = K0 + h * (A1 @ K0 + K0 @ (V0.T @ A2 @ V0) + B @ V0)
        L1 = L0 + h * (L0 @ (U0.T @ A1.T @ U0) + A2.T @ L0 + B.T @ U0)
        U1, V1 = torch.linalg.qr(K1).Q, torch.linalg.qr(L1).Q
        S = (U1.T @ U0) @ S0 @ (V0.T @ V1)
        S1 = S + h * ((U1.T @ A1 @ U1) @ S + S @ (V1.T @ A2 @ V1) + U1.T @ B @ V1)
        return {"U": U1.numpy(), "S": S1.numpy(), "V": V1.numpy()}

    torch_reports = {}
    for family, cand in (("truncate", torch_truncate), ("bug_step", torch_bug_step)):
        for dtype in (np.float64, np.float32):
            seen = set()
            rep = oracle.check(family, recording(cand, seen), dtype=dtype)
            torch_reports[(family, np.dtype(dtype).name)] = rep
            print(f"torch {torch.__version__}:", rep, f"  (dtypes seen: {sorted(seen)})")
            assert rep.passed and seen == {np.dtype(dtype).name}

    ratio_t = matrix_ratios("bug_step", torch_bug_step)
    print(f"torch bug_step (factored F), float64: max error/tol = {max(ratio_t.values()):.2e}")
    assert max(ratio_t.values()) < 0.1

    # the same case through NumPy and torch: the factors may differ (signs of singular
    # vector pairs: whether they do depends on the LAPACK builds), the invariants agree
    big = next(c for c in oracle.cases("truncate") if c.name == "truncate.300x200_k40_spread")
    out_np, out_t = my_truncate(**big.inputs), torch_truncate(**big.inputs)
    r_np, r_t = out_np["S"].shape[0], out_t["S"].shape[0]
    col_dist = np.linalg.norm(out_np["U"] - out_t["U"], axis=0)
    print(f"{big.name}: rank NumPy {r_np}, torch {r_t}; columns of U differing in sign: "
          f"{int(np.sum(col_dist > 1))} of {r_np}; relative difference of U S V^T "
          f"{rel(dense(*(out_t[k] for k in 'USV')), dense(*(out_np[k] for k in 'USV'))):.1e}")
    assert r_np == r_t
    assert rel(dense(*(out_t[k] for k in "USV")), dense(*(out_np[k] for k in "USV"))) \
        <= big.tol["matrix"].value()

    # and a planted bug in the torch candidate is caught the same way
    def torch_truncate_transposed(**kw):
        out = torch_truncate(**kw)
        Vh = np.linalg.svd(kw["S_hat"], full_matrices=False)[2]
        out["V"] = kw["V_hat"] @ Vh[:, :out["S"].shape[0]]
        return out

    rep_tb = oracle.check("truncate", torch_truncate_transposed)
    print("torch candidate with the transposed factor:", str(rep_tb).splitlines()[0])
    assert not rep_tb.passed and any(f.quantity == "matrix" for f in rep_tb.failures)

# %% [markdown]
# ## What the real-scale method does differently
#
# * A GPU backend moves the inputs to the device and back (`torch.from_numpy(a).to(dev)`,
#   `.cpu().numpy()`), and must switch off TF32 matmuls while being checked
#   (`torch.backends.cuda.matmul.allow_tf32 = False`): TF32 rounds to ~1e-3, far outside even
#   the float32 tolerances. bfloat16/float16 training has no golden tolerances here; check the
#   same code path in float32.
# * The golden cases are small (up to `300 x 200`, one step each, from a fixed start): they
#   check *the step* a backend implements, not long trajectories, speed or memory. Long runs
#   diverge from each other chaotically after many steps even when every step is right;
#   compare them by statistics (loss curves, ranks, accuracy — tutorial 05), not entrywise.
# * In CI one exports the golden files once, commits them next to the backend, and runs
#   `python -m lowrank_ref oracle verify DIR` when `lowrank_ref` is upgraded (a changed case
#   is then named); the backend's own test suite only needs the `.npz` files and the
#   manifest's tolerances.
# * Real backends implement all families (`adaptive_bug_step`, `parallel_bug_step`,
#   `projector_splitting_step`, the DLRT steps) behind the same wrapper; the module docstring
#   of `lowrank_ref.oracle` lists each family's keyword arguments and returned keys, and
#   `oracle.reference(family)` is a template candidate that passes by construction.

# %%
print(f"tutorial 06 finished in {time.perf_counter() - T_START:.1f} s")

# %% [markdown]
# ## Where this lives in the library
#
# | claim | function | module | test |
# |---|---|---|---|
# | the reference passes its own golden cases | `check`, `reference` | `lowrank_ref.oracle` | `tests/test_oracle.py::test_reference_passes` |
# | an independent float32 candidate passes with float32 tolerances | `check` | `lowrank_ref.oracle` | `tests/test_oracle.py::test_independent_float32_candidate_passes_with_float32_tolerances` |
# | known bugs are caught by the right quantity | `check` | `lowrank_ref.oracle` | `tests/test_oracle.py::test_known_bug_is_caught_by_the_right_quantity` |
# | golden cases are deterministic | `cases` | `lowrank_ref.oracle` | `tests/test_oracle.py::test_cases_are_deterministic` |
# | export and verify round-trip; a tampered file is named | `export`, `verify` | `lowrank_ref.oracle` | `tests/test_oracle.py::test_a_tampered_file_is_reported_by_name` |
# | tolerances follow the one table | `tolerance` | `lowrank_ref.checks` | `tests/test_oracle.py::test_tolerances_follow_the_table_in_checks` |
#
# ## Exercises
#
# Answers: `tutorials/solutions/06_solutions.py` (each checked by an `assert`).
#
# 1. Write a `truncate` candidate with the published DLRT loop (the tail never includes the
#    last singular value, tutorial 03) and check it. Which quantities fail?
# 2. Wrap `oracle.reference("bug_step")` so that it returns the same result in another
#    factorisation, `U Q1, Q1^T S Q2, V Q2` with random orthogonal `Q1`, `Q2`. Does it pass?
#    Why must it?
