"""Figures of the MNIST runs: accuracy against compression, ranks per epoch.

* :func:`read_table` and :func:`plot_accuracy_vs_compression` put this project's sweep beside
  the published numbers of [SZKCT22] (:data:`PAPER_MNIST_TABLE`);
* :func:`read_history` and :func:`plot_rank_evolution` show the ranks of each low-rank layer
  per epoch;
* :func:`history_for` finds the ``history.csv`` of a table row.

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

from ..training.specs import flat_options
from .style import new_figure, save

__all__ = ["PAPER_MNIST_TABLE", "PAPER_MNIST_DENSE_ACC", "TABLE_NAME", "RUNS_DIR_NAME",
           "RUN_NAME_COLUMNS", "PRODUCER", "read_table", "plot_accuracy_vs_compression",
           "read_history", "plot_rank_evolution", "history_for", "expected_history"]

#: Rank-adaptive DLRT on MNIST, the 784-500-500-500-500-10 fully connected network,
#: published in [SZKCT22] (Schotthöfer et al., NeurIPS 2022), as transcribed for this
#: project (the table number was not checked against the paper): relative truncation
#: tolerance ``tau``, test accuracy (%), ranks of the four low-rank layers, compression
#: rate of the evaluation parameters (%). All eight rows of the published table,
#: τ = 0.03 ... 0.17; the τ = 0.03 compression (34.96 %) is rounded to one decimal like the
#: others (it follows from the ranks as ``Σ r (n_in + n_out) + 5000`` parameters).
PAPER_MNIST_TABLE = (
    {"tau": 0.03, "test_acc": 98.49, "ranks": (176, 170, 171, 174), "eval_cr": 35.0},
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
PRODUCER = "python -m lowrank_ref sweep ... (see docs/reproduce/01_mnist_table.md)"

#: Columns of ``results/mnist_dense_table.csv`` that name a row's run folder (first
#: non-empty one wins; its last path component is looked up under ``results/mnist_runs``).
RUN_NAME_COLUMNS = ("run", "name", "run_dir", "out", "dir")


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
        ``dense`` : dict or None, the (first) dense row; ``dense_rows`` : every dense row
        (one per seed).

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
        raise FileNotFoundError(f"{table_csv} not found: it is written by {PRODUCER}")
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
    rows, dense, dense_rows = [], None, []
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
            dense_rows.append(entry)
        else:
            rows.append(entry)
    if not rows:
        raise ValueError(f"{table_csv}: no low-rank row (a row with a tau and a method "
                         f"other than dense)")
    return {"rows": rows, "dense": dense, "dense_rows": dense_rows}


def plot_accuracy_vs_compression(table_csv, path) -> str:
    """Test accuracy against compression rate: this project's sweep beside [SZKCT22].

    This project's points come from ``table_csv`` (see :func:`read_table`), one per ``tau``:
    the mean over its runs (seeds) with bars from the lowest to the highest; the published
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
    fig = new_figure((7.2, 5.0))
    ax = fig.subplots()
    px = [p["eval_cr"] for p in PAPER_MNIST_TABLE]
    py = [p["test_acc"] for p in PAPER_MNIST_TABLE]
    ax.plot(px, py, color="0.35", marker="o", ls="-", lw=1.2, ms=6, mfc="white",
            label="[SZKCT22], published (rank-adaptive DLRT)")
    for p in PAPER_MNIST_TABLE:
        # the curves fall to the right: up-right (paper) and down-left (ours) are free
        ax.annotate(f"τ={p['tau']:g}", (p["eval_cr"], p["test_acc"]), xytext=(5, 6),
                    textcoords="offset points", fontsize=7.5, color="0.35")
    # one point per tau: the mean over its runs (seeds), bars from the lowest to the highest
    by_tau: Dict[float, list] = {}
    for r in table["rows"]:
        if r["test_acc"] is not None and r["eval_cr"] is not None:
            by_tau.setdefault(r["tau"], []).append(r)
    pts = sorted((float(np.mean([r["eval_cr"] for r in g])),
                  float(np.mean([r["test_acc"] for r in g])),
                  min(r["test_acc"] for r in g), max(r["test_acc"] for r in g), tau, len(g))
                 for tau, g in by_tau.items())
    seeds = max(p[5] for p in pts)
    y = np.array([p[1] for p in pts])
    ax.errorbar([p[0] for p in pts], y, yerr=[y - [p[2] for p in pts], [p[3] for p in pts] - y],
                color="tab:red", marker="s", ls="-", lw=1.5, ms=6, capsize=2.5,
                label="this project (lowrank_ref)" + (f", mean of up to {seeds} seeds "
                                                      f"(bars: lowest to highest)"
                                                      if seeds > 1 else ""))
    for cr, acc, _, _, tau, _ in pts:
        ax.annotate(f"τ={tau:g}", (cr, acc), xytext=(-5, -12),
                    textcoords="offset points", fontsize=7.5, color="tab:red", ha="right")
    ax.axhline(PAPER_MNIST_DENSE_ACC, color="0.35", ls="--", lw=1,
               label=f"[SZKCT22] dense: {PAPER_MNIST_DENSE_ACC:.2f}%")
    dense = [r["test_acc"] for r in table.get("dense_rows", []) if r["test_acc"] is not None]
    if dense:
        d = float(np.mean(dense))
        ax.axhline(d, color="tab:red", ls=":", lw=1.3,
                   label=f"this project, dense: {d:.2f}%" + (f" (mean of {len(dense)})"
                                                              if len(dense) > 1 else ""))
    ax.margins(x=0.1, y=0.08)
    ax.set_xlabel("compression rate of the evaluation parameters (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST, 784-500-500-500-500-10: accuracy vs compression", fontsize=10.5)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save(fig, path)


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
                                f"python -m lowrank_ref train (or {PRODUCER})")
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
    fig = new_figure((4.4 * k + 1.6, 4.2))
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
    return save(fig, path)


def _start_ranks(run_json: Path, n_layers: int) -> Optional[list]:
    """Starting ranks ``min(rank, n_in, n_out)`` of the low-rank layers from a ``run.json``
    written by :func:`lowrank_ref.training.train` (None if it is missing or has no rank)."""
    try:
        cfg = flat_options(json.loads(Path(run_json).read_text())["config"])
        rank, sizes = int(cfg["rank"]), [int(v) for v in cfg["sizes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ranks = [min(rank, a, b) for a, b in zip(sizes[:-1], sizes[1:])][:n_layers]
    return ranks if len(ranks) == n_layers else None


def history_for(row: dict, runs_dir: Path, results_dir: Path) -> Optional[Path]:
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
            cfg = flat_options(json.loads((d / "run.json").read_text())["config"])
            tau = cfg.get("tau")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if tau is not None and math.isclose(float(tau), row["tau"], rel_tol=1e-9) \
                and (d / "history.csv").is_file():
            return d / "history.csv"
    return None


def expected_history(row: dict, runs_dir: Path) -> Path:
    name = Path(row["run"]).name if row["run"] else "<run with tau=%g>" % row["tau"]
    return runs_dir / name / "history.csv"
