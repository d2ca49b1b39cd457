"""Tests of lowrank_ref.training and the command line (``python -m lowrank_ref train``).

Training runs on small made-up data (Gaussian blobs, 20 features, 10 classes); only the test
marked ``slow`` reads real MNIST.
"""
import csv
import dataclasses
import io
import json
import os
import select
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import lowrank_ref.data
from lowrank_ref import training
from lowrank_ref.__main__ import build_parser, main
from lowrank_ref.data import Dataset
from lowrank_ref.training import (CHECKPOINT_NAME, HISTORY_COLUMNS, LOCK_NAME, CheckpointError,
                                  RunFolderInUse, TrainConfig, TrainingDiverged, evaluate,
                                  load_checkpoint, train)
from lowrank_ref.training.progress import Progress
from lowrank_ref.training.specs import flat_options

ROOT = Path(__file__).resolve().parents[1]
D, K = 20, 10                      # features, classes of the made-up data
SIZES = [D, 32, 24, K]


def blobs(seed=0, n_train=400, n_test=200, spread=0.6, n_valid=100):
    """10 Gaussian blobs in 20-d: class c around a random unit-norm-ish centre; a validation
    part of ``n_valid`` samples (drawn last; 0: none)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((K, D))

    def draw(n):
        y = rng.integers(0, K, n)
        return centres[y] + spread * rng.standard_normal((n, D)), y

    X_train, y_train = draw(n_train)
    X_test, y_test = draw(n_test)
    X_valid, y_valid = draw(n_valid) if n_valid else (None, None)
    return Dataset(X_train, y_train, X_test, y_test, "blobs", "made up in test_train.py",
                   X_valid, y_valid)


DATA = blobs()


def quiet(line):
    pass


def config(tmp_path, name="run", **kw):
    base = dict(sizes=SIZES, epochs=2, batch_size=32, lr=0.05, out=str(tmp_path / name))
    base.update(kw)
    return TrainConfig(**base)


LOW_RANK = {"fixed": dict(method="fixed", rank=8, lr=0.1, warmup=0),
            "adaptive": dict(method="adaptive", rank=4, tau=0.05, lr=0.5, momentum=0.0, warmup=0)}


def read_history(out):
    with open(Path(out) / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def model_arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k.startswith(("layer", "opt."))}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, name", [
    (dict(method="sgd"), "method"), (dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"),
    (dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"), (dict(momentum=1.0), "momentum"),
    (dict(schedule="step"), "schedule"), (dict(method=3), "method"),
    (dict(sizes=[784]), "sizes"), (dict(sizes=[784, 0, 10]), "sizes"),
    (dict(dataset="cifar"), "dataset"), (dict(seed=-1), "seed"),
    (dict(rank=5), "rank"), (dict(method="fixed", rank=0), "rank"), (dict(warmup=-1), "warmup"),
    (dict(method="adaptive", rank=5), "tau"),
    (dict(method="fixed", rank=5, tau=0.1), "tau"), (dict(passes=3), "passes"),
    (dict(method="adaptive", rank=5, tau=0.1, passes=2), "passes"),
    (dict(method="adaptive", rank=5, tau=0.1, min_rank=4, max_rank=3), "max_rank"),
    (dict(finetune_epochs=1), "finetune_epochs"), (dict(n_train=0), "n_train"),
    (dict(threads=0), "threads"),
])
def test_config_errors_name_the_option(kw, name):
    """A value of the right kind that is not allowed: ValueError naming the option."""
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kw)


@pytest.mark.parametrize("kw, message", [
    (dict(epochs=1.5), "epochs must be an int >= 1, got float 1.5"),
    (dict(epochs=True), "epochs must be an int >= 1, got bool True"),
    (dict(lr="0.1"), "lr must be a finite number > 0, got str '0.1'"),
    (dict(momentum=True), "momentum must be a finite number >= 0 and < 1, got bool True"),
    (dict(threads=1.5), "threads must be an int >= 1 or None (no limit), got float 1.5"),
    (dict(sizes=784), "sizes must be a sequence of at least 2 ints >= 1, got int 784"),
    (dict(sizes=[784, 500.0, 10]), "sizes[1] must be an int >= 1, got float 500.0"),
    (dict(dtype="float16"), "dtype must be float32 or float64, got float16"),
    (dict(data_dir=3), "data_dir must be a path (str or os.PathLike) or None, got int 3"),
    (dict(out=["runs"]), "out must be a path (str or os.PathLike) or None, got list"),
    (dict(method="adaptive", tau="0.1"), "tau must be a finite number >= 0 or None, got str"),
    (dict(method="fixed", rank=2.0), "rank must be an int >= 1 or None, got float 2.0"),
    (dict(passes=1.0), "passes must be an int, got float 1.0"),
])
def test_config_wrong_kinds_are_type_errors(kw, message):
    """The one rule: the wrong kind of object is a TypeError, whatever its value
    (docs/design.md, section "Errors and validation")."""
    with pytest.raises(TypeError) as info:
        TrainConfig(**kw)
    assert message in str(info.value)


def test_config_accepts_numpy_scalars_and_dtypes():
    c = TrainConfig(epochs=np.int64(2), lr=np.float32(0.5), dtype=np.float64, sizes=(4, 3, 2))
    assert (c.epochs, c.dtype, c.sizes) == (2, "float64", [4, 3, 2])
    assert type(c.epochs) is int and type(c.lr) is float
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_config_defaults_depend_on_method():
    assert (TrainConfig().lr, TrainConfig().momentum) == (training.DEFAULT_LR["dense"], 0.9)
    c = TrainConfig(method="adaptive", rank=10, tau=0.1)
    assert (c.lr, c.momentum, c.warmup) == (training.DEFAULT_LR["adaptive"], 0.9, 100)
    assert TrainConfig(method="fixed").rank == training.DEFAULT_RANK["fixed"]
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match=r"unknown configuration part\(s\) \['bogus'\]"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['bogus'\] of configuration "
                                         r"part 'step'"):
        TrainConfig.from_dict({**c.to_dict(), "step": {**c.to_dict()["step"], "bogus": 1}})
    with pytest.raises(ValueError, match="unknown configuration option"):   # a flat record
        TrainConfig.from_dict({**c.to_flat(), "bogus": 1})


def test_cosine_schedule_decays_to_zero_per_step():
    c = TrainConfig(lr=0.2)
    lrs = [training.lr_at(c, t, 100) for t in range(100)]
    assert lrs[0] == 0.2 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 1e-3
    assert training.lr_at(TrainConfig(lr=0.2, schedule="constant"), 99, 100) == 0.2


def test_evaluate_matches_predict():
    model = training.build_model(TrainConfig(sizes=SIZES, dtype="float64"))
    loss, acc = evaluate(model, DATA.X_test, DATA.y_test, batch_size=7)
    logits = model.predict(DATA.X_test)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(len(p)), DATA.y_test])), rel=1e-12)
    assert acc == np.mean(logits.argmax(1) == DATA.y_test)


# --------------------------------------------------------------------------------------------
# Training, records
# --------------------------------------------------------------------------------------------

def test_dense_training_learns_and_writes_records(tmp_path):
    """With validation (the default): the validation part after every epoch, the test set
    after the last one only, each named in the epoch lines."""
    lines = []
    c = config(tmp_path, epochs=3, dtype="float64")
    assert c.validation
    final = train(c, log=lines.append, data=DATA)
    out = Path(c.out)
    rows = read_history(out)
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {r["phase"] for r in rows} == {"train"}
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < losses[0]
    assert final["val_acc"] > 0.9 and final["val_acc"] == float(rows[-1]["val_acc"])
    assert final["test_acc"] > 0.9 and final["test_acc"] == float(rows[-1]["test_acc"])
    assert all(float(r["val_loss"]) > 0 for r in rows)
    assert [(r["test_loss"], r["test_acc"]) for r in rows[:-1]] == [("", "")] * 2
    assert float(rows[0]["lr"]) == c.lr > float(rows[1]["lr"]) > float(rows[2]["lr"])  # cosine
    assert rows[0]["ranks"] == "" and float(rows[0]["eval_cr"]) == 0.0
    run = json.loads((out / "run.json").read_text())
    for key in ("config", "seed", "final", "train_seconds", "status", "data", "sessions"):
        assert key in run, key
    assert run["status"] == "finished" and run["config"] == c.to_dict()
    assert run["data"]["n_train"] == 400 and run["data"]["n_valid"] == 100
    (session,) = run["sessions"]
    assert set(session["versions"]) >= {"python", "numpy", "lowrank_ref"}
    assert "git_commit" in session and session["status"] == "finished"
    assert run["final"]["test_acc"] == final["test_acc"]
    assert run["final"]["val_acc"] == final["val_acc"]
    assert "400 train / 100 validation / 200 test samples (the test set evaluated after the " \
           "last epoch only)" in lines[0]
    epoch_lines = [ln for ln in lines if ": train loss" in ln]
    assert len(epoch_lines) == 3 and " s" in epoch_lines[0]
    assert all("validation acc" in ln for ln in epoch_lines)
    assert ["test acc" in ln for ln in epoch_lines] == [False, False, True]
    assert any("samples/s" in ln for ln in lines)            # progress lines (not a terminal)
    assert not list(out.glob(".*.tmp"))                      # no temporary file left behind


def test_without_validation_the_test_set_is_evaluated_after_every_epoch(tmp_path):
    """validation=False: the whole training set trains (a validation part of the data is not
    used) and the test set is evaluated after every epoch, as in the runs recorded before
    the option existed."""
    lines = []
    c = config(tmp_path, epochs=2, dtype="float64", validation=False)
    final = train(c, log=lines.append, data=DATA)
    rows = read_history(c.out)
    assert all(r["val_loss"] == r["val_acc"] == "" and float(r["test_acc"]) > 0 for r in rows)
    assert final["val_acc"] is None and final["test_acc"] == float(rows[-1]["test_acc"])
    run = json.loads((Path(c.out) / "run.json").read_text())
    assert run["data"]["n_train"] == 400 and run["data"]["n_valid"] is None
    assert "400 train / 200 test samples," in lines[0] and "validation /" not in lines[0]
    epoch_lines = [ln for ln in lines if ": train loss" in ln]
    assert all("test acc" in ln and "validation" not in ln for ln in epoch_lines)


@pytest.mark.parametrize("finetune_epochs", [0, 2])
def test_the_test_set_is_untouched_until_the_last_epoch(tmp_path, monkeypatch, finetune_epochs):
    """Which arrays the loop evaluates, epoch by epoch: the validation part after every
    epoch (both phases), the test set once, after the very last epoch."""
    seen = []

    def spy(model, X, y, batch_size=1024):
        seen.append(len(y))
        return evaluate(model, X, y, batch_size)

    monkeypatch.setattr(training.loop, "evaluate", spy)
    data = blobs(n_train=64, n_test=48, n_valid=40)
    kw = dict(LOW_RANK["fixed"], finetune_epochs=finetune_epochs) if finetune_epochs else {}
    c = config(tmp_path, epochs=3, **kw)
    train(c, log=quiet, data=data)
    total = 3 + finetune_epochs
    assert seen == [40] * total + [48]
    rows = read_history(c.out)
    assert [bool(r["test_acc"]) for r in rows] == [False] * (total - 1) + [True]


@pytest.mark.parametrize("method", ["fixed", "adaptive"])
def test_low_rank_training_learns_and_reports_ranks(tmp_path, method):
    lines = []
    c = config(tmp_path, epochs=3, dtype="float64", **LOW_RANK[method])
    final = train(c, log=lines.append, data=DATA)
    rows = read_history(c.out)
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < losses[0]
    assert final["test_acc"] > 0.8
    ranks = [list(map(int, r["ranks"].split("|"))) for r in rows]
    assert all(len(r) == 2 for r in ranks)                   # two low-rank layers, last dense
    if method == "fixed":
        assert all(r == [8, 8] for r in ranks)
    else:
        assert ranks[-1] != [4, 4]                           # the ranks adapted
    assert final["ranks"] == ranks[-1]
    assert f"ranks {rows[-1]['ranks']}" in [ln for ln in lines if ": train loss" in ln][-1]
    assert 0 < float(rows[-1]["eval_cr"]) < 1


def test_finetune_phase_keeps_bases_and_ranks(tmp_path):
    c = config(tmp_path, epochs=1, dtype="float64", **LOW_RANK["adaptive"])
    train(c, log=quiet, data=DATA)
    before = model_arrays(Path(c.out) / CHECKPOINT_NAME)
    # fine-tuning decided after the run: finetune_epochs may change on resume
    c = config(tmp_path, epochs=1, finetune_epochs=2, dtype="float64", **LOW_RANK["adaptive"])
    train(c, log=quiet, data=DATA, resume=c.out)
    after = model_arrays(Path(c.out) / CHECKPOINT_NAME)
    for i in (0, 1):
        for f in "UV":
            np.testing.assert_array_equal(before[f"layer{i}.{f}"], after[f"layer{i}.{f}"])
        assert not np.array_equal(before[f"layer{i}.S"], after[f"layer{i}.S"])
    assert not np.array_equal(before["layer2.W"], after["layer2.W"])   # the dense layer trains
    with pytest.raises(ValueError, match="finetune_epochs must be >= 2"):
        train(config(tmp_path, epochs=1, finetune_epochs=1, dtype="float64",
                     **LOW_RANK["adaptive"]), log=quiet, data=DATA, resume=c.out)
    with pytest.raises(ValueError, match="epochs must stay 1"):
        train(config(tmp_path, epochs=2, finetune_epochs=2, dtype="float64",
                     **LOW_RANK["adaptive"]), log=quiet, data=DATA, resume=c.out)
    rows = read_history(c.out)
    assert [r["phase"] for r in rows] == ["train", "finetune", "finetune"]
    assert rows[1]["ranks"] == rows[2]["ranks"] == rows[0]["ranks"]
    assert float(rows[1]["lr"]) == c.lr                      # the schedule restarts
    assert float(rows[2]["train_loss"]) < float(rows[0]["train_loss"])


def test_default_out_folder_and_live_progress(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    final = train(TrainConfig(sizes=SIZES, epochs=1, batch_size=32), log=quiet, data=DATA,
                  progress="off")
    out = Path(final["out"])
    assert out.parent == Path("runs") and out.name.startswith("dense-")
    assert (out / "history.csv").exists()
    stream = io.StringIO()
    bar = Progress("live", quiet, stream)
    bar.start("epoch 1/1", 3, 30)
    for b in range(1, 4):
        bar.update(b, 10 * b)
    bar.finish()
    text = stream.getvalue()
    assert text.startswith("\r") and "batches" in text and "samples/s" in text and "left" in text
    assert text.endswith("\r") and "\n" not in text          # one line, cleared at the end


def test_data_is_cast_once_to_the_model_dtype(tmp_path):
    ds = DATA._replace(X_train=DATA.X_train.astype(np.float64))
    final = train(config(tmp_path, epochs=1, dtype="float32", n_train=64, n_test=32),
                  log=quiet, data=ds)
    assert np.isfinite(final["test_loss"])
    with pytest.raises(ValueError, match="sizes"):
        train(config(tmp_path, name="bad", sizes=[D + 1, 8, K]), log=quiet, data=DATA)
    with pytest.raises(ValueError, match="n_train"):
        train(config(tmp_path, name="bad2", n_train=10 ** 6), log=quiet, data=DATA)


# --------------------------------------------------------------------------------------------
# Checkpoints and resume
# --------------------------------------------------------------------------------------------

RESUME_CASES = [("dense", "float64"), ("dense", "float32"), ("adaptive", "float64"),
                ("adaptive", "float32"), ("fixed", "float32"), ("adaptive+momentum", "float32"),
                ("fixed+momentum", "float64"), ("sonly+momentum", "float64"),
                ("parallel+momentum", "float32")]
LOW_RANK["adaptive+momentum"] = dict(LOW_RANK["adaptive"], lr=0.1, momentum=0.9)
LOW_RANK["fixed+momentum"] = dict(LOW_RANK["fixed"], lr=0.1, momentum=0.9)
# rank 20 in float64: the S-step momentum once kept references to the layer's U and V, and
# U.T @ U_m on one buffer (NumPy's A^T A routine) differs from the product of the separate
# arrays of a resumed run at these sizes (measured; rank 8 or 16 hid it)
LOW_RANK["sonly+momentum"] = dict(method="sonly", rank=20, lr=0.1, momentum=0.9, warmup=0)
LOW_RANK["parallel+momentum"] = dict(LOW_RANK["adaptive"], method="parallel", lr=0.1,
                                     momentum=0.9)


class Interrupt(Exception):
    """Raised by a log callback to stop a run right after an epoch (like Ctrl-C)."""


def stop_after_epoch(epoch):
    def log(line):
        if line.startswith(f"epoch {epoch}/") and ": train loss" in line:
            raise Interrupt(line)
    return log


@pytest.mark.parametrize("method, dtype", RESUME_CASES)
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_two_epochs_equal_one_plus_resume_plus_one(tmp_path, method, dtype, schedule):
    """Bit for bit: parameters, optimiser state and history (but the seconds)."""
    kw = dict(LOW_RANK.get(method, {}), dtype=dtype, schedule=schedule)
    ref = config(tmp_path, "ref", epochs=2, **kw)
    train(ref, log=quiet, data=DATA)
    if schedule == "constant":
        # 1 epoch, then resumed with epochs=2 (epochs may change on resume)
        train(config(tmp_path, "part", epochs=1, **kw), log=quiet, data=DATA)
    else:
        # the cosine schedule spans the run's epochs: interrupt a 2-epoch run after epoch 1
        with pytest.raises(Interrupt):
            train(config(tmp_path, "part", epochs=2, **kw), log=stop_after_epoch(1), data=DATA)
    part = config(tmp_path, "part", epochs=2, **kw)
    train(part, log=quiet, data=DATA, resume=part.out)
    a = model_arrays(Path(ref.out) / CHECKPOINT_NAME)
    b = model_arrays(Path(part.out) / CHECKPOINT_NAME)
    assert a.keys() == b.keys()
    assert ref.validation                  # the default: validation after every epoch
    if method == "dense" or "momentum" in method:
        assert any(k.startswith("opt.") for k in a)           # momentum buffers are compared
    if "momentum" in method:
        assert any(k.startswith("opt.velocity.") for k in a)  # factored DLRT velocities
    for k in a:
        assert a[k].dtype.kind != "f" or a[k].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa
    ref_rows, part_rows = drop(read_history(ref.out)), drop(read_history(part.out))
    if schedule == "constant":
        # the 1-epoch run evaluated the test set after its last epoch, epoch 1; the test
        # columns of that row stay as they were measured
        assert ref_rows[0]["test_acc"] == "" and part_rows[0]["test_acc"] != ""
        part_rows[0].update(test_loss="", test_acc="")
    assert ref_rows == part_rows


@pytest.mark.parametrize("kw", [dict(LOW_RANK["adaptive"], dtype="float32"),
                                dict(LOW_RANK["fixed+momentum"], rank=20, dtype="float64")],
                         ids=["adaptive", "fixed+momentum"])
def test_resume_inside_the_finetune_phase_is_bit_identical(tmp_path, kw):
    kw = dict(kw, epochs=1, finetune_epochs=2)
    ref = config(tmp_path, "ref", **kw)
    train(ref, log=quiet, data=DATA)
    part = config(tmp_path, "part", **kw)
    with pytest.raises(Interrupt):
        train(part, log=stop_after_epoch(2), data=DATA)
    assert load_checkpoint(part.out)["finetune_done"] == 1
    train(part, log=quiet, data=DATA, resume=part.out)
    a = model_arrays(Path(ref.out) / CHECKPOINT_NAME)
    b = model_arrays(Path(part.out) / CHECKPOINT_NAME)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_resume_into_another_folder_keeps_the_history(tmp_path):
    src = config(tmp_path, "src", epochs=1)
    train(src, log=quiet, data=DATA)
    dst = config(tmp_path, "dst", epochs=2)
    train(dst, log=quiet, data=DATA, resume=src.out)
    assert [r["epoch"] for r in read_history(dst.out)] == ["1", "2"]
    assert [r["epoch"] for r in read_history(src.out)] == ["1"]
    run = json.loads((Path(dst.out) / "run.json").read_text())
    assert run["sessions"][-1]["resumed_from"] == str(Path(src.out) / CHECKPOINT_NAME)


def test_resume_refuses_a_different_configuration(tmp_path):
    c = config(tmp_path, epochs=2, dtype="float64")
    train(c, log=quiet, data=DATA)
    before = (Path(c.out) / CHECKPOINT_NAME).read_bytes()
    other = config(tmp_path, epochs=3, dtype="float64", lr=0.01, batch_size=16)
    with pytest.raises(ValueError, match=r"configuration differs.*batch_size.*lr.*force"):
        train(other, log=quiet, data=DATA, resume=c.out)
    assert (Path(c.out) / CHECKPOINT_NAME).read_bytes() == before
    with pytest.raises(ValueError, match="epochs must be >= 2"):   # cannot undo epochs
        train(config(tmp_path, epochs=1, dtype="float64"), log=quiet, data=DATA,
              resume=Path(c.out) / CHECKPOINT_NAME)
    # resuming a finished run changes nothing
    final = train(c, log=quiet, data=DATA, resume=c.out)
    assert final["epoch"] == 2 and (Path(c.out) / CHECKPOINT_NAME).read_bytes() == before
    # force=True accepts a different configuration (and records that it was forced)
    final = train(other, log=quiet, data=DATA, resume=c.out, force=True)
    assert final["epoch"] == 3
    run = json.loads((Path(c.out) / "run.json").read_text())
    assert run["sessions"][-1]["forced"] is True and flat_options(run["config"])["lr"] == 0.01
    # a different method builds different layers: refused even with force
    with pytest.raises(ValueError, match="layer 0"):
        train(config(tmp_path, epochs=3, dtype="float64", **LOW_RANK["fixed"]), log=quiet,
              data=DATA, resume=c.out, force=True)


def test_corrupt_or_truncated_checkpoint_is_refused(tmp_path):
    c = config(tmp_path, epochs=1)
    train(c, log=quiet, data=DATA)
    good = (Path(c.out) / CHECKPOINT_NAME).read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    path = bad / CHECKPOINT_NAME
    path.write_bytes(good[: len(good) // 2])                  # truncated
    with pytest.raises(CheckpointError, match=r"checkpoint .*corrupt or truncated"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(config(tmp_path, "bad", epochs=2), log=quiet, data=DATA, resume=bad)
    with zipfile.ZipFile(io.BytesIO(good)) as z:            # one byte flipped in W's data
        info = z.getinfo("layer0.W.npy")
    header = good[info.header_offset:info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") \
        + int.from_bytes(header[28:30], "little")
    flipped = bytearray(good)
    flipped[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="CRC"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    np.savez(path, a=np.zeros(3))                            # an npz, but not ours
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_checkpoint_holds_no_pickles_and_every_layer(tmp_path):
    c = config(tmp_path, epochs=1, **LOW_RANK["adaptive"])
    train(c, log=quiet, data=DATA)
    ck = load_checkpoint(c.out)                               # allow_pickle=False inside
    assert ck["config"] == c and ck["epochs_done"] == 1 and len(ck["history"]) == 1
    arrays = ck["arrays"]
    assert all(a.dtype != object for a in arrays.values())
    assert [str(arrays[f"layer{i}.kind"]) for i in range(3)] == ["lowrank", "lowrank", "dense"]
    for i in (0, 1):
        r = arrays[f"layer{i}.S"].shape[0]
        assert arrays[f"layer{i}.U"].shape[1] == arrays[f"layer{i}.V"].shape[1] == r


#: Written by the training code of commit 2bb49fc, before it moved into the package
#: ``lowrank_ref.training`` (checkpoint format 1):
#: one epoch of ``config(.., epochs=1, dtype="float64", **LOW_RANK["adaptive+momentum"])`` on
#: ``DATA`` with ``out="run"``. On the machine that wrote it, the new code's epoch 1 and the
#: epoch 2 resumed from it were bit-identical to the old code's.
FORMAT1 = ROOT / "tests" / "fixtures" / "checkpoint_format1.npz"


def test_a_format_1_checkpoint_of_the_old_module_still_resumes(tmp_path):
    """A checkpoint written before the option validation existed reads as a run without it
    (its history rows have no validation columns) and resumes as such."""
    c = config(tmp_path, "old", epochs=1, dtype="float64", validation=False,
               **LOW_RANK["adaptive+momentum"])
    ck = load_checkpoint(FORMAT1)
    assert ck["config"] == dataclasses.replace(c, out="run")
    assert "val_acc" not in ck["history"][0]
    assert (ck["epochs_done"], ck["finetune_done"], ck["opt_phase"]) == (1, 0, "train")
    out = Path(c.out)
    out.mkdir()
    (out / CHECKPOINT_NAME).write_bytes(FORMAT1.read_bytes())
    final = train(dataclasses.replace(c, epochs=2), log=quiet, data=DATA, resume=out)
    assert final["epoch"] == 2 and np.isfinite(final["test_loss"])
    rows = load_checkpoint(out)["history"]
    assert rows[0] == ck["history"][0] and len(rows) == 2
    assert rows[1]["val_acc"] is None and rows[1]["test_acc"] > 0
    assert [r["val_acc"] for r in read_history(out)] == ["", ""]
    fresh = config(tmp_path, "fresh", epochs=1, dtype="float64", **LOW_RANK["adaptive+momentum"])
    train(fresh, log=quiet, data=DATA)
    with np.load(FORMAT1, allow_pickle=False) as a, \
            np.load(Path(fresh.out) / CHECKPOINT_NAME, allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)       # the format has not changed


# --------------------------------------------------------------------------------------------
# Divergence
# --------------------------------------------------------------------------------------------

def test_divergence_names_epoch_batch_and_keeps_the_checkpoint(tmp_path):
    c = config(tmp_path, epochs=1, dtype="float32")
    train(c, log=quiet, data=DATA)
    ckpt = Path(c.out) / CHECKPOINT_NAME
    before = ckpt.read_bytes()
    huge = config(tmp_path, epochs=3, dtype="float32", lr=1e30, schedule="constant")
    with pytest.raises(TrainingDiverged) as info:
        train(huge, log=quiet, data=DATA, resume=c.out, force=True)
    exc = info.value
    assert isinstance(exc, RuntimeError)
    assert exc.epoch == 2 and exc.batch >= 1 and exc.checkpoint == ckpt
    msg = str(exc)
    assert f"epoch 2, batch {exc.batch}" in msg and str(ckpt) in msg and "unchanged" in msg
    assert ckpt.read_bytes() == before
    assert len(read_history(c.out)) == 1
    run = json.loads((Path(c.out) / "run.json").read_text())
    assert run["status"] == "diverged" and "epoch 2" in run["error"]


def test_divergence_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path):
    c = config(tmp_path, epochs=1, lr=1e30, schedule="constant")
    with pytest.raises(TrainingDiverged, match="epoch 1, batch .*no checkpoint was written"):
        train(c, log=quiet, data=DATA)
    assert not (Path(c.out) / CHECKPOINT_NAME).exists()


# --------------------------------------------------------------------------------------------
# Run folder lock (a second process is refused) and Ctrl-C
# --------------------------------------------------------------------------------------------

_HOLDER = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from lowrank_ref.data import Dataset
from lowrank_ref.training import TrainConfig, train
z = np.load({data!r})
ds = Dataset(z["Xtr"], z["ytr"], z["Xte"], z["yte"], "blobs", "child", z["Xva"], z["yva"])

def log(line):          # after epoch 1 (its checkpoint written): hold the folder, slowly
    if line.startswith("epoch 1/") and ": train loss" in line:
        print("READY", flush=True)
        time.sleep(120)

train(TrainConfig.from_dict(json.loads({config!r})), log=log, data=ds)
"""


def _start_holder(tmp_path, c):
    """A real second process training into ``c.out``, paused after its first epoch."""
    data_path = tmp_path / "data.npz"
    np.savez(data_path, Xtr=DATA.X_train, ytr=DATA.y_train, Xte=DATA.X_test, yte=DATA.y_test,
             Xva=DATA.X_valid, yva=DATA.y_valid)
    code = _HOLDER.format(root=str(ROOT), data=str(data_path), config=json.dumps(c.to_dict()))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    ready, _, _ = select.select([child.stdout], [], [], 120)
    line = child.stdout.readline() if ready else ""
    if line.strip() != "READY":
        child.kill()
        child.wait()
        pytest.fail(f"the holder did not start: {line!r} {child.stderr.read()}")
    return child


def test_a_second_process_is_refused_then_a_dead_ones_lock_is_recovered(tmp_path, capsys):
    c = config(tmp_path, epochs=3)
    out = Path(c.out)
    child = _start_holder(tmp_path, c)
    try:
        lock = json.loads((out / LOCK_NAME).read_text())
        assert lock["pid"] == child.pid and lock["host"] == socket.gethostname()
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        # the library: train() and a resume into the same folder are refused, naming the pid
        for kw in ({}, {"resume": out}):
            with pytest.raises(RunFolderInUse) as info:
                train(c, log=quiet, data=DATA, **kw)
            msg = str(info.value)
            assert f"run folder {out} is in use by process {child.pid}" in msg
            assert info.value.pid == child.pid and str(out / LOCK_NAME) in msg
        # the command line: one line, exit status 2
        capsys.readouterr()
        assert main(["train", "--resume", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"in use by process {child.pid}" in err
        # nothing of the holder's run was touched
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    finally:
        child.kill()                        # SIGKILL: no chance to remove its lock
        child.wait(timeout=60)
    assert (out / LOCK_NAME).exists()       # stale now: its process is gone
    lines = []
    final = train(config(tmp_path, epochs=3), log=lines.append, data=DATA, resume=out)
    assert final["epoch"] == 3
    assert any(f"removed the stale lock {out / LOCK_NAME} of process {child.pid}" in ln
               for ln in lines)
    assert not (out / LOCK_NAME).exists()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def _dead_pid():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)            # exited and reaped


def test_lock_files_that_cannot_be_judged_are_refused_with_how_to_remove_them(tmp_path):
    c = config(tmp_path, epochs=1)
    out = Path(c.out)
    out.mkdir()
    lock = out / LOCK_NAME
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.example",
                                "started": "2024-01-01T00:00:00", "token": "x"}))
    with pytest.raises(RunFolderInUse, match=r"locked by process \d+ on host elsewhere\.example"
                       r".*this host .* cannot tell whether it still runs: if it does not, "
                       r"delete .*run\.lock") as info:
        train(c, log=quiet, data=DATA)
    assert info.value.host == "elsewhere.example"
    lock.write_text("")                                       # not a lock of ours
    with pytest.raises(RunFolderInUse, match=r"unreadable\); if no run uses this folder, delete"):
        train(c, log=quiet, data=DATA)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]   # nothing else was written
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(),
                                "started": "2024-01-01T00:00:00", "token": "x"}))
    lines = []
    train(c, log=lines.append, data=DATA)                     # stale on this host: recovered
    assert "removed the stale lock" in lines[0] and not lock.exists()


def test_ctrl_c_mid_epoch_leaves_run_json_interrupted_and_a_resumable_checkpoint(tmp_path):
    kw = dict(LOW_RANK["adaptive+momentum"], dtype="float64", epochs=2)
    ref = config(tmp_path, "ref", **kw)
    train(ref, log=quiet, data=DATA)
    part = config(tmp_path, "part", **kw)
    out = Path(part.out)

    def ctrl_c(line):                  # a progress line of epoch 2, i.e. inside the loop
        assert (out / LOCK_NAME).exists()
        if line.startswith("epoch 2/2: ") and "batches" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(part, log=ctrl_c, data=DATA, progress="lines")
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and "in epoch 2" in run["error"]
    assert str(out / CHECKPOINT_NAME) in run["error"] and run["sessions"][-1]["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists() and not list(out.glob(".*.tmp"))
    ck = load_checkpoint(out)
    assert ck["epochs_done"] == 1 and len(read_history(out)) == 1 == len(ck["history"])
    final = train(part, log=quiet, data=DATA, resume=out)     # continues bit for bit
    assert final["epoch"] == 2
    a, b = model_arrays(Path(ref.out) / CHECKPOINT_NAME), model_arrays(out / CHECKPOINT_NAME)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_ctrl_c_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    c = config(tmp_path, epochs=1)
    train(c, log=quiet, data=DATA)
    out = Path(c.out)
    before = (out / CHECKPOINT_NAME).read_bytes()
    real = np.savez

    def savez_then_ctrl_c(f, **arrays):
        real(f, **arrays)
        raise KeyboardInterrupt          # the data are written, the rename has not happened

    monkeypatch.setattr(np, "savez", savez_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(config(tmp_path, epochs=2), log=quiet, data=DATA, resume=out)
    monkeypatch.setattr(np, "savez", real)
    assert (out / CHECKPOINT_NAME).read_bytes() == before
    assert not list(out.glob(".*.tmp")) and not (out / LOCK_NAME).exists()
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert len(read_history(out)) == 1
    assert train(config(tmp_path, epochs=2), log=quiet, data=DATA, resume=out)["epoch"] == 2


def test_cli_ctrl_c_exits_130_and_records_interrupted(tmp_path, monkeypatch, capsys):
    out = Path(config(tmp_path, epochs=1).out)
    train(config(tmp_path, epochs=1), log=quiet, data=DATA)      # a run to resume
    monkeypatch.setattr(lowrank_ref.data, "load", lambda *args, **kw: DATA)
    calls = []

    def evaluate_then_ctrl_c(*args, **kw):                       # Ctrl-C in epoch 3
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kw)

    monkeypatch.setattr(training.loop, "evaluate", evaluate_then_ctrl_c)
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert load_checkpoint(out)["epochs_done"] == 2 and not (out / LOCK_NAME).exists()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "lowrank_ref", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=120)


def train_actions():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return [a for a in sub.choices["train"]._actions if a.dest != "help"]


def test_cli_help_lists_every_option_with_its_default():
    res = run_cli("train", "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    actions = train_actions()
    expected = {"--method", "--arch", "--rank", "--tau", "--min-rank", "--max-rank", "--passes",
                "--finetune-epochs", "--epochs", "--batch-size", "--lr", "--momentum",
                "--schedule", "--warmup", "--seed", "--dtype", "--dataset", "--data-dir", "--out",
                "--resume", "--hidden", "--n-train", "--n-test", "--force", "--threads",
                "--ranks", "--decay", "--prune-from", "--prune-tau", "--init", "--optimizer",
                "--adam-beta1", "--adam-beta2", "--adam-eps", "--validation", "--no-validation",
                "--n-valid", "--spectrum-length", "--spectrum-norm"}
    assert {s for a in actions for s in a.option_strings} == expected
    for a in actions:
        assert a.option_strings[0] in text
        assert f"(default: {a.default})" in text, a.option_strings[0]
    assert text.count("(default:") == len(actions)
    top = run_cli("--help")
    assert top.returncode == 0 and "train" in top.stdout


@pytest.mark.parametrize("args, needle", [
    (["train", "--epochs", "0"], "epochs"),
    (["train", "--method", "sgd"], "--method"),
    (["train", "--lr", "fast"], "--lr"),
    (["train", "--hidden", "500,x"], "--hidden"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--threads", "two"], "--threads"),
    (["figures", "--threads", "-1"], "--threads"),
    (["train", "--method", "fixed", "--rank", "0"], "rank"),
    (["train", "--resume", "/nonexistent/run"], "no checkpoint"),
    (["fly"], "command"),
])
def test_cli_bad_values_exit_2_with_one_line(args, needle):
    res = run_cli(*args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and needle in err and "error" in err


def test_cli_trains_resumes_and_reports_divergence(tmp_path, monkeypatch, capsys):
    """In-process, with MNIST-shaped made-up data in place of data.load."""
    mnist_like = blobs(seed=1, n_train=128, n_test=64)
    proj = np.random.default_rng(2).standard_normal((D, 784)) / np.sqrt(D)
    fake = mnist_like._replace(X_train=mnist_like.X_train @ proj, X_test=mnist_like.X_test @ proj,
                               X_valid=mnist_like.X_valid @ proj)
    calls = []

    def fake_load(name, data_dir=None, dtype=np.float32, validation=False):
        calls.append((name, data_dir, np.dtype(dtype)))
        return fake if validation else fake._replace(X_valid=None, y_valid=None)

    monkeypatch.setattr(lowrank_ref.data, "load", fake_load)
    out = tmp_path / "run"
    common = ["--hidden", "16,16", "--batch-size", "32", "--dtype", "float64"]
    assert main(["train", *common, "--epochs", "1", "--out", str(out)]) == 0
    assert calls == [("mnist", None, np.dtype("float64"))]
    # resume: the configuration comes from the checkpoint; only --epochs changes
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert [r["epoch"] for r in read_history(out)] == ["1", "2"]
    assert load_checkpoint(out)["config"].sizes == [784, 16, 16, 10]
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "3", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "configuration differs" in err and "lr" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--resume", str(out), "--epochs", "3", "--lr", "1e30",
                 "--schedule", "constant", "--force"]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "epoch 3, batch" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# Real MNIST (slow)
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_dense_training_on_real_mnist_briefly(tmp_path):
    import time
    t0 = time.perf_counter()
    c = TrainConfig(sizes=[784, 128, 128, 10], epochs=2, batch_size=64, n_train=10000,
                    n_test=2000, out=str(tmp_path / "mnist"))
    final = train(c, log=quiet)
    assert final["test_acc"] > 0.90, final
    assert time.perf_counter() - t0 < 60


# --------------------------------------------------------------------------------------------
# Sweep, figures and oracle commands
# --------------------------------------------------------------------------------------------

def test_sweep_writes_the_table_and_resumes_finished_runs(tmp_path):
    base = config(tmp_path, method="adaptive", rank=6, tau=0.1, lr=0.5, epochs=1)
    dense = config(tmp_path, epochs=1)
    table = training.sweep([0.05, 0.3], base, results_dir=tmp_path / "res", dense=dense,
                            log=quiet, data=DATA)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["dense", "tau-0.05", "tau-0.3"]
    assert set(training.TABLE_COLUMNS) == set(rows[0])
    assert rows[0]["method"] == "dense" and rows[0]["tau"] == "" and rows[0]["eval_cr"] == "0.0"
    ranks = [[int(r) for r in row["ranks"].split("|")] for row in rows[1:]]
    assert sum(ranks[1]) <= sum(ranks[0])          # a larger tau never keeps more rank here
    for row in rows:
        assert 0 <= float(row["test_acc"]) <= 100
        hist = read_history(tmp_path / "res" / "mnist_runs" / row["run"])
        assert abs(100 * float(hist[-1]["test_acc"]) - float(row["test_acc"])) < 0.006
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "res" / "mnist_runs").glob("*/checkpoint.npz")}
    training.sweep([0.05, 0.3], base, results_dir=tmp_path / "res", dense=dense, log=quiet, data=DATA)
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after                          # finished runs are read, not retrained


@pytest.mark.parametrize("taus", [[], [-0.1], [float("nan")]])
def test_sweep_refuses_bad_taus(tmp_path, taus):
    base = config(tmp_path, method="adaptive", rank=6, tau=0.1)
    with pytest.raises(ValueError, match="taus"):
        training.sweep(taus, base, results_dir=tmp_path, data=DATA, log=quiet)


def _cli(*args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "lowrank_ref", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_figures_fast_writes_the_integrator_pngs(tmp_path):
    res = _cli("figures", "--only", "integrators", "--fast", "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for name in ("integrators_convergence.png", "integrators_robustness.png"):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_cli_figures_without_results_is_a_clear_error(tmp_path):
    res = _cli("figures", "--only", "mnist", "--results", str(tmp_path / "none"), cwd=tmp_path)
    assert res.returncode == 2 and "mnist_dense_table.csv" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_oracle_export_then_verify_round_trips(tmp_path):
    res = _cli("oracle", "export", str(tmp_path / "golden"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert _cli("oracle", "verify", str(tmp_path / "golden"), cwd=tmp_path).returncode == 0
    victim = sorted((tmp_path / "golden").glob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    res = _cli("oracle", "verify", str(tmp_path / "golden"), cwd=tmp_path)
    assert res.returncode == 1 and victim.name in res.stdout


# --------------------------------------------------------------------------------------------
# LeNet5 runs (arch="lenet5"): the same records, checkpoints and resume as the MLP
# --------------------------------------------------------------------------------------------

def images(seed=1, n_train=96, n_test=32, n_valid=32):
    """Made-up 28 x 28 images as rows of 784 pixels in [0, 1] (as the loaders give MNIST),
    with a validation part (drawn last)."""
    rng = np.random.default_rng(seed)
    centres = rng.random((K, 784))

    def draw(n):
        y = rng.integers(0, K, n)
        return np.clip(centres[y] + 0.2 * rng.standard_normal((n, 784)), 0, 1), y

    tr, te = draw(n_train), draw(n_test)
    return Dataset(*tr, *te, "images", "made up in test_train.py", *draw(n_valid))


IMAGES = images()
LENET5 = {"dense": dict(method="dense", momentum=0.9),
          "fixed": dict(method="fixed", rank=4, momentum=0.9),
          "adaptive": dict(method="adaptive", rank=8, tau=0.2, momentum=0.9),
          "parallel": dict(method="parallel", rank=8, tau=0.2, momentum=0.9),
          "adaptive+adam-carried": dict(method="adaptive", rank=8, tau=0.2, lr=0.002,
                                        optimizer="adam-carried")}


def lenet_config(tmp_path, name="lenet", **kw):
    base = dict(arch="lenet5", epochs=2, batch_size=32, lr=0.02, out=str(tmp_path / name))
    base.update(kw)
    return TrainConfig(**base)


def test_lenet5_config_defaults_and_errors():
    c = TrainConfig(arch="lenet5", method="adaptive", tau=0.2)
    assert (c.epochs, c.batch_size, c.sizes, c.rank) == (10, 128, None, 500)
    assert (c.lr, c.schedule) == (training.config.LENET5_DEFAULTS["lr"]["adaptive"],
                                  training.config.LENET5_DEFAULTS["schedule"])
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert TrainConfig().arch == "mlp" and TrainConfig().sizes == list(training.DEFAULT_SIZES)
    with pytest.raises(ValueError, match="sizes is only used by arch 'mlp'"):
        TrainConfig(arch="lenet5", sizes=[784, 10])
    with pytest.raises(ValueError, match="arch must be one of"):
        TrainConfig(arch="resnet")


@pytest.mark.parametrize("method", sorted(LENET5))
def test_lenet5_two_epochs_equal_one_plus_resume_plus_one(tmp_path, method):
    """Bit for bit, with momentum (the factored velocities of the low-rank convolutions are
    in the checkpoint): the records of a LeNet5 run are those of an MLP run."""
    kw = dict(LENET5[method])
    ref = lenet_config(tmp_path, "ref", **kw)
    final = train(ref, log=quiet, data=IMAGES)
    with pytest.raises(Interrupt):
        train(lenet_config(tmp_path, "part", **kw), log=stop_after_epoch(1), data=IMAGES)
    part = lenet_config(tmp_path, "part", **kw)
    train(part, log=quiet, data=IMAGES, resume=part.out)
    a = model_arrays(Path(ref.out) / CHECKPOINT_NAME)
    b = model_arrays(Path(part.out) / CHECKPOINT_NAME)
    kinds = [str(a[f"layer{i}.kind"]) for i in range(4)]
    assert kinds == {"dense": ["conv2d", "conv2d", "dense", "dense"]}.get(
        method, ["lowrank_conv2d", "lowrank_conv2d", "lowrank", "dense"])
    if "adam" in method:                              # the carried moments of the convolutions
        assert {"opt.carried.0.mK", "opt.carried.1.mS"} <= a.keys()
    assert any(k.startswith("opt.") for k in a)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa
    assert drop(read_history(ref.out)) == drop(read_history(part.out))
    run = json.loads((Path(ref.out) / "run.json").read_text())
    assert run["status"] == "finished" and flat_options(run["config"])["arch"] == "lenet5"
    assert final["dense_params"] == 430_500
    if method != "dense":
        assert len(final["ranks"]) == 3 and all(1 <= r for r in final["ranks"])


def test_lenet5_data_must_be_28_by_28_images(tmp_path):
    bad = Dataset(np.zeros((8, 20)), np.zeros(8, int), np.zeros((4, 20)), np.zeros(4, int),
                  "x", "made up")
    with pytest.raises(ValueError, match=r"arch 'lenet5' takes images of 1 x 28 x 28 = 784 "
                                         r"pixels.*X_train has shape \(8, 20\)"):
        train(lenet_config(tmp_path, validation=False), log=quiet, data=bad)
    c = config(tmp_path, "mlp", epochs=1, sizes=[784, 8, 8, 8, 10])   # 4 layers, like LeNet5
    train(c, log=quiet, data=IMAGES)
    with pytest.raises(CheckpointError, match="layer 0 is 'dense', the configuration's method "
                                              "builds a 'conv2d' layer"):
        train(lenet_config(tmp_path, "mlp", epochs=2), log=quiet, data=IMAGES, resume=c.out,
              force=True)


def test_lenet5_sweep_over_seeds_names_runs_and_writes_its_table(tmp_path):
    base = lenet_config(tmp_path, method="adaptive", tau=0.2, rank=6, epochs=1)
    dense = lenet_config(tmp_path, epochs=1)
    table = training.sweep([0.3], base, results_dir=tmp_path / "res", dense=dense, log=quiet,
                           data=IMAGES, seeds=[3, 1])
    assert table == tmp_path / "res" / "mnist_lenet5_table.csv"
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], r["seed"]) for r in rows] == [
        ("dense-seed3", "3"), ("tau-0.3-seed3", "3"), ("dense-seed1", "1"), ("tau-0.3-seed1", "1")]
    for row in rows:
        run = json.loads((tmp_path / "res" / "lenet5_runs" / row["run"] / "run.json").read_text())
        options = flat_options(run["config"])
        assert options["seed"] == int(row["seed"]) and options["arch"] == "lenet5"
    with pytest.raises(ValueError, match="seeds must be a non-empty sequence of distinct"):
        training.sweep([0.3], base, results_dir=tmp_path, log=quiet, data=IMAGES, seeds=[1, 1])
    with pytest.raises(ValueError, match="dense must have the arch of base"):
        training.sweep([0.3], base, results_dir=tmp_path, log=quiet, data=IMAGES,
                       dense=config(tmp_path))


def test_cli_lenet5_options(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lowrank_ref.data, "load", lambda *a, **k: IMAGES)
    out = tmp_path / "cli"
    assert main(["train", "--arch", "lenet5", "--method", "adaptive", "--tau", "0.2",
                 "--rank", "6", "--epochs", "1", "--batch-size", "48", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    options = flat_options(run["config"])
    assert options["arch"] == "lenet5" and options["sizes"] is None
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert [r["epoch"] for r in read_history(out)] == ["1", "2"]
    capsys.readouterr()
    assert main(["train", "--arch", "lenet5", "--hidden", "100", "--out", str(tmp_path / "x")]) == 2
    assert "--hidden is only used by --arch mlp" in capsys.readouterr().err
