"""Shared parts of the benchmark scripts (not part of the package or of the test suite).

* Threads: every script takes ``--threads {N,all}`` (:func:`add_threads_option`, default the
  package's :data:`lowrank_ref.threads.DEFAULT_THREADS`) and runs its work inside
  ``lowrank_ref.threads.blas_threads(n)``, the package's own mechanism.
* :func:`machine_info` -- CPU, cores, versions, the BLAS libraries and the thread count in
  force (``lowrank_ref.threads.blas_info``), load average.
* :class:`NumpyMLP` -- the in-run baseline: a minimal hand-written NumPy dense loop.
* :func:`make_runner` -- the package's optimisers (dense, fixed 2/1 passes, adaptive 1/3).
* The *essential* operation model of one step (:func:`step_ops`): the matmuls, QRs, SVDs and
  main elementwise passes the algorithm needs. :class:`PrimitiveSampler` times every distinct
  operation at its shape in the same run, the way the package computes it; the sum is the
  cost model a step is compared against.
* :func:`interleaved_timing` -- medians of steps timed interleaved across methods.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lowrank_ref.threads import (DEFAULT_THREADS, blas_info, blas_threads,  # noqa: E402
                                 check_threads)

PAPER_SIZES = (784, 500, 500, 500, 500, 10)
N_TRAIN = 60000


# --- threads and machine -------------------------------------------------------------------

def threads_arg(text: str):
    """``--threads`` value: an int >= 1, or "all" (None: no limit, the libraries' default)."""
    if text == "all":
        return None
    try:
        return check_threads(int(text))
    except ValueError:
        raise ValueError(f"expected an int >= 1 or 'all', got {text!r}") from None


def threads_label(threads) -> str:
    return "all" if threads is None else str(threads)


def add_threads_option(parser) -> None:
    parser.add_argument("--threads", type=threads_arg, default=DEFAULT_THREADS,
                        metavar="{N,all}",
                        help="BLAS/LAPACK threads of the measured work, applied with "
                             "lowrank_ref.threads.blas_threads ('all': the libraries' default; "
                             f"default: the package default, {DEFAULT_THREADS})")


def blas_threads_in_force() -> list:
    """``num_threads`` of every loaded BLAS library, now (call it inside the block)."""
    return [lib["num_threads"] for lib in blas_info()]


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "unknown"


def machine_info(threads) -> dict:
    """The machine, the versions, and the BLAS libraries with the thread count in force
    inside ``blas_threads(threads)``."""
    import scipy
    import threadpoolctl
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "threadpoolctl": threadpoolctl.__version__,
            "nproc": os.cpu_count(), "threads requested": threads_label(threads)}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, val = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache",
                               "L3 cache"):
                info[key.strip()] = val.strip()
    except Exception:  # pragma: no cover
        pass
    with blas_threads(threads):
        info["blas"] = [f"{lib['library']} {lib['version']} threads={lib['num_threads']} "
                        f"({lib['filename']})" for lib in blas_info()]
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "lowrank_ref"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["lowrank_ref commit"] = head + (" (lowrank_ref/ modified)" if dirty else "")
    except Exception:  # pragma: no cover
        pass
    info["loadavg_at_start"] = loadavg()
    return info


def json_args(args) -> dict:
    """``vars(args)`` for a JSON record: ``threads`` as "N"/"all", paths relative to the repo."""
    out = dict(vars(args), threads=threads_label(args.threads))
    for key in ("json", "out", "pyinstrument"):
        if isinstance(out.get(key), str):
            out[key] = repo_path(out[key])
    return out


def repo_path(path: str) -> str:
    """``path`` relative to the repository root if it lies inside it (for printed and
    recorded paths), else unchanged."""
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return path if rel.startswith("..") else rel


def print_machine(info: dict) -> None:
    print("# machine")
    for k, v in info.items():
        for item in (v if isinstance(v, list) else [v]):
            print(f"#   {k}: {item}")



def run_benchmark(args, run) -> dict:
    """Print the machine, run ``run(args, info)`` inside ``blas_threads(args.threads)``, write
    its result to ``args.json`` when that is given (every sample), and return it: the
    ``main`` of every benchmark script."""
    info = machine_info(args.threads)
    print_machine(info)
    with blas_threads(args.threads):
        out = run(args, info)
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return out


def mnist_batches(n_batches, batch_size=256, dtype=np.float32, seed=0):
    """``n_batches`` MNIST training batches (``lowrank_ref.data.load("mnist")``) as
    contiguous arrays, shuffled by ``default_rng(seed)``; random data of MNIST's shape if
    MNIST is not installed. Returns ``(batches, source)``."""
    from lowrank_ref import data
    try:
        ds = data.load("mnist", dtype=dtype)
        X, y, source = ds.X_train, ds.y_train, "MNIST (lowrank_ref.data.load)"
    except Exception as exc:  # pragma: no cover - data not installed
        print(f"# MNIST not found ({type(exc).__name__}); using random data of MNIST's shape")
        rng = np.random.default_rng(0)
        X = rng.random((N_TRAIN, 784), dtype=np.float32).astype(dtype)
        y = rng.integers(0, 10, N_TRAIN)
        source = "random"
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_batches:                 # successive epochs; full batches only
        for Xb, yb in data.batches(X, y, batch_size, rng=rng):
            if len(out) == n_batches:
                break
            if len(yb) == batch_size:
                out.append((np.ascontiguousarray(Xb), np.ascontiguousarray(yb)))
    return out, source


# --- the in-run baseline ----------------------------------------------------------------

class NumpyMLP:
    """Minimal hand-written NumPy ReLU MLP with softmax cross-entropy and plain SGD.

    Same initialisation as ``MLP.dense(..., init="he")`` (drawn in float64, cast). One
    ``step`` is forward, backward (no input gradient for the first layer) and the SGD
    update, with in-place elementwise work where NumPy allows it.
    """

    def __init__(self, sizes, rng, dtype=np.float32, lr=0.05):
        self.W, self.b = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            a = np.sqrt(6.0 / n_in)
            self.W.append(rng.uniform(-a, a, (n_out, n_in)).astype(dtype))
            self.b.append(np.zeros(n_out, dtype=dtype))
        self.lr = np.dtype(dtype).type(lr)

    def step(self, X, y):
        L = len(self.W)
        acts = [X]
        h = X
        for i in range(L):
            z = h @ self.W[i].T
            z += self.b[i]
            if i < L - 1:
                np.maximum(z, 0, out=z)
            acts.append(z)
            h = z
        z = acts[-1]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        n = X.shape[0]
        rows = np.arange(n)
        loss = -float(np.log(z[rows, y]).mean())
        z[rows, y] -= 1
        z *= z.dtype.type(1.0 / n)
        d = z
        for i in range(L - 1, -1, -1):
            h = acts[i]
            gW = d.T @ h
            gb = d.sum(axis=0)
            if i > 0:
                d = d @ self.W[i]
                d *= h > 0
            gW *= self.lr
            self.W[i] -= gW
            gb *= self.lr
            self.b[i] -= gb
        return loss


# --- the package's optimisers ------------------------------------------------------------

#: Learning rates, plain SGD (momentum 0) at a constant rate: dense 0.1 (the package
#: default); DLRT 0.2 (0.5, tried before, diverged within 30 steps for adaptive3-25 from the
#: default "decay" initialisation). The adaptive step's cost depends on the learning rate
#: through the number of new directions the augmentation keeps.
DEFAULT_LR = {"baseline": 0.1, "dense": 0.1, "fixed": 0.2, "fixed1": 0.2, "adaptive1": 0.2,
              "adaptive3": 0.2, "parallel": 0.2}
METHOD_KINDS = tuple(DEFAULT_LR)


def parse_method(name: str):
    """``"fixed-20"`` -> ``("fixed", 20)``, ``"dense"`` -> ``("dense", None)``."""
    kind, _, rank = name.partition("-")
    if kind not in METHOD_KINDS or (kind in ("baseline", "dense")) != (rank == ""):
        raise ValueError(f"method must be baseline, dense or KIND-RANK with KIND in "
                         f"{METHOD_KINDS[2:]}, got {name!r}")
    return kind, int(rank) if rank else None


def make_runner(method: str, sizes, dtype, lr=None, rank=None, factors="svd"):
    """``(step(X, y) -> loss, model)`` for ``method`` (a kind of :data:`METHOD_KINDS`):

    * ``baseline`` -- :class:`NumpyMLP`; ``dense`` -- ``MLP.dense`` + ``DenseSGD``;
    * ``fixed`` / ``fixed1`` -- ``FixedRankKLS(passes=2)`` / ``FixedRankKLS(passes=1)``;
    * ``adaptive1`` / ``adaptive3`` -- ``AdaptiveBUG(passes=1|3)`` with ``tau = 0`` and
      ``min_rank = max_rank = rank``: the augmented basis has ``rank + p`` columns every step
      (as with any ``tau`` at which the rank is stable) and the truncation returns to
      ``rank``, so every step has the cost of a stable rank ``rank``;
    * ``parallel`` -- ``ParallelBUG`` held at ``rank`` in the same way.

    Plain SGD (momentum 0), ``lr`` None: :data:`DEFAULT_LR`. Models from seed 0
    (:func:`low_rank_model` with ``factors``).
    """
    from lowrank_ref import dlrt
    from lowrank_ref.nn import MLP
    lr = DEFAULT_LR[method] if lr is None else lr
    if method == "baseline":
        net = NumpyMLP(sizes, np.random.default_rng(0), dtype, lr)
        return net.step, net
    if method == "dense":
        model = MLP.dense(list(sizes), np.random.default_rng(0), dtype=dtype)
        opt = dlrt.DenseSGD(model, lr=lr)
    elif method in ("fixed", "fixed1"):
        model = low_rank_model(sizes, rank, dtype, factors=factors)
        opt = dlrt.FixedRankKLS(model, lr=lr, passes=2 if method == "fixed" else 1)
    elif method in ("adaptive1", "adaptive3"):
        model = low_rank_model(sizes, rank, dtype, factors=factors)
        opt = dlrt.AdaptiveKLS(model, lr=lr, tau=0.0, min_rank=rank, max_rank=rank,
                               passes=1 if method == "adaptive1" else 3)
    elif method == "parallel":
        model = low_rank_model(sizes, rank, dtype, factors=factors)
        opt = dlrt.ParallelBUG(model, lr=lr, tau=0.0, min_rank=rank, max_rank=rank)
    else:
        raise ValueError(method)

    def step(X, y):
        return opt.step(X, y).loss
    return step, model


_SVD_CACHE: dict = {}


def low_rank_model(sizes, rank, dtype, seed=0, factors="svd"):
    """The network of ``dlrt.low_rank_mlp(sizes, rank, default_rng(seed), dtype)``.

    ``factors="svd"``: the same model as ``low_rank_mlp`` (He draw, its SVD cut to the rank,
    the singular values replaced by ``lowrank_layers.decay_spectrum``; last layer dense, drawn from the
    same generator), but the float64 SVD of each layer's draw is computed once per ``sizes``
    and shared by all ranks (it takes seconds at width 2048).

    ``factors="random"``: orthonormal ``U``, ``V`` from the QR of Gaussian matrices, the
    same ``decay_spectrum`` (of equal values) and zero biases; the top singular vectors
    of a He draw are distributed like these, and no dense SVD is needed (about 30 s per
    4000 x 4000 layer).
    """
    from lowrank_ref.lowrank import LowRank, orthonormalize
    from lowrank_ref.lowrank_layers import LowRankDense, decay_spectrum
    from lowrank_ref.nn import MLP, Dense, init_params
    hidden = list(zip(sizes[:-2], sizes[1:-1]))
    if factors == "random":
        rng = np.random.default_rng(seed)
        layers = []
        for n_in, n_out in hidden:
            r = min(rank, n_in, n_out)
            U = orthonormalize(rng.standard_normal((n_out, r)))
            V = orthonormalize(rng.standard_normal((n_in, r)))
            S = np.diag(decay_spectrum(np.ones(r), n_out))
            layers.append(LowRankDense.from_factors(
                LowRank(U.astype(dtype), S.astype(dtype), V.astype(dtype)),
                np.zeros(n_out, dtype=dtype)))
        return MLP(layers + [Dense(sizes[-2], sizes[-1], rng, dtype=dtype)])
    if factors != "svd":
        raise ValueError(f"factors must be 'svd' or 'random', got {factors!r}")
    key = (tuple(sizes), seed)
    if key not in _SVD_CACHE:
        rng = np.random.default_rng(seed)
        facs = []
        for n_in, n_out in hidden:
            W, b = init_params("he", n_in, n_out, rng)
            P, sigma, Qt = np.linalg.svd(W, full_matrices=False)
            facs.append((P, sigma, Qt, b))
        _SVD_CACHE[key] = (facs, rng.bit_generator.state)
    facs, state = _SVD_CACHE[key]
    layers = []
    for (P, sigma, Qt, b) in facs:
        r = min(rank, P.shape[0], Qt.shape[1])
        layers.append(LowRankDense.from_factors(
            LowRank(P[:, :r].astype(dtype), np.diag(decay_spectrum(sigma[:r], P.shape[0])).astype(dtype),
                    Qt[:r].T.astype(dtype)), b.astype(dtype)))
    rng = np.random.default_rng(seed)
    rng.bit_generator.state = state              # where low_rank_mlp draws the last layer
    layers.append(Dense(sizes[-2], sizes[-1], rng, dtype=dtype))
    return MLP(layers)


def probe_augmentation(method, rank, sizes, batches, dtype, lr=None):
    """Mean number of new columns ``(p_U, p_V)`` that ``augment_basis`` adds per low-rank
    layer over the steps on ``batches`` from a fresh model (the same deterministic sequence
    as a timed repeat). The rank-revealing augmentation keeps only directions above
    round-off, so ``p`` is data dependent and often below ``r``."""
    from lowrank_ref import dlrt
    step, model = make_runner(method, sizes, dtype, lr=lr, rank=rank)
    rec = []
    orig = dlrt.augment_basis

    def aug(U0, K1, *a, **k):
        out = orig(U0, K1, *a, **k)
        rec.append(out.shape[1] - U0.shape[1])
        return out
    step(*batches[-1])          # as interleaved_timing: one untimed step on fresh models
    dlrt.augment_basis = aug
    try:
        per_step = []
        for X, y in batches:
            rec.clear()
            step(X, y)
            per_step.append(list(rec))
    finally:
        dlrt.augment_basis = orig
    arr = np.array(per_step, dtype=float)          # (steps, 2 * layers): U, V per layer
    mean = arr.mean(axis=0)
    return [(int(round(mean[2 * i])), int(round(mean[2 * i + 1])))
            for i in range(arr.shape[1] // 2)]


def model_ranks(model) -> list:
    return [getattr(layer, "rank", None) for layer in getattr(model, "layers", [])]


# --- the essential operation model ----------------------------------------------------------
# One training step as the list of operations its algorithm needs (not every array the
# engine happens to form). An op is a tuple:
#   ("mm", m, k, n)      (m, k) @ (k, n)
#   ("qr", m, n)         thin Householder QR with Q formed (lowrank.orthonormalize)
#   ("cholqr", m, n)     one CholeskyQR pass of a matrix orthonormal up to rounding
#                        (Gram, potrf, trtri, product: lowrank.cholesky_qr(A, passes=1))
#   ("svd", m, n)        thin SVD with vectors; ("svdcore", m, n): the same of the
#                        truncation's nearly diagonal core; ("svdvals", m, n): values only
#   ("ew", kind, m, n)   an elementwise pass over an (m, n) array
# Notation: batch b, layer input width a, output width c, rank r; dZ = dL/dZ of the layer.

def op_flops(op) -> float:
    kind = op[0]
    if kind == "mm":
        _, m, k, n = op
        return 2.0 * m * k * n
    if kind == "ew":
        return 0.0
    _, m, n = op
    m, n = max(m, n), min(m, n)
    if kind == "qr":
        return 4.0 * m * n * n - 4.0 / 3.0 * n ** 3     # geqrf + orgqr
    if kind == "cholqr":
        return 4.0 * m * n * n + 2.0 / 3.0 * n ** 3     # Gram + product + potrf + trtri
    if kind in ("svd", "svdcore"):
        return 6.0 * m * n * n + 20.0 * n ** 3          # R-SVD, thin U (Golub & Van Loan)
    if kind == "svdvals":
        return 2.0 * m * n * n + 2.0 * n ** 3
    raise ValueError(op)


def _dense_layer(ops, b, a, c, first, last, need_dW=True) -> list:
    """Forward ops of ``X W^T + b`` (b, a) -> (b, c) (+ ReLU); returns its backward ops."""
    ops += [("mm", b, a, c), ("ew", "bias", b, c)] + ([] if last else [("ew", "relu", b, c)])
    back = [("ew", "colsum", b, c)]
    if need_dW:
        back += [("mm", c, b, a), ("ew", "axpy", c, a)]               # dW = dZ^T X, update
    if not first:
        back += [("mm", b, c, a), ("ew", "relu_bwd", b, a)]           # dX = dZ W
    return back


def _low_rank_layer(ops, b, a, c, first, mode, r, k=None) -> list:
    """Forward ops of the hidden low-rank layer ``X V S^T U^T + b`` (+ ReLU) with ``V (a, r)``,
    ``S (k, r)``, ``U (c, k)``; returns its backward ops. Modes as ``LowRankDense``: "W"
    (``U0 S0 V0``), "S" (``U_hat``, leaf ``S_hat``, ``V_hat``), "K" (``X V0 K^T``, leaf
    ``K``), "L" (``X L U0^T``, leaf ``L``)."""
    k = r if k is None else k
    core = mode in ("W", "S")
    ops += [("mm", b, a, r)] + ([("mm", b, r, k)] if core else []) \
        + [("mm", b, k, c), ("ew", "bias", b, c), ("ew", "relu", b, c)]
    back = [("ew", "colsum", b, c)]
    if mode != "K" or not first:
        back.append(("mm", b, c, k))                                  # dZ U
    if not first:
        back += ([("mm", b, k, r)] if core else []) \
            + [("mm", b, r, a), ("ew", "relu_bwd", b, a)]             # (dZ U) S, dX
    back += {"W": [], "S": [("mm", k, b, r)],                         # dS = (dZ U)^T X V
             "K": [("mm", c, b, r)], "L": [("mm", a, b, r)]}[mode]    # dK, dL
    return back


def _net_pass(ops, sizes, b, mode, ranks, ks=None, dense_update=True) -> None:
    """One forward and backward of the low-rank network (last layer dense) in ``mode``."""
    L = len(sizes) - 1
    backs = []
    for i, (a, c) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i == L - 1:
            backs.append(_dense_layer(ops, b, a, c, i == 0, True, need_dW=dense_update))
        else:
            backs.append(_low_rank_layer(ops, b, a, c, i == 0, mode, ranks[i],
                                         None if ks is None else ks[i]))
    ops.append(("ew", "ce", b, sizes[-1]))
    for back in reversed(backs):
        ops += back


def _augment(ops, m, r, p) -> None:
    """``augment_basis(U0 (m, r), K1 (m, r))`` keeping ``p`` new columns."""
    ops += [("mm", r, m, r), ("mm", m, r, r)] * 2       # R = (I - U0 U0^T) K1, twice
    ops += [("qr", m, r),                               # R = Q_R T (Householder)
            ("svd", min(m, r), r),                      # T = W diag(s) Z^T
            ("svdvals", min(m, r) + r, r)]              # ||K1||_2 = ||[C + C2; T]||_2
    if p > 0:
        ops += [("mm", m, r, p),                        # Q_R W[:, :p]
                ("mm", r, m, p), ("mm", m, r, p),       # re-projection against U0
                ("cholqr", m, p)]                       # one CholeskyQR pass


def step_ops(method, sizes, b, rank=None, aug=None) -> list:
    """The essential op list of one training step of ``method`` (a kind of
    :data:`METHOD_KINDS`) on ``sizes`` with batch ``b``.

    ``aug``: per low-rank layer the number of new columns ``(p_U, p_V)`` the augmentation
    keeps (adaptive methods; measured by :func:`probe_augmentation`); default ``(r, r)``.
    """
    sizes = list(sizes)
    ops: list = []
    if method in ("baseline", "dense"):
        L = len(sizes) - 1
        backs = [_dense_layer(ops, b, a, c, i == 0, i == L - 1)
                 for i, (a, c) in enumerate(zip(sizes[:-1], sizes[1:]))]
        ops.append(("ew", "ce", b, sizes[-1]))
        for back in reversed(backs):
            ops += back
        return ops
    layers = [(a, c, min(rank, a, c)) for a, c in zip(sizes[:-2], sizes[1:-1])]
    ranks = [r for _, _, r in layers]
    if method in ("fixed", "fixed1"):
        _net_pass(ops, sizes, b, "W", ranks)
        for a, c, r in layers:
            ops += [("mm", c, b, r), ("mm", a, b, r),              # G V0 = dZ^T XV, G^T U0 = X^T dZ_U
                    ("mm", c, r, r), ("qr", c, r),                 # K1 = U0 S0 - lr G V0 -> U1
                    ("mm", a, r, r), ("qr", a, r),                 # L1 = V0 S0^T - lr G^T U0 -> V1
                    ("mm", r, c, r), ("mm", r, a, r),              # M = U1^T U0, N = V0^T V1
                    ("mm", r, r, r), ("mm", r, r, r)]              # S~0 = M S0 N
            if method == "fixed1":                                 # dS = (dZ U1)^T (X V1)
                ops += [("mm", b, c, r), ("mm", b, a, r), ("mm", r, b, r)]
        if method == "fixed":                                      # S-step gradient at W~
            _net_pass(ops, sizes, b, "S", ranks, dense_update=False)
        return ops
    if method not in ("adaptive1", "adaptive3", "parallel"):
        raise ValueError(method)
    aug = [(r, r) for _, _, r in layers] if aug is None else aug
    widths = [(min(pu, c - r), min(pv, a - r)) for (a, c, r), (pu, pv) in zip(layers, aug)]
    for a, c, r in layers:                                         # refresh_orthonormality
        ops += [("cholqr", c, r), ("cholqr", a, r), ("mm", r, r, r), ("mm", r, r, r)]
    if method == "parallel":
        _net_pass(ops, sizes, b, "W", ranks)
        for (a, c, r), (pu, pv) in zip(layers, widths):
            ops += [("mm", c, b, r), ("mm", a, b, r),              # G V0, G^T U0 from the taps
                    ("mm", r, b, r),                               # U0^T G V0 = dZ_U^T XV
                    ("mm", c, r, r), ("mm", a, r, r)]              # K1, L1
            _augment(ops, c, r, pu)
            _augment(ops, a, r, pv)
            ops += [("mm", r, a, pv), ("mm", pu, c, r)]            # L1^T V~, U~^T K1
    elif method == "adaptive1":
        _net_pass(ops, sizes, b, "W", ranks)
        for (a, c, r), (pu, pv) in zip(layers, widths):
            ops += [("mm", c, b, r), ("mm", a, b, r),              # G V0, G^T U0 from the taps
                    ("mm", c, r, r), ("mm", a, r, r)]              # K1, L1
            _augment(ops, c, r, pu)
            _augment(ops, a, r, pv)
            ops += [("mm", b, a, pv), ("mm", c, b, pv),            # X V~, dZ^T (X V~)
                    ("mm", r + pu, c, r + pv)]                     # U_hat^T [G V0, G V~]
    else:
        _net_pass(ops, sizes, b, "K", ranks, dense_update=False)
        _net_pass(ops, sizes, b, "L", ranks, dense_update=False)
        for (a, c, r), (pu, pv) in zip(layers, widths):
            ops += [("mm", c, r, r), ("mm", a, r, r)]              # leaves K = U0 S0, L = V0 S0^T
            _augment(ops, c, r, pu)
            _augment(ops, a, r, pv)
        _net_pass(ops, sizes, b, "S", [r + pv for (_, _, r), (_, pv) in zip(layers, widths)],
                  ks=[r + pu for (_, _, r), (pu, _) in zip(layers, widths)])
    for (a, c, r), (pu, pv) in zip(layers, widths):                # truncation
        ops += [("svdcore", r + pu, r + pv), ("mm", c, r + pu, r), ("mm", a, r + pv, r)]
    return [op for op in ops if op[0] != "mm" or min(op[1:]) > 0]


def total_flops(ops) -> float:
    return float(sum(op_flops(op) for op in ops))


# --- timing the primitives ------------------------------------------------------------------

def _prim_callable(op, rng, dtype):
    """A call that computes ``op`` the way the package does, on random data of its shape."""
    import scipy.linalg as sla
    from lowrank_ref.lowrank import cholesky_qr, orthonormalize
    kind = op[0]
    if kind == "mm":
        _, m, k, n = op
        A = rng.standard_normal((m, k)).astype(dtype)
        B = rng.standard_normal((k, n)).astype(dtype)
        return lambda: A @ B
    if kind != "ew":
        _, m, n = op
        A = rng.standard_normal((m, n)).astype(dtype)
    if kind == "qr":
        return lambda: orthonormalize(A)
    if kind == "cholqr":               # orthonormal up to rounding, as in the package
        Q = orthonormalize(A)
        Q = (Q + np.sqrt(np.finfo(dtype).eps) * rng.standard_normal(Q.shape)).astype(dtype)
        return lambda: cholesky_qr(Q, passes=1)
    if kind == "svd":
        return lambda: sla.svd(A, full_matrices=False, check_finite=False)
    if kind == "svdvals":
        return lambda: sla.svd(A, compute_uv=False, check_finite=False)
    if kind == "svdcore":
        # the truncation's S_hat1 = [[diag(sigma), 0], [0, 0]] - lr dS: close to diagonal,
        # on which gesdd converges much faster than on a Gaussian matrix
        D = np.zeros((m, n))
        k = min(m, n) // 2
        D[np.arange(k), np.arange(k)] = np.sort(rng.uniform(0.1, 3.0, k))[::-1]
        D = (D + 0.01 * rng.standard_normal((m, n))).astype(dtype)
        return lambda: sla.svd(D, full_matrices=False, check_finite=False)
    _, ew, m, n = op
    A = rng.standard_normal((m, n)).astype(dtype)
    B = rng.standard_normal((m, n)).astype(dtype)
    bvec = rng.standard_normal(n).astype(dtype)
    lr = dtype(0.05)
    if ew == "bias":
        return lambda: A + bvec
    if ew == "relu":
        return lambda: np.maximum(A, 0)
    if ew == "relu_bwd":
        return lambda: A * (B > 0)
    if ew == "colsum":
        return lambda: A.sum(axis=0)
    if ew == "axpy":
        def axpy():
            A.__isub__(lr * B)
        return axpy
    if ew == "ce":
        y = rng.integers(0, n, m)
        rows = np.arange(m)

        def ce():
            z = A - A.max(axis=1, keepdims=True)
            lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            loss = -lp[rows, y].mean()
            d = np.exp(lp)
            d[rows, y] -= 1
            return loss, d * (1.0 / m)
        return ce
    raise ValueError(op)


class PrimitiveSampler:
    """Times every distinct op of ``op_lists`` at its shape; call :meth:`sample` once per
    repeat (between the training-step repeats, so both see the same machine load) and
    :meth:`medians` at the end. Also samples an ``n^3`` matmul (``gemm_gflops``)."""

    def __init__(self, op_lists, dtype, min_time=2e-3, seed=0, gemm_n=1024):
        rng = np.random.default_rng(seed)
        self.distinct = sorted({op for ops in op_lists for op in ops}, key=str)
        self.calls, self.numbers = {}, {}
        for op in self.distinct:
            f = _prim_callable(op, rng, dtype)
            f()
            t0 = time.perf_counter()
            f()
            dt = max(time.perf_counter() - t0, 1e-7)
            self.calls[op], self.numbers[op] = f, max(1, min(2000, int(min_time / dt)))
        A = rng.standard_normal((gemm_n, gemm_n)).astype(dtype)
        B = rng.standard_normal((gemm_n, gemm_n)).astype(dtype)
        self.gemm = (lambda: A @ B, 2.0 * gemm_n ** 3)
        self.samples = {op: [] for op in self.distinct}
        self.gemm_samples = []

    def sample(self):
        for op in self.distinct:
            f, n = self.calls[op], self.numbers[op]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            self.samples[op].append((time.perf_counter() - t0) / n)
        f, fl = self.gemm
        f()
        t0 = time.perf_counter()
        f()
        self.gemm_samples.append(fl / (time.perf_counter() - t0) / 1e9)

    def medians(self) -> dict:
        return {op: float(np.median(v)) for op, v in self.samples.items()}

    def gemm_gflops(self) -> float:
        return float(np.median(self.gemm_samples))


def model_time(ops, prim: dict) -> float:
    return float(sum(prim[op] for op in ops))


def breakdown(ops, prim: dict) -> dict:
    """Model seconds per op kind ("mm", "qr", "cholqr", "svd", ..., "ew")."""
    out = {}
    for op in ops:
        out[op[0]] = out.get(op[0], 0.0) + prim[op]
    return out


# --- timing the steps -----------------------------------------------------------------------

def interleaved_timing(factory, batches, repeats: int, after_repeat=None) -> dict:
    """Median seconds per step of every runner over ``repeats`` samples.

    ``factory()`` returns ``{name: step(X, y) -> loss}`` of fresh models; it is called at
    the start of every repeat, so that each repeat does exactly the same work (DLRT step
    costs depend on the state), and every fresh model first takes one untimed step on the
    last batch (first-touch page faults of new arrays). Within a repeat every batch is
    stepped by every runner in turn (order rotated per batch), each step timed on its own;
    a sample is a runner's mean step time over the repeat. Machine-load drift (other jobs on
    the shared cores) then hits all runners alike.
    """
    names, samples, last_loss = None, {}, {}
    for rep in range(repeats):
        runners = None
        gc.collect()
        runners = factory()
        if names is None:
            names = list(runners)
            samples = {n: [] for n in names}
        for name in names:
            runners[name](*batches[-1])
        gc.collect()
        acc = dict.fromkeys(names, 0.0)
        k = len(names)
        for j, (X, y) in enumerate(batches):
            s = (rep + j) % k
            for name in names[s:] + names[:s]:
                step = runners[name]
                t0 = time.perf_counter()
                last_loss[name] = step(X, y)
                acc[name] += time.perf_counter() - t0
        for name in names:
            samples[name].append(acc[name] / len(batches))
        if after_repeat is not None:
            after_repeat()
    return {n: {"median": float(np.median(v)), "min": float(np.min(v)),
                "max": float(np.max(v)), "samples": v, "loss": last_loss[n]}
            for n, v in samples.items()}
