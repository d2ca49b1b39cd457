"""Prototypes of the optimisations proposed in benchmarks/README.md, for measurement only.

The levers ``matmul``, ``linear``, ``reorth``, ``augment`` and ``qr`` have since been adopted
by the package; their names below are aliases of the package functions (patching them
changes nothing), kept so that the lever names of the measured tables still resolve.

Nothing here changes ``lowrank_ref`` on disk: :func:`patched` swaps functions of the
imported package modules for the duration of a ``with`` block (one process, so the same
run can time the package as it is and as it would be, interleaved). Each prototype
computes the same mathematical result as the function it replaces (checked by
``python benchmarks/proto.py``).

Levers (names used by ``--variants`` of the benchmark scripts):

* ``matmul``   -- ``ops.matmul`` backward computes only the gradients of parents that
  require one (the engine drops the others anyway): saves e.g. ``dX`` of the first layer,
  and ``dV``, ``dU`` of the constant factors of every low-rank layer.
* ``linear``   -- ``Dense`` as one fused node ``X W^T + b``: the weight gradient ``G^T X`` is
  produced contiguous (today ``X^T G`` goes through the transpose node and the leaf then
  copies a transposed, strided view), no ``dX`` for the first layer, one node instead of 3.
* ``leafcopy`` -- ``Tensor.backward`` lets a leaf own a fresh gradient array instead of
  ``g.copy()`` (views and arrays already given to another leaf are still copied).
* ``reorth``   -- :func:`lowrank_ref.lowrank.reorthonormalize` by CholeskyQR2 (two
  Gram/Cholesky/triangular-solve passes, all level-3 BLAS) instead of two Householder QRs
  (``np.linalg.qr`` of a tall-skinny matrix runs at level-2 speed). Input is orthonormal to
  ~1e-4, so cond ~ 1 and CholeskyQR2 is as accurate as Householder; positive ``diag(R)`` by
  construction (same gauge as the current sign fix).
* ``refresh16`` -- the adaptive step's ``refresh_orthonormality`` only every 16th step (by
  CholeskyQR2); the orthonormality drift in between stays ~16 eps (gates are sqrt(eps)).
  Not in ``all`` (it changes when rounding is corrected, not only how fast).
* ``augment``  -- :func:`augment_basis` without the second tall SVD (``np.linalg.norm(K1, 2)``):
  ``||K1||_2 = ||[U0^T K1; Rr]||_2`` from small matrices; rank-revealing SVD of the small
  triangular factor of a Householder QR (``scipy.linalg.qr``) instead of the tall SVD; the
  final QR of the (already orthonormal to rounding) new block by CholeskyQR2; small SVDs by
  ``scipy.linalg.svd``.
* ``truncate`` -- the optimiser calls the truncation core without re-validating its own
  arrays (``as_float_array`` finiteness scans and two orthonormality Gram matrices).
* ``svd``      -- ``truncate`` as above, and its SVD of the small ``S_hat`` by
  ``scipy.linalg.svd`` (same LAPACK gesdd, ``check_finite=False``), ~1.6x faster than
  ``np.linalg.svd`` at 120 x 120 here.
* ``fixed1pass`` -- fixed-rank step with the S-step gradient at ``W0`` from the one backward
  (as ``AdaptiveKLS(passes=1)`` does): one forward/backward per step instead of two. A
  different integrator from [SZKCT22] Alg. 1, so not in ``all``; sizes the lever only.
* ``qr``       -- ``orthonormalize`` (fixed-rank K/L steps) by ``scipy.linalg.qr``
  (Householder, ``check_finite=False``), same algorithm, ~2x faster at these shapes.
"""
from __future__ import annotations

import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import scipy.linalg as sla

from lowrank_ref import dlrt, lowrank, nn, ops, truncation
from lowrank_ref import autodiff
from lowrank_ref.lowrank import LowRank

LEVERS = ("matmul", "linear", "leafcopy", "reorth", "refresh16", "augment", "truncate", "svd",
          "qr", "fixed1pass")
ALL = ("matmul", "linear", "leafcopy", "reorth", "augment", "svd", "qr")  # svd > truncate


# Adopted by the package (same code now lives there): aliases keep the lever names.
cholqr2 = lowrank.cholesky_qr2


reorthonormalize_fast = lowrank.reorthonormalize


REFRESH_EVERY = 16


def refresh_every(self):
    """``LowRankDense.refresh_orthonormality`` that re-orthonormalises (CholeskyQR2) only on
    every ``REFRESH_EVERY``-th call: the drift between refreshes is a random walk of
    ~eps per step, far below the sqrt(eps) gates."""
    n = getattr(self, "_refresh_calls", 0)
    self._refresh_calls = n + 1
    if n % REFRESH_EVERY == 0:
        self.U, self.S, self.V = reorthonormalize_fast(self.factors)


augment_basis_fast = lowrank.augment_basis


def truncate_unchecked(U_hat, S_hat, V_hat, tol, relative=True, min_rank=1, max_rank=None):
    P, sigma, Qt = np.linalg.svd(S_hat, full_matrices=False)
    r = truncation.truncation_rank(sigma, tol, relative, min_rank, max_rank)
    return LowRank(U_hat @ P[:, :r], np.diag(sigma[:r]).astype(S_hat.dtype),
                   V_hat @ Qt.T[:, :r])


def truncate_unchecked_scipy(U_hat, S_hat, V_hat, tol, relative=True, min_rank=1,
                             max_rank=None):
    P, sigma, Qt = sla.svd(S_hat, full_matrices=False, check_finite=False)
    r = truncation.truncation_rank(sigma, tol, relative, min_rank, max_rank)
    return LowRank(U_hat @ P[:, :r], np.diag(sigma[:r]).astype(S_hat.dtype),
                   V_hat @ Qt.T[:, :r])


matmul_lazy = ops.matmul
linear = ops.linear


def dense_call(self, X):
    X = nn.check_input(X, self.n_in, self.dtype, "Dense")
    return linear(X, self.W, self.b)


def backward_nocopy(self, grad=None):
    """``Tensor.backward`` (same checks) where a leaf takes ownership of a fresh gradient
    array instead of copying it; arrays that are views, or were already handed to another
    leaf in this sweep, are still copied."""
    if not self.requires_grad:
        raise RuntimeError("backward() called on a tensor that does not require a gradient")
    if grad is None:
        if self.value.size != 1:
            raise ValueError("grad must be given for a non-scalar tensor")
        grad = np.ones_like(self.value)
    else:
        grad = np.asarray(grad, dtype=self.dtype)
    pending = {id(self): grad}
    handed = set()
    for node in reversed(autodiff.topological_order(self)):
        g = pending.pop(id(node), None)
        if g is None:
            continue
        if node._backward is None:
            if node.requires_grad:
                if node.grad is None:
                    own = g.base is None and g.flags.writeable and id(g) not in handed
                    node.grad = g if own else g.copy()
                    handed.add(id(g))
                else:
                    node.grad = node.grad + g
            continue
        parent_grads = node._backward(g)
        for i, (parent, pg) in enumerate(zip(node.parents, parent_grads)):
            if pg is None or not parent.requires_grad:
                continue
            pg = np.asarray(pg)
            autodiff._check_grad_of(node.op, i, parent, pg)
            key = id(parent)
            pending[key] = pg if key not in pending else pending[key] + pg


def fixed_step_onepass(self, X, y):
    """``FixedRankKLS.step`` with the S-step gradient taken at ``W0`` from the first backward
    (``U1^T G0 V1 = (delta U1)^T (X V1)``) instead of a second forward/backward at ``W~``.
    NOT the published Algorithm 1 (S-step at the new point): a different integrator,
    first-order like it; measured only to size the lever."""
    self._set_modes("W")
    res = dlrt._forward_backward(self.model, X, y, self.loss_fn)
    dense = self._dense_and_bias_grads()
    for i, layer in dlrt._low_rank_layers(self.model):
        U0, S0, V0 = layer.factors
        GV, GtU, _ = dlrt._kl_gradients(layer)
        GV, GtU = self.factor_momentum.kl(i, U0, V0, GV, GtU)
        t = layer.taps
        U1 = dlrt.orthonormalize(U0 @ S0 - self.lr * GV)
        V1 = dlrt.orthonormalize(V0 @ S0.T - self.lr * GtU)
        S_tilde = (U1.T @ U0) @ S0 @ (V0.T @ V1)
        dS = (t["G"] @ U1).T @ (t["X"] @ V1)
        dS = self.factor_momentum.s(i, U1, V1, dS)
        layer.set_factors(LowRank(U1, S_tilde - self.lr * dS, V1))
    self._apply_dense_and_bias(dense)
    return res


orthonormalize_scipy = lowrank.orthonormalize


_TARGETS = {
    "matmul": [(ops, "matmul", matmul_lazy)],
    "reorth": [(nn, "reorthonormalize", reorthonormalize_fast)],
    "augment": [(dlrt, "augment_basis", augment_basis_fast)],
    "truncate": [(dlrt, "truncate", truncate_unchecked)],
    "svd": [(dlrt, "truncate", truncate_unchecked_scipy)],
    "qr": [(dlrt, "orthonormalize", orthonormalize_scipy)],
    "linear": [(nn.Dense, "__call__", dense_call)],
    "refresh16": [(nn.LowRankDense, "refresh_orthonormality", refresh_every)],
    "fixed1pass": [(dlrt.FixedRankKLS, "step", fixed_step_onepass)],
    "leafcopy": [(autodiff.Tensor, "backward", backward_nocopy)],
}


@contextlib.contextmanager
def patched(levers=ALL):
    saved = []
    try:
        for lever in levers:
            for mod, name, new in _TARGETS[lever]:
                saved.append((mod, name, getattr(mod, name)))
                setattr(mod, name, new)
        yield
    finally:
        for mod, name, old in reversed(saved):
            setattr(mod, name, old)


def parse_variants(text):
    """``"all"`` or comma list of levers -> tuple."""
    if text in (None, "", "none"):
        return ()
    if text == "all":
        return ALL
    out = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in out if t not in LEVERS]
    if bad:
        raise SystemExit(f"unknown lever(s) {bad}; choose from {LEVERS} or 'all'")
    return out


def _check():
    """Equivalence checks of the prototypes against the package functions."""
    from lowrank_ref.checks import orthonormality_error
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        eps = np.finfo(dtype).eps
        for m, r in ((500, 20), (784, 60), (2048, 64)):
            Y = LowRank.random(rng, m, m // 2 + 1, r, dtype=dtype)
            noisy = LowRank(Y.U + (1e-4 * rng.standard_normal(Y.U.shape)).astype(dtype), Y.S,
                            Y.V + (1e-4 * rng.standard_normal(Y.V.shape)).astype(dtype))
            a, b = lowrank.reorthonormalize(noisy), reorthonormalize_fast(noisy)
            d = np.linalg.norm(a.to_dense() - b.to_dense()) / np.linalg.norm(a.to_dense())
            print(f"reorth {np.dtype(dtype).name} {m}x{r}: rel diff {d:.1e}, "
                  f"orth err pkg {a.orthonormality_error():.1e} fast {b.orthonormality_error():.1e}"
                  f", |U_pkg - U_fast| {np.abs(a.U - b.U).max():.1e}")
            U0 = Y.U
            for label, K1 in (("full", (Y.U @ Y.S - 0.05 * rng.standard_normal((m, r))).astype(dtype)),
                              ("deficient", np.concatenate([U0[:, :r // 2] @ rng.standard_normal((r // 2, r // 2)),
                                                            rng.standard_normal((m, r - r // 2))], axis=1).astype(dtype))):
                A = lowrank.augment_basis(U0, K1)
                B = augment_basis_fast(U0, K1)
                PA, PB = A @ A.T, B @ B.T
                print(f"augment {np.dtype(dtype).name} {m}x{r} {label}: cols {A.shape[1]} vs {B.shape[1]}, "
                      f"proj diff {np.linalg.norm(PA - PB):.1e}, orth err {orthonormality_error(A):.1e} "
                      f"vs {orthonormality_error(B):.1e}, K1 residual "
                      f"{np.linalg.norm(K1 - B @ (B.T @ K1)) / np.linalg.norm(K1):.1e} (eps {eps:.1e})")


if __name__ == "__main__":
    _check()
