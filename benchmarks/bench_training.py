"""Epoch time of dense and DLRT training on the network of [SZKCT22] (784-500x4-10, MNIST).

Not part of the test suite. One run times, interleaved step by step, ``--batches`` training
steps of each method on the same MNIST batches (batch 256), ``--repeats`` times (every
repeat from the same fresh models), and reports the median time per step and per epoch
(60000 / 256 steps):

* ``baseline``  -- a minimal hand-written NumPy loop (forward, backward, SGD) of the dense
  net, the in-run reference;
* ``dense``     -- the package's ``MLP.dense`` + ``DenseSGD``;
* ``fixed-r``   -- ``FixedRankKLS`` at rank r (``--fixed-ranks``); ``fixed1-r``: the opt-in
  one-backward variant ``FixedRankKLS(passes=1)`` (``--fixed1-ranks``);
* ``adaptive1-r`` / ``adaptive3-r`` -- ``AdaptiveKLS(passes=1|3)`` held at rank r
  (``tau=0, min_rank=max_rank=r``: the truncation always returns to r; the augmented
  basis has r + p columns, p <= r being the directions above round-off -- printed);
* ``parallel-r`` -- ``ParallelBUG`` held at rank r in the same way (``--parallel-ranks``).

All methods use plain SGD (momentum 0), learning rate 0.1 dense and 0.2 DLRT
(``_common.DEFAULT_LR``). Also printed: the achieved GFLOP/s of each step's essential FLOPs
against an ``n^3`` matmul of the same run; the essential cost model (every operation the
algorithm needs, timed at its shape between the repeats of the same run, summed); the
issue-11 targets; and the peak memory (``VmHWM``) of one epoch of full-MNIST training through
``lowrank_ref.training.train`` in subprocesses.

    python benchmarks/bench_training.py --threads 1 --batches 30 --repeats 7 \\
        --json benchmarks/results/bench_training.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import textwrap
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_threads_option(p)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--batches", type=int, default=30, help="timed steps per method and repeat")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fixed-ranks", type=_ints, default=[5, 20, 80, 160])
    p.add_argument("--fixed1-ranks", type=_ints, default=[20])
    p.add_argument("--adaptive-ranks", type=_ints, default=[25, 60])
    p.add_argument("--adaptive3-ranks", type=_ints, default=[25, 60])
    p.add_argument("--parallel-ranks", type=_ints, default=[25, 60])
    p.add_argument("--memory", default="dense,fixed-20,adaptive1-60",
                   help="methods whose one-epoch full-MNIST peak RSS is measured ('' = none; "
                        "dense, fixed-r, adaptive1-r, adaptive3-r)")
    p.add_argument("--json", default=None, help="also write every sample to this file")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys, tempfile, time
    sys.path.insert(0, {root!r})
    import numpy as np
    from lowrank_ref import data
    from lowrank_ref.training import TrainConfig, train
    def status(key):   # KiB; VmHWM = peak RSS of this process image (ru_maxrss survives exec)
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith(key)).split()[1])
    rss0 = status("VmHWM")
    ds = data.load("mnist", dtype=np.float32)
    rss1, rss_now = status("VmHWM"), status("VmRSS")
    try:                        # reset VmHWM to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    kw = json.loads({kw!r})
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        final = train(TrainConfig(epochs=1, dtype="float32", out=out, **kw),
                      log=lambda line: None, data=ds, progress="off")
        secs = time.perf_counter() - t0
    rss2 = status("VmHWM")
    print(json.dumps({{"rss_import_kib": rss0, "rss_data_kib": rss1,
                      "rss_after_load_kib": rss_now, "rss_peak_kib": max(rss1, rss2),
                      "train_peak_kib": rss2 if reset else None, "train_seconds": secs,
                      "test_acc": final["test_acc"], "ranks": final.get("ranks")}}))
""")


def memory_run(name, threads):
    """Peak RSS of one epoch of ``train(TrainConfig(..., threads=threads))`` in a subprocess
    (the package applies the thread limit itself)."""
    kind, r = C.parse_method(name)
    held = {"rank": r, "tau": 0.0, "min_rank": r, "max_rank": r}
    kw = {"dense": {"method": "dense"},
          "fixed": {"method": "fixed", "rank": r},
          "adaptive1": {"method": "adaptive", "passes": 1, **held},
          "adaptive3": {"method": "adaptive", "passes": 3, **held},
          "parallel": {"method": "parallel", **held}}.get(kind)
    if kw is None:
        return {"error": f"{kind} is not a TrainConfig method"}
    kw["threads"] = threads
    code = MEMORY_SCRIPT.format(root=C.ROOT, kw=json.dumps(kw))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    C.run_benchmark(parse_args(argv), run)
    return 0


def run(args, info):
    dtype = np.dtype(args.dtype).type
    batches, source = C.mnist_batches(args.batches, args.batch_size, dtype, args.seed)
    sizes, b = C.PAPER_SIZES, args.batch_size
    steps_per_epoch = C.N_TRAIN / b
    print(f"# data: {source}; sizes {list(sizes)}; batch {b}; dtype {args.dtype}; threads "
          f"{C.threads_label(args.threads)} (in force: {C.blas_threads_in_force()}); "
          f"{args.batches} timed steps x {args.repeats} repeats (interleaved); "
          f"epoch = {steps_per_epoch:.2f} steps")

    names = ["baseline", "dense"] + [f"fixed-{r}" for r in args.fixed_ranks] \
        + [f"fixed1-{r}" for r in args.fixed1_ranks] \
        + [f"adaptive1-{r}" for r in args.adaptive_ranks] \
        + [f"adaptive3-{r}" for r in args.adaptive3_ranks] \
        + [f"parallel-{r}" for r in args.parallel_ranks]
    specs = {name: C.parse_method(name) for name in names}
    models = {}

    def factory():                              # every repeat: fresh models, same work
        runners = {}
        for name, (kind, r) in specs.items():
            runners[name], models[name] = C.make_runner(kind, sizes, dtype, rank=r)
        return runners

    warm = factory()                            # warm-up (code paths, allocator)
    for step in warm.values():
        for X, y in batches[:2]:
            step(X, y)
    warm = None

    # the augmentation widths of the adaptive steps (data dependent) for the cost model
    augs = {name: C.probe_augmentation(kind, r, sizes, batches, dtype)
            for name, (kind, r) in specs.items() if kind.startswith(("adaptive", "parallel"))}
    op_lists = {name: C.step_ops(kind, sizes, b, r, aug=augs.get(name))
                for name, (kind, r) in specs.items()}
    sampler = C.PrimitiveSampler(op_lists.values(), dtype)

    t_start = time.perf_counter()
    res = C.interleaved_timing(factory, batches, args.repeats, after_repeat=sampler.sample)
    t_timing = time.perf_counter() - t_start
    prim = sampler.medians()
    peak = sampler.gemm_gflops()
    hidden = ("mm", b, 500, 500)
    hidden_rate = C.op_flops(hidden) / prim[hidden] / 1e9 if hidden in prim else None

    t_base, t_dense = res["baseline"]["median"], res["dense"]["median"]
    rows = []
    for name in names:
        t = res[name]["median"]
        ops = op_lists[name]
        fl, te = C.total_flops(ops), C.model_time(ops, prim)
        rows.append({"method": name, "rank": specs[name][1],
                     "ranks": C.model_ranks(models[name]), "new_cols": augs.get(name),
                     "step_ms": 1e3 * t, "min_ms": 1e3 * res[name]["min"],
                     "max_ms": 1e3 * res[name]["max"],
                     "samples_ms": [1e3 * s for s in res[name]["samples"]],
                     "epoch_s": t * steps_per_epoch, "vs_baseline": t / t_base,
                     "vs_dense": t / t_dense, "loss": res[name]["loss"],
                     "gflop_essential": fl / 1e9, "gflops": fl / t / 1e9,
                     "pct_peak": 100 * fl / t / 1e9 / peak,
                     "model_ms": 1e3 * te, "vs_model": t / te,
                     "model_breakdown_ms": {k: 1e3 * v
                                            for k, v in C.breakdown(ops, prim).items()}})

    print(f"\n# matmul throughput (same run): {peak:.1f} GFLOP/s (1024^3)"
          + (f", {hidden_rate:.1f} GFLOP/s ({b}x500x500, the hidden-layer product)"
             if hidden_rate else ""))
    print(f"# timing phase (steps and primitives, interleaved) took {t_timing:.0f} s\n")
    print("| method | ranks | new cols U/V per layer | ms/step median [min-max] | epoch s "
          "| x baseline | x dense | GFLOP/step (essential) | GFLOP/s | % of 1024^3 mm |")
    print("|---" * 10 + "|")
    for row in rows:
        rk = ",".join("d" if x is None else str(x) for x in row["ranks"]) or "dense"
        nc = " ".join(f"{u}/{v}" for u, v in row["new_cols"]) if row["new_cols"] else "-"
        print(f"| {row['method']} | {rk} | {nc} | {row['step_ms']:.2f} [{row['min_ms']:.2f}-"
              f"{row['max_ms']:.2f}] | {row['epoch_s']:.2f} | {row['vs_baseline']:.2f} | "
              f"{row['vs_dense']:.3f} | {row['gflop_essential']:.3f} | {row['gflops']:.1f} | "
              f"{row['pct_peak']:.0f} |")

    print("\n# essential cost model: every operation the algorithm needs (matmuls, QR, "
          "CholeskyQR, SVD, main elementwise passes), each timed at its shape between the "
          "repeats of this run, summed\n")
    kinds = ("mm", "qr", "cholqr", "svd", "ew")
    print("| method | achieved ms | essential model ms | achieved / essential | "
          "model: mm / qr / cholqr / svd / ew ms |")
    print("|---|---|---|---|---|")
    for row in rows:
        bd = dict(row["model_breakdown_ms"])
        bd["svd"] = bd.get("svd", 0) + bd.get("svdvals", 0) + bd.get("svdcore", 0)
        print(f"| {row['method']} | {row['step_ms']:.2f} | {row['model_ms']:.2f} | "
              f"{row['vs_model']:.2f} | " + " / ".join(f"{bd.get(k, 0):.2f}" for k in kinds)
              + " |")

    targets = []

    def target(label, value, limit):
        ok = value <= limit
        targets.append({"target": label, "value": value, "limit": limit, "met": ok})

    def ratio(name, ref, label, limit):
        if name in res:
            target(label, res[name]["median"] / ref, limit)

    ratio("dense", t_base, "dense epoch / hand-written NumPy loop", 1.05)
    ratio("fixed-20", t_dense, "fixed rank 20 epoch / dense", 0.30)
    ratio("fixed1-20", t_dense, "fixed rank 20, opt-in passes=1, epoch / dense", 0.30)
    ratio("adaptive1-25", t_dense, "one-gradient adaptive r 25 epoch / dense", 0.50)
    ratio("adaptive1-60", t_dense, "one-gradient adaptive r 60 epoch / dense", 1.2)
    ratio("fixed-20", t_dense, "issue 19: fixed rank 20 epoch / dense", 0.32)
    for r in args.parallel_ranks:          # issue 19: parallel <= adaptive at the same ranks
        if f"adaptive1-{r}" in res:
            ratio(f"parallel-{r}", res[f"adaptive1-{r}"]["median"],
                  f"issue 19: parallel r {r} / one-gradient adaptive r {r}", 1.0)
    for row in rows:
        if row["rank"] is not None and row["rank"] >= 20:
            target(f"{row['method']}: achieved / essential model", row["vs_model"], 1.3)

    mem = {name: memory_run(name, args.threads) for name in args.memory.split(",") if name}
    if mem:
        print("\n# peak memory: one epoch of full-MNIST float32 training (lowrank_ref.training.train"
              f", TrainConfig defaults otherwise, threads {C.threads_label(args.threads)}) in a "
              "subprocess, peak RSS = VmHWM")
        print("| method | peak after imports MiB | peak during data load MiB | RSS after load MiB "
              "| peak during 1 epoch (HWM reset after load) MiB | overall peak MiB | train s "
              "| test acc |")
        print("|---|---|---|---|---|---|---|---|")
        for name, m in mem.items():
            if "error" in m:
                print(f"| {name} | error: {m['error']} |")
                continue
            pk = m["rss_peak_kib"] / 1024
            print(f"| {name} | {m['rss_import_kib'] / 1024:.0f} | {m['rss_data_kib'] / 1024:.0f} "
                  f"| {m['rss_after_load_kib'] / 1024:.0f} | "
                  f"{(m['train_peak_kib'] or 0) / 1024:.0f} | {pk:.0f} | "
                  f"{m['train_seconds']:.1f} | {m['test_acc']:.4f} |")
            target(f"peak memory {name} MiB", pk, 1024)

    print("\n# targets of issues 11 and 19 (medians of this run)\n")
    print("| target | value | limit | status |\n|---|---|---|---|")
    for t in targets:
        print(f"| {t['target']} | {t['value']:.3f} | {t['limit']} | "
              f"{'met' if t['met'] else 'MISSED by %.1f%%' % (100 * (t['value'] / t['limit'] - 1))} |")
    print(f"\n# this benchmark process (all models + MNIST loaded), ru_maxrss: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"load average at end: {C.loadavg()}")
    return {"args": C.json_args(args),
            "machine": info, "threads_in_force": C.blas_threads_in_force(),
            "gemm_gflops": peak, "gemm_gflops_samples": sampler.gemm_samples,
            "hidden_mm_gflops": hidden_rate, "rows": rows, "targets": targets, "memory": mem,
            "primitives_s": {str(k): v for k, v in prim.items()},
            "primitive_samples_s": {str(k): v for k, v in sampler.samples.items()},
            "loadavg_at_end": C.loadavg()}


if __name__ == "__main__":
    sys.exit(main())
