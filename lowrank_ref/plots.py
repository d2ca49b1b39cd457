"""Figures: integrator convergence and robustness, MNIST accuracy vs compression and ranks.

* :func:`plot_integrator_convergence`, :func:`plot_integrator_robustness` draw the dicts of
  :mod:`lowrank_ref.experiments` (the theory of [LO14], [CL22], [CKL22], [CKL24], [KL07]);
* :func:`plot_accuracy_vs_compression` puts this project's MNIST sweep beside the published
  numbers of [SZKCT22] (:data:`PAPER_MNIST_TABLE`);
* :func:`plot_rank_evolution` shows the ranks of each low-rank layer per epoch;
* :func:`make_figures` computes / reads everything and writes the PNG files (the
  ``figures`` command of ``python -m lowrank_ref``).

Only files are written: the figures are :class:`matplotlib.figure.Figure` objects saved
with ``Figure.savefig`` (the Agg renderer), without ``matplotlib.pyplot``, so no global
backend is selected or changed and no window is ever opened.

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
[SZKCT22] S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco. Low-rank lottery
tickets: finding efficient low-rank neural networks via matrix differential equations.
NeurIPS 2022.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .threads import DEFAULT_THREADS, blas_threads

__all__ = ["PAPER_MNIST_TABLE", "PAPER_MNIST_DENSE_ACC", "TABLE_NAME", "RUNS_DIR_NAME",
           "RUN_NAME_COLUMNS",
           "plot_integrator_convergence", "plot_integrator_robustness",
           "plot_accuracy_vs_compression", "plot_rank_evolution", "read_table",
           "read_history", "make_figures", "plot_timing_vs_rank", "TIMING_JSON"]

#: Rank-adaptive DLRT on MNIST, the 784-500-500-500-500-10 fully connected network,
#: published in [SZKCT22] (Schotthöfer et al., NeurIPS 2022), as transcribed for this
#: project (the table number was not checked against the paper): relative truncation
#: tolerance ``tau``, test accuracy (%), ranks of the four low-rank layers, compression
#: rate of the evaluation parameters (%).
PAPER_MNIST_TABLE = (
    {"tau": 0.05, "test_acc": 98.56, "ranks": (81, 104, 111, 117), "eval_cr": 61.6},
    {"tau": 0.07, "test_acc": 98.52, "ranks": (52, 67, 73, 72), "eval_cr": 75.3},
    {"tau": 0.09, "test_acc": 98.34, "ranks": (35, 53, 51, 46), "eval_cr": 82.6},
    {"tau": 0.11, "test_acc": 98.11, "ranks": (27, 40, 37, 38), "eval_cr": 86.5},
    {"tau": 0.13, "test_acc": 97.50, "ranks": (20, 31, 32, 30), "eval_cr": 89.2},
    {"tau": 0.15, "test_acc": 97.22, "ranks": (17, 25, 26, 24), "eval_cr": 91.1},
    {"tau": 0.17, "test_acc": 96.90, "ranks": (13, 21, 24, 20), "eval_cr": 92.4},
)
#: Test accuracy (%) of the dense reference network in the same table of [SZKCT22].
PAPER_MNIST_DENSE_ACC = 98.54

#: File names under ``results_dir`` read by :func:`make_figures`.
TABLE_NAME = "mnist_dense_table.csv"
RUNS_DIR_NAME = "mnist_runs"
_PRODUCER = "python -m lowrank_ref sweep ... (see README)"

#: Columns of ``results/mnist_dense_table.csv`` that name a row's run folder (first
#: non-empty one wins; its last path component is looked up under ``results/mnist_runs``).
RUN_NAME_COLUMNS = ("run", "name", "run_dir", "out", "dir")

_COLORS = {"ksl_lie": "tab:blue", "ksl_strang": "tab:purple", "bug": "tab:red",
           "adaptive_bug": "tab:orange", "parallel_bug": "tab:green"}
_MARKERS = {"ksl_lie": "o", "ksl_strang": "D", "bug": "s", "adaptive_bug": "^",
            "parallel_bug": "v"}
_ERROR_TEX = {
    "sylvester": r"$\|Y_h(T) - A(T)\|_F \,/\, \|A(T)\|_F$",
    "toy": r"$\|Y_h(T) - Y_{\mathrm{ref}}(T)\|_F \,/\, \|Y_{\mathrm{ref}}(T)\|_F$",
}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _new_figure(figsize):
    """A pyplot-free Figure (Agg renders it on ``savefig``)."""
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, layout="constrained")


def _save(fig, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, format="png")
    return str(path)


def _order_label(p: int) -> str:
    return "O(h)" if p == 1 else f"O(h$^{p}$)"


# ---------------------------------------------------------------------------------------
# integrators
# ---------------------------------------------------------------------------------------
def plot_integrator_convergence(data: dict, path) -> str:
    """Log-log error against step size, one panel per test problem, slopes in the legend.

    Draws the dict of :func:`lowrank_ref.experiments.integrator_convergence`: for each
    integrator (KSL Lie / Strang [LO14], BUG [CL22], adaptive BUG [CKL22], parallel BUG
    [CKL24]) the error at ``T`` against ``h`` on the problem where its order is measured,
    the fitted slope in the legend, and dashed reference lines ``C h^p`` for the expected
    orders ``p``.

    Parameters
    ----------
    data : dict
        As returned by :func:`~lowrank_ref.experiments.integrator_convergence`.
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
    fig = _new_figure((5.4 * len(panels), 5.6))
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
                      label=f"reference slope {p}: {_order_label(p)}")
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
    out = _save(fig, path)
    return out


def plot_integrator_robustness(data: dict, path) -> str:
    """Error at ``T`` against the smallest retained singular value: BUG vs naive vs best.

    Draws the dict of :func:`lowrank_ref.experiments.integrator_robustness` (toy problem of
    [CL22]): BUG [CL22], the factor ODEs of [KL07] with the same rk4 step, and the best
    rank-r error. Where the naive scheme diverged (non-finite), a cross is drawn at the top
    of the axes and labelled "diverged". The top axis gives the rank ``r``.

    Parameters
    ----------
    data : dict
        As returned by :func:`~lowrank_ref.experiments.integrator_robustness`.
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
    fig = _new_figure((7.2, 5.0))
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
    return _save(fig, path)


# ---------------------------------------------------------------------------------------
# MNIST results
# ---------------------------------------------------------------------------------------
def _float_or_none(text) -> Optional[float]:
    text = "" if text is None else str(text).strip()
    if text == "" or text.lower() in ("none", "nan", "-"):
        return None
    return float(text)


def _as_percent(values: List[float]) -> List[float]:
    """Percent values: fractions (all finite values <= 1) are multiplied by 100."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if finite and max(finite) <= 1.0:
        return [None if v is None else 100.0 * v for v in values]
    return values


def _parse_ranks(text) -> List[int]:
    """``"81|104|111|117"`` (also ``[81, 104]``, ``81 104``, ``81;104``) -> list of int."""
    text = "" if text is None else str(text).strip().strip("[]()")
    for sep in ("|", ";", ",", " "):
        text = text.replace(sep, " ")
    return [int(float(t)) for t in text.split()]


def read_table(table_csv) -> dict:
    r"""Read the MNIST sweep table (``results/mnist_dense_table.csv``).

    Required columns ``tau``, ``test_acc``, ``eval_cr``; optional ``ranks``, ``method`` and
    one of :data:`RUN_NAME_COLUMNS`. ``test_acc`` and ``eval_cr`` may be percentages or
    fractions (a column whose values are all <= 1 is taken as fractions). A row is the
    dense baseline when ``method`` is ``dense`` or ``tau`` is empty.

    Parameters
    ----------
    table_csv : str or path-like

    Returns
    -------
    dict
        ``rows`` : list of dict (low-rank rows, in file order) with ``tau``, ``test_acc``
        (%), ``eval_cr`` (%), ``ranks`` (list of int), ``run`` (str or None), ``raw``;
        ``dense`` : dict or None, the dense row.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A required column is missing or the table has no low-rank row.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "table.csv"
    >>> _ = p.write_text("method,tau,test_acc,eval_cr,ranks\n"
    ...                  "dense,,0.9841,0.0,\n"
    ...                  "adaptive,0.1,0.9822,0.85,30|41|37|38\n")
    >>> t = read_table(p)
    >>> t["rows"][0]["tau"], round(t["rows"][0]["test_acc"], 2), t["rows"][0]["ranks"]
    (0.1, 98.22, [30, 41, 37, 38])
    >>> round(t["dense"]["test_acc"], 2)
    98.41
    """
    table_csv = Path(table_csv)
    if not table_csv.is_file():
        raise FileNotFoundError(f"{table_csv} not found: it is written by {_PRODUCER}")
    with open(table_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        raw = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    missing = [c for c in ("tau", "test_acc", "eval_cr") if c not in cols]
    if missing:
        raise ValueError(f"{table_csv}: missing column(s) {missing}; expected at least "
                         f"tau, test_acc, eval_cr (and ranks), got {cols}")
    acc = _as_percent([_float_or_none(r["test_acc"]) for r in raw])
    cr = _as_percent([_float_or_none(r["eval_cr"]) for r in raw])
    rows, dense = [], None
    for r, a, c in zip(raw, acc, cr):
        tau = _float_or_none(r["tau"])
        method = (r.get("method") or "").strip().lower()
        run = next((r[k].strip() for k in RUN_NAME_COLUMNS if (r.get(k) or "").strip()),
                   None)
        entry = {"tau": tau, "test_acc": a, "eval_cr": c, "run": run, "raw": r,
                 "ranks": _parse_ranks(r.get("ranks")) if (r.get("ranks") or "").strip()
                 else []}
        if method == "dense" or tau is None:
            dense = dense or entry
        else:
            rows.append(entry)
    if not rows:
        raise ValueError(f"{table_csv}: no low-rank row (a row with a tau and a method "
                         f"other than dense)")
    return {"rows": rows, "dense": dense}


def plot_accuracy_vs_compression(table_csv, path) -> str:
    """Test accuracy against compression rate: this project's sweep beside [SZKCT22].

    This project's points come from ``table_csv`` (see :func:`read_table`); the published
    points are :data:`PAPER_MNIST_TABLE` of [SZKCT22] (rank-adaptive DLRT, MNIST,
    784-500-500-500-500-10). Each point is annotated with its ``tau``; horizontal lines
    mark the dense baselines (the paper's, and this project's if the table has a dense
    row).

    Parameters
    ----------
    table_csv : str or path-like
    path : str or path-like
        The PNG file to write.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`read_table`.
    """
    table = read_table(table_csv)
    fig = _new_figure((7.2, 5.0))
    ax = fig.subplots()
    px = [p["eval_cr"] for p in PAPER_MNIST_TABLE]
    py = [p["test_acc"] for p in PAPER_MNIST_TABLE]
    ax.plot(px, py, color="0.35", marker="o", ls="-", lw=1.2, ms=6, mfc="white",
            label="[SZKCT22], published (rank-adaptive DLRT)")
    for p in PAPER_MNIST_TABLE:
        # the curves fall to the right: up-right (paper) and down-left (ours) are free
        ax.annotate(f"τ={p['tau']:g}", (p["eval_cr"], p["test_acc"]), xytext=(5, 6),
                    textcoords="offset points", fontsize=7.5, color="0.35")
    rows = [r for r in table["rows"] if r["test_acc"] is not None and r["eval_cr"] is not None]
    rows.sort(key=lambda r: r["eval_cr"])
    ax.plot([r["eval_cr"] for r in rows], [r["test_acc"] for r in rows], color="tab:red",
            marker="s", ls="-", lw=1.5, ms=6, label="this project (lowrank_ref)")
    for r in rows:
        ax.annotate(f"τ={r['tau']:g}", (r["eval_cr"], r["test_acc"]), xytext=(-5, -12),
                    textcoords="offset points", fontsize=7.5, color="tab:red", ha="right")
    ax.axhline(PAPER_MNIST_DENSE_ACC, color="0.35", ls="--", lw=1,
               label=f"[SZKCT22] dense: {PAPER_MNIST_DENSE_ACC:.2f}%")
    if table["dense"] is not None and table["dense"]["test_acc"] is not None:
        d = table["dense"]["test_acc"]
        ax.axhline(d, color="tab:red", ls=":", lw=1.3, label=f"this project, dense: {d:.2f}%")
    ax.margins(x=0.1, y=0.08)
    ax.set_xlabel("compression rate of the evaluation parameters (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST, 784-500-500-500-500-10: accuracy vs compression", fontsize=10.5)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def read_history(history_csv) -> dict:
    """Read a run's ``history.csv`` (columns of :data:`lowrank_ref.training.HISTORY_COLUMNS`).

    Returns
    -------
    dict
        ``epoch`` (list of int), ``phase`` (list of str), ``ranks`` (list of list of int,
        one per epoch; empty for a dense run), ``test_acc`` (list, %, or None).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        No ``epoch`` or ``ranks`` column.
    """
    history_csv = Path(history_csv)
    if not history_csv.is_file():
        raise FileNotFoundError(f"{history_csv} not found: it is written by "
                                f"python -m lowrank_ref train (or {_PRODUCER})")
    with open(history_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        raw = list(reader)
    for c in ("epoch", "ranks"):
        if c not in cols:
            raise ValueError(f"{history_csv}: missing column {c!r}, got {cols}")
    acc = _as_percent([_float_or_none(r.get("test_acc")) for r in raw])
    return {"epoch": [int(float(r["epoch"])) for r in raw],
            "phase": [(r.get("phase") or "train").strip() for r in raw],
            "ranks": [_parse_ranks(r["ranks"]) if (r["ranks"] or "").strip() else []
                      for r in raw],
            "test_acc": acc}


def plot_rank_evolution(history_csvs: Dict[str, object], path) -> str:
    r"""Ranks of each low-rank layer per epoch, one panel per run.

    Parameters
    ----------
    history_csvs : dict label -> path of ``history.csv``
        Runs to show, in panel order (e.g. ``{"tau = 0.05": ".../history.csv"}``). The
        ``ranks`` column holds ``"81|104|111|117"`` (dense layers omitted); epochs of a
        phase other than ``train`` (S-only fine-tuning) are shaded. If a ``run.json`` of
        :func:`lowrank_ref.training.train` lies beside it, the starting ranks are drawn at
        epoch 0 (the ranks of adaptive DLRT fall within the first epoch).
    path : str or path-like

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ValueError
        ``history_csvs`` is empty, or a run has no ranks (a dense run).
    FileNotFoundError
        A history file is missing.

    Examples
    --------
    >>> import tempfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> _ = (tmp / "history.csv").write_text(
    ...     "epoch,phase,test_acc,ranks\n1,train,0.95,60|70\n2,train,0.97,40|52\n"
    ...     "3,finetune,0.975,40|52\n")
    >>> read_history(tmp / "history.csv")["ranks"]
    [[60, 70], [40, 52], [40, 52]]
    >>> out = plot_rank_evolution({"tau = 0.1": tmp / "history.csv"}, tmp / "ranks.png")
    >>> open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    True
    """
    if not history_csvs:
        raise ValueError("history_csvs must map at least one label to a history.csv path")
    runs = {label: read_history(p) for label, p in history_csvs.items()}
    for label, h in runs.items():
        if not any(h["ranks"]):
            raise ValueError(f"{history_csvs[label]} ({label}): no ranks recorded "
                             f"(a dense run?)")
    k = len(runs)
    fig = _new_figure((4.4 * k + 1.6, 4.2))
    axes = fig.subplots(1, k, squeeze=False, sharey=True)[0]
    for ax, (label, h) in zip(axes, runs.items()):
        ep = [e for e, r in zip(h["epoch"], h["ranks"]) if r]
        R = [r for r in h["ranks"] if r]
        start = _start_ranks(Path(history_csvs[label]).parent / "run.json", len(R[0]))
        if start is not None:            # epoch 0: the starting rank, before any step
            ep, R = [0] + ep, [start] + R
        nl = max(len(r) for r in R)
        for j in range(nl):
            ax.plot(ep, [r[j] if j < len(r) else np.nan for r in R], marker="o", ms=3.5,
                    lw=1.5, label=f"layer {j + 1}")
        fine = [e for e, ph in zip(h["epoch"], h["phase"]) if ph != "train"]
        if fine:
            ax.axvspan(min(fine) - 0.5, max(fine) + 0.5, color="0.9", zorder=0,
                       label="S-only fine-tuning")
        last = R[-1]
        acc = h["test_acc"][-1] if h["test_acc"] else None
        sub = f"final ranks {last}" + (f", test acc {acc:.2f}%" if acc is not None else "")
        ax.set_title(f"{label}\n{sub}", fontsize=9.5)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    axes[0].set_ylabel("rank")
    axes[0].set_ylim(bottom=0)
    fig.suptitle("Rank-adaptive DLRT on MNIST: ranks of the low-rank layers", fontsize=11)
    return _save(fig, path)


def _start_ranks(run_json: Path, n_layers: int) -> Optional[list]:
    """Starting ranks ``min(rank, n_in, n_out)`` of the low-rank layers from a ``run.json``
    written by :func:`lowrank_ref.training.train` (None if it is missing or has no rank)."""
    try:
        cfg = json.loads(Path(run_json).read_text())["config"]
        rank, sizes = int(cfg["rank"]), [int(v) for v in cfg["sizes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ranks = [min(rank, a, b) for a, b in zip(sizes[:-1], sizes[1:])][:n_layers]
    return ranks if len(ranks) == n_layers else None



#: Where :func:`make_figures` reads the wide-network timing (written by the benchmark).
TIMING_JSON = Path("benchmarks") / "results" / "bench_rank_sweep.json"
_TIMING_PRODUCER = ("python benchmarks/bench_rank_sweep.py --threads 1 --variants none "
                    "--json benchmarks/results/bench_rank_sweep.json")


def _break_even(ranks, ratio) -> Optional[float]:
    """First rank where ``ratio`` reaches 1, interpolated in log-log (None if never)."""
    for i in range(1, len(ranks)):
        if ratio[i - 1] < 1.0 <= ratio[i]:
            x0, x1 = np.log(ranks[i - 1]), np.log(ranks[i])
            y0, y1 = np.log(ratio[i - 1]), np.log(ratio[i])
            return float(np.exp(x0 - y0 * (x1 - x0) / (y1 - y0)))
    return None


def plot_timing_vs_rank(timing_json, path) -> str:
    """Step time against rank on a wide network, from ``benchmarks/bench_rank_sweep.py``'s JSON.

    Left: ms per training step of fixed-rank and one-gradient rank-adaptive DLRT against the
    dense step (package and hand-written NumPy); right: the ratio to the dense step with
    the break-even ranks.

    Parameters
    ----------
    timing_json : path-like
        Keys ``dense_ms``, ``baseline_ms``, ``rows`` (``method`` "fixed-<r>" or
        "adaptive1-<r>", ``rank``, ``ms``), ``args`` (``width``, ``batch_size``,
        ``threads``), ``machine``.
    path : path-like

    Returns
    -------
    str
        ``path``.
    """
    timing_json = Path(timing_json)
    if not timing_json.is_file():
        raise FileNotFoundError(f"{timing_json} not found: it is written by {_TIMING_PRODUCER}")
    d = json.loads(timing_json.read_text())
    dense, base = float(d["dense_ms"]), float(d["baseline_ms"])
    series = {}
    for row in d["rows"]:
        kind = row["method"].rsplit("-", 1)[0]
        if kind in ("fixed", "adaptive1") and "+" not in row["method"]:
            series.setdefault(kind, []).append((int(row["rank"]), float(row["ms"])))
    fig = _new_figure((10, 4.4))
    ax, ax2 = fig.subplots(1, 2)
    ax.axhline(dense, color="k", lw=1.5, label="dense (package DenseSGD)")
    ax.axhline(base, color="k", lw=1, ls=":", label="dense (hand-written NumPy)")
    ax2.axhline(1.0, color="k", lw=1.5)
    ax2.axhspan(1.0, 100, color="0.9")
    labels = {"fixed": ("fixed rank (FixedRankKLS)", "o", "C0"),
              "adaptive1": ("adaptive, one gradient (AdaptiveKLS)", "s", "C1")}
    for kind, pts in series.items():
        pts.sort()
        r = np.array([p[0] for p in pts])
        t = np.array([p[1] for p in pts])
        label, marker, color = labels[kind]
        ax.plot(r, t, marker + "-", color=color, label=label)
        ax2.plot(r, t / dense, marker + "-", color=color, label=label.split(" (")[0])
        x = _break_even(r, t / dense)
        if x is not None:
            ax2.axvline(x, color=color, ls=":", lw=1)
            ax2.annotate(f"break-even r ~ {x:.0f}", (x, 1.0), color=color, fontsize=8,
                         xytext=(4, -14 if kind == "fixed" else -26), textcoords="offset points")
    a = d.get("args", {})
    for axis in (ax, ax2):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("rank r of every low-rank layer")
        axis.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("time per training step [ms]")
    ax.set_title(f"784-{a.get('width', '?')}x4-10, batch {a.get('batch_size', '?')}: step time")
    ax.legend(fontsize=7, loc="upper left")
    ax2.set_ylabel("step time / package dense step")
    ax2.set_title("relative to the dense step (shaded: low rank slower)")
    ax2.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _history_for(row: dict, runs_dir: Path, results_dir: Path) -> Optional[Path]:
    """The ``history.csv`` of a table row, or None.

    Looked up by the row's run name (:data:`RUN_NAME_COLUMNS`) as
    ``runs_dir/<name>/history.csv`` (then ``<name>`` as a path, relative to the working
    directory and to ``results_dir``); without a name, the run folder under ``runs_dir``
    whose ``run.json`` has ``config.tau`` equal to the row's ``tau``.
    """
    if row["run"]:
        name = row["run"]
        for cand in (runs_dir / Path(name).name, Path(name), results_dir / name):
            if (cand / "history.csv").is_file():
                return cand / "history.csv"
        return None
    if not runs_dir.is_dir():
        return None
    for d in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        try:
            cfg = json.loads((d / "run.json").read_text())["config"]
            tau = cfg.get("tau")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if tau is not None and math.isclose(float(tau), row["tau"], rel_tol=1e-9) \
                and (d / "history.csv").is_file():
            return d / "history.csv"
    return None


def _expected_history(row: dict, runs_dir: Path) -> Path:
    name = Path(row["run"]).name if row["run"] else "<run with tau=%g>" % row["tau"]
    return runs_dir / name / "history.csv"


def make_figures(only: Optional[str] = None, fast: bool = False, out_dir="figures",
                 results_dir="results", timing_json=None,
                 threads: Optional[int] = DEFAULT_THREADS) -> List[str]:
    """Write the project's figures (PNG) to ``out_dir``; one line printed per figure.

    * ``only="integrators"`` (or None): computes
      :func:`~lowrank_ref.experiments.integrator_convergence` and
      :func:`~lowrank_ref.experiments.integrator_robustness` (``fast`` selects their tiny
      sizes) and writes ``integrators_convergence.png`` and ``integrators_robustness.png``.
    * ``only="mnist"`` (or None): reads ``results_dir/mnist_dense_table.csv`` and the
      ``history.csv`` of the first and the last low-rank table row that have one, and
      writes ``mnist_accuracy_vs_compression.png`` and ``mnist_rank_evolution.png``. A
      row's run is ``results_dir/mnist_runs/<run>/history.csv`` where ``<run>`` is the
      last path component of its first non-empty :data:`RUN_NAME_COLUMNS` column; a
      table without such a column is matched by ``tau`` against the ``config.tau`` of
      each ``results_dir/mnist_runs/*/run.json``.

    * ``only="timing"`` (or None): redraws ``timing_vs_rank.png`` from ``timing_json``
      (default :data:`TIMING_JSON`, written by ``benchmarks/bench_rank_sweep.py``; the
      timing itself is not rerun).

    The MNIST and timing inputs are checked before anything is computed or written.

    Parameters
    ----------
    only : {None, "integrators", "mnist", "timing"}
    fast : bool, default False
    out_dir : str or path-like, default "figures"
    results_dir : str or path-like, default "results"
    threads : int or None, default 1
        BLAS threads for the integrator experiments (:func:`lowrank_ref.threads.blas_threads`).

    Returns
    -------
    list of str
        The paths written.

    Raises
    ------
    ValueError
        ``only`` not one of the above, ``out_dir`` an existing file.
    FileNotFoundError
        A results file is missing (the message names it and the command that writes it).
    """
    if only not in (None, "integrators", "mnist", "timing"):
        raise ValueError(f"only must be None, 'integrators', 'mnist' or 'timing', got {only!r}")
    out_dir, results_dir = Path(out_dir), Path(results_dir)
    if out_dir.exists() and not out_dir.is_dir():     # before minutes of computation
        raise ValueError(f"out_dir must be a folder (created if missing), got the file {out_dir}")
    written: List[str] = []

    def done(p):
        written.append(p)
        print(f"wrote {p}")

    if only in (None, "mnist"):
        # check the inputs before anything is computed or written
        table_csv = results_dir / TABLE_NAME
        table = read_table(table_csv)
        runs_dir = results_dir / RUNS_DIR_NAME
        found = [(r, _history_for(r, runs_dir, results_dir)) for r in table["rows"]]
        found = [(r, p) for r, p in found if p is not None]
        if not found:
            raise FileNotFoundError(
                f"{_expected_history(table['rows'][0], runs_dir)} not found (no run of "
                f"{table_csv} has a history.csv under {runs_dir}): the runs are written by "
                f"{_PRODUCER}")
        chosen = [found[0]] if len(found) == 1 else [found[0], found[-1]]
    if only in (None, "timing"):
        timing_json = Path(timing_json if timing_json is not None else TIMING_JSON)
        if not timing_json.is_file():
            raise FileNotFoundError(f"{timing_json} not found: it is written by "
                                    f"{_TIMING_PRODUCER}")
    if only in (None, "integrators"):
        from .experiments import integrator_convergence, integrator_robustness
        with blas_threads(threads):
            convergence = integrator_convergence(fast=fast)
            robustness = integrator_robustness(fast=fast)
        done(plot_integrator_convergence(convergence, out_dir / "integrators_convergence.png"))
        done(plot_integrator_robustness(robustness, out_dir / "integrators_robustness.png"))
    if only in (None, "mnist"):
        done(plot_accuracy_vs_compression(table_csv,
                                          out_dir / "mnist_accuracy_vs_compression.png"))
        done(plot_rank_evolution({f"τ = {r['tau']:g}": p for r, p in chosen},
                                 out_dir / "mnist_rank_evolution.png"))
    if only in (None, "timing"):
        done(plot_timing_vs_rank(timing_json, out_dir / "timing_vs_rank.png"))
    return written
