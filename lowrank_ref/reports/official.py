"""The official code's LeNet5 experiment, DLRT against vanilla ``U Vᵀ`` factors, as its plot
averages it: ten runs per method and decay.

The official repository (``COMPiLELab/DLRT-Net``) commits, per decay of the starting singular
values, ten runs of each method (``UV_vanilla/dlrt_factorization_run.py``,
``UV_vanilla/vanilla_factorization_run.py``; fixed rank 20, plain SGD, lr 0.01): the folder
``UV_vanilla/results_vanilla/cv_vanilla`` holds decay 10 (files ``..._lenet_exp10.csv``, the
ones its ``plot_results.py`` averages for the published figure), ``cv_vanilla_exp2`` decay 2
and ``cv_vanilla_baseline`` decay 1. Each file has one row before training and one per epoch;
the plot puts row ``k`` (counted from 0, the row before training first) at epoch ``k`` and
averages the ten runs' ``test_accuracy(%)`` row by row (band: the population standard
deviation). :func:`official_means` computes those means from a checkout of the official
repository; ``python -m lowrank_ref.reports.official CHECKOUT`` writes them to
``results/official_lenet5_vanilla.csv`` (committed), which the comparisons page quotes.
"""
from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from .._validate import check_int, check_path

__all__ = ["OFFICIAL_REPOSITORY", "OFFICIAL_EXPERIMENTS", "OFFICIAL_COLUMNS", "official_means",
           "write_official_means", "main"]

OFFICIAL_REPOSITORY = "COMPiLELab/DLRT-Net"
#: (folder under UV_vanilla/results_vanilla, decay, file suffix) of the official runs.
OFFICIAL_EXPERIMENTS = (("cv_vanilla_baseline", 1, "baseline"), ("cv_vanilla_exp2", 2, "exp2"),
                        ("cv_vanilla", 10, "exp10"))
OFFICIAL_COLUMNS = ("folder", "decay", "method", "epoch", "runs", "mean_test_acc",
                    "std_test_acc", "min_test_acc", "max_test_acc", "files", "repository",
                    "commit")
_FOLDER = "UV_vanilla/results_vanilla"


def _test_accuracies(path: Path) -> List[float]:
    with open(path, newline="") as fh:
        return [float(r["test_accuracy(%)"]) for r in csv.DictReader(fh)]


def official_means(checkout, epochs=(0, 1, 10), runs: int = 10,
                   commit: Optional[str] = None) -> List[dict]:
    """Per official experiment, method and epoch: the mean of the ten runs' test accuracy.

    Parameters
    ----------
    checkout : path-like
        A checkout of the official repository (its ``UV_vanilla/results_vanilla``).
    epochs : sequence of int
        Rows of the files (0: before training; ``k``: after ``k`` epochs, as plotted).
    runs : int
        Runs per method and decay (files ``_running_data_<method><i><method>_lenet_<suffix>.csv``,
        ``i < runs``).
    commit : str, optional
        The checkout's commit (None: asked from git, "unknown" without one).

    Returns
    -------
    list of dict
        One per (experiment, method, epoch) with :data:`OFFICIAL_COLUMNS` (accuracies in %,
        the standard deviation over the runs with divisor ``runs`` as the plot computes it).

    Raises
    ------
    FileNotFoundError
        A run's file is missing.
    TypeError, ValueError
        ``checkout`` not a path, ``runs`` not an int >= 1.
    """
    runs = check_int(runs, "runs", low=1)
    checkout = Path(check_path(checkout, "checkout"))
    if commit is None:
        try:
            commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                                    capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown"
    out = []
    for folder, decay, suffix in OFFICIAL_EXPERIMENTS:
        for method in ("dlrt", "vanilla"):
            pattern = f"{_FOLDER}/{folder}/_running_data_{method}<i>{method}_lenet_{suffix}.csv"
            series = []
            for i in range(runs):
                path = checkout / pattern.replace("<i>", str(i))
                if not path.is_file():
                    raise FileNotFoundError(f"{path} not found: checkout must be a checkout of "
                                            f"{OFFICIAL_REPOSITORY}")
                series.append(_test_accuracies(path))
            for epoch in epochs:
                values = [s[epoch] for s in series]
                m = sum(values) / len(values)
                out.append({"folder": folder, "decay": decay, "method": method, "epoch": epoch,
                            "runs": runs, "mean_test_acc": f"{m:.2f}",
                            "std_test_acc": f"{math.sqrt(sum((v - m) ** 2 for v in values) / len(values)):.2f}",
                            "min_test_acc": f"{min(values):.2f}",
                            "max_test_acc": f"{max(values):.2f}",
                            "files": pattern.replace("<i>", f"[0-{runs - 1}]"),
                            "repository": OFFICIAL_REPOSITORY, "commit": commit})
    return out


def write_official_means(checkout, path) -> Path:
    """Write :func:`official_means` of ``checkout`` as a CSV to ``path``."""
    rows = official_means(checkout)
    path = Path(path)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, OFFICIAL_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


def main(argv=None) -> int:
    """``python -m lowrank_ref.reports.official CHECKOUT [--out CSV]``."""
    p = argparse.ArgumentParser(prog="python -m lowrank_ref.reports.official",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("checkout", help=f"a checkout of {OFFICIAL_REPOSITORY}")
    p.add_argument("--out", default="results/official_lenet5_vanilla.csv")
    args = p.parse_args(argv)
    try:
        print(f"wrote {write_official_means(args.checkout, args.out)}")
    except (OSError, ValueError, KeyError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0



def official_block(results) -> str:
    """The comparisons page's block quoting the official ten-run means
    (``results/official_lenet5_vanilla.csv``)."""
    from .markdown import read_csv, table
    rows = read_csv(Path(results) / "official_lenet5_vanilla.csv")
    get = {(r["decay"], r["method"], r["epoch"]): r for r in rows}
    decays = sorted({r["decay"] for r in rows}, key=int)

    def cell(decay, method, epoch):
        r = get[decay, method, epoch]
        return f"{r['mean_test_acc']} ± {r['std_test_acc']}"
    body = table(["decay", "folder", "DLRT, 1 epoch", "vanilla, 1 epoch", "DLRT, 10 epochs",
                  "vanilla, 10 epochs"],
                 [[d, f"`{get[d, 'dlrt', '1']['folder']}`", cell(d, "dlrt", "1"),
                   cell(d, "vanilla", "1"), cell(d, "dlrt", "10"), cell(d, "vanilla", "10")]
                  for d in decays])
    first = rows[0]
    return (f"Test accuracy (%) of the official runs, mean ± standard deviation of "
            f"{first['runs']} runs per method and decay, as its plot script averages them "
            f"(`{OFFICIAL_REPOSITORY}` at commit {first['commit'][:7]}, files "
            f"`UV_vanilla/results_vanilla/<folder>/_running_data_<method><i><method>_lenet_"
            f"<suffix>.csv`; computed by `python -m lowrank_ref.reports.official CHECKOUT` "
            f"into `results/official_lenet5_vanilla.csv`):\n\n" + body + "\n\n"
            f"At decay 10, the published plot's curves: DLRT {_pct(get['10', 'dlrt', '1'])} "
            f"against vanilla {_pct(get['10', 'vanilla', '1'])} after one epoch, "
            f"{_pct(get['10', 'dlrt', '10'])} against {_pct(get['10', 'vanilla', '10'])} after "
            f"ten.")


def _pct(row) -> str:
    return f"{float(row['mean_test_acc']):.1f} %"


if __name__ == "__main__":
    sys.exit(main())
