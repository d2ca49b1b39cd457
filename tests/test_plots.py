"""Tests of lowrank_ref.figures (fast mode, files in tmp_path).

The integrator experiments must show the orders of [LO14], [CL22], [CKL22], [CKL24], [CEKL24],
[NR25] and the robustness of BUG [CL22] against the factor ODEs of [KL07]; every figure must be a real,
non-empty PNG; the MNIST figures are drawn from small made-up results written here.
"""
import csv
import json

import numpy as np
import pytest

from lowrank_ref import figures as plots
from lowrank_ref.figures import (PAPER_MNIST_TABLE, make_figures, plot_rank_evolution,
                                 read_table)
from lowrank_ref.figures.high_order_experiments import HIGH_ORDER_EXPECTED, integrator_high_order
from lowrank_ref.figures.integrator_experiments import (EXPECTED_ORDER,
                                                        integrator_convergence,
                                                        integrator_robustness)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 5_000


def assert_png(path):
    with open(path, "rb") as fh:
        data = fh.read()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > MIN_PNG_BYTES, (path, len(data))


# --------------------------------------------------------------------------- experiments
@pytest.fixture(scope="module")
def convergence():
    return integrator_convergence(fast=True)


@pytest.fixture(scope="module")
def robustness():
    return integrator_robustness(fast=True)


def test_convergence_orders_fast(convergence):
    d = convergence
    assert set(d["slopes"]) == set(EXPECTED_ORDER)
    for name, p in EXPECTED_ORDER.items():
        h, e = d["h"][name], d["errors"][name]
        assert h.shape == e.shape and h.size >= 3
        assert np.all(np.isfinite(e)) and np.all(e > 0)
        assert np.all(np.diff(e) < 0), (name, e)          # h halves -> error decreases
        lo, hi = (0.8, 1.3) if p == 1 else (1.7, 2.4)
        assert lo <= d["slopes"][name] <= hi, (name, d["slopes"][name], e)
        assert d["problem"][name] in d["problems"]


def test_robustness_fast(robustness):
    d = robustness
    bug, naive, best = d["errors"]["bug"], d["errors"]["naive"], d["best"]
    assert np.all(np.diff(d["sigma_min"]) < 0)             # sigma_r spans decades
    assert d["sigma_min"][0] / d["sigma_min"][-1] >= 1e3
    assert np.all(best <= bug) and np.all(bug <= 1.5 * best)    # robust: ~ best error
    assert naive[0] <= 1.5 * best[0]                        # fine for a large sigma_r
    assert d["diverged"][-1] or naive[-1] >= 10 * best[-1]  # ... not for a tiny one
    assert np.array_equal(d["diverged"], ~np.isfinite(naive))
    assert d["diverged"].any()                              # the figure shows "diverged"


@pytest.fixture(scope="module")
def high_order():
    return integrator_high_order(fast=True)


def test_high_order_orders_and_robustness_fast(high_order):
    """The figure's numbers in fast mode (h = 0.2, 0.1, 0.05), against the slopes of
    ``tests/test_high_order_orders.py``: on the rank-preserving problem midpoint 3r, the
    second-order parallel BUG and RK-BUG have the orders 2, 2, 2, 3, 4 and BUG 1; on the
    rank-growing problem with the source outside the initial bases every higher-order
    method but the parallel one is about second order and the parallel BUGs first order;
    robustness: no error grows as sigma_r goes down to 1e-12 (the clamped RK4-BUG is drawn
    for contrast)."""
    pres, grow = high_order["preserving"], high_order["growing_outside"]
    for name in ("midpoint_3r", "parallel_2", "rk_heun", "rk_rk3", "rk_rk4", "bug"):
        e = pres["errors"][name]
        assert e.shape == pres["h"].shape and np.all(np.diff(e) < 0), (name, e)
        p = HIGH_ORDER_EXPECTED[name]
        assert abs(pres["slopes"][name] - p) <= 0.25, (name, pres["slopes"][name])
        assert pres["ranks"][name] == 4
    for name in ("midpoint_4r", "midpoint_3r", "rk_heun", "rk_rk3", "rk_rk4"):
        assert 1.7 <= grow["slopes"][name] <= 2.3, (name, grow["slopes"][name])
    for name in ("parallel_bug", "parallel_2"):
        assert 0.7 <= grow["slopes"][name] <= 1.3, (name, grow["slopes"][name])
    assert min(grow["ranks"].values()) > 10                        # the rank grew from 3
    rob = high_order["robustness"]
    assert np.all(np.diff(rob["sigma_r"]) < 0) and rob["sigma_r"][-1] <= 1e-12
    for name in ("midpoint_4r", "midpoint_3r", "parallel_2", "rk_rk3", "rk_rk4"):
        e = rob["errors"][name]
        assert np.all(e <= 1.25 * e[0]), (name, e)


@pytest.mark.parametrize("fn", [integrator_convergence, integrator_robustness,
                                integrator_high_order])
def test_experiments_bad_arguments(fn):
    with pytest.raises(TypeError, match="fast"):
        fn(fast="yes")
    with pytest.raises(TypeError, match="seed"):
        fn(fast=True, seed=1.5)


# --------------------------------------------------------------------------- integrator figures
def test_integrator_figures(tmp_path, capsys):
    paths = make_figures(only="integrators", fast=True, out_dir=tmp_path / "figs")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["integrators_convergence.png",
                                                     "integrators_robustness.png",
                                                     "integrators_high_order.png"]
    for p in paths:
        assert_png(p)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"wrote {p}" for p in paths]


# --------------------------------------------------------------------------- MNIST figures
TABLE = [
    # method, tau, test_acc (%), eval_cr (%), ranks, run
    ("dense", "", 98.40, 0.0, "", "dense"),
    ("adaptive", 0.05, 98.30, 60.1, "80|100|110|115", "adaptive-tau0.05"),
    ("adaptive", 0.11, 97.90, 86.0, "28|41|36|39", "adaptive-tau0.11"),
    ("adaptive", 0.17, 96.70, 92.0, "14|22|23|21", "adaptive-tau0.17"),
]


def write_history(path, final_ranks, finetune=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["epoch", "phase", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
            "ranks", "eval_params", "train_params", "eval_cr", "train_cr", "seconds"]
    start = np.array([150, 150, 150, 150])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        n = 5
        for e in range(1, n + finetune + 1):
            t = min(e, n) / n
            ranks = np.round(start + t * (np.array(final_ranks) - start)).astype(int)
            w.writerow([e, "train" if e <= n else "finetune", 0.1, 0.3, 0.9, 0.3,
                        0.9 + 0.01 * min(e, n), "|".join(map(str, ranks)), 1, 1, 0.8, 0.6,
                        1.0])


def write_results(root, with_run_column=True, histories=(1, 3)):
    root.mkdir(parents=True, exist_ok=True)
    cols = ["method", "tau", "test_acc", "eval_cr", "ranks"] + (
        ["run"] if with_run_column else [])
    with open(root / "mnist_dense_table.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in TABLE:
            w.writerow(row if with_run_column else row[:-1])
    for i in histories:
        method, tau, _, _, ranks, run = TABLE[i]
        d = root / "mnist_runs" / run
        write_history(d / "history.csv", [int(r) for r in ranks.split("|")])
        (d / "run.json").write_text(json.dumps({"config": {"method": method, "tau": tau}}))


@pytest.mark.parametrize("with_run_column", [True, False])
def test_mnist_figures_from_made_up_results(tmp_path, capsys, with_run_column):
    write_results(tmp_path / "results", with_run_column)
    paths = make_figures(only="mnist", out_dir=tmp_path / "figs",
                         results_dir=tmp_path / "results")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["mnist_accuracy_vs_compression.png",
                                                     "mnist_rank_evolution.png"]
    for p in paths:
        assert_png(p)
    assert capsys.readouterr().out.splitlines() == [f"wrote {p}" for p in paths]


def test_read_table_percent_and_fractions(tmp_path):
    write_results(tmp_path)
    t = read_table(tmp_path / "mnist_dense_table.csv")
    assert [r["tau"] for r in t["rows"]] == [0.05, 0.11, 0.17]
    assert t["rows"][0]["ranks"] == [80, 100, 110, 115]
    assert t["rows"][0]["run"] == "adaptive-tau0.05"
    assert t["dense"]["test_acc"] == pytest.approx(98.40)
    # the same table with fractions instead of percent
    p = tmp_path / "fractions.csv"
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tau", "test_acc", "eval_cr", "ranks"])
        w.writerow([0.05, 0.983, 0.601, "80|100|110|115"])
    t = read_table(p)
    assert t["rows"][0]["test_acc"] == pytest.approx(98.3)
    assert t["rows"][0]["eval_cr"] == pytest.approx(60.1)
    assert t["dense"] is None


def test_paper_table_is_the_published_one():
    assert len(PAPER_MNIST_TABLE) == 8
    assert PAPER_MNIST_TABLE[0] == {"tau": 0.03, "test_acc": 98.49,
                                    "ranks": (176, 170, 171, 174), "eval_cr": 35.0}
    assert PAPER_MNIST_TABLE[1] == {"tau": 0.05, "test_acc": 98.56,
                                    "ranks": (81, 104, 111, 117), "eval_cr": 61.6}
    assert [p["tau"] for p in PAPER_MNIST_TABLE] == [0.03, 0.05, 0.07, 0.09, 0.11, 0.13,
                                                     0.15, 0.17]
    assert plots.PAPER_MNIST_DENSE_ACC == 98.54


# --------------------------------------------------------------------------- missing files
def test_missing_table_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        make_figures(only="mnist", out_dir=tmp_path / "figs", results_dir=tmp_path / "none")
    msg = str(info.value)
    assert "mnist_dense_table.csv" in msg and "python -m lowrank_ref sweep" in msg
    assert "docs/reproduce/" in msg
    assert not (tmp_path / "figs").exists()             # nothing written


def test_missing_history_is_a_clear_error(tmp_path):
    write_results(tmp_path / "results", histories=())
    with pytest.raises(FileNotFoundError) as info:
        make_figures(only="mnist", out_dir=tmp_path / "figs",
                     results_dir=tmp_path / "results")
    msg = str(info.value)
    assert "mnist_runs/adaptive-tau0.05/history.csv" in msg.replace("\\", "/")
    assert "python -m lowrank_ref sweep" in msg and "docs/reproduce/" in msg


def test_bad_only_and_dense_history(tmp_path):
    with pytest.raises(ValueError, match="only"):
        make_figures(only="everything")
    p = tmp_path / "dense" / "history.csv"
    p.parent.mkdir()
    p.write_text("epoch,phase,test_acc,ranks\n1,train,0.97,\n")
    with pytest.raises(ValueError, match="no ranks"):
        plot_rank_evolution({"dense": p}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="history_csvs"):
        plot_rank_evolution({}, tmp_path / "x.png")


def test_timing_figure_is_redrawn_from_the_benchmark_numbers(tmp_path):
    """figures --only timing redraws figures/timing_vs_rank.png from the committed JSON of
    benchmarks/bench_rank_sweep.py (made up here), and says which command writes it."""
    import json
    from lowrank_ref.figures import make_figures
    rows = [{"method": f"{kind}-{r}", "rank": r, "ms": ms} for kind, pts in
            (("fixed", [(8, 20.0), (64, 60.0), (256, 300.0)]),
             ("adaptive1", [(8, 16.0), (64, 70.0), (256, 550.0)])) for r, ms in pts]
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({"dense_ms": 235.0, "baseline_ms": 231.0, "rows": rows,
                                "args": {"width": 2048, "batch_size": 256}}))
    out = make_figures(only="timing", out_dir=tmp_path, timing_json=path)
    png = (tmp_path / "timing_vs_rank.png").read_bytes()
    assert out == [str(tmp_path / "timing_vs_rank.png")] and png.startswith(b"\x89PNG")
    with pytest.raises(FileNotFoundError, match="bench_rank_sweep.py"):
        make_figures(only="timing", out_dir=tmp_path, timing_json=tmp_path / "missing.json")


# --------------------------------------------------------------------------- the LeNet5 figure
def test_lenet5_figure_from_a_made_up_table(tmp_path, capsys):
    from lowrank_ref.figures import read_lenet5_table
    root = tmp_path / "results"
    root.mkdir()
    rows = [("dense", "", "99.10", "", "0.0", 0), ("dense", "", "99.00", "", "0.0", 1),
            ("adaptive", "0.2", "98.50", "8|12|15", "92.6", 0),
            ("adaptive", "0.2", "98.30", "8|13|15", "92.5", 1),
            ("adaptive", "0.4", "97.00", "3|5|6", "97.0", 0)]
    with open(root / "mnist_lenet5_table.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "tau", "test_acc", "ranks", "eval_cr", "seed"])
        w.writerows(rows)
    t = read_lenet5_table(root / "mnist_lenet5_table.csv")
    assert [g["tau"] for g in t["rows"]] == [0.2, 0.4]
    assert t["rows"][0]["mean"] == pytest.approx(98.4) and t["rows"][0]["seeds"] == [0, 1]
    assert t["rows"][0]["std"] == pytest.approx(np.std([98.5, 98.3], ddof=1))
    assert t["rows"][1]["std"] == 0.0 and t["dense"]["mean"] == pytest.approx(99.05)
    paths = make_figures(only="lenet5", out_dir=tmp_path / "figs", results_dir=root)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["lenet5_accuracy_vs_compression.png"]
    assert_png(paths[0])
    with pytest.raises(FileNotFoundError, match="sweep --arch lenet5"):
        make_figures(only="lenet5", out_dir=tmp_path / "figs", results_dir=tmp_path / "none")


def test_comparison_figures_draw_lenet5s_only_when_its_table_exists(tmp_path):
    """figures --only comparison: the two MLP figures always, lenet5_illconditioned.png when
    results/lenet5_illconditioned.csv exists (compare illconditioned --arch lenet5)."""
    root = tmp_path / "results"
    root.mkdir()
    head = "level,method,epoch,eval_cr,test_acc"
    ill = [head] + [f"{d},{m},{e},90.0,{10 + 8 * e + (5 if m == 'fixed' else 0)}"
                    for d in (1, 10) for m in ("fixed", "vanilla") for e in range(3)]
    (root / "mnist_illconditioned.csv").write_text("\n".join(ill) + "\n")
    methods = [head] + [f"0.1,{m},5,90.0,97.0" for m in ("adaptive", "fixed", "vanilla")]
    (root / "mnist_comparison.csv").write_text("\n".join(methods) + "\n")
    names = lambda paths: [p.rsplit("/", 1)[-1] for p in paths]  # noqa: E731
    paths = make_figures(only="comparison", out_dir=tmp_path / "figs", results_dir=root)
    assert names(paths) == ["mnist_methods_vs_compression.png", "mnist_illconditioned.png"]
    (root / "lenet5_illconditioned.csv").write_text("\n".join(ill) + "\n")
    paths = make_figures(only="comparison", out_dir=tmp_path / "figs", results_dir=root)
    assert names(paths) == ["mnist_methods_vs_compression.png", "mnist_illconditioned.png",
                            "lenet5_illconditioned.png"]
    assert_png(paths[-1])
