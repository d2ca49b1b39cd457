"""``python -m lowrank_ref report``: the generated blocks of docs/reproduce/*.md are what the
committed tables give (a hand edit of a number fails here), and the report reads both the
single-seed records from before the validation split and multi-seed validation tables."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lowrank_ref.figures import PAPER_MNIST_TABLE
from lowrank_ref.reports import PAGES, write_reports
from lowrank_ref.reports.markdown import block_names, replace_blocks
from lowrank_ref.reports.sweeps import paper_criterion, sweep_blocks
from lowrank_ref.training.specs import flat_options

ROOT = Path(__file__).resolve().parents[1]


def _copy_checkout(tmp_path):
    """docs/reproduce copied, results/ linked: a checkout the report may write into."""
    (tmp_path / "docs").mkdir()
    shutil.copytree(ROOT / "docs" / "reproduce", tmp_path / "docs" / "reproduce")
    (tmp_path / "results").symlink_to(ROOT / "results", target_is_directory=True)
    return tmp_path


def test_the_committed_pages_are_what_the_report_writes(tmp_path):
    root = _copy_checkout(tmp_path)
    changed = write_reports(root, log=lambda line: None)
    for page in PAGES:
        committed = (ROOT / "docs" / "reproduce" / page).read_text()
        assert (root / "docs" / "reproduce" / page).read_text() == committed, (
            f"docs/reproduce/{page} differs from what `python -m lowrank_ref report` writes "
            f"from results/: run it and commit the page")
    assert changed == []


def test_a_hand_edited_number_is_found(tmp_path):
    root = _copy_checkout(tmp_path)
    page = root / "docs" / "reproduce" / "01_mnist_table.md"
    text = page.read_text()
    head, rest = text.split("<!-- report:begin mnist-table -->", 1)
    row = next(line for line in rest.splitlines() if line.startswith("| 0.09 "))
    page.write_text(head + "<!-- report:begin mnist-table -->"
                    + rest.replace(row, row.replace("| 0.09 |", "| 0.09 | 99.99 |", 1)))
    assert write_reports(root, check=True, log=lambda line: None) == [
        "docs/reproduce/01_mnist_table.md"]
    assert page.read_text() != text                    # check=True wrote nothing
    write_reports(root, log=lambda line: None)
    assert page.read_text() == text


def test_the_command_leaves_a_clean_checkout_unchanged():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "lowrank_ref", "report", "--check",
                           "--root", str(ROOT)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "would change" not in proc.stdout


def test_blocks_must_match_their_generators():
    page = "x\n<!-- report:begin a -->\nold\n<!-- report:end a -->\n"
    assert block_names(page) == ["a"]
    with pytest.raises(ValueError, match=r"without a generator \['a'\]"):
        replace_blocks(page, {})
    with pytest.raises(ValueError, match=r"missing from the page \['b'\]"):
        replace_blocks(page, {"a": "new", "b": "x"})
    with pytest.raises(ValueError, match="twice"):
        replace_blocks(page + page, {"a": "new"})


# ------------------------------------------------------------- a made-up multi-seed table
COLUMNS = ("method,tau,val_acc,test_acc,ranks,eval_params,train_params,eval_cr,train_cr,epochs,"
           "finetune_epochs,seconds_per_epoch,total_seconds,seed,run").split(",")
SIZES = [784, 500, 500, 500, 500, 10]


def _eval_params(ranks):
    pairs = list(zip(SIZES[:-1], SIZES[1:]))
    return sum(r * (a + b) for r, (a, b) in zip(ranks, pairs)) + 5000


def _write_sweep(results, rows, runs="mnist_runs", table="mnist_dense_table.csv"):
    """rows: (tau or None, seed, val, test, ranks); one run.json per row."""
    out = []
    for tau, seed, val, test, ranks in rows:
        name = ("dense" if tau is None else f"tau-{tau:g}") + f"-seed{seed}"
        ev = 1147000 if tau is None else _eval_params(ranks)
        out.append({"method": "dense" if tau is None else "adaptive",
                    "tau": "" if tau is None else f"{tau:g}", "val_acc": f"{val:.2f}",
                    "test_acc": f"{test:.2f}", "ranks": "|".join(map(str, ranks)),
                    "eval_params": ev, "train_params": ev,
                    "eval_cr": f"{100 * (1 - ev / 1147000):.1f}", "train_cr": "0.0",
                    "epochs": 15, "finetune_epochs": 0, "seconds_per_epoch": "4.0",
                    "total_seconds": 60, "seed": seed, "run": name})
        (results / runs / name).mkdir(parents=True)
        (results / runs / name / "run.json").write_text(json.dumps({
            "data": {"n_train": 50000, "n_valid": 10000, "n_test": 10000},
            "sessions": [{"started": f"2026-01-0{seed + 1}T10:00:00",
                          "ended": f"2026-01-0{seed + 1}T11:00:00", "epochs": [{"epoch": 1}],
                          "git_commit": "abcdef1234567", "git_dirty": False}]}))
    with open(results / table, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(out)


def test_a_multi_seed_validation_table(tmp_path):
    """Three seeds: means with min-max, validation column, the criterion per row -- at
    tau 0.05 the accuracy misses by 0.51 points on the mean (one seed alone would pass), at
    tau 0.09 the mean parameters exceed the paper's by one seed's extra rank."""
    paper = {p["tau"]: p for p in PAPER_MNIST_TABLE}
    p09 = list(paper[0.09]["ranks"])
    rows = [(None, s, 98.0 + s / 10, 98.4, []) for s in range(3)]
    rows += [(0.05, 0, 98.2, 98.56 - 0.01, [60] * 4), (0.05, 1, 98.1, 98.56 - 0.76, [60] * 4),
             (0.05, 2, 98.0, 98.56 - 0.76, [60] * 4)]
    rows += [(0.09, s, 98.0, 98.3, p09 if s else [p09[0] + 1] + p09[1:]) for s in range(3)]
    rows += [(0.13, s, 97.0, 97.2, [20, 20, 20, 20]) for s in range(3)]
    _write_sweep(tmp_path, rows)
    blocks = sweep_blocks(tmp_path, "mnist_dense_table.csv", "mnist_runs", "mnist")
    command = blocks["mnist-command"]
    assert "--taus 0.05,0.09,0.13 --dense-baseline --seeds 0,1,2 --epochs 15" in command
    assert "3 runs per row (seeds 0, 1 and 2)" in command
    assert "trained on 50,000 training images" in command and "10,000" in command
    assert "commit abcdef1" in command and "2026-01-01T10:00:00" in command
    assert "2026-01-03T11:00:00" in command
    lines = blocks["mnist-table"].splitlines()
    assert lines[0].startswith("| τ | val. acc. % | test acc. % | paper |")
    row = {line.split(" | ")[0][2:]: line for line in lines[2:]}
    assert row["dense"].startswith("| dense | 98.10 (98.00–98.20) | 98.40 (98.40–98.40) | 98.54")
    assert row["0.05"].split(" | ")[2] == "98.05 (97.80–98.55)"
    assert " misses " in row["0.05"] and " misses " in row["0.09"] and " holds " in row["0.13"]
    assert "| 0.03 | — | not run |" in row["0.03"]
    assert row["0.09"].split(" | ")[4] == f"{p09[0]}–{p09[0] + 1}, " + ", ".join(map(str, p09[1:]))
    crit = blocks["mnist-criterion"]
    assert "**holds on 1 of the paper's 8 rows** (τ = 0.13)" in crit
    assert "τ = 0.05 misses: test accuracy 98.05 %, 0.51 points below the paper's 98.56 %" in crit
    assert "τ = 0.09 misses: compression" in crit and "τ = 0.03: not run" in crit


def test_the_criterion_is_the_stated_rule():
    p = next(p for p in PAPER_MNIST_TABLE if p["tau"] == 0.09)
    limit = _eval_params(p["ranks"])
    ok = {"test": [p["test_acc"] - 0.5], "eval_params": [limit]}
    assert paper_criterion(ok, p)["holds"]                       # both at the boundary
    assert not paper_criterion({"test": [p["test_acc"] - 0.51], "eval_params": [limit]},
                               p)["holds"]
    assert not paper_criterion({"test": [99.9], "eval_params": [limit, limit + 2]}, p)["holds"]
    assert not paper_criterion(None, p)["holds"]


def test_a_missing_table_is_said_on_the_page(tmp_path):
    blocks = sweep_blocks(tmp_path, "fashion_dense_table.csv", "fashion_runs", "fashion",
                          dataset="fashion-mnist", with_paper=False)
    assert "No table committed yet" in blocks["fashion-command"]
    _write_sweep(tmp_path, [(None, 0, 89.0, 88.5, []), (0.1, 0, 88.0, 87.5, [30] * 4)],
                 runs="fashion_runs", table="fashion_dense_table.csv")
    blocks = sweep_blocks(tmp_path, "fashion_dense_table.csv", "fashion_runs", "fashion",
                          dataset="fashion-mnist", with_paper=False)
    assert "--dataset fashion-mnist --seeds 0" in blocks["fashion-command"]
    assert "paper" not in blocks["fashion-table"] and set(blocks) == {"fashion-command",
                                                                       "fashion-table"}


def test_official_means_average_the_rows_as_the_plot_does(tmp_path):
    """Made-up official files: row k of every run's file is epoch k (row 0 before training);
    the mean and the standard deviation (divisor: the number of runs) per row."""
    from lowrank_ref.reports.official import OFFICIAL_EXPERIMENTS, official_block, official_means
    head = ",epoch,theta,test_accuracy(%),ranks\n"
    for folder, decay, suffix in OFFICIAL_EXPERIMENTS:
        d = tmp_path / "UV_vanilla" / "results_vanilla" / folder
        d.mkdir(parents=True)
        for method, base in (("dlrt", 50.0), ("vanilla", 20.0)):
            for i in range(10):
                rows = [f"{k - 1},{max(k - 1, 0)},0.1,{base + decay + k + i},\"[20]\"\n"
                        for k in range(12)]
                (d / f"_running_data_{method}{i}{method}_lenet_{suffix}.csv").write_text(
                    head + "".join(rows))
    rows = official_means(tmp_path, commit="0123456789")
    got = {(r["decay"], r["method"], r["epoch"]): r for r in rows}
    r = got[10, "dlrt", 1]                  # values 50 + 10 + 1 + i, i = 0..9
    assert r["mean_test_acc"] == "65.50" and r["min_test_acc"] == "61.00"
    assert r["std_test_acc"] == f"{(sum((i - 4.5) ** 2 for i in range(10)) / 10) ** 0.5:.2f}"
    assert got[2, "vanilla", 10]["mean_test_acc"] == "36.50" and len(rows) == 18
    assert r["files"].endswith("cv_vanilla/_running_data_dlrt[0-9]dlrt_lenet_exp10.csv")
    results = tmp_path / "results"
    results.mkdir()
    from lowrank_ref.reports.official import write_official_means
    write_official_means(tmp_path, results / "official_lenet5_vanilla.csv")
    block = official_block(results)
    assert "| 10 | `cv_vanilla` | 65.50 ± 2.87 | 35.50 ± 2.87 | 74.50 ± 2.87 |" in block
    assert "DLRT 65.5 % against vanilla 35.5 % after one epoch, 74.5 % against 44.5 %" in block
    with pytest.raises(FileNotFoundError, match="checkout of COMPiLELab/DLRT-Net"):
        official_means(tmp_path / "nothing")


def test_the_committed_official_means_are_the_published_plots():
    """What the issue quotes from the official plot (decay 10, ten runs): 39.1 / 16.0 % after
    one epoch, 95.9 / 60.3 % after ten; the source is named by repository and commit."""
    with open(ROOT / "results" / "official_lenet5_vanilla.csv", newline="") as fh:
        rows = {(r["decay"], r["method"], r["epoch"]): r for r in csv.DictReader(fh)}
    assert [round(float(rows["10", m, e]["mean_test_acc"]), 1) for e in ("1", "10")
            for m in ("dlrt", "vanilla")] == [39.1, 16.0, 95.9, 60.3]
    assert {r["repository"] for r in rows.values()} == {"COMPiLELab/DLRT-Net"}
    assert {len(r["commit"]) for r in rows.values()} == {40}


def test_the_lenet5_statements_from_a_made_up_table(tmp_path):
    """Three seeds, one row above the paper's compression by r (n_in + n_out), one below it
    (and its signed difference by the published rule), accuracy below the paper at one tau."""
    from lowrank_ref.figures.lenet5_plots import (PAPER_LENET5_TABLE, eval_params,
                                                  paper_eval_params)
    from lowrank_ref.reports.lenet5 import lenet5_blocks
    p09, p02 = PAPER_LENET5_TABLE[0], PAPER_LENET5_TABLE[4]
    assert (p09["tau"], p02["tau"]) == (0.09, 0.2)
    runs = [(None, s, 99.0, 99.3, []) for s in range(3)]
    runs += [(0.09, s, 99.0, 99.2, [9, 20, 40]) for s in range(3)]
    runs += [(0.2, s, 97.0, p02["test_acc"] - 0.1 * (s + 1), [8, 9, 15]) for s in range(3)]
    with open(tmp_path / "mnist_lenet5_table.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        for tau, seed, val, test, ranks in runs:
            ev = 430500 if tau is None else eval_params(ranks)
            w.writerow({"method": "dense" if tau is None else "adaptive",
                        "tau": "" if tau is None else tau, "val_acc": val, "test_acc": test,
                        "ranks": "|".join(map(str, ranks)), "eval_params": ev,
                        "train_params": ev, "eval_cr": 0, "train_cr": 0, "epochs": 10,
                        "finetune_epochs": 0, "seconds_per_epoch": 30, "total_seconds": 300,
                        "seed": seed, "run": f"x-seed{seed}"})
    blocks = lenet5_blocks(tmp_path)
    assert "| 0.2 | 97.00 (97.00–97.00) | 97.92 (97.82–98.02) | 98.12 (0.34) |" in blocks[
        "lenet5-table"]
    found = blocks["lenet5-findings"]
    assert "(below it at τ = 0.2)" in found and "the dense baseline reaches 99.30 %" in found

    def cr(n):
        return 100 * (1 - n / 430500)
    short = cr(eval_params(p02["ranks"])) - cr(eval_params([8, 9, 15]))
    pub = cr(paper_eval_params([8, 9, 15])) - cr(p02["eval_params"])
    assert f"At τ = 0.2 it falls short of it, by {short:.2f} points" in found
    assert f"published compression: {pub:+.2f} points), so this row misses" in found
    up = cr(eval_params([9, 20, 40])) - cr(eval_params(p09["ranks"]))
    assert "At τ = 0.09 our compression is at or above" in found and f"{up:.2f} points" in found


def test_the_recipe_statements_from_made_up_runs(tmp_path):
    """The last epoch of each run is reported; form (b) is compared with the paper and with
    the SGD table's seed means."""
    from lowrank_ref.reports.recipe import recipe_blocks
    head = "experiment,level,method,optimizer,seed,epoch,phase,ranks,eval_cr,test_acc\n"
    lines = [f"recipe,0.09,adaptive,{opt},0,{e},train,40|40|40|40,{80 + e}.00,{acc + e}\n"
             for opt, acc in (("adam", 90), ("adam-carried", 96)) for e in (1, 2)]
    (tmp_path / "mnist_adam_recipe.csv").write_text(head + "".join(lines))
    _write_sweep(tmp_path, [(0.09, s, 98.0, 97.0 + s, [36] * 4) for s in range(3)])
    blocks = recipe_blocks(tmp_path)
    assert "Seed 0, after epoch 2" in blocks["recipe-table"]
    assert "| 0.09 | 35, 53, 51, 46 | 98.34 | 82.6 % | 40, 40, 40, 40 | 92.00 | 82.0 % |" in \
        blocks["recipe-table"]
    acc = blocks["recipe-accuracy"]
    assert "τ = 0.09: 98.00 % against 98.34 %, compression 82.0 % against 82.6 %" in acc
    assert "below it at τ = 0.09; at a compression below the paper's at τ = 0.09." in acc
    assert "test accuracy 98.00 % against 98.00 %" in acc
    assert blocks["published-truncation"] == "Not run yet."
    (tmp_path / "mnist_published_truncation.csv").write_text(
        "form,transposed,tau,seed,epoch,ranks,eval_params,eval_cr,val_acc,test_acc\n"
        "adam-carried,U,0.09,0,1,30|20|20|20,1,1,50.00,\n"
        "adam-carried,U,0.09,0,2,31|21|20|20,1,1,60.00,59.00\n")
    block = recipe_blocks(tmp_path)["published-truncation"]
    assert "| 0.09 | (b) carried | U | 2 | 31, 21, 20, 20 | 60.00 | 59.00 | 40, 40, 40, 40 | 98 |" \
        in block


def test_the_comparison_tables_from_made_up_runs(tmp_path):
    """The last epoch of each run; mean (lowest-highest) over seeds; equal-budget columns
    only when the table has them; per-epoch means of the ill-conditioned runs."""
    from lowrank_ref.reports.comparisons import illconditioned_block, methods_block
    head = "experiment,level,method,seed,epoch,phase,ranks,eval_cr,test_acc\n"
    lines = []
    for seed in (0, 1):
        lines.append(f"methods,dense,dense,{seed},1,train,,0.00,{98 + seed}.00\n")
        for method, base in (("adaptive", 96), ("prune", 90), ("prune+fixed-equal", 95)):
            for epoch in (1, 2):
                lines.append(f"methods,0.1,{method},{seed},{epoch},train,3|4,{80 + seed}.00,"
                             f"{base + epoch + seed}.00\n")
    (tmp_path / "m.csv").write_text(head + "".join(lines))
    block = methods_block(tmp_path, "m.csv")
    assert "dense network: 98.50 (98.00–99.00)" in block
    assert ("| 0.1 | 3, 4 | 80.5 % | 98.50 (98.00–99.00) | 92.50 (92.00–93.00) | "
            "97.50 (97.00–98.00) |") in block
    assert "pruned, equal budget" not in block and "pruned + fixed-rank, equal budget" in block
    from lowrank_ref.reports.comparisons import differences_block
    diff = differences_block(tmp_path, "m.csv")
    assert "| pruned − adaptive DLRT | -6.00 | 0 of 2 |" in diff
    assert "| pruned + fixed-rank, equal budget − adaptive DLRT | -1.00 | 0 of 2 |" in diff
    assert "| dense network − adaptive DLRT | +0.00 | 0 of 2 |" in diff
    assert "vanilla" not in diff                      # no vanilla runs in this table
    ill = [f"illconditioned,2,{m},{s},{e},train,20|20,90.00,{10 * e + s + (5 if m == 'fixed' else 0)}.00\n"
           for m in ("fixed", "vanilla") for s in (0, 2) for e in (0, 1, 2)]
    (tmp_path / "i.csv").write_text(head + "".join(ill))
    block = illconditioned_block(tmp_path, "i.csv")
    assert "mean of seeds 0, 2" in block
    assert "| 2 | fixed-rank DLRT | 6.0 | 16.0 | 26.0 | 25.0–27.0 |" in block
    assert "| 2 | vanilla `U Vᵀ` | 1.0 | 11.0 | 21.0 | 20.0–22.0 |" in block


def test_the_comparison_sentences_hold_on_the_committed_table():
    """What docs/reproduce/03_comparisons.md says in words of the committed methods table."""
    from lowrank_ref.reports.comparisons import final_rows
    from lowrank_ref.reports.markdown import read_csv
    final = final_rows(read_csv(ROOT / "results" / "mnist_comparison.csv"))
    levels = sorted({lv for lv, _, _ in final if lv != "dense"}, key=float)
    seeds = sorted({s for _, _, s in final})

    def acc(lv, m, s):
        return float(final[("dense", "dense", s) if m == "dense" else (lv, m, s)]["test_acc"])

    def mean_diff(lv, a, b):
        return sum(acc(lv, a, s) - acc(lv, b, s) for s in seeds) / len(seeds)
    assert all(acc(lv, "prune", s) < acc(lv, "adaptive", s) for lv in levels for s in seeds)
    assert all(mean_diff(lv, "dense", "adaptive") < 2 for lv in levels)
    assert all(acc(lv, "prune+fixed", s) > acc(lv, "adaptive", s) for lv in levels for s in seeds)
    assert all(mean_diff(lv, "prune+sonly", "adaptive") < 0 for lv in levels)
    assert [mean_diff(lv, "vanilla", "adaptive") > 0 for lv in levels] == [False, False, True, True]
    assert all(acc("0.17", "vanilla", s) > acc("0.17", "adaptive", s) for s in seeds)
    assert [mean_diff(lv, "vanilla", "fixed") > 0 for lv in levels] == [False, False, False, True]
    assert all(acc(lv, "fixed", s) > acc(lv, "adaptive", s) for lv in levels for s in seeds)
    # equal budget: every pruned network below adaptive DLRT, for every level and seed; the
    # fixed-rank fine-tuned one 0.37 to 0.63 points below on average (as the page says)
    for m in ("prune-equal", "prune+fixed-equal", "prune+sonly-equal"):
        assert all(acc(lv, m, s) < acc(lv, "adaptive", s) for lv in levels for s in seeds), m
    gaps = [-mean_diff(lv, "prune+fixed-equal", "adaptive") for lv in levels]
    assert f"{min(gaps):.2f} to {max(gaps):.2f} points below on average" == \
        "0.37 to 0.63 points below on average"


def test_the_official_means_command_refuses_a_folder_that_is_no_checkout(tmp_path, capsys):
    """``python -m lowrank_ref.reports.official DIR``: one line naming what is missing, exit 2,
    nothing written; bad arguments of the function are refused by name."""
    from lowrank_ref.reports.official import main, official_means
    out = tmp_path / "means.csv"
    assert main([str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not found" in err and not out.exists()
    with pytest.raises(ValueError, match="runs must be an int >= 1, got 0"):
        official_means(tmp_path, runs=0)


def test_the_tuning_block_says_when_there_are_no_tuning_runs(tmp_path):
    from lowrank_ref.reports.sweeps import tuning_block
    assert tuning_block(tmp_path) == "No tuning runs committed yet (`tuning/*` in `results/`)."
    rows = tuning_block(ROOT / "results", prefix="lr-").splitlines()[2:]   # committed, best first
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows]
    keys = [(-int(c[8]), -float(c[11].split()[0])) for c in cells]      # by epochs, then val.
    assert len(rows) >= 4 and keys == sorted(keys)


def _tuning(prefix):
    from lowrank_ref.reports.sweeps import tuning_runs
    return tuning_runs(ROOT / "results", prefix=prefix)


def _setting(settings, **options):
    found = [t for t in settings if all(t[k] == v for k, v in options.items())]
    assert len(found) == 1, (options, found)
    return found[0]


def test_validation_chose_the_learning_rates_as_page_01_says():
    """docs/reproduce/01_mnist_table.md: at τ = 0.09 validation prefers lr 0.2 for DLRT after
    5 and after 15 epochs, on the mean of three seeds and on each seed; the warm-up made no
    difference at 5 epochs; over the whole sweep (the table retrained at lr 0.2) validation
    keeps lr 0.1, the lowest lr-0.2 run having ranks of 3 to 5; the table uses lr 0.1; the
    dense baseline keeps lr 0.1."""
    from lowrank_ref.reports.markdown import mean
    lr = _tuning("lr-")

    def at(**options):
        return _setting(lr, tau=0.09, spectrum_length=40.0, spectrum_norm=0.6, **options)
    fast, slow = at(lr=0.2, epochs=15, warmup=100), at(lr=0.1, epochs=15, warmup=100)
    assert fast["seeds"] == slow["seeds"] == [0, 1, 2]
    assert mean(fast["val"]) > mean(slow["val"])
    assert all(a > b for a, b in zip(fast["val"], slow["val"]))
    assert at(lr=0.2, epochs=5, warmup=100)["val"] > at(lr=0.1, epochs=5, warmup=100)["val"]
    assert (f"{at(lr=0.1, epochs=5, warmup=100)['val'][0]:.2f}"
            == f"{at(lr=0.1, epochs=5, warmup=0)['val'][0]:.2f}")
    dense = _tuning("dense-lr-")
    assert len(dense) == 3 and max(dense, key=lambda t: t["val"][0])["lr"] == 0.1

    def sweep(folder):
        runs = ROOT / "results" / folder / "mnist_runs"
        with open(ROOT / "results" / folder / "mnist_dense_table.csv") as f:
            rows = [r for r in csv.DictReader(f) if r["method"] == "adaptive"]
        lrs = {flat_options(json.loads((runs / r["run"] / "run.json").read_text())
                            ["config"])["lr"] for r in rows}
        return lrs, rows
    (table_lr, table), (other_lr, other) = sweep(""), sweep("tuning/table-lr-0.2")
    assert table_lr == {0.1} and other_lr == {0.2} and len(table) == len(other) == 24
    assert (mean(float(r["val_acc"]) for r in table)
            > mean(float(r["val_acc"]) for r in other))
    lowest = min(other, key=lambda r: float(r["val_acc"]))
    ranks = [int(k) for k in lowest["ranks"].split("|")]
    assert (min(ranks), max(ranks)) == (3, 5)

    def by_tau(rows):
        out = {}
        for r in rows:
            out.setdefault(r["tau"], []).append(float(r["val_acc"]))
        return out
    a, b = by_tau(table), by_tau(other)
    whole = [t for t in b if min(b[t]) >= 97.0]           # no run of lr 0.2 collapsed
    assert len(whole) == 6 and sum(mean(b[t]) > mean(a[t]) for t in whole) == 4


def test_the_starting_spectrum_was_checked_as_page_01_says():
    """docs/reproduce/01_mnist_table.md: the table's start (length 40, norm 0.6) is not
    dominated on validation (no tuning setting both more compressed and more accurate); the
    norm 0.3 trains worst at the lengths 40, 80 and 160; norm 1.0 diverged at length 10;
    a longer decay keeps more rank (less compression) at the same τ."""
    from lowrank_ref.reports.markdown import mean
    from lowrank_ref.reports.sweeps import _dominates
    settings = [t for t in _tuning("spectrum-") + _tuning("front-") if t["val"]]
    table_start = _setting(settings, spectrum_length=40.0, spectrum_norm=0.6, tau=0.09)
    assert not any(_dominates(t, table_start) for t in settings)
    grid = _tuning("spectrum-")
    for length in (40.0, 80.0, 160.0):
        vals = {n: mean(_setting(grid, spectrum_length=length, spectrum_norm=n)["val"])
                for n in (0.3, 0.6, 1.0)}
        assert vals[0.3] < min(vals[0.6], vals[1.0]), (length, vals)
    assert _setting(grid, spectrum_length=10.0, spectrum_norm=1.0)["diverged"] == [0]
    crs = [mean(_setting(grid, spectrum_length=length, spectrum_norm=0.6)["eval_cr"])
           for length in (20.0, 40.0, 80.0)]
    assert crs == sorted(crs, reverse=True)


def test_the_comparison_learning_rates_were_checked_as_page_03_says():
    """docs/reproduce/03_comparisons.md: on validation the vanilla lr 0.03 beats 0.01 and 0.1
    diverges; the fine-tuning lr 0.3 is best for fixed-rank and for S-only fine-tuning (1.0
    diverges or trains worse); at the equal budget and lr 0.3 pruned + fixed-rank ends above
    rank-adaptive DLRT after 5 epochs at lr 0.2 (seed 0), pruned + S-only below."""
    vanilla = _tuning("vanilla-lr-")
    val = {t["lr"]: (t["val"] or [None])[0] for t in vanilla}
    assert val[0.03] > val[0.01] and _setting(vanilla, lr=0.1)["diverged"] == [0]
    tuned = _tuning("finetune-lr-")
    for method in ("fixed (pruned start)", "sonly (pruned start)"):
        runs = [t for t in tuned if t["method"] == method]
        best = max((t for t in runs if t["val"]), key=lambda t: t["val"][0])
        assert best["lr"] == 0.3 and {t["lr"] for t in runs} == {0.003, 0.01, 0.03, 0.1, 0.3, 1.0}
        at_one = _setting(runs, lr=1.0)
        assert at_one["diverged"] or at_one["val"][0] < best["val"][0]
    adaptive = [_setting(_tuning("lr-"), lr=lr, epochs=5, tau=0.09, warmup=100)
                for lr in (0.1, 0.2)]
    assert all(a["seeds"] == [0] for a in adaptive)
    equal = _tuning("equal-budget-lr-")
    assert _setting(equal, method="fixed (pruned start)")["val"][0] > max(
        a["val"][0] for a in adaptive)
    assert _setting(equal, method="sonly (pruned start)")["val"][0] < min(
        a["val"][0] for a in adaptive)


def test_the_lenet5_recipe_was_checked_as_page_02_says():
    """docs/reproduce/02_lenet5_table.md: on validation, momentum 0.9 with the cosine schedule
    is ahead of the paper's plain SGD for DLRT (τ = 0.2) and for the dense network, and lr
    0.1 is ahead of the paper's 0.05 and of 0.025 (short runs)."""
    runs = _tuning("lenet5-")
    for method in ("adaptive", "dense"):
        ours = _setting(runs, method=method, momentum=0.9, schedule="cosine", lr=0.05)
        plain = _setting(runs, method=method, momentum=0.0, schedule="constant")
        assert ours["val"][0] > plain["val"][0] and ours["epochs"] == plain["epochs"] == 3
        # ... but not the paper's learning rate: 0.1 is ahead of 0.05 and 0.025
        rates = {t["lr"]: t["val"][0] for t in runs
                 if t["method"] == method and t["momentum"] == 0.9}
        assert sorted(rates) == [0.025, 0.05, 0.1] and max(rates, key=rates.get) == 0.1


def test_the_comparison_at_validated_learning_rates_is_as_page_03_says():
    """docs/reproduce/03_comparisons.md: at the validation-chosen learning rates pruned +
    fixed-rank fine-tuning ends above rank-adaptive DLRT at every level and seed, at 5 + 5
    epochs and at the equal budget; pruned + S-only at the equal budget is within 0.2 points
    of it on the mean of every level; pruning without fine-tuning is below it everywhere, by
    more as τ grows."""
    from lowrank_ref.reports.comparisons import final_rows
    from lowrank_ref.reports.markdown import mean, read_csv
    folder = ROOT / "results" / "comparison_validation"
    final = final_rows(read_csv(folder / "mnist_comparison.csv"))
    levels = sorted({lv for lv, _, _ in final if lv != "dense"}, key=float)
    seeds = sorted({s for _, _, s in final})
    assert len(levels) == 4 and len(seeds) == 3

    def diff(method, level):
        return [float(final[level, method, s]["test_acc"])
                - float(final[level, "adaptive", s]["test_acc"]) for s in seeds]
    for level in levels:
        assert min(diff("prune+fixed", level)) > 0 and min(diff("prune+fixed-equal", level)) > 0
        assert abs(mean(diff("prune+sonly-equal", level))) < 0.2
        assert max(diff("prune", level)) < 0
    losses = [mean(diff("prune", level)) for level in levels]
    assert losses == sorted(losses, reverse=True)
    records = sorted(folder.glob("mnist_comparison_runs/*/run.json"))
    assert len(records) == 114
    for record in records:                 # the learning rates the page names, every run
        config = flat_options(json.loads(record.read_text())["config"])
        expected = (0.3 if config["prune_from"] else 0.03 if config["method"] == "vanilla"
                    else 0.1)
        assert config["validation"] is True and config["lr"] == expected, record


def test_the_starting_spectrum_at_the_tables_lr_is_as_page_01_says():
    """docs/reproduce/01_mnist_table.md: at lr 0.1, length 40 (norm 0.6) is not dominated at
    τ = 0.05 and 0.15; at τ = 0.09 what dominates it does so by < 0.5 points of compression
    and < 0.05 of accuracy; at length 40, τ = 0.09 the norm 0.6 beats 0.3 and 1.0."""
    from lowrank_ref.reports.markdown import mean
    from lowrank_ref.reports.sweeps import _dominates
    settings = [t for t in _tuning("atlr01-") if t["val"]]
    assert {t["lr"] for t in settings} == {0.1} and len(settings) == 11
    at40 = {t["tau"]: t for t in settings
            if t["spectrum_length"] == 40.0 and t["spectrum_norm"] == 0.6}
    for tau in (0.05, 0.15):
        assert not any(_dominates(o, at40[tau]) for o in settings)
    for o in settings:
        if _dominates(o, at40[0.09]):
            assert mean(o["eval_cr"]) - mean(at40[0.09]["eval_cr"]) < 0.5
            assert mean(o["val"]) - mean(at40[0.09]["val"]) < 0.05
    norms = {t["spectrum_norm"]: t for t in settings
             if t["spectrum_length"] == 40.0 and t["tau"] == 0.09}
    assert mean(norms[0.6]["val"]) > max(mean(norms[0.3]["val"]), mean(norms[1.0]["val"]))
    assert abs(mean(norms[1.0]["eval_cr"]) - mean(norms[0.6]["eval_cr"])) < 1.5
    assert abs(mean(norms[0.3]["eval_cr"]) - mean(norms[0.6]["eval_cr"])) < 1.5


def test_the_lenet5_sweep_at_lr_0_1_is_as_page_02_says():
    """docs/reproduce/02_lenet5_table.md: at 10 epochs, one seed at lr 0.1 is ahead of the
    mean of the three validation seeds at 0.05 at every τ up to 0.3, collapsed to rank 1 per
    layer at τ = 0.4, and behind on the mean over the sweep."""
    from lowrank_ref.reports.markdown import mean

    def table(folder):
        with open(ROOT / "results" / folder / "mnist_lenet5_table.csv") as f:
            rows = [r for r in csv.DictReader(f) if r["method"] == "adaptive"]
        by_tau = {}
        for r in rows:
            by_tau.setdefault(float(r["tau"]), []).append(r)
        return rows, by_tau
    (slow, slow_tau), (fast, fast_tau) = (table("lenet5_validation"),
                                          table("tuning/lenet5-table-lr-0.1"))
    assert {r["seed"] for r in fast} == {"0"} and {r["seed"] for r in slow} == {"0", "1", "2"}
    for tau in sorted(fast_tau):
        ahead = (float(fast_tau[tau][0]["val_acc"])
                 > mean(float(r["val_acc"]) for r in slow_tau[tau]))
        assert ahead == (tau <= 0.3), tau
    assert fast_tau[0.4][0]["ranks"] == "1|1|1"
    assert mean(float(r["val_acc"]) for r in fast) < mean(float(r["val_acc"]) for r in slow)
    lrs = {flat_options(json.loads((ROOT / "results" / "tuning" / "lenet5-table-lr-0.1"
                                    / "lenet5_runs" / r["run"] / "run.json").read_text())
                        ["config"])["lr"] for r in fast}
    assert lrs == {0.1}
