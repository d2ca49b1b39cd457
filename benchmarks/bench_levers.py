"""Ablation of the proposed optimisations (benchmarks/proto.py), one lever at a time.

Not part of the test suite. For each method, times the package as it is, with each lever
alone and with all levers, interleaved in one run (medians), and prints the gain of each.

    python benchmarks/bench_levers.py --threads 1 --batches 20 --repeats 5
    python benchmarks/bench_levers.py --wide --methods dense,fixed-64,adaptive1-64 --batches 2
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _threads import limit_threads  # noqa: E402

THREADS = limit_threads()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import _common as C  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--wide", action="store_true", help="784-2048x4-10 instead of 784-500x4-10")
    p.add_argument("--methods", default="dense,fixed-20,adaptive1-25,adaptive1-60")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    C.enforce_threads(args.threads)
    dtype = np.dtype(args.dtype).type
    info = C.machine_info(args.threads)
    C.print_machine(info)
    import proto
    from lowrank_ref import data
    sizes = [784] + [2048] * 4 + [10] if args.wide else list(C.PAPER_SIZES)
    ds = data.load("mnist", dtype=dtype)
    it = data.batches(ds.X_train, ds.y_train, 256, rng=np.random.default_rng(0))
    batches = [tuple(map(np.ascontiguousarray, next(it))) for _ in range(args.batches)]
    variants = [("package", ())] + [(lv, (lv,)) for lv in proto.LEVERS] + [("all", proto.ALL)] \
        + [("all+refresh16", proto.ALL + ("refresh16",)),
           ("all+fixed1pass", proto.ALL + ("fixed1pass",))]
    specs = []
    for name in args.methods.split(","):
        m, _, r = name.partition("-")
        r = int(r) if r else None
        for vname, levers in variants:
            if m == "dense" and vname not in ("package", "matmul", "linear", "leafcopy", "all"):
                continue
            if not m.startswith("adaptive") and vname == "all+refresh16":
                continue
            if m != "fixed" and vname == "all+fixed1pass":
                continue
            if m == "fixed" and vname in ("reorth", "refresh16", "augment", "truncate", "svd"):
                continue
            if m != "fixed" and vname == "fixed1pass":
                continue
            if m.startswith("adaptive") and vname == "qr":
                continue
            specs.append((name, m, r, vname, levers))

    def factory():                          # fresh models every repeat: identical work
        runners = {}
        for name, m, r, vname, levers in specs:
            step, _ = C.make_runner(m, sizes, None, dtype, rank=r)
            if levers:
                def step(X, y, _inner=step, _lv=levers):
                    with proto.patched(_lv):
                        return _inner(X, y)
            runners[f"{name}|{vname}"] = step
        return runners
    print(f"# sizes {sizes}; batch 256; {args.batches} steps x {args.repeats} repeats interleaved; "
          f"dtype {args.dtype}; threads {args.threads}")
    t0 = time.perf_counter()
    res = C.interleaved_timing(factory, batches, args.repeats)
    print(f"# took {time.perf_counter() - t0:.0f} s\n")
    print("| method | variant | ms/step (median) | gain vs package | ms saved |\n|---|---|---|---|---|")
    out = []
    for name in args.methods.split(","):
        base = res[f"{name}|package"]["median"]
        for vname, _ in variants:
            key = f"{name}|{vname}"
            if key not in res:
                continue
            t = res[key]["median"]
            out.append({"method": name, "variant": vname, "ms": 1e3 * t,
                        "gain_pct": 100 * (1 - t / base), "saved_ms": 1e3 * (base - t)})
            print(f"| {name} | {vname} | {1e3 * t:.2f} | {100 * (1 - t / base):+.1f}% | "
                  f"{1e3 * (base - t):+.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "machine": info, "rows": out}, f, indent=1)


if __name__ == "__main__":
    main()
