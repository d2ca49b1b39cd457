"""Where the time of a training step goes: cProfile (and pyinstrument, if installed) of a
slice of dense and DLRT steps on the paper's network, plus a float32 audit of the hot path.

    python benchmarks/profile_steps.py --threads 1 --steps 30 \\
        --pyinstrument benchmarks/results/pyinstrument

For each method (``--methods``, names as in ``bench_training.py``): the step time without
and under the profiler, the own time grouped by category (the ``low_rank_linear`` and
``linear`` nodes forward and backward, the engine, the DLRT products of ``dlrt.py``,
``orthonormalize`` / ``cholesky_qr`` / ``augment_basis`` / ``truncate``, and the LAPACK
routines themselves), LAPACK time by routine and the orthonormalisations and SVDs by
caller, and the top functions by own time. Matrix products (``@``) are not function calls
for the profiler: their time is the own time of the function that computes them.

The package calls LAPACK's ``geqrf``/``orgqr``/``potrf``/``trtri`` through
``scipy.linalg.get_lapack_funcs`` objects, which cProfile does not see; for the profile they
are replaced, in the package's lookup cache, by Python functions of the same name that call
them (about a microsecond each). The dtype audit wraps the package's linear-algebra entry
points, the LAPACK routines and the graph nodes and reports any array that is not of the
training dtype.
"""
from __future__ import annotations

import argparse
import ast
import cProfile
import io
import os
import pstats
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from lowrank_ref import lowrank  # noqa: E402
from lowrank_ref.threads import blas_threads  # noqa: E402

LAPACK_ROUTINES = (("geqrf", "orgqr"), ("potrf", "trtri"))

# (regex on "file:function", category); first match wins. Closures are named after the
# function that defines them ("ops.py:low_rank_linear.backward").
CATEGORIES = [
    (r"^profile_steps\.py:(geqrf|orgqr)$", "LAPACK Householder QR (geqrf + orgqr)"),
    (r"^profile_steps\.py:(potrf|trtri)$", "LAPACK Cholesky + triangular inverse (potrf + trtri)"),
    (r"^scipy/", "scipy.linalg.svd (gesdd and scipy's Python around it: checks, workspace query)"),
    (r"^ops\.py:low_rank_linear\.backward$", "low_rank_linear node backward (matmuls)"),
    (r"^ops\.py:low_rank_linear$", "low_rank_linear node forward (matmuls)"),
    (r"^ops\.py:linear\.backward$", "linear (Dense) node backward (matmuls)"),
    (r"^ops\.py:linear$", "linear (Dense) node forward (matmul)"),
    (r"^(ops|conv_ops)\.py:", "other graph ops (relu, cross-entropy, ...)"),
    (r"^autodiff\.py:", "engine (Tensor, make_node, sweep, gradient checks)"),
    (r"^lowrank\.py:orthonormalize$", "orthonormalize own"),
    (r"^lowrank\.py:small_svd$", "small_svd own (the gesdd call is counted under LAPACK)"),
    (r"^lowrank\.py:cholesky_qr$", "cholesky_qr own (Gram matrix, product)"),
    (r"^lowrank\.py:augment_basis$", "augment_basis own (projections, products, concatenation)"),
    (r"^lowrank\.py:", "lowrank.py other (reorthonormalize own, LAPACK lookup)"),
    (r"^truncation\.py:", "truncate own (U_hat P, V_hat Q, rank rule)"),
    (r"^dlrt\.py:_kl_gradients$", "DLRT G V0 = dZ^T XV, G^T U0 = X^T dZ_U (_kl_gradients)"),
    (r"^dlrt\.py:_step_one_pass$", "adaptive one-pass own (K1, L1, X V~, dZ^T X V~, dS, concatenation)"),
    (r"^dlrt\.py:step$", "optimiser step own (fixed: K1, L1, Galerkin start, S update)"),
    (r"^dlrt\.py:(_check_finite_step|_truncate)$", "DLRT finiteness checks"),
    (r"^dlrt\.py:update$", "SGD updates (dense weights, biases)"),
    (r"^dlrt\.py:", "DLRT other (gradient copies, momentum hooks, modes)"),
    (r"^(nn|lowrank_layers)\.py:", "layers (check_input, set_mode, set_factors copies)"),
    (r"^(threads\.py|threadpoolctl\.py):", "thread limit (threadpoolctl)"),
    (r"^_common\.py:", "benchmark harness"),
]

#: Functions whose calls are split by caller in the "by caller" table.
#: (scipy.linalg.svd is SciPy's batching wrapper "_util.py:wrapper" around "_decomp_svd.py:svd".)
BY_CALLER = {"lowrank.py:orthonormalize": "orthonormalize", "lowrank.py:cholesky_qr": "cholesky_qr",
             "lowrank.py:small_svd": "small_svd",
             "scipy/_util.py:wrapper": "scipy.linalg.svd", "lowrank.py:augment_basis": "augment_basis",
             "lowrank.py:reorthonormalize": "reorthonormalize", "truncation.py:truncate": "truncate"}


def _enclosing_functions() -> dict:
    """{file name: [(first line, last line, top-level function name)]} of the package's
    modules, to name closures (every node's backward is called "backward")."""
    import lowrank_ref
    out = {}
    folder = os.path.dirname(lowrank_ref.__file__)
    for fname in os.listdir(folder):
        if fname.endswith(".py"):
            with open(os.path.join(folder, fname)) as f:
                tree = ast.parse(f.read())
            out[fname] = [(n.lineno, n.end_lineno, n.name) for n in tree.body
                          if isinstance(n, ast.FunctionDef)]
    return out


_SPANS = _enclosing_functions()


def func_key(fname: str, line: int, func: str) -> str:
    """``"file:function"``, closures as ``"file:outer.inner"``; ``"scipy/file:function"``
    for SciPy's files (the package calls no SciPy function in a step but
    ``scipy.linalg.svd``, whose Python helpers are spread over several files)."""
    base = os.path.basename(fname)
    if f"{os.sep}scipy{os.sep}" in fname:
        return f"scipy/{base}:{func}"
    for lo, hi, name in _SPANS.get(base, ()):
        if lo < line <= hi and name != func:
            return f"{base}:{name}.{func}"
    return f"{base}:{func}"


OTHER = "other (NumPy C functions, builtins)"


def categorise(st: pstats.Stats):
    """Own time per category, and per function of the category :data:`OTHER`."""
    out, other = {}, {}
    for (fname, line, func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        key = func_key(fname, line, func)
        cat = next((label for pat, label in CATEGORIES if re.search(pat, key)), OTHER)
        out[cat] = out.get(cat, 0.0) + tt
        if cat == OTHER:
            other[key] = other.get(key, 0.0) + tt
    return out, other


def lapack_routines(st: pstats.Stats) -> dict:
    """{routine: (calls, seconds)} of the wrapped LAPACK routines and scipy's svd."""
    out = {}
    for (fname, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():
        key = func_key(fname, line, func)
        if key.startswith("profile_steps.py:") and any(func in names for names in LAPACK_ROUTINES):
            out[func] = (nc, tt)
        elif key == "scipy/_util.py:wrapper":          # the public scipy.linalg.svd
            out["gesdd (scipy.linalg.svd, incl. its Python)"] = (nc, ct)
    return out


def by_caller(st: pstats.Stats) -> dict:
    """{(function, caller): (calls, cumulative seconds)} for :data:`BY_CALLER`."""
    out = {}
    for (fname, line, func), (_cc, _nc, _tt, _ct, callers) in st.stats.items():
        key = func_key(fname, line, func)
        if key not in BY_CALLER:
            continue
        for (cf, cl, cfunc), vals in callers.items():
            out[(BY_CALLER[key], func_key(cf, cl, cfunc))] = (vals[1], vals[3])
    return out


def _named(name, f):
    """A Python function called ``name`` that calls ``f`` (visible to cProfile)."""
    def call(*a, **k):
        return f(*a, **k)
    call.__code__ = call.__code__.replace(co_name=name, co_qualname=name)
    return call


class visible_lapack:
    """Replace the package's cached LAPACK routines of ``dtype`` by named Python wrappers
    (``wrap(name, f)``, default :func:`_named`) inside a ``with`` block."""

    def __init__(self, dtype, wrap=_named):
        self.dtype, self.wrap, self.saved = np.dtype(dtype), wrap, {}

    def __enter__(self):
        probe = np.zeros((2, 2), dtype=self.dtype)
        for names in LAPACK_ROUTINES:
            funcs = lowrank._lapack(names, probe)
            key = (names, self.dtype.char)
            self.saved[key] = funcs
            lowrank._LAPACK[key] = tuple(self.wrap(n, f) for n, f in zip(names, funcs))
        return self

    def __exit__(self, *exc):
        lowrank._LAPACK.update(self.saved)


def profile_method(name, args, batches, sizes, dtype):
    kind, r = C.parse_method(name)
    step, model = C.make_runner(kind, sizes, dtype, rank=r)
    for X, y in batches[:2]:
        step(X, y)
    t0 = time.perf_counter()
    for X, y in batches:
        step(X, y)
    wall = (time.perf_counter() - t0) / len(batches)
    prof = cProfile.Profile()
    with visible_lapack(dtype):
        prof.enable()
        for X, y in batches:
            step(X, y)
        prof.disable()
    st = pstats.Stats(prof)
    n = len(batches)
    total = sum(v[2] for v in st.stats.values())
    print(f"\n## {name} (ranks {C.model_ranks(model)}): {1e3 * wall:.2f} ms/step unprofiled, "
          f"{1e3 * total / n:.2f} ms/step under cProfile")
    cats, other = categorise(st)
    print("\n| category (own time) | ms/step | % |\n|---|---|---|")
    for cat, tt in sorted(cats.items(), key=lambda kv: -kv[1]):
        if tt / total >= 0.005:
            print(f"| {cat} | {1e3 * tt / n:.2f} | {100 * tt / total:.1f} |")
    top = sorted(other.items(), key=lambda kv: -kv[1])[:6]
    print(f"\nlargest in \"{OTHER}\" (ms/step): "
          + ", ".join(f"{re.sub('^~:', '', k)} {1e3 * t / n:.2f}" for k, t in top))
    lap = lapack_routines(st)
    if lap:
        print("\n| LAPACK routine | calls/step | ms/step |\n|---|---|---|")
        for routine, (nc, t) in sorted(lap.items(), key=lambda kv: -kv[1][1]):
            print(f"| {routine} | {nc / n:.0f} | {1e3 * t / n:.2f} |")
        print("\n| function (incl. callees) | called from | calls/step | ms/step |\n|---|---|---|---|")
        for (fn, caller), (nc, ct) in sorted(by_caller(st).items(), key=lambda kv: -kv[1][1]):
            print(f"| {fn} | {caller} | {nc / n:.0f} | {1e3 * ct / n:.2f} |")
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.top)
    lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    print("\n```")
    for ln in lines[start:start + args.top + 1]:
        print(re.sub(r"(?:/[^/\s:]+)+/([^/\s:]+\.py)", r"\1", ln)[:160])   # no folders
    print("```")
    if args.pyinstrument:
        try:
            import pyinstrument
        except ImportError:
            print("# pyinstrument not installed")
            return
        os.makedirs(args.pyinstrument, exist_ok=True)
        prof2 = pyinstrument.Profiler(interval=0.0005)
        prof2.start()
        for X, y in batches:
            step(X, y)
        prof2.stop()
        path = os.path.join(args.pyinstrument, f"{name}.txt")
        with open(path, "w") as f:
            f.write(prof2.output_text(unicode=False, color=False, show_all=False)
                    .replace(C.ROOT + os.sep, ""))           # no machine paths
        print(f"# pyinstrument report: {C.repo_path(path)}")


def dtype_audit(name, sizes, batches, dtype):
    """Run 3 steps with wrappers that record every float array not of ``dtype`` that they see."""
    from lowrank_ref import dlrt, lowrank_layers, ops, truncation
    bad = []

    def check(where, arr):
        if isinstance(arr, (tuple, list)):
            for x in arr:
                check(where, x)
            return
        arr = getattr(arr, "value", arr)            # a Tensor's array
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.dtype != dtype:
            bad.append((where, str(arr.dtype), arr.shape))

    def checked(label, f):
        def wrapper(*a, **k):
            for i, x in enumerate(a):
                check(f"{label} arg {i}", x)
            out = f(*a, **k)
            for i, x in enumerate(out if isinstance(out, tuple) else (out,)):
                check(f"{label} out {i}", x)
            return out
        return wrapper
    targets = [(dlrt, "augment_basis"), (dlrt, "truncate"), (dlrt, "orthonormalize"),
               (dlrt, "_kl_gradients"), (lowrank, "orthonormalize"), (lowrank, "cholesky_qr"),
               (lowrank_layers, "reorthonormalize"), (lowrank, "small_svd"),
               (truncation, "small_svd"), (ops, "make_node")]
    saved = [(mod, attr, getattr(mod, attr)) for mod, attr in targets]
    kind, r = C.parse_method(name)
    step, model = C.make_runner(kind, sizes, dtype, rank=r)
    try:
        for mod, attr, f in saved:
            setattr(mod, attr, checked(attr, f))
        with visible_lapack(dtype, wrap=checked):
            for X, y in batches[:3]:
                step(X, y)
    finally:
        for mod, attr, f in saved:
            setattr(mod, attr, f)
    for layer in getattr(model, "layers", []):
        for attr in ("U", "S", "V"):
            check(f"layer.{attr}", getattr(layer, attr, None))
        for attr in ("W", "b"):
            check(f"layer.{attr}", getattr(getattr(layer, attr, None), "value", None))
    return sorted(set(bad))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_threads_option(p)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--methods", default="dense,fixed-20,adaptive1-25,adaptive1-60")
    p.add_argument("--top", type=int, default=18)
    p.add_argument("--wide", action="store_true", help="784-2048x4-10 instead of 784-500x4-10")
    p.add_argument("--pyinstrument", default=None,
                   help="write pyinstrument text reports to this folder (if installed)")
    args = p.parse_args(argv)
    dtype = np.dtype(args.dtype)
    C.print_machine(C.machine_info(args.threads))
    sizes = [784] + [2048] * 4 + [10] if args.wide else list(C.PAPER_SIZES)
    methods = [m for m in args.methods.split(",") if m]
    with blas_threads(args.threads):
        batches, source = C.mnist_batches(args.steps, 256, dtype.type)
        print(f"# sizes {sizes}, batch 256, {source}, {args.steps} steps, dtype {args.dtype}, "
              f"threads {C.threads_label(args.threads)} (in force: {C.blas_threads_in_force()})")
        for name in methods:
            profile_method(name, args, batches, sizes, dtype.type)
        print(f"\n## {args.dtype} audit (3 steps each; arrays seen by augment_basis, truncate, "
              "orthonormalize, cholesky_qr, reorthonormalize, _kl_gradients, small_svd, "
              "the LAPACK routines, every graph node, and the layers' parameters)")
        for name in methods:
            bad = dtype_audit(name, sizes, batches, dtype)
            print(f"- {name}: {'no non-' + args.dtype + ' float arrays' if not bad else bad[:10]}")
    print(f"# load average at end: {C.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
