"""Bad inputs and injected faults that once got through (a traceback, a silently wrong run, a
file written where it must not be). Each test of a defect failed on the code before its fix;
the controls (``test_an_untampered_optimiser_state_resumes``) show that the checks refuse
nothing the package writes.

The command line is called in-process (``main([...])``) with MNIST-shaped made-up data in
place of :func:`lowrank_ref.data.load`, so that a check that comes too late shows up as a
data load or a file written before the error.
"""
import gzip
import json
import os
import re
import shutil
import socket
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import lowrank_ref.data
from lowrank_ref._validate import check_path
from lowrank_ref.__main__ import main
from lowrank_ref.data import write_idx
from lowrank_ref.data.idx import idx_bytes
from lowrank_ref.nn import MLP
from lowrank_ref.pruning import prune_model, pruned_ranks
from lowrank_ref.training import CheckpointError, TrainConfig, train
from lowrank_ref.training.compare import compare_methods

from made_up_data import blobs

D, K = 12, 10
DATA = blobs(d=D, k=K, source="made up in test_hostile_inputs.py")
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
    fake = DATA._replace(X_train=DATA.X_train @ proj, X_test=DATA.X_test @ proj,
                         X_valid=DATA.X_valid @ proj)
    calls = []

    def load(name, data_dir=None, dtype=np.float32, validation=False):
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


# --------------------------------------------------------------------------------------------
# One line instead of a traceback
# --------------------------------------------------------------------------------------------

def test_a_network_too_large_is_refused_before_anything_is_allocated(tmp_path, capsys,
                                                                     mnist_like):
    with pytest.raises(ValueError, match=r"sizes \[784, 100000, 100000, 10\] make a network of "
                       r"10,079,600,010 dense parameters .* at most 100,000,000"):
        TrainConfig(sizes=[784, 100000, 100000, 10])
    TrainConfig(sizes=[784, 9000, 9000, 10])                  # 8.8e7 parameters: accepted
    err = one_line_error(capsys, cli("train", "--hidden", "100000,100000",
                                     "--out", str(tmp_path / "x")))
    assert "--hidden" in err and "100,000,000" in err
    assert listing(tmp_path) == [] and mnist_like == []


@pytest.mark.parametrize("args", [
    ["train", "--threads", "99999999999999999999"],
    ["train", "--threads", "100000"],
    ["figures", "--fast", "--only", "integrators", "--threads", "99999999999999999999"],
])
def test_an_impossible_thread_count_is_one_line(tmp_path, monkeypatch, capsys, mnist_like, args):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, cli(*args, "--out", str(tmp_path / "x")))
    assert "threads" in err and "1024" in err
    assert listing(tmp_path) == []


def test_a_lock_holding_an_impossible_pid_is_refused_in_one_line(tmp_path, capsys, mnist_like):
    out = tmp_path / "run"
    out.mkdir()
    lock = out / "run.lock"
    lock.write_text(json.dumps({"pid": 2 ** 40, "host": socket.gethostname(),
                                "started": "2024-01-01T00:00:00", "token": "x"}))
    err = one_line_error(capsys, cli("train", "--hidden", "4", "--out", str(out)))
    assert str(lock) in err and "delete" in err
    assert listing(out) == ["run.lock"]


def trained(tmp_path, name="run", **kw):
    c = config(tmp_path, name, **kw)
    train(c, log=quiet, data=DATA)
    return Path(c.out)


def rewrite_checkpoint(path: Path, change) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize("change, needle", [
    (lambda rows: rows[0].pop("seconds"), "history row 1 lacks ['seconds']"),
    (lambda rows: rows[0].update(seconds="fast"), "history row 1: seconds must be a finite number"),
    (lambda rows: rows[0].update(phase="warmup"), "history row 1: phase must be 'train'"),
    (lambda rows: rows[0].update(epoch=7), "history row 1: epoch must be 1"),
    (lambda rows: rows.append(dict(rows[0])), "history has 2 rows for 1 epochs done"),
    (lambda rows: rows.__setitem__(0, [1, 2]), "history row 1 must be a dict"),
])
def test_a_checkpoint_with_bad_history_rows_is_refused_naming_it(tmp_path, change, needle):
    out = trained(tmp_path)

    def tamper(arrays):
        rows = json.loads(str(arrays["history"]))
        change(rows)
        arrays["history"] = np.array(json.dumps(rows))
    rewrite_checkpoint(out / "checkpoint.npz", tamper)
    with pytest.raises(CheckpointError) as info:
        train(config(tmp_path, epochs=2), log=quiet, data=DATA, resume=out)
    assert needle in str(info.value) and str(out / "checkpoint.npz") in str(info.value)


def test_an_npy_file_given_as_checkpoint_is_one_line(tmp_path, capsys):
    path = tmp_path / "weights.npy"
    np.save(path, np.ones(3))
    err = one_line_error(capsys, cli("train", "--resume", str(path)))
    assert f"checkpoint {path} is not an .npz archive" in err


def test_force_without_resume_is_refused(tmp_path, capsys, mnist_like):
    err = one_line_error(capsys, cli("train", "--force", "--out", str(tmp_path / "x")))
    assert "--force" in err and "--resume" in err
    with pytest.raises(ValueError, match="force applies only with resume"):
        train(config(tmp_path), force=True, log=quiet, data=DATA)
    assert listing(tmp_path) == [] and mnist_like == []


def test_a_data_dir_that_does_not_exist_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOWRANK_REF_DATA", raising=False)
    missing = tmp_path / "nonexistent"
    with pytest.raises(FileNotFoundError, match=f"data_dir {missing} is not a folder"):
        lowrank_ref.data.load("mnist", data_dir=missing)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="data_dir .*file is not a folder"):
        lowrank_ref.data.load("mnist", data_dir=tmp_path / "file")
    err = one_line_error(capsys, cli("train", "--data-dir", str(missing), "--hidden", "4",
                                     "--n-train", "10", "--n-test", "10",
                                     "--out", str(tmp_path / "x")))
    assert str(missing) in err


def test_missing_fashion_mnist_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOWRANK_REF_DATA", raising=False)
    monkeypatch.setattr(lowrank_ref.data.datasets, "DEBIAN_FASHION_DIR", tmp_path / "none")
    err = one_line_error(capsys, cli("train", "--dataset", "fashion-mnist",
                                     "--out", str(tmp_path / "x")))
    assert "no Fashion-MNIST data found" in err and "apt-get install dataset-fashion-mnist" in err
    assert "$LOWRANK_REF_DATA: not set" in err


# --------------------------------------------------------------------------------------------
# A tampered optimiser state is refused, naming the checkpoint (never a broadcast error in the
# first step, never accepted silently)
# --------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "dense": dict(momentum=0.9),
    "fixed": dict(method="fixed", rank=4, momentum=0.9, warmup=0),
    "adaptive": dict(method="adaptive", rank=4, tau=0.05, momentum=0.9, warmup=0),
    "sonly": dict(method="fixed", rank=4, momentum=0.9, warmup=0, finetune_epochs=1),
    "vanilla": dict(method="vanilla", rank=4, momentum=0.9, warmup=0),
    "adam": dict(optimizer="adam", momentum=0.0),
    "paper-adam": dict(method="adaptive", rank=4, tau=0.05, optimizer="adam", momentum=0.0,
                       warmup=0),
    "carried-adam": dict(method="adaptive", rank=4, tau=0.05, optimizer="adam-carried",
                         momentum=0.0, warmup=0),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One finished epoch (the S-only run: one main and one fine-tuning epoch) per optimiser."""
    root = tmp_path_factory.mktemp("optimisers")
    return {name: trained(root, name, **kw) for name, kw in OPTIMIZERS.items()}


def _opt_keys(arrays, ndim=None):
    return sorted(k for k in arrays if k.startswith("opt.")
                  and (ndim is None or (arrays[k].ndim == ndim
                                        and len(set(arrays[k].shape)) == ndim)))


def _drop(a):
    a.pop(_opt_keys(a)[0])


def _unknown(a):
    a["opt.bogus"] = np.ones(3)


def _renamed_copy(a):
    k = _opt_keys(a)[0]
    a[k + "9"] = a[k]


def _transposed(a):
    k = _opt_keys(a, ndim=2)[0]
    a[k] = a[k].T.copy()


def _one_row(a):                      # broadcasts against the parameter it stands for
    k = _opt_keys(a, ndim=2)[0]
    a[k] = a[k][:1].copy()


def _extra_row(a):
    k = _opt_keys(a, ndim=2)[0]
    a[k] = np.vstack([a[k], a[k][:1]])


def _other_phase(a):
    a["opt_phase"] = np.array("finetune" if str(a["opt_phase"]) == "train" else "train")


def _no_phase(a):
    a["opt_phase"] = np.array("warmup")


TAMPERINGS = {"a state array dropped": _drop, "an unknown state array": _unknown,
              "a state array copied under another name": _renamed_copy,
              "a state array transposed": _transposed, "a state array cut to one row": _one_row,
              "a state array with an extra row": _extra_row,
              "the optimiser phase of the other phase": _other_phase,
              "an optimiser phase that is none": _no_phase}


def _adam_step(value):
    def change(a):
        a["opt.adam_t"] = np.array(value)
    return change


def _negative_second_moment(a):
    k = next(k for k in _opt_keys(a) if k.startswith("opt.adam_v."))
    a[k] = -1.0 - np.abs(a[k])


ADAM_TAMPERINGS = {"a fractional Adam step count": _adam_step(2.5),
                   "a negative Adam step count": _adam_step(-5.0),
                   "an Adam step count too large for float32": _adam_step(1e300),
                   "a negative Adam second moment": _negative_second_moment}

CASES = [(opt, what) for opt in OPTIMIZERS for what in TAMPERINGS] + [
    (opt, what) for opt in ("adam", "paper-adam", "carried-adam") for what in ADAM_TAMPERINGS]


@pytest.mark.parametrize("name, what", CASES)
def test_a_tampered_optimiser_state_is_refused(tmp_path, checkpoints, name, what):
    out = tmp_path / name
    shutil.copytree(checkpoints[name], out)
    rewrite_checkpoint(out / "checkpoint.npz", {**TAMPERINGS, **ADAM_TAMPERINGS}[what])
    more = dict(finetune_epochs=2) if name == "sonly" else dict(epochs=2)
    before = (out / "checkpoint.npz").read_bytes()
    with pytest.raises(CheckpointError, match=str(out / "checkpoint.npz")):
        train(config(tmp_path, name, **{**OPTIMIZERS[name], **more}), log=quiet, data=DATA,
              resume=out)
    assert (out / "checkpoint.npz").read_bytes() == before


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_an_untampered_optimiser_state_resumes(tmp_path, checkpoints, name):
    """The checks above refuse nothing that the package writes."""
    out = tmp_path / name
    shutil.copytree(checkpoints[name], out)
    more = dict(finetune_epochs=2) if name == "sonly" else dict(epochs=2)
    final = train(config(tmp_path, name, **{**OPTIMIZERS[name], **more}), log=quiet, data=DATA,
                  resume=out)
    assert final["epoch"] == 2 + (name == "sonly")


def test_with_force_a_state_that_does_not_fit_is_dropped_with_a_note(tmp_path, checkpoints):
    out = tmp_path / "dense"
    shutil.copytree(checkpoints["dense"], out)
    lines = []
    train(config(tmp_path, "dense", epochs=2, momentum=0.0), log=lines.append, data=DATA,
          resume=out, force=True)
    assert any("optimiser" in line and "starts afresh" in line for line in lines), lines


# --------------------------------------------------------------------------------------------
# prune: the lock of the record folder, and never into its own source
# --------------------------------------------------------------------------------------------

MNIST_SIZES = [784, 10, 8, K]


def files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def dense_run(tmp_path, mnist_like):
    out = tmp_path / "dense"
    train(TrainConfig(sizes=MNIST_SIZES, epochs=1, batch_size=32, out=str(out)), log=quiet)
    return out


def test_prune_out_into_a_folder_in_use_is_refused(tmp_path, capsys, dense_run):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "history.csv").write_text("the records of a run that is training\n")
    (busy / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                               "started": "2024-01-01T00:00:00", "token": "x"}))
    before = files(busy)
    err = one_line_error(capsys, cli("prune", str(dense_run), "--ranks", "2,2",
                                     "--out", str(busy)))
    assert f"in use by process {os.getpid()}" in err
    assert files(busy) == before


@pytest.mark.parametrize("source, out", [("dense", "dense"), ("dense/checkpoint.npz", "dense"),
                                         ("dense", "dense/../dense")])
def test_prune_into_its_own_source_is_refused(tmp_path, capsys, dense_run, source, out):
    before = files(dense_run)
    err = one_line_error(capsys, cli("prune", str(tmp_path / source), "--ranks", "2,2",
                                     "--out", str(tmp_path / out)))
    assert "would be overwritten" in err
    with pytest.raises(ValueError, match="would be overwritten"):
        train(TrainConfig(method="fixed", ranks=[2, 2], prune_from=str(tmp_path / source),
                          sizes=MNIST_SIZES, epochs=1, out=str(tmp_path / out)), log=quiet)
    assert files(dense_run) == before


# --------------------------------------------------------------------------------------------
# Every option of a command is checked before its first run
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, option", [
    (["compare", "methods", "--finetune-lr", "-1"], "--finetune-lr"),
    (["compare", "methods", "--finetune-lr", "inf"], "--finetune-lr"),
    (["compare", "methods", "--vanilla-lr", "0"], "--vanilla-lr"),
    (["compare", "methods", "--vanilla-lr", "nan"], "--vanilla-lr"),
    (["compare", "methods", "--init", "keras-normal"], "init"),        # the pruned runs refuse
    (["compare", "methods", "--optimizer", "adam"], "optimizer"),      # fixed-rank refuses
    (["compare", "methods", "--finetune-epochs", "0"], "finetune_epochs"),
    (["compare", "methods", "--taus", "0.1,-1"], "taus"),
    (["compare", "illconditioned", "--decays", "0.5"], "decays"),
    (["compare", "illconditioned", "--rank", "0"], "rank"),
    (["compare", "illconditioned", "--optimizer", "adam"], "optimizer"),
    (["compare", "recipe", "--taus", "nan"], "taus"),
    (["compare", "recipe", "--momentum", "0.9"], "momentum"),
    (["sweep", "--taus", "0.1,-1"], "taus"),
])
def test_every_option_is_checked_before_the_first_run(tmp_path, capsys, mnist_like, args,
                                                      option):
    err = one_line_error(capsys, cli(*args, "--hidden", "6,6", "--epochs", "1",
                                     "--results", str(tmp_path)))
    assert option in err
    assert mnist_like == [] and listing(tmp_path) == []


@pytest.mark.parametrize("kw, needle", [
    (dict(finetune_options={"lr": -1.0}), "finetune_options"),
    (dict(method_options={"vanilla": {"lr": 0.0}}), "method_options['vanilla']"),
    (dict(options={"init": "keras-normal"}), "prune"),
])
def test_compare_methods_checks_every_run_before_the_first(tmp_path, kw, needle):
    kw = dict(kw)
    options = {"sizes": SIZES, **kw.pop("options", {})}
    with pytest.raises(ValueError, match=re.escape(needle)):
        compare_methods(taus=(0.1,), epochs=1, finetune_epochs=1, options=options,
                        results_dir=tmp_path, data=DATA, log=quiet, **kw)
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------------------------
# What a killed run leaves behind, and a pruned run whose source moved
# --------------------------------------------------------------------------------------------

def test_the_next_run_of_a_folder_removes_the_temporary_files_of_a_killed_write(tmp_path):
    out = trained(tmp_path)
    leftovers = [".checkpoint.npz.k2j3h4_a.tmp", ".run.json.abc123.tmp", ".history.csv.x1.tmp"]
    others = [".checkpoint.npz.tmp", "notes.tmp", ".other.abc123.tmp", "checkpoint.npz.ab.tmp"]
    for name in leftovers + others:
        (out / name).write_bytes(b"partial")
    lines = []
    train(config(tmp_path, epochs=2), log=lines.append, data=DATA, resume=out)
    assert [n for n in leftovers if (out / n).exists()] == []
    assert [n for n in others if not (out / n).exists()] == []
    assert any("removed" in line and ".run.json.abc123.tmp" in line for line in lines)


def test_a_pruned_run_resumes_after_its_source_moved(tmp_path):
    dense = trained(tmp_path, "dense", epochs=2)
    kw = dict(method="fixed", ranks=[3, 3], prune_from=str(dense), warmup=0, momentum=0.9,
              schedule="constant")
    train(config(tmp_path, "ref", epochs=2, **kw), log=quiet, data=DATA)
    train(config(tmp_path, "part", epochs=1, **kw), log=quiet, data=DATA)
    dense.rename(tmp_path / "moved")
    train(config(tmp_path, "part", epochs=2, **kw), log=quiet, data=DATA,
          resume=tmp_path / "part")
    with np.load(tmp_path / "ref" / "checkpoint.npz") as a, \
            np.load(tmp_path / "part" / "checkpoint.npz") as b:
        keys = [k for k in a.files if k.startswith(("layer", "opt."))]
        assert keys == [k for k in b.files if k.startswith(("layer", "opt."))]
        for k in keys:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# --------------------------------------------------------------------------------------------
# Non-finite weights never reach LAPACK; a gzip bomb is refused while it is read
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", ["W", "b"])
def test_pruning_refuses_non_finite_weights_naming_the_layer(bad, where):
    model = MLP.dense([5, 4, 3, 2], np.random.default_rng(0))
    getattr(model.layers[1], where).value.flat[0] = bad
    for call in (lambda: prune_model(model, ranks=[2, 2]), lambda: prune_model(model, tau=0.1),
                 lambda: pruned_ranks(model, 0.1)):
        with pytest.raises(ValueError, match=rf"model.layers\[1\].{where} must be finite, got 1 "
                                             r"NaN/Inf entries"):
            call()


def test_a_gzip_bomb_is_refused_while_it_is_read(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("t10k", 2)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n))
    assert lowrank_ref.data.load("mnist", data_dir=tmp_path, verify=False).y_test.size == 2
    bomb = tmp_path / "train-images-idx3-ubyte.gz"     # 3 images, then 64 MiB of zeros
    bomb.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
                                   + bytes(64 << 20)))
    for verify in (False, True):
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match=f"{bomb}: decompresses to more than 2368 bytes"):
                lowrank_ref.data.load("mnist", data_dir=tmp_path, verify=verify)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 << 20, f"{peak / 2 ** 20:.0f} MiB held while refusing the bomb"
