"""Training-step time against rank on a wide network: where low rank stops paying off.

Not part of the test suite. Network 784-2048x4-10 (four hidden layers of width 2048, ReLU,
last layer dense as in the paper), batch 256, MNIST batches (random data of the same shape
if MNIST is not installed). Times, interleaved step by step in one run (median over ``--repeats`` of
``--steps`` steps each; every repeat starts from the same fresh models; plain SGD, learning
rate 0.1 dense and 0.2 DLRT): the hand-written NumPy dense step, the package's dense step
(``DenseSGD``), fixed-rank DLRT (``FixedRankKLS``) and one-gradient adaptive DLRT
(``AdaptiveKLS(passes=1)``, held at rank r by ``tau=0, min_rank=max_rank=r``) at each rank,
optionally also with the prototype optimisations of ``benchmarks/proto.py`` (``+fast``).
Ranks are capped at ``min(n_in, n_out)`` per layer (784 for the first layer). Writes
``figures/timing_vs_rank.png`` and prints the table.

    python benchmarks/bench_rank_sweep.py --threads 1 --dtype float32
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
from lowrank_ref.plots import _break_even, plot_timing_vs_rank  # noqa: E402


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--depth", type=int, default=4, help="hidden layers")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--ranks", type=_ints, default=[8, 16, 32, 64, 128, 256, 512, 1024])
    p.add_argument("--adaptive-max-rank", type=int, default=512,
                   help="adaptive only up to this rank (its 2r x 2r truncation SVD and "
                        "2r-column bases make larger ranks take seconds per step)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per method and repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default="all",
                   help="levers of benchmarks/proto.py also timed as +fast ('none' to skip)")
    p.add_argument("--variant-max-rank", type=int, default=256)
    p.add_argument("--out", default=os.path.join(C.ROOT, "figures", "timing_vs_rank.png"))
    p.add_argument("--json", default=os.path.join(C.ROOT, "benchmarks", "results",
                                                  "bench_rank_sweep.json"),
                   help="numbers of the run (read by python -m lowrank_ref figures)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    C.enforce_threads(args.threads)
    dtype = np.dtype(args.dtype).type
    info = C.machine_info(args.threads)
    C.print_machine(info)
    import proto
    levers = proto.parse_variants(args.variants)
    sizes = [784] + [args.width] * args.depth + [10]
    b = args.batch_size
    from lowrank_ref import data
    try:
        ds = data.load("mnist", dtype=dtype)
        X, y, source = ds.X_train, ds.y_train, "MNIST"
    except Exception:
        rng = np.random.default_rng(0)
        X, y, source = rng.random((4096, 784)).astype(dtype), rng.integers(0, 10, 4096), "random"
    it = data.batches(X, y, b, rng=np.random.default_rng(0))
    batches = [tuple(map(np.ascontiguousarray, next(it))) for _ in range(args.steps)]
    print(f"# sizes {sizes}; batch {b}; {source}; dtype {args.dtype}; threads {args.threads}; "
          f"{args.steps} steps x {args.repeats} repeats, interleaved")

    names = ["baseline", "dense"]
    names += [f"fixed-{r}" for r in args.ranks]
    names += [f"adaptive1-{r}" for r in args.ranks if r <= args.adaptive_max_rank]
    if levers:
        names += [f"fixed-{r}+fast" for r in args.ranks if r <= args.variant_max_rank]
        names += [f"adaptive1-{r}+fast" for r in args.ranks
                  if r <= min(args.variant_max_rank, args.adaptive_max_rank)]
    def build():
        runners, models = {}, {}
        for name in names:
            fast = name.endswith("+fast")
            base = name[:-5] if fast else name
            m, _, r = base.partition("-")
            r = int(r) if r else None
            step, model = C.make_runner(m, sizes, None, dtype, rank=r)
            if fast:
                def step(Xb, yb, _inner=step):
                    with proto.patched(levers):
                        return _inner(Xb, yb)
            runners[name], models[name] = step, model
        return runners, models

    runners, models = build()
    for step in runners.values():               # warm-up
        step(*batches[0])
    runners = None

    def factory():                              # every repeat: fresh models, same work
        fresh, fresh_models = build()
        models.update(fresh_models)
        return fresh

    augs = {}
    for r in args.ranks:
        if r <= args.adaptive_max_rank:
            augs[r] = C.probe_augmentation("adaptive1", r, sizes, batches, dtype)
    t0 = time.perf_counter()
    res = C.interleaved_timing(factory, batches, args.repeats)
    print(f"# timing took {time.perf_counter() - t0:.0f} s")
    t_dense, t_base = res["dense"]["median"], res["baseline"]["median"]

    fl_dense = C.total_flops(C.step_ops("dense", sizes, b, kind="essential"))
    print("\n| method | ms/step | x package dense | x hand-written dense | essential GFLOP | "
          "GFLOP/s | ranks | new cols U/V per layer (adaptive) |\n|---|---|---|---|---|---|---|---|")
    print(f"| baseline | {1e3 * t_base:.1f} | {t_base / t_dense:.3f} | 1.000 | {fl_dense / 1e9:.2f} | "
          f"{fl_dense / t_base / 1e9:.1f} | dense | - |")
    print(f"| dense | {1e3 * t_dense:.1f} | 1.000 | {t_dense / t_base:.3f} | {fl_dense / 1e9:.2f} | "
          f"{fl_dense / t_dense / 1e9:.1f} | dense | - |")
    rows = []
    for name in names[2:]:
        fast = name.endswith("+fast")
        base = name[:-5] if fast else name
        m, _, r = base.partition("-")
        t = res[name]["median"]
        fl = C.total_flops(C.step_ops(m, sizes, b, int(r), kind="essential",
                                      aug=augs.get(int(r)) if m == "adaptive1" else None))
        ranks = C.model_ranks(models[name])
        nc = augs.get(int(r)) if m == "adaptive1" else None
        rows.append({"method": name, "rank": int(r), "new_cols": nc, "ms": 1e3 * t, "vs_dense": t / t_dense,
                     "vs_baseline": t / t_base, "gflop": fl / 1e9, "ranks": ranks,
                     "samples_ms": [1e3 * s for s in res[name]["samples"]]})
        rk = ",".join("d" if x is None else str(x) for x in ranks)
        ncs = " ".join(f"{u}/{v}" for u, v in nc) if nc else "-"
        print(f"| {name} | {1e3 * t:.1f} | {t / t_dense:.3f} | {t / t_base:.3f} | "
              f"{fl / 1e9:.2f} | {fl / t / 1e9:.1f} | {rk} | {ncs} |")

    fixed = [(r["rank"], r["ms"] / 1e3) for r in rows
             if r["method"].startswith("fixed-") and not r["method"].endswith("+fast")]
    adapt = [(r["rank"], r["ms"] / 1e3) for r in rows
             if r["method"].startswith("adaptive1-") and not r["method"].endswith("+fast")]
    fast = {"fixed": [(r["rank"], r["ms"] / 1e3) for r in rows
                      if r["method"].startswith("fixed-") and r["method"].endswith("+fast")],
            "adaptive1": [(r["rank"], r["ms"] / 1e3) for r in rows
                          if r["method"].startswith("adaptive1-") and r["method"].endswith("+fast")]}
    rf, tf = zip(*fixed)
    ra, ta = zip(*adapt)
    for label, rr, tt in (("fixed", rf, tf), ("adaptive (one gradient)", ra, ta)):
        x = _break_even(rr, np.array(tt) / t_dense)
        print(f"# break-even with the package dense step: {label}: "
              f"{'r ~ %.0f' % x if x else 'not reached in the sweep'}")
    for key, label in (("fixed", "fixed + proposed"), ("adaptive1", "adaptive + proposed")):
        if fast[key]:
            rr, tt = zip(*fast[key])
            x = _break_even(rr, np.array(tt) / t_dense)
            print(f"# break-even: {label}: {'r ~ %.0f' % x if x else 'not reached (swept to r=%d)' % rr[-1]}")
    print("\n# targets (medians, same run)")
    targets = []
    for name, lim in (("adaptive1-64", 0.3), ("fixed-64", 0.2), ("adaptive1-64+fast", 0.3),
                      ("fixed-64+fast", 0.2)):
        if name in res:
            v = res[name]["median"] / t_dense
            targets.append({"target": f"{name} / dense", "value": v, "limit": lim, "met": v <= lim})
            print(f"- {name} / package dense step: {v:.3f} (<= {lim}) -> {'MET' if v <= lim else 'MISSED'}")
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "machine": info, "dense_ms": 1e3 * t_dense,
                   "baseline_ms": 1e3 * t_base, "rows": rows, "targets": targets}, f,
                  indent=1, default=float)
    # the figure is drawn by the package, so `python -m lowrank_ref figures` redraws it
    plot_timing_vs_rank(args.json, args.out)
    print(f"# wrote {os.path.relpath(args.out, C.ROOT)} from {os.path.relpath(args.json, C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
