"""What a run record keeps of where it comes from: one session per call of ``train`` that
trained (when, at which commit, on which platform, which epochs), kept across resumes; and a
finished run that is resumed is left as it is, byte for byte.
"""
import json
import platform
import socket
from pathlib import Path

import numpy as np
import pytest

import lowrank_ref.data
from lowrank_ref.__main__ import main
from lowrank_ref.training import TrainConfig, train
from lowrank_ref.training import records
from lowrank_ref.training.specs import flat_options

from made_up_data import blobs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
D, K = 12, 10
DATA = blobs(d=D, k=K, source="made up in test_provenance.py")


def quiet(line):
    pass


def config(tmp_path, **kw):
    return TrainConfig(**{**dict(sizes=[D, 16, K], epochs=1, batch_size=32, lr=0.05,
                                 out=str(tmp_path / "run")), **kw})


def record(out) -> dict:
    return json.loads((Path(out) / "run.json").read_text())


def snapshot(out) -> dict:
    return {p.name: p.read_bytes() for p in sorted(Path(out).iterdir())}


class Stop(Exception):
    pass


def stop_after(epoch):
    def log(line):
        if line.startswith(f"epoch {epoch}/") and ": train loss" in line:
            raise Stop(line)
    return log


def test_resuming_a_finished_run_changes_nothing_and_says_so(tmp_path):
    c = config(tmp_path, epochs=2, method="fixed", rank=3, finetune_epochs=1, warmup=0)
    final = train(c, log=quiet, data=DATA)
    before = snapshot(c.out)
    lines = []
    again = train(c, log=lines.append, data=DATA, resume=c.out)
    assert snapshot(c.out) == before
    assert any("finished" in line and "nothing to train" in line for line in lines), lines
    assert {k: again[k] for k in final if k not in ("seconds",)} == {
        k: final[k] for k in final if k not in ("seconds",)}


def test_cli_resume_of_a_finished_run_reads_no_data_and_writes_nothing(tmp_path, monkeypatch,
                                                                          capsys):
    proj = np.random.default_rng(2).standard_normal((D, 784)) / np.sqrt(D)
    fake = DATA._replace(X_train=DATA.X_train @ proj, X_test=DATA.X_test @ proj,
                         X_valid=DATA.X_valid @ proj)
    loads = []
    monkeypatch.setattr(lowrank_ref.data, "load",
                        lambda *a, **k: loads.append(a) or fake)
    out = tmp_path / "run"
    assert main(["train", "--hidden", "8", "--epochs", "1", "--out", str(out)]) == 0
    before, n = snapshot(out), len(loads)
    assert main(["train", "--resume", str(out)]) == 0
    assert snapshot(out) == before and len(loads) == n
    assert "nothing to train" in capsys.readouterr().out


def test_every_call_that_trains_appends_a_session(tmp_path):
    c = config(tmp_path, epochs=3, schedule="constant")
    with pytest.raises(Stop):
        train(c, log=stop_after(1), data=DATA)
    train(config(tmp_path, epochs=2, schedule="constant"), log=quiet, data=DATA, resume=c.out)
    train(c, log=quiet, data=DATA, resume=c.out)
    run = record(c.out)
    sessions = run["sessions"]
    assert [s["status"] for s in sessions] == ["failed", "finished", "finished"]
    assert [[e["epoch"] for e in s["epochs"]] for s in sessions] == [[1], [2], [3]]
    assert [s["resumed_from"] for s in sessions] == [
        None, str(Path(c.out) / "checkpoint.npz"), str(Path(c.out) / "checkpoint.npz")]
    for s in sessions:
        assert s["started"] <= s["ended"] and all(s["started"] <= e["finished"] <= s["ended"]
                                                  for e in s["epochs"])
        assert set(s) >= {"git_commit", "git_dirty", "platform", "versions", "threads",
                          "forced", "seconds"}
        assert s["versions"]["python"] == platform.python_version()
        assert s["versions"]["numpy"] == np.__version__
        assert s["platform"]["machine"] == platform.machine()
        assert s["threads"]["blas"] and all("num_threads" in lib for lib in s["threads"]["blas"])
    assert run["status"] == "finished" and "error" not in run
    assert "Stop" in sessions[0]["error"]


def test_no_machine_name_in_a_run_record(tmp_path):
    c = config(tmp_path)
    train(c, log=quiet, data=DATA)
    host = socket.gethostname()
    assert len(host) < 4 or host not in (Path(c.out) / "run.json").read_text()


def test_a_record_of_the_earlier_format_keeps_its_provenance_as_the_first_session(tmp_path):
    c = config(tmp_path, epochs=1)
    train(c, log=quiet, data=DATA)
    old = {k: v for k, v in record(c.out).items() if k != "sessions"}
    old.update(versions={"python": "3.11.7", "numpy": "2.4.6", "lowrank_ref": "0.1.0"},
               git_commit="a56e5b8f39cff9318f5b3b25d63eea2c104b0abe", resumed_from=None,
               forced=False, started="2026-11-27T13:38:34", finished="2026-11-27T13:40:00",
               threads={"requested": 1, "blas": []}, pid=1234, seconds=86.0)
    (Path(c.out) / "run.json").write_text(json.dumps(old, indent=2) + "\n")
    train(config(tmp_path, epochs=2), log=quiet, data=DATA, resume=c.out)
    first, second = record(c.out)["sessions"]
    assert first["git_commit"] == "a56e5b8f39cff9318f5b3b25d63eea2c104b0abe"
    assert first["started"] == "2026-11-27T13:38:34" and first["epochs"] is None
    assert "earlier format" in first["note"] and first["pid"] == 1234
    assert [e["epoch"] for e in second["epochs"]] == [2]


def test_resuming_into_another_folder_carries_the_sessions(tmp_path):
    src = config(tmp_path, epochs=1)
    train(src, log=quiet, data=DATA)
    dst = config(tmp_path, epochs=2, out=str(tmp_path / "dst"))
    train(dst, log=quiet, data=DATA, resume=src.out)
    assert [[e["epoch"] for e in s["epochs"]] for s in record(dst.out)["sessions"]] == [[1], [2]]
    assert len(record(src.out)["sessions"]) == 1


@pytest.mark.parametrize("run_json", sorted(RESULTS.rglob("run.json")),
                         ids=lambda p: str(p.relative_to(RESULTS)))
def test_the_committed_records_still_load(run_json):
    """Their configuration builds with every recorded option unchanged and round-trips
    through the parts, and their provenance reads as sessions (the committed records are of
    the earlier formats: flat options, one call's provenance at the top level)."""
    run = json.loads(run_json.read_text())
    config = TrainConfig.from_dict(run["config"])
    recorded = flat_options(run["config"])
    assert {name: config.to_flat()[name] for name in recorded} == recorded
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    sessions = records.sessions_of(run)
    assert sessions and all(isinstance(s, dict) and "git_commit" in s for s in sessions)


def test_a_session_of_a_killed_process_is_marked_killed_on_resume(tmp_path):
    """A process killed outright leaves its session "running" in run.json; the next call,
    holding the folder's lock, knows better."""
    c = config(tmp_path, epochs=2, schedule="constant")
    train(config(tmp_path, epochs=1, schedule="constant"), log=quiet, data=DATA)
    run = record(c.out)
    run["status"] = run["sessions"][0]["status"] = "running"      # as kill -9 leaves it
    del run["sessions"][0]["ended"]
    (Path(c.out) / "run.json").write_text(json.dumps(run))
    train(c, log=quiet, data=DATA, resume=c.out)
    assert [s["status"] for s in record(c.out)["sessions"]] == ["killed", "finished"]


def test_a_run_recorded_with_a_flat_configuration_resumes_bit_for_bit(tmp_path):
    """A checkpoint and run.json written before the configuration had parts (options by
    name, no ``validation``: the whole training set) resume as that run, and the resumed
    epochs equal those of an uninterrupted run."""
    whole = config(tmp_path, epochs=3, validation=False, out=str(tmp_path / "whole"))
    train(whole, log=quiet, data=DATA)
    c = whole.replace(out=str(tmp_path / "run"))
    with pytest.raises(Stop):
        train(c, log=stop_after(1), data=DATA)
    flat = {k: v for k, v in c.to_flat().items() if k != "validation"}
    ckpt = Path(c.out) / "checkpoint.npz"
    with np.load(ckpt) as z:
        arrays = {k: z[k] for k in z.files}
    assert list(json.loads(str(arrays["config"]))) == ["model", "start", "step", "data", "run"]
    arrays["config"] = np.array(json.dumps(flat))
    np.savez(ckpt, **arrays)
    (Path(c.out) / "run.json").write_text(json.dumps({**record(c.out), "config": flat}))
    train(c, log=quiet, data=DATA, resume=c.out)
    assert TrainConfig.from_dict(record(c.out)["config"]) == c
    assert list(record(c.out)["config"]) == ["model", "start", "step", "data", "run"]

    def rows(out):         # history.csv but the column of seconds
        return [line.rsplit(",", 1)[0]
                for line in (Path(out) / "history.csv").read_text().splitlines()]
    assert len(rows(c.out)) == 4 and rows(c.out) == rows(whole.out)
