"""Generated blocks of a markdown page, markdown tables, and the numbers they show.

A page under ``docs/reproduce/`` mixes hand-written prose with blocks that
``python -m lowrank_ref report`` writes from the committed tables::

    <!-- report:begin NAME -->
    ... generated ...
    <!-- report:end NAME -->

:func:`replace_blocks` rewrites the inside of every block and leaves the rest of the page as
it is; :func:`table` and :func:`spread` format what the blocks show.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

__all__ = ["BEGIN", "END", "block_names", "replace_blocks", "table", "mean", "spread",
           "read_csv", "fmt_list"]

BEGIN = "<!-- report:begin {} -->"
END = "<!-- report:end {} -->"
_BLOCK = re.compile(r"<!-- report:begin ([\w.-]+) -->\n(.*?)<!-- report:end \1 -->", re.S)


def block_names(text: str) -> List[str]:
    """Names of the generated blocks of ``text``, in order.

    >>> block_names("a\\n<!-- report:begin x -->\\nold\\n<!-- report:end x -->\\nb")
    ['x']
    """
    return [m.group(1) for m in _BLOCK.finditer(text)]


def replace_blocks(text: str, blocks: Mapping[str, str], page: str = "page") -> str:
    """``text`` with the inside of each block ``NAME`` replaced by ``blocks[NAME]``.

    Every block of the page must be generated and every generated block must be on the
    page: a block without a generator, or a generator without its block, is a
    ``ValueError`` naming ``page`` (a page never silently keeps a stale block).

    >>> page = "a\\n<!-- report:begin x -->\\nold\\n<!-- report:end x -->\\nb"
    >>> print(replace_blocks(page, {"x": "new"}))
    a
    <!-- report:begin x -->
    new
    <!-- report:end x -->
    b
    """
    found = block_names(text)
    if len(set(found)) != len(found):
        raise ValueError(f"{page}: a generated block appears twice: {found}")
    unknown = sorted(set(found) - set(blocks))
    missing = sorted(set(blocks) - set(found))
    if unknown or missing:
        raise ValueError(f"{page}: blocks on the page without a generator {unknown}, "
                         f"generated blocks missing from the page {missing} (each is "
                         f"{BEGIN.format('NAME')} ... {END.format('NAME')})")

    def fill(m):
        body = blocks[m.group(1)].strip("\n")
        return f"{BEGIN.format(m.group(1))}\n{body}\n{END.format(m.group(1))}"
    return _BLOCK.sub(fill, text)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table.

    >>> print(table(["a", "b"], [[1, "x"]]))
    | a | b |
    |---|---|
    | 1 | x |
    """
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean of a non-empty sequence."""
    values = list(values)
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``"mean (min–max)"``; one value alone is shown as itself.

    >>> spread([98.1, 98.3, 98.2])
    '98.20 (98.10–98.30)'
    >>> spread([97.5], 1)
    '97.5'
    """
    values = list(values)
    m = f"{mean(values):.{digits}f}"
    if len(values) == 1:
        return m
    return f"{m} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def fmt_list(values: Sequence[object], last: str = "and") -> str:
    """``"a, b and c"``.

    >>> fmt_list([0.05, 0.07, 0.09]), fmt_list([1]), fmt_list([])
    ('0.05, 0.07 and 0.09', '1', '')
    """
    values = [str(v) for v in values]
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + f" {last} " + values[-1]


def read_csv(path) -> List[Dict[str, str]]:
    """The rows of a CSV file as dicts (a missing file is a ``FileNotFoundError``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
