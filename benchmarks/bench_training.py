"""Epoch time of dense and DLRT training on the network of [SZKCT22] (784-500x4-10, MNIST).

Not part of the test suite. One run times, interleaved, ``--batches`` training steps of each
method on the same MNIST batches (batch 256), ``--repeats`` times, and reports the median
time per step scaled to one epoch (60000 / batch steps):

* ``baseline``  -- a minimal hand-written NumPy loop (forward, backward, SGD) of the dense
  net, the in-run reference;
* ``dense``     -- the package's ``MLP.dense`` + ``DenseSGD``;
* ``fixed-r``   -- ``FixedRankKLS`` at rank r (``--fixed-ranks``);
* ``adaptive1-r`` / ``adaptive3-r`` -- ``AdaptiveKLS(passes=1|3)`` held at rank r
  (``tau=0, min_rank=max_rank=r``: the truncation always returns to r; the augmented
  basis has r + p columns, p <= r being the directions above round-off -- printed);
* ``NAME+fast`` -- the same with the prototype optimisations of ``benchmarks/proto.py``
  patched in (``--variants``; the package files are not changed).

All methods use plain SGD (momentum 0), learning rate 0.1 dense (the package default) and
0.2 DLRT (see ``_common.DEFAULT_LR``; the adaptive step's cost depends on it through the
number of new directions the rank-revealing augmentation keeps). Every repeat starts from
the same fresh models, so all repeats do identical work. Batches are gathered before timing
(same arrays for every method). Also printed: achieved GFLOP/s of
the *essential* FLOPs of each step against an ``n^3`` matmul measured in the same run; and a
cost model: every matmul/QR/SVD/elementwise pass of a step (as the package executes it, and
as the algorithm needs it) timed at its own shape in the same run and summed. Peak memory
(``VmHWM``) of one epoch of full-MNIST training with ``lowrank_ref.training.train`` is
measured in subprocesses.

    python benchmarks/bench_training.py --threads 1 --dtype float32 --batches 30 --repeats 5
"""
from __future__ import annotations

import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _threads import limit_threads  # noqa: E402

THREADS = limit_threads()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import _common as C  # noqa: E402


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--batches", type=int, default=30, help="timed steps per method and repeat")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fixed-ranks", type=_ints, default=[5, 20, 80, 160])
    p.add_argument("--adaptive-ranks", type=_ints, default=[25, 60])
    p.add_argument("--adaptive3-ranks", type=_ints, default=[25, 60])
    p.add_argument("--variants", default="all",
                   help="levers of benchmarks/proto.py timed as NAME+fast: 'all', 'none' or "
                        "a comma list of matmul,reorth,augment,truncate,qr")
    p.add_argument("--variant-methods", default="dense,fixed-20,adaptive1-25,adaptive1-60",
                   help="methods also timed with --variants patched in")
    p.add_argument("--memory", default="dense,fixed-20,adaptive1-60",
                   help="methods whose one-epoch full-MNIST peak RSS is measured ('' = none)")
    p.add_argument("--json", default=None, help="also write all numbers to this file")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load_batches(args, dtype):
    from lowrank_ref import data
    try:
        ds = data.load("mnist", dtype=dtype)
        X, y, source = ds.X_train, ds.y_train, "MNIST (lowrank_ref.data.load)"
    except Exception as exc:  # pragma: no cover - data not installed
        print(f"# MNIST not found ({type(exc).__name__}); using random data of MNIST's shape")
        rng = np.random.default_rng(0)
        X = rng.random((C.N_TRAIN, 784), dtype=np.float32).astype(dtype)
        y = rng.integers(0, 10, C.N_TRAIN)
        source = "random"
    it = data.batches(X, y, args.batch_size, rng=np.random.default_rng(args.seed))
    out = [next(it) for _ in range(args.batches)]
    return [(np.ascontiguousarray(a), np.ascontiguousarray(b)) for a, b in out], source


def method_spec(name):
    """'fixed-20+fast' -> ('fixed', 20, True)."""
    fast = name.endswith("+fast")
    base = name[:-5] if fast else name
    if "-" in base:
        m, r = base.split("-")
        return m, int(r), fast
    return base, None, fast


MEMORY_SCRIPT = textwrap.dedent("""
    import os, sys, json, resource, tempfile, time
    sys.path.insert(0, {root!r})
    import numpy as np
    from lowrank_ref import data
    from lowrank_ref.training import TrainConfig, train
    def hwm():   # peak RSS of this process image in KiB (VmHWM; ru_maxrss survives exec)
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith("VmHWM")).split()[1])
    rss0 = hwm()
    ds = data.load("mnist", dtype=np.float32)
    rss1 = hwm()
    with open("/proc/self/status") as f:
        rss_now = int(next(l for l in f if l.startswith("VmRSS")).split()[1])
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
    rss2 = hwm()
    print(json.dumps({{"rss_import_kib": rss0, "rss_data_kib": rss1, "rss_peak_kib": max(rss1, rss2), "rss_after_load_kib": rss_now,
                      "train_peak_kib": rss2 if reset else None,
                      "train_seconds": secs, "test_acc": final["test_acc"],
                      "ranks": final.get("ranks")}}))
""")


def memory_run(method_name, threads):
    m, r, _ = method_spec(method_name)
    kw = {"dense": {"method": "dense"},
          "fixed": {"method": "fixed", "rank": r},
          "adaptive1": {"method": "adaptive", "rank": r, "tau": 0.0, "min_rank": r,
                        "max_rank": r, "passes": 1},
          "adaptive3": {"method": "adaptive", "rank": r, "tau": 0.0, "min_rank": r,
                        "max_rank": r, "passes": 3}}[m]
    code = MEMORY_SCRIPT.format(root=C.ROOT, kw=json.dumps(kw))
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    tp_info = C.enforce_threads(args.threads)
    dtype = np.dtype(args.dtype).type
    info = C.machine_info(args.threads)
    C.print_machine(info)
    import proto
    levers = proto.parse_variants(args.variants)

    batches, source = load_batches(args, dtype)
    sizes = C.PAPER_SIZES
    b = args.batch_size
    steps_per_epoch = C.N_TRAIN / b
    print(f"# data: {source}; sizes {list(sizes)}; batch {b}; dtype {args.dtype}; "
          f"threads {args.threads}; {args.batches} timed steps x {args.repeats} repeats "
          f"(interleaved); epoch = {steps_per_epoch:.2f} steps")

    names = ["baseline", "dense"] + [f"fixed-{r}" for r in args.fixed_ranks] \
        + [f"adaptive1-{r}" for r in args.adaptive_ranks] \
        + [f"adaptive3-{r}" for r in args.adaptive3_ranks]
    if levers:
        names += [f"{n}+fast" for n in args.variant_methods.split(",") if n]
    def build():
        runners, models = {}, {}
        for name in names:
            m, r, fast = method_spec(name)
            step, model = C.make_runner(m, sizes, None, dtype, rank=r)
            if fast:
                def step(X, y, _inner=step):
                    with proto.patched(levers):
                        return _inner(X, y)
            runners[name], models[name] = step, model
        return runners, models

    runners, models = build()
    for name, step in runners.items():          # warm-up (code paths, allocator)
        for X, y in batches[:2]:
            step(X, y)

    def factory():                              # every repeat: fresh models, same work
        fresh, fresh_models = build()
        models.update(fresh_models)
        return fresh

    # the augmentation widths of the adaptive steps (data dependent) for the cost model
    augs = {}
    for name in names:
        m, r, fast = method_spec(name)
        if m.startswith("adaptive") and not fast:
            augs[name] = C.probe_augmentation(m, r, sizes, batches, dtype)

    # cost model: every primitive of every step at its shape, sampled after each repeat
    op_lists = {}
    for name in names:
        m, r, fast = method_spec(name)
        if fast:
            continue
        op_lists[name] = {k: C.step_ops(m, sizes, b, r, kind=k, aug=augs.get(name))
                          for k in ("package", "essential")}
    sampler = C.PrimitiveSampler([ol for v in op_lists.values() for ol in v.values()], dtype)

    t_start = time.perf_counter()
    res = C.interleaved_timing(factory, batches, args.repeats, after_repeat=sampler.sample)
    t_timing = time.perf_counter() - t_start
    prim = sampler.medians()
    peak = sampler.gemm_gflops()
    hidden_rate = 2.0 * b * 500 * 500 / prim[("mm", b, 500, 500)] / 1e9

    t_base = res["baseline"]["median"]
    t_dense = res["dense"]["median"]
    rows = []
    for name in names:
        m, r, fast = method_spec(name)
        t = res[name]["median"]
        row = {"method": name, "ranks": C.model_ranks(models[name]),
               "new_cols": augs.get(name.replace("+fast", "")),
               "step_ms": 1e3 * t, "min_ms": 1e3 * res[name]["min"],
               "max_ms": 1e3 * res[name]["max"], "epoch_s": t * steps_per_epoch,
               "vs_baseline": t / t_base, "vs_dense": t / t_dense, "loss": res[name]["loss"]}
        ol = op_lists[name.replace("+fast", "")]
        fl = C.total_flops(ol["essential"])
        row.update({"gflop_essential": fl / 1e9, "gflops": fl / t / 1e9,
                    "pct_peak": 100 * fl / t / 1e9 / peak})
        if not fast:
            tp, te = C.model_time(ol["package"], prim), C.model_time(ol["essential"], prim)
            row.update({"model_pkg_ms": 1e3 * tp, "model_ess_ms": 1e3 * te,
                        "vs_model_pkg": t / tp, "vs_model_ess": t / te,
                        "model_pkg_breakdown_ms": {k: 1e3 * v for k, v in
                                                   C.breakdown(ol["package"], prim).items()},
                        "gflop_package": C.total_flops(ol["package"]) / 1e9})
        rows.append(row)

    print(f"\n# matmul throughput (same run): {peak:.1f} GFLOP/s (1024^3), "
          f"{hidden_rate:.1f} GFLOP/s ({b}x500x500, the hidden-layer product)")
    print(f"# timing phase (steps and primitives, interleaved) took {t_timing:.0f} s\n")
    hdr = ("| method | ranks | new cols U/V per layer | ms/step median [min-max] | epoch s "
           "| x baseline | x dense | GFLOP/step (ess.) | GFLOP/s | % of 1024^3 mm |")
    print(hdr)
    print("|---" * 10 + "|")
    for row in rows:
        rk = ",".join("d" if x is None else str(x) for x in row["ranks"]) or "dense"
        nc = " ".join(f"{u}/{v}" for u, v in row["new_cols"]) if row["new_cols"] else "-"
        print(f"| {row['method']} | {rk} | {nc} | {row['step_ms']:.2f} [{row['min_ms']:.2f}-"
              f"{row['max_ms']:.2f}] | {row['epoch_s']:.2f} | {row['vs_baseline']:.2f} | "
              f"{row['vs_dense']:.3f} | {row['gflop_essential']:.3f} | {row['gflops']:.1f} | "
              f"{row['pct_peak']:.0f} |")

    print("\n# cost model: sum of the step's primitives, each timed at its shape in this run")
    print("# (package = as executed, incl. dropped engine gradients, duplicate products and "
          "validation; essential = what the algorithm needs)\n")
    print("| method | achieved ms | model (package) ms | achieved / model | "
          "model (essential) ms | achieved / essential | package model: mm / qr / svd / ew ms |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if "model_pkg_ms" not in row:
            continue
        bd = row["model_pkg_breakdown_ms"]
        svd = bd.get("svd", 0) + bd.get("svdvals", 0) + bd.get("svdcore", 0)
        flag = "" if row["vs_model_pkg"] <= 1.4 else " (over 1.4x)"
        print(f"| {row['method']} | {row['step_ms']:.2f} | {row['model_pkg_ms']:.2f} | "
              f"{row['vs_model_pkg']:.2f}{flag} | {row['model_ess_ms']:.2f} | "
              f"{row['vs_model_ess']:.2f} | {bd.get('mm', 0):.2f} / {bd.get('qr', 0):.2f} / "
              f"{svd:.2f} / {bd.get('ew', 0):.2f} |")

    # targets
    def med(n):
        return res[n]["median"] if n in res else None
    print("\n# targets (medians, same run)")
    targets = []

    def target(label, value, limit):
        if value is None:
            return
        ok = value <= limit
        targets.append({"target": label, "value": value, "limit": limit, "met": ok})
        print(f"- {label}: {value:.3f} (<= {limit}) -> {'MET' if ok else 'MISSED'}")
    target("package dense / hand-written NumPy", t_dense / t_base, 1.15)
    if med("fixed-20"):
        target("fixed rank 20 / package dense", med("fixed-20") / t_dense, 0.3)
    if med("adaptive1-60"):
        target("adaptive one-gradient rank 60 / dense", med("adaptive1-60") / t_dense, 1.0)
    if med("adaptive1-25"):
        target("adaptive one-gradient rank 25 / dense", med("adaptive1-25") / t_dense, 0.35)
    for n in ("fixed-20+fast", "adaptive1-60+fast", "adaptive1-25+fast"):
        if med(n):
            lim = {"fixed-20+fast": 0.3, "adaptive1-60+fast": 1.0, "adaptive1-25+fast": 0.35}[n]
            target(f"(prototype) {n} / package dense", med(n) / t_dense, lim)
    if med("dense+fast"):
        target("(prototype) dense+fast / hand-written NumPy", med("dense+fast") / t_base, 1.15)

    mem = {}
    for name in [n for n in args.memory.split(",") if n]:
        mem[name] = memory_run(name, args.threads)
    if mem:
        print("\n# peak memory: one epoch of full-MNIST float32 training (lowrank_ref.training.train,"
              " TrainConfig defaults otherwise) in a subprocess, peak RSS = VmHWM")
        print("| method | peak after imports MiB | peak during data load MiB | RSS after load MiB "
              "| peak during 1 epoch (HWM reset after load) MiB | overall peak MiB | train s "
              "| test acc | under 1 GiB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, mres in mem.items():
            if "error" in mres:
                print(f"| {name} | error: {mres['error']} |")
                continue
            pk = mres["rss_peak_kib"] / 1024
            print(f"| {name} | {mres['rss_import_kib'] / 1024:.0f} | "
                  f"{mres['rss_data_kib'] / 1024:.0f} | {mres['rss_after_load_kib'] / 1024:.0f} | "
                  f"{(mres['train_peak_kib'] or 0) / 1024:.0f} | {pk:.0f} | "
                  f"{mres['train_seconds']:.1f} | {mres['test_acc']:.4f} | "
                  f"{'yes' if pk < 1024 else 'NO'} |")
            targets.append({"target": f"peak memory {name} MiB", "value": pk, "limit": 1024,
                            "met": pk < 1024})
    print(f"\n# this benchmark process (all models + MNIST loaded), ru_maxrss: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "machine": info, "threadpool": tp_info,
                       "gemm_gflops": peak, "hidden_mm_gflops": hidden_rate,
                       "rows": rows, "targets": targets, "memory": mem,
                       "primitives_s": {str(k): v for k, v in prim.items()}}, f, indent=1,
                      default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
