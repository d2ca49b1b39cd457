"""Shared drawing helpers of the figures: a pyplot-free Figure, saving, order labels.

Only files are written: the figures are :class:`matplotlib.figure.Figure` objects saved
with ``Figure.savefig`` (the Agg renderer), without ``matplotlib.pyplot``, so no global
backend is selected or changed and no window is ever opened.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["new_figure", "save", "order_label"]


def new_figure(figsize):
    """A pyplot-free Figure (Agg renders it on ``savefig``)."""
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, layout="constrained")


def save(fig, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, format="png")
    return str(path)


def order_label(p: int) -> str:
    return "O(h)" if p == 1 else f"O(h$^{p}$)"
