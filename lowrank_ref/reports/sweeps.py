"""Reports of the τ sweeps of the fully connected network: the paper's MNIST table and its
Fashion-MNIST counterpart (``docs/reproduce/01_mnist_table.md``,
``docs/reproduce/06_fashion_mnist.md``).

A sweep table (``results/mnist_dense_table.csv``, written by ``python -m lowrank_ref sweep``)
has one row per run: ``method``, ``tau``, ``val_acc`` (missing or empty for runs recorded
before the validation split), ``test_acc``, ``ranks``, ``eval_params``, ``eval_cr``,
``seconds_per_epoch``, ``seed``, ``run`` (the folder under ``results/<runs>/``).
:func:`group_runs` collects the runs of one τ (all seeds); :func:`paper_criterion` is the
acceptance rule of the MNIST table, stated on the page and checked by
``tests/test_results.py`` with this same function:

    *within 0.5 points of the paper's test accuracy, at an evaluation compression at or
    above the paper's* -- on the mean over seeds of the test accuracy and of the evaluation
    parameters; the paper's evaluation parameters are counted from its published ranks as
    ``Σ r (n_in + n_out)`` plus the dense last layer (which reproduces its published
    compression rates), so "compression at or above the paper's" is "mean evaluation
    parameters at most the paper's".
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

from ..figures.mnist_plots import PAPER_MNIST_DENSE_ACC, PAPER_MNIST_TABLE
from ..lowrank_layers import SPECTRUM_DECAY, SPECTRUM_NORM
from ..training.config import arch_default
from ..training.specs import flat_options
from .markdown import fmt_list, mean, read_csv, spread, table

__all__ = ["MLP_SIZES", "ACC_MARGIN", "group_runs", "paper_eval_params", "paper_criterion",
           "sweep_command", "records_sentence", "sweep_blocks", "validation_sweep_block",
           "tuning_block", "tuning_runs", "front_block", "sweep_lr_block"]

#: Layer sizes of the paper's fully connected network (its last layer dense).
MLP_SIZES = (784, 500, 500, 500, 500, 10)
#: The criterion's accuracy margin (points).
ACC_MARGIN = 0.5


def _f(text) -> Optional[float]:
    text = (text or "").strip()
    return float(text) if text else None


def group_runs(rows: List[Dict[str, str]]) -> List[dict]:
    """The runs of a sweep table grouped by τ (the dense baseline first, as ``tau`` None).

    Returns one dict per τ, in increasing τ: ``tau``, ``rows`` (the table rows), ``seeds``,
    ``test``, ``val`` (lists of floats in %, ``val`` empty when a run has none), ``eval_params``,
    ``eval_cr``, ``ranks`` (list of lists of int), ``seconds`` (s per epoch).

    >>> g = group_runs([{"method": "adaptive", "tau": "0.1", "test_acc": "97.5", "val_acc": "",
    ...                  "ranks": "3|4", "eval_params": "10", "eval_cr": "90.0", "seed": "1",
    ...                  "seconds_per_epoch": "2.0", "run": "tau-0.1-seed1"},
    ...                 {"method": "dense", "tau": "", "test_acc": "98.0", "val_acc": "",
    ...                  "ranks": "", "eval_params": "100", "eval_cr": "0.0", "seed": "1",
    ...                  "seconds_per_epoch": "3.0", "run": "dense-seed1"}])
    >>> [(x["tau"], x["test"], x["ranks"]) for x in g]
    [(None, [98.0], [[]]), (0.1, [97.5], [[3, 4]])]
    """
    groups: Dict[Optional[float], dict] = {}
    for r in rows:
        tau = None if r["method"] == "dense" else float(r["tau"])
        g = groups.setdefault(tau, {"tau": tau, "rows": [], "seeds": [], "test": [], "val": [],
                                    "eval_params": [], "eval_cr": [], "ranks": [],
                                    "seconds": []})
        g["rows"].append(r)
        g["seeds"].append(int(r.get("seed") or 0))
        g["test"].append(float(r["test_acc"]))
        if _f(r.get("val_acc")) is not None:
            g["val"].append(float(r["val_acc"]))
        g["eval_params"].append(int(r["eval_params"]))
        g["eval_cr"].append(float(r["eval_cr"]))
        g["ranks"].append([int(x) for x in r["ranks"].split("|")] if r.get("ranks") else [])
        if _f(r.get("seconds_per_epoch")) is not None:
            g["seconds"].append(float(r["seconds_per_epoch"]))
    return sorted(groups.values(), key=lambda g: -1.0 if g["tau"] is None else g["tau"])


def paper_eval_params(ranks, sizes=MLP_SIZES) -> int:
    """Evaluation parameters of the MLP with low-rank layers of ``ranks`` (biases excluded):
    ``Σ r (n_in + n_out)`` over the low-rank layers plus the dense weights of the others.

    >>> paper_eval_params((81, 104, 111, 117))
    441004
    """
    pairs = list(zip(sizes[:-1], sizes[1:]))
    low = sum(r * (a + b) for r, (a, b) in zip(ranks, pairs))
    return low + sum(a * b for a, b in pairs[len(ranks):])


def _dense_params(sizes=MLP_SIZES) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def paper_criterion(group: Optional[dict], paper: dict, sizes=MLP_SIZES) -> dict:
    """The MNIST table's criterion for one τ of the paper (see the module docstring).

    Parameters
    ----------
    group : dict or None
        One entry of :func:`group_runs` (None: τ not run).
    paper : dict
        One entry of :data:`~lowrank_ref.figures.PAPER_MNIST_TABLE`.

    Returns
    -------
    dict
        ``holds`` (bool), ``acc`` (seed mean of the test accuracy, %), ``acc_gap`` (``acc``
        minus the paper's, points), ``params`` (seed mean of the evaluation parameters),
        ``paper_params``, ``cr`` and ``paper_cr`` (compression rates, %, from the parameter
        counts), ``ran`` (False when ``group`` is None).

    >>> c = paper_criterion({"test": [98.2, 98.0], "eval_params": [240000, 242000]},
    ...                     PAPER_MNIST_TABLE[1])
    >>> c["holds"], round(c["acc_gap"], 2), round(c["cr"], 1), round(c["paper_cr"], 1)
    (True, -0.46, 79.0, 61.6)
    """
    paper_params = paper_eval_params(paper["ranks"], sizes)
    dense = _dense_params(sizes)
    out = {"tau": paper["tau"], "paper_acc": paper["test_acc"], "paper_params": paper_params,
           "paper_cr": 100 * (1 - paper_params / dense), "ran": group is not None}
    if group is None:
        return dict(out, holds=False, acc=None, acc_gap=None, params=None, cr=None)
    acc, params = mean(group["test"]), mean(group["eval_params"])
    acc_gap = round(acc - paper["test_acc"], 9)          # the table's 2 decimals, no float noise
    holds = acc_gap >= -ACC_MARGIN and params <= paper_params
    return dict(out, holds=holds, acc=acc, acc_gap=acc_gap, params=params,
                cr=100 * (1 - params / dense))


def sweep_command(groups: List[dict], dataset: str = "mnist",
                  runs_dir: Optional[Path] = None) -> str:
    """The ``sweep`` command that trains the runs of ``groups`` (from the table's τ, seeds
    and epochs; ``--seeds`` when the run folders are named by seed; ``--lr`` when the
    records of the rank-adaptive runs in ``runs_dir`` share a learning rate other than the
    method's default)."""
    taus = [g["tau"] for g in groups if g["tau"] is not None]
    rows = [r for g in groups for r in g["rows"]]
    epochs = sorted({int(r["epochs"]) for r in rows})
    seeds = sorted({s for g in groups for s in g["seeds"]})
    cmd = "python -m lowrank_ref sweep --taus " + ",".join(f"{t:g}" for t in taus)
    if any(g["tau"] is None for g in groups):
        cmd += " --dense-baseline"
    if dataset != "mnist":
        cmd += f" --dataset {dataset}"
    if all("-seed" in r["run"] for r in rows):
        cmd += " --seeds " + ",".join(map(str, seeds))
    if len(epochs) == 1:
        cmd += f" --epochs {epochs[0]}"
    lrs = set()
    for r in (r for g in groups if g["tau"] is not None for r in g["rows"]):
        try:
            lrs.add(flat_options(json.loads((Path(runs_dir) / r["run"] / "run.json")
                                            .read_text())["config"])["lr"])
        except (TypeError, OSError, KeyError, ValueError):      # no records: no lr known
            lrs.add(None)
    if len(lrs) == 1 and None not in lrs and lrs != {arch_default("mlp", "lr", "adaptive")}:
        cmd += f" --lr {lrs.pop():g}"
    return cmd


def records_sentence(groups: List[dict], runs_dir: Path) -> str:
    """What the run records say: how the data were split, at which commits and when the runs
    were trained."""
    records = []
    for g in groups:
        for r in g["rows"]:
            path = runs_dir / r["run"] / "run.json"
            records.append(json.loads(path.read_text()) if path.is_file() else None)
    if any(rec is None for rec in records):
        missing = sum(rec is None for rec in records)
        return f"{missing} of the {len(records)} runs have no `run.json`."
    n_train = sorted({rec["data"]["n_train"] for rec in records})
    n_valid = sorted({rec["data"].get("n_valid") or 0 for rec in records})
    if n_valid == [0]:
        split = (f"Every run trained on all {fmt_list([f'{n:,}' for n in n_train], 'or')} "
                 f"training images and measured the test set after every epoch (records from "
                 f"before the validation split: no validation accuracy).")
    else:
        split = (f"Every run trained on {fmt_list([f'{n:,}' for n in n_train], 'or')} training "
                 f"images, measured the {fmt_list([f'{n:,}' for n in n_valid], 'or')} held-out "
                 f"validation images after every epoch and the test set after the last epoch "
                 f"only.")
    sessions = [s for rec in records for s in rec.get("sessions", []) if s.get("epochs")]
    if len(sessions) == 0:
        when = (" The records predate per-session records: they name neither the commit nor "
                "the time of training.")
    else:
        commits = sorted({(s.get("git_commit") or "unknown")[:7] for s in sessions})
        dirty = any(s.get("git_dirty") for s in sessions)
        untimed = sum(not any(s.get("epochs") for s in rec.get("sessions", []))
                      for rec in records)
        when = (f" They were trained at commit{'s' if len(commits) > 1 else ''} "
                f"{fmt_list(commits)}{' (with uncommitted changes)' if dirty else ''}, "
                f"between {min(s['started'] for s in sessions)} and "
                f"{max(s.get('ended') or s['started'] for s in sessions)} (UTC of the machine)"
                + (f"; {untimed} records name no session" if untimed else "") + ".")
    return split + when


def _ranks_cell(ranks: List[List[int]]) -> str:
    """Per layer: the rank, or its min–max over the seeds."""
    if not ranks or not ranks[0]:
        return "—"
    cells = []
    for layer in zip(*ranks):
        lo, hi = min(layer), max(layer)
        cells.append(str(lo) if lo == hi else f"{lo}–{hi}")
    return ", ".join(cells)


def _seed_words(groups: List[dict]) -> str:
    seeds = sorted({s for g in groups for s in g["seeds"]})
    counts = sorted({len(g["seeds"]) for g in groups})
    if counts == [1]:
        return f"one run per row (seed {fmt_list(seeds)})"
    return (f"{fmt_list(counts, 'or')} runs per row (seeds {fmt_list(seeds)}): each cell is the "
            f"mean over the seeds with the lowest and highest value in parentheses (ranks: "
            f"per layer, the lowest–highest)")


def _table_block(groups: List[dict], with_paper: bool) -> str:
    have_val = any(g["val"] for g in groups)
    header = ["τ"] + (["val. acc. %"] if have_val else []) + ["test acc. %"]
    header += ["paper"] if with_paper else []
    header += ["ranks"] + (["paper"] if with_paper else []) + ["eval c.r. %"]
    header += ["paper", "criterion"] if with_paper else []
    header += ["s/epoch"]
    papers = {p["tau"]: p for p in PAPER_MNIST_TABLE}
    taus = [g["tau"] for g in groups]
    if with_paper:
        taus = sorted(set(taus) | set(papers), key=lambda t: -1.0 if t is None else t)
    by_tau = {g["tau"]: g for g in groups}
    rows = []
    for tau in taus:
        g, p = by_tau.get(tau), papers.get(tau)
        cells = ["dense" if tau is None else f"{tau:g}"]
        if g is None:
            cells += (["—"] if have_val else []) + ["not run"]
        else:
            cells += ([spread(g["val"]) if g["val"] else "—"] if have_val else [])
            cells += [spread(g["test"])]
        if with_paper:
            cells += [f"{PAPER_MNIST_DENSE_ACC:.2f}" if tau is None
                      else (f"{p['test_acc']:.2f}" if p else "—")]
        cells += [_ranks_cell(g["ranks"]) if g else "—"]
        if with_paper:
            cells += [", ".join(map(str, p["ranks"])) if p else "—"]
        cells += [spread(g["eval_cr"], 1) if g else "—"]
        if with_paper:
            if p is None:
                cells += ["0.0" if tau is None else "—", "—"]
            else:
                c = paper_criterion(g, p)
                cells += [f"{c['paper_cr']:.1f}", "holds" if c["holds"] else
                          ("not run" if not c["ran"] else "misses")]
        cells += [f"{sorted(g['seconds'])[len(g['seconds']) // 2]:.1f}" if g and g["seconds"]
                  else "—"]
        rows.append(cells)
    return table(header, rows)


def _tau(c) -> str:
    return f"{c['tau']:g}"


def _pts(x) -> str:
    return f"{x:.2f}"


def _criterion_block(groups: List[dict]) -> str:
    by_tau = {g["tau"]: g for g in groups}
    checks = [paper_criterion(by_tau.get(p["tau"]), p) for p in PAPER_MNIST_TABLE]
    held = [c for c in checks if c["holds"]]
    lines = [f"**The criterion** — within {ACC_MARGIN} points of the paper's test accuracy, "
             f"at an evaluation compression at or above the paper's, both on the mean over "
             f"the seeds (the paper's compression from its published ranks, "
             f"`Σ r (n_in + n_out)` plus the last layer's 5,000 weights) — "
             f"**holds on {len(held)} of the paper's {len(checks)} rows**"
             + (f" (τ = {fmt_list([_tau(c) for c in held])})." if held else ".")]
    for c in checks:
        if c["holds"]:
            continue
        if not c["ran"]:
            lines.append(f"* τ = {c['tau']:g}: not run.")
            continue
        why = []
        if c["acc_gap"] < -ACC_MARGIN:
            why.append(f"test accuracy {c['acc']:.2f} %, {-c['acc_gap']:.2f} points below the "
                       f"paper's {c['paper_acc']:.2f} %")
        if c["params"] > c["paper_params"]:
            why.append(f"compression {c['cr']:.2f} % below the paper's {c['paper_cr']:.2f} % "
                       f"({c['params']:,.0f} against {c['paper_params']:,} evaluation "
                       f"parameters)")
        lines.append(f"* τ = {c['tau']:g} misses: {' and '.join(why)}.")
    above = [c for c in checks if c["ran"] and c["acc_gap"] >= 0]
    if above:
        lines.append(f"* Above the paper's accuracy: τ = "
                     f"{fmt_list([_tau(c) for c in above])} (by "
                     f"{fmt_list([_pts(c['acc_gap']) for c in above])} points).")
    below = [c for c in checks if c["ran"] and c["acc_gap"] < 0]
    if below:
        lines.append(f"* Below the paper's accuracy: τ = "
                     f"{fmt_list([_tau(c) for c in below])} (by "
                     f"{fmt_list([_pts(-c['acc_gap']) for c in below])} points).")
    return "\n".join(lines)


def sweep_blocks(results: Path, table_name: str, runs_name: str, prefix: str,
                 dataset: str = "mnist", with_paper: bool = True) -> Dict[str, str]:
    """The generated blocks of a sweep's page: ``PREFIX-command`` (the command, the data
    split, commits and times of the records), ``PREFIX-table`` and, ``with_paper``,
    ``PREFIX-criterion``. A missing table gives blocks that say so, with the command that
    writes it (the paper's τ, three seeds, 15 epochs)."""
    path = Path(results) / table_name
    if not path.is_file():
        taus = ",".join(f"{p['tau']:g}" for p in PAPER_MNIST_TABLE)
        dataset_opt = "" if dataset == "mnist" else f" --dataset {dataset}"
        note = (f"No table committed yet: `{table_name}` in `results/` is written by\n\n```\n"
                f"python -m lowrank_ref sweep --taus {taus} --dense-baseline{dataset_opt} "
                f"--seeds 0,1,2 --epochs 15\n```")
        blocks = {f"{prefix}-command": note, f"{prefix}-table": "(no table yet)"}
        if with_paper:
            blocks[f"{prefix}-criterion"] = "(no table yet)"
        return blocks
    groups = group_runs(read_csv(path))
    n = sum(len(g["rows"]) for g in groups)
    blocks = {
        f"{prefix}-command": (
            "```\n" + sweep_command(groups, dataset, Path(results) / runs_name) + "\n```\n\n"
            f"`results/{table_name}`: {n} runs, {_seed_words(groups)}. "
            + records_sentence(groups, Path(results) / runs_name)),
        f"{prefix}-table": _table_block(groups, with_paper),
    }
    if with_paper:
        blocks[f"{prefix}-criterion"] = _criterion_block(groups)
    return blocks


def validation_sweep_block(results: Path, folder: str, table_name: str, runs_name: str) -> str:
    """A sweep trained with the validation split into the folder ``folder`` of ``results``,
    beside an older table (LeNet5's validation seeds, ``docs/reproduce/02_lenet5_table.md``): its records sentence
    and its table (validation and test accuracy, ranks, compression, seconds per epoch), or a
    sentence saying that nothing is committed yet."""
    path = Path(results) / folder / table_name
    if not path.is_file():
        return f"No table committed yet: `{folder}/{table_name}` in `results/`."
    groups = group_runs(read_csv(path))
    n = sum(len(g["rows"]) for g in groups)
    return (f"`results/{folder}/{table_name}`: {n} runs, {_seed_words(groups)}. "
            + records_sentence(groups, Path(results) / folder / runs_name) + "\n\n"
            + _table_block(groups, with_paper=False))


def tuning_runs(results: Path, prefix: str = "", folder: str = "tuning") -> List[dict]:
    """The tuning sweeps in the subfolders of the folder ``folder`` of ``results`` whose names
    start with ``prefix`` (a string or several; each written by ``sweep --results`` or
    ``train --out`` into that subfolder),
    read from the runs' ``run.json``, one dict per setting of the options that were tuned
    (method, learning rate, momentum, schedule, warm-up, the drawn start's spectrum (None
    for the dense network and a pruned start), τ, epochs): the subfolders that hold
    its runs, the options, the seeds of its finished runs with their validation and test
    accuracy and evaluation compression (%), and the seeds whose runs diverged."""
    sweeps: Dict[tuple, dict] = {}
    prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
    paths = sorted(p for pre in prefixes
                   for p in (Path(results) / folder).glob(f"{pre}*/mnist_runs/*/run.json"))
    for path in paths:
        record = json.loads(path.read_text())
        c = flat_options(record["config"])
        name = path.parents[2].name
        drawn = c["method"] != "dense" and c.get("prune_from") is None
        options = {"method": c["method"] + (" (pruned start)" if c.get("prune_from") else ""),
                   "lr": c["lr"], "momentum": c["momentum"], "schedule": c["schedule"],
                   "warmup": c["warmup"],
                   "spectrum_length": c.get("spectrum_length", SPECTRUM_DECAY) if drawn else None,
                   "spectrum_norm": c.get("spectrum_norm", SPECTRUM_NORM) if drawn else None,
                   "tau": c["tau"], "epochs": c["epochs"]}
        t = sweeps.setdefault(tuple(options.values()), {
            "names": [], **options, "seeds": [], "val": [], "test": [], "eval_cr": [],
            "diverged": []})
        if name not in t["names"]:
            t["names"].append(name)
        if record["status"] == "finished":
            t["seeds"].append(record["seed"])
            for key in ("val", "test"):
                t[key].append(100 * record["final"][f"{key}_acc"])
            t["eval_cr"].append(100 * record["final"]["eval_cr"])
        elif record["status"] == "diverged":
            t["diverged"].append(record["seed"])
    return list(sweeps.values())


def tuning_block(results: Path, prefix: str = "", folder: str = "tuning") -> str:
    """The tuning sweeps of :func:`tuning_runs` as a table, one row per sweep: its options,
    τ, epochs, seeds, the validation accuracy (mean, and per seed), by epochs and then best
    first, with the mean test accuracy beside it (not used to choose); or a sentence saying
    that none is committed."""
    sweeps = tuning_runs(results, prefix, folder)
    if not sweeps:
        where = ", ".join(f"`{folder}/{pre}*`" for pre in
                          ((prefix,) if isinstance(prefix, str) else prefix))
        return f"No tuning runs committed yet ({where} in `results/`)."
    sweeps.sort(key=lambda t: (-t["epochs"], -mean(t["val"]) if t["val"] else 0.0, t["names"]))

    def accuracy(values):
        return (f"{mean(values):.2f}" + ("" if len(values) == 1 else
                                         " (" + " / ".join(f"{v:.2f}" for v in values) + ")")
                if values else "—")
    def value(v):
        return "—" if v is None else f"{v:g}"
    rows = [[", ".join(f"`{name}`" for name in t["names"]), t["method"], f"{t['lr']:g}",
             f"{t['momentum']:g}, {t['schedule']}", t["warmup"], value(t["spectrum_length"]),
             value(t["spectrum_norm"]),
             value(t["tau"]), t["epochs"],
             fmt_list(t["seeds"] + [f"{s} diverged" for s in t["diverged"]]),
             f"{mean(t['eval_cr']):.1f}" if t["eval_cr"] else "—",
             accuracy(t["val"]), f"{mean(t['test']):.2f}" if t["test"] else "—"]
            for t in sweeps]
    return table(["run", "method", "lr", "momentum, schedule", "warm-up steps",
                  "spectrum length", "spectrum norm", "τ",
                  "epochs", "seeds", "eval. c.r. %", "val. acc. % (per seed)", "test acc. %"],
                 rows)


def _dominates(a: dict, b: dict) -> bool:
    """Whether tuning setting ``a`` is at least as compressed and as accurate on validation
    as ``b`` (means over the seeds), and strictly better in one."""
    ca, va, cb, vb = mean(a["eval_cr"]), mean(a["val"]), mean(b["eval_cr"]), mean(b["val"])
    return ca >= cb and va >= vb and (ca > cb or va > vb)


def front_block(results: Path, prefixes=("spectrum-", "front-"), folder: str = "tuning") -> str:
    """One sentence: the tuning settings of the starting spectrum that no other setting
    dominates (none is both more compressed and more accurate on validation, means over
    the seeds), by compression; the runs of :func:`tuning_runs` under ``prefixes``."""
    settings = [t for prefix in prefixes for t in tuning_runs(results, prefix, folder)
                if t["val"]]
    if not settings:
        return f"No tuning runs of the spectrum committed yet (`{folder}/` in `results/`)."
    front = [t for t in settings if not any(_dominates(o, t) for o in settings)]
    front.sort(key=lambda t: -mean(t["eval_cr"]))
    items = [f"length {t['spectrum_length']:g}, norm {t['spectrum_norm']:g} at τ = "
             f"{t['tau']:g} ({mean(t['eval_cr']):.1f} %, {mean(t['val']):.2f} %)"
             for t in front]
    return (f"Not dominated by any other of these {len(settings)} settings (compression, "
            f"validation accuracy): {fmt_list(items)}.")


def sweep_lr_block(results: Path, tuned: str = "tuning/table-lr-0.2",
                   table_name: str = "mnist_dense_table.csv", base: str = "",
                   runs_name: str = "mnist_runs") -> str:
    """A table's sweep (in the folder ``base`` of ``results``) beside the same sweep at
    another learning rate (the folder ``tuned``, written by ``sweep --lr ... --results``), on
    the validation images: per τ the validation accuracy per seed and the mean compression
    of both, then the mean over all their rank-adaptive runs and each sweep's lowest run; or
    a sentence saying that the other sweep is not committed."""
    other_path = Path(results) / tuned / table_name
    if not other_path.is_file():
        return f"No second sweep committed yet: `{tuned}/{table_name}` in `results/`."
    sweeps = []
    for path in (Path(results) / base / table_name, other_path):
        groups = [g for g in group_runs(read_csv(path)) if g["tau"] is not None]
        if not groups:
            return f"No rank-adaptive run committed yet in `{path.parent.name}/{table_name}`."
        runs = path.parent / runs_name
        lr = flat_options(json.loads((runs / groups[0]["rows"][0]["run"] / "run.json")
                                     .read_text())["config"])["lr"]
        sweeps.append((lr, {g["tau"]: g for g in groups}))
    (lr_a, a), (lr_b, b) = sweeps

    def vals(g):
        return " / ".join(f"{v:.2f}" for v in g["val"])
    rows = [[f"{tau:g}", vals(a[tau]), f"{mean(a[tau]['eval_cr']):.1f}", vals(b[tau]),
             f"{mean(b[tau]['eval_cr']):.1f}"] for tau in sorted(set(a) & set(b))]
    text = table(["τ", f"val. acc. % per seed, lr {lr_a:g}", "eval c.r. %",
                  f"val. acc. % per seed, lr {lr_b:g}", "eval c.r. %"], rows)

    def summary(lr, groups):
        runs = [(v, g["tau"], s) for g in groups.values() for v, s in zip(g["val"], g["seeds"])]
        low = min(runs)
        return (f"lr {lr:g}: {mean(v for v, _, _ in runs):.2f} % over {len(runs)} runs "
                f"(lowest {low[0]:.2f} %, τ = {low[1]:g}, seed {low[2]})")
    return (text + "\n\nMean validation accuracy of the rank-adaptive runs: "
            + summary(lr_a, a) + "; " + summary(lr_b, b) + ".")
