"""Figures of the paper's comparisons (``python -m lowrank_ref compare``), drawn from the tables.

* :func:`plot_methods_vs_compression` -- final test accuracy against the compression of the
  evaluation parameters, one line per method (``results/mnist_comparison.csv``);
* :func:`plot_illconditioned` -- test accuracy per epoch of fixed-rank DLRT and vanilla
  ``U V^T`` from the same decaying starting spectrum, one panel per decay
  (``results/mnist_illconditioned.csv``, and ``results/lenet5_illconditioned.csv`` for LeNet5).

Nothing is retrained: the tables hold one row per run and epoch
(:data:`lowrank_ref.training.compare.TABLE_COLUMNS`).
"""
from __future__ import annotations

import csv
from pathlib import Path

from .style import new_figure, save

__all__ = ["plot_methods_vs_compression", "plot_illconditioned", "read_comparison",
           "COMPARISON_TABLE", "ILLCONDITIONED_TABLE", "LENET5_ILLCONDITIONED_TABLE",
           "COMPARISON_PRODUCER"]

COMPARISON_TABLE = "mnist_comparison.csv"
ILLCONDITIONED_TABLE = "mnist_illconditioned.csv"
#: The ill-conditioning table of LeNet5 (``compare illconditioned --arch lenet5``).
LENET5_ILLCONDITIONED_TABLE = "lenet5_illconditioned.csv"
COMPARISON_PRODUCER = ("python -m lowrank_ref compare methods|illconditioned ... "
                       "(see docs/reproduce/03_comparisons.md)")

#: Drawing order, labels and styles of the methods of the comparison table.
METHOD_STYLES = {
    "adaptive": ("rank-adaptive DLRT", "C3", "o", "-"),
    "fixed": ("fixed-rank DLRT (same ranks)", "C0", "s", "-"),
    "vanilla": ("vanilla $UV^T$ (same ranks)", "C1", "^", "--"),
    "prune": ("dense, pruned (no fine-tuning)", "0.45", "x", ":"),
    "prune+fixed": ("pruned + fixed-rank DLRT fine-tuning", "C2", "D", "-."),
    "prune+sonly": ("pruned + S-only fine-tuning", "C4", "v", "-."),
}

_REQUIRED = ("level", "method", "epoch", "eval_cr", "test_acc")


def read_comparison(table) -> list:
    """The rows of a comparison table (dicts of strings), with its required columns checked.

    Raises
    ------
    FileNotFoundError
        No such file (the message names the command that writes it).
    ValueError
        A required column is missing or the table is empty.
    """
    table = Path(table)
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: it is written by {COMPARISON_PRODUCER}")
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
    if missing or not rows:
        raise ValueError(f"{table}: missing columns {missing} or no rows")
    return rows


def _last_epochs(rows) -> dict:
    """(level, method) -> the last-epoch rows of its runs (one per seed)."""
    last = {}
    for r in rows:
        key = (r["level"], r["method"], r.get("seed", "0"))
        if key not in last or int(r["epoch"]) >= int(last[key]["epoch"]):
            last[key] = r
    final: dict = {}
    for (level, method, _), r in last.items():
        final.setdefault((level, method), []).append(r)
    return final


def _stats(values) -> tuple:
    """(mean, lower error, upper error) of a list of numbers: the error bar spans min to max."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    return mean, mean - min(values), max(values) - mean


def plot_methods_vs_compression(table, path) -> str:
    """Final test accuracy against the evaluation compression rate, one line per method.

    With several seeds (column ``seed``): the mean, and error bars from the lowest to the
    highest (methods shifted by a hair along x so that the bars do not overlap).

    Parameters
    ----------
    table : path-like
        ``mnist_comparison.csv`` (rows of the experiment "methods"); the dense row
        (``method`` "dense") is drawn as a horizontal line.
    path : path-like

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> _ = (tmp / "t.csv").write_text(
    ...     "level,method,epoch,eval_cr,test_acc\\ndense,dense,5,0.0,98.2\\n"
    ...     "0.1,adaptive,5,85.0,97.9\\n0.1,vanilla,5,85.0,97.0\\n0.2,adaptive,5,92.0,97.5\\n")
    >>> out = plot_methods_vs_compression(tmp / "t.csv", tmp / "m.png")
    >>> open(out, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    final = _last_epochs(read_comparison(table))
    fig = new_figure((7.4, 4.8))
    ax = fig.subplots()
    shift = {m: 0.12 * (i - 2.5) for i, m in enumerate(METHOD_STYLES)}   # keep bars apart
    for method, (label, color, marker, ls) in METHOD_STYLES.items():
        pts = sorted((_stats([r["eval_cr"] for r in rs])[0], _stats([r["test_acc"] for r in rs]))
                     for (level, m), rs in final.items() if m == method)
        if pts:
            ax.errorbar([p[0] + shift[method] for p in pts], [p[1][0] for p in pts],
                        yerr=[[p[1][1] for p in pts], [p[1][2] for p in pts]], color=color,
                        marker=marker, ls=ls, lw=1.4, ms=5.5, capsize=2.5, label=label)
    for (level, m), rs in final.items():
        if m == "adaptive":
            xy = (_stats([r["eval_cr"] for r in rs])[0], _stats([r["test_acc"] for r in rs])[0])
            ax.annotate(f"τ = {level}", xy, textcoords="offset points", xytext=(4, 7),
                        fontsize=7.5, color="C3")
    dense = [r for (level, m), rs in final.items() if m == "dense" for r in rs]
    if dense:
        acc = _stats([r["test_acc"] for r in dense])[0]
        ax.axhline(acc, color="k", lw=1, ls="--", label=f"dense ({acc:.2f} %)")
    seeds = {len(rs) for rs in final.values()}
    epochs = sorted({r["epochs"] for (lv, m), rs in final.items() if m == "adaptive"
                     for r in rs if "epochs" in r})
    ax.set_xlabel("compression of the evaluation parameters (%)")
    ax.set_ylabel("test accuracy after the last epoch (%)")
    ax.set_title("MNIST 784-500x4-10, equal ranks per level"
                 + (f", {'/'.join(epochs)} epochs" if epochs else "")
                 + (f"; mean and min-max of {max(seeds)} seeds" if max(seeds) > 1 else ""),
                 fontsize=9.5)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower left")
    return save(fig, path)


def plot_illconditioned(table, path, title=None) -> str:
    """Test accuracy per epoch, fixed-rank DLRT (solid) against vanilla (dashed), per decay.

    With several seeds: the mean, and the band from the lowest to the highest.

    Parameters
    ----------
    table : path-like
        ``mnist_illconditioned.csv``: ``level`` is the decay, ``method`` "fixed" or
        "vanilla", epoch 0 the start.
    path : path-like
    title : str, optional
        Above the panels (e.g. the network); None: none.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> rows = ["level,method,epoch,eval_cr,test_acc"] + [
    ...     f"{d},{m},{e},96.0,{10 + 8 * e + (5 if m == 'fixed' else 0)}"
    ...     for d in (1, 10) for m in ("fixed", "vanilla") for e in range(3)]
    >>> _ = (tmp / "i.csv").write_text("\\n".join(rows) + "\\n")
    >>> out = plot_illconditioned(tmp / "i.csv", tmp / "i.png")
    >>> open(out, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    rows = read_comparison(table)
    decays = sorted({r["level"] for r in rows}, key=float)
    fig = new_figure((4.0 * len(decays) + 0.8, 3.9))
    axes = fig.subplots(1, len(decays), squeeze=False, sharey=True)[0]
    styles = {"fixed": ("fixed-rank DLRT", "C0", "-", "o"),
              "vanilla": ("vanilla $UV^T$", "C1", "--", "^")}
    for ax, decay in zip(axes, decays):
        for method, (label, color, ls, marker) in styles.items():
            by_epoch: dict = {}
            for r in rows:
                if r["level"] == decay and r["method"] == method:
                    by_epoch.setdefault(int(r["epoch"]), []).append(float(r["test_acc"]))
            if by_epoch:
                ep = sorted(by_epoch)
                mean = [sum(by_epoch[e]) / len(by_epoch[e]) for e in ep]
                ax.plot(ep, mean, color=color, ls=ls, marker=marker, ms=4, lw=1.6, label=label)
                if max(len(v) for v in by_epoch.values()) > 1:
                    ax.fill_between(ep, [min(by_epoch[e]) for e in ep],
                                    [max(by_epoch[e]) for e in ep], color=color, alpha=0.15,
                                    lw=0)
        ranks = {r["ranks"] for r in rows if r["level"] == decay and r.get("ranks")}
        ax.set_title(f"decay {decay}" + (f", ranks {sorted(ranks)[0]}" if len(ranks) == 1
                                          else ""), fontsize=10)
        ax.set_xlabel("epoch (0: the common start)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower right")
    if title is not None:
        fig.suptitle(str(title), fontsize=10.5)
    return save(fig, path)
