"""Showing a tutorial's figure where the reader is, and saving it only on request.

The tutorials (``tutorials/0*.py``) draw with ``matplotlib.pyplot`` and end every figure with
``show(fig, name)``: under the cell in a notebook (and on the documentation site, whose build
runs them as notebooks), in a window when a script runs on a machine with a display, nowhere
on one without. ``LOWRANK_REF_TUTORIAL_OUT=DIR`` also saves the figure as ``DIR/<name>.png``
(the test suite sets it, to check that every figure is drawn).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["show", "SAVE_ENV"]

#: The environment variable naming the folder where :func:`show` also saves the figures.
SAVE_ENV = "LOWRANK_REF_TUTORIAL_OUT"


def show(fig, name: str) -> None:
    """Show ``fig`` (``plt.show()``) and close it; save it first as ``<name>.png`` in the
    folder ``$LOWRANK_REF_TUTORIAL_OUT`` when that variable is set."""
    import matplotlib.pyplot as plt

    folder = os.environ.get(SAVE_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(folder) / f"{name}.png", dpi=110)
    plt.show()
    plt.close(fig)
