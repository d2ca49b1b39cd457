"""Where the time of a training step goes: cProfile (and pyinstrument, if installed) of a
slice of dense and DLRT steps on the paper's network, plus a float32 audit of the hot path.

    python benchmarks/profile_steps.py --threads 1 --steps 40 [--methods dense,adaptive1-60]

For each method: the top functions by own time, and the step time grouped by category
(matmuls in the graph forward/backward, the DLRT factor products, QR, SVD, engine
bookkeeping, elementwise/copies). The dtype audit wraps the package's linear-algebra entry
points and the graph nodes and reports any array that is not of the training dtype.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _threads import limit_threads  # noqa: E402

THREADS = limit_threads()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import _common as C  # noqa: E402

# (regex on "file:function", category). First match wins; the own time of each function is
# attributed to its category.
CATEGORIES = [
    ("proto.py:matmul_lazy", "graph forward matmul"),
    ("proto.py:backward", "graph backward (matmul/add/relu/... closures)"),
    ("proto.py:cholqr2", "CholeskyQR2 (prototype) own"),
    ("_basic.py:_solve_triangular", "CholeskyQR2 (prototype) own"),
    ("linalg.py:cholesky", "CholeskyQR2 (prototype) own"),
    ("_decomp_qr.py:", "QR (scipy.linalg.qr)"),
    ("proto.py:augment_basis_fast", "augment_basis own (projections, concat)"),
    ("proto.py:truncate_unchecked", "truncate own (U_hat P, V_hat Q, rank rule)"),
    ("linalg.py:qr", "QR (np.linalg.qr)"),
    ("_umath_linalg.qr", "QR (np.linalg.qr)"),
    ("linalg.py:svd", "SVD (np.linalg.svd)"),
    ("_umath_linalg.svd", "SVD (np.linalg.svd)"),
    ("linalg.py:norm", "SVD (np.linalg.norm 2)"),
    ("linalg.py:", "other np.linalg"),
    ("ops.py:matmul", "graph forward matmul"),
    ("ops.py:backward", "graph backward (matmul/add/relu/... closures)"),
    ("ops.py:", "graph ops (other)"),
    ("autodiff.py:backward", "engine sweep (Tensor.backward)"),
    ("autodiff.py:topological_order", "engine: topological_order"),
    ("autodiff.py:", "engine: make_node/Tensor/checks"),
    ("checks.py:orthonormality_error", "validation: orthonormality gate"),
    ("lowrank.py:as_float_array", "validation: as_float_array"),
    ("lowrank.py:augment_basis", "augment_basis own (projections, concat)"),
    ("lowrank.py:", "lowrank.py other (reorthonormalize own)"),
    ("truncation.py:", "truncate own (U_hat P, V_hat Q, rank rule)"),
    ("dlrt.py:_kl_gradients", "DLRT factor products (G V0, G^T U0, G U0)"),
    ("dlrt.py:_step_one_pass", "DLRT one-pass own (K1/L1, S-step products, concat)"),
    ("dlrt.py:", "DLRT other"),
    ("nn.py:", "layers (nn.py own)"),
    ("_common.py:step", "harness"),
]


def categorise(stats: pstats.Stats) -> dict:
    import re
    out = {}
    for (fname, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        key = f"{os.path.basename(fname)}:{func}"
        cat = "other (numpy C calls, builtins)"
        for pat, label in CATEGORIES:
            if re.search(re.escape(pat), key):
                cat = label
                break
        out[cat] = out.get(cat, 0.0) + tt
    return out


def linalg_by_caller(st: pstats.Stats) -> dict:
    """Cumulative time of np.linalg.svd/qr/norm and scipy.linalg.qr/svd, split by caller
    (np.linalg.norm(., 2) reaches svd through _multi_svd_norm: reported as norm)."""
    out = {}
    for (fname, _line, func), (_cc, _nc, _tt, _ct, callers) in st.stats.items():
        base = os.path.basename(fname)
        if not ((base == "_linalg.py" and func in ("svd", "qr", "norm"))
                or (base in ("_decomp_qr.py", "_decomp_svd.py") and func in ("qr", "svd"))):
            continue
        label = f"{'np' if base == '_linalg.py' else 'scipy'}.linalg.{func}"
        for (cf, _cl, cfunc), vals in callers.items():
            cname = f"{os.path.basename(cf)}:{cfunc}"
            if cname in ("_linalg.py:_multi_svd_norm", "_linalg.py:norm") and func == "svd":
                continue                       # counted under norm
            ncalls, ct = vals[1], vals[3]
            key = (label, cname)
            n0, t0 = out.get(key, (0, 0.0))
            out[key] = (n0 + ncalls, t0 + ct)
    return out


def dtype_audit(method, rank, sizes, batches, dtype):
    """Run steps with wrappers that record every non-``dtype`` float array they see."""
    from lowrank_ref import autodiff, dlrt, lowrank, nn, truncation
    bad = []

    def check(where, arr):
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.dtype != dtype:
            bad.append((where, str(arr.dtype), arr.shape))

    def wrap(mod, name):
        orig = getattr(mod, name)

        def wrapper(*a, **k):
            for i, x in enumerate(a):
                check(f"{name} arg {i}", x)
            out = orig(*a, **k)
            for i, x in enumerate(out if isinstance(out, tuple) else (out,)):
                check(f"{name} out {i}", x)
            return out
        return mod, name, orig, wrapper
    targets = [wrap(dlrt, "augment_basis"), wrap(dlrt, "truncate"), wrap(dlrt, "orthonormalize"),
               wrap(nn, "reorthonormalize"), wrap(np.linalg, "qr"), wrap(np.linalg, "svd"),
               wrap(autodiff, "make_node"), wrap(dlrt, "_kl_gradients")]
    import lowrank_ref.ops as ops_mod
    targets.append(wrap(ops_mod, "make_node"))
    step, model = C.make_runner(method, sizes, np.random.default_rng(0), dtype, rank=rank)
    for mod, name, _o, w in targets:
        setattr(mod, name, w)
    try:
        for X, y in batches[:3]:
            step(X, y)
        for layer in getattr(model, "layers", []):
            for attr in ("U", "S", "V"):
                check(f"layer.{attr}", getattr(layer, attr, None))
            for t in ("W", "b"):
                v = getattr(layer, t, None)
                check(f"layer.{t}", getattr(v, "value", None))
    finally:
        for mod, name, orig, _w in targets:
            setattr(mod, name, orig)
    _ = (lowrank, truncation)
    return bad


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--methods", default="dense,fixed-20,adaptive1-25,adaptive1-60")
    p.add_argument("--top", type=int, default=18)
    p.add_argument("--wide", action="store_true", help="784-2048x4-10 instead of 784-500x4-10")
    p.add_argument("--variants", default="none",
                   help="profile with these levers of benchmarks/proto.py patched in")
    p.add_argument("--pyinstrument", default=None,
                   help="write pyinstrument text reports to this folder (if installed)")
    args = p.parse_args(argv)
    C.enforce_threads(args.threads)
    import contextlib
    import proto
    levers = proto.parse_variants(args.variants)
    ctx = proto.patched(levers) if levers else contextlib.nullcontext()
    if levers:
        print(f"# profiling with prototype levers patched in: {','.join(levers)}")
    dtype = np.dtype(args.dtype).type
    C.print_machine(C.machine_info(args.threads))
    from lowrank_ref import data
    ds = data.load("mnist", dtype=dtype)
    it = data.batches(ds.X_train, ds.y_train, 256, rng=np.random.default_rng(0))
    batches = [next(it) for _ in range(args.steps)]
    sizes = [784] + [2048] * 4 + [10] if args.wide else list(C.PAPER_SIZES)
    print(f"# sizes {sizes}, batch 256, {args.steps} steps, dtype {args.dtype}")

    with ctx:
        profile_all(args, batches, sizes, dtype)
        audit_all(args, batches, sizes, dtype)


def profile_all(args, batches, sizes, dtype):
    for name in args.methods.split(","):
        m, _, r = name.partition("-")
        r = int(r) if r else None
        step, model = C.make_runner(m, sizes, np.random.default_rng(0), dtype, rank=r)
        for X, y in batches[:2]:
            step(X, y)
        t0 = time.perf_counter()
        for X, y in batches:
            step(X, y)
        wall = (time.perf_counter() - t0) / len(batches)
        prof = cProfile.Profile()
        prof.enable()
        for X, y in batches:
            step(X, y)
        prof.disable()
        st = pstats.Stats(prof)
        total = sum(v[2] for v in st.stats.values())
        print(f"\n## {name}: {1e3 * wall:.2f} ms/step unprofiled, "
              f"{1e3 * total / len(batches):.2f} ms/step under cProfile")
        print("\n| category | ms/step | % |\n|---|---|---|")
        for cat, tt in sorted(categorise(st).items(), key=lambda kv: -kv[1]):
            if tt / total >= 0.005:
                print(f"| {cat} | {1e3 * tt / len(batches):.2f} | {100 * tt / total:.1f} |")
        split = linalg_by_caller(st)
        if split:
            print("\n| LAPACK call | called from | calls/step | ms/step |\n|---|---|---|---|")
            for (fn, caller), (n, ct) in sorted(split.items(), key=lambda kv: -kv[1][1]):
                print(f"| {fn} | {caller} | {n / len(batches):.0f} | {1e3 * ct / len(batches):.2f} |")
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.top)
        lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
        start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
        print("\n```")
        for ln in lines[start:start + args.top + 1]:
            print(ln.replace(C.ROOT + "/", "")[:160])
        print("```")
        if args.pyinstrument:
            try:
                import pyinstrument
            except ImportError:
                print("# pyinstrument not installed")
            else:
                os.makedirs(args.pyinstrument, exist_ok=True)
                prof2 = pyinstrument.Profiler(interval=0.0005)
                prof2.start()
                for X, y in batches:
                    step(X, y)
                prof2.stop()
                path = os.path.join(args.pyinstrument, f"{name}.txt")
                with open(path, "w") as f:
                    f.write(prof2.output_text(unicode=False, color=False, show_all=False))
                print(f"# pyinstrument report: {os.path.relpath(path, C.ROOT)}")



def audit_all(args, batches, sizes, dtype):
    print("\n## float32 audit (3 steps each; arrays seen by np.linalg.qr/svd, augment_basis, "
          "truncate, orthonormalize, reorthonormalize, _kl_gradients, make_node, and the "
          "layers' parameters)")
    for name in args.methods.split(","):
        m, _, r = name.partition("-")
        bad = dtype_audit(m, int(r) if r else None, sizes, batches, np.dtype(dtype))
        uniq = sorted(set(bad))
        print(f"- {name}: {'no non-' + args.dtype + ' float arrays' if not uniq else uniq[:10]}")


if __name__ == "__main__":
    main()
