"""The data of a run: loaded or given, checked against the configuration, cast once.

:func:`prepare_data` refuses bad arrays before the first step (a NaN in the images would
otherwise show up as a "diverged" run), with the package's rule: a ``TypeError`` for arrays
of the wrong kind (complex or string images, float labels), a ``ValueError`` for wrong
values or shapes. See docs/design.md, section "Errors and validation".
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import data as data_pkg
from .._validate import as_float_array
from ..data import Dataset
from .config import TrainConfig, input_shape, n_classes

__all__ = ["prepare_data"]


def prepare_data(config: TrainConfig, data: Optional[Dataset] = None) -> Dataset:
    """The data set of a run of ``config``, checked and cast to ``config.dtype``.

    Parameters
    ----------
    config : TrainConfig
        ``dataset``, ``data_dir`` (where :func:`lowrank_ref.data.load` looks first),
        ``validation`` (hold out the last 10,000 training images,
        :func:`lowrank_ref.data.split_validation`), ``n_train`` / ``n_valid`` / ``n_test``
        (the first samples only), the network (``arch``, ``sizes``: the features per image
        and the classes) and ``dtype``.
    data : Dataset, optional
        Arrays to use instead of loading ``config.dataset``: any object with the fields
        ``X_train``, ``y_train``, ``X_test``, ``y_test`` (``name``, ``source``, ``X_valid``,
        ``y_valid`` optional). With ``config.validation`` it must have its validation part
        (``X_valid``, ``y_valid``); without, a validation part it has is not used.

    Returns
    -------
    Dataset
        ``X_train`` ``(n_train, sizes[0])`` and ``X_test`` ``(n_test, sizes[0])`` for arch
        "mlp", ``(n, 1, 28, 28)`` for arch "lenet5" (the rows of 784 pixels reshaped),
        C-contiguous of ``config.dtype``; ``y_train`` ``(n_train,)`` and ``y_test``
        ``(n_test,)`` int64 labels in ``[0, n_classes)`` (``sizes[-1]``, or 10); with
        ``config.validation`` ``X_valid``, ``y_valid`` likewise, else None.

    Raises
    ------
    TypeError
        If ``data`` lacks the fields, images are not real numbers, or labels not integers.
    ValueError
        If images are not 2-d with one column per input feature (``sizes[0]``, or 784 for
        LeNet5) or not finite, labels are not one per image or out of range,
        ``n_train`` / ``n_valid`` / ``n_test`` exceed the data, a part is empty, or
        ``config.validation`` is on and ``data`` has no validation part.

    Examples
    --------
    >>> X, y = np.eye(4), np.array([0, 1, 0, 1])
    >>> ds = prepare_data(TrainConfig(sizes=[4, 3, 2], n_train=3, validation=False),
    ...                   Dataset(X, y, X, y, "toy", "made up"))
    >>> ds.X_train.shape, ds.X_train.dtype, ds.y_test.dtype, ds.X_valid
    ((3, 4), dtype('float32'), dtype('int64'), None)
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    dtype = np.dtype(config.dtype)
    if data is None:
        ds = data_pkg.load(config.dataset, config.data_dir, dtype=dtype,
                           validation=config.validation)
    else:
        ds = _given(data, config.validation)
    parts = ("train", "valid", "test") if config.validation else ("train", "test")
    shape = input_shape(config)
    for split in parts:
        ds = _check_part(ds, split, config, shape)
    sizes = {"train": config.n_train, "valid": config.n_valid, "test": config.n_test}
    if any(v is not None for v in sizes.values()):
        for split, want in sizes.items():
            have = len(getattr(ds, f"y_{split}")) if split in parts else 0
            if want is not None and want > have:
                raise ValueError(f"n_{split} must be <= {have} (the data set's size), got {want}")
        n_tr, n_te = (sizes[s] or len(getattr(ds, f"y_{s}")) for s in ("train", "test"))
        ds = data_pkg.subset(ds, n_tr, n_te, n_valid=config.n_valid)
    empty = [s for s in parts if len(getattr(ds, f"y_{s}")) == 0]
    if empty:
        raise ValueError(f"data must hold at least one sample in each of its parts "
                         f"({', '.join(parts)}), got none in {', '.join(empty)}")
    # Cast once to the model dtype (and labels to int64), contiguous for fast batching, in
    # the shape the network takes (images for LeNet5).
    cast = {}
    for split in parts:
        cast[f"X_{split}"] = np.ascontiguousarray(getattr(ds, f"X_{split}"),
                                                  dtype=dtype).reshape(-1, *shape)
        cast[f"y_{split}"] = getattr(ds, f"y_{split}").astype(np.int64, copy=False)
    return ds._replace(**cast)


def _given(data, validation: bool) -> Dataset:
    """``data`` (the argument of :func:`prepare_data`) as a :class:`Dataset` of arrays; its
    validation part kept only with ``validation`` (and then required)."""
    fields = ("X_train", "y_train", "X_test", "y_test")
    if not all(hasattr(data, f) for f in fields):
        raise TypeError(f"data must be a lowrank_ref.data.Dataset (fields {fields}), got "
                        f"{type(data).__name__}")
    valid = {}
    if validation:
        if getattr(data, "X_valid", None) is None or getattr(data, "y_valid", None) is None:
            raise ValueError("validation is on (the default) but data has no validation part "
                             "(X_valid, y_valid): give one (lowrank_ref.data.split_validation"
                             "(data, n_valid) holds out the last training samples) or train "
                             "with validation=False (--no-validation)")
        valid = {"X_valid": np.asarray(data.X_valid), "y_valid": np.asarray(data.y_valid)}
    return Dataset(*(np.asarray(getattr(data, f)) for f in fields),
                   getattr(data, "name", "custom"), getattr(data, "source", "data argument"),
                   **valid)


def _check_part(ds: Dataset, split: str, config: TrainConfig, shape: tuple) -> Dataset:
    """``ds`` with the images of one part (``split``: "train", "valid" or "test") checked
    (kind, 2-d, finite, one column per input feature) and its labels checked."""
    n_in, classes = int(np.prod(shape)), n_classes(config)
    labels = (f"integer labels in [0, sizes[-1] = {classes})" if config.arch == "mlp"
              else f"integer labels in [0, {classes})")
    xname, yname = f"X_{split}", f"y_{split}"
    X = as_float_array(getattr(ds, xname), xname, ndim=2)       # kind, 2-d, finite
    if X.shape[1] != n_in:
        if config.arch == "mlp":
            raise ValueError(f"sizes[0] = {n_in} must equal the number of input "
                             f"features, but {xname} has shape {X.shape}")
        raise ValueError(f"arch {config.arch!r} takes images of {' x '.join(map(str, shape))}"
                         f" = {n_in} pixels as rows of {n_in} features, but {xname} has "
                         f"shape {X.shape}")
    y = getattr(ds, yname)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{yname} must hold {labels}, got dtype {y.dtype}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"{yname} must hold one label per row of {xname}, shape "
                         f"({X.shape[0]},), got shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"{yname} must hold {labels}, got range [{y.min()}, {y.max()}]")
    return ds._replace(**{xname: X})
