"""The library side of the command line (lowrank_ref.training.commands) and the loop without
I/O (lowrank_ref.training.epoch): what __main__ used to do by hand, tested on its own."""
import builtins
import io
import os
import sys

import numpy as np
import pytest

from lowrank_ref.nn import MLP
from lowrank_ref.optimizers import Euclidean
from lowrank_ref.training import TrainConfig, train
from lowrank_ref.training import commands
from lowrank_ref.training.commands import (COMPARISONS, dense_baseline, mlp_sizes,
                                           resumed_config, run_comparison)
from lowrank_ref.training.epoch import NonFinite, check_epoch, train_epoch
from made_up_data import blobs

SIZES = [12, 8, 8, 10]


def quiet(line):
    pass


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "fixed"
    train(TrainConfig(method="fixed", rank=3, sizes=SIZES, epochs=1, batch_size=32,
                      dtype="float64", out=str(out)), log=quiet, data=blobs())
    return out


def test_resumed_config_is_the_runs_own_with_the_options_given(finished_run):
    own = TrainConfig.from_dict(dict(TrainConfig(method="fixed", rank=3, sizes=SIZES,
                                                 epochs=1, batch_size=32,
                                                 dtype="float64").to_dict()))
    config = resumed_config(finished_run, {"epochs": 3})
    assert config.epochs == 3 and config.out is None      # out None: the resumed folder
    assert config == own.replace(epochs=3)
    config = resumed_config(finished_run, {"out": "elsewhere"}, hidden=[7, 7])
    assert config.sizes == [12, 7, 7, 10] and config.out == "elsewhere"
    with pytest.raises(ValueError, match=r"unknown configuration option\(s\) \['hidden'\]"):
        resumed_config(finished_run, {"hidden": [7, 7]})


def test_mlp_sizes_keep_the_ends_and_refuse_lenet5():
    assert mlp_sizes(None) is None
    assert mlp_sizes([5], ends=SIZES) == [12, 5, 10]
    with pytest.raises(ValueError, match="--hidden is only used by --arch mlp"):
        mlp_sizes([5], arch="lenet5")


def test_the_dense_baseline_shares_network_data_and_schedule_length():
    base = TrainConfig(method="adaptive", tau=0.1, sizes=SIZES, epochs=3, batch_size=16,
                       seed=4, dtype="float64", n_train=50, lr=0.05, threads=None)
    dense = dense_baseline(base)
    assert dense.method == "dense" and dense.lr == TrainConfig().lr   # its own defaults
    for name in ("sizes", "epochs", "batch_size", "seed", "dtype", "n_train", "threads",
                 "validation", "dataset"):
        assert getattr(dense, name) == getattr(base, name), name


@pytest.mark.parametrize("experiment", sorted(COMPARISONS))
def test_run_comparison_refuses_the_options_of_other_experiments_before_training(
        experiment, tmp_path, monkeypatch):
    calls = []
    run, own, refused = COMPARISONS[experiment]
    monkeypatch.setitem(COMPARISONS, experiment,
                        (lambda **kw: calls.append(kw), own, refused))
    for name in refused:
        with pytest.raises(ValueError, match=f"'{name}'.* not options of compare {experiment}"):
            run_comparison(experiment, {name: 1, "lr": 0.1}, results_dir=tmp_path)
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_run_comparison_passes_its_own_options_and_the_runs_options(tmp_path, monkeypatch):
    calls = []
    _, own, refused = COMPARISONS["methods"]
    monkeypatch.setitem(COMPARISONS, "methods", (lambda **kw: calls.append(kw), own, refused))
    run_comparison("methods", {"taus": [0.1], "finetune_lr": 0.01, "vanilla_lr": 0.02,
                               "epochs": 2, "lr": 0.05, "sizes": SIZES}, results_dir=tmp_path,
                   log=quiet)
    (kw,) = calls
    assert kw["taus"] == [0.1] and kw["epochs"] == 2
    assert kw["finetune_options"] == {"lr": 0.01}
    assert kw["method_options"] == {"vanilla": {"lr": 0.02}}
    assert kw["options"] == {"lr": 0.05, "sizes": SIZES}
    with pytest.raises(ValueError, match="experiment must be one of"):
        run_comparison("all", {})


def test_prune_run_refuses_lenet5_runs(monkeypatch):
    monkeypatch.setattr(commands, "load_config", lambda run: TrainConfig(arch="lenet5"))
    with pytest.raises(ValueError, match="prune works on dense runs of arch 'mlp'"):
        commands.prune_run("a-lenet5-run", ranks=[2])


def _model_and_batches(seed=0):
    rng = np.random.default_rng(seed)
    model = MLP.dense([6, 8, 3], rng, np.float64)
    X, y = rng.standard_normal((12, 6)), rng.integers(0, 3, 12)
    return model, [(X[i:i + 4], y[i:i + 4]) for i in range(0, 12, 4)]


def test_train_epoch_does_no_file_or_terminal_work(monkeypatch, capsys):
    model, batches = _model_and_batches()

    def refuse(*args, **kwargs):
        raise AssertionError("train_epoch opened a file")
    for module in (builtins, io, os):
        monkeypatch.setattr(module, "open", refuse)
    monkeypatch.setattr(sys.stdout, "write", refuse)
    monkeypatch.setattr(sys.stderr, "write", refuse)
    seen = []
    stats = train_epoch(model, Euclidean(model, 0.1), batches, lambda b: 0.1 * (b + 1),
                        on_batch=lambda done, n, m: seen.append((done, n)))
    monkeypatch.undo()
    assert capsys.readouterr() == ("", "")
    assert seen == [(1, 4), (2, 8), (3, 12)]
    assert (stats.n_batches, stats.seen, stats.first_lr, stats.last_lr) == (3, 12, 0.1,
                                                                             pytest.approx(0.3))
    assert np.isfinite(stats.train_loss) and 0 <= stats.train_acc <= 1


def test_train_epoch_equals_the_steps_it_takes():
    model, batches = _model_and_batches()
    twin, _ = _model_and_batches()
    stats = train_epoch(model, Euclidean(model, 0.1), batches, lambda b: 0.1)
    opt = Euclidean(twin, 0.1)
    losses = [opt.step(X, y).loss for X, y in batches]
    assert stats.train_loss == sum(losses) / 3
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.value, q.value)


def test_a_non_finite_loss_raises_naming_batch_and_lr():
    model, batches = _model_and_batches()
    with pytest.raises(NonFinite) as info:
        train_epoch(model, Euclidean(model, 1e300), batches, lambda b: 1e300)
    assert info.value.batch in (2, 3) and info.value.lr == 1e300
    assert "the loss is" in info.value.what or "non-finite" in info.value.what


def test_check_epoch_refuses_non_finite_parameters_and_losses():
    model, batches = _model_and_batches()
    stats = train_epoch(model, Euclidean(model, 0.1), batches, lambda b: 0.1)
    check_epoch(model, {"val_loss": 1.0, "test_loss": None}, True, stats)
    with pytest.raises(NonFinite, match="validation loss after the last step at batch 3"):
        check_epoch(model, {"val_loss": float("nan")}, True, stats)
    model.parameters()[0].value[0, 0] = np.inf
    with pytest.raises(NonFinite, match="non-finite parameters or test loss"):
        check_epoch(model, {"test_loss": 1.0}, False, stats)


def test_the_library_side_of_the_command_line_refuses_bad_arguments_by_name():
    from lowrank_ref.methods import methods_using
    from lowrank_ref.training.commands import dense_baseline, run_comparison
    from lowrank_ref.training.epoch import train_epoch
    with pytest.raises(TypeError, match="base must be a TrainConfig, got str"):
        dense_baseline("x")
    with pytest.raises(TypeError, match="options must be a dict .* got NoneType"):
        run_comparison("methods", None)
    with pytest.raises(ValueError, match="option must be one of"):
        methods_using("nonsense")
    with pytest.raises(ValueError, match="arch must be one of"):
        methods_using("tau", arch="resnet")
    model = MLP.dense([4, 3, 2], np.random.default_rng(0), np.float64)
    opt = Euclidean(model, 0.1)
    with pytest.raises(TypeError, match="schedule must be"):
        train_epoch(model, opt, [], 0.1)
    with pytest.raises(TypeError, match="optimizer must be a lowrank_ref Optimizer, got str"):
        train_epoch(model, "sgd", [], lambda b: 0.1)
    with pytest.raises(TypeError, match="model must be a lowrank_ref Network, got list"):
        train_epoch([], opt, [], lambda b: 0.1)
