"""The comparison commands (lowrank_ref.training.compare, ``python -m lowrank_ref compare`` and
``prune``) end to end on small made-up data: the tables' rows, equal compression per level,
the same start for DLRT and vanilla, records that are read instead of retrained."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

import lowrank_ref.data
from lowrank_ref.__main__ import main
from lowrank_ref.data import Dataset, split_validation
from lowrank_ref.training.compare import (PARALLEL_COLUMNS, TABLE_COLUMNS, compare_illconditioned,
                                          compare_methods, compare_parallel, evaluate_start,
                                          read_rows, recipe_sweep, record_start)
from lowrank_ref.training import TrainConfig, train
from lowrank_ref.training.records import sessions_of
from lowrank_ref.training.specs import flat_options


def run_options(folder):
    """The options by name of the run in ``folder`` (its run.json, nested or flat)."""
    return flat_options(json.loads((Path(folder) / "run.json").read_text())["config"])

SIZES = [12, 10, 8, 4]
OPTIONS = {"sizes": SIZES, "batch_size": 32}


def blobs(seed=0, n=320, d=12, k=4):
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    X = centres[y] + rng.standard_normal((n, d))
    y_valid = rng.integers(0, k, 64)                   # a validation part, drawn last
    X_valid = centres[y_valid] + rng.standard_normal((64, d))
    return Dataset(X[:256], y[:256], X[256:], y[256:], "blobs", "made up in test_compare.py",
                   X_valid, y_valid)


DATA = blobs()


def quiet(line):
    pass


def _final(rows):
    """The last epoch of every (level, method)."""
    out = {}
    for r in rows:
        out[(r["level"], r["method"])] = r
    return out


@pytest.fixture(scope="module")
def methods_table(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    path = compare_methods(taus=(0.1, 0.4), epochs=2, finetune_epochs=1,
                           options=OPTIONS, finetune_options={"lr": 0.01},
                           method_options={"vanilla": {"lr": 0.02}},
                           results_dir=results, data=DATA, log=quiet)
    return results, path


def test_every_method_of_a_level_has_the_adaptive_runs_ranks(methods_table):
    results, path = methods_table
    rows = read_rows(path)
    assert list(rows[0]) == list(TABLE_COLUMNS)
    final = _final(rows)
    for level in ("0.1", "0.4"):
        ranks = final[(level, "adaptive")]["ranks"]
        ev = final[(level, "adaptive")]["eval_params"]
        for method in ("fixed", "vanilla", "prune", "prune+fixed", "prune+sonly"):
            assert final[(level, method)]["ranks"] == ranks
            assert final[(level, method)]["eval_params"] == ev
    assert final[("dense", "dense")]["eval_params"] == str(12 * 10 + 10 * 8 + 8 * 4)
    for r in rows:                       # every run folder is named relative to the results
        assert not Path(r["run"]).is_absolute() and (results / r["run"] / "run.json").exists()
    epochs = {(r["level"], r["method"]): r["epochs"] for r in rows}
    assert epochs[("0.1", "prune")] == "0" and epochs[("0.1", "prune+fixed")] == "1"
    assert epochs[("0.1", "fixed")] == "2"
    assert [r["epoch"] for r in rows if r["method"] == "prune"] == ["0", "0"]
    lrs = {r["method"]: run_options(results / r["run"])["lr"]
           for r in rows}
    assert (lrs["vanilla"], lrs["fixed"], lrs["prune+fixed"], lrs["dense"]) == (0.02, 0.1, 0.01, 0.1)


def test_pruned_rows_start_where_the_dense_run_ended(methods_table):
    """The pruned network without fine-tuning is the dense run's weights truncated: at a
    tolerance that keeps almost everything its accuracy is close to the dense one's."""
    results, path = methods_table
    final = _final(read_rows(path))
    prune = final[("0.1", "prune")]
    cfg = TrainConfig(method="fixed", ranks=[int(r) for r in prune["ranks"].split("|")],
                      prune_from=str(results / "mnist_comparison_runs" / "dense"), **OPTIONS)
    assert abs(100 * evaluate_start(cfg, DATA)["test_acc"] - float(prune["test_acc"])) < 0.006


def test_equal_budget_rows_prune_a_shorter_dense_run(tmp_path):
    """equal_budget_dense_epochs=k: a k-epoch dense run, pruned to every level's ranks and
    fine-tuned for epochs - k epochs, so that its total is the DLRT runs' budget; the 5 + 5
    style rows stay beside them."""
    path = compare_methods(taus=(0.2,), epochs=3, finetune_epochs=2, options=OPTIONS,
                           results_dir=tmp_path, data=DATA, log=quiet,
                           equal_budget_dense_epochs=1)
    rows = read_rows(path)
    final = _final(rows)
    assert {m for (_, m) in final} == {"dense", "dense-equal", "adaptive", "fixed", "vanilla",
                                       "prune", "prune+fixed", "prune+sonly", "prune-equal",
                                       "prune+fixed-equal", "prune+sonly-equal"}
    epochs = {m: int(r["epochs"]) for (_, m), r in final.items()}
    assert epochs["dense-equal"] + epochs["prune+fixed-equal"] == epochs["adaptive"] == 3
    assert epochs["dense-equal"] + epochs["prune+sonly-equal"] == 3
    assert epochs["dense"] + epochs["prune+fixed"] == 5
    runs = tmp_path / "mnist_comparison_runs"
    config = run_options(runs / "prune-fixed-equal-tau-0.2")
    assert config["prune_from"].endswith("dense-equal") and config["epochs"] == 2
    assert final[("0.2", "prune-equal")]["ranks"] == final[("0.2", "adaptive")]["ranks"]
    short = TrainConfig(method="fixed", prune_from=str(runs / "dense-equal"), **OPTIONS,
                        ranks=[int(r) for r in final[("0.2", "prune-equal")]["ranks"].split("|")])
    assert abs(100 * evaluate_start(short, DATA)["test_acc"]
               - float(final[("0.2", "prune-equal")]["test_acc"])) < 0.006
    with pytest.raises(ValueError, match="equal_budget_dense_epochs must be below epochs"):
        compare_methods(taus=(0.2,), epochs=3, options=OPTIONS, results_dir=tmp_path,
                        data=DATA, log=quiet, equal_budget_dense_epochs=3)


def test_a_second_call_reads_the_records_instead_of_training(tmp_path):
    kw = dict(taus=(0.2,), epochs=1, finetune_epochs=1, options=OPTIONS, results_dir=tmp_path,
              data=DATA)
    path = compare_methods(log=quiet, **kw)
    first = path.read_text()
    for ckpt in tmp_path.rglob("checkpoint.npz"):  # as in a fresh checkout of the repository
        ckpt.unlink()
    lines = []
    assert compare_methods(log=lines.append, **kw).read_text() == first
    assert not any("training of" in line for line in lines)
    assert sum("finished with this configuration, read" in line for line in lines) == 6


def test_illconditioned_runs_start_from_the_same_matrix(tmp_path):
    path = compare_illconditioned(decays=(1.0, 10.0), rank=3, epochs=2, seeds=(0, 3),
                                  options={**OPTIONS, "dtype": "float64"},
                                  results_dir=tmp_path, data=DATA, log=quiet)
    rows = read_rows(path)
    assert {(r["level"], r["method"], r["seed"]) for r in rows} == {
        (d, m, s) for d in ("1", "10") for m in ("fixed", "vanilla") for s in ("0", "3")}
    for decay in ("1", "10"):
        for seed in ("0", "3"):
            starts = {r["method"]: r for r in rows
                      if r["level"] == decay and r["epoch"] == "0" and r["seed"] == seed}
            assert starts["fixed"]["test_loss"][:12] == starts["vanilla"]["test_loss"][:12]
            assert starts["fixed"]["test_acc"] == starts["vanilla"]["test_acc"]
        assert [r["epoch"] for r in rows if r["level"] == decay and r["method"] == "fixed"
                and r["seed"] == "3"] == ["0", "1", "2"]
    assert {r["run"] for r in rows if r["seed"] == "3"} == {
        f"mnist_illconditioned_runs/{m}-decay-{d}-seed-3" for m in ("fixed", "vanilla")
        for d in ("1", "10")}


def test_recipe_runs_both_adam_forms_from_the_papers_start(tmp_path):
    path = recipe_sweep(taus=(0.1,), epochs=1, options={**OPTIONS, "rank": 3},
                        results_dir=tmp_path, data=DATA, log=quiet)
    rows = read_rows(path)
    assert [(r["optimizer"], r["level"]) for r in rows] == [("adam", "0.1"),
                                                            ("adam-carried", "0.1")]
    cfg = TrainConfig.from_dict(__import__("json").loads(
        (tmp_path / rows[0]["run"] / "run.json").read_text())["config"])
    assert (cfg.init, cfg.lr, cfg.schedule, cfg.warmup, cfg.min_rank) == (
        "keras-normal", 1e-3, "constant", 0, 2)


@pytest.mark.parametrize("call, exc, match", [
    (lambda d: compare_methods(taus=(), results_dir=d, data=DATA), ValueError, "taus"),
    (lambda d: compare_methods(options={"method": "fixed"}, results_dir=d, data=DATA),
     ValueError, "must not set ['method']"),
    (lambda d: compare_methods(options={"colour": 1}, results_dir=d, data=DATA),
     ValueError, "unknown TrainConfig option"),
    (lambda d: compare_methods(options=[1], results_dir=d, data=DATA), TypeError, "options"),
    (lambda d: compare_methods(epochs=0, results_dir=d, data=DATA), ValueError, "epochs"),
    (lambda d: compare_illconditioned(decays=(0.5,), results_dir=d, data=DATA), ValueError,
     "decays[0] must be a finite number >= 1"),
    (lambda d: recipe_sweep(forms=("sgd",), results_dir=d, data=DATA), ValueError, "forms"),
    (lambda d: compare_methods(name="table.txt", results_dir=d, data=DATA), ValueError, "name"),
    (lambda d: record_start(TrainConfig(), data=DATA), ValueError, "config.out"),
    (lambda d: compare_methods(options={"seed": 1}, results_dir=d, data=DATA), ValueError,
     "options must not set 'seed'"),
    (lambda d: compare_illconditioned(seeds=(1, 1), results_dir=d, data=DATA), ValueError,
     "distinct"),
    (lambda d: compare_methods(method_options={"prune": {}}, results_dir=d, data=DATA),
     ValueError, "method_options must map"),
    (lambda d: compare_parallel(taus=(-0.1,), results_dir=d, data=DATA), ValueError,
     "taus[0] must be a finite number >= 0"),
    (lambda d: compare_parallel(seeds=(), results_dir=d, data=DATA), ValueError, "seeds"),
    (lambda d: compare_parallel(options={"method": "fixed"}, results_dir=d, data=DATA),
     ValueError, "must not set ['method']"),
    (lambda d: compare_parallel(name="parallel.json", results_dir=d, data=DATA), ValueError,
     "name must be a file name ending in .csv"),
])
def test_bad_arguments_are_refused_by_name(tmp_path, call, exc, match):
    with pytest.raises(exc) as info:
        call(tmp_path)
    assert match in str(info.value)


def _mnist_like(monkeypatch):
    proj = np.random.default_rng(2).standard_normal((12, 784)) / np.sqrt(12)
    fake = DATA._replace(X_train=DATA.X_train @ proj, X_test=DATA.X_test @ proj,
                         X_valid=DATA.X_valid @ proj)            # DATA has a validation part
    monkeypatch.setattr(lowrank_ref.data, "load",
                        lambda name, data_dir=None, dtype=None, validation=False: fake)


def test_cli_compare_and_prune(tmp_path, monkeypatch, capsys):
    _mnist_like(monkeypatch)
    common = ["--hidden", "10,8", "--batch-size", "32", "--results", str(tmp_path)]
    assert main(["compare", "illconditioned", "--decays", "1,2", "--rank", "3", "--epochs", "1",
                 *common]) == 0
    rows = read_rows(tmp_path / "mnist_illconditioned.csv")
    assert {r["level"] for r in rows} == {"1", "2"} and {r["ranks"] for r in rows} == {"3|3"}
    capsys.readouterr()
    assert main(["compare", "methods", "--decays", "1", *common]) == 2
    assert "not options of compare methods" in capsys.readouterr().err
    dense = tmp_path / "dense"
    train(TrainConfig(sizes=[784, 10, 8, 10], epochs=1, batch_size=32, out=str(dense)),
          log=quiet)
    assert main(["prune", str(dense), "--ranks", "2,2"]) == 0
    out = capsys.readouterr().out
    assert "ranks 2|2" in out and "test acc" in out
    assert main(["prune", str(dense), "--tau", "0.5", "--out", str(tmp_path / "p")]) == 0
    with open(tmp_path / "p" / "history.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0"]
    assert main(["prune", str(dense)]) == 2
    assert "exactly one of ranks and prune_tau" in capsys.readouterr().err


def test_lenet5_illconditioned_writes_its_own_table_from_one_start(tmp_path):
    """options {"arch": "lenet5"}: the table lenet5_illconditioned.csv and its runs folder (the
    MLP's mnist_illconditioned.csv is left alone), ranks capped per layer, the same start for
    DLRT and vanilla."""
    rng = np.random.default_rng(0)
    X, y = rng.random((80, 784)), rng.integers(0, 10, 80)
    images = split_validation(Dataset(X[:64], y[:64], X[64:], y[64:], "noise",
                                      "made up in test_compare.py"), 16)
    (tmp_path / "mnist_illconditioned.csv").write_text("the MLP's table\n")
    path = compare_illconditioned(decays=(10.0,), rank=3, epochs=1,
                                  options={"arch": "lenet5", "batch_size": 32, "dtype": "float64"},
                                  results_dir=tmp_path, data=images, log=quiet)
    assert path == tmp_path / "lenet5_illconditioned.csv"
    assert (tmp_path / "mnist_illconditioned.csv").read_text() == "the MLP's table\n"
    rows = read_rows(path)
    assert [(r["method"], r["epoch"]) for r in rows] == [
        ("fixed", "0"), ("fixed", "1"), ("vanilla", "0"), ("vanilla", "1")]
    assert {r["run"] for r in rows} == {"lenet5_illconditioned_runs/fixed-decay-10",
                                        "lenet5_illconditioned_runs/vanilla-decay-10"}
    assert all(r["ranks"] == "3|3|3" and r["eval_params"] == str(3 * (45 + 550 + 1300) + 5000)
               for r in rows)
    assert rows[0]["test_loss"][:12] == rows[2]["test_loss"][:12]


def test_parallel_comparison_runs_both_steps_per_seed_and_tau(tmp_path, monkeypatch):
    """compare parallel: per seed and tau an adaptive and a parallel run with the same
    settings; the table has the seconds of every epoch and the load of the machine (from the
    run's load.json, kept when the finished run is only read again); the CLI writes it."""
    path = compare_parallel(taus=(0.1,), epochs=2, seeds=(0, 1), options=OPTIONS,
                            results_dir=tmp_path, data=DATA, log=quiet)
    assert path == tmp_path / "mnist_parallel.csv"
    rows = read_rows(path)
    assert list(rows[0]) == list(PARALLEL_COLUMNS)
    assert [(r["seed"], r["method"], r["epoch"]) for r in rows] == [
        (s, m, e) for s in "01" for m in ("adaptive", "parallel") for e in "12"]
    assert all(float(r["seconds"]) > 0 and float(r["load_start"]) >= 0 for r in rows)
    for r in rows:
        run = json.loads((tmp_path / r["run"] / "run.json").read_text())
        config = flat_options(run["config"])
        assert config["method"] == r["method"] and config["tau"] == 0.1
        assert all(s["threads"]["requested"] == 1 for s in sessions_of(run))
    again = read_rows(compare_parallel(taus=(0.1,), epochs=2, seeds=(0, 1), options=OPTIONS,
                                       results_dir=tmp_path, data=DATA, log=quiet))
    assert again == rows                      # read, not retrained: same seconds and load
    _mnist_like(monkeypatch)
    assert main(["compare", "parallel", "--taus", "0.2", "--seeds", "0", "--epochs", "1",
                 "--hidden", "10,8", "--batch-size", "32", "--results", str(tmp_path)]) == 0
    assert {r["method"] for r in read_rows(tmp_path / "mnist_parallel.csv")} == {
        "adaptive", "parallel"}


def test_fashion_mnist_tables_have_their_own_names(tmp_path):
    """A sweep or comparison on Fashion-MNIST never writes into an MNIST table."""
    from lowrank_ref.training.compare import table_name_for
    from lowrank_ref.training.sweep import SWEEP_NAMES
    assert table_name_for(None, {"dataset": "fashion-mnist"}, "illconditioned") == \
        "fashion_illconditioned.csv"
    assert table_name_for(None, {"dataset": "fashion-mnist", "arch": "lenet5"}, "parallel") == \
        "fashion_lenet5_parallel.csv"
    assert table_name_for(None, {"arch": "lenet5"}, "parallel") == "lenet5_parallel.csv"
    from lowrank_ref.training import sweep
    base = TrainConfig(method="adaptive", tau=0.3, dataset="fashion-mnist", sizes=[12, 8, 4],
                       rank=3, epochs=1, batch_size=64)
    table = sweep([0.3], base, results_dir=tmp_path, data=DATA, log=quiet)
    assert table == tmp_path / "fashion_dense_table.csv"
    assert (tmp_path / "fashion_runs" / "tau-0.3" / "run.json").exists()
    names = [n for pair in SWEEP_NAMES.values() for n in pair]
    assert len(set(names)) == len(names)
    assert all(n.startswith("fashion") for (ds, _), pair in SWEEP_NAMES.items()
               if ds == "fashion-mnist" for n in pair)
