"""The project's figures: the integrator experiments, the MNIST runs and the timing.

:func:`make_figures` (the ``figures`` command of ``python -m lowrank_ref``) computes or reads
everything and writes the PNG files. The modules:

* :mod:`~lowrank_ref.figures.integrator_experiments` -- the numerical experiments behind the
  integrator figures (numbers only, no plotting);
* :mod:`~lowrank_ref.figures.high_order_experiments` -- those of the second- and
  higher-order integrators;
* :mod:`~lowrank_ref.figures.integrator_plots` -- convergence, robustness, higher orders;
* :mod:`~lowrank_ref.figures.mnist_plots` -- accuracy against compression beside the paper's
  table, ranks per epoch;
* :mod:`~lowrank_ref.figures.lenet5_plots` -- the LeNet5 table: the published numbers, their
  parameter counts, accuracy against compression;
* :mod:`~lowrank_ref.figures.timing_plots` -- step time against rank from the benchmark JSON;
* :mod:`~lowrank_ref.figures.comparison_plots` -- the paper's comparisons (methods against
  compression, the ill-conditioning experiment) from the tables of ``compare``;
* :mod:`~lowrank_ref.figures.style` -- a pyplot-free Figure and saving;
* :mod:`~lowrank_ref.figures.display` -- :func:`show`, how the tutorials show a figure (the
  one place that uses ``matplotlib.pyplot``, imported when it is called).

This subpackage is the only part of :mod:`lowrank_ref` that imports matplotlib.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from ..threads import DEFAULT_THREADS, blas_threads
from .integrator_plots import (plot_integrator_convergence, plot_integrator_high_order,
                               plot_integrator_robustness)
from .mnist_plots import (PAPER_MNIST_DENSE_ACC, PAPER_MNIST_TABLE, PRODUCER, RUN_NAME_COLUMNS,
                          RUNS_DIR_NAME, TABLE_NAME, expected_history, history_for,
                          plot_accuracy_vs_compression, plot_rank_evolution, read_history,
                          read_table)
from .lenet5_plots import (LENET5_TABLE_NAME, PAPER_LENET5_DENSE, PAPER_LENET5_TABLE,
                           plot_lenet5_accuracy_vs_compression, read_lenet5_table)
from .timing_plots import TIMING_JSON, TIMING_PRODUCER, plot_timing_vs_rank
from .display import show
from .comparison_plots import (COMPARISON_TABLE, ILLCONDITIONED_TABLE,
                               LENET5_ILLCONDITIONED_TABLE, plot_illconditioned,
                               plot_methods_vs_compression, read_comparison)

__all__ = ["make_figures", "show", "PAPER_MNIST_TABLE", "PAPER_MNIST_DENSE_ACC", "TABLE_NAME",
           "RUNS_DIR_NAME", "RUN_NAME_COLUMNS", "TIMING_JSON", "plot_integrator_convergence",
           "plot_integrator_robustness", "plot_integrator_high_order",
           "plot_accuracy_vs_compression", "plot_rank_evolution", "plot_timing_vs_rank",
           "read_table", "read_history", "plot_methods_vs_compression", "plot_illconditioned",
           "PAPER_LENET5_TABLE", "PAPER_LENET5_DENSE", "LENET5_TABLE_NAME",
           "plot_lenet5_accuracy_vs_compression", "read_lenet5_table", "FIGURE_GROUPS"]

#: The groups of figures ``make_figures(only=...)`` draws.
FIGURE_GROUPS = ("integrators", "mnist", "lenet5", "timing", "comparison")


def make_figures(only: Optional[str] = None, fast: bool = False, out_dir="figures",
                 results_dir="results", timing_json=None,
                 threads: Optional[int] = DEFAULT_THREADS) -> List[str]:
    """Write the project's figures (PNG) to ``out_dir``; one line printed per figure.

    * ``only="integrators"`` (or None): computes
      :func:`~lowrank_ref.figures.integrator_experiments.integrator_convergence` and
      :func:`~lowrank_ref.figures.integrator_experiments.integrator_robustness` (``fast`` selects their tiny
      sizes) and writes ``integrators_convergence.png`` and ``integrators_robustness.png``;
      then :func:`~lowrank_ref.figures.high_order_experiments.integrator_high_order` and
      ``integrators_high_order.png``.
    * ``only="mnist"`` (or None): reads ``results_dir/mnist_dense_table.csv`` and the
      ``history.csv`` of the first and the last low-rank table row that have one, and
      writes ``mnist_accuracy_vs_compression.png`` and ``mnist_rank_evolution.png``. A
      row's run is ``results_dir/mnist_runs/<run>/history.csv`` where ``<run>`` is the
      last path component of its first non-empty :data:`RUN_NAME_COLUMNS` column; a
      table without such a column is matched by ``tau`` against the ``config.tau`` of
      each ``results_dir/mnist_runs/*/run.json``.

    * ``only="lenet5"`` (or None): reads ``results_dir/mnist_lenet5_table.csv`` (written by
      ``python -m lowrank_ref sweep --arch lenet5``) and writes
      ``lenet5_accuracy_vs_compression.png``.
    * ``only="timing"`` (or None): redraws ``timing_vs_rank.png`` from ``timing_json``
      (default :data:`TIMING_JSON`, written by ``benchmarks/bench_rank_sweep.py``; the
      timing itself is not rerun).
    * ``only="comparison"`` (or None): reads ``results_dir/mnist_comparison.csv`` and
      ``results_dir/mnist_illconditioned.csv`` (written by ``python -m lowrank_ref compare``)
      and writes ``mnist_methods_vs_compression.png`` and ``mnist_illconditioned.png``;
      if ``results_dir/lenet5_illconditioned.csv`` exists (``compare illconditioned --arch
      lenet5``), also ``lenet5_illconditioned.png``.

    The MNIST and timing inputs are checked before anything is computed or written.

    Parameters
    ----------
    only : {None, "integrators", "mnist", "lenet5", "timing", "comparison"}
    fast : bool, default False
    out_dir : str or path-like, default "figures"
    results_dir : str or path-like, default "results"
    threads : int or None, default 1
        BLAS threads for the integrator experiments (:func:`lowrank_ref.threads.blas_threads`).

    Returns
    -------
    list of str
        The paths written.

    Raises
    ------
    ValueError
        ``only`` not one of the above, ``out_dir`` an existing file.
    FileNotFoundError
        A results file is missing (the message names it and the command that writes it).
    """
    if only is not None and only not in FIGURE_GROUPS:
        raise ValueError(f"only must be None or one of {FIGURE_GROUPS}, got {only!r}")
    out_dir, results_dir = Path(out_dir), Path(results_dir)
    if out_dir.exists() and not out_dir.is_dir():     # before minutes of computation
        raise ValueError(f"out_dir must be a folder (created if missing), got the file {out_dir}")
    written: List[str] = []

    def done(p):
        written.append(p)
        print(f"wrote {p}")

    if only in (None, "mnist"):
        # check the inputs before anything is computed or written
        table_csv = results_dir / TABLE_NAME
        table = read_table(table_csv)
        runs_dir = results_dir / RUNS_DIR_NAME
        found = [(r, history_for(r, runs_dir, results_dir)) for r in table["rows"]]
        found = [(r, p) for r, p in found if p is not None]
        if not found:
            raise FileNotFoundError(
                f"{expected_history(table['rows'][0], runs_dir)} not found (no run of "
                f"{table_csv} has a history.csv under {runs_dir}): the runs are written by "
                f"{PRODUCER}")
        chosen = [found[0]] if len(found) == 1 else [found[0], found[-1]]
    if only in (None, "lenet5"):
        lenet5_csv = results_dir / LENET5_TABLE_NAME
        read_lenet5_table(lenet5_csv)                 # checked before anything is written
    if only in (None, "timing"):
        timing_json = Path(timing_json if timing_json is not None else TIMING_JSON)
        if not timing_json.is_file():
            raise FileNotFoundError(f"{timing_json} not found: it is written by "
                                    f"{TIMING_PRODUCER}")
    if only in (None, "comparison"):
        read_comparison(results_dir / COMPARISON_TABLE)
        read_comparison(results_dir / ILLCONDITIONED_TABLE)
        lenet5_ill = results_dir / LENET5_ILLCONDITIONED_TABLE
        if lenet5_ill.exists():
            read_comparison(lenet5_ill)
    if only in (None, "integrators"):
        from .high_order_experiments import integrator_high_order
        from .integrator_experiments import integrator_convergence, integrator_robustness
        with blas_threads(threads):
            convergence = integrator_convergence(fast=fast)
            robustness = integrator_robustness(fast=fast)
            high_order = integrator_high_order(fast=fast)
        done(plot_integrator_convergence(convergence, out_dir / "integrators_convergence.png"))
        done(plot_integrator_robustness(robustness, out_dir / "integrators_robustness.png"))
        done(plot_integrator_high_order(high_order, out_dir / "integrators_high_order.png"))
    if only in (None, "mnist"):
        done(plot_accuracy_vs_compression(table_csv,
                                          out_dir / "mnist_accuracy_vs_compression.png"))
        done(plot_rank_evolution({f"τ = {r['tau']:g}": p for r, p in chosen},
                                 out_dir / "mnist_rank_evolution.png"))
    if only in (None, "lenet5"):
        done(plot_lenet5_accuracy_vs_compression(
            lenet5_csv, out_dir / "lenet5_accuracy_vs_compression.png"))
    if only in (None, "timing"):
        done(plot_timing_vs_rank(timing_json, out_dir / "timing_vs_rank.png"))
    if only in (None, "comparison"):
        done(plot_methods_vs_compression(results_dir / COMPARISON_TABLE,
                                         out_dir / "mnist_methods_vs_compression.png"))
        done(plot_illconditioned(results_dir / ILLCONDITIONED_TABLE,
                                 out_dir / "mnist_illconditioned.png"))
        if lenet5_ill.exists():
            done(plot_illconditioned(lenet5_ill, out_dir / "lenet5_illconditioned.png",
                                     title="LeNet5 on MNIST, three low-rank layers"))
    return written
