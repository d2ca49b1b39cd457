"""Figures of the integrator experiments: convergence, robustness, higher orders.

:func:`plot_integrator_convergence` and :func:`plot_integrator_robustness` draw the dicts of
:mod:`lowrank_ref.figures.integrator_experiments` (the theory of [LO14], [CL22], [CKL22],
[CKL24], [KL07]); :func:`plot_integrator_high_order` the orders and robustness of the
midpoint BUG [CEKL24], the second-order parallel BUG [Kus24] and RK-BUG [NR25]
(:mod:`lowrank_ref.figures.high_order_experiments`).

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
[Kus24] J. Kusch. Second-order robust parallel integrators for dynamical low-rank
approximation. arXiv 2403.02834 (2024).
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
    "bug": ("tab:red", "s"), "parallel_bug": ("tab:red", "v"),
    "midpoint_4r": ("tab:green", "o"),
    "midpoint_3r": ("tab:olive", "o"), "parallel_2": ("tab:orange", "<"),
    "rk_heun": ("tab:pink", "v"), "rk_rk3": ("tab:cyan", "^"), "rk_rk4": ("tab:blue", "P"),
    "rk_rk4_clamped": ("tab:blue", "x"),
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
# second- and higher-order integrators
# ---------------------------------------------------------------------------------------
def _order_guides(ax, h, errors, orders):
    """Dashed ``C h^p`` below the smallest error curve of each order ``p``."""
    for p in sorted(set(orders.values())):
        names = [n for n, q in orders.items() if q == p and n in errors]
        if not names:
            continue
        e = np.asarray(min((errors[n] for n in names), key=lambda e: float(np.min(e))), float)
        C = math.exp(np.mean(np.log(e) - p * np.log(h))) / 3.0
        ax.loglog(h, C * h ** p, ls="--", color="0.6", lw=0.9)
        ax.annotate(order_label(p), (h[-1], C * h[-1] ** p), xytext=(3, -3),
                    textcoords="offset points", ha="left", va="top", fontsize=8,
                    color="0.4")


def plot_integrator_high_order(data: dict, path) -> str:
    """Second- and higher-order robust integrators: error against ``h`` on a rank-preserving
    and two rank-growing problems, and against ``sigma_r``.

    Draws the dict of
    :func:`lowrank_ref.figures.high_order_experiments.integrator_high_order`, four panels:
    relative error at ``T`` against the step size on the rank-preserving problem, on the
    rank-growing problem with the source outside and inside the initial bases (fitted
    slopes in the legends, dashed ``C h^p``), and the absolute error at ``T`` against the
    smallest singular value ``sigma_r`` (decreasing to the right).

    Parameters
    ----------
    data : dict
        As returned by
        :func:`~lowrank_ref.figures.high_order_experiments.integrator_high_order`.
    path : str or path-like
        The PNG file to write (parent folders are created).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    KeyError
        ``data`` lacks one of the panels or one of their keys.
    """
    labels = data.get("labels", {})
    fig = new_figure((14.0, 11.0))
    axes = fig.subplots(2, 2).ravel()
    for ax, which in zip(axes, ["preserving", "growing_outside", "growing_inside"]):
        d = data[which]
        h = np.asarray(d["h"], float)
        for nm, e in d["errors"].items():
            color, marker = _HIGH_ORDER_STYLE.get(nm, (None, "o"))
            ls = ":" if nm in ("rk_rk4_clamped", "bug", "parallel_bug") else "-"
            ax.loglog(h, e, marker=marker, color=color, lw=1.5, ms=5, ls=ls,
                      label=f"{labels.get(nm, nm)}: slope {d['slopes'][nm]:.2f}")
        _order_guides(ax, h, d["errors"], {n: p for n, p in data["expected_order"].items()
                                           if p > 1})
        ax.set_xlabel("step size $h$")
        ax.set_ylabel(r"$\|Y_h(T) - A(T)\|_F \,/\, \|A(T)\|_F$")
        ax.set_title(f"{d['problem']}, T = {d['T']:g}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7.5, loc="lower right")
    rob, ax = data["robustness"], axes[3]
    sig = np.asarray(rob["sigma_r"], float)
    for nm, e in rob["errors"].items():
        color, marker = _HIGH_ORDER_STYLE.get(nm, (None, "o"))
        ls = ":" if nm == "rk_rk4_clamped" else "-"
        ax.loglog(sig, e, marker=marker, color=color, lw=1.5, ms=5, ls=ls,
                  label=labels.get(nm, nm))
    ax.set_xlim(sig.max() * 3.0, sig.min() / 3.0)
    ax.set_xlabel(r"smallest singular value $\sigma_r$ of $Y_0$")
    ax.set_ylabel(r"error at $T$:  $\|Y(T) - A(T)\|_F$")
    ax.set_title(f"{rob['problem']}, h = {rob['h']:g}, T = {rob['T']:g}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.suptitle("Second- and higher-order robust BUG integrators (sub-flows by rk4)",
                 fontsize=11)
    return save(fig, path)
