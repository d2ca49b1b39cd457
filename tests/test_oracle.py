"""The test oracle (lowrank_ref.oracle): golden cases, the checker, export/verify, and the
mutation tests of docs/design.md, section "Known bugs of other implementations".

The candidates below are an INDEPENDENT, dtype-generic NumPy implementation of every
family, written from the papers and not calling lowrank_ref's functions. Run unmodified it
must pass in float64 and in float32 (with float32 tolerances); with one known bug switched
on it must fail with a failure naming the right quantity.
"""
import json
import math
import pathlib

import numpy as np
import pytest
import scipy.linalg

import lowrank_ref
from lowrank_ref import oracle
from lowrank_ref.checks import tolerance


# ---------------------------------------------------------------------------------------
# an independent implementation, with switchable bugs
# ---------------------------------------------------------------------------------------
def np_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank, tail="correct",
                transposed_v=False, diagonal_shortcut=False, last_index_tested=True):
    """The truncation of [CKL22]. ``tail``: "correct" (sigma_{r+1..k}), "exclude_last" (the
    published DLRT loop ``norm(s[j:k-1]) < tol``) or "double" (the last value counted
    twice). ``transposed_v``: V_hat @ Vh[:, :r] instead of V_hat @ Vh.T[:, :r].
    ``diagonal_shortcut``: a diagonal core taken as its own SVD, unsorted.
    ``last_index_tested=False``: the published loop ``for j in range(2r - 1)`` on the
    k = 2r values of the augmented core, which starts from the old rank r and never tests
    j = k - 1 (the rank stays r where only the last tail meets the tolerance)."""
    P, s, Vh = np.linalg.svd(S_hat, full_matrices=False)
    if diagonal_shortcut and np.array_equal(S_hat, np.diag(np.diag(S_hat))):
        s, P, Vh = np.diag(S_hat).copy(), np.eye(len(S_hat)), np.eye(len(S_hat))
    k = s.shape[0]
    theta = tol * np.sqrt(np.sum(s * s)) if relative else tol
    r = k if last_index_tested else k // 2
    for j in range(k if last_index_tested else k - 1):
        if tail == "correct":
            ok = np.sqrt(np.sum(s[j:] ** 2)) <= theta
        elif tail == "exclude_last":
            ok = np.linalg.norm(s[j:k - 1]) < theta
        else:
            ok = np.sqrt(np.sum(s[j:] ** 2) + s[-1] ** 2) <= theta
        if ok:
            r = j
            break
    r = min(max(r, min_rank), max_rank, k)
    V_new = V_hat @ (Vh[:, :r] if transposed_v else Vh.T[:, :r])
    return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_new}


def np_augment(U0, K1):
    """Orthonormal [U0, Q] spanning [U0, K1]: the new directions by QR with column
    pivoting of the projected K1 (a different algorithm from the reference's SVD)."""
    m, r = U0.shape
    cap = min(K1.shape[1], m - r)
    if cap <= 0:
        return U0
    R = K1 - U0 @ (U0.T @ K1)
    R = R - U0 @ (U0.T @ R)
    Q, Rr, _ = scipy.linalg.qr(R, mode="economic", pivoting=True)
    d = np.abs(np.diag(Rr))
    keep = d > max(m, r) * np.finfo(K1.dtype).eps * np.linalg.norm(K1, 2)
    p = min(int(keep.sum()), cap)
    if p == 0:
        return U0
    Q = Q[:, :p]
    Q, _ = np.linalg.qr(Q - U0 @ (U0.T @ Q))
    return np.concatenate([U0, Q], axis=1).astype(K1.dtype)


def _basis(K, orth):
    if orth == "qr":
        return np.linalg.qr(K)[0]
    if orth == "colnorm":        # bug: columns scaled to norm 1, not orthogonalised
        return K / np.linalg.norm(K, axis=0)
    return K                     # bug: K itself used as the basis


def _rhs(A1, A2, B):
    return lambda Y: A1 @ Y + Y @ A2 + B


def np_bug_step(U0, S0, V0, A1, A2, B, t0, h, inner, substeps, galerkin=True, orth="qr"):
    """BUG [CL22] with one explicit Euler step per substep."""
    assert inner == "euler" and substeps == 1
    F = _rhs(A1, A2, B)
    FY0 = F(U0 @ S0 @ V0.T)
    U1 = _basis(U0 @ S0 + h * FY0 @ V0, orth)
    V1 = _basis(V0 @ S0.T + h * FY0.T @ U0, orth)
    S_start = (U1.T @ U0) @ S0 @ (V0.T @ V1) if galerkin else S0
    S1 = S_start + h * U1.T @ F(U1 @ S_start @ V1.T) @ V1
    return {"U": U1, "S": S1, "V": V1}


def _ksl(U0, S0, V0, F, h, orth):
    K1 = U0 @ S0 + h * F(U0 @ S0 @ V0.T) @ V0
    if orth == "qr":
        U1, S_hat = np.linalg.qr(K1)
    else:
        U1 = _basis(K1, orth)
        S_hat = np.linalg.lstsq(U1, K1, rcond=None)[0]
    S_t = S_hat - h * U1.T @ F(U1 @ S_hat @ V0.T) @ V0
    L1 = V0 @ S_t.T + h * F(U1 @ S_t @ V0.T).T @ U1
    V1, S1t = np.linalg.qr(L1)
    return U1, S1t.T, V1


def _lsk(U0, S0, V0, F, h):
    L1 = V0 @ S0.T + h * F(U0 @ S0 @ V0.T).T @ U0
    V1, S_hat_t = np.linalg.qr(L1)
    S_t = S_hat_t.T - h * U0.T @ F(U0 @ S_hat_t.T @ V1.T) @ V1
    K1 = U0 @ S_t + h * F(U0 @ S_t @ V1.T) @ V1
    U1, S1 = np.linalg.qr(K1)
    return U1, S1, V1


def np_projector_splitting_step(U0, S0, V0, A1, A2, B, t0, h, inner, substeps, order,
                                orth="qr"):
    """[LO14] KSL (order 1) or KSL(h/2) then LSK(h/2) (order 2)."""
    F = _rhs(A1, A2, B)
    if order == 1:
        U1, S1, V1 = _ksl(U0, S0, V0, F, h, orth)
    else:
        U1, S1, V1 = _lsk(*_ksl(U0, S0, V0, F, h / 2, orth), F, h / 2)
    return {"U": U1, "S": S1, "V": V1}


def np_adaptive_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank,
                         inner, substeps, unprojected=False, **trunc):
    """Rank-adaptive BUG [CKL22]. ``unprojected``: a fresh QR basis of [K1, U0] with S0 padded into
    it (the Galerkin projection (U_hat^T U0) S0 (V0^T V_hat) forgotten)."""
    F = _rhs(A1, A2, B)
    FY0 = F(U0 @ S0 @ V0.T)
    K1 = U0 @ S0 + h * FY0 @ V0
    L1 = V0 @ S0.T + h * FY0.T @ U0
    if unprojected:
        U_hat = np.linalg.qr(np.concatenate([K1, U0], axis=1))[0]
        V_hat = np.linalg.qr(np.concatenate([L1, V0], axis=1))[0]
        S_hat0 = np.zeros((U_hat.shape[1], V_hat.shape[1]), dtype=S0.dtype)
        S_hat0[:S0.shape[0], :S0.shape[1]] = S0
    else:
        U_hat, V_hat = np_augment(U0, K1), np_augment(V0, L1)
        S_hat0 = (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat)
    S_hat1 = S_hat0 + h * U_hat.T @ F(U_hat @ S_hat0 @ V_hat.T) @ V_hat
    return np_truncate(U_hat, S_hat1, V_hat, tol, relative, min_rank, max_rank, **trunc)


def np_parallel_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank,
                         inner, substeps, **trunc):
    """Parallel BUG [CKL24]: K, L and S (in the old bases) from Y0, block core, truncation."""
    F = _rhs(A1, A2, B)
    r = S0.shape[0]
    FY0 = F(U0 @ S0 @ V0.T)
    K1 = U0 @ S0 + h * FY0 @ V0
    L1 = V0 @ S0.T + h * FY0.T @ U0
    S_bar = S0 + h * U0.T @ FY0 @ V0
    U_hat, V_hat = np_augment(U0, K1), np_augment(V0, L1)
    Ut, Vt = U_hat[:, r:], V_hat[:, r:]
    S_hat = np.block([[S_bar, L1.T @ Vt], [Ut.T @ K1, np.zeros((Ut.shape[1], Vt.shape[1]),
                                                                dtype=S0.dtype)]])
    return np_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank, **trunc)


def np_flow(f, Y, h, inner):
    """One step of the inner solver (``substeps`` is 1 in every case) for an autonomous f."""
    if inner == "euler":
        return Y + h * f(Y)
    k1 = f(Y)
    k2 = f(Y + h / 2 * k1)
    k3 = f(Y + h / 2 * k2)
    k4 = f(Y + h * k3)
    return Y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def np_midpoint_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank,
                         inner, substeps, variant, galerkin="flow", **trunc):
    """[CEKL24] midpoint BUG: the augmented BUG step over h/2 (truncated for "3r"), bases
    [U0, U_half, F_half V_half], the Galerkin flow over h, truncation. ``galerkin=
    "midpoint_rule"``: the Galerkin flow replaced by ``S_hat0 + h U^T F_half V`` (an
    earlier version of lowrank_ref); ``trunc``: a bug of :func:`np_truncate` in every
    truncation."""
    assert substeps == 1
    F = _rhs(A1, A2, B)
    Y0 = U0 @ S0 @ V0.T
    K = np_flow(lambda K: F(K @ V0.T) @ V0, U0 @ S0, h / 2, inner)
    L = np_flow(lambda L: F(U0 @ L.T).T @ U0, V0 @ S0.T, h / 2, inner)
    Uh, Vh = np_augment(U0, K), np_augment(V0, L)
    Sh = np_flow(lambda S: Uh.T @ F(Uh @ S @ Vh.T) @ Vh, Uh.T @ Y0 @ Vh, h / 2, inner)
    if variant == "3r":
        half = np_truncate(Uh, Sh, Vh, tol, relative, min_rank, max_rank, **trunc)
        Uh, Sh, Vh = half["U"], half["S"], half["V"]
    Fh = F(Uh @ Sh @ Vh.T)
    U = np_augment(U0, np.concatenate([Uh, Fh @ Vh], axis=1))
    V = np_augment(V0, np.concatenate([Vh, Fh.T @ Uh], axis=1))
    if galerkin == "midpoint_rule":
        S1 = U.T @ Y0 @ V + h * U.T @ Fh @ V
    else:
        S1 = np_flow(lambda S: U.T @ F(U @ S @ V.T) @ V, U.T @ Y0 @ V, h, inner)
    return np_truncate(U, S1, V, tol, relative, min_rank, max_rank, **trunc)


def np_second_order_parallel_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank,
                                      max_rank, inner, substeps, old_bases=False, **trunc):
    """[Kus24] second-order parallel BUG: bases augmented by F(Y0), then K-, L- and
    S-flows in them, block core with a zero new-new block, truncation. ``old_bases``: the
    flows in U0, V0 (the first-order parallel BUG's, with its S-step)."""
    assert substeps == 1
    F = _rhs(A1, A2, B)
    Y0 = U0 @ S0 @ V0.T
    F0 = F(Y0)
    Ua, Va = (U0, V0) if old_bases else (np_augment(U0, F0 @ V0), np_augment(V0, F0.T @ U0))
    K = np_flow(lambda K: F(K @ Va.T) @ Va, Y0 @ Va, h, inner)
    L = np_flow(lambda L: F(Ua @ L.T).T @ Ua, Y0.T @ Ua, h, inner)
    Sb = np_flow(lambda S: Ua.T @ F(Ua @ S @ Va.T) @ Va, Ua.T @ Y0 @ Va, h, inner)
    U, V = np_augment(Ua, K), np_augment(Va, L)
    ku, kv = Ua.shape[1], Va.shape[1]
    S = np.zeros((U.shape[1], V.shape[1]), dtype=S0.dtype)
    S[:ku, :kv], S[:ku, kv:], S[ku:, :kv] = Sb, L.T @ V[:, kv:], U[:, ku:].T @ K
    return np_truncate(U, S, V, tol, relative, min_rank, max_rank, **trunc)


#: (a, b) of the explicit tableaux (the nodes c do not matter: the families' F is autonomous)
NP_TABLEAUX = {
    "heun": ([[0, 0], [1, 0]], [1 / 2, 1 / 2]),
    "midpoint": ([[0, 0], [1 / 2, 0]], [0, 1]),
    "rk3": ([[0, 0, 0], [1 / 2, 0, 0], [-1, 2, 0]], [1 / 6, 2 / 3, 1 / 6]),
    "ssprk3": ([[0, 0, 0], [1, 0, 0], [1 / 4, 1 / 4, 0]], [1 / 6, 1 / 6, 2 / 3]),
    "rk4": ([[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 1 / 2, 0, 0], [0, 0, 1, 0]],
            [1 / 6, 1 / 3, 1 / 3, 1 / 6]),
}


def np_rk_bug_step(U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank, max_rank, tableau,
                   stages="2r", bases="stages"):
    """[NR25] RK-BUG: stage i is the Galerkin projection of the Runge-Kutta stage onto bases
    spanned by U0 and F_j V_j of every earlier stage j, truncated by tol alone; the result
    likewise with the weights b. ``stages="clamped"``: stages truncated like the
    result; ``bases="Y0"``: stage bases [U0, Z_i V0] from Y0 alone (both earlier versions
    of lowrank_ref)."""
    F = _rhs(A1, A2, B)
    a, b = NP_TABLEAUX[tableau]
    Y0 = U0 @ S0 @ V0.T
    FY, Us, Vs = [F(Y0)], [U0], [V0]
    for i in range(1, len(b) + 1):
        w = a[i][:i] if i < len(b) else b
        Z = Y0 + sum(float(h * wj) * Fj for wj, Fj in zip(w, FY))
        if bases == "Y0":
            U, V = np_augment(U0, Z @ V0), np_augment(V0, Z.T @ U0)
        else:
            U = np_augment(U0, np.concatenate([Fj @ Vj for Fj, Vj in zip(FY, Vs)], axis=1))
            V = np_augment(V0, np.concatenate([Fj.T @ Uj for Fj, Uj in zip(FY, Us)], axis=1))
        if i == len(b):
            return np_truncate(U, U.T @ Z @ V, V, tol, relative, min_rank, max_rank)
        clamp = (min_rank, max_rank) if stages == "clamped" else (1, min(U0.shape[0],
                                                                         V0.shape[0]))
        Yi = np_truncate(U, U.T @ Z @ V, V, tol, relative, *clamp)
        Us.append(Yi["U"])
        Vs.append(Yi["V"])
        FY.append(F(Yi["U"] @ Yi["S"] @ Yi["V"].T))


def _deltas(Ws, bs, X, y):
    """Inputs ``A_i`` and ``dL/dZ_i`` of every layer for ReLU between layers and the mean
    cross-entropy of the last layer's logits."""
    As, Zs = [X], []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        Z = As[-1] @ W.T + b
        Zs.append(Z)
        if i < len(Ws) - 1:
            As.append(np.maximum(Z, 0))
    Z = Zs[-1]
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    P[np.arange(len(y)), y] -= 1
    delta = P / len(y)
    ds = [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        ds[i] = delta
        if i:
            delta = (delta @ Ws[i]) * (Zs[i - 1] > 0)
    return As, ds


def _mlp_gradients(Ws, bs, X, y):
    """``dL/dW_i`` and ``dL/db_i`` of every layer of the MLP (ReLU between layers)."""
    As, ds = _deltas(Ws, bs, X, y)
    return [d.T @ A for d, A in zip(ds, As)], [d.sum(axis=0) for d in ds]


def np_im2col(X, k, stride, padding):
    """The patches of ``X (n, c, h, w)`` under the ``k x k`` windows: one row per output
    pixel ``(n, i, j)``, its entries in the order ``(c, p, q)`` of the kernel ``W[o, c, p,
    q]`` (so that ``W.reshape(c_out, -1)`` applies to them); and ``(h_out, w_out)``."""
    n, c, h, w = X.shape
    h_out, w_out = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    Xp = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    P = np.empty((n, h_out, w_out, c, k, k), dtype=X.dtype)
    for p in range(k):
        for q in range(k):
            window = Xp[:, :, p:p + stride * (h_out - 1) + 1:stride,
                        q:q + stride * (w_out - 1) + 1:stride]       # (n, c, h_out, w_out)
            P[..., p, q] = window.transpose(0, 2, 3, 1)
    return P.reshape(n * h_out * w_out, c * k * k), (h_out, w_out)


def _conv_gradients(Ws, bs, X, y, k, stride, padding):
    """``dL/dW_i``, ``dL/db_i`` of conv (kernel matrix ``Ws[0] (c_out, c_in k k)``), ReLU,
    flatten (channel-major, as NCHW), dense ``Ws[1]``, mean cross-entropy."""
    P, (h_out, w_out) = np_im2col(X, k, stride, padding)
    n, c_out = X.shape[0], Ws[0].shape[0]
    Z = P @ Ws[0].T + bs[0]                          # the convolution, one row per pixel
    A = np.maximum(Z, 0).reshape(n, h_out, w_out, c_out).transpose(0, 3, 1, 2).reshape(n, -1)
    _, (d,) = _deltas([Ws[1]], [bs[1]], A, y)        # dL/d logits
    dA = (d @ Ws[1]).reshape(n, c_out, h_out, w_out).transpose(0, 2, 3, 1).reshape(-1, c_out)
    dZ = dA * (Z > 0)
    return [dZ.T @ P, d.T @ A], [dZ.sum(axis=0), d.sum(axis=0)]


def _fit(A, shape):
    """``A`` cropped or zero-padded to ``shape`` (a buffer kept by position)."""
    out = np.zeros(shape, dtype=A.dtype)
    k = tuple(slice(0, min(a, b)) for a, b in zip(A.shape, shape))
    out[k] = A[k]
    return out


class NpSGD:
    """Plain SGD: the directions are the projected gradients ``G V0``, ``G^T U0``, ``U^T G V``."""

    coordinatewise = False

    def start(self):
        pass

    def plain(self, key, g):
        return g

    def kl(self, i, U0, V0, G):
        return G @ V0, G.T @ U0

    def core(self, i, U, V, G, tangent=None):
        return U.T @ G @ V


class NpMomentum(NpSGD):
    """Heavy ball as lowrank_ref.directions.Momentum documents it, with a dense velocity
    ``M``: ``N = mu M + G``; directions ``N V0``, ``N^T U0``, ``U^T N V``; kept ``P_T N`` at
    ``W0`` (fixed rank, parallel: ``tangent`` given) or ``U (U^T N V) V^T``.
    ``positional=True``: the bug of keeping the velocities of K, L and S as arrays indexed
    by position, i.e. left in the old bases."""

    def __init__(self, mu, positional=False):
        self.mu, self.positional, self.M, self.N, self.v = mu, positional, {}, {}, {}

    def plain(self, key, g):
        self.v[key] = g if key not in self.v else self.mu * self.v[key] + g
        return self.v[key]

    def _positional(self, key, g):
        old = self.v.get(key)
        self.v[key] = g if old is None else g + self.mu * _fit(old, g.shape)
        return self.v[key]

    def kl(self, i, U0, V0, G):
        if self.positional:
            return self._positional((i, "K"), G @ V0), self._positional((i, "L"), G.T @ U0)
        self.N[i] = G + self.mu * self.M[i] if i in self.M else G
        return self.N[i] @ V0, self.N[i].T @ U0

    def core(self, i, U, V, G, tangent=None):
        if self.positional:
            return self._positional((i, "S"), U.T @ G @ V)
        N = G + self.mu * self.M[i] if i in self.M else G
        D = U.T @ N @ V
        if tangent is None:
            self.M[i] = U @ D @ V.T
        else:
            U0, V0 = tangent
            PU, PV, N0 = U0 @ U0.T, V0 @ V0.T, self.N[i]
            self.M[i] = PU @ N0 + N0 @ PV - PU @ N0 @ PV
        return D


class NpCarriedAdam(NpSGD):
    """Adam with carried moments as lowrank_ref.adam.CarriedAdam documents it, in the
    singular coordinates of each layer. ``like_first=True``: the bug of transporting the
    second moments like the first ones (``v <- T v T^T``, clamped at 0 where that turned it
    negative, instead of the squared transitions)."""

    coordinatewise = True

    def __init__(self, beta1, beta2, eps, like_first=False):
        self.b1, self.b2, self.eps, self.like_first = beta1, beta2, eps, like_first
        self.t, self.pm, self.st = 0, {}, {}

    def start(self):
        self.t += 1

    def adam(self, g, m, v):
        m = self.b1 * m + (1 - self.b1) * g
        v = self.b2 * v + (1 - self.b2) * g * g
        return (m / (1 - self.b1 ** self.t)) / (np.sqrt(v / (1 - self.b2 ** self.t))
                                                + self.eps), m, v

    def plain(self, key, g):
        m, v = self.pm.get(key, (np.zeros_like(g), np.zeros_like(g)))
        d, *self.pm[key] = self.adam(g, m, v)
        return d

    def carry(self, m, v, A, B):
        vv = np.maximum(A @ v @ B.T, 0) if self.like_first else (A * A) @ v @ (B * B).T
        return A @ m @ B.T, vv

    def kl(self, i, U0, V0, G):
        s = self.st.setdefault(i, {})
        if "V" in s:
            I_u, I_v = np.eye(U0.shape[0], dtype=U0.dtype), np.eye(V0.shape[0], dtype=V0.dtype)
            s["mK"], s["vK"] = self.carry(s["mK"], s["vK"], I_u, V0.T @ s["V"])
            s["mL"], s["vL"] = self.carry(s["mL"], s["vL"], I_v, U0.T @ s["U"])
        else:
            s["mK"] = s["vK"] = np.zeros((U0.shape[0], U0.shape[1]), dtype=U0.dtype)
            s["mL"] = s["vL"] = np.zeros((V0.shape[0], V0.shape[1]), dtype=V0.dtype)
        DK, s["mK"], s["vK"] = self.adam(G @ V0, s["mK"], s["vK"])
        DL, s["mL"], s["vL"] = self.adam(G.T @ U0, s["mL"], s["vL"])
        s["U"], s["V"] = U0, V0
        return DK, DL

    def core(self, i, U, V, G, tangent=None):
        s = self.st[i]
        if "Uh" in s:
            s["mS"], s["vS"] = self.carry(s["mS"], s["vS"], U.T @ s["Uh"], V.T @ s["Vh"])
        else:
            s["mS"] = s["vS"] = np.zeros((U.shape[1], V.shape[1]), dtype=U.dtype)
        D, s["mS"], s["vS"] = self.adam(U.T @ G @ V, s["mS"], s["vS"])
        s["Uh"], s["Vh"] = U, V
        return D


def np_augment_svd(U0, K1):
    """[U0, Q] with Q the left singular vectors of (I - U0 U0^T) K1 (the nonzero ones): the
    new directions in the coordinates the carried Adam's S-moments are kept in."""
    m, r = U0.shape
    R = K1 - U0 @ (U0.T @ K1)
    R = R - U0 @ (U0.T @ R)
    Q, s, _ = np.linalg.svd(R, full_matrices=False)
    keep = s > max(m, r) * np.finfo(K1.dtype).eps * np.linalg.norm(K1, 2)
    p = min(int(keep.sum()), K1.shape[1], m - r)
    return np.concatenate([U0, Q[:, :p]], axis=1)


def np_dlrt_step(s_at_w0=False, galerkin=True, orth="qr", positional=False, like_first=False,
                 **trunc):
    """DLRT steps of [SZKCT22] ("fixed" rank, the one-gradient "adaptive" step, the
    "parallel" step) on an MLP, or (``kernel_size`` given) on conv, ReLU, flatten, dense;
    one step with SGD, or a trajectory (one step per batch ``X[k]``) with heavy-ball momentum
    (``momentum`` given) or Adam with carried moments (``beta1`` given).

    ``s_at_w0``: the fixed-rank S-step gradient taken at W0 instead of W~ = U1 S~0 V1^T;
    ``positional``, ``like_first``: the bugs of NpMomentum and NpCarriedAdam."""
    def candidate(X, y, lr, method, tau, min_rank, max_rank, kernel_size=None, stride=1,
                  padding=0, momentum=None, beta1=None, beta2=None, eps=None, **layers):
        if momentum is not None:
            rule, batches = NpMomentum(momentum, positional), list(zip(X, y))
        elif beta1 is not None:
            rule, batches = NpCarriedAdam(beta1, beta2, eps, like_first), list(zip(X, y))
        else:
            rule, batches = NpSGD(), [(X, y)]
        idx = []
        while f"b{len(idx)}" in layers:
            idx.append(len(idx))
        lowrank = [i for i in idx if f"U{i}" in layers]
        fac = {i: (layers[f"U{i}"], layers[f"S{i}"], layers[f"V{i}"]) for i in lowrank}
        dense = {i: layers[f"W{i}"] for i in idx if i not in fac}
        bs = [layers[f"b{i}"] for i in idx]
        for Xk, yk in batches:
            def gradients(W):
                if kernel_size is None:
                    return _mlp_gradients(W, bs, Xk, yk)
                return _conv_gradients(W, bs, Xk, yk, kernel_size, stride, padding)

            Ws = [(fac[i][0] @ fac[i][1] @ fac[i][2].T) if i in fac else dense[i] for i in idx]
            Gs, dbs = gradients(Ws)
            rule.start()
            new_bs = [bs[i] - lr * rule.plain(f"b{i}", dbs[i]) for i in idx]
            new_dense = {i: dense[i] - lr * rule.plain(f"W{i}", Gs[i]) for i in dense}
            new = {}
            for i in lowrank:
                U0, S0, V0 = fac[i]
                if rule.coordinatewise:           # the singular coordinates of W0
                    P, sv, Qt = np.linalg.svd(S0)
                    U0, S0, V0 = U0 @ P, np.diag(sv).astype(S0.dtype), V0 @ Qt.T
                G = Gs[i]
                DK, DL = rule.kl(i, U0, V0, G)
                K1, L1 = U0 @ S0 - lr * DK, V0 @ S0.T - lr * DL
                if method == "fixed":
                    U1, V1 = _basis(K1, orth), _basis(L1, orth)
                    S_t = (U1.T @ U0) @ S0 @ (V0.T @ V1) if galerkin else S0
                    new[i] = (U1, S_t, V1, (U0, V0))
                    continue
                augment = np_augment_svd if rule.coordinatewise else np_augment
                U_hat, V_hat = augment(U0, K1), augment(V0, L1)
                if method == "adaptive":
                    S_hat1 = (U_hat.T @ U0) @ S0 @ (V0.T @ V_hat) \
                        - lr * rule.core(i, U_hat, V_hat, G)
                else:                             # parallel: [[S_bar, L1^T V~], [U~^T K1, 0]]
                    r = S0.shape[0]
                    S_bar = S0 - lr * rule.core(i, U0, V0, G, tangent=(U0, V0))
                    Ut, Vt = U_hat[:, r:], V_hat[:, r:]
                    S_hat1 = np.block([[S_bar, L1.T @ Vt],
                                       [Ut.T @ K1, np.zeros((Ut.shape[1], Vt.shape[1]),
                                                            dtype=S0.dtype)]])
                hi = max_rank
                res = np_truncate(U_hat, S_hat1, V_hat, tau, True, min(min_rank, hi), hi,
                                  **trunc)
                new[i] = (res["U"], res["S"], res["V"], None)
            if method == "fixed":        # second pass at W~ (biases, dense layers at W0)
                Wt = [(new[i][0] @ new[i][1] @ new[i][2].T) if i in new else Ws[i]
                      for i in idx]
                Gs_t, _ = gradients(Wt)
                for i in lowrank:
                    U1, S_t, V1, tangent = new[i]
                    Gt = Gs[i] if s_at_w0 else Gs_t[i]
                    new[i] = (U1, S_t - lr * rule.core(i, U1, V1, Gt, tangent=tangent), V1,
                              None)
            fac = {i: new[i][:3] for i in lowrank}
            dense, bs = new_dense, new_bs
        out = {f"b{i}": bs[i] for i in idx}
        out.update({f"W{i}": W for i, W in dense.items()})
        for i in lowrank:
            out[f"U{i}"], out[f"S{i}"], out[f"V{i}"] = fac[i]
            out[f"rank{i}"] = int(fac[i][1].shape[0])
        return out

    return candidate


INDEPENDENT = {
    "truncate": np_truncate,
    "projector_splitting_step": np_projector_splitting_step,
    "bug_step": np_bug_step,
    "adaptive_bug_step": np_adaptive_bug_step,
    "parallel_bug_step": np_parallel_bug_step,
    "midpoint_bug_step": np_midpoint_bug_step,
    "rk_bug_step": np_rk_bug_step,
    "second_order_parallel_bug_step": np_second_order_parallel_bug_step,
    "dlrt_layer_step": np_dlrt_step(),
    "dlrt_network_step": np_dlrt_step(),
    "dlrt_conv_layer_step": np_dlrt_step(),
    "dlrt_parallel_step": np_dlrt_step(),
    "dlrt_momentum_trajectory": np_dlrt_step(),
    "dlrt_adam_trajectory": np_dlrt_step(),
}


def _with(fn, **flags):
    return lambda **kw: fn(**kw, **flags)


def _float32_only(fn):
    """Fail loudly if the candidate is handed float64 arrays in a float32 check."""
    def candidate(**kw):
        for k, v in kw.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                assert v.dtype == np.float32, (k, v.dtype)
        out = fn(**kw)
        for k, v in out.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                assert v.dtype == np.float32, (k, v.dtype)
        return out
    return candidate


# ---------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------
def test_the_public_api_is_importable_from_the_subpackage():
    """What the oracle guide (docs/oracle.md) and tutorial 06 use, as ``from lowrank_ref import oracle; oracle.X``."""
    api = {"FAMILIES", "COND_MAX", "Tol", "Case", "Failure", "Report", "cases", "check",
           "check_case", "resolvable", "reference", "linear_rhs", "export", "load", "verify",
           "clear_cache", "export_command", "verify_command"}
    assert set(oracle.__all__) == api
    for name in api:
        assert getattr(oracle, name) is not None, name
    from lowrank_ref.oracle import check_case, cases  # noqa: F401  (and by name)
    assert callable(oracle.cases) and callable(oracle.check)   # functions, not the modules


def test_families_are_the_function_names_and_the_case_count_is_modest():
    assert oracle.FAMILIES == ("truncate", "projector_splitting_step", "bug_step",
                               "adaptive_bug_step", "parallel_bug_step", "dlrt_layer_step",
                               "dlrt_network_step", "midpoint_bug_step", "rk_bug_step",
                               "dlrt_conv_layer_step", "second_order_parallel_bug_step",
                               "dlrt_parallel_step", "dlrt_momentum_trajectory",
                               "dlrt_adam_trajectory")
    all_cases = [c for f in oracle.FAMILIES for c in oracle.cases(f)]
    assert 40 <= len(all_cases) <= 160
    names = [c.name for c in all_cases]
    assert len(set(names)) == len(names)
    for c in all_cases:
        assert c.name.startswith(c.family + ".")
        assert all(v is not None for v in c.inputs.values())


@pytest.mark.parametrize("call", [oracle.cases, lambda f: oracle.check(f, None),
                                  oracle.reference])
def test_unknown_family_is_a_clear_error_listing_the_families(call):
    with pytest.raises(ValueError) as info:
        call("svd_step")
    for family in oracle.FAMILIES:
        assert family in str(info.value)
    assert "'svd_step'" in str(info.value)


def test_cases_are_deterministic():
    first = {f: oracle.cases(f) for f in oracle.FAMILIES}
    oracle.clear_cache()
    for f in oracle.FAMILIES:
        again = oracle.cases(f)
        assert [c.name for c in again] == [c.name for c in first[f]]
        for a, b in zip(first[f], again):
            assert a.tol == b.tol
            for part in ("inputs", "expected"):
                da, db = getattr(a, part), getattr(b, part)
                assert da.keys() == db.keys()
                for k in da:
                    if isinstance(da[k], np.ndarray):
                        assert da[k].dtype == db[k].dtype and np.array_equal(da[k], db[k]), \
                            (a.name, part, k)
                    else:
                        assert da[k] == db[k] and type(da[k]) is type(db[k])


def test_cases_cover_the_required_shapes_ranks_and_spectra():
    shapes, ranks, smallest = set(), set(), math.inf
    for f in oracle.FAMILIES[1:5]:
        for c in oracle.cases(f):
            U0 = c.inputs["U0"]
            shapes.add((U0.shape[0], c.inputs["V0"].shape[0]))
            ranks.add((U0.shape[1], min(U0.shape[0], c.inputs["V0"].shape[0])))
            smallest = min(smallest, np.linalg.svd(c.inputs["S0"], compute_uv=False).min())
            assert c.inputs["inner"] == "euler"
    assert {(2, 2), (3, 1), (1, 3), (300, 200)} <= shapes
    assert any(r == 1 for r, _ in ranks) and any(r == mn for r, mn in ranks if r > 1)
    assert smallest < 1e-11
    trunc = {c.name.split(".", 1)[1]: c for c in oracle.cases("truncate")}
    assert trunc["tol0_relative"].inputs["tol"] == 0.0
    assert not trunc["ties_kept"].inputs["relative"]
    assert trunc["max_rank_clamp"].expected["S"].shape == (2, 2)
    assert trunc["min_rank_clamp"].expected["S"].shape == (3, 3)
    assert trunc["min_rank_above_k_3x1"].expected["S"].shape == (1, 1)
    d = trunc["unsorted_diagonal"].inputs["S_hat"]
    assert np.array_equal(d, np.diag(np.diag(d))) and np.any(np.diff(np.diag(d)) > 0)


def _rank_decisions(case):
    """``(quantity, [(sigma, theta, lo, hi)])``: every truncation that decides a rank of
    ``case``, with the threshold and the clamp of this package's rule."""
    from lowrank_ref.oracle.margins import truncated_spectra, truncation_clamps
    inp = case.inputs
    if case.family == "truncate":
        sigma = np.linalg.svd(inp["S_hat"], compute_uv=False)
        theta = inp["tol"] * np.linalg.norm(sigma) if inp["relative"] else inp["tol"]
        return [("rank", [(sigma, theta, inp["min_rank"], inp["max_rank"])])]
    if case.family.startswith("dlrt"):
        if inp["method"] == "fixed":
            return []
        hi = inp["max_rank"]
        idx = [q for q in case.tol if q.startswith("rank[")]
        out = {q: [] for q in idx}
        for k, s in enumerate(truncated_spectra(case.family, inp)):   # per step, layer order
            out[idx[k % len(idx)]].append((s, inp["tau"] * np.linalg.norm(s),
                                           min(inp["min_rank"], hi), hi))
        return list(out.items())
    if "tol" not in inp:
        return []
    spectra = truncated_spectra(case.family, inp)
    return [("rank", [(s, inp["tol"] * np.linalg.norm(s) if inp["relative"] else inp["tol"],
                       lo, hi)
                      for s, (lo, hi) in zip(spectra, truncation_clamps(case.family, inp,
                                                                       len(spectra)))])]


@pytest.mark.parametrize("family", oracle.FAMILIES)
def test_rank_margin_is_the_distance_to_a_change_of_the_package_rank(family):
    """A margin m (relative to ||sigma||) means: moving the threshold by less than m
    keeps every rank the package's rule (truncation_rank) decides, moving it by a bit more
    changes one. Where the margin is None, no threshold changes the clamped rank."""
    from lowrank_ref.truncation import truncation_rank
    checked = 0
    for c in oracle.cases(family):
        for q, truncations in _rank_decisions(c):
            m = c.tol[q].margin

            def rank(s, theta, lo, hi):
                return truncation_rank(s, max(theta, 0.0), relative=False, min_rank=lo,
                                       max_rank=hi)

            changed = False
            for s, theta, lo, hi in truncations:
                r, unit = rank(s, theta, lo, hi), np.linalg.norm(s)
                if m is None:
                    assert {rank(s, t * unit, lo, hi) for t in (0.0, 0.5, 1.0, 2.0)} == {r}
                    continue
                for sign in (1, -1):
                    assert rank(s, theta + sign * 0.99 * m * unit, lo, hi) == r, (c.name, q)
                    changed |= rank(s, theta + sign * 1.01 * m * unit, lo, hi) != r
            assert m is None or changed, (c.name, q, m)
            checked += 1
    assert checked >= (0 if family in ("projector_splitting_step", "bug_step") else 6)


def test_every_rank_decision_has_a_float64_margin_and_only_fine_ones_skip_in_float32():
    skipped32 = []
    for f in oracle.FAMILIES:
        for c in oracle.cases(f):
            assert oracle.resolvable(c, np.float64), c.name
            if not oracle.resolvable(c, np.float32):
                skipped32.append(c.name)
            # the matrix is compared everywhere except where a tie straddles the cut
            assert any(q.startswith("matrix") for q in c.tol) == ("ties_at_cut" not in c.name)
            for q, t in c.tol.items():
                assert t.cond >= 1.0 and t.cond <= oracle.COND_MAX
    assert sorted(skipped32) == sorted([
        "truncate.tol0_absolute_small_tail", "truncate.300x200_k40_spread_absolute_1e-9",
        "adaptive_bug_step.50x40_r5_spread_unforced_absolute_fine",
        "parallel_bug_step.50x40_r5_spread_unforced_absolute_fine",
        "dlrt_parallel_step.40-30-20-5_r5-4_tau0"])


# ---------------------------------------------------------------------------------------
# the reference and the independent candidate pass
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", oracle.FAMILIES)
def test_reference_passes(family):
    report = oracle.check(family, oracle.reference(family))
    assert report.passed, str(report)
    assert report.n_cases == len(oracle.cases(family)) and not report.skipped


@pytest.mark.parametrize("family", oracle.FAMILIES)
def test_reference_run_in_float32_passes_with_float32_tolerances(family):
    assert oracle.check(family, oracle.reference(family), dtype=np.float32).passed


@pytest.mark.parametrize("family", ["dlrt_layer_step", "dlrt_network_step",
                                    "dlrt_conv_layer_step"])
def test_three_pass_adaptive_dlrt_gives_the_same_expected_output(family):
    report = oracle.check(family, oracle.reference(family, passes=3))
    assert report.passed, str(report)


@pytest.mark.parametrize("family", oracle.FAMILIES)
def test_independent_float64_candidate_passes(family):
    report = oracle.check(family, INDEPENDENT[family])
    assert report.passed, str(report)


@pytest.mark.parametrize("family", oracle.FAMILIES)
def test_independent_float32_candidate_passes_with_float32_tolerances(family):
    report = oracle.check(family, _float32_only(INDEPENDENT[family]), dtype=np.float32)
    assert report.passed, str(report)
    assert report.dtype == "float32" and report.n_cases >= len(oracle.cases(family)) - 2
    # float32 results are NOT within float64 tolerances: the dtype argument matters
    cast = lambda **kw: INDEPENDENT[family](**{  # noqa: E731
        k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for k, v in kw.items()})
    if family != "truncate":
        assert not oracle.check(family, cast).passed


# ---------------------------------------------------------------------------------------
# mutation tests: each known bug (docs/design.md, section "Known bugs of other implementations") is caught, by the right quantity
# ---------------------------------------------------------------------------------------
MUTANTS = [
    # (family, bug, candidate, quantity that must fail)
    ("truncate", "V from Vh[:, :r] (transposed)",
     _with(np_truncate, transposed_v=True), "matrix"),
    ("adaptive_bug_step", "V from Vh[:, :r] (transposed)",
     _with(np_adaptive_bug_step, transposed_v=True), "matrix"),
    ("parallel_bug_step", "V from Vh[:, :r] (transposed)",
     _with(np_parallel_bug_step, transposed_v=True), "matrix"),
    ("dlrt_layer_step", "V from Vh[:, :r] (transposed)",
     np_dlrt_step(transposed_v=True), "matrix"),
    ("dlrt_network_step", "V from Vh[:, :r] (transposed)",
     np_dlrt_step(transposed_v=True), "matrix"),
    ("dlrt_conv_layer_step", "V from Vh[:, :r] (transposed)",
     np_dlrt_step(transposed_v=True), "matrix"),
    ("bug_step", "Galerkin projection of S0 forgotten",
     _with(np_bug_step, galerkin=False), "matrix"),
    ("adaptive_bug_step", "S0 padded into a fresh basis of [K1, U0]",
     _with(np_adaptive_bug_step, unprojected=True), "matrix"),
    ("dlrt_layer_step", "Galerkin projection of S0 forgotten",
     np_dlrt_step(galerkin=False), "matrix"),
    ("truncate", "a diagonal core taken as its SVD without sorting",
     _with(np_truncate, diagonal_shortcut=True), "rank"),
    ("truncate", "tail excludes the last singular value",
     _with(np_truncate, tail="exclude_last"), "rank"),
    ("truncate", "last singular value counted twice",
     _with(np_truncate, tail="double"), "rank"),
    ("adaptive_bug_step", "tail excludes the last singular value",
     _with(np_adaptive_bug_step, tail="exclude_last"), "rank"),
    ("adaptive_bug_step", "last singular value counted twice",
     _with(np_adaptive_bug_step, tail="double"), "rank"),
    ("parallel_bug_step", "tail excludes the last singular value",
     _with(np_parallel_bug_step, tail="exclude_last"), "rank"),
    ("parallel_bug_step", "last singular value counted twice",
     _with(np_parallel_bug_step, tail="double"), "rank"),
    ("dlrt_layer_step", "tail excludes the last singular value",
     np_dlrt_step(tail="exclude_last"), "rank"),
    ("dlrt_network_step", "last singular value counted twice",
     np_dlrt_step(tail="double"), "rank"),
    ("dlrt_conv_layer_step", "last singular value counted twice",
     np_dlrt_step(tail="double"), "rank"),
    ("truncate", "loop never tests the last index (rank stays at the old r)",
     _with(np_truncate, last_index_tested=False), "rank"),
    ("adaptive_bug_step", "loop never tests the last index (rank stays at the old r)",
     _with(np_adaptive_bug_step, last_index_tested=False), "rank"),
    ("dlrt_layer_step", "loop never tests the last index (rank stays at the old r)",
     np_dlrt_step(last_index_tested=False), "rank"),
    ("dlrt_network_step", "loop never tests the last index (rank stays at the old r)",
     np_dlrt_step(last_index_tested=False), "rank"),
    ("bug_step", "K1 normalised by columns, not orthonormalised",
     _with(np_bug_step, orth="colnorm"), "orthonormality"),
    ("bug_step", "K1 used as the basis unorthonormalised",
     _with(np_bug_step, orth="none"), "orthonormality"),
    ("projector_splitting_step", "K1 normalised by columns, not orthonormalised",
     _with(np_projector_splitting_step, orth="colnorm"), "orthonormality"),
    ("dlrt_layer_step", "K1 normalised by columns, not orthonormalised",
     np_dlrt_step(orth="colnorm"), "orthonormality"),
    ("dlrt_network_step", "K1 used as the basis unorthonormalised",
     np_dlrt_step(orth="none"), "orthonormality"),
    ("dlrt_conv_layer_step", "K1 normalised by columns, not orthonormalised",
     np_dlrt_step(orth="colnorm"), "orthonormality"),
    ("dlrt_layer_step", "fixed-rank S-step gradient at W0 instead of W~",
     np_dlrt_step(s_at_w0=True), "matrix"),
    ("dlrt_network_step", "fixed-rank S-step gradient at W0 instead of W~",
     np_dlrt_step(s_at_w0=True), "matrix"),
    ("dlrt_conv_layer_step", "fixed-rank S-step gradient at W0 instead of W~",
     np_dlrt_step(s_at_w0=True), "matrix"),
    ("midpoint_bug_step", "Galerkin flow replaced by the midpoint rule (an earlier version)",
     _with(np_midpoint_bug_step, galerkin="midpoint_rule"), "matrix"),
    ("midpoint_bug_step", "V from Vh[:, :r] (transposed)",
     _with(np_midpoint_bug_step, transposed_v=True), "matrix"),
    ("rk_bug_step", "stage bases [U0, Z_i V0] from Y0 alone (an earlier version)",
     _with(np_rk_bug_step, bases="Y0"), "matrix"),
    ("rk_bug_step", "stages truncated like the result (an earlier version)",
     _with(np_rk_bug_step, stages="clamped"), "matrix"),
    ("second_order_parallel_bug_step", "flows in the old bases (no augmentation by F(Y0))",
     _with(np_second_order_parallel_bug_step, old_bases=True), "matrix"),
    ("second_order_parallel_bug_step", "V from Vh[:, :r] (transposed)",
     _with(np_second_order_parallel_bug_step, transposed_v=True), "matrix"),
    ("second_order_parallel_bug_step", "tail excludes the last singular value",
     _with(np_second_order_parallel_bug_step, tail="exclude_last"), "rank"),
    ("dlrt_parallel_step", "V from Vh[:, :r] (transposed)",
     np_dlrt_step(transposed_v=True), "matrix"),
    ("dlrt_parallel_step", "last singular value counted twice",
     np_dlrt_step(tail="double"), "rank"),
    ("dlrt_momentum_trajectory", "velocity kept by position (in the old bases)",
     np_dlrt_step(positional=True), "matrix"),
    ("dlrt_adam_trajectory", "second moments transported like the first",
     np_dlrt_step(like_first=True), "matrix"),
]


def _caught(report, quantity):
    """Failures whose quantity (without the layer index) is ``quantity``."""
    return [f for f in report.failures if f.quantity.split("[")[0] == quantity]


@pytest.mark.parametrize("family,bug,candidate,quantity", MUTANTS,
                         ids=[f"{m[0]}-{m[1]}" for m in MUTANTS])
def test_known_bug_is_caught_by_the_right_quantity(family, bug, candidate, quantity):
    report = oracle.check(family, candidate)
    assert not report.passed, f"{bug} not caught in {family}"
    caught = _caught(report, quantity)
    assert caught, f"{bug}: no {quantity} failure in\n{report}"
    for f in caught:
        assert f.error > f.tol and f.case.startswith(family + ".")
        assert f.case in str(report) and f.quantity in str(report)


@pytest.mark.parametrize("family,case_name,candidate,expected_rank,old_rank", [
    ("truncate", "truncate.tail_met_only_at_last_index",
     _with(np_truncate, last_index_tested=False), 3, 2),
    ("dlrt_layer_step", "dlrt_layer_step.adaptive_12x10_r3_tail_met_only_at_last_index",
     np_dlrt_step(last_index_tested=False), 5, 3),
], ids=["truncate", "dlrt_layer_step"])
def test_loop_that_never_tests_the_last_index_is_caught_by_the_rank_alone(
        family, case_name, candidate, expected_rank, old_rank):
    """docs/design.md, section "Known bugs of other implementations": the published loop
    ``for j in range(2r - 1)`` never tests j = 2r - 1; where only the last tail meets the
    tolerance the rank stays at the old r. Cases built for it: the rule keeps 2r - 1, the
    bug r; the other two published tail bugs keep the right rank there (so the case
    isolates this bug)."""
    case = next(c for c in oracle.cases(family) if c.name == case_name)
    q = "rank" if family == "truncate" else "rank[0]"
    k = 4 if family == "truncate" else 6                  # the size of the core: 2r
    assert expected_rank == k - 1 and old_rank == k // 2
    assert case.tol[q].margin > 0 and oracle.resolvable(case, np.float32)
    failures = oracle.check_case(case, candidate)
    ranks = [f for f in failures if f.quantity == q]
    assert len(ranks) == 1 and ranks[0].message == f"rank {old_rank}, expected {expected_rank}"
    assert str(ranks[0]) == (f"{case_name}  [{q}] error {expected_rank - old_rank:.3e} > tol "
                             f"0.000e+00: rank {old_rank}, expected {expected_rank}")
    for bug in ("exclude_last", "double"):
        other = _with(np_truncate, tail=bug) if family == "truncate" else np_dlrt_step(tail=bug)
        assert oracle.check_case(case, other) == [], bug
    assert oracle.check_case(case, INDEPENDENT[family]) == []


STATE_MUTANTS = [("dlrt_momentum_trajectory", np_dlrt_step(positional=True)),
                 ("dlrt_adam_trajectory", np_dlrt_step(like_first=True))]


@pytest.mark.parametrize("family, mutant", STATE_MUTANTS, ids=[f for f, _ in STATE_MUTANTS])
def test_a_state_left_in_the_old_basis_fails_every_trajectory_by_its_matrix(family, mutant):
    """The bugs real implementations have with optimiser state show only across steps: a
    velocity kept by position (in the old bases), second moments transported like first
    moments. On every trajectory case, in float64 and float32, the mutant fails by the
    represented matrix of a low-rank layer; cut to its first step (no state carried yet),
    every case passes: the failure is the state's."""
    cases = oracle.cases(family)
    assert all(c.inputs["X"].shape[0] >= 3 for c in cases)
    for dtype in (np.float64, np.float32):
        report = oracle.check(family, mutant, dtype=dtype)
        assert {f.case for f in _caught(report, "matrix")} == {c.name for c in cases}, \
            str(report)
    for c in cases:
        first = dict(c.inputs, X=c.inputs["X"][:1], y=c.inputs["y"][:1])
        expected = oracle.reference(family)(**first)
        one_step = c._replace(inputs=first, expected={
            k: (int(v) if np.ndim(v) == 0 else v) for k, v in expected.items()})
        assert oracle.check_case(one_step, mutant) == [], c.name


def test_trajectories_change_bases_and_ranks_inside():
    """Every rank-adaptive trajectory case changes a rank after its first step (a state
    carried from one size to another), and every case changes its bases at every step."""
    from lowrank_ref.oracle.margins import truncated_spectra
    from lowrank_ref.truncation import truncation_rank
    for family in ("dlrt_momentum_trajectory", "dlrt_adam_trajectory"):
        for c in oracle.cases(family):
            inp = c.inputs
            if inp["method"] == "fixed":
                continue
            n, hi = sum(1 for k in inp if k.startswith("U")), inp["max_rank"]
            ranks = [truncation_rank(s, inp["tau"], min_rank=min(inp["min_rank"], hi),
                                     max_rank=hi) for s in truncated_spectra(family, inp)]
            per_step = [ranks[k:k + n] for k in range(0, len(ranks), n)]
            assert len(per_step) == inp["X"].shape[0] >= 3
            assert any(per_step[k] != per_step[k - 1] for k in range(1, len(per_step))), \
                (c.name, per_step)


@pytest.mark.parametrize("case", [c for f in ("dlrt_parallel_step", "dlrt_momentum_trajectory",
                                              "dlrt_adam_trajectory")
                                  for c in oracle.cases(f)], ids=lambda c: c.name)
def test_new_families_case_by_case(case):
    """``oracle.check_case`` on the parallel and state families: the reference and the
    independent implementation pass one case at a time (float32 where resolvable)."""
    assert oracle.check_case(case, oracle.reference(case.family)) == []
    assert oracle.check_case(case, INDEPENDENT[case.family]) == []
    if oracle.resolvable(case, np.float32):
        assert oracle.check_case(case, _float32_only(INDEPENDENT[case.family]),
                                 np.float32) == []


def test_transposed_v_changes_the_weight_when_nothing_is_truncated():
    """docs/design.md, section "Known bugs of other implementations": the transposed-factor bug shows at tol = 0 already."""
    report = oracle.check("truncate", _with(np_truncate, transposed_v=True))
    assert "truncate.tol0_relative" in {f.case for f in _caught(report, "matrix")}


def test_fixed_rank_s_step_at_w0_is_not_a_float64_round_off_effect():
    report = oracle.check("dlrt_layer_step", np_dlrt_step(s_at_w0=True))
    fixed = [f for f in _caught(report, "matrix") if ".fixed_" in f.case]
    assert len(fixed) == 4 and min(f.error / f.tol for f in fixed) > 1e3


# ---------------------------------------------------------------------------------------
# the convolutional DLRT family
# ---------------------------------------------------------------------------------------
CONV = "dlrt_conv_layer_step"


def test_conv_cases_cover_both_methods_at_both_geometries_and_compare_every_invariant():
    """Fixed and adaptive steps at stride 1, padding 0 and at stride 2, padding 1, with a
    3x3 kernel (kernel matrix c_out x 9 c_in: 4 x 18 for 2 -> 4 channels); the rank kept,
    grown and clamped by max_rank; every case compares the invariants of the low-rank
    convolution, its bias and the dense layer."""
    seen, shapes = set(), set()
    for c in oracle.cases(CONV):
        inp, exp = c.inputs, c.expected
        seen.add((inp["method"], inp["stride"], inp["padding"]))
        shapes.add((inp["U0"].shape[0], inp["V0"].shape[0]))
        assert inp["kernel_size"] == 3 and inp["V0"].shape[0] == 9 * inp["X"].shape[1]
        assert inp["X"].ndim == 4 and inp["y"].dtype == np.int64
        assert sorted(exp) == ["S0", "U0", "V0", "W1", "b0", "b1", "rank0"]
        assert set(c.tol) == {"rank[0]", "orthonormality[0]", "matrix[0]",
                              "singular_values[0]", "projector_U[0]", "projector_V[0]",
                              "bias[0]", "weight[1]", "bias[1]"}, c.name
    assert seen == {(m, s, p) for m in ("fixed", "adaptive") for s, p in ((1, 0), (2, 1))}
    assert (4, 18) in shapes
    ranks = {c.name.split(".", 1)[1]: (c.inputs["U0"].shape[1], c.expected["rank0"])
             for c in oracle.cases(CONV)}
    assert ranks["adaptive_2-4_k3_s2_p1_r1_grow"] == (1, 2)
    assert ranks["adaptive_2-4_k3_s1_p0_r2_max_rank"] == (2, 3)


def test_transposed_v_is_caught_on_the_conv_family_by_the_matrix_in_both_dtypes():
    """docs/design.md, section "Known bugs of other implementations": V rebuilt from the
    transposed SVD factor. The fixed-rank step makes no SVD (its cases are unaffected);
    every adaptive case from rank >= 2 (an augmented core of 4 x 4 or 6 x 6) fails by its
    matrix, by orders of magnitude, in float64 and float32. (The 2 x 2 core of the rank-1
    case may have a symmetric right singular factor -- a reflection -- for which the bug
    computes the same V: not required either way.)"""
    mutant = np_dlrt_step(transposed_v=True)
    cases = oracle.cases(CONV)
    adaptive = {c.name for c in cases if c.inputs["method"] == "adaptive"}
    from_rank_2 = {c.name for c in cases if c.name in adaptive and c.inputs["U0"].shape[1] > 1}
    assert len(from_rank_2) == 5
    for dtype, least_ratio in ((np.float64, 1e9), (np.float32, 10.0)):
        report = oracle.check(CONV, mutant, dtype=dtype)
        caught = _caught(report, "matrix")
        assert from_rank_2 <= {f.case for f in caught} <= adaptive, str(report)
        assert min(f.error / f.tol for f in caught) > least_ratio, str(report)


def test_conv_reference_names_the_argument_it_refuses():
    ref = oracle.reference(CONV)
    good = oracle.cases(CONV)[1].inputs
    assert ref(**good)["rank0"] == 2
    for change, error, match in [
            (dict(W1=good["W1"][:, :-1]), ValueError, r"W1 must have shape \(n_classes, 64\)"),
            (dict(kernel_size="3"), TypeError, "kernel_size must be an int"),
            (dict(kernel_size=2), ValueError, "multiple of kh \\* kw = 4"),
            (dict(stride=0), ValueError, "stride"),
            (dict(padding=-1), ValueError, "padding"),
            (dict(X=good["X"][:, :1]), ValueError, r"X must have shape \(batch, 2, h, w\)"),
            (dict(X=good["X"][0]), ValueError, r"X must have shape \(batch, c_in, h, w\)"),
            (dict(X=good["X"][:, :, :1, :1], padding=0), ValueError,
             "X must have images of at least the kernel's size"),
            (dict(method="sgd"), ValueError, "method")]:
        with pytest.raises(error, match=match):
            ref(**dict(good, **change))


# ---------------------------------------------------------------------------------------
# robustness of the checker
# ---------------------------------------------------------------------------------------
def test_candidate_exceptions_and_malformed_outputs_are_failures_not_crashes():
    def raises(**kw):
        raise RuntimeError("backend exploded")

    rep = oracle.check("bug_step", raises)
    assert not rep.passed and {f.quantity for f in rep.failures} == {"exception"}
    assert "backend exploded" in rep.failures[0].message

    rep = oracle.check("bug_step", lambda **kw: [1, 2, 3])
    assert {f.quantity for f in rep.failures} == {"output"}

    def missing(**kw):
        out = np_bug_step(**kw)
        del out["V"]
        return out

    rep = oracle.check("bug_step", missing)
    assert {f.quantity for f in rep.failures} == {"output"}
    assert "'V'" in rep.failures[0].message

    def wrong_shape(**kw):
        out = np_bug_step(**kw)
        out["S"] = out["S"][:, :0]
        return out

    assert {f.quantity for f in oracle.check("bug_step", wrong_shape).failures} == {"output"}

    def nan(**kw):
        out = np_bug_step(**kw)
        out["S"] = out["S"] * np.nan
        return out

    assert "non-finite" in oracle.check("bug_step", nan).failures[0].message

    def bad_rank(**kw):
        out = np_dlrt_step()(**kw)
        out["rank0"] += 1
        return out

    rep = oracle.check("dlrt_layer_step", bad_rank)
    assert {f.quantity for f in rep.failures} == {"output"}


def test_a_wrong_rank_is_reported_as_rank_not_as_a_crash():
    def rank_minus_one(**kw):
        out = np_adaptive_bug_step(**kw)
        r = max(out["S"].shape[0] - 1, 1)
        return {"U": out["U"][:, :r], "S": out["S"][:r, :r], "V": out["V"][:, :r]}

    rep = oracle.check("adaptive_bug_step", rank_minus_one)
    ranks = _caught(rep, "rank")
    assert ranks and all(f.tol == 0 and f.error == 1 for f in ranks)
    assert not _caught(rep, "projector_U")          # not compared across ranks


# ---------------------------------------------------------------------------------------
# one test per golden case: the pattern documented for backend authors (docs/oracle.md, tutorial 06)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", oracle.cases("truncate"), ids=lambda c: c.name)
def test_truncate(case):
    assert oracle.check_case(case, oracle.reference("truncate")) == []


@pytest.mark.parametrize("case", oracle.cases("dlrt_layer_step"), ids=lambda c: c.name)
def test_dlrt_layer_step(case):
    assert oracle.check_case(case, oracle.reference("dlrt_layer_step")) == []


@pytest.mark.parametrize("test", [test_truncate, test_dlrt_layer_step])
def test_the_pattern_gives_one_test_per_case_named_by_it(test):
    (mark,) = test.pytestmark
    family = test.__name__[len("test_"):]
    ids = [mark.kwargs["ids"](c) for c in mark.args[1]]
    assert ids == [c.name for c in oracle.cases(family)] and len(set(ids)) == len(ids)
    assert all(i.startswith(family + ".") for i in ids) and len(ids) >= 10


PATTERN = """
import numpy as np
import pytest
from lowrank_ref import oracle


def my_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
    P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
    theta = tol * np.linalg.norm(s) if relative else tol
    r = len(s) // 2                              # the published loop: starts at the old r
    for j in range(len(s) - 1):                  # ... and never tests the last index
        if np.linalg.norm(s[j:]) <= theta:
            r = j
            break
    r = min(max(r, min_rank), max_rank, len(s))
    return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Qt[:r].T}


@pytest.mark.parametrize("case", oracle.cases("truncate"), ids=lambda c: c.name)
def test_truncate(case):
    assert oracle.check_case(case, my_truncate) == []
"""


def test_a_failing_case_reads_well_in_a_backend_test_suite(tmp_path):
    """The documented pattern in a pytest run of its own, with a buggy backend: ``-k``
    selects one golden case by name, and the failure shows that case's Failure list --
    case, quantity, error, tolerance and what differs."""
    import os
    import subprocess
    import sys
    (tmp_path / "test_backend.py").write_text(PATTERN)
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    run = subprocess.run([sys.executable, "-m", "pytest", "test_backend.py", "-p",
                          "no:cacheprovider", "-k", "truncate.tail_met_only_at_last_index"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert "1 failed" in out and f"{len(oracle.cases('truncate')) - 1} deselected" in out
    assert "test_truncate[truncate.tail_met_only_at_last_index]" in out
    assert "Failure(case='truncate.tail_met_only_at_last_index', quantity='rank', " \
           "error=1.0, tol=0.0, message='rank 2, expected 3')" in out
    # and the same Failure list, printed one line per failure
    case = next(c for c in oracle.cases("truncate")
                if c.name == "truncate.tail_met_only_at_last_index")
    lines = [str(f) for f in oracle.check_case(case, _with(np_truncate,
                                                            last_index_tested=False))]
    assert lines[0] == ("truncate.tail_met_only_at_last_index  [rank] error 1.000e+00 > "
                        "tol 0.000e+00: rank 2, expected 3")
    assert {line.split("[")[1].split("]")[0] for line in lines} == {
        "rank", "matrix", "singular_values", "truncation_error"}


def test_check_case_refuses_what_is_not_a_case():
    with pytest.raises(TypeError, match="case must be a Case .*got dict"):
        oracle.check_case({"name": "truncate.x"}, np_truncate)
    with pytest.raises(TypeError, match="candidate must be callable"):
        oracle.check_case(oracle.cases("truncate")[0], None)


def test_report_is_readable():
    rep = oracle.check("truncate", _with(np_truncate, tail="double"))
    text = str(rep)
    assert text.splitlines()[0].startswith("truncate (float64): FAILED")
    assert "[rank]" in text and "truncate.last_value_doubled" in text
    ok = str(oracle.check("truncate", np_truncate, dtype=np.float32))
    assert ok.startswith("truncate (float32): PASSED") and "skipped" in ok


def test_invalid_dtype_and_empty_golden_are_clear_errors():
    with pytest.raises(TypeError, match="float32 or float64"):
        oracle.check("truncate", np_truncate, dtype=np.int32)
    with pytest.raises(ValueError, match="no case of family 'bug_step'"):
        oracle.check("bug_step", np_bug_step, golden=oracle.cases("truncate"))


def test_tolerances_follow_the_table_in_checks():
    c = oracle.cases("bug_step")[-2]       # 300 x 200
    t = c.tol["matrix"]
    assert t.size == 300 and t.key == "step"
    assert t.value(np.float64) == tolerance("step", np.float64, 300, t.cond)
    assert t.value(np.float32) == tolerance("step", np.float32, 300, t.cond)
    assert c.tol["rank"].value() == 0.0


# ---------------------------------------------------------------------------------------
# export / verify
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("golden")
    oracle.export(d)
    return d


def test_export_writes_npz_and_manifest_without_pickle(exported):
    manifest = json.loads((exported / "manifest.json").read_text())
    n = sum(len(oracle.cases(f)) for f in oracle.FAMILIES)
    assert len(manifest["cases"]) == n and manifest["version"] == lowrank_ref.__version__
    entry = next(e for e in manifest["cases"] if e["name"] == "adaptive_bug_step.10x8_r2")
    assert entry["file"] == "adaptive_bug_step.10x8_r2.npz"
    assert entry["inputs"]["U0"] == {"shape": [10, 2], "dtype": "<f8"}
    assert entry["tolerance"]["rank"]["key"] == "exact"
    assert entry["tolerance"]["matrix"]["float32"] > entry["tolerance"]["matrix"]["float64"]
    with np.load(exported / entry["file"], allow_pickle=False) as z:
        assert set(z.files) >= {"input.U0", "input.tol", "input.inner", "expected.U"}
        assert z["input.inner"].dtype.kind == "U" and z["input.inner"].ndim == 0
        assert z["input.relative"].dtype == np.bool_
        assert z["input.max_rank"].dtype == np.int64
        assert all(z[k].dtype != object for k in z.files)


def test_export_is_byte_reproducible(exported, tmp_path):
    oracle.export(tmp_path)
    for f in sorted(exported.glob("*.npz"))[:5]:
        assert f.read_bytes() == (tmp_path / f.name).read_bytes()


def test_export_verify_round_trip(exported):
    report = oracle.verify(exported)
    assert report.passed, str(report)
    assert report.n_cases == sum(len(oracle.cases(f)) for f in oracle.FAMILIES)


def test_loaded_cases_check_like_generated_ones(exported):
    golden = oracle.load(exported)
    for f in ("truncate", "dlrt_network_step"):
        rep = oracle.check(f, INDEPENDENT[f], golden=golden)
        assert rep.passed and rep.n_cases == len(oracle.cases(f))
        c = next(c for c in golden if c.family == f)
        assert isinstance(c.inputs["min_rank"], int) and isinstance(c.inputs["relative"]
                                                                      if f == "truncate"
                                                                      else True, bool)
    rep = oracle.check("truncate", _with(np_truncate, tail="double"), golden=golden)
    assert _caught(rep, "rank")


def test_conv_cases_round_trip_through_the_golden_files(exported):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["families"] == list(oracle.FAMILIES) and CONV in manifest["families"]
    entry = next(e for e in manifest["cases"] if e["name"] == f"{CONV}.fixed_2-4_k3_s2_p1_r2")
    assert entry["inputs"]["X"] == {"shape": [8, 2, 7, 7], "dtype": "<f8"}
    assert entry["inputs"]["kernel_size"] == {"shape": [], "dtype": "<i8"}
    golden = oracle.load(exported)
    c = next(c for c in golden if c.name == entry["name"])
    assert (c.inputs["kernel_size"], c.inputs["stride"], c.inputs["padding"]) == (3, 2, 1)
    assert oracle.check(CONV, oracle.reference(CONV), golden=golden).passed
    assert oracle.check(CONV, INDEPENDENT[CONV], golden=golden).passed
    rep = oracle.check(CONV, np_dlrt_step(transposed_v=True), golden=golden)
    assert _caught(rep, "matrix")


def _tamper(path, key, fn):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = fn(arrays[key])
    np.savez(path, **arrays)


def test_a_tampered_file_is_reported_by_name(exported, tmp_path):
    import shutil
    d = tmp_path / "golden"
    shutil.copytree(exported, d)
    name = "bug_step.10x8_r2"
    _tamper(d / f"{name}.npz", "expected.S", lambda S: S * (1 + 1e-6))
    report = oracle.verify(d)
    assert not report.passed
    assert [(f.case, f.quantity) for f in report.failures] == [(name, "sha256")]
    assert f"{name}.npz" in str(report)


def test_a_tampered_file_with_a_forged_hash_is_caught_by_recomputation(exported, tmp_path):
    import hashlib
    import shutil
    d = tmp_path / "golden"
    shutil.copytree(exported, d)
    name = "truncate.clustered"
    _tamper(d / f"{name}.npz", "expected.S", lambda S: S * (1 + 1e-6))
    manifest = json.loads((d / "manifest.json").read_text())
    for e in manifest["cases"]:
        if e["name"] == name:
            e["sha256"] = hashlib.sha256((d / e["file"]).read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(manifest))
    report = oracle.verify(d)
    assert not report.passed
    assert {f.case for f in report.failures} == {name}
    assert {f.quantity for f in report.failures} >= {"matrix", "singular_values"}


def _edited_manifest(exported, tmp_path, edit):
    import shutil
    d = tmp_path / "golden"
    shutil.copytree(exported, d)
    manifest = json.loads((d / "manifest.json").read_text())
    edit(manifest)
    (d / "manifest.json").write_text(json.dumps(manifest))
    return oracle.verify(d)


def test_a_manifest_with_loosened_tolerances_fails_every_case(exported, tmp_path):
    """The thresholds a non-Python backend reads are the manifest's float64/float32 values:
    loosened to 1.0 they are caught in every case (they are recomputed from key, size and
    cond), not verified as PASSED."""
    def loosen(manifest):
        for e in manifest["cases"]:
            for t in e["tolerance"].values():
                if t["key"] != "exact":
                    t["float64"] = t["float32"] = 1.0

    report = _edited_manifest(exported, tmp_path, loosen)
    assert not report.passed
    assert {f.quantity for f in report.failures} == {"manifest"}
    assert {f.case for f in report.failures} == {c.name for f in oracle.FAMILIES
                                                 for c in oracle.cases(f)}
    assert "float64 value 1.0 != " in str(report) and "recomputed from its key" in str(report)


def test_every_field_of_the_manifest_is_checked(exported, tmp_path):
    """One edit per field, each in another entry (one verify run): every one is reported,
    under the case it was made in (``manifest.json`` for the manifest's own fields)."""
    def cond_doubled(t):      # consistently: the float values follow the doubled cond
        t2 = oracle.Tol(t["key"], t["size"], 2 * t["cond"])
        t.update(cond=t2.cond, float64=t2.value(np.float64), float32=t2.value(np.float32))

    edits = [   # (case, edit of its entry or of the manifest, quantity, what is reported)
        ("bug_step.10x8_r2", lambda e: e["inputs"]["U0"].update(shape=[2, 3]), "manifest",
         "inputs: the shapes and dtypes listed differ from those of the stored arrays"),
        ("bug_step.2x2_r1", lambda e: e["expected"]["S"].update(dtype="<f4"), "manifest",
         "expected: the shapes and dtypes listed differ"),
        ("bug_step.3x1_r1", lambda e: e.update(family="truncate"), "manifest",
         "family: 'truncate' != 'bug_step'"),
        ("bug_step.1x3_r1", lambda e: e.update(dtype="float32"), "manifest",
         "dtype: 'float32' != 'float64'"),
        ("bug_step.4x3_r3_full", lambda e: e.update(note="x"), "manifest", "entry fields"),
        ("bug_step.20x15_r14", lambda e: [cond_doubled(t) for t in e["tolerance"].values()
                                          if t["key"] == "step"], "tolerance", "stored Tol("),
        ("manifest.json", lambda m: m.update(cond_max=1e300), "manifest",
         "cond_max: 1e+300 != 100000.0"),
        ("manifest.json", lambda m: m.update(families=m["families"][:-1]), "manifest",
         "families: ['truncate'"),
        ("manifest.json", lambda m: m.update(format=2), "manifest", "format: 2 != 1"),
    ]

    def edit_all(manifest):
        for name, edit, _, _ in edits:
            edit(manifest if name == "manifest.json" else
                 next(e for e in manifest["cases"] if e["name"] == name))

    report = _edited_manifest(exported, tmp_path, edit_all)
    assert not report.passed
    for name, _, quantity, needle in edits:
        assert any(f.case == name and f.quantity == quantity and needle in f.message
                   for f in report.failures), (name, needle, str(report))
    assert {f.case for f in report.failures} == {name for name, *_ in edits}, str(report)


def test_missing_files_and_manifest_are_reported(exported, tmp_path):
    import shutil
    d = tmp_path / "golden"
    shutil.copytree(exported, d)
    (d / "dlrt_layer_step.fixed_8x5_r1.npz").unlink()
    report = oracle.verify(d)
    assert [(f.case, f.quantity) for f in report.failures] == [
        ("dlrt_layer_step.fixed_8x5_r1", "file")]
    rep = oracle.verify(tmp_path / "nowhere")
    assert not rep.passed and rep.failures[0].quantity == "manifest"


def test_command_line_helpers(exported, tmp_path):
    import io
    out = io.StringIO()
    assert oracle.verify_command(exported, out) == 0
    assert out.getvalue().startswith("verify (float64): PASSED")
    assert oracle.verify_command(tmp_path / "nowhere", io.StringIO()) == 2
    d = tmp_path / "golden"
    assert oracle.export_command(d, out) == 0 and (d / "manifest.json").is_file()
    _tamper(d / "truncate.clustered.npz", "input.tol", lambda t: t * 2)
    out = io.StringIO()
    assert oracle.verify_command(d, out) == 1 and "truncate.clustered.npz" in out.getvalue()
