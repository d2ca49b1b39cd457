"""The paper's recipe trained with the published code's truncation: one experiment.

:func:`published_truncation_recipe` trains rank-adaptive DLRT by the recipe of
``compare recipe`` (:data:`lowrank_ref.training.compare.RECIPE`, Adam in the form ``form``)
with :class:`lowrank_ref.published_truncation.PublishedTruncationBUG` instead of the
package's truncation, and writes the ranks of every layer after every epoch. It tests one
hypothesis for the paper's layer-dependent ranks (docs/reproduce/04_paper_recipe.md); it is
not a training method of the package (no checkpoints, no resume: a short experiment).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .._validate import check_callable, check_int, check_path
from ..data import Dataset, batches
from ..dlrt import parameter_counts
from ..published_truncation import PublishedTruncationBUG
from .atomic import write_text
from .compare import RECIPE
from .config import TrainConfig, build_direction
from .data_checks import prepare_data
from .loop import evaluate
from .starts import build_model

__all__ = ["PUBLISHED_COLUMNS", "published_truncation_recipe"]

PUBLISHED_COLUMNS = ("form", "transposed", "tau", "seed", "epoch", "ranks", "eval_params", "eval_cr",
                     "val_acc", "test_acc")


def published_truncation_recipe(taus=(0.05, 0.09, 0.13, 0.17), epochs: int = 15,
                                form: str = "adam-carried", seed: int = 0,
                                results_dir="results",
                                name: str = "mnist_published_truncation.csv",
                                options: Optional[dict] = None, data: Optional[Dataset] = None,
                                log: Callable[[str], None] = print,
                                transposed: str = "U") -> Path:
    """Train the paper's recipe with the published truncation, one run per ``tau``.

    Parameters
    ----------
    taus : sequence of float
    epochs : int
    form : {"adam-carried", "adam"}
        The direction rule (as ``compare recipe``).
    seed : int
        Initialisation; the batches are shuffled by ``default_rng([seed, 1])``.
    results_dir : path-like
    name : str
        The table ``results_dir/name``: one row per run and epoch (:data:`PUBLISHED_COLUMNS`; accuracies and
        compression in %, ``test_acc`` after the last epoch only, ``val_acc`` empty without a
        validation split).
    options : dict, optional
        Options by name (TrainConfig) that override the recipe (e.g. ``sizes`` in tests).
    data : Dataset, optional
    log : callable
    transposed : {"U", "V"}
        The factor taken transposed (:func:`lowrank_ref.published_truncation.published_truncate`;
        "U": the TensorFlow code of the MNIST table).

    Returns
    -------
    pathlib.Path
    """
    if form not in ("adam", "adam-carried"):
        raise ValueError(f"form must be 'adam' or 'adam-carried', got {form!r}")
    check_int(epochs, "epochs", low=1)
    check_int(seed, "seed", low=0)
    check_callable(log, "log", "log(line: str)")
    out = Path(check_path(results_dir, "results_dir")) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(**{**RECIPE, **(options or {}), "method": "adaptive", "tau": float(taus[0]),
                          "optimizer": form, "epochs": epochs, "seed": seed})
    lines = [",".join(PUBLISHED_COLUMNS)]
    for tau in taus:
        config = dataclasses.replace(base, tau=float(tau))
        ds = prepare_data(config, data)
        model = build_model(config)
        opt = PublishedTruncationBUG(model, config.lr, config.tau, min_rank=config.min_rank,
                                     max_rank=config.max_rank, passes=config.passes,
                                     direction=build_direction(config), transposed=transposed)
        rng = np.random.default_rng([seed, 1])
        for epoch in range(1, epochs + 1):
            for X, y in batches(ds.X_train, ds.y_train, config.batch_size, rng=rng):
                opt.step(X, y)
            counts = parameter_counts(model)
            ranks = "|".join(str(r) for r in counts["ranks"] if r is not None)
            val = "" if ds.X_valid is None else f"{100 * evaluate(model, ds.X_valid, ds.y_valid)[1]:.2f}"
            test = (f"{100 * evaluate(model, ds.X_test, ds.y_test)[1]:.2f}" if epoch == epochs
                    else "")
            cr = 100 * (1 - counts["eval_params"] / counts["dense_params"])
            lines.append(",".join(map(str, (form, transposed, f"{tau:g}", seed, epoch, ranks,
                                            counts["eval_params"], f"{cr:.2f}", val, test))))
            log(f"published truncation, {form}, tau {tau:g}, epoch {epoch}/{epochs}: ranks "
                f"{ranks}, val acc {val or '-'}, test acc {test or '-'}")
            write_text(out, "\n".join(lines) + "\n")
    return out
