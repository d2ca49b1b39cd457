"""The README's commands are the ones CI and new users run: keep them true."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S), text


def test_ci_runs_the_readme_test_command_verbatim():
    blocks, _ = _readme_commands()
    test_cmds = [b.strip() for b in blocks if "pytest" in b]
    assert len(test_cmds) == 1, f"README must hold exactly one test command, found {test_cmds}"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmds[0] in ci, ".ci/run must run the README test command verbatim"


README_MAX_BYTES = 15 * 1024


def test_readme_is_short():
    """The README is the entry point; everything else lives in the documentation site."""
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md has {size} bytes, more than {README_MAX_BYTES}"


def test_readme_figures_exist_and_every_figure_is_on_the_site():
    """The README shows committed figures only; every committed figure is shown on a page of
    the site (tests/test_docs.py checks those pages name the command that draws it)."""
    _, text = _readme_commands()
    shown = re.findall(r"!\[[^\]]*\]\((figures/[\w.-]+\.png)\)", text)
    assert shown, "the README shows no figure"
    assert all((ROOT / f).exists() for f in shown), shown
    docs = " ".join(p.read_text() for p in (ROOT / "docs").rglob("*.md")
                    if "_build" not in p.parts)
    for png in sorted((ROOT / "figures").glob("*.png")):
        assert f"figures/{png.name})" in docs, f"no page of docs/ shows figures/{png.name}"


def test_readme_links_point_at_files_that_exist():
    _, text = _readme_commands()
    links = [m for m in re.findall(r"\]\(([^)#]+)\)", text) if "://" not in m]
    assert links
    missing = [m for m in links if not (ROOT / m).exists()]
    assert not missing, missing


def test_every_documented_name_imports():
    """Every ``from lowrank_ref... import ...`` / ``import lowrank_ref...`` line of the README's
    Python blocks runs (a documented name that moved or vanished fails here)."""
    text = (ROOT / "README.md").read_text()
    lines = [line.strip() for block in re.findall(r"```python\n(.*?)```", text, flags=re.S)
             for line in block.splitlines()
             if re.match(r"\s*(from lowrank_ref[\w.]* import |import lowrank_ref)", line)]
    assert len(lines) >= 10, lines
    for line in lines:
        exec(compile(line, "README.md", "exec"), {})


@pytest.mark.slow
def test_the_library_example_prints_what_the_readme_says(tmp_path):
    """The README's library example runs (it reads real MNIST) and prints the lines shown
    under it: the same ranks, the error and the accuracy within 2 % and one point."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Library", 1)[1]
    example, shown = re.search(r"```python\n(.*?)```.*?```\n(.*?)```", section, flags=re.S).groups()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got, want = proc.stdout.split(), shown.split()
    assert len(got) == len(want), (proc.stdout, shown)
    for before, g, w in zip([""] + want, got, want):
        if "." not in w:                       # words and ranks: exactly as shown
            assert g == w, (proc.stdout, shown)
        elif before == "accuracy":             # test accuracy within one point
            assert abs(float(g) - float(w)) <= 0.01, (proc.stdout, shown)
        else:                                  # the integrator's error within 2 %
            assert abs(float(g) - float(w)) <= 0.02 * abs(float(w)), (proc.stdout, shown)


def test_the_readme_dense_accuracy_is_the_tables():
    """The README's one number from the reproduction, the dense network's test accuracy, is
    the mean of the dense rows of results/mnist_dense_table.csv (so a new table must change
    it)."""
    import csv
    with open(ROOT / "results" / "mnist_dense_table.csv", newline="") as f:
        dense = [r for r in csv.DictReader(f) if r["method"] == "dense"]
    epochs = {r["epochs"] for r in dense}
    assert len(dense) >= 3 and len(epochs) == 1
    mean = sum(float(r["test_acc"]) for r in dense) / len(dense)
    text = " ".join((ROOT / "README.md").read_text().split())
    assert (f"({mean:.2f} % test accuracy after {epochs.pop()} epochs, mean of the "
            f"{['one', 'two', 'three', 'four', 'five'][len(dense) - 1]} seeds") in text
