"""Bad inputs and injected faults that once got through: each test here failed on the code
before its fix (a traceback, a silently wrong run, a file written where it must not be).

The command line is called in-process (``main([...])``) with MNIST-shaped made-up data in
place of :func:`lowrank_ref.data.load`, so that a check that comes too late shows up as a
data load or a file written before the error.
"""
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

import lowrank_ref.data
from lowrank_ref._validate import check_path
from lowrank_ref.__main__ import main
from lowrank_ref.data import Dataset
from lowrank_ref.training import TrainConfig, train

D, K = 12, 10


def blobs(seed=0, n_train=96, n_test=48, d=D):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((K, d))

    def draw(n):
        y = rng.integers(0, K, n)
        return centres[y] + 0.6 * rng.standard_normal((n, d)), y

    return Dataset(*draw(n_train), *draw(n_test), "blobs", "made up in test_hostile_inputs.py")


DATA = blobs()
SIZES = [D, 16, 12, K]


def quiet(line):
    pass


def config(tmp_path, name="run", **kw):
    return TrainConfig(**{**dict(sizes=SIZES, epochs=1, batch_size=32, lr=0.05,
                                 out=str(tmp_path / name)), **kw})


@pytest.fixture
def mnist_like(monkeypatch):
    """Replace data.load by MNIST-shaped made-up data; the list records every load."""
    proj = np.random.default_rng(2).standard_normal((D, 784)) / np.sqrt(D)
    fake = DATA._replace(X_train=DATA.X_train @ proj, X_test=DATA.X_test @ proj)
    calls = []

    def load(name, data_dir=None, dtype=np.float32):
        calls.append(name)
        return fake

    monkeypatch.setattr(lowrank_ref.data, "load", load)
    return calls


def cli(*args) -> int:
    """``main(args)``'s exit status, also when argparse exits (bad option values)."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return exc.code


def one_line_error(capsys, code, status=2):
    err = capsys.readouterr().err
    assert code == status, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def listing(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------------------------
# An empty path is not "." (an unset shell variable would write into the current folder)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, option", [
    (["train", "--out", ""], "--out"),
    (["train", "--resume", ""], "--resume"),
    (["train", "--data-dir", "", "--out", "x"], "--data-dir"),
    (["train", "--method", "fixed", "--ranks", "2,2", "--prune-from", "", "--out", "x"],
     "--prune-from"),
    (["prune", "", "--ranks", "2,2"], "DIR"),
    (["prune", "d", "--ranks", "2,2", "--out", ""], "--out"),
    (["oracle", "export", ""], "DIR"),
    (["oracle", "verify", ""], "DIR"),
    (["sweep", "--taus", "0.1", "--results", ""], "--results"),
    (["compare", "methods", "--results", ""], "--results"),
    (["figures", "--out", ""], "--out"),
    (["figures", "--results", ""], "--results"),
])
def test_cli_refuses_an_empty_path(tmp_path, monkeypatch, capsys, mnist_like, args, option):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, cli(*args))
    assert option in err and "empty" in err
    assert listing(tmp_path) == [] and mnist_like == []


@pytest.mark.parametrize("call, name", [
    (lambda: TrainConfig(out=""), "out"),
    (lambda: TrainConfig(data_dir=""), "data_dir"),
    (lambda: TrainConfig(method="fixed", ranks=[2, 2, 2, 2], prune_from=""), "prune_from"),
    (lambda: train(TrainConfig(), resume=""), "resume"),
    (lambda: lowrank_ref.data.load("mnist", data_dir=""), "data_dir"),
    (lambda: check_path("", "where"), "where"),
])
def test_library_refuses_an_empty_path(tmp_path, monkeypatch, call, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"{name} must be a non-empty path, got ''"):
        call()
    assert listing(tmp_path) == []
