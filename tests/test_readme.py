"""The README's commands are the ones CI and new users run: keep them true."""
import pathlib
import re

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


def test_readme_mentions_every_committed_figure():
    _, text = _readme_commands()
    for png in sorted((ROOT / "figures").glob("*.png")):
        assert f"figures/{png.name}" in text, f"README does not show figures/{png.name}"


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
