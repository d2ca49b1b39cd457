"""The training steps of this checkout against those of an earlier commit, in one run.

Not part of the test suite. Exports ``lowrank_ref/`` of ``--commit`` (``git archive``) into
a temporary folder as the package ``lowrank_ref_then``, builds the same models with both
(``low_rank_mlp`` / ``MLP.dense`` from seed 0; the paper's network 784-500x4-10, float32,
batch 256, plain SGD as ``bench_training.py``) and times them interleaved step by step on
the same MNIST batches (``_common.interleaved_timing``): the medians of the two versions
come from one run and their ratio is the answer to "is it slower than before?". Methods:
``dense``, ``fixed-r`` (``FixedRankKLS``, both versions), ``adaptive1-r`` (``AdaptiveKLS``
held at rank r), ``parallel-r`` (``ParallelBUG`` held at rank r: this checkout only,
compared with this checkout's ``adaptive1-r``).

    python benchmarks/bench_versus_commit.py --commit c3e66f5 --threads 1 --batches 30 \\
        --repeats 7 --json benchmarks/results/bench_versus_commit.json
"""
from __future__ import annotations

import argparse
import importlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

THEN = "lowrank_ref_then"


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_threads_option(p)
    p.add_argument("--commit", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--batches", type=int, default=30, help="timed steps per method and repeat")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--fixed-ranks", type=_ints, default=[20])
    p.add_argument("--adaptive-ranks", type=_ints, default=[25, 60])
    p.add_argument("--parallel-ranks", type=_ints, default=[25, 60])
    p.add_argument("--json", default=None, help="also write every sample to this file")
    return p.parse_args(argv)


def import_commit(commit: str, folder: str):
    """``lowrank_ref/`` of ``commit`` as the package ``lowrank_ref_then`` (relative imports
    only, so the copy is self-contained) and its full hash."""
    full = subprocess.run(["git", "-C", C.ROOT, "rev-parse", commit], capture_output=True,
                          text=True, check=True).stdout.strip()
    tar = subprocess.run(["git", "-C", C.ROOT, "archive", full, "lowrank_ref"],
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(folder, filter="data")
    os.rename(os.path.join(folder, "lowrank_ref"), os.path.join(folder, THEN))
    sys.path.insert(0, folder)
    return importlib.import_module(THEN), full


def runner(pkg, kind, rank, sizes, dtype):
    """``step(X, y) -> loss`` of ``kind`` built with the package ``pkg`` (then or now)."""
    dlrt = importlib.import_module(pkg.__name__ + ".dlrt")
    nn = importlib.import_module(pkg.__name__ + ".nn")
    rng = np.random.default_rng(0)
    lr = C.DEFAULT_LR["parallel" if kind == "parallel" else kind]
    if kind == "dense":
        opt = dlrt.DenseSGD(nn.MLP.dense(list(sizes), rng, dtype=dtype), lr=lr)
    else:
        model = dlrt.low_rank_mlp(list(sizes), rank, rng, dtype)
        if kind == "fixed":
            opt = dlrt.FixedRankKLS(model, lr=lr)
        elif kind == "adaptive1":
            opt = dlrt.AdaptiveKLS(model, lr=lr, tau=0.0, min_rank=rank, max_rank=rank)
        else:
            opt = dlrt.ParallelBUG(model, lr=lr, tau=0.0, min_rank=rank, max_rank=rank)
    return lambda X, y: opt.step(X, y).loss


def main(argv=None):
    C.run_benchmark(parse_args(argv), run)
    return 0


def run(args, info):
    import lowrank_ref
    dtype = np.float32
    batches, source = C.mnist_batches(args.batches, 256, dtype)
    with tempfile.TemporaryDirectory() as folder:
        then, full = import_commit(args.commit, folder)
        print(f"# data: {source}; sizes {list(C.PAPER_SIZES)}; batch 256; float32; threads "
              f"{C.threads_label(args.threads)} (in force: {C.blas_threads_in_force()}); "
              f"{args.batches} timed steps x {args.repeats} repeats (interleaved); then = "
              f"{full[:7]}, now = this checkout")
        specs = [("dense", None)] + [("fixed", r) for r in args.fixed_ranks] \
            + [("adaptive1", r) for r in args.adaptive_ranks]
        now_only = [("parallel", r) for r in args.parallel_ranks]

        def name(kind, r):
            return kind if r is None else f"{kind}-{r}"

        def factory():
            runners = {}
            for kind, r in specs:
                runners[f"{name(kind, r)} then"] = runner(then, kind, r, C.PAPER_SIZES, dtype)
                runners[f"{name(kind, r)} now"] = runner(lowrank_ref, kind, r, C.PAPER_SIZES,
                                                         dtype)
            for kind, r in now_only:
                runners[f"{name(kind, r)} now"] = runner(lowrank_ref, kind, r, C.PAPER_SIZES,
                                                         dtype)
            return runners

        res = C.interleaved_timing(factory, batches, args.repeats)
    dense = res["dense now"]["median"]
    print("\n| method | then ms/step | now ms/step | now / then | now / dense now |")
    print("|---|---|---|---|---|")
    rows = []
    for kind, r in specs + now_only:
        n = name(kind, r)
        t_then = res.get(f"{n} then", {}).get("median")
        t_now = res[f"{n} now"]["median"]
        rows.append({"method": n, "then_ms": None if t_then is None else 1e3 * t_then,
                     "now_ms": 1e3 * t_now, "now_over_then": None if t_then is None
                     else t_now / t_then, "now_over_dense": t_now / dense})
        print(f"| {n} | {'-' if t_then is None else f'{1e3 * t_then:.2f}'} | "
              f"{1e3 * t_now:.2f} | {'-' if t_then is None else f'{t_now / t_then:.3f}'} | "
              f"{t_now / dense:.3f} |")
    for kind, r in now_only:
        ref = res.get(f"adaptive1-{r} now")
        if ref is not None:
            ratio = res[f"{name(kind, r)} now"]["median"] / ref["median"]
            print(f"# {name(kind, r)} / adaptive1-{r} (now): {ratio:.3f}")
    print(f"# load average at end: {C.loadavg()}")
    return {"args": C.json_args(args), "machine": info, "then": full,
            "threads_in_force": C.blas_threads_in_force(), "rows": rows,
            "samples_ms": {k: [1e3 * s for s in v["samples"]] for k, v in res.items()},
            "loadavg_at_end": C.loadavg()}


if __name__ == "__main__":
    sys.exit(main())
