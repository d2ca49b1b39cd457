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
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def plot(path, ranks_f, t_fixed, ranks_a, t_adapt, t_dense, t_base, fast, width, b, info):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4.4))
    ax, ax2 = fig.subplots(1, 2)
    ms = 1e3
    ax.axhline(ms * t_dense, color="k", lw=1.5, label="dense (package DenseSGD)")
    ax.axhline(ms * t_base, color="k", lw=1, ls=":", label="dense (hand-written NumPy)")
    ax.plot(ranks_f, ms * np.array(t_fixed), "o-", color="C0", label="fixed rank (FixedRankKLS)")
    ax.plot(ranks_a, ms * np.array(t_adapt), "s-", color="C1",
            label="adaptive, one gradient (AdaptiveKLS passes=1)")
    for key, color, marker in (("fixed", "C0", "o"), ("adaptive1", "C1", "s")):
        if fast.get(key):
            rr, tt = zip(*fast[key])
            ax.plot(rr, ms * np.array(tt), marker + "--", color=color, mfc="none",
                    label=f"{'fixed' if key == 'fixed' else 'adaptive'} + proposed optimisations")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("rank r of every low-rank layer")
    ax.set_ylabel("time per training step [ms]")
    ax.set_title(f"784-{width}x4-10, batch {b}: step time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")

    ax2.axhline(1.0, color="k", lw=1.5)
    ax2.axhspan(1.0, 100, color="0.9")
    ax2.text(ranks_f[0], 1.08, "low rank slower than dense", fontsize=8, va="bottom")
    ax2.plot(ranks_f, np.array(t_fixed) / t_dense, "o-", color="C0", label="fixed rank")
    ax2.plot(ranks_a, np.array(t_adapt) / t_dense, "s-", color="C1", label="adaptive (one gradient)")
    for key, color, marker in (("fixed", "C0", "o"), ("adaptive1", "C1", "s")):
        if fast.get(key):
            rr, tt = zip(*fast[key])
            ax2.plot(rr, np.array(tt) / t_dense, marker + "--", color=color, mfc="none",
                     label=f"{'fixed' if key == 'fixed' else 'adaptive'} + proposed")
    for key, rr, tt, color in (("fixed", ranks_f, t_fixed, "C0"),
                               ("adaptive", ranks_a, t_adapt, "C1")):
        x = crossover(rr, np.array(tt) / t_dense)
        if x is not None:
            ax2.axvline(x, color=color, ls=":", lw=1)
            ax2.annotate(f"{key}: break-even r ~ {x:.0f}", (x, 1.0), xytext=(4, -14 if key == "fixed" else -26),
                         textcoords="offset points", fontsize=8, color=color)
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_ylim(top=max(3.0, ax2.get_ylim()[1]))
    ax2.set_xlabel("rank r of every low-rank layer")
    ax2.set_ylabel("step time / package dense step")
    ax2.set_title("relative to the dense step")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7, loc="lower right")
    fig.text(0.01, 0.005, f"{info.get('Model name', '')}, {info['threads_requested']} thread(s), "
             f"numpy {info['numpy']}; medians of interleaved repeats", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)


def crossover(ranks, ratio):
    """First rank where ``ratio`` reaches 1, log-log interpolated (None if never)."""
    for i in range(1, len(ranks)):
        if ratio[i - 1] < 1.0 <= ratio[i]:
            x0, x1 = np.log(ranks[i - 1]), np.log(ranks[i])
            y0, y1 = np.log(ratio[i - 1]), np.log(ratio[i])
            return float(np.exp(x0 + (0 - y0) * (x1 - x0) / (y1 - y0)))
    return None


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
        x = crossover(rr, np.array(tt) / t_dense)
        print(f"# break-even with the package dense step: {label}: "
              f"{'r ~ %.0f' % x if x else 'not reached in the sweep'}")
    for key, label in (("fixed", "fixed + proposed"), ("adaptive1", "adaptive + proposed")):
        if fast[key]:
            rr, tt = zip(*fast[key])
            x = crossover(rr, np.array(tt) / t_dense)
            print(f"# break-even: {label}: {'r ~ %.0f' % x if x else 'not reached (swept to r=%d)' % rr[-1]}")
    print("\n# targets (medians, same run)")
    targets = []
    for name, lim in (("adaptive1-64", 0.3), ("fixed-64", 0.2), ("adaptive1-64+fast", 0.3),
                      ("fixed-64+fast", 0.2)):
        if name in res:
            v = res[name]["median"] / t_dense
            targets.append({"target": f"{name} / dense", "value": v, "limit": lim, "met": v <= lim})
            print(f"- {name} / package dense step: {v:.3f} (<= {lim}) -> {'MET' if v <= lim else 'MISSED'}")
    plot(args.out, rf, tf, ra, ta, t_dense, t_base, fast, args.width, b, info)
    print(f"# wrote {os.path.relpath(args.out, C.ROOT)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "machine": info, "dense_ms": 1e3 * t_dense,
                       "baseline_ms": 1e3 * t_base, "rows": rows, "targets": targets}, f,
                      indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
