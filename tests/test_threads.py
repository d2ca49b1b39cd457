"""The package chooses the BLAS thread count: applied where it computes, restored afterwards."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lowrank_ref import dlrt, ops
from lowrank_ref.data import Dataset, split_validation
from lowrank_ref.nn import MLP
from lowrank_ref.threads import (DEFAULT_THREADS, blas_info, blas_threads, check_threads,
                                 get_default_threads, set_default_threads, uses_blas_threads)
from lowrank_ref.training import TrainConfig, train
from lowrank_ref.training.specs import flat_options

REPO = Path(__file__).resolve().parents[1]


def _counts():
    return [lib["num_threads"] for lib in blas_info()]


@pytest.fixture
def two_threads():
    """The libraries at 2 threads (as OpenBLAS's default on a 2-core machine), restored after."""
    with threadpool_limits(2, user_api="blas"):
        assert set(_counts()) == {2}
        yield


def test_default_is_one_thread():
    assert DEFAULT_THREADS == 1 and get_default_threads() == 1


def test_blas_info_lists_numpy_and_scipy_blas():
    info = blas_info()
    assert info, "no BLAS library found"
    assert all({"library", "version", "num_threads", "filename"} <= set(d) for d in info)
    assert all(os.sep not in d["filename"] for d in info)


def test_limit_applied_inside_and_restored_after(two_threads):
    with blas_threads(1) as n:
        assert n == 1 and set(_counts()) == {1}
    assert set(_counts()) == {2}


def test_none_leaves_the_libraries_alone(two_threads):
    with blas_threads(None):
        assert set(_counts()) == {2}


def test_restored_after_an_exception(two_threads):
    with pytest.raises(RuntimeError):
        with blas_threads(1):
            raise RuntimeError("boom")
    assert set(_counts()) == {2}


def test_optimiser_step_runs_with_the_package_default(two_threads):
    seen = []

    def loss_fn(outputs, y):              # called inside the step
        seen.append(_counts())
        return ops.cross_entropy(outputs, y)

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    for opt in (dlrt.DenseSGD(MLP.dense([6, 5, 3], rng), 0.1, loss_fn=loss_fn),
                dlrt.FixedRankKLS(dlrt.low_rank_mlp([6, 5, 3], 2, rng), 0.1, loss_fn=loss_fn),
                dlrt.AdaptiveKLS(dlrt.low_rank_mlp([6, 5, 3], 2, rng), 0.1, tau=0.1,
                                 loss_fn=loss_fn),
                dlrt.SOnlySGD(dlrt.low_rank_mlp([6, 5, 3], 2, rng), 0.1, loss_fn=loss_fn)):
        seen.clear()
        opt.step(X, y)
        assert seen and all(set(c) == {1} for c in seen), (type(opt).__name__, seen)
        assert set(_counts()) == {2}, "the step did not restore the limit"


def test_enclosing_block_and_default_are_respected(two_threads):
    probe = uses_blas_threads(_counts)
    assert set(probe()) == {1}
    with blas_threads(2):
        assert set(probe()) == {2}          # the enclosing block wins over the default
    old = set_default_threads(None)
    try:
        assert set(probe()) == {2}          # None: the libraries' own setting
    finally:
        assert set_default_threads(old) is None
    assert get_default_threads() == 1


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                      (True, TypeError), ("2", TypeError)])
def test_bad_thread_counts(bad, exc):
    with pytest.raises(exc, match="threads"):
        check_threads(bad)
    with pytest.raises(exc, match="threads"):
        with blas_threads(bad):
            pass
    with pytest.raises(exc, match="threads"):
        set_default_threads(bad)
    with pytest.raises(exc, match="threads"):          # the same rule in the configuration
        TrainConfig(threads=bad)


def test_train_runs_limited_records_it_and_restores(two_threads, tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 5)), rng.integers(0, 3, 32)
    ds = split_validation(Dataset(X, y, X[:8], y[:8], "toy", "made up"), 8)
    seen = []
    config = TrainConfig(method="adaptive", tau=0.1, rank=2, sizes=[5, 4, 3], epochs=1,
                         batch_size=16, out=str(tmp_path))
    train(config, log=lambda line: seen.append(_counts()), data=ds, progress="off")
    assert seen and all(set(c) == {1} for c in seen)
    assert set(_counts()) == {2}
    run = json.loads((tmp_path / "run.json").read_text())
    assert flat_options(run["config"])["threads"] == 1
    assert run["sessions"][-1]["threads"]["requested"] == 1
    assert {d["num_threads"] for d in run["sessions"][-1]["threads"]["blas"]} == {1}
    # threads may change on resume (a performance setting, not part of the experiment)
    train(config.replace(epochs=2, threads=None),
          log=lambda line: seen.append(_counts()), data=ds, resume=tmp_path, progress="off")
    assert set(seen[-1]) == {2}


def test_works_when_numpy_was_imported_first():
    """A notebook: NumPy and SciPy loaded (and their pools started) before lowrank_ref."""
    code = (
        "import numpy as np, scipy.linalg\n"
        "a = np.ones((300, 300)); a @ a\n"
        "from threadpoolctl import threadpool_limits\n"
        "threadpool_limits(2, user_api='blas')\n"
        "from lowrank_ref.threads import blas_threads, blas_info\n"
        "before = {d['num_threads'] for d in blas_info()}\n"
        "with blas_threads(1):\n"
        "    inside = {d['num_threads'] for d in blas_info()}\n"
        "after = {d['num_threads'] for d in blas_info()}\n"
        "print(sorted(before), sorted(inside), sorted(after), len(blas_info()))\n")
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_NUM_THREADS") and k != "VECLIB_MAXIMUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out[:3] == ["[2]", "[1]", "[2]"], out
    assert int(out[3]) >= 1


@pytest.mark.parametrize("command", [["train"], ["sweep", "--taus", "0.1"], ["figures"]])
def test_command_line_threads_option(command):
    from lowrank_ref.__main__ import build_parser
    parse = build_parser().parse_args
    assert parse(command).threads == DEFAULT_THREADS
    assert parse(command + ["--threads", "2"]).threads == 2
    assert parse(command + ["--threads", "all"]).threads is None


def test_set_blas_threads_holds_until_restored(two_threads):
    from lowrank_ref.threads import set_blas_threads
    restore = set_blas_threads(1)
    try:
        assert set(_counts()) == {1} and get_default_threads() == 1
        assert set(uses_blas_threads(_counts)()) == {1}
    finally:
        restore()
    assert set(_counts()) == {2} and get_default_threads() == 1
    restore = set_blas_threads(None)           # None: no limit, and no default for the steps
    try:
        assert set(_counts()) == {2} and get_default_threads() is None
    finally:
        restore()
    assert get_default_threads() == 1
