"""Figures of the integrator experiments: convergence, robustness, higher orders.

:func:`plot_integrator_convergence` and :func:`plot_integrator_robustness` draw the dicts of
:mod:`lowrank_ref.figures.integrator_experiments` (the theory of [LO14], [CL22], [CKL22],
[CKL24], [KL07]); :func:`plot_integrator_high_order` the orders and robustness of the
midpoint BUG [CEKL24] and RK-BUG [NR25].

References
----------
[KL07] O. Koch, C. Lubich. Dynamical low-rank approximation. SIAM J. Matrix Anal. Appl.
29 (2007).
[LO14] C. Lubich, I. V. Oseledets. A projector-splitting integrator for dynamical low-rank
approximation. BIT 54 (2014).
[CL22] G. Ceruti, C. Lubich. An unconventional robust integrator for dynamical low-rank
approximation. BIT 62 (2022).
[CKL22] G. Ceruti, J. Kusch, C. Lubich. A rank-adaptive robust integrator for dynamical
low-rank approximation. BIT 62 (2022).
[CKL24] G. Ceruti, J. Kusch, C. Lubich. A parallel rank-adaptive integrator for dynamical
low-rank approximation. SIAM J. Sci. Comput. (2024).
[CEKL24] G. Ceruti, L. Einkemmer, J. Kusch, C. Lubich. A robust second-order low-rank BUG
integrator based on the midpoint rule. BIT Numer. Math. 64 (2024).
[NR25] F. Nobile, S. Riffaud. Robust high-order low-rank BUG integrators based on explicit
Runge-Kutta methods. arXiv 2502.07040 (2025).
[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import math

import numpy as np

from .style import new_figure, order_label, save

__all__ = ["plot_integrator_convergence", "plot_integrator_robustness",
           "plot_integrator_high_order"]

_COLORS = {"ksl_lie": "tab:blue", "ksl_strang": "tab:purple", "bug": "tab:red",
           "adaptive_bug": "tab:orange", "parallel_bug": "tab:green"}
_MARKERS = {"ksl_lie": "o", "ksl_strang": "D", "bug": "s", "adaptive_bug": "^",
            "parallel_bug": "v"}
_HIGH_ORDER_STYLE = {          # name -> (color, marker)
    "bug": ("tab:red", "s"), "ksl_strang": ("tab:purple", "D"),
    "midpoint_bug": ("tab:green", "o"), "rk_bug_heun": ("tab:olive", "v"),
    "rk_bug_rk3": ("tab:cyan", "^"), "rk_bug_rk4": ("tab:blue", "P"),
}
_ERROR_TEX = {
    "sylvester": r"$\|Y_h(T) - A(T)\|_F \,/\, \|A(T)\|_F$",
    "toy": r"$\|Y_h(T) - Y_{\mathrm{ref}}(T)\|_F \,/\, \|Y_{\mathrm{ref}}(T)\|_F$",
}


def plot_integrator_convergence(data: dict, path) -> str:
    """Log-log error against step size, one panel per test problem, slopes in the legend.

    Draws the dict of :func:`lowrank_ref.figures.integrator_experiments.integrator_convergence`: for each
    integrator (KSL Lie / Strang [LO14], BUG [CL22], adaptive BUG [CKL22], parallel BUG
    [CKL24]) the error at ``T`` against ``h`` on the problem where its order is measured,
    the fitted slope in the legend, and dashed reference lines ``C h^p`` for the expected
    orders ``p``.

    Parameters
    ----------
    data : dict
        As returned by :func:`~lowrank_ref.figures.integrator_experiments.integrator_convergence`.
    path : str or path-like
        The PNG file to write (parent folders are created).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    KeyError
        ``data`` lacks ``h``, ``errors``, ``slopes``, ``problem`` or ``problems``.
    """
    panels = [k for k in ("sylvester", "toy") if k in data["problems"]]
    panels += [k for k in data["problems"] if k not in panels]
    names = data.get("names", list(data["errors"]))
    labels = data.get("labels", {})
    expected = data.get("expected_order", {})
    fig = new_figure((5.4 * len(panels), 5.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, key in zip(axes, panels):
        info = data["problems"][key]
        here = [nm for nm in names if data["problem"].get(nm) == key and nm in data["errors"]]
        seen_orders = set()
        for nm in here:
            h = np.asarray(data["h"][nm], float)
            e = np.asarray(data["errors"][nm], float)
            # curves of the same order may lie on top of each other: later ones dashed,
            # with hollow, larger markers, so that both stay visible
            p = expected.get(nm)
            style = (dict(ls=(0, (4, 2)), ms=8, mfc="none") if p in seen_orders
                     else dict(ls="-", ms=6))
            seen_orders.add(p)
            ax.loglog(h, e, marker=_MARKERS.get(nm, "o"), color=_COLORS.get(nm), lw=1.6,
                      mew=1.4, label=f"{labels.get(nm, nm)}: slope {data['slopes'][nm]:.2f}",
                      **style)
        # reference slopes C h^p, anchored a factor below the first curve of that order
        for p in sorted({expected[nm] for nm in here if nm in expected}):
            nm = min((n for n in here if expected.get(n) == p),
                     key=lambda n: float(np.min(data["errors"][n])))
            h = np.asarray(data["h"][nm], float)
            e = np.asarray(data["errors"][nm], float)
            C = math.exp(np.mean(np.log(e) - p * np.log(h))) / 2.5
            ax.loglog(h, C * h ** p, ls="--", color="0.45", lw=1.1,
                      label=f"reference slope {p}: {order_label(p)}")
        ax.set_xlabel("step size $h$")
        ax.set_ylabel(_ERROR_TEX.get(key, info.get("error", "error")))
        title = info.get("title", key)
        ref = info.get("reference")
        if "h_ref" in info:
            ref = f"DLRA solution by KSL Strang, h = {info['h_ref']:.2g}"
        ax.set_title(title + (f"\nreference: {ref}" if ref else ""), fontsize=9.5)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  frameon=False)
    fig.suptitle("Convergence in the step size (sub-flows by one rk4 step)", fontsize=11)
    out = save(fig, path)
    return out


def plot_integrator_robustness(data: dict, path) -> str:
    """Error at ``T`` against the smallest retained singular value: BUG vs naive vs best.

    Draws the dict of :func:`lowrank_ref.figures.integrator_experiments.integrator_robustness` (toy problem of
    [CL22]): BUG [CL22], the factor ODEs of [KL07] with the same rk4 step, and the best
    rank-r error. Where the naive scheme diverged (non-finite), a cross is drawn at the top
    of the axes and labelled "diverged". The top axis gives the rank ``r``.

    Parameters
    ----------
    data : dict
        As returned by :func:`~lowrank_ref.figures.integrator_experiments.integrator_robustness`.
    path : str or path-like

    Returns
    -------
    str
        ``path``.
    """
    sig = np.asarray(data["sigma_min"], float)
    best = np.asarray(data["best"], float)
    bug = np.asarray(data["errors"]["bug"], float)
    naive = np.asarray(data["errors"]["naive"], float)
    bad = ~np.isfinite(naive)
    labels = data.get("labels", {})
    fig = new_figure((7.2, 5.0))
    ax = fig.subplots()
    ax.loglog(sig, best, color="k", ls="--", lw=1.3,
              label=labels.get("best", "best rank-r error"))
    ax.loglog(sig, bug, color=_COLORS["bug"], marker="s", lw=1.6, ms=6,
              label=labels.get("bug", "BUG"))
    ok = ~bad
    ax.loglog(sig[ok], naive[ok], color="tab:blue", marker="o", lw=1.6, ms=6,
              mfc="none", label=labels.get("naive", "naive factor ODEs"))
    finite = np.concatenate([best, bug, naive[ok]])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    lo, hi = finite.min(), finite.max()
    ax.set_ylim(lo / 5, hi * 30)
    if bad.any():
        # crosses at the top of the axes (x in data, y in axes coordinates)
        ax.plot(sig[bad], np.full(bad.sum(), 0.95), ls="none", marker="x", ms=9, mew=2,
                color="tab:blue", transform=ax.get_xaxis_transform(), clip_on=False,
                label="factor ODEs: diverged (non-finite)")
        ax.annotate("diverged", (sig[bad][0], 0.95), xycoords=ax.get_xaxis_transform(),
                    xytext=(-10, 0), textcoords="offset points", ha="right", va="center",
                    fontsize=9, color="tab:blue")
    ax.set_xlim(sig.max() * 2.0, sig.min() / 2.0)     # decreasing: harder to the right
    ax.set_xlabel(r"smallest retained singular value $\sigma_r = \min_{t}\,\sigma_r(A(t))"
                  r" = 2^{-r}$")
    ax.set_ylabel(r"error at $T$:  $\|Y(T) - A(T)\|_F$")
    # the rank r on the top axis, at the data points
    ranks = np.asarray(data.get("ranks", -np.log2(sig)), int)
    top = ax.twiny()
    top.set_xscale("log")
    top.set_xlim(ax.get_xlim())
    top.set_xticks(sig, [str(r) for r in ranks])
    top.minorticks_off()
    top.tick_params(labelsize=8)
    top.set_xlabel("rank $r$", fontsize=9)
    N, h, T = data.get("N"), data.get("h"), data.get("T")
    top.set_title(f"Robustness to small singular values: toy problem of [CL22], "
                  f"N = {N}, h = {h:g}, T = {T:g}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8.5, loc="lower left")
    return save(fig, path)


# ---------------------------------------------------------------------------------------
# MNIST results
# ---------------------------------------------------------------------------------------
def plot_integrator_high_order(data: dict, path) -> str:
    """Midpoint BUG [CEKL24] and RK-BUG [NR25]: error against ``h``, and against ``sigma_r``.

    Draws the dict of :func:`lowrank_ref.figures.integrator_experiments.integrator_high_order`. Left: relative
    error at ``T`` against the step size on the rank-r toy problem, fitted slopes in the
    legend, dashed reference lines ``C h^p`` for ``p = 1..4``. Right: absolute error at
    ``T`` against ``sigma_r = 2^-r`` (decreasing to the right, rank ``r`` on the top axis)
    on the toy problem with a source term, with the best rank-r error.

    Parameters
    ----------
    data : dict
        As returned by :func:`~lowrank_ref.figures.integrator_experiments.integrator_high_order`.
    path : str or path-like
        The PNG file to write (parent folders are created).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    KeyError
        ``data`` lacks ``convergence`` or ``robustness`` or one of their keys.
    """
    conv, rob = data["convergence"], data["robustness"]
    labels = data.get("labels", {})
    fig = new_figure((13.0, 6.2))
    ax, ax2 = fig.subplots(1, 2)
    h = np.asarray(conv["h"], float)
    for nm, e in conv["errors"].items():
        color, marker = _HIGH_ORDER_STYLE.get(nm, (None, "o"))
        ax.loglog(h, e, marker=marker, color=color, lw=1.6, ms=6,
                  label=f"{labels.get(nm, nm)}: slope {conv['slopes'][nm]:.2f}")
    for p in sorted(set(conv["expected_order"].values())):
        nm = min((n for n, q in conv["expected_order"].items() if q == p),
                 key=lambda n: float(np.min(conv["errors"][n])))
        e = np.asarray(conv["errors"][nm], float)
        C = math.exp(np.mean(np.log(e) - p * np.log(h))) / 3.0
        ax.loglog(h, C * h ** p, ls="--", color="0.5", lw=1.0)
        ax.annotate(order_label(p), (h[-1], C * h[-1] ** p), xytext=(3, -3),
                    textcoords="offset points", ha="left", va="top", fontsize=8,
                    color="0.35")
    ax.set_xlabel("step size $h$")
    ax.set_ylabel(r"$\|Y_h(T) - A(T)\|_F \,/\, \|A(T)\|_F$")
    ax.set_title(f"order: toy problem, tangent form, {conv['N']}x{conv['N']}, exact solution "
                 f"of rank {conv['r']}, T = {conv['T']:g}\nsub-flows of BUG, KSL and the "
                 f"midpoint half step by one Euler step (dashed: C h^p)", fontsize=9.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8.5, loc="lower right")

    sig = np.asarray(rob["sigma_min"], float)
    ax2.loglog(sig, rob["best"], color="k", ls="--", lw=1.3, label="best rank-r error")
    sub = rob.get("sub_flows", {})
    for nm, e in rob["errors"].items():
        color, marker = _HIGH_ORDER_STYLE.get(nm, (None, "o"))
        how = sub.get(nm)
        extra = f" ({how} sub-flows)" if how in ("rk4",) else ""
        ax2.loglog(sig, e, marker=marker, color=color, lw=1.6, ms=6,
                   label=labels.get(nm, nm) + extra)
    ax2.set_xlim(sig.max() * 2.0, sig.min() / 2.0)
    ax2.set_xlabel(r"smallest retained singular value $\sigma_r = \sigma_r(A(0)) = 2^{-r}$")
    ax2.set_ylabel(r"error at $T$:  $\|Y(T) - A(T)\|_F$")
    ranks = np.asarray(rob["ranks"], int)
    top = ax2.twiny()
    top.set_xscale("log")
    top.set_xlim(ax2.get_xlim())
    top.set_xticks(sig, [str(r) for r in ranks])
    top.minorticks_off()
    top.tick_params(labelsize=8)
    top.set_xlabel("rank $r$", fontsize=9)
    top.set_title(f"robustness: toy problem with a source term (normal component)\n"
                  f"N = {rob['N']}, h = {rob['h']:g}, T = {rob['T']:g}, fixed rank r",
                  fontsize=9.5)
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=8.5, loc="lower left")
    fig.suptitle("Second- and higher-order robust BUG integrators", fontsize=11)
    return save(fig, path)
