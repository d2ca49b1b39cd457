"""Shared parts of the benchmark scripts (not part of the package or of the test suite).

* :func:`limit_threads` -- must run before NumPy is imported: sets the BLAS thread variables
  from ``--threads`` (and, once NumPy is imported, threadpoolctl enforces it if installed).
* :func:`machine_info` -- CPU model, cores, Python/NumPy/BLAS versions, threads in force.
* :class:`NumpyMLP` -- the in-run baseline: a minimal hand-written NumPy dense loop.
* :func:`make_runner` -- the package's optimisers (dense, fixed, adaptive 1/3 passes).
* An operation model of one step (:func:`step_ops`): the list of matmuls, QRs, SVDs and the
  main elementwise passes a step executes, either as the package runs it (``"package"``:
  including gradients the engine computes and drops, duplicated products and validation
  checks) or as the algorithm needs it (``"essential"``). :func:`time_primitives` times every
  distinct primitive of such lists in the same run; summing gives a cost model of a step.
"""
from __future__ import annotations

import os
import sys


from _threads import limit_threads  # noqa: E402,F401

import gc  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PAPER_SIZES = (784, 500, 500, 500, 500, 10)
N_TRAIN = 60000

_LIMITER = None


def enforce_threads(n: int):
    """Also limit through threadpoolctl when installed; returns its info (or None)."""
    global _LIMITER
    try:
        import threadpoolctl
    except ImportError:
        return None
    _LIMITER = threadpoolctl.threadpool_limits(n)
    return threadpoolctl.threadpool_info()


def machine_info(threads: int) -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "threads_requested": threads, "nproc": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, val = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache",
                               "L3 cache"):
                info[key.strip()] = val.strip()
    except Exception:  # pragma: no cover
        pass
    try:
        import scipy
        info["scipy"] = scipy.__version__
    except ImportError:
        pass
    try:
        import threadpoolctl
        info["blas"] = [f"{d['internal_api']} {d.get('version')} {d.get('architecture')} "
                        f"threads={d['num_threads']} ({os.path.basename(d['filepath'])})"
                        for d in threadpoolctl.threadpool_info()]
    except ImportError:
        cfg = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
        try:
            blas = cfg["Build Dependencies"]["blas"]
            info["blas"] = [f"{blas.get('name')} {blas.get('version')} (np.show_config; "
                            f"threads via OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')})"]
        except Exception:
            info["blas"] = ["unknown"]
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "lowrank_ref"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["lowrank_ref commit"] = head + (" (lowrank_ref/ modified)" if dirty else "")
    except Exception:  # pragma: no cover
        pass
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    return info


def print_machine(info: dict) -> None:
    print("# machine")
    for k, v in info.items():
        if isinstance(v, list):
            for item in v:
                print(f"#   {k}: {item}")
        else:
            print(f"#   {k}: {v}")


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
        self.lr = dtype(lr) if isinstance(dtype, type) else np.dtype(dtype).type(lr)

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

#: Learning rates (momentum 0 everywhere): dense as the package default (0.1); DLRT 0.2, not
#: the package's 0.5 -- that one is tuned with the cosine schedule, and as a constant plain
#: SGD step from the default "decay" initialisation it diverges within 30 steps for
#: adaptive3-25 (loss 13, then a non-converging SVD). The adaptive step's cost depends on
#: the learning rate through the number of new directions the augmentation keeps.
DEFAULT_LR = {"baseline": 0.1, "dense": 0.1, "fixed": 0.2, "adaptive1": 0.2, "adaptive3": 0.2}


def make_runner(method: str, sizes, rng, dtype, lr=None, rank=None):
    """``(step(X, y) -> loss, model)`` for ``method`` in
    ``baseline | dense | fixed | adaptive1 | adaptive3``; ``lr`` None: :data:`DEFAULT_LR`.

    Adaptive runs use ``tau = 0`` with ``min_rank = max_rank = rank``: the augmented basis
    has ``2 rank`` columns every step (as with any ``tau`` at which the rank is stable) and
    the truncation returns to ``rank``, so every step has the cost of a stable rank ``rank``.
    """
    from lowrank_ref import dlrt
    from lowrank_ref.nn import MLP
    lr = DEFAULT_LR[method] if lr is None else lr
    rng = np.random.default_rng(0) if rng is None else rng
    if method == "baseline":
        net = NumpyMLP(sizes, rng, dtype, lr)
        return net.step, net
    if method == "dense":
        model = MLP.dense(list(sizes), rng, dtype=dtype)
        opt = dlrt.DenseSGD(model, lr=lr)
    elif method == "fixed":
        model = low_rank_model(sizes, rank, dtype)
        opt = dlrt.FixedRankKLS(model, lr=lr)
    elif method in ("adaptive1", "adaptive3"):
        model = low_rank_model(sizes, rank, dtype)
        opt = dlrt.AdaptiveKLS(model, lr=lr, tau=0.0, min_rank=rank, max_rank=rank,
                               passes=1 if method == "adaptive1" else 3)
    else:
        raise ValueError(method)

    def step(X, y):
        return opt.step(X, y).loss
    return step, model


_SVD_CACHE: dict = {}


def low_rank_model(sizes, rank, dtype, seed=0):
    """Like ``dlrt.low_rank_mlp(sizes, rank, default_rng(seed), dtype)`` (He draw, its SVD cut
    to ``rank`` with the package's default "decay" spectrum; last layer dense), but the
    float64 SVD of each layer's dense draw is computed once per ``sizes`` and shared by all
    ranks (it takes seconds at width 2048)."""
    from lowrank_ref import nn
    from lowrank_ref.lowrank import LowRank
    from lowrank_ref.nn import MLP, Dense, LowRankDense, _init_params
    key = (tuple(sizes), seed)
    if key not in _SVD_CACHE:
        rng = np.random.default_rng(seed)
        facs = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            W, b = _init_params("he", n_in, n_out, rng)
            P, sigma, Qt = np.linalg.svd(W, full_matrices=False)
            facs.append((P, sigma, Qt, b))
        _SVD_CACHE[key] = facs
    layers = []
    for (P, sigma, Qt, b) in _SVD_CACHE[key]:
        r = min(rank, P.shape[0], Qt.shape[1])
        sig = sigma[:r]
        if hasattr(nn, "SPECTRUM_DECAY"):       # as LowRankDense(spectrum="decay"), the default
            sig = sig * np.exp(-np.arange(r) / nn.SPECTRUM_DECAY)
            sig *= nn.SPECTRUM_NORM * np.sqrt(2.0 * P.shape[0]) / np.linalg.norm(sig)
        layers.append(LowRankDense.from_factors(
            LowRank(P[:, :r].astype(dtype), np.diag(sig).astype(dtype),
                    np.ascontiguousarray(Qt[:r].T).astype(dtype)), b.astype(dtype)))
    layers.append(Dense(sizes[-2], sizes[-1], np.random.default_rng(seed + 1), dtype=dtype))
    return MLP(layers)


def probe_augmentation(method, rank, sizes, batches, dtype, lr=None):
    """Mean number of new columns ``(p_U, p_V)`` that ``augment_basis`` adds per low-rank
    layer over the steps on ``batches`` from a fresh model (the same deterministic sequence
    as a timed repeat). The rank-revealing augmentation keeps only directions above
    round-off, so ``p`` is data dependent and often below ``r``."""
    from lowrank_ref import dlrt
    step, model = make_runner(method, sizes, None, dtype, lr=lr, rank=rank)
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


# --- the operation model ------------------------------------------------------------------
# An op is a tuple: ("mm", m, k, n) for (m, k) @ (k, n); ("qr", m, n) thin Householder QR
# with Q formed (np.linalg.qr); ("svd", m, n) thin SVD with vectors (("svdcore", k, l): the
# same for the truncation's nearly diagonal core, timed on such a matrix); ("svdvals", m, n)
# singular values only (np.linalg.norm(A, 2)); ("ew", kind, rows, cols) an elementwise pass.

def op_flops(op) -> float:
    kind = op[0]
    if kind == "mm":
        _, m, k, n = op
        return 2.0 * m * k * n
    if kind == "qr":
        _, m, n = op
        return 4.0 * m * n * n - 4.0 / 3.0 * n ** 3      # geqrf + orgqr
    if kind in ("svd", "svdcore"):
        _, m, n = op
        m, n = max(m, n), min(m, n)
        return 6.0 * m * n * n + 20.0 * n ** 3            # R-SVD, thin U (Golub & Van Loan)
    if kind == "svdvals":
        _, m, n = op
        m, n = max(m, n), min(m, n)
        return 2.0 * m * n * n + 2.0 * n ** 3
    return 0.0


def _dense_layer(ops, b, a, c, first, last, essential, need_dW=True, update=True):
    """Forward + backward of a dense layer ``(b, a) -> (b, c)``."""
    ops.append(("mm", b, a, c))
    ops.append(("ew", "bias", b, c))
    if not last:
        ops.append(("ew", "relu", b, c))
    back = []
    back.append(("ew", "colsum", b, c))
    if need_dW or not essential:
        back.append(("mm", c, b, a))             # dW = delta^T X
        if not essential:
            back.append(("ew", "copy", c, a))    # leaf grad g.copy()
    if not first or not essential:
        back.append(("mm", b, c, a))             # dX = delta W
        if not first:
            back.append(("ew", "relu_bwd", b, a))
    if update and need_dW:
        back.append(("ew", "axpy", c, a))
    return back


def _lowrank_pass(ops, b, a, c, r, first, essential, mode="W", r_out=None):
    """Forward of a low-rank layer (3 or 2 matmuls) and the backward the engine runs.

    Mode "W"/"S": X V (b,a,r) -> (.) S^T (b,r,r') -> (.) U^T (b,r',c), r' = r_out.
    Returns the backward ops (to be appended in reverse order by the caller).
    """
    ro = r if r_out is None else r_out
    back = []
    if mode in ("W", "S"):
        ops += [("mm", b, a, r), ("mm", b, r, ro), ("mm", b, ro, c), ("ew", "bias", b, c)]
        back.append(("ew", "colsum", b, c))
        back.append(("mm", b, c, ro))                       # G U
        if not essential:
            back.append(("mm", ro, b, c))                   # dU^T (dropped)
        back.append(("mm", b, ro, r))                       # (G U) S
        if mode == "S" or not essential:
            back.append(("mm", ro, b, r))                   # dS^T (used in mode S only)
        if not first or not essential:
            back.append(("mm", b, r, a))                    # dX
        if not essential:
            back.append(("mm", a, b, r))                    # dV (dropped)
    elif mode == "K":       # X V0 K^T, leaf K (c, r)
        ops += [("mm", b, a, r), ("mm", b, r, c), ("ew", "bias", b, c)]
        back += [("ew", "colsum", b, c), ("mm", b, c, r), ("mm", r, b, c)]
        if not first or not essential:
            back.append(("mm", b, r, a))
        if not essential:
            back.append(("mm", a, b, r))
    elif mode == "L":       # X L U0^T, leaf L (a, r)
        ops += [("mm", b, a, r), ("mm", b, r, c), ("ew", "bias", b, c)]
        back += [("ew", "colsum", b, c), ("mm", b, c, r)]
        if not essential:
            back.append(("mm", r, b, c))
        if not first or not essential:
            back.append(("mm", b, r, a))
        back.append(("mm", a, b, r))
    return back


def _net_pass(ops, sizes, b, ranks, essential, mode, dense_update, r_out=None):
    """One forward/backward of the low-rank net (last layer dense) in ``mode``."""
    L = len(sizes) - 1
    backs = []
    for i, (a, c) in enumerate(zip(sizes[:-1], sizes[1:])):
        first, last = i == 0, i == L - 1
        if last:
            backs.append(_dense_layer(ops, b, a, c, first, last, essential,
                                      need_dW=dense_update, update=dense_update))
        else:
            ro = None if r_out is None else r_out[i]
            bk = _lowrank_pass(ops, b, a, c, ranks[i], first, essential, mode, ro)
            ops.append(("ew", "relu", b, c))
            if not first:
                bk.append(("ew", "relu_bwd", b, a))
            backs.append(bk)
    ops.append(("ew", "ce", b, sizes[-1]))
    for bk in reversed(backs):
        ops += bk


def _augment(ops, m, r, k, essential):
    """augment_basis(U0 (m, r), K1 (m, r)) -> (m, k) with p = k - r new columns."""
    p = k - r
    ops += [("mm", r, m, r), ("mm", m, r, r), ("mm", r, m, r), ("mm", m, r, r),
            ("svd", m, r)]
    if not essential:
        ops.append(("svdvals", m, r))             # np.linalg.norm(K1, 2)
    if p > 0:
        ops += [("mm", r, m, p), ("mm", m, r, p), ("qr", m, p), ("ew", "copy", m, k)]


def step_ops(method, sizes, b, rank=None, kind="package", aug=None) -> list:
    """The op list of one training step (see the module doc).

    ``aug``: per low-rank layer the number of new columns ``(p_U, p_V)`` of the augmented
    bases (adaptive methods); default ``(r, r)`` capped by the layer's dimensions."""
    essential = kind == "essential"
    sizes = list(sizes)
    L = len(sizes) - 1
    ops: list = []
    if method in ("baseline", "dense"):
        backs = []
        for i, (a, c) in enumerate(zip(sizes[:-1], sizes[1:])):
            backs.append(_dense_layer(ops, b, a, c, i == 0, i == L - 1,
                                      essential or method == "baseline"))
        ops.append(("ew", "ce", b, sizes[-1]))
        for bk in reversed(backs):
            ops += bk
        return ops
    ranks = [min(rank, a, c) for a, c in zip(sizes[:-2], sizes[1:-1])]
    lr_layers = list(zip(sizes[:-2], sizes[1:-1], ranks))
    if method == "fixed":
        _net_pass(ops, sizes, b, ranks, essential, "W", dense_update=True)
        for (a, c, r) in lr_layers:
            if not essential:
                ops.append(("mm", b, c, r))                          # dU0 = G U0 (dup)
            ops += [("mm", c, b, r), ("mm", a, b, r),                # G V0, G^T U0
                    ("mm", c, r, r), ("qr", c, r), ("mm", a, r, r), ("qr", a, r),
                    ("mm", r, c, r), ("mm", r, r, r), ("mm", r, a, r), ("mm", r, r, r)]
        _net_pass(ops, sizes, b, ranks, essential, "S", dense_update=False)
        return ops
    if method in ("adaptive1", "adaptive3"):
        for (a, c, r) in lr_layers:                                  # refresh_orthonormality
            ops += [("qr", c, r), ("qr", a, r), ("mm", r, r, r), ("mm", r, r, r)]
        if aug is None:
            aug = [(r, r) for (_a, _c, r) in lr_layers]
        aug = [(a, c, r, min(r + pu, c), min(r + pv, a))
               for (a, c, r), (pu, pv) in zip(lr_layers, aug)]
        if method == "adaptive1":
            _net_pass(ops, sizes, b, ranks, essential, "W", dense_update=True)
            for (a, c, r, ku, kv) in aug:
                ops += [("mm", b, c, r), ("mm", c, b, r), ("mm", a, b, r)] if not essential \
                    else [("mm", c, b, r), ("mm", a, b, r)]
                ops += [("mm", c, r, r), ("mm", a, r, r)]            # K1, L1
                _augment(ops, c, r, ku, essential)
                _augment(ops, a, r, kv, essential)
                ops += [("mm", b, c, ku - r), ("ew", "copy", b, ku),
                        ("mm", b, a, kv - r), ("ew", "copy", b, kv),
                        ("mm", ku, b, kv)]
        else:
            _net_pass(ops, sizes, b, ranks, essential, "K", dense_update=False)
            _net_pass(ops, sizes, b, ranks, essential, "L", dense_update=False)
            for (a, c, r, ku, kv) in aug:
                ops += [("mm", c, r, r), ("mm", a, r, r)]            # K = U S, L = V S^T leaves
                ops += [("mm", c, r, r), ("mm", a, r, r)]            # K1, L1
                _augment(ops, c, r, ku, essential)
                _augment(ops, a, r, kv, essential)
            _net_pass(ops, sizes, b, [k[4] for k in aug], essential, "S",
                      dense_update=True, r_out=[k[3] for k in aug])
        for (a, c, r, ku, kv) in aug:                                # truncate
            if not essential:
                ops += [("mm", ku, c, ku), ("mm", kv, a, kv),        # orthonormality gates
                        ("ew", "isfinite", c, ku), ("ew", "isfinite", a, kv)]
            ops += [("svdcore", ku, kv), ("mm", c, ku, r), ("mm", a, kv, r)]
        return ops
    raise ValueError(method)


def total_flops(ops) -> float:
    return float(sum(op_flops(op) for op in ops))


# --- timing the primitives ------------------------------------------------------------------

def _prim_callable(op, rng, dtype):
    kind = op[0]
    if kind == "mm":
        _, m, k, n = op
        A = rng.standard_normal((m, k)).astype(dtype)
        B = rng.standard_normal((k, n)).astype(dtype)
        return lambda: A @ B
    if kind == "qr":
        _, m, n = op
        A = rng.standard_normal((m, n)).astype(dtype)
        return lambda: np.linalg.qr(A, mode="reduced")
    if kind == "svd":
        _, m, n = op
        A = rng.standard_normal((m, n)).astype(dtype)
        return lambda: np.linalg.svd(A, full_matrices=False)
    if kind == "svdcore":
        # the truncation's S_hat1 = [[diag(sigma), 0], [0, 0]] - lr dS: close to diagonal,
        # on which gesdd converges much faster than on a Gaussian matrix
        _, m, n = op
        A = np.zeros((m, n))
        k = min(m, n) // 2
        A[np.arange(k), np.arange(k)] = np.sort(rng.uniform(0.1, 3.0, k))[::-1]
        A = (A + 0.01 * rng.standard_normal((m, n))).astype(dtype)
        return lambda: np.linalg.svd(A, full_matrices=False)
    if kind == "svdvals":
        _, m, n = op
        A = rng.standard_normal((m, n)).astype(dtype)
        return lambda: np.linalg.norm(A, 2)
    _, ew, m, n = op
    A = rng.standard_normal((m, n)).astype(dtype)
    B = rng.standard_normal((m, n)).astype(dtype)
    bvec = rng.standard_normal(n).astype(dtype)
    lr = 0.05
    if ew == "bias":
        return lambda: A + bvec
    if ew == "relu":
        return lambda: np.maximum(A, 0)
    if ew == "relu_bwd":
        return lambda: A * (B > 0)
    if ew == "colsum":
        return lambda: A.sum(axis=0)
    if ew == "copy":
        return lambda: A.copy()
    if ew == "axpy":
        def axpy():
            A.__isub__(lr * B)
        return axpy
    if ew == "isfinite":
        return lambda: np.all(np.isfinite(A))
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
    :meth:`medians` at the end. Also samples an ``n^3`` matmul (``"gemm"``)."""

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


def time_primitives(op_lists, dtype, repeats=5, min_time=2e-3, seed=0) -> dict:
    """Median seconds of every distinct op in ``op_lists``; repeats interleaved over ops."""
    s = PrimitiveSampler(op_lists, dtype, min_time, seed)
    for _ in range(repeats):
        s.sample()
    return s.medians()


def model_time(ops, prim: dict, kinds=None) -> float:
    return float(sum(prim[op] for op in ops if kinds is None or op[0] in kinds))


def breakdown(ops, prim: dict) -> dict:
    out = {}
    for op in ops:
        out[op[0]] = out.get(op[0], 0.0) + prim[op]
    return out


def gemm_rate(dtype, n=1024, repeats=5) -> float:
    """GFLOP/s of an ``n x n x n`` matrix product (median of ``repeats``)."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    A @ B
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ B
        ts.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / float(np.median(ts)) / 1e9


def interleaved_timing(runners, batches_list, repeats: int, after_repeat=None,
                       fine: bool = True) -> dict:
    """Median seconds per step of every runner over ``repeats`` samples.

    ``fine=True`` (default): within a repeat, every batch is stepped by every runner in turn
    (order rotated per batch), each step timed on its own; a sample is a runner's mean step
    time over the repeat. Machine-load drift (other jobs on the shared cores) then hits all
    runners alike. ``fine=False``: each runner does all batches in one timed block, runners
    in rotated order. ``runners`` may be a callable returning the dict: it is then called
    at the start of every repeat, so that each repeat starts from the same fresh models and
    does exactly the same work (DLRT step costs depend on the state); each fresh model
    first takes one untimed step on the last batch (first-touch page faults of new arrays).
    """
    factory = runners if callable(runners) else None
    if factory is not None:
        runners = factory()
    names = list(runners)
    samples = {n: [] for n in names}
    last_loss = {}
    k = len(names)
    for rep in range(repeats):
        if factory is not None and rep > 0:
            runners = None
            gc.collect()
            runners = factory()
        if factory is not None:
            for name in names:                  # untimed first step of the fresh models
                runners[name](*batches_list[-1])
        gc.collect()
        acc = dict.fromkeys(names, 0.0)
        if fine:
            for j, (X, y) in enumerate(batches_list):
                s = (rep + j) % k
                for name in names[s:] + names[:s]:
                    step = runners[name]
                    t0 = time.perf_counter()
                    loss = step(X, y)
                    acc[name] += time.perf_counter() - t0
                    last_loss[name] = loss
        else:
            for name in names[rep % k:] + names[:rep % k]:
                step = runners[name]
                t0 = time.perf_counter()
                for X, y in batches_list:
                    loss = step(X, y)
                acc[name] = time.perf_counter() - t0
                last_loss[name] = loss
        for name in names:
            samples[name].append(acc[name] / len(batches_list))
        if after_repeat is not None:
            after_repeat()
    return {n: {"median": float(np.median(v)), "min": float(np.min(v)),
                "max": float(np.max(v)), "samples": v, "loss": last_loss[n]}
            for n, v in samples.items()}
