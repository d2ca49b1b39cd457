"""The house rules of docs/design.md, section "Architecture", checked on the code as it is.

* the factor type, the truncation and the integrators do not import the autodiff engine or
  matplotlib (a fresh interpreter);
* no module imports a private name from another module;
* no module is longer than the limit, except those argued for in docs/design.md;
* the package's imports form no circle, but for the engine's one lazy import (``autodiff``
  imports ``ops`` when an operator is first used), and nothing in ``training/`` imports
  inside a function (the way a circle is dodged);
* every reference to docs/design.md names a section that exists, no file of the repository
  refers to the planning note the code started from, and every repository path that the
  docs and docstrings mention exists.
"""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lowrank_ref"
DESIGN = ROOT / "docs" / "design.md"
MAX_LINES = 600


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _text_files():
    """The files whose references must resolve: code, tests, tutorials, docs, benchmarks."""
    files = [ROOT / "README.md", ROOT / "setup.cfg"] + sorted((ROOT / "docs").rglob("*.md"))
    for folder in ("lowrank_ref", "tests", "tutorials", "benchmarks"):
        files += sorted((ROOT / folder).rglob("*.py"))
        files += sorted((ROOT / folder).rglob("*.md"))
    return [f for f in files if f.is_file()]


@pytest.mark.parametrize("module", ["lowrank_ref.lowrank", "lowrank_ref.truncation",
                                    "lowrank_ref.integrators", "lowrank_ref.odes"])
def test_mathematics_does_not_import_the_engine_or_matplotlib(module):
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            f"print(sorted(m for m in sys.modules if m.startswith(('lowrank_ref.autodiff', "
            f"'lowrank_ref.ops', 'lowrank_ref.nn', 'matplotlib'))))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.strip()
    assert out == "[]", f"importing {module} imported {out}"


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.endswith("__"):
                        offenders.append(f"{path.relative_to(ROOT)}: from "
                                         f"{'.' * node.level}{node.module or ''} import {alias.name}")
    assert not offenders, offenders


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph():
    """Every import between the package's modules: ``{(importer, imported): [where, ...]}``.

    Explicit imports only, at module level or inside functions (``from .x import y`` is an
    edge to ``.x``, or to the module ``.x.y`` if ``y`` is one); the import of a package's
    ``__init__`` that Python makes before any of its submodules is not an edge.
    """
    modules = {_module_name(p): p for p in _modules()}
    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    edges.setdefault((name, target), []).append(f"{path.relative_to(ROOT)}:"
                                                                f"{node.lineno}")
    return edges


#: The one import allowed to close a circle: Tensor's operator sugar calls the ops
#: (docs/design.md, section "Architecture").
ENGINE_EDGE = ("lowrank_ref.autodiff", "lowrank_ref.ops")


def _find_cycle(edges) -> list:
    """One circle of the directed graph ``edges`` (a list of modules), or [] if none."""
    succ = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    state, stack = {}, []

    def visit(v):
        state[v] = "open"
        stack.append(v)
        for w in sorted(succ.get(v, ())):
            if state.get(w) == "open":
                return stack[stack.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        stack.pop()
        state[v] = "done"
        return []

    for v in sorted(succ):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return []


def test_no_import_circle_but_the_engines_lazy_one():
    edges = _import_graph()
    assert ENGINE_EDGE in edges, "the engine's lazy import of ops moved: update this test"
    rest = {e: where for e, where in edges.items() if e != ENGINE_EDGE}
    cycle = _find_cycle(rest)
    assert not cycle, "import circle: " + " -> ".join(cycle) + " (" + "; ".join(
        rest[(a, b)][0] for a, b in zip(cycle, cycle[1:])) + ")"


def test_the_circle_finder_finds_a_planted_circle():
    edges = {("a", "b"): [], ("b", "c"): [], ("c", "a"): [], ("c", "d"): []}
    assert _find_cycle(edges) == ["a", "b", "c", "a"]
    assert _find_cycle({("a", "b"): [], ("a", "c"): [], ("b", "c"): []}) == []


def test_training_imports_only_at_module_level():
    offenders = []
    for path in sorted((PACKAGE / "training").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} in {func.name}"
                              for node in ast.walk(func)
                              if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not offenders, f"imports inside functions in training/: {offenders}"


def _size_exceptions() -> set:
    text = DESIGN.read_text()
    section = text.split("## Module sizes", 1)[1]
    return set(re.findall(r"^\* `([\w/]+\.py)`", section, flags=re.M))


def test_modules_are_short_or_argued_for():
    exceptions = _size_exceptions()
    long = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in _modules()}
    too_long = {k: n for k, n in long.items() if n > MAX_LINES and k not in exceptions}
    assert not too_long, f"modules over {MAX_LINES} lines not argued for in docs/design.md: {too_long}"
    stale = {k for k in exceptions if long.get(k, 0) <= MAX_LINES}
    assert not stale, f"docs/design.md argues for long modules that are not long (any more): {stale}"


def _design_sections() -> set:
    return {m.strip() for m in re.findall(r"^#{2,3} (.+)$", DESIGN.read_text(), flags=re.M)}


def test_every_design_reference_names_an_existing_section():
    sections = _design_sections()
    bad = []
    for path in _text_files():
        # join wrapped lines, comment markers included ("# ... section "Known\n# bugs ...")
        text = " ".join(re.sub(r"^\s*#+", "", line).strip()
                        for line in path.read_text(errors="replace").splitlines())
        for m in re.finditer(r'docs/design\.md(?:, section "([^"]+)")?', text):
            if m.group(1) is not None and not m.group(1).startswith("<") \
                    and m.group(1) not in sections:
                bad.append(f"{path.relative_to(ROOT)}: section {m.group(1)!r}")
    assert not bad, f"references to sections of docs/design.md that do not exist: {bad}"


def test_nothing_refers_to_the_planning_note():
    needle = "DESIGN" + ".md"            # spelled apart so that this file does not match
    hits = [str(p.relative_to(ROOT)) for p in _text_files() if needle in p.read_text(errors="replace")]
    assert not hits, hits


#: What the documentation build writes and .gitignore lists: absent from a fresh checkout.
GENERATED = ("docs/_build", "docs/api/generated")
_PATH = re.compile(r"(?<![\w/.-])((?:lowrank_ref|tests|tutorials|benchmarks|docs|figures|results)"
                   r"/[\w./-]*\w)(?![\w*.])")


def test_repository_paths_mentioned_exist():
    missing = []
    for path in _text_files():
        if path == Path(__file__).resolve():
            continue
        for m in _PATH.finditer(path.read_text(errors="replace")):
            ref = m.group(1)
            if ref.startswith(GENERATED):             # written by the docs build (README)
                continue
            candidates = (ROOT / ref, path.parent / ref, ROOT / (ref + ".py"),
                          ROOT / ref.replace(".", "/"),
                          # a page of the site named as Sphinx names it, without its suffix
                          path.parent / (ref + ".md"), path.parent / (ref + ".rst"))
            if not any(c.exists() for c in candidates):
                missing.append(f"{path.relative_to(ROOT)}: {ref}")
    assert not missing, f"paths that are not in the repository: {sorted(set(missing))}"
