"""The golden cases: their inputs per family, generated from fixed seeds (the CRC32 of the
case name), the expected outputs (the reference's), and :func:`cases`.

A plan per family lists the cases by name; the names say what each case is for
(``truncate.ties_at_cut``, ``adaptive_bug_step.10x8_r2_last_value_excluded``, ...).
Tolerances of truncations are either given or picked from the spectrum the reference
truncates (:func:`lowrank_ref.oracle.margins.pick_tol`), so that the rank has a margin and,
where the case is named after a published bug, so that that bug changes the rank.
"""
from __future__ import annotations

import zlib

import numpy as np

from .margins import pick_tau_with_rank_change, pick_tol, rank_margins, truncated_spectra
from .measure import case_tolerances
from .records import Case
from .reference import (DLRT_CONV, DLRT_MLP, DLRT_PARALLEL, DLRT_STATE, FIRST_ORDER_ADAPTIVE,
                        FIXED_RANK, HIGHER_ORDER, check_family, reference)

__all__ = ["generate", "cases", "clear_cache"]


def _rng_for(name: str) -> np.random.Generator:
    """The random generator of a case: seeded by the CRC32 of its name."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def _orth(rng, m, r):
    return np.linalg.qr(rng.standard_normal((m, r)))[0]


def _core(rng, sv, diagonal=False):
    sv = np.asarray(sv, dtype=np.float64)
    if diagonal:
        return np.diag(sv)
    k = len(sv)
    return _orth(rng, k, k) @ np.diag(sv) @ _orth(rng, k, k).T


# ---------------------------------------------------------------------------------------
# truncate
# ---------------------------------------------------------------------------------------
def _truncate_inputs(name, m, n, sv, tol, relative=True, min_rank=1, max_rank=None, k2=None,
                     diagonal=False, unsorted=False) -> dict:
    rng = _rng_for(f"truncate.{name}")
    k1 = len(sv)
    k2 = k1 if k2 is None else k2
    k = min(k1, k2)
    if k2 == k1:
        S_hat = _core(rng, sv, diagonal)
        if unsorted:
            S_hat = np.diag(rng.permutation(np.asarray(sv, dtype=float)))
    else:   # rectangular core with singular values sv[:k]
        S_hat = _orth(rng, k1, k) @ np.diag(sv[:k]) @ _orth(rng, k2, k).T
    U_hat = np.eye(m, k1) if unsorted else _orth(rng, m, k1)
    V_hat = np.eye(n, k2) if unsorted else _orth(rng, n, k2)
    return dict(U_hat=U_hat, S_hat=S_hat, V_hat=V_hat, tol=float(tol),
                relative=bool(relative), min_rank=int(min_rank),
                max_rank=int(k if max_rank is None else max_rank))


#: (description, m, n, singular values of S_hat, tol, keyword arguments)
_TRUNCATE_PLAN = [
    ("6x5_k4_relative", 6, 5, [3.0, 1.5, 0.4, 0.05], 0.05, {}),
    ("tol0_relative", 7, 6, [2.0, 1.0, 0.5, 0.25, 0.125], 0.0, {}),
    ("tol0_absolute_small_tail", 8, 8, [1.0, 0.1, 1e-3, 1e-6, 1e-9, 1e-12], 0.0,
     dict(relative=False)),
    ("ties_kept", 6, 6, [2.0, 1.0, 1.0, 1e-3], 0.01, dict(relative=False)),
    ("ties_at_cut", 6, 6, [2.0, 1.0, 1.0, 1e-3], 1.2, dict(relative=False)),
    # the last singular value decides: the published loop (tail without it) keeps 2,
    # counting it twice keeps 4; the rule keeps 3
    ("last_value_excluded", 7, 6, [3.0, 1.5, 0.4, 0.3], 0.45, dict(relative=False)),
    ("last_value_doubled", 7, 6, [3.0, 1.5, 0.4, 0.3], 0.35, dict(relative=False)),
    # k = 2r = 4, and only the last tail (0.01) is <= tol: the rule keeps 3; the published
    # loop, which never tests the last index, keeps the old r = 2 (the other two published
    # bugs keep 3 here)
    ("tail_met_only_at_last_index", 7, 6, [3.0, 2.0, 1.0, 0.01], 0.05,
     dict(relative=False)),
    ("clustered", 9, 7, [1 + 1e-9, 1.0, 1 - 1e-9, 0.5, 1e-6], 0.45, {}),
    ("min_rank_clamp", 8, 6, [3.0, 0.2, 0.1, 0.05, 0.01], 0.5, dict(min_rank=3)),
    ("max_rank_clamp", 8, 7, [3.0, 2.0, 1.5, 1.0, 0.5, 0.25], 0.0, dict(max_rank=2)),
    ("min_rank_above_k_3x1", 3, 1, [2.0], 0.5, dict(min_rank=2, max_rank=2)),
    ("rectangular_core", 5, 4, [2.0, 0.7, 0.3], 0.2, dict(k2=2)),
    ("unsorted_diagonal", 5, 4, [1.0, 3.0, 0.01, 2.0], 0.01, dict(unsorted=True)),
    ("300x200_k40_spread", 300, 200, np.logspace(0, -12, 40), 0.01, {}),
    ("300x200_k40_spread_absolute_1e-9", 300, 200, np.logspace(0, -12, 40), 1e-9,
     dict(relative=False)),
]


def _gen_truncate() -> list:
    return [(desc, _truncate_inputs(desc, m, n, sv, tol, **kw))
            for desc, m, n, sv, tol, kw in _TRUNCATE_PLAN]


# ---------------------------------------------------------------------------------------
# the integrator steps
# ---------------------------------------------------------------------------------------
def _integrator_inputs(name, m, n, r, sv, forcing=1.0, coupling=0.5, h=0.1,
                       diagonal=False) -> dict:
    rng = _rng_for(name)
    return dict(U0=_orth(rng, m, r), S0=_core(rng, sv, diagonal), V0=_orth(rng, n, r),
                A1=coupling * rng.standard_normal((m, m)) / np.sqrt(m),
                A2=coupling * rng.standard_normal((n, n)) / np.sqrt(n),
                B=forcing * rng.standard_normal((m, n)) / np.sqrt(max(m, n)),
                t0=0.0, h=float(h), inner="euler", substeps=1)


#: (description, m, n, r, singular values of Y0, keyword arguments)
_SHAPES = [
    ("2x2_r1", 2, 2, 1, [1.0], {}),
    ("3x1_r1", 3, 1, 1, [2.0], {}),
    ("1x3_r1", 1, 3, 1, [1.5], {}),
    ("4x3_r3_full", 4, 3, 3, [2.0, 1.0, 0.5], {}),
    ("10x8_r2", 10, 8, 2, [2.0, 1.0], {"h": 0.05}),
    ("20x15_r14", 20, 15, 14, list(np.linspace(2.0, 0.1, 14)), {}),
    ("50x40_r5_spread", 50, 40, 5, list(np.logspace(0, -12, 5)), {"diagonal": True}),
    ("50x40_r5_spread_unforced", 50, 40, 5, list(np.logspace(0, -12, 5)),
     {"forcing": 0.0}),
    ("300x200_r20_spread", 300, 200, 20, list(np.logspace(0, -12, 20)), {"h": 0.05}),
    ("300x200_r1", 300, 200, 1, [3.0], {}),
]


def _shape_inputs(name, shape) -> dict:
    _, m, n, r, sv, kw = next(s for s in _SHAPES if s[0] == shape)
    return _integrator_inputs(name, m, n, r, sv, **kw)


def _gen_fixed_rank(family) -> list:
    out = []
    for shape, *_ in _SHAPES:
        inputs = _shape_inputs(f"{family}.{shape}", shape)
        if family == "projector_splitting_step":
            inputs["order"] = 1
        out.append((shape, inputs))
    if family == "projector_splitting_step":
        desc = "50x40_r5_spread_strang"
        inputs = _shape_inputs(f"{family}.{desc}", "50x40_r5_spread")
        inputs["order"] = 2
        out.append((desc, inputs))
    return out


#: (shape, name suffix, tol spec, relative, min_rank, max_rank or None, target rank);
#: tol spec "auto" or ("auto", bug): picked from the spectrum of S_hat1 (so that the rank
#: has a margin; with one of margins.PUBLISHED_BUGS, so that that bug changes the rank)
_FIRST_ORDER_ADAPTIVE_PLAN = [
    ("2x2_r1", "", "auto", True, 1, None, 1),
    ("3x1_r1", "_tol0", 0.0, True, 1, None, None),
    ("1x3_r1", "_absolute", 0.3, False, 1, None, None),
    ("10x8_r2", "", "auto", True, 1, None, 2),
    ("10x8_r2", "_tol0", 0.0, True, 1, None, None),
    ("10x8_r2", "_last_value_excluded", ("auto", "exclude_last"), True, 1, None, None),
    ("10x8_r2", "_last_value_doubled", ("auto", "double"), True, 1, None, None),
    ("20x15_r14", "", "auto", True, 1, None, 10),
    ("20x15_r14", "_tol0_max_rank", 0.0, True, 1, 14, None),
    ("50x40_r5_spread", "", "auto", True, 1, None, 9),
    ("50x40_r5_spread_unforced", "_absolute", "auto", False, 1, None, 3),
    ("50x40_r5_spread_unforced", "_absolute_fine", "auto", False, 1, None, 5),
    ("300x200_r20_spread", "", "auto", True, 1, None, None),
    ("300x200_r1", "_min_rank", 0.5, True, 2, None, None),
]


def _gen_first_order_adaptive(family) -> list:
    out = []
    for row in _FIRST_ORDER_ADAPTIVE_PLAN:
        shape, suffix, tol, relative, min_rank, max_rank, target = row
        inputs = _shape_inputs(f"{family}.{shape}", shape)
        m, n = inputs["U0"].shape[0], inputs["V0"].shape[0]
        hi = min(m, n) if max_rank is None else max_rank
        inputs.update(relative=bool(relative), min_rank=int(min_rank), max_rank=int(hi))
        if isinstance(tol, tuple) or tol == "auto":
            bug = tol[1] if isinstance(tol, tuple) else None
            (sigma,) = truncated_spectra(family, dict(inputs, tol=0.0))
            tol = pick_tol([sigma], relative, min_rank, [hi], [target], bug)
        inputs["tol"] = float(tol)
        out.append((shape + suffix, inputs))
    return out


#: family -> [(description, shape in _SHAPES, inputs changed from the defaults tol = 0,
#: relative, min_rank = 1, max_rank = min(m, n))]; the second-order families solve their
#: flows with inner = "rk4" (with "euler" they are first order). A tol ("auto", bug) is
#: picked from the spectrum of the one truncation so that that published bug changes the
#: rank.
_HIGHER_ORDER_PLAN = {
    "midpoint_bug_step": [
        ("2x2_r1", "2x2_r1", {}),
        ("1x3_r1_3r", "1x3_r1", dict(variant="3r")),
        ("4x3_r3_full", "4x3_r3_full", {}),
        ("10x8_r2_fixed", "10x8_r2", dict(min_rank=2, max_rank=2)),
        ("10x8_r2_fixed_3r", "10x8_r2", dict(min_rank=2, max_rank=2, variant="3r")),
        ("10x8_r2_tol_3r", "10x8_r2", dict(tol=0.05, variant="3r")),
        ("20x15_r14", "20x15_r14", {}),
        ("50x40_r5_spread_fixed_3r", "50x40_r5_spread",
         dict(min_rank=5, max_rank=5, variant="3r")),
        ("50x40_r5_spread_tol", "50x40_r5_spread", dict(tol=1e-3)),
        ("300x200_r20_spread_fixed", "300x200_r20_spread", dict(min_rank=20, max_rank=20)),
    ],
    "rk_bug_step": [
        ("2x2_r1_heun", "2x2_r1", dict(tableau="heun")),
        ("3x1_r1_rk4", "3x1_r1", dict(tableau="rk4")),
        ("4x3_r3_full_rk3", "4x3_r3_full", dict(tableau="rk3")),
        ("10x8_r2_rk4_fixed", "10x8_r2", dict(tableau="rk4", min_rank=2, max_rank=2)),
        ("10x8_r2_midpoint_tol", "10x8_r2", dict(tableau="midpoint", tol=0.05)),
        ("20x15_r14_ssprk3", "20x15_r14", dict(tableau="ssprk3")),
        ("50x40_r5_spread_rk4_tol", "50x40_r5_spread", dict(tableau="rk4", tol=1e-3)),
        ("50x40_r5_spread_unforced_heun_fixed_tol", "50x40_r5_spread_unforced",
         dict(tableau="heun", min_rank=5, max_rank=5, tol=3e-4)),
        ("300x200_r20_spread_rk4", "300x200_r20_spread", dict(tableau="rk4", tol=0.25)),
    ],
    "second_order_parallel_bug_step": [
        ("2x2_r1", "2x2_r1", {}),
        ("3x1_r1", "3x1_r1", {}),
        ("4x3_r3_full", "4x3_r3_full", {}),
        ("10x8_r2_fixed", "10x8_r2", dict(min_rank=2, max_rank=2)),
        ("10x8_r2_tol", "10x8_r2", dict(tol=0.05)),
        ("20x15_r14", "20x15_r14", {}),
        ("20x15_r14_last_value_excluded", "20x15_r14", dict(tol=("auto", "exclude_last"))),
        ("50x40_r5_spread_fixed", "50x40_r5_spread", dict(min_rank=5, max_rank=5)),
        ("300x200_r20_spread_tol", "300x200_r20_spread", dict(tol=0.03)),
    ],
}


def _gen_higher_order(family: str) -> list:
    out = []
    for desc, shape, changes in _HIGHER_ORDER_PLAN[family]:
        inputs = _shape_inputs(f"{family}.{desc}", shape)
        if family == "rk_bug_step":              # no sub-flow solver
            del inputs["inner"], inputs["substeps"]
        else:
            inputs["inner"] = "rk4"
        if family == "midpoint_bug_step":
            inputs["variant"] = "4r"
        inputs.update(tol=0.0, relative=True, min_rank=1,
                      max_rank=int(min(inputs["U0"].shape[0], inputs["V0"].shape[0])))
        inputs.update(changes)
        if isinstance(inputs["tol"], tuple):
            spectra = truncated_spectra(family, dict(inputs, tol=0.0))
            assert len(spectra) == 1, desc
            inputs["tol"] = pick_tol(spectra, True, 1, [inputs["max_rank"]], [None],
                                     inputs["tol"][1])
        inputs["tol"] = float(inputs["tol"])
        out.append((desc, inputs))
    return out


# ---------------------------------------------------------------------------------------
# DLRT steps
# ---------------------------------------------------------------------------------------
def _dlrt_inputs(name, sizes, ranks, batch, method, lr, dense_last) -> dict:
    from ..lowrank_layers import LowRankDense
    from ..nn import Dense
    rng = _rng_for(name)
    inputs = {}
    n_layers = len(sizes) - 1
    for i in range(n_layers):
        n_in, n_out = sizes[i], sizes[i + 1]
        if dense_last and i == n_layers - 1:
            layer = Dense(n_in, n_out, rng, init="torch")
            inputs[f"W{i}"] = np.array(layer.W.value)
        else:
            layer = LowRankDense(n_in, n_out, ranks[i], rng, init="torch")
            inputs[f"U{i}"], inputs[f"S{i}"], inputs[f"V{i}"] = (np.array(a)
                                                                   for a in layer.factors)
            # a general (not diagonal) S: the gauge is not fixed by the oracle
            Q1, Q2 = _orth(rng, ranks[i], ranks[i]), _orth(rng, ranks[i], ranks[i])
            inputs[f"U{i}"] = inputs[f"U{i}"] @ Q1
            inputs[f"S{i}"] = Q1.T @ inputs[f"S{i}"] @ Q2
            inputs[f"V{i}"] = inputs[f"V{i}"] @ Q2
        inputs[f"b{i}"] = 0.1 * rng.standard_normal(n_out)
    X = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    inputs.update(X=X, y=y, lr=float(lr), method=method, tau=0.0, min_rank=1,
                  max_rank=int(min(sizes)))
    return inputs


#: family -> [(description, sizes, ranks, batch, method, lr, tau spec, max_rank or None)];
#: tau spec: None (fixed rank), a float, target ranks per low-rank layer, or (targets,
#: bug): picked as the tolerances of the integrator cases
_DLRT_PLAN = {
    "dlrt_layer_step": [
        ("fixed_12x10_r3", [12, 10], [3], 16, "fixed", 0.5, None, None),
        ("fixed_8x5_r1", [8, 5], [1], 10, "fixed", 0.5, None, None),
        ("fixed_6x4_r4_full", [6, 4], [4], 8, "fixed", 0.5, None, None),
        ("fixed_64x32_r8", [64, 32], [8], 32, "fixed", 0.2, None, None),
        ("adaptive_12x10_r3", [12, 10], [3], 16, "adaptive", 0.5, [4], None),
        ("adaptive_8x5_r1_grow", [8, 5], [1], 10, "adaptive", 0.5, 0.05, None),
        ("adaptive_12x10_r3_max_rank", [12, 10], [3], 16, "adaptive", 0.5, 0.0, 4),
        ("adaptive_64x32_r8", [64, 32], [8], 32, "adaptive", 0.2, [8], None),
        ("adaptive_12x10_r3_last_value_excluded", [12, 10], [3], 16, "adaptive", 0.5,
         ([None], "exclude_last"), None),
        ("adaptive_12x10_r3_last_value_doubled", [12, 10], [3], 16, "adaptive", 0.5,
         ([None], "double"), None),
        # rank 5 of the augmented 6: the published loop never tests the last index and
        # keeps the old rank 3
        ("adaptive_12x10_r3_tail_met_only_at_last_index", [12, 10], [3], 16, "adaptive",
         0.5, ([5], "last_index_untested"), None),
    ],
    "dlrt_network_step": [
        ("fixed_12-10-8-4_r3-2", [12, 10, 8, 4], [3, 2], 16, "fixed", 1.0, None, None),
        ("fixed_40-30-20-5_r5-4", [40, 30, 20, 5], [5, 4], 24, "fixed", 0.3, None, None),
        ("adaptive_12-10-8-4_r3-2", [12, 10, 8, 4], [3, 2], 16, "adaptive", 0.5,
         [3, 2], None),
        ("adaptive_40-30-20-5_r5-4", [40, 30, 20, 5], [5, 4], 24, "adaptive", 0.3,
         [5, 4], None),
        ("adaptive_12-10-8-4_r3-2_last_value_doubled", [12, 10, 8, 4], [3, 2], 16,
         "adaptive", 0.5, ([None, "any"], "double"), 6),
        ("adaptive_40-30-20-5_r5-4_tau0", [40, 30, 20, 5], [5, 4], 24, "adaptive", 0.3,
         0.0, 6),
    ],
}


def _set_tau(family, inputs, method, targets) -> None:
    """``inputs["tau"]`` of an adaptive case from its tau spec (see :data:`_DLRT_PLAN`)."""
    if method in ("adaptive", "parallel") and isinstance(targets, float):
        inputs["tau"] = targets
    elif method in ("adaptive", "parallel"):
        targets, bug = targets if isinstance(targets, tuple) else (targets, None)
        sigmas = truncated_spectra(family, inputs)
        his = [inputs["max_rank"]] * len(sigmas)
        inputs["tau"] = pick_tol(sigmas, True, 1, his, targets, bug)


def _gen_dlrt(family) -> list:
    out = []
    for desc, sizes, ranks, batch, method, lr, targets, max_rank in _DLRT_PLAN[family]:
        inputs = _dlrt_inputs(f"{family}.{desc}", sizes, ranks, batch, method, lr,
                              dense_last=family == "dlrt_network_step")
        if max_rank is not None:
            inputs["max_rank"] = int(max_rank)
        _set_tau(family, inputs, method, targets)
        out.append((desc, inputs))
    return out


def _conv_inputs(name, c_in, c_out, k, stride, padding, hw, rank, batch, classes, method,
                 lr) -> dict:
    """A case of ``dlrt_conv_layer_step``: a low-rank ``k x k`` convolution ``c_in -> c_out``
    (kernel matrix ``(c_out, c_in k k)`` of rank ``rank``, a general core), ReLU, flatten,
    dense to ``classes``, on ``(batch, c_in, hw, hw)`` images."""
    from ..conv import LowRankConv2d, conv_output_size
    from ..nn import Dense
    rng = _rng_for(name)
    conv = LowRankConv2d(c_in, c_out, k, rank, rng, init="torch", stride=stride,
                         padding=padding)
    U, S, V = (np.array(a) for a in conv.factors)
    Q1, Q2 = _orth(rng, rank, rank), _orth(rng, rank, rank)   # the gauge is not fixed
    h_out, w_out = conv_output_size(hw, hw, k, k, stride, padding)
    dense = Dense(c_out * h_out * w_out, classes, rng, init="torch")
    return dict(U0=U @ Q1, S0=Q1.T @ S @ Q2, V0=V @ Q2, b0=0.1 * rng.standard_normal(c_out),
                W1=np.array(dense.W.value), b1=0.1 * rng.standard_normal(classes),
                X=rng.standard_normal((batch, c_in, hw, hw)),
                y=rng.integers(0, classes, batch).astype(np.int64),
                kernel_size=int(k), stride=int(stride), padding=int(padding), lr=float(lr),
                method=method, tau=0.0, min_rank=1, max_rank=int(min(c_out, c_in * k * k)))


#: [(description, (c_in, c_out, kernel_size, stride, padding, h = w), rank, batch,
#: classes, method, lr, tau spec, max_rank or None)]; tau spec as in _DLRT_PLAN
_CONV_PLAN = [
    ("fixed_2-4_k3_s1_p0_r2", (2, 4, 3, 1, 0, 6), 2, 8, 3, "fixed", 0.5, None, None),
    ("fixed_2-4_k3_s2_p1_r2", (2, 4, 3, 2, 1, 7), 2, 8, 3, "fixed", 0.5, None, None),
    ("fixed_3-8_k3_s2_p1_r3", (3, 8, 3, 2, 1, 9), 3, 12, 4, "fixed", 0.3, None, None),
    ("adaptive_2-4_k3_s1_p0_r2", (2, 4, 3, 1, 0, 6), 2, 8, 3, "adaptive", 0.5, [None],
     None),
    ("adaptive_2-4_k3_s2_p1_r2", (2, 4, 3, 2, 1, 7), 2, 8, 3, "adaptive", 0.5, [3], None),
    ("adaptive_2-4_k3_s2_p1_r1_grow", (2, 4, 3, 2, 1, 7), 1, 8, 3, "adaptive", 0.5, 0.0,
     None),
    ("adaptive_2-4_k3_s1_p0_r2_max_rank", (2, 4, 3, 1, 0, 6), 2, 8, 3, "adaptive", 0.5,
     0.0, 3),
    ("adaptive_3-8_k3_s2_p1_r3", (3, 8, 3, 2, 1, 9), 3, 12, 4, "adaptive", 0.3, [None],
     None),
    ("adaptive_2-4_k3_s2_p1_r2_last_value_doubled", (2, 4, 3, 2, 1, 7), 2, 8, 3,
     "adaptive", 0.5, ([None], "double"), None),
]


def _gen_dlrt_conv(family) -> list:
    out = []
    for desc, geometry, rank, batch, classes, method, lr, targets, max_rank in _CONV_PLAN:
        inputs = _conv_inputs(f"{family}.{desc}", *geometry, rank, batch, classes, method,
                              lr)
        if max_rank is not None:
            inputs["max_rank"] = int(max_rank)
        _set_tau(family, inputs, method, targets)
        out.append((desc, inputs))
    return out


#: [(description, sizes or conv geometry, ranks, batch, lr, tau spec, max_rank or None)]
#: of ``dlrt_parallel_step``; a geometry ``(c_in, c_out, kernel_size, stride, padding, h =
#: w)`` makes a case of the convolutional network (ranks: its one rank, 3 classes).
_PARALLEL_PLAN = [
    ("12x10_r3", [12, 10], [3], 16, 0.5, [4], None),
    ("8x5_r1_grow", [8, 5], [1], 10, 0.5, 0.05, None),
    ("12x10_r3_max_rank", [12, 10], [3], 16, 0.5, 0.0, 4),
    ("12x10_r3_last_value_doubled", [12, 10], [3], 16, 0.5, ([None], "double"), None),
    ("64x32_r8", [64, 32], [8], 32, 0.2, [None], None),
    ("12-10-8-4_r3-2", [12, 10, 8, 4], [3, 2], 16, 0.5, [3, None], None),
    ("40-30-20-5_r5-4_tau0", [40, 30, 20, 5], [5, 4], 24, 0.3, 0.0, 6),
    ("conv_2-4_k3_s1_p0_r2", (2, 4, 3, 1, 0, 6), [2], 8, 0.5, [None], None),
    ("conv_3-8_k3_s2_p1_r3", (3, 8, 3, 2, 1, 9), [3], 12, 0.3, [None], None),
    ("conv_2-4_k3_s2_p1_r1_grow", (2, 4, 3, 2, 1, 7), [1], 8, 0.5, 0.0, None),
]


def _gen_dlrt_parallel(family) -> list:
    out = []
    for desc, shape, ranks, batch, lr, targets, max_rank in _PARALLEL_PLAN:
        name = f"{family}.{desc}"
        if isinstance(shape, tuple):
            inputs = _conv_inputs(name, *shape, ranks[0], batch, 3, "parallel", lr)
        else:
            inputs = _dlrt_inputs(name, shape, ranks, batch, "parallel", lr,
                                  dense_last=len(shape) > 2)
        if max_rank is not None:
            inputs["max_rank"] = int(max_rank)
        _set_tau(family, inputs, "parallel", targets)
        out.append((desc, inputs))
    return out


#: The direction rule of each trajectory family, with its hyperparameters (Adam's ``eps``
#: 1e-3: ``m / (sqrt(v) + eps)`` amplifies the rounding of a coordinate whose gradient is
#: far below ``eps`` by ``lr / eps``, which the tolerances would have to absorb).
_RULES = {"dlrt_momentum_trajectory": dict(momentum=0.9),
          "dlrt_adam_trajectory": dict(beta1=0.9, beta2=0.999, eps=1e-3)}

#: family -> [(description, sizes, ranks, batch, steps, method, lr, tau spec, max_rank or
#: None)]; tau spec "change": the tolerance with the largest rank margin among those under
#: which a rank changes after the first step (margins.pick_tau_with_rank_change).
_TRAJECTORY_PLAN = {
    "dlrt_momentum_trajectory": [
        ("fixed_12-10-8-4_r3-2_4steps", [12, 10, 8, 4], [3, 2], 16, 4, "fixed", 0.3, None,
         None),
        ("adaptive_12-10-8-4_r3-2_4steps", [12, 10, 8, 4], [3, 2], 16, 4, "adaptive", 0.3,
         "change", None),
        ("adaptive_10-8-3_r1_3steps_grow", [10, 8, 3], [1], 12, 3, "adaptive", 0.3, 0.0, None),
        ("parallel_12-10-8-4_r3-2_4steps", [12, 10, 8, 4], [3, 2], 16, 4, "parallel", 0.3,
         "change", None),
        ("adaptive_40-30-20-5_r5-4_3steps", [40, 30, 20, 5], [5, 4], 24, 3, "adaptive", 0.2,
         "change", 8),
    ],
    "dlrt_adam_trajectory": [
        ("fixed_12-10-8-4_r3-2_4steps", [12, 10, 8, 4], [3, 2], 16, 4, "fixed", 0.02, None,
         None),
        ("adaptive_12-10-8-4_r3-2_4steps", [12, 10, 8, 4], [3, 2], 16, 4, "adaptive", 0.02,
         "change", None),
        ("adaptive_10-8-3_r1_3steps_grow", [10, 8, 3], [1], 12, 3, "adaptive", 0.02, 0.0,
         None),
        ("parallel_12-10-8-4_r3-2_4steps", [12, 10, 8, 4], [3, 2], 16, 4, "parallel", 0.02,
         "change", None),
        ("adaptive_40-30-20-5_r5-4_3steps", [40, 30, 20, 5], [5, 4], 24, 3, "adaptive", 0.01,
         "change", 8),
    ],
}


def _gen_dlrt_trajectory(family) -> list:
    out = []
    for desc, sizes, ranks, batch, steps, method, lr, tau, max_rank in \
            _TRAJECTORY_PLAN[family]:
        name = f"{family}.{desc}"
        inputs = _dlrt_inputs(name, sizes, ranks, batch, method, lr, dense_last=True)
        rng = _rng_for(name + ".batches")
        inputs["X"] = np.stack([inputs["X"]] + [rng.standard_normal(inputs["X"].shape)
                                                for _ in range(steps - 1)])
        inputs["y"] = np.stack([inputs["y"]] + [rng.integers(0, sizes[-1], batch)
                                                for _ in range(steps - 1)]).astype(np.int64)
        inputs.update(_RULES[family])
        if max_rank is not None:
            inputs["max_rank"] = int(max_rank)
        if tau == "change":
            inputs["tau"] = pick_tau_with_rank_change(inputs)
        elif tau is not None:
            inputs["tau"] = float(tau)
        out.append((desc, inputs))
    return out


# ---------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------
def _make_case(family, desc, inputs) -> Case:
    name = f"{family}.{desc}"
    ref = reference(family)
    expected = {k: (int(v) if np.ndim(v) == 0 else np.array(v, dtype=np.float64))
                for k, v in ref(**inputs).items()}
    tol = case_tolerances(family, inputs, expected, ref, _rng_for(name + ".cond"),
                          rank_margins(family, inputs))
    return Case(name, family, inputs, expected, tol)


def generate(family: str) -> list:
    """The golden cases of ``family``, generated afresh (not from the cache of
    :func:`cases`): what :func:`lowrank_ref.oracle.verify` compares stored files with."""
    check_family(family)
    if family == "truncate":
        raw = _gen_truncate()
    elif family in FIXED_RANK:
        raw = _gen_fixed_rank(family)
    elif family in FIRST_ORDER_ADAPTIVE:
        raw = _gen_first_order_adaptive(family)
    elif family in HIGHER_ORDER:
        raw = _gen_higher_order(family)
    elif family in DLRT_CONV:
        raw = _gen_dlrt_conv(family)
    elif family in DLRT_PARALLEL:
        raw = _gen_dlrt_parallel(family)
    elif family in DLRT_STATE:
        raw = _gen_dlrt_trajectory(family)
    else:
        assert family in DLRT_MLP
        raw = _gen_dlrt(family)
    return [_make_case(family, desc, inputs) for desc, inputs in raw]


_CACHE: dict = {}


def _copy_case(c: Case) -> Case:
    cp = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in c.inputs.items()}
    ce = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in c.expected.items()}
    return Case(c.name, c.family, cp, ce, dict(c.tol))


def cases(family: str) -> list:
    """The golden cases of ``family`` (generated once per process, returned as copies).

    Parameters
    ----------
    family : str
        One of :data:`lowrank_ref.oracle.FAMILIES`.

    Returns
    -------
    list of Case
        Each with a unique ``name`` ``"<family>.<description>"``, e.g. to serve as a
        pytest id (``ids=lambda c: c.name``).

    Raises
    ------
    ValueError
        For an unknown family (the message lists the families).

    Examples
    --------
    >>> c = cases("bug_step")[0]
    >>> c.name, sorted(c.expected), c.inputs["U0"].shape
    ('bug_step.2x2_r1', ['S', 'U', 'V'], (2, 1))
    """
    check_family(family)
    if family not in _CACHE:
        _CACHE[family] = generate(family)
    return [_copy_case(c) for c in _CACHE[family]]


def clear_cache() -> None:
    """Forget generated cases (the next :func:`cases` call regenerates them)."""
    _CACHE.clear()
