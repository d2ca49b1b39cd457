"""Step and epoch time of LeNet5: the package's convolutions against a hand-written NumPy loop.

Not part of the test suite. One run times, interleaved step by step on the same MNIST batches
(batch 128, float32, plain SGD lr 0.05), ``--batches`` training steps of

* ``hand``      -- a minimal hand-written NumPy im2col LeNet5 loop (forward, backward, SGD),
  the in-run reference (:class:`HandLeNet5`);
* ``dense``     -- the package's ``networks.lenet5`` + ``dlrt.DenseSGD`` (graph, ops, layers);
* ``adaptive``  -- ``networks.lenet5(ranks=500)`` + ``dlrt.AdaptiveKLS(tau=--tau)`` (one
  backward per step), after ``--warmup-steps`` untimed steps from the full-rank start, so
  that the ranks have fallen to where a training run spends its epochs (printed); every
  repeat starts from a copy of that warmed state;
* ``parallel``  -- ``dlrt.ParallelBUG(tau=--tau)`` from a copy of the same warmed state
  (issue 19: the parallel step at most the adaptive step's time at the same ranks).

``--repeats`` times; the quoted numbers are medians over the repeats of the mean step time,
an epoch is step time x 60000/128, and the two targets of issue 13 are checked on ratios of
the same run: package dense step <= 1.2x the hand-written loop, adaptive epoch at tau 0.2
<= 0.7x the dense epoch.

    python benchmarks/bench_lenet5.py --threads 1 --batches 20 --repeats 5 \\
        --json benchmarks/results/bench_lenet5.json > benchmarks/results/bench_lenet5.txt
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from lowrank_ref.dlrt import AdaptiveKLS, DenseSGD, ParallelBUG, parameter_counts  # noqa: E402
from lowrank_ref.networks import lenet5  # noqa: E402

BATCH = 128
LR = 0.05
STEPS_PER_EPOCH = C.N_TRAIN / BATCH


class HandLeNet5:
    """LeNet5 written out by hand in NumPy: im2col convolutions, 2x2 max-pooling by reshape,
    softmax cross-entropy, plain SGD. The same initialisation as ``networks.lenet5(init="he")``
    (each kernel drawn as its ``(c_out, c_in kh kw)`` matrix in float64, then cast). At a tie
    in a pooling window every maximum receives the gradient (the package sends it to the
    first one); with real-valued images ties after ReLU are all zeros, whose gradient the
    ReLU drops anyway."""

    def __init__(self, rng, dtype=np.float32):
        def he(n_out, n_in):
            a = np.sqrt(6.0 / n_in)
            return rng.uniform(-a, a, (n_out, n_in)).astype(dtype)
        self.W1, self.b1 = he(20, 25), np.zeros(20, dtype)
        self.W2, self.b2 = he(50, 500), np.zeros(50, dtype)
        self.W3, self.b3 = he(500, 800), np.zeros(500, dtype)
        self.W4, self.b4 = he(10, 500), np.zeros(10, dtype)

    @staticmethod
    def im2col(x, k):
        """``(c k k, n h_out w_out)``: one column per output pixel."""
        n, c, h, w = x.shape
        ho, wo = h - k + 1, w - k + 1
        cols = np.empty((c, k, k, n, ho, wo), x.dtype)
        xt = x.transpose(1, 0, 2, 3)
        for a in range(k):
            for b in range(k):
                cols[:, a, b] = xt[:, :, a:a + ho, b:b + wo]
        return cols.reshape(c * k * k, n * ho * wo)

    @staticmethod
    def col2im(cols, shape, k):
        n, c, h, w = shape
        ho, wo = h - k + 1, w - k + 1
        cols = cols.reshape(c, k, k, n, ho, wo)
        x = np.zeros((c, n, h, w), cols.dtype)
        for a in range(k):
            for b in range(k):
                x[:, :, a:a + ho, b:b + wo] += cols[:, a, b]
        return x.transpose(1, 0, 2, 3)

    @staticmethod
    def pool(x):
        n, c, h, w = x.shape
        xr = x.reshape(n, c, h // 2, 2, w // 2, 2)
        out = xr.max(axis=(3, 5))
        return out, xr == out[:, :, :, None, :, None]

    @staticmethod
    def unpool(g, mask):
        n, c, h2, _, w2, _ = mask.shape
        return (mask * g[:, :, :, None, :, None]).reshape(n, c, 2 * h2, 2 * w2)

    def step(self, X, y, lr=LR):
        n = X.shape[0]
        C1 = self.im2col(X, 5)                                     # (25, n 576)
        Z1 = (self.W1 @ C1 + self.b1[:, None]).reshape(20, n, 24, 24).transpose(1, 0, 2, 3)
        P1, m1 = self.pool(np.maximum(Z1, 0))                      # (n, 20, 12, 12)
        C2 = self.im2col(P1, 5)                                    # (500, n 64)
        Z2 = (self.W2 @ C2 + self.b2[:, None]).reshape(50, n, 8, 8).transpose(1, 0, 2, 3)
        P2, m2 = self.pool(np.maximum(Z2, 0))                      # (n, 50, 4, 4)
        F = P2.reshape(n, 800)
        Z3 = F @ self.W3.T + self.b3
        A3 = np.maximum(Z3, 0)
        Z4 = A3 @ self.W4.T + self.b4
        Z4 -= Z4.max(1, keepdims=True)
        p = np.exp(Z4)
        p /= p.sum(1, keepdims=True)
        loss = float(-np.log(p[np.arange(n), y]).mean())
        d4 = p
        d4[np.arange(n), y] -= 1
        d4 /= n
        gW4, gb4 = d4.T @ A3, d4.sum(0)
        d3 = (d4 @ self.W4) * (Z3 > 0)
        gW3, gb3 = d3.T @ F, d3.sum(0)
        dZ2 = self.unpool((d3 @ self.W3).reshape(n, 50, 4, 4), m2) * (Z2 > 0)
        G2 = dZ2.transpose(1, 0, 2, 3).reshape(50, -1)             # (50, n 64)
        gW2, gb2 = G2 @ C2.T, G2.sum(1)
        dZ1 = self.unpool(self.col2im(self.W2.T @ G2, P1.shape, 5), m1) * (Z1 > 0)
        G1 = dZ1.transpose(1, 0, 2, 3).reshape(20, -1)
        gW1, gb1 = G1 @ C1.T, G1.sum(1)
        for P, G in ((self.W1, gW1), (self.b1, gb1), (self.W2, gW2), (self.b2, gb2),
                     (self.W3, gW3), (self.b3, gb3), (self.W4, gW4), (self.b4, gb4)):
            P -= lr * G
        return loss


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_threads_option(p)
    p.add_argument("--batches", type=int, default=20, help="timed steps per method and repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tau", type=float, default=0.2)
    p.add_argument("--warmup-steps", type=int, default=40,
                   help="untimed adaptive steps from the full-rank start before timing")
    p.add_argument("--json", default=None, help="also write every sample to this file")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def run(args, info):
    batches, source = C.mnist_batches(args.batches + args.warmup_steps, BATCH, np.float32,
                                      args.seed)
    batches = [(X.reshape(-1, 1, 28, 28), y) for X, y in batches]
    warm, timed = batches[:args.warmup_steps], batches[args.warmup_steps:]
    print(f"# data: {source}; LeNet5; batch {BATCH}; float32; plain SGD lr {LR}; threads "
          f"{C.threads_label(args.threads)} (in force: {C.blas_threads_in_force()}); "
          f"{args.batches} timed steps x {args.repeats} repeats (interleaved)")
    warmed = lenet5(np.random.default_rng(args.seed), np.float32, ranks=500)
    opt = AdaptiveKLS(warmed, LR, args.tau)
    for X, y in warm:
        opt.step(X, y)
    ranks = parameter_counts(warmed)["ranks"][:3]
    print(f"# adaptive tau {args.tau}: ranks {ranks} after {args.warmup_steps} warm-up steps "
          f"from the full-rank start (20, 50, 500)")

    def factory():
        hand = HandLeNet5(np.random.default_rng(args.seed))
        dense = DenseSGD(lenet5(np.random.default_rng(args.seed), np.float32), LR)
        adaptive = AdaptiveKLS(copy.deepcopy(warmed), LR, args.tau)
        parallel = ParallelBUG(copy.deepcopy(warmed), LR, args.tau)
        return {"hand": hand.step, "dense": lambda X, y: dense.step(X, y).loss,
                "adaptive": lambda X, y: adaptive.step(X, y).loss,
                "parallel": lambda X, y: parallel.step(X, y).loss}
    res = C.interleaved_timing(factory, timed, args.repeats)
    print(f"\n{'method':10s} {'ms/step':>9s} {'min':>8s} {'max':>8s} {'s/epoch':>8s}")
    for name, r in res.items():
        print(f"{name:10s} {1e3 * r['median']:9.1f} {1e3 * r['min']:8.1f} {1e3 * r['max']:8.1f} "
              f"{r['median'] * STEPS_PER_EPOCH:8.1f}")
    dense_vs_hand = res["dense"]["median"] / res["hand"]["median"]
    adaptive_vs_dense = res["adaptive"]["median"] / res["dense"]["median"]
    print(f"\npackage dense step / hand-written loop: {dense_vs_hand:.2f}x (target <= 1.2x: "
          f"{'met' if dense_vs_hand <= 1.2 else 'NOT met'})")
    print(f"adaptive (tau {args.tau}) epoch / dense epoch: {adaptive_vs_dense:.2f}x "
          f"(target <= 0.7x: {'met' if adaptive_vs_dense <= 0.7 else 'NOT met'})")
    parallel_vs_adaptive = res["parallel"]["median"] / res["adaptive"]["median"]
    print(f"parallel (tau {args.tau}) step / adaptive step, from the same warm state: "
          f"{parallel_vs_adaptive:.2f}x (issue 19 target <= 1: "
          f"{'met' if parallel_vs_adaptive <= 1 else 'NOT met'})")
    print(f"# load average at the end: {C.loadavg()}")
    return {"args": C.json_args(args), "machine": info, "adaptive_ranks": ranks,
            "steps_per_epoch": STEPS_PER_EPOCH, "timing": res,
            "dense_vs_hand": dense_vs_hand, "adaptive_vs_dense": adaptive_vs_dense,
            "parallel_vs_adaptive": parallel_vs_adaptive}


def main(argv=None):
    C.run_benchmark(parse_args(argv), run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
