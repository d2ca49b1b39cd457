"""Training-step time against rank on a wide network: where low rank stops paying off.

Not part of the test suite. Network 784-2048x4-10 (four hidden layers of width 2048, ReLU,
last layer dense as in the paper), batch 256, MNIST batches. Times, interleaved step by step
in one run (median over ``--repeats`` of ``--steps`` steps each; every repeat starts from
the same fresh models; plain SGD, learning rate 0.1 dense and 0.2 DLRT): the hand-written
NumPy dense step, the package's dense step (``DenseSGD``), fixed-rank DLRT
(``FixedRankKLS``) and one-gradient adaptive DLRT (``AdaptiveKLS(passes=1)``, held at rank r
by ``tau=0, min_rank=max_rank=r``) at each rank. Ranks are capped at ``min(n_in, n_out)``
per layer (784 for the first layer). Writes the JSON that ``python -m lowrank_ref figures``
reads and draws ``figures/timing_vs_rank.png`` from it (``lowrank_ref.figures``).

    python benchmarks/bench_rank_sweep.py --threads 1 \\
        --json benchmarks/results/bench_rank_sweep.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from lowrank_ref.figures.timing_plots import break_even, plot_timing_vs_rank  # noqa: E402


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_threads_option(p)
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
    p.add_argument("--out", default=os.path.join(C.ROOT, "figures", "timing_vs_rank.png"))
    p.add_argument("--json", default=os.path.join(C.ROOT, "benchmarks", "results",
                                                  "bench_rank_sweep.json"),
                   help="numbers of the run (read by python -m lowrank_ref figures)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    C.run_benchmark(args, run)              # writes args.json (it has a default here)
    # the figure is drawn by the package, so `python -m lowrank_ref figures` redraws it
    plot_timing_vs_rank(args.json, args.out)
    print(f"# wrote {C.repo_path(args.out)} from {C.repo_path(args.json)}")
    return 0


def run(args, info):
    dtype = np.dtype(args.dtype).type
    sizes = [784] + [args.width] * args.depth + [10]
    b = args.batch_size
    batches, source = C.mnist_batches(args.steps, b, dtype)
    print(f"# sizes {sizes}; batch {b}; {source}; dtype {args.dtype}; threads "
          f"{C.threads_label(args.threads)} (in force: {C.blas_threads_in_force()}); "
          f"{args.steps} steps x {args.repeats} repeats, interleaved")

    names = ["baseline", "dense"] + [f"fixed-{r}" for r in args.ranks] \
        + [f"adaptive1-{r}" for r in args.ranks if r <= args.adaptive_max_rank]
    specs = {name: C.parse_method(name) for name in names}
    models = {}

    def factory():                              # every repeat: fresh models, same work
        runners = {}
        for name, (kind, r) in specs.items():
            runners[name], models[name] = C.make_runner(kind, sizes, dtype, rank=r)
        return runners

    warm = factory()                            # warm-up
    for step in warm.values():
        step(*batches[0])
    warm = None

    augs = {r: C.probe_augmentation("adaptive1", r, sizes, batches, dtype)
            for kind, r in specs.values() if kind == "adaptive1"}
    t0 = time.perf_counter()
    res = C.interleaved_timing(factory, batches, args.repeats)
    print(f"# timing took {time.perf_counter() - t0:.0f} s")
    t_dense, t_base = res["dense"]["median"], res["baseline"]["median"]

    fl_dense = C.total_flops(C.step_ops("dense", sizes, b))
    print("\n| method | ms/step | x package dense | x hand-written dense | essential GFLOP | "
          "GFLOP/s | ranks | new cols U/V per layer (adaptive) |\n|---|---|---|---|---|---|---|---|")
    for name, t in (("baseline", t_base), ("dense", t_dense)):
        print(f"| {name} | {1e3 * t:.1f} | {t / t_dense:.3f} | {t / t_base:.3f} | "
              f"{fl_dense / 1e9:.2f} | {fl_dense / t / 1e9:.1f} | dense | - |")
    rows = []
    for name in names[2:]:
        kind, r = specs[name]
        t = res[name]["median"]
        nc = augs.get(r) if kind == "adaptive1" else None
        fl = C.total_flops(C.step_ops(kind, sizes, b, r, aug=nc))
        ranks = C.model_ranks(models[name])
        rows.append({"method": name, "rank": r, "new_cols": nc, "ms": 1e3 * t,
                     "vs_dense": t / t_dense, "vs_baseline": t / t_base, "gflop": fl / 1e9,
                     "ranks": ranks, "samples_ms": [1e3 * s for s in res[name]["samples"]]})
        rk = ",".join("d" if x is None else str(x) for x in ranks)
        ncs = " ".join(f"{u}/{v}" for u, v in nc) if nc else "-"
        print(f"| {name} | {1e3 * t:.1f} | {t / t_dense:.3f} | {t / t_base:.3f} | "
              f"{fl / 1e9:.2f} | {fl / t / 1e9:.1f} | {rk} | {ncs} |")

    for kind, label in (("fixed", "fixed"), ("adaptive1", "adaptive (one gradient)")):
        pts = [(row["rank"], row["vs_dense"]) for row in rows if specs[row["method"]][0] == kind]
        if pts:
            rr, ratio = zip(*pts)
            x = break_even(rr, np.array(ratio))
            print(f"# break-even with the package dense step: {label}: "
                  f"{'r ~ %.0f' % x if x else 'not reached in the sweep'}")
    print(f"# load average at end: {C.loadavg()}")
    return {"args": C.json_args(args), "machine": info,
            "threads_in_force": C.blas_threads_in_force(),
            "dense_ms": 1e3 * t_dense, "baseline_ms": 1e3 * t_base,
            "dense_samples_ms": [1e3 * s for s in res["dense"]["samples"]],
            "baseline_samples_ms": [1e3 * s for s in res["baseline"]["samples"]],
            "rows": rows, "loadavg_at_end": C.loadavg()}


if __name__ == "__main__":
    sys.exit(main())
