"""The documentation site (``docs/``): built once per session by the README's docs command,
checked in the built pages, and opened in headless Chromium.

The build runs the README's ``python -m sphinx -W -b html docs ...`` (warnings are errors)
with ``LOWRANK_REF_FAST=1``, so the seven tutorials execute at their small sizes (their
normal sizes are for readers; the figures and the code paths are the same). It is built
once, by the session fixture ``site``, because every check below reads the same pages and
the build (about a minute: the tutorials run in it) is the expensive part. Its output goes
to a temporary folder; Sphinx's generated sources (the tutorial notebooks, the API stubs)
go to ``docs/tutorials/*.ipynb`` and ``docs/api/generated/``, which ``.gitignore`` lists.

The browser test needs Debian's ``chromium`` (``.ci/run`` installs it). Where it is not
installed the test is skipped -- except under ``CI=true``, where a missing browser fails.
"""
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
sys.path.insert(0, str(DOCS))
import check_site  # noqa: E402  (docs/check_site.py: the browser check and screenshots)

BUILD_TIMEOUT = 1800          # seconds for the whole build (the tutorials run in it)


def readme_docs_command():
    """The ``python -m sphinx ...`` part of the README's docs command (a ``bash`` block)."""
    text = (REPO / "README.md").read_text()
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
              if "sphinx" in b]
    assert len(blocks) == 1, f"README must hold exactly one docs command, found {blocks}"
    parts = [p.strip() for p in blocks[0].split("&&")]
    assert parts[0].startswith('pip install -e ".[docs]"'), parts[0]
    sphinx = [p for p in parts if p.startswith("python -m sphinx")]
    assert len(sphinx) == 1, parts
    return shlex.split(sphinx[0])


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """Build the site once; return the folder of its HTML pages."""
    args = readme_docs_command()
    assert args[-2:] == ["docs", "docs/_build/html"] and "-W" in args, args
    out = tmp_path_factory.mktemp("site") / "html"
    cmd = [sys.executable] + args[1:-1] + [str(out)]
    env = dict(os.environ, LOWRANK_REF_FAST="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, (f"the docs build failed ({seconds:.0f} s):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    print(f"\ndocs built in {seconds:.1f} s")
    return out


def _article(html):
    """The article part of a built page (the theme's navigation left out)."""
    m = re.search(r"<article.*?</article>", html, flags=re.S)
    assert m, "page without <article>"
    return m.group(0)


TUTORIALS = sorted((REPO / "tutorials").glob("0*.py"))


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_every_tutorial_page_shows_its_figures(site, script):
    """The executed page has an image output for every figure the tutorial shows, and
    every image file is there; no error output and no figure shown as text only."""
    page = site / "tutorials" / f"{script.stem}.html"
    assert page.exists(), f"no page for {script.name}"
    article = _article(page.read_text(encoding="utf-8"))
    shown = len(re.findall(r"^\s*show\(", script.read_text(), flags=re.M))   # show(fig, name)
    images = re.findall(r'<img[^>]+src="([^"]+)"', article)
    assert shown >= 1 and len(images) >= shown, \
        f"{script.name}: {shown} figures shown, {len(images)} images on the page"
    for src in images:
        f = (page.parent / src).resolve()
        assert f.exists() and f.stat().st_size > 1000, f"{script.name}: image {src} missing"
    assert "&lt;Figure size" not in article, f"{script.name}: a figure printed as text"
    assert "Traceback" not in article, f"{script.name}: an error on the page"


def test_the_api_reference_lists_every_name_of_the_readme_library_section(site):
    text = (REPO / "README.md").read_text()
    section = text.split("## Library", 1)[1].split("\n## ", 1)[0]
    names = []
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
        for module, imported in re.findall(r"^from (lowrank_ref[\w.]*) import (.+)$", block,
                                           flags=re.M):
            names += [f"{module}.{n.strip()}" for n in imported.split(",")]
    assert len(names) >= 30, names
    api = "".join(p.read_text(encoding="utf-8")
                  for p in (site / "api" / "generated").glob("*.html"))
    missing = [n for n in names if f'id="{n}"' not in api and f'id="module-{n}"' not in api]
    assert not missing, f"names of the README's library section without an API entry: {missing}"


def test_every_public_module_has_an_api_page():
    """A module added to the package appears in docs/api/index.rst (the pages themselves are
    generated from each module's ``__all__``, so renamed names follow by themselves)."""
    listed = set(re.findall(r"^   (lowrank_ref[\w.]*)$", (DOCS / "api" / "index.rst").read_text(),
                            flags=re.M))
    package = REPO / "lowrank_ref"
    public = {"lowrank_ref"}
    public |= {f"lowrank_ref.{p.stem}" for p in package.glob("*.py")
               if not p.name.startswith("_")}
    public |= {f"lowrank_ref.{p.parent.name}" for p in package.glob("*/__init__.py")}
    assert public <= listed, f"modules without an API page: {sorted(public - listed)}"


def test_no_page_loads_anything_from_another_host(site):
    """Scripts, stylesheets, fonts and images all come from the site itself (the links a
    reader may follow are allowed)."""
    remote = re.compile(r"""(?:<script[^>]+src|<link[^>]+href|<img[^>]+src|<iframe[^>]+src)"""
                        r"""\s*=\s*["'](?:https?:)?//""", re.I)
    css_remote = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])(?:https?:)?//""", re.I)
    bad = []
    for f in site.rglob("*.html"):
        for m in remote.finditer(f.read_text(encoding="utf-8")):
            bad.append(f"{f.relative_to(site)}: {m.group(0)}")
    for f in site.rglob("*.css"):
        if css_remote.search(f.read_text(encoding="utf-8", errors="replace")):
            bad.append(str(f.relative_to(site)))
    assert not bad, bad
    mathjax = site / "_static" / "mathjax"
    assert (mathjax / "tex-chtml.js").exists() and \
        list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_browser_sees_figures_and_typeset_maths(site, tmp_path):
    """Headless Chromium opens the home page, every tutorial, the theory page and an API page
    from disk: every image loaded, every maths element typeset by MathJax, nothing requested
    from another host. Screenshots of the home page, tutorial 01 and the API page of
    ``lowrank_ref.truncation`` go to ``$LOWRANK_REF_SCREENSHOTS`` (default: a temporary
    folder)."""
    if check_site.find_chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Chromium: .ci/run must apt-get install chromium")
        pytest.skip("no Chromium installed (apt-get install chromium); CI runs this test")
    shots = Path(os.environ.get("LOWRANK_REF_SCREENSHOTS") or tmp_path / "screenshots")
    t0 = time.perf_counter()
    reports = check_site.check_site(site, shots)
    print(f"\nbrowser check of {len(reports)} pages in {time.perf_counter() - t0:.1f} s; "
          f"screenshots in {shots}")
    problems = {page: r["problems"] for page, r in reports.items() if r["problems"]}
    assert not problems, problems
    tutorials = {p: r for p, r in reports.items() if p.startswith("tutorials/")}
    assert len(tutorials) == len(TUTORIALS)
    assert all(r["images"] for r in tutorials.values()), \
        {p: len(r["images"]) for p, r in tutorials.items()}
    assert reports["index.html"]["maths"] >= 5 and reports["index.html"]["images"]
    assert reports["theory.html"]["maths"] >= 20
    assert sum(r["maths"] for r in tutorials.values()) >= 10
    for name in ("home.png", "tutorial.png", "api.png", "tutorial_figure.png"):
        png = shots / name
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_checker_fails_a_page_with_a_broken_image_and_raw_maths(tmp_path):
    """Negative control of the browser check: a page whose image is missing and whose maths
    MathJax never saw is reported on both counts."""
    if check_site.find_chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Chromium: .ci/run must apt-get install chromium")
        pytest.skip("no Chromium installed (apt-get install chromium); CI runs this test")
    page = tmp_path / "bad.html"
    page.write_text('<html><body><article><img src="missing.png">'
                    '<span class="math">\\(x^2\\)</span></article></body></html>')
    with check_site.Browser() as browser:
        report = check_site.inspect(browser, page)
    text = "\n".join(report["problems"])
    assert "image not loaded: missing.png" in text and "MathJax did not run" in text
    assert "maths not typeset" in text


# --- the sources of the site (no build needed) ---------------------------------------------
def _doc_sources():
    return sorted(DOCS.rglob("*.md")) + sorted(DOCS.rglob("*.rst"))


def test_every_committed_figure_is_shown_on_a_page_that_names_its_command():
    """Every PNG in figures/ is an image on some page of the site, and that page names the
    repository command that draws it (``python -m lowrank_ref figures ...`` or a benchmark
    script)."""
    pages = {p: p.read_text() for p in _doc_sources() if "_build" not in p.parts}
    for png in sorted((REPO / "figures").glob("*.png")):
        showing = [p for p, t in pages.items()
                   if re.search(rf"!\[[^\]]*\]\((?:\.\./)+figures/{re.escape(png.name)}\)", t)]
        assert showing, f"no page of docs/ shows figures/{png.name}"
        assert any(re.search(r"python -m lowrank_ref figures|python benchmarks/\w+\.py",
                             pages[p]) for p in showing), \
            f"the pages showing figures/{png.name} do not name the command that draws it"


def test_every_test_named_in_the_docs_exists():
    missing = []
    for page in _doc_sources():
        if "_build" in page.parts:
            continue
        for test_file, name in re.findall(r"(tests/\w+\.py)::(\w+)", page.read_text()):
            source = REPO / test_file
            if not source.exists() or not re.search(rf"^def {name}\(", source.read_text(),
                                                     flags=re.M):
                missing.append(f"{page.relative_to(REPO)}: {test_file}::{name}")
    assert not missing, missing


def test_every_citation_key_is_in_the_references():
    """Every ``[KEY22]`` cited in the package, the tutorials or the pages is listed on the
    references page."""
    references = (DOCS / "references.md").read_text()
    listed = set(re.findall(r"^\[([A-Z]+\d\d)\]$", references, flags=re.M))
    files = list((REPO / "lowrank_ref").rglob("*.py")) + list((REPO / "tutorials").rglob("*.py"))
    files += [p for p in _doc_sources() if "_build" not in p.parts]
    files.append(REPO / "README.md")
    cited = set()
    for f in files:
        cited |= set(re.findall(r"\[([A-Z]{2,7}\d\d)\]", f.read_text()))
    assert cited - listed == set(), f"cited but not in docs/references.md: {cited - listed}"
    assert {"SZKCT22", "CL22", "CKL22", "CKL24", "LO14"} <= listed


def test_the_reproduction_pages_are_collected_by_a_glob():
    """Pages written into docs/reproduce/ by a command appear without editing an index."""
    index = (DOCS / "reproduce" / "index.md").read_text()
    assert ":glob:" in index and re.search(r"^\*$", index, flags=re.M)


def test_the_test_extra_installs_the_docs_extra():
    """The README test command installs ``.[test]`` and the suite builds the site: so the
    ``test`` extra holds every requirement of the ``docs`` extra."""
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    extras = cfg["options.extras_require"]
    docs = {r.strip() for r in extras["docs"].splitlines() if r.strip()}
    test = {r.strip() for r in extras["test"].splitlines() if r.strip()}
    assert docs and docs <= test, f"in docs but not in test: {docs - test}"
