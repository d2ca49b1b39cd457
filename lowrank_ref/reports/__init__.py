"""The generated parts of the experiment pages (``docs/reproduce/*.md``).

``python -m lowrank_ref report`` (:func:`write_reports`) reads the committed tables under
``results/`` and rewrites every block ``<!-- report:begin NAME --> ... <!-- report:end NAME -->``
of the pages listed in :data:`PAGES`: the tables, and the sentences that state what holds and
what differs with their numbers. The prose around the blocks is written by hand and kept.
``tests/test_reports.py`` regenerates the pages into a copy and fails if a committed page
differs, so a number on these pages is the one its table gives.

* :mod:`.sweeps` -- the τ sweeps of the fully connected network (MNIST with the paper's
  table and the criterion, Fashion-MNIST);
* :mod:`.comparisons` -- the method comparisons and the ill-conditioned starts;
* :mod:`.lenet5` -- the paper's LeNet5 table, by both parameter counts;
* :mod:`.official` -- the official code's LeNet5 runs as its plot averages them;
* :mod:`.recipe` -- the paper's Adam recipe in two forms;
* :mod:`.markdown` -- the blocks, markdown tables, means and spreads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List

from .markdown import replace_blocks
from .comparisons import comparison_blocks, fashion_illconditioned_block
from .lenet5 import lenet5_blocks
from .recipe import recipe_blocks
from .sweeps import (front_block, sweep_blocks, sweep_lr_block, tuning_block,
                     validation_sweep_block)

__all__ = ["PAGES", "page_blocks", "write_reports"]


def _mnist(results: Path) -> Dict[str, str]:
    return {**sweep_blocks(results, "mnist_dense_table.csv", "mnist_runs", "mnist"),
            "mnist-tuning": tuning_block(results, prefix="lr-"),
            "mnist-tuning-spectrum": tuning_block(results, prefix="spectrum-"),
            "mnist-tuning-front": tuning_block(results, prefix="front-"),
            "mnist-tuning-dense": tuning_block(results, prefix="dense-lr-"),
            "mnist-tuning-pareto": front_block(results),
            "mnist-tuning-front-lr01": tuning_block(results, prefix="atlr01-"),
            "mnist-tuning-pareto-lr01": front_block(results, prefixes=("atlr01-",)),
            "mnist-tuning-sweep": sweep_lr_block(results)}


def _fashion(results: Path) -> Dict[str, str]:
    return {**sweep_blocks(results, "fashion_dense_table.csv", "fashion_runs", "fashion",
                           dataset="fashion-mnist", with_paper=False),
            "fashion-illconditioned": fashion_illconditioned_block(results)}


def _lenet5(results: Path) -> Dict[str, str]:
    return {**lenet5_blocks(results),
            "lenet5-validation": validation_sweep_block(results, "lenet5_validation",
                                                        "mnist_lenet5_table.csv", "lenet5_runs"),
            "lenet5-tuning": tuning_block(results, prefix="lenet5-"),
            "lenet5-tuning-sweep": sweep_lr_block(results, "tuning/lenet5-table-lr-0.1",
                                                  "mnist_lenet5_table.csv",
                                                  "lenet5_validation", "lenet5_runs")}


def _comparisons(results: Path) -> Dict[str, str]:
    # imported here, not at the top: ``python -m lowrank_ref.reports.official`` runs that
    # module as a script, which must not be imported already when the package loads
    from .official import official_block
    return {**comparison_blocks(results), "official-lenet5": official_block(results),
            "comparison-tuning": tuning_block(results, prefix=("vanilla-lr-", "finetune-",
                                                               "equal-budget-"))}


#: Page (under ``docs/reproduce/``) -> the function giving its blocks from ``results/``.
PAGES: Dict[str, Callable[[Path], Dict[str, str]]] = {
    "01_mnist_table.md": _mnist,
    "02_lenet5_table.md": _lenet5,
    "03_comparisons.md": _comparisons,
    "04_paper_recipe.md": recipe_blocks,
    "06_fashion_mnist.md": _fashion,
}


def page_blocks(root=".") -> Dict[str, Dict[str, str]]:
    """Per page of :data:`PAGES`, its generated blocks, from ``root/results``."""
    results = Path(root) / "results"
    return {page: make(results) for page, make in PAGES.items()}


def write_reports(root=".", check: bool = False, log: Callable[[str], None] = print) -> List[str]:
    """Rewrite the generated blocks of the experiment pages of the checkout ``root``.

    Parameters
    ----------
    root : path-like
        The repository (it holds ``results/`` and ``docs/reproduce/``).
    check : bool
        Only compare: write nothing.
    log : callable

    Returns
    -------
    list of str
        The pages (paths under ``docs/reproduce/``) whose text changed (``check``: would change).

    Raises
    ------
    FileNotFoundError
        ``root`` has no ``docs/reproduce`` or a page of :data:`PAGES` is missing.
    ValueError
        A page's blocks do not match its generator's (see
        :func:`~lowrank_ref.reports.markdown.replace_blocks`).
    """
    pages_dir = Path(root) / "docs" / "reproduce"
    if not pages_dir.is_dir():
        raise FileNotFoundError(f"{pages_dir} not found: root must be the repository "
                                f"(with docs/reproduce/ and results/), got {root}")
    changed = []
    for page, blocks in page_blocks(root).items():
        path = pages_dir / page
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (a page of lowrank_ref.reports.PAGES)")
        old = path.read_text()
        new = replace_blocks(old, blocks, page=f"docs/reproduce/{page}")
        if new != old:
            changed.append(f"docs/reproduce/{page}")
            if not check:
                path.write_text(new)
        log(f"{'would change' if check and new != old else 'changed' if new != old else 'unchanged'}"
            f": docs/reproduce/{page}")
    return changed
