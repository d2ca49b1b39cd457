"""Report of the paper's Adam recipe (``docs/reproduce/04_paper_recipe.md``): the two forms of
Adam beside the paper's MNIST table and beside this project's SGD table.

Reads ``results/mnist_adam_recipe.csv`` (one row per run and epoch, written by
``python -m lowrank_ref compare recipe``; the last epoch of each run is reported) and
``results/mnist_dense_table.csv`` (the SGD sweep, seed means).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from ..figures.mnist_plots import PAPER_MNIST_TABLE
from .markdown import fmt_list, mean, read_csv, table
from .sweeps import group_runs

__all__ = ["FORMS", "recipe_final_rows", "recipe_blocks", "published_probe_block"]

#: ``optimizer`` of the table -> the page's name of the form.
FORMS = {"adam": "(a) paper's code", "adam-carried": "(b) carried"}


def recipe_final_rows(rows: List[Dict[str, str]]) -> Dict[tuple, Dict[str, str]]:
    """``(optimizer, tau) -> row`` of each run's last training epoch."""
    last: Dict[tuple, Dict[str, str]] = {}
    for r in rows:
        if r["phase"] != "train":
            continue
        key = (r["optimizer"], float(r["level"]))
        if key not in last or int(r["epoch"]) > int(last[key]["epoch"]):
            last[key] = r
    return last


def _ranks(text: str) -> str:
    return ", ".join(text.split("|"))


def _num(x, digits=None) -> str:
    return f"{float(x):g}" if digits is None else f"{float(x):.{digits}f}"


def recipe_blocks(results: Path) -> Dict[str, str]:
    """The blocks ``recipe-table`` and ``recipe-accuracy`` of the recipe page."""
    final = recipe_final_rows(read_csv(Path(results) / "mnist_adam_recipe.csv"))
    papers = {p["tau"]: p for p in PAPER_MNIST_TABLE}
    taus = sorted({tau for _, tau in final})
    header = ["τ", "paper: ranks", "acc.", "eval c.r."]
    for name in FORMS.values():
        header += [f"{name}: ranks", "acc.", "eval c.r."]
    rows = []
    for tau in taus:
        p = papers[tau]
        cells = [f"{tau:g}", ", ".join(map(str, p["ranks"])), f"{p['test_acc']:.2f}",
                 f"{p['eval_cr']:.1f} %"]
        for opt in FORMS:
            r = final.get((opt, tau))
            cells += ([_ranks(r["ranks"]), f"{float(r['test_acc']):.2f}",
                       f"{float(r['eval_cr']):.1f} %"] if r else ["—", "—", "—"])
        rows.append(cells)
    epochs = sorted({int(r["epoch"]) for r in final.values()})
    seeds = sorted({int(r["seed"]) for r in final.values()})
    head = (f"Seed {fmt_list(seeds)}, after epoch {fmt_list(epochs)}; ranks of the four "
            f"low-rank layers and test accuracy (%), beside the paper's:\n\n")
    # form (b) against the paper and against the SGD table at the same tau
    b = {tau: final[("adam-carried", tau)] for tau in taus if ("adam-carried", tau) in final}
    above = [t for t in b if float(b[t]["test_acc"]) >= papers[t]["test_acc"]]
    below = [t for t in b if t not in above]
    lower_cr = [t for t in b if float(b[t]["eval_cr"]) < papers[t]["eval_cr"]]

    def acc_cr(t):
        return (f"τ = {t:g}: {_num(b[t]['test_acc'], 2)} % against "
                f"{_num(papers[t]['test_acc'], 2)} %, compression {_num(b[t]['eval_cr'], 1)} % "
                f"against {_num(papers[t]['eval_cr'], 1)} %")
    lines = ["* Form (b) against the paper, " + "; ".join(acc_cr(t) for t in b) + ". Above the "
             f"paper's accuracy at τ = {fmt_list([_num(t) for t in above]) or 'none'}, below "
             f"it at τ = {fmt_list([_num(t) for t in below]) or 'none'}; at a compression "
             f"below the paper's at τ = {fmt_list([_num(t) for t in lower_cr]) or 'none'}."]
    sgd = {g["tau"]: g for g in group_runs(read_csv(Path(results) / "mnist_dense_table.csv"))}
    both = [t for t in b if t in sgd]
    if both:
        acc_b = [_num(b[t]["test_acc"], 2) for t in both]
        acc_sgd = [_num(mean(sgd[t]["test"]), 2) for t in both]
        cr_b = [_num(b[t]["eval_cr"], 1) for t in both]
        cr_sgd = [_num(mean(sgd[t]["eval_cr"]), 1) for t in both]
        lines.append(
            f"* Form (b) against this project's SGD table ({{doc}}`01_mnist_table`, mean over "
            f"its seeds) at τ = {fmt_list([_num(t) for t in both])}: test accuracy "
            f"{fmt_list(acc_b)} % against {fmt_list(acc_sgd)} %, compression "
            f"{fmt_list(cr_b)} % against {fmt_list(cr_sgd)} %.")
    return {"recipe-table": head + table(header, rows), "recipe-accuracy": "\n".join(lines),
            "published-truncation": published_probe_block(results)}


def published_probe_block(results: Path) -> str:
    """The recipe page's block on the published truncation, from
    ``results/mnist_published_truncation.csv`` (rows of
    :func:`lowrank_ref.training.published_recipe.published_truncation_recipe`), beside the
    carried form with the package's truncation after the same epoch."""
    path = Path(results) / "mnist_published_truncation.csv"
    if not path.is_file():
        return "Not run yet."
    rows = read_csv(path)
    last: Dict[tuple, Dict[str, str]] = {}
    for r in rows:
        key = (r["form"], r["transposed"], float(r["tau"]))
        if key not in last or int(r["epoch"]) > int(last[key]["epoch"]):
            last[key] = r
    every = {(r["optimizer"], float(r["level"]), int(r["epoch"])): r
             for r in read_csv(Path(results) / "mnist_adam_recipe.csv") if r["phase"] == "train"}
    out = []
    for (form, side, tau), r in sorted(last.items()):
        ref = every.get((form, tau, int(r["epoch"])))
        out.append([f"{tau:g}", FORMS.get(form, form), side, r["epoch"], _ranks(r["ranks"]),
                    r["val_acc"] or "—", r["test_acc"] or "—",
                    _ranks(ref["ranks"]) if ref else "—", ref["test_acc"] if ref else "—"])
    return ("Ranks and accuracy (%) after the last epoch of each run with the published "
            "truncation (`results/mnist_published_truncation.csv`), beside the same form with "
            "this package's truncation after the same epoch (`results/mnist_adam_recipe.csv`):"
            "\n\n" + table(["τ", "form", "transposed", "epoch", "ranks", "val. acc.",
                            "test acc.", "package's truncation: ranks", "test acc."], out))
