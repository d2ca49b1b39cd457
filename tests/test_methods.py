"""The method registry (lowrank_ref.methods): every record trains, refuses what it does not use,
and is the one source of the configuration's defaults, the command line and the docs' table."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from lowrank_ref.__main__ import build_parser, main
from lowrank_ref.dlrt import FixedRankBUG
from lowrank_ref.methods import (METHOD_OPTIONS, METHODS, REGISTRY, Method,
                                 check_method_options, make_optimizer, method_table,
                                 methods_using)
from lowrank_ref.nn import MLP
from lowrank_ref.training import TrainConfig, train
from lowrank_ref.training.config import (ADAM_METHODS, DEFAULT_LR, LENET5_DEFAULTS,
                                         LENET5_METHODS, OPTIMIZERS, arch_default,
                                         build_optimizer, input_shape, n_classes)
from lowrank_ref.training.starts import build_model
from made_up_data import blobs

ROOT = Path(__file__).resolve().parents[1]
SIZES = [12, 8, 8, 10]
#: A value other than the unset one for every method option (on SIZES' two hidden layers).
SET_VALUES = {"rank": 3, "tau": 0.1, "min_rank": 2, "max_rank": 3, "passes": 3,
              "finetune_epochs": 1, "ranks": [2, 2], "decay": 2.0, "prune_from": "a-dense-run",
              "spectrum_length": 10.0, "spectrum_norm": 1.0}


def _config(name, arch="mlp", **options):
    required = {option: SET_VALUES[option] for option in REGISTRY[name].required}
    sizes = {"sizes": SIZES} if arch == "mlp" else {}
    return TrainConfig(method=name, arch=arch, dtype="float64", **sizes, **required, **options)


def test_set_values_cover_every_method_option():
    assert set(SET_VALUES) == set(METHOD_OPTIONS)
    for name, (unset, what) in METHOD_OPTIONS.items():
        assert SET_VALUES[name] != unset and what


def test_the_registry_is_the_list_of_methods():
    assert METHODS == tuple(REGISTRY) and len(set(METHODS)) == len(METHODS)
    assert LENET5_METHODS == tuple(m for m in METHODS if "lenet5" in REGISTRY[m].archs)
    for optimizer in OPTIMIZERS[1:]:
        assert ADAM_METHODS[optimizer] == tuple(m for m in METHODS
                                                if optimizer in REGISTRY[m].optimizers)
    for record in REGISTRY.values():
        assert "sgd" in record.optimizers and record.help and record.title
        assert set(record.optimizers) <= set(OPTIMIZERS)
        for arch, defaults in record.defaults.items():
            # a default rank exactly when the method takes a rank
            expected = {"lr", "momentum", "warmup"} | ({"rank"} & set(record.options))
            assert set(defaults) == expected, (record.name, arch)
            for option, value in defaults.items():
                assert arch_default(arch, option, record.name) == value
    assert DEFAULT_LR == {m: REGISTRY[m].defaults["mlp"]["lr"] for m in METHODS}
    assert LENET5_DEFAULTS["rank"] == {m: REGISTRY[m].defaults["lenet5"]["rank"]
                                       for m in LENET5_METHODS if "rank" in REGISTRY[m].options}


def _one_step(config):
    model = build_model(config)
    optimizer = build_optimizer(config, model)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, *input_shape(config)))
    y = rng.integers(0, n_classes(config), 6)
    before = [p.value.copy() for p in model.parameters()]
    result = optimizer.step(X, y)
    return optimizer, before, model, result


@pytest.mark.parametrize("name,arch", [(m, a) for m in METHODS for a in REGISTRY[m].archs])
def test_each_method_trains_one_step_on_each_architecture_it_declares(name, arch):
    record = REGISTRY[name]
    optimizer, before, model, result = _one_step(_config(name, arch))
    assert isinstance(optimizer, record.optimizer)
    assert np.isfinite(result.loss)
    after = [p.value for p in model.parameters()]
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(after, before))


@pytest.mark.parametrize("name,optimizer", [(m, o) for m in METHODS
                                            for o in REGISTRY[m].optimizers if o != "sgd"])
def test_each_method_steps_with_each_direction_rule_it_declares(name, optimizer):
    rank = {"rank": 2} if "rank" in REGISTRY[name].options else {}   # under Adam's cap 8 // 2
    _, _, _, result = _one_step(_config(name, optimizer=optimizer, **rank))
    assert np.isfinite(result.loss)


@pytest.mark.parametrize("name,option", [(m, o) for m in METHODS for o in METHOD_OPTIONS
                                         if o not in REGISTRY[m].options])
def test_each_option_a_method_does_not_declare_is_refused_naming_option_and_method(name,
                                                                                   option):
    with pytest.raises(ValueError) as info:
        _config(name, **{option: SET_VALUES[option]})
    message = str(info.value)
    users = methods_using(option)
    assert message.startswith(f"{option} is only used by "), message
    assert f"for method {name!r}" in message and all(repr(u) in message for u in users)


@pytest.mark.parametrize("name,arch", [(m, a) for m in METHODS for a in ("mlp", "lenet5")
                                       if a not in REGISTRY[m].archs])
def test_an_architecture_a_method_does_not_declare_is_refused(name, arch):
    with pytest.raises(ValueError, match=f"method must be one of .* for arch {arch!r}, got "
                                         f"{name!r}"):
        _config(name, arch)


@pytest.mark.parametrize("name,optimizer", [(m, o) for m in METHODS for o in OPTIMIZERS
                                            if o not in REGISTRY[m].optimizers])
def test_a_direction_rule_a_method_does_not_declare_is_refused(name, optimizer):
    with pytest.raises(ValueError, match=f"optimizer {optimizer!r} is implemented for methods "
                                         f".*got method {name!r}"):
        _config(name, optimizer=optimizer)


@pytest.mark.parametrize("name", [m for m in METHODS if REGISTRY[m].required])
def test_a_required_option_left_unset_is_refused(name):
    for option in REGISTRY[name].required:
        with pytest.raises(ValueError, match=f"{option} is required for method {name!r}"):
            TrainConfig(method=name, sizes=SIZES)


def test_make_optimizer_takes_the_options_of_the_record_only():
    model = MLP.dense(SIZES, np.random.default_rng(0), np.float64)
    with pytest.raises(ValueError, match="passes is only used by method 'adaptive', got "
                                         "passes=3 for method 'dense'"):
        make_optimizer("dense", model, 0.1, passes=3)
    with pytest.raises(ValueError, match="unknown method option"):
        check_method_options("dense", momentum=0.5)


def test_the_command_line_offers_the_registry(capsys):
    for name in METHODS:
        assert build_parser().parse_args(["train", "--method", name]).method == name
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(METHODS) + "}" in help_text
    for record in REGISTRY.values():
        assert f"{record.name}: {record.help}" in help_text


def test_a_vanilla_run_with_fine_tuning_is_refused_before_it_trains(capsys):
    # it used to train the main epochs and then fail: SOnly needs low-rank layers
    assert main(["train", "--method", "vanilla", "--finetune-epochs", "1"]) == 2
    assert "finetune_epochs is only used by methods" in capsys.readouterr().err


def test_the_docs_method_table_is_the_registry():
    text = (ROOT / "docs" / "cli.md").read_text()
    assert method_table() in text, ("docs/cli.md's method table differs from the registry; "
                                    "paste lowrank_ref.methods.method_table() there")


def test_a_new_record_is_all_a_method_needs(monkeypatch, tmp_path):
    """docs/design.md, section "How to add a method": one record, and the configuration, its
    defaults, the checks, the command line, training and resuming follow."""
    record = Method("fixed-copy", "fixed-rank DLRT under another name (a test)", FixedRankBUG,
                    "lowrank", {"mlp": {"lr": 0.05, "momentum": 0.5, "warmup": 0, "rank": 3}},
                    options=("rank",), title="a copy of fixed")
    monkeypatch.setitem(REGISTRY, record.name, record)
    config = TrainConfig(method="fixed-copy", sizes=SIZES, epochs=2, batch_size=32,
                         dtype="float64", out=str(tmp_path / "run"))
    assert (config.lr, config.momentum, config.warmup, config.rank) == (0.05, 0.5, 0, 3)
    with pytest.raises(ValueError, match="tau is only used by methods .* for method "
                                         "'fixed-copy'"):
        TrainConfig(method="fixed-copy", sizes=SIZES, tau=0.1)
    with pytest.raises(ValueError, match="method must be one of .* for arch 'lenet5'"):
        TrainConfig(method="fixed-copy", arch="lenet5")
    assert "fixed-copy" in methods_using("rank") and record.name in method_table()
    lines = []
    final = train(config, log=lines.append, data=blobs(d=SIZES[0]))
    assert lines[0].startswith("a copy of fixed, rank 3 training of 12-8-8-10")
    assert final["ranks"] == [3, 3] and final["epoch"] == 2
    again = train(dataclasses.replace(config, epochs=3), log=lines.append,
                  data=blobs(d=SIZES[0]), resume=tmp_path / "run")
    assert again["epoch"] == 3
    assert build_parser().parse_args(["train", "--method", "fixed-copy"]).method == "fixed-copy"
