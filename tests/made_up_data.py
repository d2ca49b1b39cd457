"""Made-up classification data for training tests: Gaussian blobs, one per class."""
from __future__ import annotations

import numpy as np

from lowrank_ref.data import Dataset


def blobs(seed: int = 0, n_train: int = 96, n_test: int = 48, d: int = 12, k: int = 10,
          spread: float = 0.6, source: str = "made up in the tests", n_valid: int = 32) -> Dataset:
    """``k`` classes in ``d`` dimensions: class ``c`` drawn around a random centre; a
    validation part of ``n_valid`` samples (drawn after the others; 0: none)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))

    def draw(n):
        y = rng.integers(0, k, n)
        return centres[y] + spread * rng.standard_normal((n, d)), y

    tr, te = draw(n_train), draw(n_test)
    va = draw(n_valid) if n_valid else (None, None)
    return Dataset(*tr, *te, "blobs", source, *va)
