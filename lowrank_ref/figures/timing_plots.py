"""The timing figure: step time against rank on a wide network (from a benchmark's JSON)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from .style import new_figure, save

__all__ = ["TIMING_JSON", "TIMING_PRODUCER", "break_even", "plot_timing_vs_rank"]

#: Where :func:`make_figures` reads the wide-network timing (written by the benchmark).
TIMING_JSON = Path("benchmarks") / "results" / "bench_rank_sweep.json"
TIMING_PRODUCER = ("python benchmarks/bench_rank_sweep.py --threads 1 "
                    "--json benchmarks/results/bench_rank_sweep.json")


def break_even(ranks, ratio) -> Optional[float]:
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
        raise FileNotFoundError(f"{timing_json} not found: it is written by {TIMING_PRODUCER}")
    d = json.loads(timing_json.read_text())
    dense, base = float(d["dense_ms"]), float(d["baseline_ms"])
    series = {}
    for row in d["rows"]:
        kind = row["method"].rsplit("-", 1)[0]
        if kind in ("fixed", "adaptive1") and "+" not in row["method"]:
            series.setdefault(kind, []).append((int(row["rank"]), float(row["ms"])))
    fig = new_figure((10, 4.4))
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
        x = break_even(r, t / dense)
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
    return save(fig, path)
