"""Mini-batches of one epoch, and the first (or a random) part of a data set.

Examples
--------
>>> import numpy as np
>>> X = np.arange(10.0).reshape(5, 2)
>>> y = np.arange(5)
>>> [yb.tolist() for _, yb in batches(X, y, batch_size=2)]
[[0, 1], [2, 3], [4]]
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np

from .._validate import check_int, check_rng
from .datasets import Dataset

__all__ = ["batches", "subset"]


def batches(X, y, batch_size: int, rng: Optional[np.random.Generator] = None
            ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Mini-batches ``(X[idx], y[idx])`` covering every sample exactly once (one epoch).

    Parameters
    ----------
    X : (n, ...) ndarray
        Samples along the first axis.
    y : (n, ...) ndarray
        Targets along the first axis.
    batch_size : int
        At least 1. The last batch holds the ``n % batch_size`` remaining samples when that is
        not zero, so there are ``ceil(n / batch_size)`` batches.
    rng : numpy.random.Generator, optional
        None: samples in order (batches are views). Otherwise in the order of
        ``rng.permutation(n)`` (one draw per call, so a seeded generator gives the same epoch).

    Returns
    -------
    iterator of ((b, ...) ndarray, (b, ...) ndarray)
        Arguments are checked when ``batches`` is called, not at the first batch.

    Raises
    ------
    TypeError
        If ``X`` or ``y`` is not an ndarray, ``batch_size`` is not an int or ``rng`` is not a
        Generator.
    ValueError
        If ``X`` or ``y`` is 0-d, ``len(X) != len(y)`` or ``batch_size < 1``.

    Examples
    --------
    >>> X, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [b.tolist() for _, b in batches(X, y, 2, rng=np.random.default_rng(0))]
    [[2, 4], [3, 0], [1]]
    """
    for arg, value in (("X", X), ("y", y)):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{arg} must be an ndarray with at least one axis, got "
                            f"{type(value).__name__}")
        if value.ndim < 1:
            raise ValueError(f"{arg} must be an ndarray with at least one axis, got shape "
                             f"{value.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of samples, got {X.shape[0]} "
                         f"and {y.shape[0]}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    if rng is not None:
        check_rng(rng)
    n = X.shape[0]
    order = None if rng is None else rng.permutation(n)

    def epoch():
        for start in range(0, n, batch_size):
            if order is None:
                yield X[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield X[idx], y[idx]

    return epoch()


def subset(dataset: Dataset, n_train: int, n_test: int,
           rng: Optional[np.random.Generator] = None, *, n_valid: Optional[int] = None
           ) -> Dataset:
    """The first ``n_train`` / ``n_test`` (/ ``n_valid``) samples of a :class:`Dataset`.

    Parameters
    ----------
    dataset : Dataset
    n_train : int
        In ``[1, len(dataset.y_train)]``.
    n_test : int
        In ``[1, len(dataset.y_test)]``.
    rng : numpy.random.Generator, optional
        If given, a uniformly random subset (without replacement, kept in original order)
        instead of the first samples.
    n_valid : int, optional
        In ``[1, len(dataset.y_valid)]``, for a data set with a validation part; None: the
        whole validation part (if any) is kept.

    Returns
    -------
    Dataset
        ``X_train`` (n_train, d), ``y_train`` (n_train,), ``X_test`` (n_test, d), ``y_test``
        (n_test,), the validation part of ``n_valid`` samples; same name, the source noting
        the subset.

    Raises
    ------
    TypeError
        If ``dataset`` is not a Dataset, a size is not an int, or ``rng`` not a Generator.
    ValueError
        If a size is out of range.

    Examples
    --------
    >>> ds = Dataset(np.zeros((6, 4)), np.arange(6), np.ones((3, 4)), np.arange(3), "mnist", "toy")
    >>> small = subset(ds, 4, 2)
    >>> small.X_train.shape, small.y_test.tolist(), small.source
    ((4, 4), [0, 1], 'toy, subset 4/2')
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a Dataset, got {type(dataset).__name__}")
    n_train = check_int(n_train, "n_train", low=1, high=len(dataset.y_train))
    n_test = check_int(n_test, "n_test", low=1, high=len(dataset.y_test))
    if n_valid is not None:
        if not dataset.has_validation:
            raise ValueError(f"n_valid applies to a data set with a validation part, got "
                             f"n_valid={n_valid!r} for {dataset.name!r}, which has none")
        n_valid = check_int(n_valid, "n_valid", low=1, high=len(dataset.y_valid))
    if rng is not None:
        check_rng(rng)

    def part(n, size):
        return slice(0, n) if rng is None else np.sort(rng.choice(size, n, replace=False))
    tr, te = part(n_train, len(dataset.y_train)), part(n_test, len(dataset.y_test))
    valid, sizes = {}, f"{n_train}/{n_test}"
    if dataset.has_validation:
        n_va = len(dataset.y_valid) if n_valid is None else n_valid
        va = part(n_va, len(dataset.y_valid))
        valid = {"X_valid": dataset.X_valid[va], "y_valid": dataset.y_valid[va]}
        sizes = f"{n_train}/{n_va}/{n_test} (train/validation/test)"
    return Dataset(dataset.X_train[tr], dataset.y_train[tr], dataset.X_test[te],
                   dataset.y_test[te], name=dataset.name,
                   source=f"{dataset.source}, {'random ' if rng is not None else ''}"
                          f"subset {sizes}", **valid)
