"""How many BLAS threads a training step should use: 1, 2 or all, with and without load.

Not part of the test suite. Four measurements, each interleaved so that machine-load drift
hits every setting alike, with medians and ratios taken within this one run:

a. Step time on the paper's network (784-500x4-10, MNIST batches of 256), scaled to an
   epoch of 60000/256 steps, of dense, fixed rank 20 and rank-adaptive tau 0.1, at every
   thread setting of ``--threads`` (default 1, 2, all). The optimisers are the package's,
   built as ``python -m lowrank_ref train`` builds them (``TrainConfig`` defaults: lr 0.1,
   momentum 0.9, warm-up and cosine schedule of a 10-epoch run; adaptive from rank 150 with
   ``AdaptiveKLS(tau=0.1)``). Each method first takes ``--warmup-steps`` untimed steps (so
   that the adaptive ranks have fallen from 150), then one copy of that state per thread
   setting continues; every timed step runs inside ``lowrank_ref.threads.blas_threads(n)``
   and all (method, threads) pairs step the same batches, interleaved step by step.
b. The same while one competing process spins on the machine (``python -c "while True:
   pass"``, started before and killed after).
c. The README's main command as a user runs it, ``python -m lowrank_ref train --method
   adaptive --tau 0.1 --epochs E``, in a fresh process from the repository root with every
   ``*_NUM_THREADS`` variable removed (the package default), with
   ``OPENBLAS_NUM_THREADS=1``, and with ``--threads all`` (the libraries' default, what
   users got before the package chose); the epoch seconds are read from the run's
   ``history.csv`` (training and test evaluation of the epoch).
d. Where threads start to pay off: the dense step (``DenseSGD``) and the one-gradient
   adaptive step held at rank 64 on 784-W x4-10 for the widths ``--widths``, at the thread
   settings ``--wide-threads`` (default 1 and 2), interleaved; one model per method and width
   serves all thread settings (the step cost does not depend on which setting took the
   previous step). Its low-rank factors are random orthonormal (``_common.low_rank_model``
   with ``factors="random"``): the SVD of a dense 4000 x 4000 draw would take longer than
   the measurement.

The thread counts that actually ran are read with ``lowrank_ref.threads.blas_info()`` inside
each block and printed.

    python benchmarks/bench_threads.py --json benchmarks/results/bench_threads.json
    python benchmarks/bench_threads.py --quick          # smoke test, 1-2 minutes
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from lowrank_ref import methods as method_registry  # noqa: E402
from lowrank_ref.threads import blas_threads  # noqa: E402
from lowrank_ref.training import TrainConfig, build_model, lr_at  # noqa: E402

STEPS_PER_EPOCH = C.N_TRAIN / 256
#: Part a/b: the three methods as the training command configures them.
CONFIGS = {"dense": TrainConfig(method="dense"),
           "fixed-20": TrainConfig(method="fixed", rank=20),
           "adaptive tau 0.1": TrainConfig(method="adaptive", tau=0.1)}
#: Part c: (label, extra command-line arguments, extra environment variables).
COMMAND_VARIANTS = [("package default (no thread variables)", [], {}),
                    ("OPENBLAS_NUM_THREADS=1", [], {"OPENBLAS_NUM_THREADS": "1"}),
                    ("--threads all (libraries' default)", ["--threads", "all"], {})]


def _thread_list(text):
    return [C.threads_arg(t.strip()) for t in text.split(",") if t.strip()]


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=_thread_list, default=[1, 2, None], metavar="N,...",
                   help="thread settings of parts a and b, ints or 'all' (default: 1,2,all)")
    p.add_argument("--parts", default="a,b,c,d", help="which measurements to run")
    p.add_argument("--warmup-steps", type=int, default=30,
                   help="untimed steps of every method before part a")
    p.add_argument("--steps", type=int, default=20, help="part a: timed steps per repeat")
    p.add_argument("--repeats", type=int, default=5, help="part a: repeats (median)")
    p.add_argument("--busy-steps", type=int, default=10, help="part b: timed steps per repeat")
    p.add_argument("--busy-repeats", type=int, default=3, help="part b: repeats")
    p.add_argument("--command-epochs", type=int, default=1, help="part c: --epochs")
    p.add_argument("--command-repeats", type=int, default=2, help="part c: runs per variant")
    p.add_argument("--widths", type=_ints, default=[500, 1000, 2000, 4000], help="part d")
    p.add_argument("--wide-threads", type=_thread_list, default=[1, 2], metavar="N,...",
                   help="part d: thread settings (the first is the reference)")
    p.add_argument("--wide-rank", type=int, default=64, help="part d: adaptive rank")
    p.add_argument("--wide-steps", type=int, default=3, help="part d: timed steps per repeat")
    p.add_argument("--wide-repeats", type=int, default=3, help="part d: repeats")
    p.add_argument("--quick", action="store_true",
                   help="smoke test (overrides the step, repeat and width options): few steps, "
                        "widths 500,1000, part c on 2048 training samples")
    p.add_argument("--json", default=None, help="write every sample to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.warmup_steps, args.steps, args.repeats = 5, 3, 1
        args.busy_steps, args.busy_repeats = 2, 1
        args.command_repeats, args.command_epochs = 1, 1
        args.widths, args.wide_steps, args.wide_repeats = [500, 1000], 1, 1
    args.parts = set(args.parts.split(","))
    return args


def in_force(threads) -> list:
    """The thread counts of the loaded BLAS libraries inside ``blas_threads(threads)``."""
    with blas_threads(threads):
        return C.blas_threads_in_force()


def summary(samples) -> dict:
    return {"median": float(np.median(samples)), "min": float(np.min(samples)),
            "max": float(np.max(samples)), "samples": [float(s) for s in samples]}


# --- parts a and b: the paper's network -------------------------------------------------------

class Trainer:
    """One optimiser of ``config`` stepping with the training command's learning rates."""

    def __init__(self, config):
        self.config = config
        model = build_model(config)
        extra = {"tau": config.tau} if config.method == "adaptive" else {}
        self.opt = method_registry.make_optimizer(config.method, model, config.lr,
                                                  momentum=config.momentum, **extra)
        self.total = config.epochs * math.ceil(C.N_TRAIN / config.batch_size)
        self.steps = 0

    def step(self, X, y):
        self.opt.lr = lr_at(self.config, self.steps, self.total)
        self.steps += 1
        return self.opt.step(X, y).loss

    def ranks(self):
        return [r for r in C.model_ranks(self.opt.model) if r is not None] or "dense"


def time_pairs(pairs, batches, steps, repeats):
    """Seconds per step of every ``(method, threads)`` pair: ``repeats`` samples, each the
    mean over ``steps`` steps; every batch stepped by every pair in rotated order, each
    step inside ``blas_threads(threads)``. Consumes ``steps * repeats`` batches."""
    keys = list(pairs)
    samples, ran = {k: [] for k in keys}, {}
    for rep in range(repeats):
        acc = dict.fromkeys(keys, 0.0)
        for j in range(steps):
            X, y = batches.pop(0)
            s = (rep * steps + j) % len(keys)
            for key in keys[s:] + keys[:s]:
                with blas_threads(key[1]):
                    ran.setdefault(key, C.blas_threads_in_force())
                    t0 = time.perf_counter()
                    pairs[key].step(X, y)
                    acc[key] += time.perf_counter() - t0
        for key in keys:
            samples[key].append(acc[key] / steps)
    return {key: {**summary(v), "in_force": ran[key]} for key, v in samples.items()}


def print_pairs(title, res, pairs, threads, ref=None):
    print(f"\n### {title}\n")
    print("| method | threads | ranks at the end | ms/step median [min-max] | epoch s | x 1 thread "
          + ("| x 1 thread, no load " if ref else "") + "|")
    print("|---" * (6 + bool(ref)) + "|")
    for method in CONFIGS:
        one = res.get((method, 1))
        for t in threads:
            r = res[(method, t)]
            cells = [method, f"{C.threads_label(t)} (ran {r['in_force']})",
                     str(pairs[(method, t)].ranks()),
                     f"{1e3 * r['median']:.2f} [{1e3 * r['min']:.2f}-{1e3 * r['max']:.2f}]",
                     f"{r['median'] * STEPS_PER_EPOCH:.1f}",
                     f"{r['median'] / one['median']:.2f}" if one else "-"]
            if ref:
                cells.append(f"{r['median'] / ref[(method, 1)]['median']:.2f}"
                             if (method, 1) in ref else "-")
            print("| " + " | ".join(cells) + " |")


def parts_ab(args, out):
    n_batches = args.warmup_steps + args.steps * args.repeats \
        + ("b" in args.parts) * args.busy_steps * args.busy_repeats
    batches, source = C.mnist_batches(n_batches)
    print(f"\n## a/b. Paper network 784-500x4-10, {source}, batch 256, float32; "
          f"{args.warmup_steps} untimed warm-up steps, then one copy per thread setting")
    pairs = {}
    with blas_threads(1):       # untimed warm-up (the state matters here, not the speed)
        for method, config in CONFIGS.items():
            trainer = Trainer(config)
            for X, y in batches[:args.warmup_steps]:
                trainer.step(X, y)
            for t in args.threads:
                pairs[(method, t)] = copy.deepcopy(trainer)
    batches = batches[args.warmup_steps:]
    for method in CONFIGS:
        print(f"# {method}: ranks after warm-up {pairs[(method, args.threads[0])].ranks()}")

    res_a = time_pairs(pairs, batches, args.steps, args.repeats)
    print_pairs(f"a. {args.steps} steps x {args.repeats} repeats, interleaved, no other load "
                f"started by this script (load average now {C.loadavg()})",
                res_a, pairs, args.threads)
    out["a"] = [{"method": m, "threads": C.threads_label(t), "ranks": pairs[(m, t)].ranks(),
                 "epoch_s": r["median"] * STEPS_PER_EPOCH, **r} for (m, t), r in res_a.items()]
    if "b" not in args.parts:
        return
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)                         # let it reach full speed
        res_b = time_pairs(pairs, batches, args.busy_steps, args.busy_repeats)
    finally:
        busy.kill()
        busy.wait()
    print_pairs(f"b. the same with one busy process competing ({args.busy_steps} steps x "
                f"{args.busy_repeats} repeats; load average now {C.loadavg()})",
                res_b, pairs, args.threads, ref=res_a)
    out["b"] = [{"method": m, "threads": C.threads_label(t), "ranks": pairs[(m, t)].ranks(),
                 "epoch_s": r["median"] * STEPS_PER_EPOCH, **r} for (m, t), r in res_b.items()]


# --- part c: the README's main command --------------------------------------------------------

def command_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith("_NUM_THREADS") or k == "VECLIB_MAXIMUM_THREADS")}
    env.update(extra, PYTHONPATH=C.ROOT)
    return env


def run_command(argv_extra, env_extra, args):
    """One fresh ``python -m lowrank_ref train ...``; its epoch seconds and thread record."""
    folder = tempfile.mkdtemp(prefix="bench_threads_")
    argv = [sys.executable, "-m", "lowrank_ref", "train", "--method", "adaptive", "--tau",
            "0.1", "--epochs", str(args.command_epochs), "--out", os.path.join(folder, "run")]
    if args.quick:
        argv += ["--n-train", "2048", "--n-test", "1000"]
    argv += argv_extra
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=C.ROOT, env=command_env(env_extra),
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:])} failed: {proc.stderr.strip()[-500:]}")
        with open(os.path.join(folder, "run", "history.csv")) as f:
            rows = list(csv.DictReader(f))
        with open(os.path.join(folder, "run", "run.json")) as f:
            threads = json.load(f)["sessions"][-1].get("threads")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"epoch_s": [float(r["seconds"]) for r in rows if r["phase"] == "train"],
            "ranks": rows[-1]["ranks"], "wall_s": wall, "threads": threads}


def part_c(args, out):
    shown = "python -m lowrank_ref train --method adaptive --tau 0.1 --epochs " \
        f"{args.command_epochs}" + (" --n-train 2048 --n-test 1000" if args.quick else "")
    print(f"\n## c. The README command in a fresh process: `{shown}` (+ variant), from the "
          f"repository root with PYTHONPATH set to it; {args.command_repeats} run(s) per "
          "variant, interleaved")
    runs = {label: [] for label, _, _ in COMMAND_VARIANTS}
    k = len(COMMAND_VARIANTS)
    for rep in range(args.command_repeats):
        for label, argv_extra, env_extra in COMMAND_VARIANTS[rep % k:] + COMMAND_VARIANTS[:rep % k]:
            runs[label].append(run_command(argv_extra, env_extra, args))
    ref = float(np.median([e for r in runs["OPENBLAS_NUM_THREADS=1"] for e in r["epoch_s"]]))
    print("\n| variant | BLAS threads in the run (run.json) | epoch s median [all] | "
          "x OPENBLAS_NUM_THREADS=1 | process wall s | final ranks |\n|---|---|---|---|---|---|")
    out["c"] = []
    for label, rs in runs.items():
        epochs = [e for r in rs for e in r["epoch_s"]]
        med = float(np.median(epochs))
        blas = rs[0]["threads"]
        used = sorted({lib["num_threads"] for lib in blas["blas"]}) if blas else "?"
        print(f"| {label} | requested {blas['requested'] if blas else '?'}, ran {used} | "
              f"{med:.1f} [{', '.join(f'{e:.1f}' for e in epochs)}] | {med / ref:.2f} | "
              f"{np.median([r['wall_s'] for r in rs]):.1f} | {rs[-1]['ranks']} |")
        out["c"].append({"variant": label, "epoch_s_median": med, "vs_openblas_1": med / ref,
                         "runs": rs})
    default = out["c"][0]
    print(f"# issue-11 target: default epoch within 1.2x of OPENBLAS_NUM_THREADS=1: "
          f"{default['vs_openblas_1']:.2f} -> {'met' if default['vs_openblas_1'] <= 1.2 else 'MISSED'}")
    if args.command_epochs == 10 and not args.quick:
        wall = float(np.median([r["wall_s"] for r in default["runs"]]))
        print(f"# issue-11 target: the whole default command (10 epochs) under 90 s: "
              f"{wall:.0f} s -> {'met' if wall < 90 else 'MISSED'}")


# --- part d: where threads pay off -------------------------------------------------------------

def part_d(args, out):
    rank, threads = args.wide_rank, args.wide_threads
    n = len(threads)
    print(f"\n## d. Wider networks 784-Wx4-10, batch 256, float32: dense step and one-gradient "
          f"adaptive step held at rank {rank}; threads {', '.join(map(C.threads_label, threads))};"
          f" {args.wide_steps} steps x {args.wide_repeats} repeats per setting, interleaved")
    ran = {}
    batches, _ = C.mnist_batches(args.wide_steps * n + 1)
    ref = C.threads_label(threads[0])
    print("\n| W | method | " + " | ".join(f"ms/step {C.threads_label(t)} thr" for t in threads)
          + " | " + " | ".join(f"x {ref} thr at {C.threads_label(t)}" for t in threads[1:])
          + " |")
    print("|---" * (2 + n + n - 1) + "|")
    out["d"] = []
    for width in args.widths:
        sizes = [784] + [width] * 4 + [10]
        with blas_threads(1):
            runners = {"dense": C.make_runner("dense", sizes, np.float32)[0],
                       f"adaptive1-{rank}": C.make_runner("adaptive1", sizes, np.float32,
                                                          rank=rank, factors="random")[0]}
            for step in runners.values():       # untimed first step
                step(*batches[-1])
        samples = {(m, t): [] for m in runners for t in threads}
        keys = list(samples)
        for rep in range(args.wide_repeats):
            acc = dict.fromkeys(keys, 0.0)
            for j in range(args.wide_steps):
                s = (rep + j) % len(keys)
                for i, (m, t) in enumerate(keys[s:] + keys[:s]):
                    X, y = batches[(j * n + i) % len(batches)]
                    with blas_threads(t):
                        ran.setdefault(t, C.blas_threads_in_force())
                        t0 = time.perf_counter()
                        runners[m](X, y)
                        acc[(m, t)] += time.perf_counter() - t0
            for key in keys:
                samples[key].append(acc[key] / args.wide_steps)
        for m in runners:
            med = [float(np.median(samples[(m, t)])) for t in threads]
            print(f"| {width} | {m} | " + " | ".join(f"{1e3 * x:.1f}" for x in med) + " | "
                  + " | ".join(f"{x / med[0]:.2f}" for x in med[1:]) + " |")
            out["d"].append({"width": width, "method": m,
                             **{C.threads_label(t): summary(samples[(m, t)]) for t in threads}})
        runners = None
    print("# threads that ran: " + ", ".join(f"{C.threads_label(t)}: {v}" for t, v in ran.items()))
    out["d_in_force"] = {C.threads_label(t): v for t, v in ran.items()}


def main(argv=None):
    args = parse_args(argv)
    info = C.machine_info(1)
    C.print_machine(info)
    settings = sorted(set(args.threads) | set(args.wide_threads), key=lambda t: t or 1e9)
    force = {C.threads_label(t): in_force(t) for t in settings}
    print("# BLAS threads in force per setting (one entry per loaded library): "
          + ", ".join(f"{k}: {v}" for k, v in force.items()))
    record = dict(vars(args), threads=[C.threads_label(t) for t in args.threads],
                  wide_threads=[C.threads_label(t) for t in args.wide_threads],
                  parts=sorted(args.parts), json=args.json and C.repo_path(args.json))
    out = {"args": record, "machine": info, "threads_in_force": force}
    t0 = time.perf_counter()
    if args.parts & {"a", "b"}:
        parts_ab(args, out)
    if "c" in args.parts:
        part_c(args, out)
    if "d" in args.parts:
        part_d(args, out)
    out["loadavg_at_end"] = C.loadavg()
    print(f"\n# load average at start {info['loadavg_at_start']}, at end {out['loadavg_at_end']}; "
          f"took {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
