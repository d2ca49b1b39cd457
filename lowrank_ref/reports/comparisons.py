"""Report of the method comparisons (``docs/reproduce/03_comparisons.md``).

Reads the tables of ``python -m lowrank_ref compare methods|illconditioned`` (one row per
run and epoch: ``level``, ``method``, ``seed``, ``epoch``, ``phase``, ``ranks``,
``eval_cr``, ``test_acc``) and writes the methods table (the last epoch of each run, mean
over the seeds with the lowest and highest value) and the ill-conditioned tables (test
accuracy after every epoch, mean over the seeds; the last epoch's lowest–highest).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from .markdown import mean, read_csv, spread, table

__all__ = ["METHOD_COLUMNS", "PAIRS", "final_rows", "methods_block", "differences_block",
           "fashion_illconditioned_block",
           "illconditioned_block", "comparison_blocks", "validation_comparison_blocks"]

#: Methods of ``compare methods`` and their column titles, in the table's order (the
#: equal-budget methods appear only when the table has them).
METHOD_COLUMNS = (("adaptive", "adaptive DLRT"), ("fixed", "fixed-rank DLRT"),
                  ("vanilla", "vanilla `U Vᵀ`"), ("prune", "pruned"),
                  ("prune+fixed", "pruned + fixed-rank"), ("prune+sonly", "pruned + S-only"),
                  ("prune-equal", "pruned, equal budget"),
                  ("prune+fixed-equal", "pruned + fixed-rank, equal budget"),
                  ("prune+sonly-equal", "pruned + S-only, equal budget"))
_ILL_NAMES = {"fixed": "fixed-rank DLRT", "vanilla": "vanilla `U Vᵀ`"}
#: The differences of :func:`differences_block`, ``(a, b)``: ``a`` minus ``b``, paired by seed
#: ("dense": the dense run of the seed); pairs of a method the table lacks are left out.
PAIRS = (("prune", "adaptive"), ("prune+fixed", "adaptive"), ("prune+sonly", "adaptive"),
         ("prune-equal", "adaptive"), ("prune+fixed-equal", "adaptive"),
         ("prune+sonly-equal", "adaptive"), ("vanilla", "adaptive"), ("fixed", "adaptive"),
         ("vanilla", "fixed"), ("dense", "prune"), ("dense", "adaptive"))


def final_rows(rows: List[Dict[str, str]]) -> Dict[tuple, Dict[str, str]]:
    """``(level, method, seed) -> row`` of each run's last epoch."""
    last: Dict[tuple, Dict[str, str]] = {}
    for r in rows:
        key = (r["level"], r["method"], r["seed"])
        if key not in last or int(r["epoch"]) > int(last[key]["epoch"]):
            last[key] = r
    return last


def _level_key(level: str) -> float:
    return -1.0 if level == "dense" else float(level)


def methods_block(results: Path, name: str = "mnist_comparison.csv") -> str:
    """The methods table: per level, the ranks of seed 0's adaptive run, the mean
    compression, and per method the test accuracy after the last epoch (mean over seeds,
    lowest–highest in parentheses)."""
    final = final_rows(read_csv(Path(results) / name))
    levels = sorted({lv for lv, _, _ in final if lv != "dense"}, key=_level_key)
    seeds = sorted({s for _, _, s in final}, key=int)
    present = {m for _, m, _ in final}
    cols = [(m, title) for m, title in METHOD_COLUMNS if m in present]
    rows = []
    for lv in levels:
        def accs(method):
            return [float(final[lv, method, s]["test_acc"]) for s in seeds
                    if (lv, method, s) in final]
        first = final.get((lv, "adaptive", seeds[0]))
        crs = [float(final[lv, "adaptive", s]["eval_cr"]) for s in seeds
               if (lv, "adaptive", s) in final]
        rows.append([lv, ", ".join(first["ranks"].split("|")) if first else "—",
                     f"{mean(crs):.1f} %" if crs else "—"]
                    + [spread(accs(m)) if accs(m) else "—" for m, _ in cols])
    dense = [float(final["dense", "dense", s]["test_acc"]) for s in seeds
             if ("dense", "dense", s) in final]
    head = (f"Test accuracy (%) after the last epoch, mean over seeds {', '.join(seeds)} "
            f"(lowest–highest in parentheses; dense network: {spread(dense)}):\n\n")
    return head + table(["τ", f"ranks (seed {seeds[0]})", "eval c.r."] + [t for _, t in cols],
                        rows)


def differences_block(results: Path, name: str = "mnist_comparison.csv") -> str:
    """Per pair of :data:`PAIRS`, the difference of test accuracy after the last epoch,
    paired by seed: its mean per level, and in how many (level, seed) ``a`` is above ``b``."""
    final = final_rows(read_csv(Path(results) / name))
    levels = sorted({lv for lv, _, _ in final if lv != "dense"}, key=_level_key)
    seeds = sorted({s for _, _, s in final}, key=int)
    titles = dict(METHOD_COLUMNS, dense="dense network")

    def acc(level, method, seed):
        key = ("dense", "dense", seed) if method == "dense" else (level, method, seed)
        return float(final[key]["test_acc"]) if key in final else None
    rows = []
    for a, b in PAIRS:
        diffs = {lv: [acc(lv, a, s) - acc(lv, b, s) for s in seeds
                      if acc(lv, a, s) is not None and acc(lv, b, s) is not None]
                 for lv in levels}
        if not any(diffs.values()):
            continue
        every = [d for lv in levels for d in diffs[lv]]
        rows.append([f"{titles[a]} − {titles[b]}"]
                     + [f"{mean(diffs[lv]):+.2f}" if diffs[lv] else "—" for lv in levels]
                     + [f"{sum(d > 0 for d in every)} of {len(every)}"])
    return ("Differences of test accuracy after the last epoch (points), paired by seed: the "
            "mean over the seeds per τ, and in how many of the (τ, seed) runs the first is "
            "above the second:\n\n"
            + table(["difference"] + [f"τ = {lv}" for lv in levels] + ["first above"], rows))


def illconditioned_block(results: Path, name: str) -> str:
    """Accuracy (%) after every epoch per decay and method, mean over the seeds, and the last
    epoch's lowest–highest: test accuracy for runs without validation; for runs with the
    validation split, validation accuracy per epoch and the test accuracy (measured after the
    last epoch only) in the last two columns."""
    rows = read_csv(Path(results) / name)
    validated = any(r.get("val_acc") for r in rows)
    metric = "val_acc" if validated else "test_acc"
    acc: Dict[tuple, Dict[int, List[float]]] = {}
    test: Dict[tuple, List[float]] = {}
    for r in rows:
        key = (r["level"], r["method"])
        acc.setdefault(key, {}).setdefault(int(r["epoch"]), []).append(float(r[metric]))
        if validated and r["test_acc"]:
            test.setdefault(key, []).append(float(r["test_acc"]))
    epochs = sorted({e for per in acc.values() for e in per})
    seeds = sorted({r["seed"] for r in rows}, key=int)
    out = []
    for (level, method) in sorted(acc, key=lambda k: (float(k[0]), k[1])):
        per = acc[level, method]
        last = per[epochs[-1]]
        cells = [f"{mean(per[e]):.1f}" if e in per else "—" for e in epochs]
        cells.append(f"{min(last):.1f}–{max(last):.1f}")
        if validated:
            t = test.get((level, method), [])
            cells += [f"{mean(t):.1f}" if t else "—",
                      f"{min(t):.1f}–{max(t):.1f}" if t else "—"]
        out.append([level, _ILL_NAMES.get(method, method)] + cells)
    what = "Validation" if validated else "Test"
    head = (f"{what} accuracy (%) after each epoch, mean of seeds {', '.join(seeds)} (epoch 0: "
            f"the start)" + ("; the test accuracy after the last epoch (the only time the "
                             "test set is measured) in the last two columns" if validated
                             else "") + ":\n\n")
    columns = ["decay", "method"] + [str(e) for e in epochs] + [f"{epochs[-1]} (min–max)"]
    if validated:
        columns += ["test", "test (min–max)"]
    return head + table(columns, out)


def comparison_blocks(results: Path) -> Dict[str, str]:
    """The tables of the comparisons page (its official-runs block is
    :func:`lowrank_ref.reports.official.official_block`)."""
    return {"methods-table": methods_block(results),
            "methods-differences": differences_block(results),
            "illconditioned-mlp": illconditioned_block(results, "mnist_illconditioned.csv"),
            "illconditioned-lenet5": illconditioned_block(results, "lenet5_illconditioned.csv"),
            **validation_comparison_blocks(results)}


def validation_comparison_blocks(results: Path, folder: str = "comparison_validation",
                                 name: str = "mnist_comparison.csv") -> Dict[str, str]:
    """The methods table and the differences of the comparison trained again with the
    validation split at the validation-chosen learning rates (``compare methods --results``
    the folder ``folder`` of ``results``), or sentences saying that it is not committed."""
    path = Path(results) / folder
    if not (path / name).is_file():
        missing = f"Not committed yet: `{folder}/{name}` in `results/`."
        return {"methods-table-validation": missing, "methods-differences-validation": missing}
    return {"methods-table-validation": methods_block(path, name),
            "methods-differences-validation": differences_block(path, name)}


def fashion_illconditioned_block(results: Path) -> str:
    """The ill-conditioned comparison on Fashion-MNIST (``fashion_illconditioned.csv``), or
    the command that writes it while it is not committed."""
    if not (Path(results) / "fashion_illconditioned.csv").is_file():
        return ("No table committed yet: `fashion_illconditioned.csv` in `results/` is written "
                "by the command above.")
    return illconditioned_block(results, "fashion_illconditioned.csv")
