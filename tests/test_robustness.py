"""Robustness: bad input, numerical corner cases, faults in training and hostile files.

1. :data:`BAD` is a table-driven sweep over the public API: one row per (public function,
   class of bad input) with the call, the exception expected and a substring of its message
   (the argument's name and, where it is a value, what was received). Classes already tested
   elsewhere are not repeated here: :data:`ELSEWHERE` points to the tests that cover them, and
   :func:`test_elsewhere_points_to_existing_tests` keeps those pointers honest. Rows whose
   input was *not* refused cleanly before this sweep carry ``defect=`` (what happened then);
   the fix is in the package. ``PYTHONPATH=. python tests/test_robustness.py`` prints the
   summary table
   (classes tried per public function, outcome, defects fixed).
2. hypothesis tests of numerical corner cases: zero matrices, exactly rank-deficient starts,
   scale invariance from 1e-300 to 1e300, repeated singular values, m or n = 1, r = min(m, n),
   tall and wide shapes.
3. Faults in training: a process killed (SIGKILL) while writing a checkpoint, a failure
   between write and rename, corrupt and hostile checkpoints, divergence of the adaptive
   method.
4. Hostile files: no unrestricted unpickling anywhere in the package, IDX headers that lie by
   wrapping around int64, gzip bombs, ``.npz`` files with object arrays as checkpoints and as
   oracle golden files, manifest entries that point outside their folder.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Callable, NamedTuple
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lowrank_ref import LowRank, oracle, subflows
from lowrank_ref.__main__ import main
from lowrank_ref.checks import tolerance
from lowrank_ref.data import Dataset, batches, load, read_idx, subset, write_idx
from lowrank_ref.data import files as data_files
from lowrank_ref.dlrt import (AdaptiveBUG, Euclidean, FixedRankBUG, ParallelBUG, SOnly,
                              low_rank_mlp)
from lowrank_ref.methods import make_optimizer
from lowrank_ref.directions import Momentum, SGD
from lowrank_ref.integrators import (adaptive_bug_step, bug_step, parallel_bug_step,
                                     projector_splitting_step)
from lowrank_ref.lowrank import validate_lowrank
from lowrank_ref.conv import Conv2d, FactorizedConv2d, LowRankConv2d
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.adam import CarriedAdam, PaperAdam
from lowrank_ref.factorized import FactorizedDense, decayed_factors, split_factors
from lowrank_ref.pruning import prune_model, pruned_ranks
from lowrank_ref.networks import MaxPool2d, ReLU, Sequential, lenet5, lenet5_from_layers
from lowrank_ref.nn import MLP, Dense
from lowrank_ref.training import (CHECKPOINT_NAME, CheckpointError, TrainConfig, TrainingDiverged,
                                  load_checkpoint, train)
from lowrank_ref.truncation import truncate, truncation_rank
from strategies import orthonormal, seeds

ROOT = Path(__file__).resolve().parents[1]


# =============================================================================================
# 1. The table
# =============================================================================================

class Bad(NamedTuple):
    """One bad input: ``call(ctx)`` must raise ``exc`` whose message contains ``match``."""
    function: str           # public function, as named in the summary table
    klass: str              # class of bad input
    call: Callable
    exc: type
    match: str
    defect: str = ""        # before this sweep: what happened instead of a clean refusal


class ReportFailed(Exception):
    """Raised by :func:`failed_report` so that a failed oracle Report can sit in the table."""


class CLIExit(Exception):
    """Raised by :func:`cli`: the exit status and stderr of ``main(argv)``."""

    def __init__(self, code, err):
        super().__init__(f"exit {code}: {err}")
        self.code, self.err = code, err


def cli(*argv):
    """Run ``python -m lowrank_ref *argv`` in-process; always raises :class:`CLIExit`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:       # argparse errors
            code = exc.code
    raise CLIExit(code, err.getvalue() or out.getvalue())


def failed_report(report):
    if not report.passed:
        raise ReportFailed(str(report))
    return report


# --- inputs ------------------------------------------------------------------------------

def Y0(m=6, n=5, r=2, seed=0):
    return LowRank.random(np.random.default_rng(seed), m, n, r)


def with_(Y, **parts):
    d = Y._asdict()
    d.update(parts)
    return LowRank(**d)


def F_neg(t, A):
    return -A


def net(seed=1):
    """A low-rank MLP 4 -> 6 (rank 2) -> 3 (dense)."""
    rng = np.random.default_rng(seed)
    return MLP([LowRankDense(4, 6, 2, rng), Dense(6, 3, rng)])


def dense_net(seed=1):
    return MLP.dense([4, 6, 3], np.random.default_rng(seed))


XB = np.random.default_rng(2).standard_normal((5, 4))
YB = np.array([0, 1, 2, 0, 1])
W43 = np.random.default_rng(3).standard_normal((3, 4))
Y34 = LowRank.random(np.random.default_rng(4), 3, 4, 2)
UH, VH = np.eye(4, 2), np.eye(3, 2)   # orthonormal bases for truncate

# a tiny classification problem for the training tests
D_IN, K = 12, 4
SIZES = [D_IN, 16, 12, K]


def blobs(seed=0, n_train=96, n_test=32, n_valid=32):
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((K, D_IN))

    def draw(n):
        y = rng.integers(0, K, n)
        return centres[y] + 0.5 * rng.standard_normal((n, D_IN)), y
    tr, te = draw(n_train), draw(n_test)
    return Dataset(*tr, *te, "blobs", "test_robustness", *draw(n_valid))


DATA = blobs()


def quiet(line):
    pass


def cfg(out, **kw):
    base = dict(sizes=SIZES, epochs=1, batch_size=16, lr=0.05, dtype="float64",
                out=str(out), warmup=0, schedule="constant")  # lr independent of `epochs`
    base.update(kw)
    return TrainConfig(**base)


def idx_header(dims):
    return bytes([0, 0, 8, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


def write(ctx, name, content):
    p = ctx.tmp / name
    p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
    return p


def manifest_dir(ctx, name, manifest):
    d = ctx.tmp / name
    d.mkdir(exist_ok=True)
    (d / "manifest.json").write_text(manifest if isinstance(manifest, str)
                                     else json.dumps(manifest))
    return d


def a_file(ctx):
    return write(ctx, "a_file", "not a folder")


STEPS = {"projector_splitting_step": (projector_splitting_step, {}),
         "bug_step": (bug_step, {}),
         "adaptive_bug_step": (adaptive_bug_step, {"tol": 1e-3}),
         "parallel_bug_step": (parallel_bug_step, {"tol": 1e-3})}


def step(name, Y=None, F=F_neg, t0=0.0, h=0.1, **kw):
    fn, base = STEPS[name]
    return fn(Y0() if Y is None else Y, F, t0, h, **{**base, **kw})


def _integrator_rows(name):
    s = lambda **kw: (lambda ctx: step(name, **kw))  # noqa: E731
    y = Y0()
    rows = [
        Bad(name, "Y0 complex dtype", s(Y=with_(y, U=y.U.astype(complex))), TypeError,
            "Y0.U must be a real float array, got dtype complex128"),
        Bad(name, "Y0 object dtype", s(Y=with_(y, S=y.S.astype(object))), TypeError,
            "Y0.S must be a real float array, got dtype object"),
        Bad(name, "Y0 string dtype", s(Y=with_(y, V=y.V.astype(str))), TypeError,
            "Y0.V must be a real float array, got dtype <U"),
        Bad(name, "Y0 non-finite", s(Y=with_(y, S=y.S * np.nan)), ValueError,
            "Y0.S must be finite"),
        Bad(name, "Y0 rank 0", s(Y=LowRank(np.zeros((6, 0)), np.zeros((0, 0)), np.zeros((5, 0)))),
            ValueError, "Y0 must have rank >= 1"),
        Bad(name, "Y0 rank > min(m, n)", s(Y=LowRank(np.eye(2, 3), np.eye(3), np.eye(5, 3))),
            ValueError, "Y0 rank must be <= min(m, n) = 2, got 3"),
        Bad(name, "h bool", s(h=True), TypeError, "h must be a finite number > 0, got bool True"),
        Bad(name, "t0 wrong type", s(t0="0"), TypeError, "t0 must be a finite number, got str '0'"),
        Bad(name, "F returns object dtype", s(F=lambda t, A: A.astype(object)), TypeError,
            "F must return a real float array, got dtype object"),
        Bad(name, "F returns None", s(F=lambda t, A: None), TypeError,
            "F must return a real float array, got dtype object"),
        Bad(name, "F overflows Y0's dtype (float32)",
            s(Y=LowRank(*(a.astype(np.float32) for a in y)),
              F=lambda t, A: np.full(A.shape, 1e39)), ValueError,
            "F returned non-finite values at t=0.0 (expected a finite (6, 5) array in float32",
            defect="1e39 silently cast to inf in float32: " + (
                "non-finite factors returned" if name in ("projector_splitting_step", "bug_step")
                else "numpy LinAlgError 'SVD did not converge'")),
        Bad(name, "h too large: a substep overflows",
            s(F=lambda t, A: np.full(A.shape, 1e300), h=1e10), ValueError,
            "h = 10000000000.0 is too large for this F",
            defect=("non-finite factors returned" if name in ("projector_splitting_step",
                                                               "bug_step")
                    else "numpy LinAlgError 'SVD did not converge'")),
    ]
    if name in ("adaptive_bug_step", "parallel_bug_step"):
        rows += [
            Bad(name, "relative not a bool", s(relative="no"), TypeError,
                "relative must be a bool, got str",
                defect="any truthy value accepted as relative=True"),
            Bad(name, "tol infinite", s(tol=np.inf), ValueError,
                "tol must be a finite number >= 0, got inf"),
            Bad(name, "tol wrong type", s(tol="1e-3"), TypeError,
                "tol must be a finite number >= 0, got str '1e-3'"),
            Bad(name, "max_rank wrong type", s(max_rank="2"), TypeError,
                "max_rank must be an int >= 1 or None, got str '2'"),
            Bad(name, "min_rank bool", s(min_rank=True), TypeError,
                "min_rank must be an int >= 1, got bool True"),
            Bad(name, "unknown option", s(order=2), TypeError,
                "unexpected keyword argument 'order'"),
            Bad(name, "observer not callable", s(observer="print"), TypeError,
                "observer must be callable as observer(S_hat) or None, got str"),
        ]
    else:
        rows.append(Bad(name, "unknown option", s(tol=1e-3), TypeError,
                        "unexpected keyword argument 'tol'"))
    if name == "projector_splitting_step":
        rows += [Bad(name, "order not an int", s(order=2.0), TypeError,
                     "order must be an int, got float 2.0", defect="order=2.0 accepted"),
                 Bad(name, "order wrong type", s(order="1"), TypeError,
                     "order must be an int, got str '1'")]
    return rows


def _optimizer_step_rows(cls_name, make):
    st_ = lambda X=XB, y=YB: (lambda ctx: make().step(X, y))  # noqa: E731
    lay = "Dense" if cls_name == "Euclidean" else "LowRankDense"

    def set_lr(ctx):
        opt = make()
        opt.lr = -1.0
    return [
        Bad(cls_name, "step: X non-finite", st_(X=np.where(XB > 1, np.nan, XB)), ValueError,
            f"{lay}: X must be finite, got",
            defect=("a NaN loss (no error)" if cls_name != "AdaptiveBUG"
                    else "numpy LinAlgError 'SVD did not converge'")),
        Bad(cls_name, "step: X infinite", st_(X=np.full_like(XB, np.inf)), ValueError,
            f"{lay}: X must be finite, got 20 NaN/Inf entries",
            defect=("a NaN loss (no error)" if cls_name != "AdaptiveBUG"
                    else "numpy LinAlgError 'SVD did not converge'")),
        Bad(cls_name, "step: X complex dtype", st_(X=XB.astype(complex)), TypeError,
            f"{lay}: X must be a float array, got dtype complex128"),
        Bad(cls_name, "step: X wrong shape", st_(X=XB[:, :3]), ValueError,
            f"{lay}: X must have shape (batch, 4), got (5, 3)"),
        Bad(cls_name, "step: y float", st_(y=YB.astype(float)), TypeError,
            "labels must be an integer array, got dtype float64"),
        Bad(cls_name, "step: y out of range", st_(y=YB + 5), ValueError,
            "labels must be in [0, 3), got values in [5, 7]"),
        Bad(cls_name, "step: y wrong length", st_(y=YB[:3]), ValueError,
            "labels must have shape (5,), got (3,)"),
        Bad(cls_name, "step: empty batch", st_(X=XB[:0], y=YB[:0]), ValueError,
            "logits must have at least one row, got shape (0, 3)"),
        Bad(cls_name, "lr set to a bad value later", set_lr, ValueError,
            "lr must be a finite number > 0, got -1.0",
            defect="accepted: the next step went uphill"),
        Bad(cls_name, "loss_fn not callable", lambda ctx: make(loss_fn=3), TypeError,
            "loss_fn must be callable as loss_fn(outputs, y) -> 0-d Tensor (or None), got int",
            defect="accepted; the first step raised \"'int' object is not callable\""),
    ]


def _layer_rows():
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    lr = lambda: LowRankDense(4, 3, 2, rng())  # noqa: E731
    fd = LowRankDense.from_dense
    ff = LowRankDense.from_factors
    b3 = np.zeros(3)
    rows = [
        Bad("Dense", "dtype not a dtype", lambda ctx: Dense(3, 2, rng(), dtype="foo"), TypeError,
            "dtype must be float32 or float64, got 'foo'",
            defect="numpy's \"data type 'foo' not understood\" (argument not named)"),
        Bad("Dense", "dtype complex", lambda ctx: Dense(3, 2, rng(), dtype=complex), TypeError,
            "dtype must be float32 or float64, got complex128"),
        Bad("Dense", "X non-finite", lambda ctx: Dense(3, 2, rng())(np.full((2, 3), np.nan)),
            ValueError, "Dense: X must be finite, got 6 NaN/Inf entries",
            defect="NaN output (no error)"),
        Bad("Dense", "X object dtype", lambda ctx: Dense(3, 2, rng())(np.ones((2, 3), object)),
            TypeError, "Dense: X must be a float array, got dtype object"),
        Bad("Dense", "X string", lambda ctx: Dense(3, 2, rng())("abc"), TypeError,
            "Dense: X must be a float array, got dtype <U3"),
        Bad("Dense", "X None", lambda ctx: Dense(3, 2, rng())(None), TypeError,
            "Dense: X must be a float array, got dtype object"),
        Bad("Dense", "X 3-d", lambda ctx: Dense(3, 2, rng())(np.ones((2, 3, 1))), ValueError,
            "Dense: X must have shape (batch, 3), got (2, 3, 1)"),
        Bad("Dense", "init wrong type", lambda ctx: Dense(3, 2, rng(), init=None), ValueError,
            "init must be one of ('he', 'he_normal', 'glorot', 'torch'), got None"),
        # LowRankDense(...)
        Bad("LowRankDense", "rank 0", lambda ctx: LowRankDense(4, 3, 0, rng()), ValueError,
            "rank must be an int >= 1, got 0"),
        Bad("LowRankDense", "rank wrong type", lambda ctx: LowRankDense(4, 3, 2.0, rng()),
            TypeError, "rank must be an int >= 1, got float 2.0"),
        Bad("LowRankDense", "rng wrong type", lambda ctx: LowRankDense(4, 3, 2, 0), TypeError,
            "rng must be a numpy.random.Generator (np.random.default_rng(seed)), got int"),
        Bad("LowRankDense", "unknown spectrum",
            lambda ctx: LowRankDense(4, 3, 2, rng(), spectrum="flat"), ValueError,
            "spectrum must be one of ('decay', 'svd') or a DecaySpectrum, got 'flat'"),
        Bad("LowRankDense", "unknown init", lambda ctx: LowRankDense(4, 3, 2, rng(), init="x"),
            ValueError, "init must be one of ('he', 'he_normal', 'glorot', 'torch'), got 'x'"),
        Bad("LowRankDense", "dtype int", lambda ctx: LowRankDense(4, 3, 2, rng(), dtype=int),
            TypeError, "dtype must be float32 or float64, got int64"),
        Bad("LowRankDense", "dtype not a dtype",
            lambda ctx: LowRankDense(4, 3, 2, rng(), dtype="foo"), TypeError,
            "dtype must be float32 or float64, got 'foo'",
            defect="numpy's \"data type 'foo' not understood\" (argument not named)"),
        Bad("LowRankDense", "X non-finite", lambda ctx: lr()(np.full((2, 4), np.inf)),
            ValueError, "LowRankDense: X must be finite, got 8 NaN/Inf entries",
            defect="Inf/NaN output (no error)"),
        Bad("LowRankDense", "X complex", lambda ctx: lr()(np.ones((2, 4), complex)), TypeError,
            "LowRankDense: X must be a float array, got dtype complex128"),
        # from_dense
        Bad("LowRankDense.from_dense", "W complex", lambda ctx: fd(W43 + 0j, b3, 2), ValueError,
            "W must be a 2-d float32 or float64 array, got shape (3, 4) dtype complex128"),
        Bad("LowRankDense.from_dense", "W int", lambda ctx: fd(W43.astype(int), b3, 2),
            ValueError, "W must be a 2-d float32 or float64 array, got shape (3, 4) dtype int64"),
        Bad("LowRankDense.from_dense", "W object", lambda ctx: fd(W43.astype(object), b3, 2),
            ValueError, "dtype object"),
        Bad("LowRankDense.from_dense", "W string", lambda ctx: fd("abc", b3, 2), ValueError,
            "W must be a 2-d float32 or float64 array, got shape () dtype <U3"),
        Bad("LowRankDense.from_dense", "W None", lambda ctx: fd(None, b3, 2), ValueError,
            "got shape () dtype object"),
        Bad("LowRankDense.from_dense", "W 1-d", lambda ctx: fd(W43[0], b3, 2), ValueError,
            "got shape (4,)"),
        Bad("LowRankDense.from_dense", "W float16", lambda ctx: fd(W43.astype(np.float16), b3, 2),
            ValueError, "dtype float16",
            defect="numpy's 'array type float16 is unsupported in linalg'"),
        Bad("LowRankDense.from_dense", "W non-finite",
            lambda ctx: fd(np.where(W43 > 0, np.nan, W43), b3, 2), ValueError,
            "W must be finite, got", defect="numpy LinAlgError 'SVD did not converge'"),
        Bad("LowRankDense.from_dense", "W infinite", lambda ctx: fd(W43 * np.inf, b3, 2),
            ValueError, "W must be finite, got 12 NaN/Inf entries",
            defect="numpy LinAlgError 'SVD did not converge'"),
        Bad("LowRankDense.from_dense", "b non-finite", lambda ctx: fd(W43, b3 * np.nan, 2),
            ValueError, "b must be finite, got 3 non-finite entries",
            defect="accepted: a NaN bias"),
        Bad("LowRankDense.from_dense", "b complex", lambda ctx: fd(W43, b3 + 1j, 2), TypeError,
            "b must be a real float array, got dtype complex128",
            defect="imaginary part silently discarded (ComplexWarning)"),
        Bad("LowRankDense.from_dense", "b object", lambda ctx: fd(W43, np.array([None] * 3), 2),
            TypeError, "b must be a real float array, got dtype object",
            defect="accepted: None cast to a NaN bias"),
        Bad("LowRankDense.from_dense", "b string", lambda ctx: fd(W43, np.array(["a"] * 3), 2),
            TypeError, "b must be a real float array, got dtype <U1",
            defect="numpy's \"could not convert string to float\" (argument not named)"),
        Bad("LowRankDense.from_dense", "b wrong shape", lambda ctx: fd(W43, np.zeros(4), 2),
            ValueError, "b must have shape (3,), got (4,)"),
        Bad("LowRankDense.from_dense", "rank 0", lambda ctx: fd(W43, b3, 0), ValueError,
            "rank must be an int >= 1, got 0"),
        Bad("LowRankDense.from_dense", "rank > min(m, n)", lambda ctx: fd(W43, b3, 4),
            ValueError, "rank must be <= min(n_out, n_in) = 3 of the weight matrix (3, 4), got 4"),
        Bad("LowRankDense.from_dense", "rank wrong type", lambda ctx: fd(W43, b3, "2"),
            TypeError, "rank must be an int >= 1, got str '2'"),
        # from_factors
        Bad("LowRankDense.from_factors", "Y not a LowRank", lambda ctx: ff(np.eye(3), b3),
            TypeError, "Y must be a LowRank(U, S, V), got ndarray"),
        Bad("LowRankDense.from_factors", "Y not orthonormal",
            lambda ctx: ff(with_(Y34, U=2 * Y34.U), b3), ValueError,
            "Y.U must have orthonormal columns"),
        Bad("LowRankDense.from_factors", "Y non-finite",
            lambda ctx: ff(with_(Y34, S=np.full_like(Y34.S, np.inf)), b3), ValueError,
            "Y.S must be finite"),
        Bad("LowRankDense.from_factors", "Y complex",
            lambda ctx: ff(with_(Y34, V=Y34.V + 0j), b3), TypeError,
            "Y.V must be a real float array, got dtype complex128"),
        Bad("LowRankDense.from_factors", "b non-finite", lambda ctx: ff(Y34, np.full(3, np.inf)),
            ValueError, "b must be finite", defect="accepted: an infinite bias"),
        Bad("LowRankDense.from_factors", "b complex", lambda ctx: ff(Y34, np.ones(3, complex)),
            TypeError, "b must be a real float array, got dtype complex128",
            defect="imaginary part silently discarded (ComplexWarning)"),
        Bad("LowRankDense.from_factors", "b string", lambda ctx: ff(Y34, np.array(["a"] * 3)),
            TypeError, "b must be a real float array, got dtype <U1",
            defect="numpy's \"could not convert string to float\" (argument not named)"),
        Bad("LowRankDense.from_factors", "b wrong shape", lambda ctx: ff(Y34, np.ones((3, 1))),
            ValueError, "b must be 1-d, got shape (3, 1)"),
        # set_mode
        Bad("LowRankDense.set_mode", "unknown mode", lambda ctx: lr().set_mode("Q"),
            ValueError, "mode must be one of ('W', 'K', 'L', 'S'), got 'Q'"),
        Bad("LowRankDense.set_mode", "mode wrong type", lambda ctx: lr().set_mode(["W"]),
            ValueError, "mode must be one of ('W', 'K', 'L', 'S'), got ['W']"),
        Bad("LowRankDense.set_mode", "S_hat wrong shape",
            lambda ctx: lr().set_mode("S", S_hat=np.eye(3)), ValueError,
            "S_hat must have shape (2, 2), got (3, 3)"),
        Bad("LowRankDense.set_mode", "S_hat non-finite",
            lambda ctx: lr().set_mode("S", S_hat=np.full((2, 2), np.nan)), ValueError,
            "S_hat must be finite, got 4 non-finite entries", defect="accepted: a NaN core"),
        Bad("LowRankDense.set_mode", "S_hat complex",
            lambda ctx: lr().set_mode("S", S_hat=np.eye(2) + 1j), TypeError,
            "S_hat must be a real float array, got dtype complex128",
            defect="imaginary part silently discarded (ComplexWarning)"),
        Bad("LowRankDense.set_mode", "S_hat string",
            lambda ctx: lr().set_mode("S", S_hat=np.array([["a", "b"], ["c", "d"]])), TypeError,
            "S_hat must be a real float array, got dtype <U1",
            defect="numpy's \"could not convert string to float\" (argument not named)"),
        Bad("LowRankDense.set_mode", "S_hat 1-d", lambda ctx: lr().set_mode("S", S_hat=[1.0, 2.0]),
            ValueError, "S_hat must be 2-d, got shape (2,)",
            defect="AttributeError \"'list' object has no attribute 'shape'\""),
        Bad("LowRankDense.set_mode", "U_hat wrong shape",
            lambda ctx: lr().set_mode("S", U_hat=np.eye(5, 2)), ValueError,
            "U_hat must have 3 rows, got shape (5, 2)",
            defect="accepted; the next forward failed inside matmul"),
        Bad("LowRankDense.set_mode", "V_hat 1-d", lambda ctx: lr().set_mode("S", V_hat=np.ones(4)),
            ValueError, "V_hat must be 2-d, got shape (4,)",
            defect="IndexError 'tuple index out of range'"),
        Bad("LowRankDense.set_mode", "option of another mode",
            lambda ctx: lr().set_mode("K", U_hat=np.eye(3, 2)), ValueError,
            "U_hat only apply to mode 'S', got mode 'K'", defect="U_hat silently ignored"),
        Bad("LowRankDense.set_factors", "Y not a LowRank",
            lambda ctx: lr().set_factors(np.eye(3)), TypeError,
            "Y must be a LowRank(U, S, V) of arrays, got ndarray",
            defect="AttributeError \"'numpy.ndarray' object has no attribute 'U'\""),
        Bad("LowRankDense.set_factors", "inconsistent shapes",
            lambda ctx: lr().set_factors(LowRank(np.eye(3, 2), np.eye(3), np.eye(4, 2))),
            ValueError, "factors must have shapes (n_out, r), (r, r), (n_in, r)",
            defect="accepted; the next forward failed inside matmul"),
    ]
    return rows


def _optimizer_rows():
    mk = make_optimizer
    rows = [
        Bad("make_optimizer", "unknown method", lambda ctx: mk("sgd2", net(), 0.1), ValueError,
            "method must be one of ('dense', 'fixed', 'adaptive', 'vanilla', 'sonly', 'parallel'), got 'sgd2'"),
        Bad("make_optimizer", "method wrong type", lambda ctx: mk(None, net(), 0.1), ValueError,
            "method must be one of ('dense', 'fixed', 'adaptive', 'vanilla', 'sonly', 'parallel'), got None"),
        Bad("make_optimizer", "lr wrong type", lambda ctx: mk("fixed", net(), "0.1"), TypeError,
            "lr must be a finite number > 0, got str '0.1'"),
        Bad("make_optimizer", "lr non-finite", lambda ctx: mk("fixed", net(), np.nan), ValueError,
            "lr must be a finite number > 0, got nan"),
        Bad("make_optimizer", "lr 0", lambda ctx: mk("fixed", net(), 0), ValueError,
            "lr must be a finite number > 0, got 0"),
        Bad("make_optimizer", "momentum NaN", lambda ctx: mk("fixed", net(), 0.1, momentum=np.nan),
            ValueError, "momentum must be a finite number >= 0 and < 1, got nan"),
        Bad("make_optimizer", "momentum negative",
            lambda ctx: mk("fixed", net(), 0.1, momentum=-0.1), ValueError,
            "momentum must be a finite number >= 0 and < 1, got -0.1"),
        Bad("make_optimizer", "tau NaN", lambda ctx: mk("adaptive", net(), 0.1, tau=np.nan),
            ValueError, "tau must be a finite number >= 0, got nan"),
        Bad("make_optimizer", "tau wrong type", lambda ctx: mk("adaptive", net(), 0.1, tau="0.1"),
            TypeError, "tau must be a finite number >= 0, got str '0.1'"),
        Bad("make_optimizer", "unknown option for the method (tau)",
            lambda ctx: mk("fixed", net(), 0.1, tau=0.1), ValueError,
            "tau is only used by methods ('adaptive', 'parallel'), got tau=0.1 for method "
            "'fixed'",
            defect="silently ignored"),
        Bad("make_optimizer", "unknown option for the method (max_rank)",
            lambda ctx: mk("dense", dense_net(), 0.1, max_rank=3), ValueError,
            "max_rank is only used by methods ('adaptive', 'parallel'), got max_rank=3 for "
            "method 'dense'",
            defect="silently ignored"),
        Bad("make_optimizer", "passes bool",
            lambda ctx: mk("adaptive", net(), 0.1, tau=0.1, passes=True), TypeError,
            "passes must be an int, got bool True", defect="accepted as passes=1"),
        Bad("make_optimizer", "model wrong type", lambda ctx: mk("fixed", None, 0.1), TypeError,
            "model must be a Network (an MLP or a Sequential), got NoneType"),
        Bad("Euclidean", "model wrong type", lambda ctx: Euclidean("x", 0.1), TypeError,
            "model must be a Network (an MLP or a Sequential), got str"),
        Bad("Euclidean", "model with low-rank layers", lambda ctx: Euclidean(net(), 0.1),
            ValueError, "model must have no low-rank layers for Euclidean",
            defect="accepted: trained only the biases of the low-rank layers"),
        Bad("Euclidean", "lr infinite", lambda ctx: Euclidean(dense_net(), np.inf), ValueError,
            "lr must be a finite number > 0, got inf"),
        Bad("Euclidean", "direction wrong type",
            lambda ctx: Euclidean(dense_net(), 0.1, direction="adam"), TypeError,
            "direction must be a Direction (SGD, Momentum, CarriedAdam, PaperAdam) or None, "
            "got str"),
        Bad("FixedRankBUG", "dense model", lambda ctx: FixedRankBUG(dense_net(), 0.1), ValueError,
            "model must contain at least one low-rank layer"),
        Bad("FixedRankBUG", "momentum >= 1", lambda ctx: FixedRankBUG(net(), 0.1, momentum=1.5),
            ValueError, "momentum must be a finite number >= 0 and < 1, got 1.5"),
        Bad("FixedRankBUG", "momentum and direction",
            lambda ctx: FixedRankBUG(net(), 0.1, momentum=0.9, direction=SGD()), ValueError,
            "momentum is a shorthand for direction=Momentum(momentum): give one of them"),
        Bad("FixedRankBUG", "the paper's Adam",
            lambda ctx: FixedRankBUG(net(), 0.1, direction=PaperAdam()), ValueError,
            "direction PaperAdam (the paper's per-variable Adam) works with AdaptiveBUG"),
        Bad("FixedRankBUG", "a rule of another optimiser",
            lambda ctx: [FixedRankBUG(net(), 0.1, direction=d) for d in [Momentum(0.5)] * 2],
            ValueError, "is already used by another optimiser"),
        Bad("AdaptiveBUG", "tau None", lambda ctx: AdaptiveBUG(net(), 0.1, None), TypeError,
            "tau must be a finite number >= 0, got NoneType None"),
        Bad("AdaptiveBUG", "tau negative", lambda ctx: AdaptiveBUG(net(), 0.1, -0.1), ValueError,
            "tau must be a finite number >= 0, got -0.1"),
        Bad("AdaptiveBUG", "max_rank 0", lambda ctx: AdaptiveBUG(net(), 0.1, 0.1, max_rank=0),
            ValueError, "max_rank must be an int >= 1 or None, got 0"),
        Bad("AdaptiveBUG", "min_rank wrong type",
            lambda ctx: AdaptiveBUG(net(), 0.1, 0.1, min_rank="1"), TypeError,
            "min_rank must be an int >= 1, got str '1'"),
        Bad("AdaptiveBUG", "passes not an int",
            lambda ctx: AdaptiveBUG(net(), 0.1, 0.1, passes=1.0), TypeError,
            "passes must be an int, got float 1.0", defect="accepted"),
        Bad("AdaptiveBUG", "observer not callable",
            lambda ctx: AdaptiveBUG(net(), 0.1, 0.1, observer="print"), TypeError,
            "observer must be callable as observer(S_hat) or None, got str"),
        Bad("AdaptiveBUG", "the paper's Adam with 3 passes",
            lambda ctx: AdaptiveBUG(net(), 0.1, 0.1, passes=3, direction=PaperAdam()),
            ValueError, "passes must be 1 with PaperAdam"),
        Bad("ParallelBUG", "tau missing", lambda ctx: ParallelBUG(net(), 0.1), TypeError,
            "missing 1 required positional argument: 'tau'"),
        Bad("ParallelBUG", "tau infinite", lambda ctx: ParallelBUG(net(), 0.1, np.inf),
            ValueError, "tau must be a finite number >= 0, got inf"),
        Bad("ParallelBUG", "min_rank above max_rank",
            lambda ctx: ParallelBUG(net(), 0.1, 0.1, min_rank=3, max_rank=2), ValueError,
            "max_rank must be an int >= 3 or None, got 2"),
        Bad("ParallelBUG", "dense model", lambda ctx: ParallelBUG(dense_net(), 0.1, 0.1),
            ValueError, "model must contain at least one low-rank layer"),
        Bad("ParallelBUG", "the paper's Adam",
            lambda ctx: ParallelBUG(net(), 0.1, 0.1, direction=PaperAdam()), ValueError,
            "works with AdaptiveBUG (the published loop) and Euclidean only, got ParallelBUG"),
        Bad("SOnly", "lr negative", lambda ctx: SOnly(net(), -1), ValueError,
            "lr must be a finite number > 0, got -1"),
        Bad("SOnly", "dense model", lambda ctx: SOnly(dense_net(), 0.1), ValueError,
            "model must contain at least one low-rank layer"),
        Bad("SOnly", "the paper's Adam", lambda ctx: SOnly(net(), 0.1, direction=PaperAdam()),
            ValueError, "got SOnly: use CarriedAdam"),
        Bad("Momentum", "mu = 1", lambda ctx: Momentum(1.0), ValueError,
            "momentum must be a finite number >= 0 and < 1, got 1.0"),
        Bad("Momentum", "mu a string", lambda ctx: Momentum("0.9"), TypeError,
            "momentum must be a finite number >= 0 and < 1, got str '0.9'"),
    ]
    rows += _optimizer_step_rows("Euclidean", lambda **kw: Euclidean(dense_net(), 0.1, **kw))
    rows += _optimizer_step_rows("FixedRankBUG", lambda **kw: FixedRankBUG(net(), 0.1, **kw))
    rows += _optimizer_step_rows("AdaptiveBUG", lambda **kw: AdaptiveBUG(net(), 0.1, 0.1, **kw))
    rows += _optimizer_step_rows("ParallelBUG", lambda **kw: ParallelBUG(net(), 0.1, 0.1, **kw))
    rows += _optimizer_step_rows("SOnly", lambda **kw: SOnly(net(), 0.1, **kw))
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    rows += [
        Bad("low_rank_mlp", "sizes a string", lambda ctx: low_rank_mlp("784,10", 2, rng()),
            TypeError, "sizes must be a sequence of at least 2 ints >= 1, got str '784,10'",
            defect="int() error \"invalid literal for int() with base 10: ','\""),
        Bad("low_rank_mlp", "sizes not a sequence", lambda ctx: low_rank_mlp(5, 2, rng()),
            TypeError, "sizes must be a sequence of at least 2 ints >= 1, got int 5",
            defect="\"'int' object is not iterable\" (argument not named)"),
        Bad("low_rank_mlp", "sizes None", lambda ctx: low_rank_mlp(None, 2, rng()), TypeError,
            "sizes must be a sequence of at least 2 ints >= 1, got NoneType None",
            defect="\"'NoneType' object is not iterable\" (argument not named)"),
        Bad("low_rank_mlp", "sizes floats", lambda ctx: low_rank_mlp([4.7, 3.2, 2], 2, rng()),
            TypeError, "sizes[0] must be an int >= 1, got float 4.7",
            defect="silently truncated to [4, 3, 2]"),
        Bad("low_rank_mlp", "sizes strings", lambda ctx: low_rank_mlp(["a", 3], 2, rng()),
            TypeError, "sizes[0] must be an int >= 1, got str 'a'",
            defect="int() error \"invalid literal for int() with base 10: 'a'\""),
        Bad("low_rank_mlp", "sizes with 0", lambda ctx: low_rank_mlp([4, 0, 2], 2, rng()),
            ValueError, "sizes[1] must be an int >= 1, got 0"),
        Bad("low_rank_mlp", "sizes too short", lambda ctx: low_rank_mlp([4], 2, rng()),
            ValueError, "sizes must list at least 2 ints >= 1, got [4]"),
        Bad("low_rank_mlp", "rank 0", lambda ctx: low_rank_mlp([4, 3, 2], 0, rng()), ValueError,
            "rank must be an int >= 1, got 0"),
        Bad("low_rank_mlp", "rank wrong type", lambda ctx: low_rank_mlp([4, 3, 2], "2", rng()),
            TypeError, "rank must be an int >= 1, got str '2'"),
        Bad("low_rank_mlp", "rng wrong type", lambda ctx: low_rank_mlp([4, 3, 2], 2, 0),
            TypeError, "rng must be a numpy.random.Generator (np.random.default_rng(seed)), got int"),
        Bad("low_rank_mlp", "dtype int", lambda ctx: low_rank_mlp([4, 3, 2], 2, rng(), dtype=int),
            TypeError, "dtype must be float32 or float64, got int64"),
        Bad("low_rank_mlp", "dense_last not a bool",
            lambda ctx: low_rank_mlp([4, 3, 2], 2, rng(), dense_last="no"), TypeError,
            "dense_last must be a bool, got str", defect="any truthy value accepted as True"),
        Bad("low_rank_mlp", "unknown spectrum",
            lambda ctx: low_rank_mlp([4, 3, 2], 2, rng(), spectrum="x"), ValueError,
            "spectrum must be one of ('decay', 'svd') or a DecaySpectrum, got 'x'"),
    ]
    return rows


def _lowrank_truncate_rows():
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    y = Y0()
    S2 = np.eye(2)
    return [
        Bad("LowRank.random", "dtype int", lambda ctx: LowRank.random(rng(), 3, 3, 1, dtype=int),
            TypeError, "dtype must be float32 or float64, got int64",
            defect="accepted: factors truncated to integers (U, V not orthonormal)"),
        Bad("LowRank.random", "dtype complex",
            lambda ctx: LowRank.random(rng(), 3, 3, 1, dtype=complex), TypeError,
            "dtype must be float32 or float64, got complex128", defect="accepted"),
        Bad("LowRank.random", "dtype not a dtype",
            lambda ctx: LowRank.random(rng(), 3, 3, 1, dtype="foo"), TypeError,
            "dtype must be float32 or float64, got 'foo'",
            defect="numpy's \"data type 'foo' not understood\" (argument not named)"),
        Bad("LowRank.random", "m wrong type", lambda ctx: LowRank.random(rng(), "3", 3, 1),
            TypeError, "m must be an int >= 1, got str '3'"),
        Bad("LowRank.random", "singular_values complex",
            lambda ctx: LowRank.random(rng(), 3, 3, 1, singular_values=[1j]), TypeError,
            "singular_values must be a real float array, got dtype complex128"),
        Bad("LowRank.random", "singular_values string",
            lambda ctx: LowRank.random(rng(), 3, 3, 1, singular_values=["a"]), TypeError,
            "singular_values must be a real float array, got dtype <U1"),
        Bad("LowRank.random", "singular_values infinite",
            lambda ctx: LowRank.random(rng(), 3, 3, 1, singular_values=[np.inf]), ValueError,
            "singular_values must be finite"),
        Bad("LowRank.random", "singular_values 2-d",
            lambda ctx: LowRank.random(rng(), 3, 3, 1, singular_values=[[1.0]]), ValueError,
            "singular_values must be 1-d, got shape (1, 1)"),
        Bad("validate_lowrank", "object dtype",
            lambda ctx: validate_lowrank(with_(y, U=y.U.astype(object))), TypeError,
            "Y0.U must be a real float array, got dtype object"),
        Bad("validate_lowrank", "string dtype",
            lambda ctx: validate_lowrank(with_(y, S=y.S.astype(str))), TypeError,
            "Y0.S must be a real float array, got dtype <U"),
        Bad("validate_lowrank", "datetime dtype",
            lambda ctx: validate_lowrank(with_(y, V=y.V.astype("M8[s]"))), TypeError,
            "Y0.V must be a real float array, got dtype datetime64[s]"),
        Bad("validate_lowrank", "3-d factor", lambda ctx: validate_lowrank(with_(y, U=y.U[None])),
            ValueError, "Y0.U must be 2-d, got shape (1, 6, 2)"),
        Bad("validate_lowrank", "ragged factor",
            lambda ctx: validate_lowrank(([[1.0], [1.0, 2.0]], y.S, y.V)), TypeError,
            "Y0.U must be a 2-d array, got list"),
        Bad("validate_lowrank", "wrong tuple length", lambda ctx: validate_lowrank((y.U, y.S)),
            TypeError, "Y0 must be a LowRank(U, S, V), got tuple"),
        # truncate
        Bad("truncate", "relative not a bool", lambda ctx: truncate(UH, S2, VH, 0.1, relative="no"),
            TypeError, "relative must be a bool, got str 'no'",
            defect="any truthy value accepted as relative=True"),
        Bad("truncate", "relative None", lambda ctx: truncate(UH, S2, VH, 0.1, relative=None),
            TypeError, "relative must be a bool, got NoneType None",
            defect="accepted as relative=False"),
        Bad("truncate", "S_hat complex", lambda ctx: truncate(UH, S2 + 0j, VH, 0.1), TypeError,
            "S_hat must be a real float array, got dtype complex128"),
        Bad("truncate", "U_hat object dtype", lambda ctx: truncate(UH.astype(object), S2, VH, 0.1),
            TypeError, "U_hat must be a real float array, got dtype object"),
        Bad("truncate", "V_hat string", lambda ctx: truncate(UH, S2, VH.astype(str), 0.1),
            TypeError, "V_hat must be a real float array, got dtype <U"),
        Bad("truncate", "U_hat infinite",
            lambda ctx: truncate(np.full_like(UH, np.inf), S2, VH, 0.1),
            ValueError, "U_hat must be finite"),
        Bad("truncate", "U_hat 1-d", lambda ctx: truncate(UH[:, 0], S2, VH, 0.1), ValueError,
            "U_hat must be 2-d, got shape (4,)"),
        Bad("truncate", "rank > min(m, n) (U_hat wider than tall)",
            lambda ctx: truncate(np.eye(2, 4), np.eye(4), np.eye(5, 4), 0.1), ValueError,
            "U_hat must have at least as many rows as columns, got (2, 4)"),
        Bad("truncate", "tol complex", lambda ctx: truncate(UH, S2, VH, 0.1 + 0j), TypeError,
            "tol must be a finite number >= 0, got complex (0.1+0j)"),
        Bad("truncate", "min_rank wrong type", lambda ctx: truncate(UH, S2, VH, 0.1, min_rank="1"),
            TypeError, "min_rank must be an int >= 1, got str '1'"),
        Bad("truncate", "min_rank NaN", lambda ctx: truncate(UH, S2, VH, 0.1, min_rank=np.nan),
            TypeError, "min_rank must be an int >= 1, got float nan"),
        # truncation_rank (public, used by tutorials and benchmarks)
        Bad("truncation_rank", "tol NaN", lambda ctx: truncation_rank(np.array([1.0]), np.nan),
            ValueError, "tol must be a finite number >= 0, got nan", defect="accepted (rank 1)"),
        Bad("truncation_rank", "tol negative", lambda ctx: truncation_rank(np.array([1.0]), -1.0),
            ValueError, "tol must be a finite number >= 0, got -1.0", defect="accepted"),
        Bad("truncation_rank", "sigma 2-d", lambda ctx: truncation_rank(np.ones((2, 2)), 0.1),
            ValueError, "sigma must be 1-d, got shape (2, 2)", defect="accepted"),
        Bad("truncation_rank", "sigma non-finite",
            lambda ctx: truncation_rank(np.array([np.nan, 1.0]), 0.1), ValueError,
            "sigma must be finite", defect="accepted (rank 1)"),
        Bad("truncation_rank", "sigma string", lambda ctx: truncation_rank(np.array(["a"]), 0.1),
            TypeError, "sigma must be a real float array, got dtype <U1",
            defect="numpy's \"could not convert string to float\" (argument not named)"),
        Bad("truncation_rank", "sigma negative or ascending",
            lambda ctx: truncation_rank(np.array([1.0, 2.0]), 0.1), ValueError,
            "sigma must be singular values: >= 0 and in descending order",
            defect="accepted: a tail that is not the tail"),
        Bad("truncation_rank", "min_rank 0",
            lambda ctx: truncation_rank(np.array([1.0]), 0.1, min_rank=0), ValueError,
            "min_rank must be an int >= 1, got 0", defect="accepted (rank 0 possible)"),
        Bad("truncation_rank", "relative not a bool",
            lambda ctx: truncation_rank(np.array([1.0]), 0.1, relative="yes"), TypeError,
            "relative must be a bool, got str", defect="any truthy value accepted"),
    ]


def _data_rows():
    X, y = np.zeros((4, 2)), np.zeros(4, int)
    ds = Dataset(X, y, X, y, "mnist", "toy")
    return [
        Bad("data.load", "name None", lambda ctx: load(None), ValueError,
            "name must be one of ('mnist', 'fashion-mnist'), got None"),
        Bad("data.load", "data_dir wrong type", lambda ctx: load("mnist", data_dir=["x"]),
            TypeError, "data_dir must be a path (str or os.PathLike) or None, got list ['x']"),
        Bad("data.load", "dtype complex", lambda ctx: load("mnist", dtype=complex), TypeError,
            "dtype must be float32 or float64, got complex128"),
        Bad("data.batches", "batch_size wrong type", lambda ctx: batches(X, y, "2"), TypeError,
            "batch_size must be an int >= 1, got str '2'"),
        Bad("data.batches", "X None", lambda ctx: batches(None, y, 2), TypeError,
            "X must be an ndarray with at least one axis, got NoneType"),
        Bad("data.subset", "n_train bool", lambda ctx: subset(ds, True, 1), TypeError,
            "n_train must be an int >= 1 and <= 4, got bool True"),
        Bad("data.subset", "n_test negative", lambda ctx: subset(ds, 1, -1), ValueError,
            "n_test must be an int >= 1 and <= 4, got -1"),
        Bad("data.subset", "rng wrong type",
            lambda ctx: subset(ds, 1, 1, rng=np.random.RandomState(0)), TypeError,
            "rng must be a numpy.random.Generator (np.random.default_rng(seed)), got RandomState"),
        Bad("data.read_idx", "path wrong type", lambda ctx: read_idx(5), TypeError,
            "path must be a path (str or os.PathLike), got int 5",
            defect="pathlib's 'expected str, bytes or os.PathLike object, not int'"),
        Bad("data.read_idx", "sha256 wrong type",
            lambda ctx: read_idx(write(ctx, "ok-idx", idx_header([2]) + bytes(2)), sha256=5),
            TypeError, "sha256 must be a hex str or None, got int",
            defect="reported as a sha256 mismatch against 5"),
        Bad("data.read_idx", "lying header: sizes wrap around int64 to the file's size",
            lambda ctx: read_idx(write(ctx, "wrap-idx", idx_header([2 ** 16] * 4))), ValueError,
            "truncated IDX file: header says shape (65536, 65536, 65536, 65536) = "
            "18446744073709551616 bytes",
            defect="int64 product wrapped to 0 = the data size; numpy's 'cannot reshape "
                   "array of size 0' (file not named)"),
        Bad("data.read_idx", "lying header: more dimensions than numpy supports",
            lambda ctx: read_idx(write(ctx, "dims-idx", bytes([0, 0, 8, 255]) + bytes(4 * 255))),
            ValueError, "dims-idx: unsupported IDX shape",
            defect="numpy's 'maximum supported dimension' error (file not named)"),
        Bad("data.read_idx", "gzip bomb",
            lambda ctx: _with_small_gzip_cap(
                lambda: read_idx(write(ctx, "bomb-idx.gz", gzip.compress(
                    idx_header([5000]) + bytes(5000))))),
            ValueError, "bomb-idx.gz: decompresses to more than 1000 bytes",
            defect="decompressed without limit (memory)"),
    ]


def _with_small_gzip_cap(fn):
    with mock.patch.object(data_files, "MAX_DECOMPRESSED_BYTES", 1000):
        return fn()


def _oracle_rows():
    ref = oracle.reference("truncate")
    return [
        Bad("oracle.cases", "family wrong type", lambda ctx: oracle.cases(np.array(["truncate"])),
            ValueError, "family must be one of ('truncate', ",
            defect="numpy's \"unhashable type: 'numpy.ndarray'\" (argument not named)"),
        Bad("oracle.cases", "family None", lambda ctx: oracle.cases(None), ValueError,
            "got None"),
        Bad("oracle.check", "candidate not callable", lambda ctx: oracle.check("truncate", 3),
            TypeError, "candidate must be callable as candidate(**case.inputs) -> dict, got int",
            defect="every case reported as a failure \"'int' object is not callable\""),
        Bad("oracle.check", "dtype not a dtype",
            lambda ctx: oracle.check("truncate", ref, dtype="foo"), TypeError,
            "dtype must be float32 or float64, got 'foo'",
            defect="numpy's \"data type 'foo' not understood\" (argument not named)"),
        Bad("oracle.check", "dtype complex",
            lambda ctx: oracle.check("truncate", ref, dtype=complex), TypeError,
            "dtype must be float32 or float64, got complex128"),
        Bad("oracle.check", "golden not a list",
            lambda ctx: oracle.check("truncate", ref, golden=3), TypeError,
            "golden must be a list of Case, got int",
            defect="\"'int' object is not iterable\" (argument not named)"),
        Bad("oracle.check", "golden items not Cases",
            lambda ctx: oracle.check("truncate", ref, golden=["abc"]), TypeError,
            "golden must be a list of Case, got items of type str",
            defect="AttributeError \"'str' object has no attribute 'family'\""),
        Bad("oracle.check_case", "case not a Case",
            lambda ctx: oracle.check_case({"name": "truncate.x"}, ref), TypeError,
            "case must be a Case (from oracle.cases or oracle.load), got dict"),
        Bad("oracle.check_case", "dtype float16",
            lambda ctx: oracle.check_case(oracle.cases("truncate")[0], ref, dtype=np.float16),
            TypeError, "dtype must be float32 or float64, got float16"),
        Bad("oracle.reference", "passes not an int",
            lambda ctx: oracle.reference("dlrt_layer_step", passes="3"), TypeError,
            "passes must be an int, got str '3'"),
        Bad("oracle.reference", "passes unknown",
            lambda ctx: oracle.reference("dlrt_layer_step", passes=2), ValueError,
            "passes must be 1 or 3, got 2", defect="accepted; every case failed later"),
        Bad("oracle.export", "directory wrong type", lambda ctx: oracle.export(None), TypeError,
            "directory must be a path (str or os.PathLike), got NoneType None",
            defect="pathlib's 'expected str, bytes or os.PathLike object, not NoneType'"),
        Bad("oracle.export", "directory is a file", lambda ctx: oracle.export(a_file(ctx)),
            FileExistsError, "a_file"),
        Bad("oracle.verify", "directory wrong type", lambda ctx: oracle.verify(3), TypeError,
            "directory must be a path (str or os.PathLike), got int 3",
            defect="pathlib's 'expected str, bytes or os.PathLike object, not int'"),
        Bad("oracle.verify", "manifest not an object",
            lambda ctx: failed_report(oracle.verify(manifest_dir(ctx, "m1", [1, 2]))),
            ReportFailed, "manifest.json: expected an object with a list 'cases', got list",
            defect="AttributeError \"'list' object has no attribute 'get'\""),
        Bad("oracle.verify", "manifest entries not objects",
            lambda ctx: failed_report(oracle.verify(manifest_dir(ctx, "m2", {"cases": [3]}))),
            ReportFailed, "cases[0] must be an object, got int",
            defect="AttributeError \"'int' object has no attribute 'get'\""),
        Bad("oracle.verify", "manifest file entry outside the folder",
            lambda ctx: failed_report(oracle.verify(manifest_dir(ctx, "m3", {"cases": [
                {"name": "truncate.x", "file": "../../etc/passwd"}]}))),
            ReportFailed, "cases[0].file must be a file name in",
            defect="the path was followed (an existing file outside the folder is read "
                   "and hashed)"),
        Bad("oracle.verify", "manifest not JSON",
            lambda ctx: failed_report(oracle.verify(manifest_dir(ctx, "m4", "{not json"))),
            ReportFailed, "manifest.json: not a JSON manifest"),
        Bad("oracle.load", "manifest not JSON",
            lambda ctx: oracle.load(manifest_dir(ctx, "m5", "{not json")), ValueError,
            "manifest.json: not a JSON manifest",
            defect="bare JSONDecodeError (file not named)"),
        Bad("oracle.load", "manifest not an object",
            lambda ctx: oracle.load(manifest_dir(ctx, "m6", "[1, 2]")), ValueError,
            "expected an object with a list 'cases', got list",
            defect="TypeError 'list indices must be integers or slices, not str'"),
        Bad("oracle.load", "manifest file entry an absolute path",
            lambda ctx: oracle.load(manifest_dir(ctx, "m7", {"cases": [
                {"name": "truncate.x", "file": "/etc/passwd"}]})), ValueError,
            "cases[0].file must be a file name in", defect="np.load of /etc/passwd"),
        Bad("oracle.load", "golden file not an npz",
            lambda ctx: oracle.load(_golden_dir(ctx, "m8", b"garbage")), ValueError,
            "bad.npz: not a golden file of lowrank_ref",
            defect="numpy's 'pickled data' ValueError (file not named)"),
    ]


def _golden_dir(ctx, name, content):
    d = manifest_dir(ctx, name, {"cases": [{"name": "truncate.bad", "family": "truncate",
                                            "file": "bad.npz", "tolerance": {}}]})
    (d / "bad.npz").write_bytes(content)
    return d


def _cli_rows():
    return [
        Bad("cli", "unknown command", lambda ctx: cli("fly"), CLIExit, "invalid choice: 'fly'"),
        Bad("cli", "unknown option", lambda ctx: cli("train", "--bogus", "1"), CLIExit,
            "unrecognized arguments: --bogus 1"),
        Bad("cli train", "int option given a float", lambda ctx: cli("train", "--epochs", "1.5"),
            CLIExit, "argument --epochs: invalid int value: '1.5'"),
        Bad("cli train", "lr NaN", lambda ctx: cli("train", "--lr", "nan"), CLIExit,
            "lr must be a finite number > 0, got nan"),
        Bad("cli train", "lr infinite", lambda ctx: cli("train", "--lr", "inf"), CLIExit,
            "lr must be a finite number > 0, got inf"),
        Bad("cli train", "lr <= 0", lambda ctx: cli("train", "--lr", "0"), CLIExit,
            "lr must be a finite number > 0, got 0.0"),
        Bad("cli train", "tau NaN",
            lambda ctx: cli("train", "--method", "adaptive", "--tau", "nan"),
            CLIExit, "tau must be a finite number >= 0 or None, got nan"),
        Bad("cli train", "tau negative",
            lambda ctx: cli("train", "--method", "adaptive", "--tau", "-0.1"), CLIExit,
            "tau must be a finite number >= 0 or None, got -0.1"),
        Bad("cli train", "momentum NaN", lambda ctx: cli("train", "--momentum", "nan"), CLIExit,
            "momentum must be a finite number >= 0 and < 1, got nan"),
        Bad("cli train", "unknown choice", lambda ctx: cli("train", "--dtype", "float16"),
            CLIExit, "argument --dtype: invalid choice: 'float16'"),
        Bad("cli train", "option of another method",
            lambda ctx: cli("train", "--method", "fixed", "--tau", "0.1"), CLIExit,
            "tau is only used by methods ('adaptive', 'parallel')"),
        Bad("cli train", "hidden width 0", lambda ctx: cli("train", "--hidden", "500,0"), CLIExit,
            "hidden widths must be >= 1"),
        Bad("cli train", "max_rank < min_rank",
            lambda ctx: cli("train", "--method", "adaptive", "--tau", "0.1", "--min-rank", "5",
                            "--max-rank", "2"), CLIExit, "max_rank must be an int >= 5 or None, got 2"),
        Bad("cli train", "out is a file",
            lambda ctx: cli("train", "--out", a_file(ctx) / "sub"), CLIExit,
            "Not a directory", defect="traceback (NotADirectoryError), exit status 1"),
        Bad("cli train", "resume from a corrupt checkpoint",
            lambda ctx: cli("train", "--resume", write(ctx, "corrupt.npz", b"PK\x03\x04junk")),
            CLIExit, "corrupt.npz is corrupt or truncated"),
        Bad("cli sweep", "taus NaN", lambda ctx: cli("sweep", "--taus", "0.1,nan"), CLIExit,
            "taus[1] must be a finite number >= 0, got nan"),
        Bad("cli sweep", "taus not numbers", lambda ctx: cli("sweep", "--taus", "a,b"), CLIExit,
            "argument --taus: expected comma-separated numbers"),
        Bad("cli sweep", "results is a file",
            lambda ctx: cli("sweep", "--taus", "0.1", "--results", a_file(ctx)), CLIExit,
            "Not a directory", defect="traceback (NotADirectoryError), exit status 1"),
        Bad("cli figures", "unknown choice", lambda ctx: cli("figures", "--only", "all"), CLIExit,
            "argument --only: invalid choice: 'all'"),
        Bad("cli figures", "out is a file",
            lambda ctx: cli("figures", "--only", "integrators", "--fast", "--out", a_file(ctx)),
            CLIExit, "out_dir must be a folder (created if missing), got the file",
            defect="traceback (FileExistsError) after computing the experiments, exit status 1"),
        Bad("cli oracle", "missing action", lambda ctx: cli("oracle"), CLIExit,
            "the following arguments are required: action"),
        Bad("cli oracle", "export to a file", lambda ctx: cli("oracle", "export", a_file(ctx)),
            CLIExit, "File exists", defect="traceback (FileExistsError), exit status 1"),
        Bad("cli oracle", "verify a folder without golden files",
            lambda ctx: cli("oracle", "verify", ctx.tmp / "nowhere"), CLIExit,
            "no manifest.json in"),
        Bad("cli oracle", "verify a malformed manifest",
            lambda ctx: cli("oracle", "verify", manifest_dir(ctx, "m9", "[]")), CLIExit,
            "expected an object with a list 'cases'",
            defect="traceback (AttributeError), exit status 1"),
    ]


def _train_data_rows():
    """``train(config, data=...)``: bad arrays are refused before the first step."""
    def run(ctx, **parts):
        ds = DATA._replace(**parts)
        return train(cfg(ctx.tmp / "data-run"), log=quiet, data=ds)
    X = DATA.X_train
    return [
        Bad("train (data)", "X non-finite", lambda ctx: run(ctx, X_train=np.where(
            X > 2.5, np.nan, X)), ValueError, "X_train must be finite, got",
            defect="reported as a diverged run ('the loss is nan ... try a smaller lr') "
                   "at the first batch holding a NaN"),
        Bad("train (data)", "X complex", lambda ctx: run(ctx, X_test=DATA.X_test + 1j),
            TypeError, "X_test must be a real float array, got dtype complex128",
            defect="imaginary part silently discarded (ComplexWarning)"),
        Bad("train (data)", "X strings", lambda ctx: run(ctx, X_train=X.astype(str)), TypeError,
            "X_train must be a real float array, got dtype <U",
            defect="accepted (strings parsed as floats)"),
        Bad("train (data)", "y float", lambda ctx: run(ctx, y_train=DATA.y_train * 1.0),
            TypeError, "y_train must hold integer labels in [0, sizes[-1] = 4), got dtype "
                       "float64"),
        Bad("train (data)", "y out of range", lambda ctx: run(ctx, y_test=DATA.y_test + K),
            ValueError, "y_test must hold integer labels in [0, sizes[-1] = 4)"),
        Bad("train (data)", "wrong number of features", lambda ctx: run(ctx, X_train=X[:, :5]),
            ValueError, "sizes[0] = 12 must equal the number of input features, but X_train "
                        "has shape (96, 5)"),
        Bad("train (data)", "not a Dataset", lambda ctx: train(cfg(ctx.tmp / "d2"), log=quiet,
                                                              data=(X, DATA.y_train)),
            TypeError, "data must be a lowrank_ref.data.Dataset"),
    ]


def _comparison_rows():
    """The public functions of the comparisons (issue 14): vanilla layers, decayed starts,
    pruning, Adam, the TrainConfig options and the compare/prune commands."""
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    y34 = LowRank.random(np.random.default_rng(4), 3, 4, 2)
    low = lambda: low_rank_mlp([4, 6, 6, 3], 2, rng())  # noqa: E731
    return [
        Bad("FactorizedDense", "rank > min(n_in, n_out)", lambda ctx: FactorizedDense(4, 3, 4, rng()),
            ValueError, "rank must be <= min(n_in, n_out) = 3, got 4"),
        Bad("FactorizedDense", "n_in float", lambda ctx: FactorizedDense(4.0, 3, 2, rng()),
            TypeError, "n_in must be an int >= 1, got float 4.0"),
        Bad("FactorizedDense", "decay < 1", lambda ctx: FactorizedDense(4, 3, 2, rng(), decay=0.5),
            ValueError, "decay must be a finite number >= 1, got 0.5"),
        Bad("FactorizedDense", "rng a seed", lambda ctx: FactorizedDense(4, 3, 2, 0), TypeError,
            "rng must be a numpy.random.Generator"),
        Bad("FactorizedDense", "X of the wrong width",
            lambda ctx: FactorizedDense(4, 3, 2, rng())(np.ones((2, 5))), ValueError,
            "FactorizedDense: X must have shape (batch, 4), got (2, 5)"),
        Bad("FactorizedDense.from_factors", "different numbers of columns",
            lambda ctx: FactorizedDense.from_factors(np.ones((3, 2)), np.ones((4, 1)), np.zeros(3)),
            ValueError, "U and V must have the same number (>= 1) of columns"),
        Bad("FactorizedDense.from_factors", "U complex",
            lambda ctx: FactorizedDense.from_factors(np.ones((3, 2)) + 1j, np.ones((4, 2)),
                                                     np.zeros(3)),
            TypeError, "U must be a real float array, got dtype complex128"),
        Bad("FactorizedDense.from_factors", "b of the wrong shape",
            lambda ctx: FactorizedDense.from_factors(np.ones((3, 2)), np.ones((4, 2)), np.zeros(4)),
            ValueError, "b must have shape (3,), got (4,)"),
        Bad("FactorizedDense.from_lowrank", "not a LowRank",
            lambda ctx: FactorizedDense.from_lowrank(np.eye(3), np.zeros(3)), TypeError,
            "Y must be a LowRank(U, S, V), got ndarray"),
        Bad("decayed_factors", "rank > min(n_out, n_in)",
            lambda ctx: decayed_factors(3, 4, 4, 2.0, rng()), ValueError,
            "rank must be an int >= 1 and <= 3, got 4"),
        Bad("decayed_factors", "decay NaN", lambda ctx: decayed_factors(3, 4, 2, np.nan, rng()),
            ValueError, "decay must be a finite number >= 1, got nan"),
        Bad("decayed_factors", "norm 0", lambda ctx: decayed_factors(3, 4, 2, 2.0, rng(), norm=0),
            ValueError, "norm must be a finite number > 0 or None, got 0.0"),
        Bad("decayed_factors", "dtype int", lambda ctx: decayed_factors(3, 4, 2, 2.0, rng(), int),
            TypeError, "dtype must be float32 or float64"),
        Bad("split_factors", "U not orthonormal",
            lambda ctx: split_factors(with_(y34, U=2 * y34.U)), ValueError,
            "Y.U must have orthonormal columns"),
        Bad("prune_model", "a low-rank network", lambda ctx: prune_model(net(), ranks=[1]),
            ValueError, "model must be a dense network (only Dense layers)"),
        Bad("prune_model", "ranks and tau", lambda ctx: prune_model(dense_net(), ranks=[2], tau=0.1),
            ValueError, "give exactly one of ranks and tau"),
        Bad("prune_model", "rank above the layer", lambda ctx: prune_model(dense_net(), ranks=[5]),
            ValueError, "ranks[0] must be <= min(n_in, n_out) = 4, got 5"),
        Bad("pruned_ranks", "tau string", lambda ctx: pruned_ranks(dense_net(), "0.1"), TypeError,
            "tau must be a finite number >= 0, got str '0.1'"),
        Bad("Euclidean", "Adam on a low-rank network",
            lambda ctx: Euclidean(net(), lr=0.01, direction=CarriedAdam()), ValueError,
            "model must have no low-rank layers for Euclidean"),
        Bad("CarriedAdam", "beta2 = 1", lambda ctx: CarriedAdam(beta2=1.0),
            ValueError, "beta2 must be a finite number >= 0 and < 1, got 1.0"),
        Bad("PaperAdam", "rank above the cap",
            lambda ctx: AdaptiveBUG(MLP([LowRankDense(4, 6, 3, rng()), Dense(6, 3, rng())]),
                                    0.01, tau=0.1, direction=PaperAdam()),
            ValueError, "layer 0 has rank 3, above its cap 2"),
        Bad("PaperAdam", "eps negative", lambda ctx: PaperAdam(eps=-1.0),
            ValueError, "eps must be a finite number > 0, got -1.0"),
        Bad("CarriedAdam", "tau None",
            lambda ctx: AdaptiveBUG(low(), 0.01, None, direction=CarriedAdam()),
            TypeError, "tau must be a finite number >= 0, got NoneType None"),
        Bad("CarriedAdam", "a dense network",
            lambda ctx: AdaptiveBUG(dense_net(), 0.01, 0.1, direction=CarriedAdam()),
            ValueError, "model must contain at least one low-rank layer"),
        Bad("TrainConfig", "ranks for an adaptive run",
            lambda ctx: TrainConfig(method="adaptive", tau=0.1, ranks=[2, 2, 2, 2]), ValueError,
            "ranks is only used by methods ('fixed', 'vanilla', 'sonly')"),
        Bad("TrainConfig", "ranks of the wrong length",
            lambda ctx: TrainConfig(method="fixed", ranks=[2, 2]), ValueError,
            "ranks must give one rank per hidden layer (4), got [2, 2]"),
        Bad("TrainConfig", "decay for a dense run", lambda ctx: TrainConfig(decay=2.0), ValueError,
            "decay is only used by methods"),
        Bad("TrainConfig", "unknown init", lambda ctx: TrainConfig(init="zeros"), ValueError,
            "init must be one of"),
        Bad("TrainConfig", "prune_from without ranks",
            lambda ctx: TrainConfig(method="fixed", prune_from="results"), ValueError,
            "prune_from needs exactly one of ranks and prune_tau"),
        Bad("TrainConfig", "prune_tau without prune_from",
            lambda ctx: TrainConfig(method="fixed", prune_tau=0.1), ValueError,
            "prune_tau is only used with prune_from"),
        Bad("TrainConfig", "prune_from not a path",
            lambda ctx: TrainConfig(method="fixed", ranks=[2] * 4, prune_from=3), TypeError,
            "prune_from must be"),
        Bad("TrainConfig", "optimizer adam with momentum",
            lambda ctx: TrainConfig(optimizer="adam", momentum=0.9), ValueError,
            "momentum is only used by optimizer 'sgd'"),
        Bad("cli compare", "unknown experiment", lambda ctx: cli("compare", "all"), CLIExit,
            "invalid choice: 'all'"),
        Bad("cli compare", "an option the experiment sets",
            lambda ctx: cli("compare", "methods", "--optimizer", "adam", "--results",
                            ctx.tmp / "cmp"), CLIExit,
            "options must not set ['optimizer']: the experiment sets them per run"),
        Bad("cli compare", "decays below 1",
            lambda ctx: cli("compare", "illconditioned", "--decays", "0.5", "--results",
                            ctx.tmp / "cmp"), CLIExit,
            "decays[0] must be a finite number >= 1, got 0.5"),
        Bad("cli compare", "methods for lenet5",
            lambda ctx: cli("compare", "methods", "--arch", "lenet5", "--results", ctx.tmp / "cmp"),
            CLIExit, "compare methods is built for arch 'mlp' (pruning and per-layer ranks), got "
                     "arch 'lenet5'"),
        Bad("cli compare", "hidden widths for lenet5",
            lambda ctx: cli("compare", "illconditioned", "--arch", "lenet5", "--hidden", "100",
                            "--results", ctx.tmp / "cmp"), CLIExit,
            "--hidden is only used by --arch mlp"),
        Bad("lenet5_from_layers", "a stride-2 convolution",
            lambda ctx: lenet5_from_layers([Conv2d(1, 20, 5, rng(), stride=2),
                                            Conv2d(20, 50, 5, rng()), Dense(800, 500, rng()),
                                            Dense(500, 10, rng())]), ValueError,
            "layers[0] must be a 5 x 5 convolution with stride 1 and padding 0, got "
            "(kernel_size, stride, padding) = ((5, 5), 2, 0)"),
        Bad("cli prune", "no dense run", lambda ctx: cli("prune", ctx.tmp / "nowhere", "--ranks",
                                                        "2,2,2,2"), CLIExit, "no checkpoint at"),
        Bad("cli train", "ranks for adaptive",
            lambda ctx: cli("train", "--method", "adaptive", "--tau", "0.1", "--ranks", "2,2,2,2"),
            CLIExit, "ranks is only used by methods"),
    ]


def _conv_rows():
    """Convolutional layers, Sequential, lenet5, and LeNet5 runs (issue 13); the vanilla
    convolution and LeNet5's ill-conditioning options."""
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    conv = lambda: Conv2d(2, 3, 3, rng())  # noqa: E731
    lrc = lambda: LowRankConv2d(2, 3, 3, 2, rng())  # noqa: E731
    seq = lambda: Sequential([Conv2d(1, 2, 3, rng()), ReLU(), MaxPool2d(2)],  # noqa: E731
                             input_shape=(1, 6, 6))
    X = np.ones((2, 2, 5, 5))
    W = np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    fd, ff = LowRankConv2d.from_dense, LowRankConv2d.from_factors
    Y = LowRank.random(np.random.default_rng(2), 3, 18, 2)

    def lenet_run(ctx, **kw):
        c = TrainConfig(arch="lenet5", epochs=1, batch_size=16, out=str(ctx.tmp / "lenet"), **kw)
        return train(c, log=quiet, data=DATA)
    return [
        Bad("Conv2d", "kernel_size 0", lambda ctx: Conv2d(2, 3, 0, rng()), ValueError,
            "kernel_size must be an int >= 1, got 0"),
        Bad("Conv2d", "kernel_size float", lambda ctx: Conv2d(2, 3, 3.0, rng()), TypeError,
            "kernel_size must be an int >= 1 or a pair of them, got float 3.0"),
        Bad("Conv2d", "kernel_size triple", lambda ctx: Conv2d(2, 3, (3, 3, 3), rng()),
            TypeError, "kernel_size must be an int >= 1 or a pair of them, got tuple"),
        Bad("Conv2d", "in_channels 0", lambda ctx: Conv2d(0, 3, 3, rng()), ValueError,
            "in_channels must be an int >= 1, got 0"),
        Bad("Conv2d", "stride 0", lambda ctx: Conv2d(2, 3, 3, rng(), stride=0), ValueError,
            "stride must be an int >= 1, got 0"),
        Bad("Conv2d", "padding negative", lambda ctx: Conv2d(2, 3, 3, rng(), padding=-1),
            ValueError, "padding must be an int >= 0, got -1"),
        Bad("Conv2d", "padding float", lambda ctx: Conv2d(2, 3, 3, rng(), padding=1.0),
            TypeError, "padding must be an int >= 0, got float 1.0"),
        Bad("Conv2d", "rng wrong type", lambda ctx: Conv2d(2, 3, 3, 0), TypeError,
            "rng must be a numpy.random.Generator"),
        Bad("Conv2d", "X 2-d", lambda ctx: conv()(np.ones((2, 50))), ValueError,
            "Conv2d: X must have shape (batch, 2, h, w), got (2, 50)"),
        Bad("Conv2d", "X wrong channels", lambda ctx: conv()(np.ones((2, 3, 5, 5))), ValueError,
            "Conv2d: X must have shape (batch, 2, h, w), got (2, 3, 5, 5)"),
        Bad("Conv2d", "X non-finite", lambda ctx: conv()(X * np.nan), ValueError,
            "Conv2d: X must be finite, got 100 NaN/Inf entries"),
        Bad("Conv2d", "X float32", lambda ctx: conv()(X.astype(np.float32)), TypeError,
            "Conv2d: X has dtype float32 but the parameters are float64"),
        Bad("Conv2d", "X complex", lambda ctx: conv()(X + 0j), TypeError,
            "Conv2d: X must be a float array, got dtype complex128"),
        Bad("Conv2d", "image smaller than the kernel", lambda ctx: conv()(np.ones((1, 2, 2, 2))),
            ValueError, "conv2d: kernel (kh, kw) = (3, 3) is larger than the padded input"),
        Bad("LowRankConv2d", "rank > min(c_out, c_in kh kw)",
            lambda ctx: LowRankConv2d(2, 3, 3, 4, rng()), ValueError,
            "rank must be <= min(n_in, n_out) = 3, got 4"),
        Bad("LowRankConv2d", "rank float", lambda ctx: LowRankConv2d(2, 3, 3, 2.0, rng()),
            TypeError, "rank must be an int >= 1, got float 2.0"),
        Bad("LowRankConv2d", "unknown spectrum",
            lambda ctx: LowRankConv2d(2, 3, 3, 2, rng(), spectrum="flat"), ValueError,
            "spectrum must be one of ('decay', 'svd') or a DecaySpectrum, got 'flat'"),
        Bad("LowRankConv2d", "X wrong channels", lambda ctx: lrc()(np.ones((2, 1, 5, 5))),
            ValueError, "LowRankConv2d: X must have shape (batch, 2, h, w), got (2, 1, 5, 5)"),
        Bad("LowRankConv2d", "X non-finite", lambda ctx: lrc()(X * np.inf), ValueError,
            "LowRankConv2d: X must be finite, got 100 NaN/Inf entries"),
        Bad("LowRankConv2d", "image smaller than the kernel",
            lambda ctx: lrc()(np.ones((1, 2, 2, 2))), ValueError,
            "unfold: kernel (kh, kw) = (3, 3) is larger than the padded input"),
        Bad("LowRankConv2d", "unknown mode", lambda ctx: lrc().set_mode("Q"), ValueError,
            "mode must be one of ('W', 'K', 'L', 'S'), got 'Q'"),
        Bad("LowRankConv2d.from_dense", "W 2-d", lambda ctx: fd(W[:, :, 0, 0], np.zeros(3), 2),
            ValueError, "W must be 4-d, got shape (3, 2)"),
        Bad("LowRankConv2d.from_dense", "W complex", lambda ctx: fd(W + 1j, np.zeros(3), 2),
            TypeError, "W must be a real float array, got dtype complex128"),
        Bad("LowRankConv2d.from_dense", "W non-finite", lambda ctx: fd(W * np.nan, np.zeros(3), 2),
            ValueError, "W must be finite, got 54 non-finite entries"),
        Bad("LowRankConv2d.from_dense", "b wrong shape", lambda ctx: fd(W, np.zeros(2), 2),
            ValueError, "b must have shape (3,), got (2,)"),
        Bad("LowRankConv2d.from_dense", "rank > min", lambda ctx: fd(W, np.zeros(3), 4),
            ValueError, "rank must be <= min(n_out, n_in) = 3 of the weight matrix (3, 18), "
                        "got 4"),
        Bad("LowRankConv2d.from_dense", "stride 0", lambda ctx: fd(W, np.zeros(3), 2, stride=0),
            ValueError, "stride must be an int >= 1, got 0"),
        Bad("Conv2d.from_weights", "W 3-d", lambda ctx: Conv2d.from_weights(W[0], np.zeros(3)),
            ValueError, "W must be 4-d, got shape (2, 3, 3)"),
        Bad("Conv2d.from_weights", "W string", lambda ctx: Conv2d.from_weights("W", np.zeros(3)),
            TypeError, "W must be a real float array, got dtype <U1"),
        Bad("Conv2d.from_weights", "b non-finite",
            lambda ctx: Conv2d.from_weights(W, np.full(3, np.nan)), ValueError,
            "b must be finite, got 3 non-finite entries"),
        Bad("Conv2d.from_weights", "padding negative",
            lambda ctx: Conv2d.from_weights(W, np.zeros(3), padding=-1), ValueError,
            "padding must be an int >= 0, got -1"),
        Bad("LowRankConv2d.from_factors", "rows not a multiple of kh kw",
            lambda ctx: ff(Y, np.zeros(3), 4), ValueError,
            "Y.V must have c_in * kh * kw rows (a multiple of kh * kw = 16), got 18"),
        Bad("LowRankConv2d.from_factors", "Y not orthonormal",
            lambda ctx: ff(LowRank(2 * Y.U, Y.S, Y.V), np.zeros(3), 3), ValueError,
            "Y.U must have orthonormal columns"),
        Bad("LowRankConv2d.from_factors", "Y not a LowRank", lambda ctx: ff(W, np.zeros(3), 3),
            TypeError, "Y must be a LowRank(U, S, V), got ndarray"),
        Bad("LowRankConv2d.from_factors", "kernel_size None",
            lambda ctx: ff(Y, np.zeros(3), None), TypeError,
            "kernel_size must be an int >= 1 or a pair of them, got NoneType None"),
        Bad("Sequential", "empty", lambda ctx: Sequential([]), ValueError,
            "modules must contain at least one module, got an empty sequence"),
        Bad("Sequential", "not a sequence", lambda ctx: Sequential(conv()), TypeError,
            "modules must be a sequence of modules, got Conv2d"),
        Bad("Sequential", "a module without forward_array",
            lambda ctx: Sequential([conv(), object()]), TypeError,
            "modules[1] must have __call__, parameters() and forward_array(), got object"),
        Bad("Sequential", "no layer with parameters", lambda ctx: Sequential([ReLU()]),
            ValueError, "modules must contain at least one layer with parameters"),
        Bad("Sequential", "mixed dtypes",
            lambda ctx: Sequential([conv(), Conv2d(3, 1, 1, rng(), dtype=np.float32)]),
            TypeError, "modules: all parameters must share one dtype"),
        Bad("Sequential", "input_shape with 0", lambda ctx: Sequential([conv()], input_shape=(2, 0)),
            ValueError, "input_shape[1] must be an int >= 1, got 0"),
        Bad("Sequential", "X of the wrong shape", lambda ctx: seq()(np.ones((2, 1, 5, 6))),
            ValueError, "Sequential: X must have shape (batch, 1, 6, 6), got (2, 1, 5, 6)"),
        Bad("Sequential.predict", "X non-finite",
            lambda ctx: seq().predict(np.full((2, 1, 6, 6), np.nan)), ValueError,
            "Sequential.predict: X must be finite, got 72 NaN/Inf entries"),
        Bad("Sequential.predict", "X int", lambda ctx: seq().predict(np.ones((2, 1, 6, 6), int)),
            TypeError, "Sequential.predict: X must be a float array, got dtype int64"),
        Bad("Sequential.predict", "batch_size 0",
            lambda ctx: seq().predict(np.ones((2, 1, 6, 6)), batch_size=0), ValueError,
            "batch_size must be an int >= 1, got 0"),
        Bad("MaxPool2d", "size 0", lambda ctx: MaxPool2d(0), ValueError,
            "size must be an int >= 1, got 0"),
        Bad("MaxPool2d", "stride float", lambda ctx: MaxPool2d(2, 1.5), TypeError,
            "stride must be an int >= 1, got float 1.5"),
        Bad("lenet5", "ranks 0", lambda ctx: lenet5(rng(), ranks=0), ValueError,
            "ranks must be an int >= 1, got 0"),
        Bad("lenet5", "ranks of 2 layers", lambda ctx: lenet5(rng(), ranks=(3, 4)), ValueError,
            "ranks must list 3 ranks (two convolutions and the first linear layer), got [3, 4]"),
        Bad("lenet5", "ranks float", lambda ctx: lenet5(rng(), ranks=2.5), TypeError,
            "ranks must be an int >= 1, got float 2.5"),
        Bad("lenet5", "dtype float16", lambda ctx: lenet5(rng(), dtype=np.float16), TypeError,
            "dtype must be float32 or float64, got float16"),
        Bad("TrainConfig", "arch unknown", lambda ctx: TrainConfig(arch="vgg"), ValueError,
            "arch must be one of ('mlp', 'lenet5'), got 'vgg'"),
        Bad("TrainConfig", "sizes for lenet5", lambda ctx: TrainConfig(arch="lenet5", sizes=[4, 2]),
            ValueError, "sizes is only used by arch 'mlp' (the layers of LeNet5 are fixed)"),
        Bad("train (data)", "lenet5 on rows that are not 28 x 28 images",
            lambda ctx: lenet_run(ctx), ValueError,
            "arch 'lenet5' takes images of 1 x 28 x 28 = 784 pixels as rows of 784 features, "
            "but X_train has shape (96, 12)"),
        Bad("sweep", "seeds repeated",
            lambda ctx: training_sweep([0.1], TrainConfig(method="adaptive", tau=0.1),
                                       ctx.tmp, seeds=[0, 0]), ValueError,
            "seeds must be a non-empty sequence of distinct ints, got [0, 0]"),
        Bad("sweep", "seeds negative",
            lambda ctx: training_sweep([0.1], TrainConfig(method="adaptive", tau=0.1),
                                       ctx.tmp, seeds=[-1]), ValueError,
            "seeds[0] must be an int >= 0, got -1"),
        Bad("sweep", "seeds a string",
            lambda ctx: training_sweep([0.1], TrainConfig(method="adaptive", tau=0.1),
                                       ctx.tmp, seeds="01"), TypeError,
            "seeds must be a sequence of ints >= 0 or None, got str"),
        Bad("TrainConfig", "sonly for lenet5",
            lambda ctx: TrainConfig(arch="lenet5", method="sonly"), ValueError,
            "method must be one of ('dense', 'fixed', 'adaptive', 'vanilla', 'parallel') for "
            "arch 'lenet5', got 'sonly'"),
        Bad("TrainConfig", "per-layer ranks for lenet5",
            lambda ctx: TrainConfig(arch="lenet5", method="fixed", ranks=[2, 2, 2]), ValueError,
            "options ['ranks'] apply to arch 'mlp' only (per-layer ranks, pruning and init "
            "are built for the MLP), got {'ranks': [2, 2, 2]} for arch 'lenet5'"),
        Bad("TrainConfig", "the paper's Adam for lenet5 fixed",
            lambda ctx: TrainConfig(arch="lenet5", method="fixed", optimizer="adam"),
            ValueError, "optimizer 'adam' is implemented for methods ('dense', 'adaptive', "
            "'vanilla'), got method 'fixed'"),
        Bad("TrainConfig", "decay for lenet5 adaptive",
            lambda ctx: TrainConfig(arch="lenet5", method="adaptive", tau=0.1, decay=2.0),
            ValueError, "decay is only used by methods ('fixed', 'vanilla') for arch 'lenet5', "
            "got decay=2.0 for method 'adaptive'"),
        Bad("TrainConfig", "decay < 1 for lenet5",
            lambda ctx: TrainConfig(arch="lenet5", method="vanilla", decay=0.5), ValueError,
            "decay must be"),
        Bad("FactorizedConv2d", "rank > min(c_out, c_in kh kw)",
            lambda ctx: FactorizedConv2d(2, 3, 3, 4, rng()), ValueError,
            "rank must be <= min(n_in, n_out) = 3, got 4"),
        Bad("FactorizedConv2d", "rank float", lambda ctx: FactorizedConv2d(2, 3, 3, 2.0, rng()),
            TypeError, "rank must be an int >= 1, got float 2.0"),
        Bad("FactorizedConv2d", "decay < 1",
            lambda ctx: FactorizedConv2d(2, 3, 3, 2, rng(), decay=0.5), ValueError,
            "decay must be"),
        Bad("FactorizedConv2d", "rng a seed", lambda ctx: FactorizedConv2d(2, 3, 3, 2, 0),
            TypeError, "rng must be a numpy.random.Generator"),
        Bad("FactorizedConv2d", "X wrong channels",
            lambda ctx: FactorizedConv2d(2, 3, 3, 2, rng())(np.ones((2, 3, 5, 5))), ValueError,
            "FactorizedConv2d: X must have shape (batch, 2, h, w), got (2, 3, 5, 5)"),
        Bad("FactorizedConv2d", "X float32",
            lambda ctx: FactorizedConv2d(2, 3, 3, 2, rng())(X.astype(np.float32)), TypeError,
            "FactorizedConv2d: X has dtype float32 but the parameters are float64"),
        Bad("FactorizedConv2d.from_factors", "V rows not a multiple of kh kw",
            lambda ctx: FactorizedConv2d.from_factors(np.ones((3, 2)), np.ones((10, 2)),
                                                      np.zeros(3), 3), ValueError,
            "V must have c_in * kh * kw rows (a multiple of kh * kw = 9), got 10"),
        Bad("FactorizedConv2d.from_factors", "different numbers of columns",
            lambda ctx: FactorizedConv2d.from_factors(np.ones((3, 2)), np.ones((18, 1)),
                                                      np.zeros(3), 3), ValueError,
            "U and V must have the same number (>= 1) of columns"),
        Bad("FactorizedConv2d.from_factors", "kernel_size 0",
            lambda ctx: FactorizedConv2d.from_factors(np.ones((3, 2)), np.ones((18, 2)),
                                                      np.zeros(3), 0), ValueError,
            "kernel_size must be an int >= 1, got 0"),
        Bad("FactorizedConv2d.from_lowrank", "not a LowRank",
            lambda ctx: FactorizedConv2d.from_lowrank(np.eye(3), np.zeros(3), 3), TypeError,
            "Y must be a LowRank"),
        Bad("lenet5_from_layers", "three layers",
            lambda ctx: lenet5_from_layers([Conv2d(1, 20, 5, rng())] * 3), ValueError,
            "layers must hold the 4 layers of LeNet5, got 3"),
        Bad("lenet5_from_layers", "a layer of the wrong shape",
            lambda ctx: lenet5_from_layers([Conv2d(1, 20, 3, rng())] * 4), ValueError,
            "layers[0] must have the matrix (n_out, n_in) = (20, 25), got (20, 9) (Conv2d)"),
        Bad("lenet5_from_layers", "not a sequence", lambda ctx: lenet5_from_layers(3),
            TypeError, "layers must be a sequence of 4 layers, got int"),
        Bad("cli train", "unknown arch", lambda ctx: cli("train", "--arch", "vgg"), CLIExit,
            "argument --arch: invalid choice: 'vgg'"),
        Bad("cli train", "hidden widths for lenet5",
            lambda ctx: cli("train", "--arch", "lenet5", "--hidden", "100"), CLIExit,
            "--hidden is only used by --arch mlp (the layers of LeNet5 are fixed), got "
            "--hidden 100 with --arch lenet5"),
        Bad("cli sweep", "seeds repeated",
            lambda ctx: cli("sweep", "--taus", "0.1", "--seeds", "1,1"), CLIExit,
            "argument --seeds: seeds must be distinct ints >= 0, got '1,1'"),
        Bad("cli sweep", "seeds not ints", lambda ctx: cli("sweep", "--taus", "0.1", "--seeds", "a"),
            CLIExit, "argument --seeds: expected comma-separated ints"),
    ]


def training_sweep(taus, base, results_dir, **kw):
    from lowrank_ref.training import sweep
    return sweep(taus, base, results_dir=results_dir, log=quiet, data=DATA, **kw)


BAD = ([r for name in STEPS for r in _integrator_rows(name)] + _lowrank_truncate_rows()
       + _layer_rows() + _optimizer_rows() + _data_rows() + _oracle_rows() + _cli_rows()
       + _train_data_rows() + _comparison_rows() + _conv_rows())

#: (public function, bad-input class) -> the existing test that covers it (not repeated above).
ELSEWHERE = {
    ("LowRank.random", "r = 0 / r > min(m, n) / m = 0"): "test_lowrank.py::test_random_bad_input",
    ("LowRank.random", "m float"): "test_lowrank.py::test_random_bad_input",
    ("LowRank.random", "singular_values wrong shape / negative / NaN"):
        "test_lowrank.py::test_random_bad_input",
    ("LowRank.random", "rng wrong type"): "test_lowrank.py::test_random_requires_generator",
    ("validate_lowrank", "not orthonormal (scaled, sheared, random)"):
        "test_lowrank.py::test_validate_rejects_bad_input_naming_argument",
    ("validate_lowrank", "inconsistent shapes / rank 0 / rank > min(m, n)"):
        "test_lowrank.py::test_validate_rejects_bad_input_naming_argument",
    ("validate_lowrank", "NaN / Inf / 1-d factor"):
        "test_lowrank.py::test_validate_rejects_bad_input_naming_argument",
    ("validate_lowrank", "not a LowRank / complex / None"):
        "test_lowrank.py::test_validate_type_errors",
    ("truncate", "tol negative / NaN / inf / str / bool"):
        "test_truncation.py::test_truncate_bad_tol",
    ("truncate", "U_hat / V_hat not orthonormal, shape mismatch, empty or NaN S_hat, "
                 "min_rank 0, max_rank < min_rank or float"):
        "test_truncation.py::test_truncate_bad_input_names_argument",
    ("integrators (all four)", "Y0 not orthonormal / not a LowRank, F not callable, h <= 0 / "
                               "NaN / inf / str, t0 NaN, unknown inner, substeps 0 / float, "
                               "F wrong shape / NaN / Inf / complex"):
        "test_integrators.py::test_bad_input",
    ("adaptive_bug_step, parallel_bug_step", "tol negative / NaN / None, min_rank 0, "
                                             "max_rank < min_rank"):
        "test_integrators.py::test_bad_tolerance_and_ranks",
    ("projector_splitting_step", "order 0 / 3 / 1.5 / True"): "test_integrators.py::test_bad_order",
    ("Dense", "n_in 0, n_out float, rng, dtype float16, unknown init, X wrong shape / 1-d / "
              "float32 / int"): "test_nn.py::test_dense_validation",
    ("MLP", "empty, widths, non-layer, mixed dtypes, activation, sizes, X, batch_size"):
        "test_nn.py::test_mlp_validation",
    ("LowRankDense", "rank > min, unknown mode, X wrong shape"):
        "test_dlrt.py::test_bad_layer_arguments",
    ("make_optimizer", "tau missing, unknown method, lr < 0, momentum 1, tau < 0, passes 2, "
                       "dense method on a low-rank model"):
        "test_dlrt.py::test_bad_optimizer_arguments",
    ("data.load", "name int / unknown / wrong case, dtype int32 / str / float16, data_dir int, "
                  "verify str"): "test_data.py::test_load_bad_arguments",
    ("data.batches", "batch_size 0 / -2 / 2.5 / True, length mismatch, X list, y scalar, rng"):
        "test_data.py::test_batches_bad_arguments_raise_at_call",
    ("data.subset", "n_train 0 / too big, n_test too big, float, rng, dataset tuple"):
        "test_data.py::test_subset_bad_arguments",
    ("data.read_idx", "truncated, header lies (too many images), header cut, trailing bytes, "
                      "type code, magic"): "test_data.py::test_bad_idx_files_refused",
    ("data.load", "truncated gzip, header lies"):
        "test_data.py::test_truncated_gzip_and_lying_header_refused_by_load",
    ("data.load", "malicious pickle (os.system, eval)"):
        "test_data.py::test_malicious_pickle_refused_and_not_executed",
    ("oracle.cases / check / reference", "unknown family"):
        "test_oracle.py::test_unknown_family_is_a_clear_error_listing_the_families",
    ("oracle.check", "dtype int32, golden without the family"):
        "test_oracle.py::test_invalid_dtype_and_empty_golden_are_clear_errors",
    ("oracle.check", "candidate raising / malformed outputs"):
        "test_oracle.py::test_candidate_exceptions_and_malformed_outputs_are_failures_not_crashes",
    ("oracle.verify", "tampered file, forged hash, missing files and manifest"):
        "test_oracle.py::test_a_tampered_file_with_a_forged_hash_is_caught_by_recomputation",
    ("TrainConfig / cli train", "23 bad values (ValueError)"):
        "test_train.py::test_config_errors_name_the_option",
    ("TrainConfig", "13 options of the wrong kind (TypeError)"):
        "test_train.py::test_config_wrong_kinds_are_type_errors",
    ("cli", "epochs 0, unknown method, lr 'fast', hidden 'x', rank 0, resume nowhere, "
            "unknown command"): "test_train.py::test_cli_bad_values_exit_2_with_one_line",
    ("train", "resume with another configuration (refused unless force)"):
        "test_train.py::test_resume_refuses_a_different_configuration",
    ("train", "truncated checkpoint, flipped byte (CRC), not an npz, foreign npz"):
        "test_train.py::test_corrupt_or_truncated_checkpoint_is_refused",
    ("train", "divergence keeps the last good checkpoint (dense)"):
        "test_train.py::test_divergence_names_epoch_batch_and_keeps_the_checkpoint",
    ("prune_model", "neither ranks nor tau, too few ranks, rank 0 / float, tau < 0, "
                    "min_rank with ranks, not an MLP"):
        "test_pruning.py::test_bad_arguments_are_refused_by_name",
    ("PaperAdam / CarriedAdam", "beta1 1, beta2 < 0, eps 0 / str"):
        "test_adam.py::test_bad_hyperparameters_are_refused",
    ("AdaptiveBUG with PaperAdam / CarriedAdam", "lr 0 / str, tau < 0, max_rank < min_rank, "
                                                 "momentum with a direction"):
        "test_adam.py::test_bad_optimizer_arguments_with_adam_are_refused",
    ("TrainConfig", "Adam for fixed, sonly, parallel; 3 passes with Adam, betas with sgd, "
                    "finetune with Adam, unknown optimizer, eps 0"):
        "test_adam.py::test_config_options_of_adam_are_checked",
    ("compare_methods / compare_illconditioned / recipe_sweep / compare_parallel / "
     "record_start",
     "empty taus, taus < 0, options setting method / unknown field / not a dict, epochs 0, "
     "decays < 1, unknown forms, table name, config without out, no seeds"):
        "test_compare.py::test_bad_arguments_are_refused_by_name",
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return types.SimpleNamespace(tmp=tmp_path_factory.mktemp("robustness"))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")   # h too large
@pytest.mark.parametrize("row", BAD, ids=[f"{r.function}: {r.klass}" for r in BAD])
def test_bad_input_is_refused_cleanly(row, ctx):
    with pytest.raises(row.exc) as info:
        row.call(ctx)
    message = str(info.value)
    assert row.match in message, f"{row.match!r} not in {message!r}"
    if isinstance(info.value, CLIExit):        # the command line: one line, status 2
        err = info.value.err.strip()
        assert info.value.code == 2, err
        assert "Traceback" not in err and len(err.splitlines()) >= 1
        if not err.startswith("verify ("):     # verify prints its report, the rest one line
            assert len(err.splitlines()) == 1, err


def test_table_is_systematic():
    """Every public function of the issue has rows; the rows are unique."""
    keys = [(r.function, r.klass) for r in BAD]
    assert len(keys) == len(set(keys)), [k for k, c in Counter(keys).items() if c > 1]
    required = {"LowRank.random", "validate_lowrank", "truncate", "projector_splitting_step",
                "bug_step", "adaptive_bug_step", "parallel_bug_step", "Dense", "LowRankDense",
                "LowRankDense.from_dense", "LowRankDense.from_factors", "LowRankDense.set_mode",
                "make_optimizer", "Euclidean", "FixedRankBUG", "AdaptiveBUG", "SOnly",
                "ParallelBUG", "Momentum",
                "low_rank_mlp", "data.load", "data.batches", "data.subset", "data.read_idx",
                "Conv2d", "Conv2d.from_weights", "LowRankConv2d", "LowRankConv2d.from_dense",
                "LowRankConv2d.from_factors", "Sequential", "Sequential.predict", "MaxPool2d",
                "lenet5", "sweep", "FactorizedConv2d", "FactorizedConv2d.from_factors",
                "FactorizedConv2d.from_lowrank", "lenet5_from_layers",
                "oracle.cases", "oracle.check", "oracle.export", "oracle.verify", "cli train",
                "cli sweep", "cli figures", "cli oracle", "FactorizedDense", "decayed_factors",
                "prune_model", "PaperAdam", "CarriedAdam", "cli compare",
                "cli prune"}
    assert required <= {r.function for r in BAD}


def test_elsewhere_points_to_existing_tests():
    for where in ELSEWHERE.values():
        module, name = where.split("::")
        source = (ROOT / "tests" / module).read_text()
        assert f"def {name}(" in source, where


@pytest.mark.parametrize("name", sorted(STEPS))
def test_exceptions_raised_by_F_propagate_unchanged(name):
    """A right-hand side that raises is the caller's error: neither wrapped nor swallowed."""
    class Boom(Exception):
        pass

    def F(t, A):
        raise Boom("from F")

    with pytest.raises(Boom, match="from F"):
        step(name, F=F)


def summary() -> str:
    """The table of the closing note: bad-input classes tried per public function."""
    per = {}
    for r in BAD:
        d = per.setdefault(r.function, {"classes": 0, "defects": []})
        d["classes"] += 1
        if r.defect:
            d["defects"].append(f"{r.klass}: {r.defect}")
    lines = ["| public function | classes tried here | outcome | defects found and fixed |",
             "|---|---|---|---|"]
    for fn, d in per.items():
        outcome = ("all refused cleanly" if not d["defects"] else
                   f"all refused cleanly after fixes ({len(d['defects'])} defects)")
        lines.append(f"| {fn} | {d['classes']} | {outcome} | " + "; ".join(d["defects"]) + " |")
    ck = [(w, d) for w, (_, _, d) in BAD_CHECKPOINTS.items()]
    lines.append(f"| train / load_checkpoint (resume from a bad checkpoint) | {len(ck)} | "
                 f"all refused with CheckpointError naming the file "
                 f"({sum(1 for _, d in ck if d)} defects) | "
                 + "; ".join(f"{w}: {d}" for w, d in ck if d) + " |")
    lines.append(f"\n{len(BAD)} rows, {sum(1 for r in BAD if r.defect)} were defects; "
                 f"{len(ELSEWHERE)} further groups of classes are covered by existing tests:")
    lines += [f"  {fn}: {k} -> tests/{w}" for (fn, k), w in ELSEWHERE.items()]
    return "\n".join(lines)


# =============================================================================================
# 2. Numerical corner cases (hypothesis)
# =============================================================================================

ALL_STEPS = {
    "ksl": lambda Y, F, h, **kw: projector_splitting_step(Y, F, 0.0, h),
    "ksl2": lambda Y, F, h, **kw: projector_splitting_step(Y, F, 0.0, h, order=2),
    "bug": lambda Y, F, h, **kw: bug_step(Y, F, 0.0, h),
    "bug_rk4": lambda Y, F, h, **kw: bug_step(Y, F, 0.0, h, inner="rk4", substeps=2),
    "adaptive": lambda Y, F, h, tol=1e-8, relative=True: adaptive_bug_step(
        Y, F, 0.0, h, tol, relative=relative),
    "parallel": lambda Y, F, h, tol=1e-8, relative=True: parallel_bug_step(
        Y, F, 0.0, h, tol, relative=relative),
}
ADAPTIVE = ("adaptive", "parallel")


@st.composite
def corner_shapes(draw):
    """``(m, n, r)``: m or n may be 1, r may be min(m, n); tall and wide."""
    m = draw(st.integers(1, 14))
    n = draw(st.integers(1, 14))
    r = draw(st.one_of(st.just(min(m, n)), st.integers(1, min(m, n))))
    return m, n, r


def run_checked(name, Y, F, h=0.1, **kw):
    """One step, checking what every step must keep; returns ``(Y1, truncation record)``.

    For the adaptive steps, the call of ``truncate`` is recorded so that its bound can be
    checked: ``||U_hat S_hat V_hat^T - Y1||_F <= theta`` (+ rounding slack).
    """
    rec = {}
    real = subflows.truncate

    def spy(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
        rec.update(U_hat=U_hat, S_hat=S_hat, V_hat=V_hat, tol=tol, relative=relative)
        out = real(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank)
        rec["Y1"] = out
        return out

    with mock.patch.object(subflows, "truncate", spy):   # the truncation of every step
        Y1 = ALL_STEPS[name](Y, F, h, **kw)
    m, n = Y.shape
    assert all(np.all(np.isfinite(a)) for a in Y1), name
    assert Y1.orthonormality_error() <= tolerance("orthonormality", Y1.dtype, max(m, n)), name
    if name in ADAPTIVE:
        assert 1 <= Y1.rank <= min(2 * Y.rank, m, n)
        check_truncation_bound(rec["U_hat"], rec["S_hat"], rec["V_hat"], rec["tol"],
                               rec["relative"], rec["Y1"])
    else:
        assert Y1.rank == Y.rank
    return Y1


def check_truncation_bound(U_hat, S_hat, V_hat, tol, relative, Y):
    """``||Y_hat - Y||_F <= theta`` and minimality, in units of ``max|S_hat|`` (no overflow)."""
    c = float(np.max(np.abs(S_hat))) or 1.0
    S = S_hat / c
    sigma = np.linalg.svd(S, compute_uv=False)
    theta = tol * np.linalg.norm(sigma) if relative else tol / c
    m, n = U_hat.shape[0], V_hat.shape[0]
    slack = tolerance("truncation", size=max(m, n)) * max(np.linalg.norm(sigma), 1e-300)
    # in the bases: ||S_hat - U_hat^T Y V_hat||_F with Y in the span of the bases
    err = np.linalg.norm(S - (U_hat.T @ Y.U) @ (Y.S / c) @ (Y.V.T @ V_hat))
    assert err <= theta + slack, (err, theta)
    r = Y.rank
    if r > 1:           # minimal: one less would break the bound
        assert np.linalg.norm(sigma[r - 1:]) > theta - slack


def _random_F(rng, m, n, affine=True):
    W1 = rng.standard_normal((m, m)) / np.sqrt(m)
    W2 = rng.standard_normal((n, n)) / np.sqrt(n)
    B = rng.standard_normal((m, n)) if affine else np.zeros((m, n))
    return lambda t, A: W1 @ A + A @ W2.T + B


@given(corner_shapes(), seeds, st.sampled_from(sorted(ALL_STEPS)),
       st.sampled_from(["zero", "affine", "linear"]))
def test_zero_start_matrix(mnr, seed, name, rhs):
    """Y0 with S = 0 (orthonormal U, V): F = 0 gives exactly 0; F != 0 a valid step."""
    m, n, r = mnr
    rng = np.random.default_rng(seed)
    Y = LowRank(orthonormal(rng, m, r), np.zeros((r, r)), orthonormal(rng, n, r))
    F = (lambda t, A: np.zeros_like(A)) if rhs == "zero" else _random_F(rng, m, n, rhs == "affine")
    Y1 = run_checked(name, Y, F)
    if rhs != "affine":                  # the flow stays at 0
        assert np.all(Y1.to_dense() == 0)


@given(corner_shapes(), seeds, st.sampled_from(sorted(ALL_STEPS)))
def test_F_zero_leaves_Y0_unchanged(mnr, seed, name):
    m, n, r = mnr
    rng = np.random.default_rng(seed)
    Y = LowRank.random(rng, m, n, r, singular_values=rng.uniform(0.5, 2.0, r))
    Y1 = run_checked(name, Y, lambda t, A: np.zeros_like(A), tol=0.0)
    D = Y.to_dense()
    assert np.linalg.norm(Y1.to_dense() - D) <= tolerance(
        "reconstruction", size=max(m, n)) * np.linalg.norm(D)


@given(corner_shapes(), seeds, st.sampled_from(sorted(ALL_STEPS)), st.integers(0, 13))
def test_exactly_rank_deficient_start(mnr, seed, name, zeros):
    """S0 with exact zero singular values (any gauge): factors stay orthonormal and finite."""
    m, n, r = mnr
    rng = np.random.default_rng(seed)
    sv = rng.uniform(0.5, 2.0, r)
    sv[r - min(zeros, r):] = 0.0
    S = orthonormal(rng, r, r) @ np.diag(sv) @ orthonormal(rng, r, r).T
    Y = LowRank(orthonormal(rng, m, r), S, orthonormal(rng, n, r))
    run_checked(name, Y, _random_F(rng, m, n))


@given(corner_shapes(), seeds, st.sampled_from(sorted(ALL_STEPS)),
       st.integers(1, 3), st.floats(0.1, 10.0))
def test_repeated_singular_values(mnr, seed, name, groups, value):
    """Ties (S0 = value * I within groups): the bound and orthonormality still hold."""
    m, n, r = mnr
    rng = np.random.default_rng(seed)
    sv = np.repeat(value * 0.5 ** np.arange(groups), -(-r // groups))[:r]
    Y = LowRank.random(rng, m, n, r, singular_values=sv)
    for tol in (0.0, 0.3):
        run_checked(name, Y, _random_F(rng, m, n), tol=tol)


@given(corner_shapes(), seeds, st.sampled_from(sorted(ALL_STEPS)), st.integers(-300, 300))
def test_scale_invariance_from_1e_minus_300_to_1e300(mnr, seed, name, decades):
    """For a linear F, scaling Y0 by c scales Y1 by c (same rank), for c = 10^-300 .. 10^300.

    (Before the fix, the adaptive steps' rank rule squared the singular values: at c = 1e200
    they overflowed to inf, at c = 1e-200 to 0, and the rank was wrong.)
    """
    m, n, r = mnr
    c = 10.0 ** decades
    rng = np.random.default_rng(seed)
    Y = LowRank.random(rng, m, n, r, singular_values=rng.uniform(1.0, 2.0, r))
    F = _random_F(rng, m, n, affine=False)
    ref = run_checked(name, Y, F, tol=1e-6)
    Yc = run_checked(name, LowRank(Y.U, c * Y.S, Y.V), F, tol=1e-6)
    assert Yc.rank == ref.rank
    back = (Yc.U @ (Yc.S / c)) @ Yc.V.T
    R = ref.to_dense()
    assert np.linalg.norm(back - R) <= tolerance("step", size=max(m, n)) * np.linalg.norm(R)


@given(corner_shapes(), seeds, st.integers(-300, 300), st.floats(1e-12, 0.9), st.booleans())
def test_truncate_bound_at_every_scale(mnr, seed, decades, tol, relative):
    """truncate's bound and minimality for cores of size 10^-300 .. 10^300 (abs. tol scaled)."""
    m, n, k = mnr
    c = 10.0 ** decades
    rng = np.random.default_rng(seed)
    sv = np.sort(10.0 ** rng.uniform(-8, 0, k))[::-1]
    S_hat = orthonormal(rng, k, k) @ np.diag(c * sv) @ orthonormal(rng, k, k).T
    U_hat, V_hat = orthonormal(rng, m, k), orthonormal(rng, n, k)
    t = tol if relative else tol * c * np.linalg.norm(sv)
    Y = truncate(U_hat, S_hat, V_hat, t, relative=relative)
    assert all(np.all(np.isfinite(a)) for a in Y)
    check_truncation_bound(U_hat, S_hat, V_hat, t, relative, Y)


@pytest.mark.parametrize("sigma, tol, relative, rank", [
    ([1e200, 1e199], 0.5, True, 1), ([1e200, 1e199], 0.01, True, 2),      # sigma**2 = inf
    ([1e300, 1e300, 1e299], 0.05, True, 3), ([1e300, 1e300], 1.2e300, False, 1),
    ([1e-200, 1e-201], 0.5, True, 1), ([1e-200, 1e-201], 0.01, True, 2),  # sigma**2 = 0
    ([1e-170, 1e-171], 0.01, True, 2), ([1e-300, 1e-310], 0.0, True, 2),
    ([1.0, 1e-170], 0.0, True, 2), ([1.0, 1e-170, 0.0], 0.0, True, 2),    # tol 0 keeps > 0
    ([4e300, 2e300, 1e300, 0.5e300], 1.2e300, False, 2),                  # the doctest, x1e300
])
def test_truncation_rank_does_not_overflow_or_underflow(sigma, tol, relative, rank):
    """Regression: ``np.sum(sigma**2)`` overflowed beyond ~1e154 and underflowed below
    ~1e-154; the sums are now formed in units of a power of two near ``max(sigma)``."""
    with np.errstate(over="raise", invalid="raise"):     # (underflow of tiny squares is fine)
        assert truncation_rank(np.array(sigma), tol, relative) == rank


def test_truncation_rank_unchanged_in_the_normal_range():
    """The power-of-two scaling is exact: the same ranks as the plain formula, bit for bit."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        k = int(rng.integers(1, 12))
        sigma = np.sort(10.0 ** rng.uniform(-6, 6, k))[::-1]
        tol = float(10.0 ** rng.uniform(-6, 0))
        for relative in (True, False):
            t = tol if relative else tol * float(np.linalg.norm(sigma))
            theta = t * np.sqrt(np.sum(sigma ** 2)) if relative else t
            tail = np.sqrt(np.concatenate([np.cumsum((sigma ** 2)[::-1])[::-1], [0.0]]))
            plain = max(int(np.argmax(tail <= theta)), 1)
            assert truncation_rank(sigma, t, relative) == plain


# =============================================================================================
# 3. Faults in training
# =============================================================================================

def model_arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k.startswith(("layer", "opt."))}


_CHILD = r"""
import io, json, os, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from lowrank_ref import training as T
from lowrank_ref.data import Dataset
z = np.load({data!r})
ds = Dataset(z["Xtr"], z["ytr"], z["Xte"], z["yte"], "blobs", "child", z["Xva"], z["yva"])
cfg = T.TrainConfig.from_dict(json.loads({config!r}))
real = np.savez

def slow_savez(f, **arrays):        # the checkpoint writer, killed in the middle
    buf = io.BytesIO()
    real(buf, **arrays)
    data = buf.getvalue()
    f.write(data[:len(data) // 2] if {mode!r} == "half" else data)
    f.flush()
    os.fsync(f.fileno())
    print("WRITING", flush=True)
    time.sleep(120)

np.savez = slow_savez
T.train(cfg, log=lambda line: None, data=ds, resume=cfg.out)
"""


@pytest.mark.parametrize("mode", ["half", "all_but_rename"])
def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, mode):
    """A process killed while writing checkpoint 2 (half of it, or all of it before the
    rename) leaves checkpoint 1 intact; resuming from it gives the uninterrupted result."""
    out = tmp_path / "run"
    train(cfg(out), log=quiet, data=DATA)
    ckpt = out / CHECKPOINT_NAME
    before = ckpt.read_bytes()
    data_path = tmp_path / "data.npz"
    np.savez(data_path, Xtr=DATA.X_train, ytr=DATA.y_train, Xte=DATA.X_test, yte=DATA.y_test,
             Xva=DATA.X_valid, yva=DATA.y_valid)
    code = _CHILD.format(root=str(ROOT), data=str(data_path), mode=mode,
                         config=json.dumps(cfg(out, epochs=2).to_dict()))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 120)   # the writer is mid-write
        line = child.stdout.readline() if ready else ""
        if line.strip() != "WRITING":
            child.wait(timeout=60)
            pytest.fail(f"the child did not reach the writer: {line!r} {child.stderr.read()}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    temps = list(out.glob(f".{CHECKPOINT_NAME}.*.tmp"))
    assert len(temps) == 1                      # the half-written file, never renamed
    full = len(before) * 0.9
    assert (temps[0].stat().st_size < full) == (mode == "half")
    assert ckpt.read_bytes() == before          # the previous checkpoint, intact
    assert load_checkpoint(out)["epochs_done"] == 1
    # resume after the crash == an uninterrupted run (bit for bit)
    train(cfg(out, epochs=2), log=quiet, data=DATA, resume=out)
    ref = tmp_path / "ref"
    train(cfg(ref, epochs=2), log=quiet, data=DATA)
    got, want = model_arrays(ckpt), model_arrays(ref / CHECKPOINT_NAME)
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_failure_between_write_and_rename_keeps_the_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(cfg(out), log=quiet, data=DATA)
    ckpt = out / CHECKPOINT_NAME
    before = ckpt.read_bytes()
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == CHECKPOINT_NAME:
            raise OSError(28, "No space left on device (simulated)")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left on device"):
        train(cfg(out, epochs=2), log=quiet, data=DATA, resume=out)
    monkeypatch.setattr(os, "replace", real)
    assert ckpt.read_bytes() == before
    assert not list(out.glob(f".{CHECKPOINT_NAME}.*.tmp"))       # the temporary file removed
    train(cfg(out, epochs=2), log=quiet, data=DATA, resume=out)  # and the run continues
    assert load_checkpoint(out)["epochs_done"] == 2


class _Evil:
    """Unpickling this would run ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(cfg(out, method="adaptive", rank=3, tau=0.1, momentum=0.5), log=quiet, data=DATA)
    with np.load(out / CHECKPOINT_NAME, allow_pickle=False) as z:
        return out, {k: z[k] for k in z.files}


def _tampered(arrays, **changes):
    a = dict(arrays)
    for k, v in changes.items():
        if v is None:
            a.pop(k)
        else:
            a[k] = v
    return a


def _config_part(arrays, part, **changes):
    """The checkpoint's configuration (nested by part) with options of ``part`` changed."""
    config = json.loads(str(arrays["config"]))
    return {**config, part: {**config[part], **changes}}


BAD_CHECKPOINTS = {   # what: (make(arrays, marker), expected substring, defect before the fix)
    "object array (pickle) as a weight": (lambda a, marker: _tampered(
        a, **{"layer2.W": np.array([_Evil(marker)], dtype=object)}), "corrupt or truncated", ""),
    "object array as the optimiser state": (lambda a, marker: _tampered(
        a, **{next(k for k in a if k.startswith("opt.")): np.array([_Evil(marker)])}),
        "corrupt or truncated", ""),
    "NaN in a dense weight": (lambda a, m: _tampered(
        a, **{"layer2.W": a["layer2.W"] * np.nan}), "layer2.W must be finite",
        "accepted; the resumed run failed with LinAlgError 'SVD did not converge'"),
    "Inf in a factor": (lambda a, m: _tampered(
        a, **{"layer0.S": np.full_like(a["layer0.S"], np.inf)}), "layer0.S must be finite",
        "plain ValueError 'Y.S must be finite' (checkpoint not named)"),
    "numeric strings as a factor": (lambda a, m: _tampered(
        a, **{"layer1.U": a["layer1.U"].astype(str)}), "layer1.U must be a real 2-d array",
        "accepted (strings parsed as floats)"),
    "1-d factor": (lambda a, m: _tampered(a, **{"layer0.U": a["layer0.U"][:, 0]}),
                   "layer0.U must be a real 2-d array",
                   "plain ValueError 'Y.U must be 2-d' (checkpoint not named)"),
    "factors not orthonormal": (lambda a, m: _tampered(a, **{"layer0.U": 2 * a["layer0.U"]}),
                                "layer 0: Y.U must have orthonormal columns",
                                "plain ValueError (checkpoint not named)"),
    "factor of another rank": (lambda a, m: _tampered(a, **{"layer0.S": np.eye(7)}),
                               "layer 0: Y factors must have shapes",
                               "plain ValueError (checkpoint not named)"),
    "NaN in the optimiser state": (lambda a, m: _tampered(
        a, **{k: v * np.nan for k, v in a.items() if k.startswith("opt.")}),
        "must be a finite float array",
        "accepted; the resumed run failed with LinAlgError 'SVD did not converge'"),
    "epochs_done a string": (lambda a, m: _tampered(a, epochs_done=np.array("1")),
                             "epochs_done must be an int >= 0", "accepted ('1' parsed)"),
    "negative epochs_done": (lambda a, m: _tampered(a, epochs_done=np.array(-1)),
                             "epochs_done must be an int >= 0", "accepted"),
    "config not JSON": (lambda a, m: _tampered(a, config=np.array("{oops")),
                        "invalid configuration or history", ""),
    "config with an unknown part": (lambda a, m: _tampered(a, config=np.array(json.dumps(
        {**json.loads(str(a["config"])), "evil": 1}))),
        "unknown configuration part(s) ['evil']", ""),
    "config with an unknown option": (lambda a, m: _tampered(a, config=np.array(json.dumps(
        _config_part(a, "run", evil=1)))),
        "unknown option(s) ['evil'] of configuration part 'run'", ""),
    "config with a bad value": (lambda a, m: _tampered(a, config=np.array(json.dumps(
        _config_part(a, "step", lr=-1)))), "lr must be a finite number > 0", ""),
    "config part not a dict": (lambda a, m: _tampered(a, config=np.array(json.dumps(
        {**json.loads(str(a["config"])), "step": [1]}))),
        "config part 'step' must be a dict, got list", ""),
    "history not a list": (lambda a, m: _tampered(a, history=np.array('{"a": 1}')),
                           "history must be a list of rows",
                           "TypeError 'string indices must be integers' while resuming"),
    "layer missing": (lambda a, m: _tampered(a, **{"layer1.V": None}), "lacks the array", ""),
}


@pytest.mark.parametrize("what", sorted(BAD_CHECKPOINTS))
def test_corrupt_or_hostile_checkpoint_is_refused(what, good_checkpoint, tmp_path):
    src, arrays = good_checkpoint
    marker = tmp_path / "pwned"
    make, match, _ = BAD_CHECKPOINTS[what]
    out = tmp_path / "run"
    out.mkdir()
    np.savez(out / CHECKPOINT_NAME, **make(arrays, marker))   # allow_pickle on save: hostile
    config = load_checkpoint(src)["config"]
    with pytest.raises(CheckpointError, match=re.escape(match)) as info:
        load_checkpoint(out)
        train(dataclasses.replace(config, epochs=2, out=str(out)), log=quiet,
              data=DATA, resume=out)
    assert str(out / CHECKPOINT_NAME) in str(info.value)
    assert not marker.exists()                                  # never unpickled


@pytest.mark.parametrize("passes", [1, 3])
def test_adaptive_divergence_keeps_the_last_good_checkpoint(tmp_path, passes):
    """Regression: a diverging adaptive step raised numpy's LinAlgError ('SVD did not
    converge', from the augmented basis of non-finite K1) instead of TrainingDiverged, and the
    command line printed a traceback."""
    c = cfg(tmp_path / "run", method="adaptive", rank=3, tau=0.1, passes=passes)
    train(c, log=quiet, data=DATA)
    ckpt = Path(c.out) / CHECKPOINT_NAME
    before = ckpt.read_bytes()
    huge = cfg(tmp_path / "run", method="adaptive", rank=3, tau=0.1, passes=passes, epochs=3,
               lr=1e30, schedule="constant")
    with pytest.raises(TrainingDiverged) as info:
        train(huge, log=quiet, data=DATA, resume=c.out, force=True)
    assert info.value.epoch == 2 and info.value.checkpoint == ckpt
    assert "training diverged" in str(info.value) and "unchanged" in str(info.value)
    assert ckpt.read_bytes() == before
    run = json.loads((Path(c.out) / "run.json").read_text())
    assert run["status"] == "diverged"


def test_command_line_os_errors_exit_2_without_traceback(tmp_path):
    """End to end (a real process): a file where a folder is needed."""
    f = tmp_path / "a_file"
    f.write_text("x")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    for args in (["oracle", "export", str(f)], ["train", "--out", str(f / "sub")]):
        res = subprocess.run([sys.executable, "-m", "lowrank_ref", *args], capture_output=True,
                             text=True, env=env, timeout=120, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


# =============================================================================================
# 4. Hostile files
# =============================================================================================

def test_package_never_unpickles_except_through_the_restricted_unpickler():
    """Every ``np.load`` passes ``allow_pickle=False``; no ``pickle.load(s)``, no
    ``allow_pickle=True``; the only Unpickler is ``RestrictedUnpickler``."""
    found = Counter()
    for path in sorted((ROOT / "lowrank_ref").rglob("*.py")):     # subpackages too
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = getattr(node.func.value, "id", None)
                kw = {k.arg: k.value for k in node.keywords}
                if node.func.attr == "load" and owner in ("np", "numpy"):
                    found["np.load"] += 1
                    flag = kw.get("allow_pickle")
                    assert isinstance(flag, ast.Constant) and flag.value is False, \
                        f"{path.name}:{node.lineno}: np.load without allow_pickle=False"
                assert not (owner == "pickle" and node.func.attr in ("load", "loads")), \
                    f"{path.name}:{node.lineno}: unrestricted pickle.{node.func.attr}"
                if "allow_pickle" in kw:
                    assert getattr(kw["allow_pickle"], "value", None) is False, \
                        f"{path.name}:{node.lineno}: allow_pickle must be False"
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    if getattr(base, "attr", None) == "Unpickler":
                        found["Unpickler"] += 1
                        assert node.name == "RestrictedUnpickler", f"{path.name}: {node.name}"
    assert found["np.load"] >= 2 and found["Unpickler"] == 1


def test_idx_header_that_wraps_around_is_refused_by_load(tmp_path):
    """A header whose sizes multiply to 2^64 (0 in int64) over an empty data section."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("t10k", 2)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(n))
    bad = tmp_path / "t10k-labels-idx1-ubyte"
    bad.write_bytes(idx_header([2 ** 16] * 4))
    with pytest.raises(ValueError, match="truncated IDX file") as info:
        load("mnist", data_dir=tmp_path, verify=False)
    assert str(bad) in str(info.value)


def test_gzip_bomb_is_refused_by_load(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("t10k", 2)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n))
    assert load("mnist", data_dir=tmp_path, verify=False).X_train.shape == (3, 784)
    monkeypatch.setattr(data_files, "MAX_DECOMPRESSED_BYTES", 2000)   # images are 2368 bytes
    with pytest.raises(ValueError, match="decompresses to more than 2000 bytes"):
        load("mnist", data_dir=tmp_path, verify=False)


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    d = tmp_path_factory.mktemp("golden")
    oracle.export(d)
    return d


def _forge(d, name, content):
    """Replace the golden file of case ``name`` by ``content`` and fix its hash."""
    manifest = json.loads((d / "manifest.json").read_text())
    entry = next(e for e in manifest["cases"] if e["name"] == name)
    (d / entry["file"]).write_bytes(content)
    entry["sha256"] = hashlib.sha256(content).hexdigest()
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d / entry["file"]


def test_golden_file_with_object_arrays_is_refused(golden, tmp_path):
    import shutil
    d = tmp_path / "golden"
    shutil.copytree(golden, d)
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    np.savez(buf, **{"input.U_hat": np.array([_Evil(marker)], dtype=object),
                     "expected.S": np.eye(2)})
    path = _forge(d, "truncate.clustered", buf.getvalue())
    with pytest.raises(ValueError, match="Object arrays cannot be loaded") as info:
        oracle.load(d)
    assert str(path) in str(info.value)
    report = oracle.verify(d)
    assert [(f.case, f.quantity) for f in report.failures] == [("truncate.clustered", "file")]
    assert "Object arrays cannot be loaded" in str(report)
    assert not marker.exists()


if __name__ == "__main__":   # PYTHONPATH=. python tests/test_robustness.py: the summary table
    print(summary())
