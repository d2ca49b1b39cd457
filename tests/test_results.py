"""The committed results of the paper's-table sweep (results/, written by
``python -m lowrank_ref sweep ...`` as documented in docs/reproduce/01_mnist_table.md):
consistent with the runs' records and with the definitions of [SZKCT22], and close to the published table."""
import csv
import json
from pathlib import Path

import pytest

from lowrank_ref.figures import PAPER_MNIST_TABLE
from lowrank_ref.training.specs import flat_options

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
SIZES = [784, 500, 500, 500, 500, 10]


def _table():
    with open(RESULTS / "mnist_dense_table.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_table_rows_match_their_run_records():
    rows = _table()
    assert rows, "results/mnist_dense_table.csv is empty"
    for row in rows:
        run = RESULTS / "mnist_runs" / row["run"]
        with open(run / "history.csv", newline="") as f:
            history = list(csv.DictReader(f))
        config = flat_options(json.loads((run / "run.json").read_text())["config"])
        last = history[-1]
        assert len(history) == int(row["epochs"]) + int(row["finetune_epochs"])
        assert abs(100 * float(last["test_acc"]) - float(row["test_acc"])) < 0.006
        assert last["ranks"] == row["ranks"]
        assert config["sizes"] == SIZES and config["method"] == row["method"]
        if row["method"] == "adaptive":
            assert float(config["tau"]) == float(row["tau"])


def test_parameter_counts_follow_the_paper_definitions():
    dense = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    for row in _table():
        ranks = [int(r) for r in row["ranks"].split("|")] if row["ranks"] else []
        lr_layers = list(zip(SIZES[:-2], SIZES[1:-1]))[:len(ranks)]
        dense_rest = dense - sum(a * b for a, b in lr_layers)
        ev = sum(r * (a + b) for r, (a, b) in zip(ranks, lr_layers)) + dense_rest
        tr = sum(2 * r * a + 4 * r * r + 2 * r * b for r, (a, b) in zip(ranks, lr_layers)) + dense_rest
        assert int(row["eval_params"]) == ev
        assert int(row["train_params"]) == tr
        assert float(row["eval_cr"]) == pytest.approx(100 * (1 - ev / dense), abs=0.051)


def _paper_rows_meeting_the_criterion():
    """The criterion as docs/reproduce/01_mnist_table.md states it, computed here from the
    CSV: the seed mean of the test accuracy within 0.5 points of the paper's (or above it),
    and the seed mean of the evaluation parameters at most those of the paper's ranks
    (compression at or above the paper's). A tau that was not run does not meet it."""
    dense = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    rows = {}
    for r in _table():
        if r["method"] == "adaptive":
            rows.setdefault(float(r["tau"]), []).append(r)
    held = []
    for entry in PAPER_MNIST_TABLE:
        runs = rows.get(entry["tau"], [])
        if not runs:
            continue
        acc = sum(float(r["test_acc"]) for r in runs) / len(runs)
        params = sum(int(r["eval_params"]) for r in runs) / len(runs)
        paper_params = sum(r * (a + b) for r, a, b in zip(entry["ranks"], SIZES[:-2],
                                                          SIZES[1:-1])) + 5000
        assert 100 * (1 - paper_params / dense) == pytest.approx(entry["eval_cr"], abs=0.051)
        if acc - entry["test_acc"] >= -0.5 - 1e-9 and params <= paper_params:
            held.append(entry["tau"])
    return held


def test_the_page_states_on_which_rows_the_criterion_holds():
    held = _paper_rows_meeting_the_criterion()
    page = (ROOT / "docs" / "reproduce" / "01_mnist_table.md").read_text()
    taus = ", ".join(f"{t:g}" for t in held[:-1]) + (f" and {held[-1]:g}" if len(held) > 1
                                                      else f"{held[0]:g}" if held else "")
    assert (f"**holds on {len(held)} of the paper's {len(PAPER_MNIST_TABLE)} rows**"
            f"{f' (τ = {taus}).' if held else '.'}") in page


#: The rows of the paper's MNIST table (tau) on which the committed table does not meet the
#: criterion, as docs/reproduce/01_mnist_table.md states them (generated), on the seed means of
#: the committed three-seed table. The issue's acceptance is at most one such row.
MNIST_CRITERION_MISSES = {0.07}


def test_the_criterion_misses_only_the_documented_rows():
    """The criterion, computed from the CSV, misses exactly MNIST_CRITERION_MISSES: a new table
    that changes which rows miss must change this constant (and the issue's acceptance, at
    least 7 of the 8 rows, is read off it)."""
    assert len(PAPER_MNIST_TABLE) == 8
    misses = {p["tau"] for p in PAPER_MNIST_TABLE} - set(_paper_rows_meeting_the_criterion())
    assert misses == MNIST_CRITERION_MISSES, (
        f"the criterion misses tau = {sorted(misses)} in results/mnist_dense_table.csv, "
        f"MNIST_CRITERION_MISSES says {sorted(MNIST_CRITERION_MISSES)}: update it (and report "
        f"whether at least 7 of the 8 rows still hold)")


# --- the LeNet5 table (results/mnist_lenet5_table.csv, docs/reproduce/02_lenet5_table.md): one
# row per run (tau, seed), the runs under results/lenet5_runs/ -----------------

#: (n_in, n_out) of the kernel matrices of LeNet5's first three layers (conv 1->20 5x5,
#: conv 20->50 5x5, linear 800->500) and the weights of the dense classifier 500 -> 10.
LENET5_LOW_RANK = [(25, 20), (500, 50), (800, 500)]
LENET5_DENSE = sum(a * b for a, b in LENET5_LOW_RANK) + 5000


def _lenet5_table():
    with open(RESULTS / "mnist_lenet5_table.csv", newline="") as f:
        return list(csv.DictReader(f))


def _lenet5_by_tau():
    rows = {}
    for r in _lenet5_table():
        rows.setdefault(None if r["method"] == "dense" else float(r["tau"]), []).append(r)
    return rows


def test_lenet5_table_rows_match_their_run_records():
    rows = _lenet5_table()
    assert rows, "results/mnist_lenet5_table.csv is empty"
    for row in rows:
        run = RESULTS / "lenet5_runs" / row["run"]
        with open(run / "history.csv", newline="") as f:
            history = list(csv.DictReader(f))
        record = json.loads((run / "run.json").read_text())
        config = flat_options(record["config"])
        assert record["status"] == "finished"
        assert len(history) == int(row["epochs"]) + int(row["finetune_epochs"])
        assert abs(100 * float(history[-1]["test_acc"]) - float(row["test_acc"])) < 0.006
        assert history[-1]["ranks"] == row["ranks"]
        assert config["arch"] == "lenet5" and config["method"] == row["method"]
        assert config["seed"] == int(row["seed"]) and config["dataset"] == "mnist"
        assert record["data"]["n_train"] == 60000 and record["data"]["n_test"] == 10000
        if row["method"] == "adaptive":
            assert float(config["tau"]) == float(row["tau"]) and config["rank"] == 500


def test_lenet5_parameter_counts_follow_the_definitions():
    """Biases excluded; a low-rank layer of rank r holds r (n_in + n_out) evaluation and
    2 r (n_in + n_out) + 4 r^2 training parameters on its kernel matrix."""
    assert LENET5_DENSE == 430_500
    for row in _lenet5_table():
        ranks = [int(r) for r in row["ranks"].split("|")] if row["ranks"] else []
        if row["method"] == "dense":
            assert ranks == [] and int(row["eval_params"]) == LENET5_DENSE
            continue
        assert len(ranks) == 3
        ev = sum(r * (a + b) for r, (a, b) in zip(ranks, LENET5_LOW_RANK)) + 5000
        tr = sum(2 * r * (a + b) + 4 * r * r for r, (a, b) in zip(ranks, LENET5_LOW_RANK)) + 5000
        assert int(row["eval_params"]) == ev and int(row["train_params"]) == tr
        assert float(row["eval_cr"]) == pytest.approx(100 * (1 - ev / LENET5_DENSE), abs=0.051)


def test_the_published_lenet5_counts_leave_out_the_V_factors():
    """What docs/reproduce/02_lenet5_table.md says of the published table: every row's
    evaluation parameters are sum r (n_out + 1) + 5000 (and its compression rate follows from them), not the
    r (n_in + n_out) + 5000 of the definition, which the fully connected table does follow."""
    from lowrank_ref.figures import PAPER_LENET5_DENSE, PAPER_LENET5_TABLE
    assert PAPER_LENET5_DENSE["eval_params"] == LENET5_DENSE
    for p in PAPER_LENET5_TABLE:
        published = p["eval_params"]
        assert published == sum(r * (b + 1) for r, (_, b) in zip(p["ranks"], LENET5_LOW_RANK)) + 5000
        assert published < sum(r * (a + b) for r, (a, b) in zip(p["ranks"], LENET5_LOW_RANK)) + 5000
        assert p["eval_cr"] == pytest.approx(100 * (1 - published / LENET5_DENSE), abs=0.051)
    dense_mlp = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    for p in PAPER_MNIST_TABLE:
        ev = sum(r * (a + b) for r, a, b in zip(p["ranks"], SIZES[:-2], SIZES[1:-1])) + 5000
        assert p["eval_cr"] == pytest.approx(100 * (1 - ev / dense_mlp), abs=0.051)


def test_lenet5_dense_baseline_is_at_least_98_5_and_every_row_has_two_seeds():
    by_tau = _lenet5_by_tau()
    from lowrank_ref.figures import PAPER_LENET5_TABLE
    assert set(by_tau) == {None} | {p["tau"] for p in PAPER_LENET5_TABLE}
    assert all(len({r["seed"] for r in rows}) >= 2 for rows in by_tau.values())
    assert all(float(r["test_acc"]) >= 98.5 for r in by_tau[None])


#: The paper's rows whose compression this project's runs do not reach, as
#: docs/reproduce/02_lenet5_table.md says: at tau >= 0.2 the mean evaluation
#: parameters of the two seeds exceed those of the paper's ranks counted the same way
#: (r (n_in + n_out)), by less than half a point of compression.
LENET5_COMPRESSION_MISSES = {0.2, 0.3, 0.4, 0.45}


def test_every_lenet5_tau_of_the_paper_is_above_its_accuracy_and_the_misses_are_as_documented():
    """The issue's criterion read from the committed table: every paper tau within 0.5 points
    of the paper's mean accuracy or above it (here: above it at every tau), at a compression
    at or above that of the paper's ranks counted as r (n_in + n_out) -- except the rows the
    LeNet5 page names, which fall short by less than 0.5 points of compression."""
    from lowrank_ref.figures import PAPER_LENET5_TABLE
    by_tau = _lenet5_by_tau()
    misses = set()
    for p in PAPER_LENET5_TABLE:
        rows = by_tau[p["tau"]]
        mean_acc = sum(float(r["test_acc"]) for r in rows) / len(rows)
        assert mean_acc >= p["test_acc"], (p["tau"], mean_acc, p["test_acc"])
        paper_params = sum(r * (a + b) for r, (a, b) in zip(p["ranks"], LENET5_LOW_RANK)) + 5000
        ours = sum(int(r["eval_params"]) for r in rows) / len(rows)
        if ours > paper_params:
            misses.add(p["tau"])
            assert 100 * (ours - paper_params) / LENET5_DENSE < 0.5, (p["tau"], ours, paper_params)
    assert misses == LENET5_COMPRESSION_MISSES
