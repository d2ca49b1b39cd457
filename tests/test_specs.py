"""The typed configuration: five parts, each checked where it is made, one configuration
that checks what needs two parts, run records that round-trip (lowrank_ref.training.specs,
TrainConfig)."""
import dataclasses
import json

import pytest
from hypothesis import given, strategies as st

import numpy as np

from lowrank_ref.training import (DataSpec, ModelSpec, RunSpec, StartSpec, StepSpec,
                                  TrainConfig, build_model)
from lowrank_ref.training.specs import OPTION_NAMES, PART_OF, PARTS, flat_options

# (part, options, error class, message substring): one mistake each, refused by the part
# alone, without a configuration around it.
PART_MISTAKES = [
    (ModelSpec, {"arch": "cnn"}, ValueError, "arch must be one of"),
    (ModelSpec, {"sizes": 784}, TypeError, "sizes"),
    (ModelSpec, {"arch": "lenet5", "sizes": [784, 10]}, ValueError,
     "sizes is only used by arch 'mlp'"),
    (ModelSpec, {"sizes": [784, 100000, 100000, 10]}, ValueError, "dense parameters"),
    (ModelSpec, {"dtype": "float16"}, TypeError, "dtype"),
    (StartSpec, {"rank": 0}, ValueError, "rank must be an int >= 1"),
    (StartSpec, {"ranks": [3, 0]}, ValueError, "ranks"),
    (StartSpec, {"decay": 0.5}, ValueError, "decay must be a finite number >= 1"),
    (StartSpec, {"init": "zeros"}, ValueError, "init must be one of"),
    (StartSpec, {"prune_from": ""}, ValueError, "prune_from must be a non-empty path"),
    (StartSpec, {"prune_tau": 0.1}, ValueError, "prune_tau is only used with prune_from"),
    (StartSpec, {"prune_from": "run"}, ValueError, "needs exactly one of ranks and prune_tau"),
    (StartSpec, {"prune_from": "run", "ranks": [2], "decay": 2.0}, ValueError,
     "decay and init do not apply"),
    (StartSpec, {"prune_from": "run", "prune_tau": 0.1, "rank": 3}, ValueError,
     "rank must be None with prune_tau"),
    (StartSpec, {"decay": 2.0, "init": "glorot"}, ValueError, "init does not apply"),
    (StartSpec, {"ranks": [2, 5], "rank": 3}, ValueError, "max(ranks) = 5"),
    (StartSpec, {"spectrum_length": 0.0}, ValueError, "spectrum_length must be a finite number > 0"),
    (StartSpec, {"spectrum_norm": "1"}, TypeError, "spectrum_norm must be a finite number > 0"),
    (StartSpec, {"decay": 2.0, "spectrum_norm": 1.0}, ValueError,
     "['spectrum_norm'] shape the drawn start only: they do not apply with decay"),
    (StartSpec, {"init": "keras-normal", "spectrum_length": 10.0}, ValueError,
     "do not apply with init='keras-normal'"),
    (StartSpec, {"prune_from": "run", "ranks": [2], "spectrum_norm": 1.0}, ValueError,
     "do not apply with prune_from"),
    (StepSpec, {"method": "sgd"}, ValueError, "method must be one of"),
    (StepSpec, {"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
    (StepSpec, {"lr": 0.0}, ValueError, "lr must be a finite number > 0, got 0.0"),
    (StepSpec, {"lr": "0.1"}, TypeError, "lr must be a finite number > 0, got str"),
    (StepSpec, {"momentum": 1.0}, ValueError, "momentum must be a finite number >= 0 and < 1"),
    (StepSpec, {"min_rank": 5, "max_rank": 3}, ValueError, "max_rank"),
    (StepSpec, {"passes": 2}, ValueError, "passes must be 1 or 3"),
    (StepSpec, {"adam_beta1": 0.5}, ValueError, "adam_beta1 is only used by the Adam"),
    (StepSpec, {"optimizer": "adam", "momentum": 0.9}, ValueError,
     "momentum is only used by optimizer 'sgd'"),
    (StepSpec, {"optimizer": "adam", "method": "adaptive", "tau": 0.1, "passes": 3},
     ValueError, "passes must be 1 with optimizer 'adam'"),
    (StepSpec, {"optimizer": "adam", "method": "fixed"}, ValueError,
     "optimizer 'adam' is implemented for methods"),
    (DataSpec, {"dataset": "cifar"}, ValueError, "dataset must be one of"),
    (DataSpec, {"data_dir": ""}, ValueError, "data_dir must be a non-empty path"),
    (DataSpec, {"n_train": 0}, ValueError, "n_train"),
    (DataSpec, {"validation": "yes"}, TypeError, "validation"),
    (DataSpec, {"validation": False, "n_valid": 5}, ValueError,
     "n_valid is only used with validation=True"),
    (RunSpec, {"epochs": 0}, ValueError, "epochs must be an int >= 1, got 0"),
    (RunSpec, {"epochs": 1.5}, TypeError, "epochs must be an int >= 1, got float 1.5"),
    (RunSpec, {"finetune_epochs": -1}, ValueError, "finetune_epochs"),
    (RunSpec, {"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
    (RunSpec, {"schedule": "step"}, ValueError, "schedule must be one of"),
    (RunSpec, {"warmup": -1}, ValueError, "warmup must be an int >= 0"),
    (RunSpec, {"seed": -1}, ValueError, "seed"),
    (RunSpec, {"out": ""}, ValueError, "out must be a non-empty path"),
    (RunSpec, {"threads": 0}, ValueError, "threads"),
]


@pytest.mark.parametrize("spec, options, error, message", PART_MISTAKES,
                         ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_each_part_refuses_its_own_mistakes_where_it_is_made(spec, options, error, message):
    with pytest.raises(error) as info:
        spec(**options)
    assert message in str(info.value)
    # ... and the configuration given the same options by name says the same, once (the
    # start's options with a method that uses them: "dense" would refuse them first)
    with pytest.raises(error) as again:
        TrainConfig(**({"method": "fixed"} if spec is StartSpec else {}), **options)
    assert str(again.value) == str(info.value)


def test_parts_and_configuration_are_immutable():
    config = TrainConfig(method="adaptive", tau=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.step.lr = 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.step = StepSpec()
    assert config.lr == 0.1


def test_every_option_belongs_to_exactly_one_part_and_reads_as_an_attribute():
    config = TrainConfig(method="adaptive", tau=0.1, seed=4, dataset="fashion-mnist")
    assert set(PART_OF) == set(OPTION_NAMES) and len(OPTION_NAMES) == 36
    for name in OPTION_NAMES:
        assert getattr(config, name) == getattr(getattr(config, PART_OF[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'bogus'"):
        config.bogus


def test_parts_given_whole_or_by_name_make_the_same_configuration():
    by_name = TrainConfig(method="fixed", rank=7, lr=0.05, sizes=[784, 64, 10], seed=3,
                          dtype="float64", epochs=2, n_train=100)
    by_part = TrainConfig(model=ModelSpec(sizes=[784, 64, 10], dtype="float64"),
                          start=StartSpec(rank=7), step=StepSpec(method="fixed", lr=0.05),
                          data=DataSpec(n_train=100), run=RunSpec(epochs=2, seed=3))
    assert by_name == by_part
    # options by name replace those of a part given too; the result is checked again
    assert TrainConfig(step=StepSpec(method="fixed", lr=0.05), lr=0.2).lr == 0.2
    with pytest.raises(ValueError, match="tau is only used by"):
        TrainConfig(step=StepSpec(method="fixed"), tau=0.1)
    assert by_name.replace(seed=5).seed == 5 and by_name.seed == 3


def test_wrong_part_classes_and_unknown_options_are_type_errors():
    with pytest.raises(TypeError, match="step must be a StepSpec or None, got RunSpec"):
        TrainConfig(step=RunSpec())
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['learning_rate'\]"):
        TrainConfig(learning_rate=0.1)


def test_what_needs_two_parts_is_checked_by_the_configuration_once():
    # the method (step) against an option of the start, of the run, of the model
    with pytest.raises(ValueError, match=r"^rank is only used by methods"):
        TrainConfig(start=StartSpec(rank=3))
    with pytest.raises(ValueError, match=r"^prune_from is only used by methods"):
        TrainConfig(method="adaptive", tau=0.1, prune_from="run", prune_tau=0.1)
    with pytest.raises(ValueError, match=r"^finetune_epochs is only used by methods"):
        TrainConfig(run=RunSpec(finetune_epochs=2))
    with pytest.raises(ValueError, match=r"^tau is required for method 'adaptive'"):
        TrainConfig(method="adaptive")
    with pytest.raises(ValueError, match="method must be one of .* for arch 'lenet5'"):
        TrainConfig(arch="lenet5", method="sonly")
    with pytest.raises(ValueError, match="ranks must give one rank per hidden layer"):
        TrainConfig(method="fixed", ranks=[3, 3])
    with pytest.raises(ValueError, match=r"ranks\[0\] must be <= min\(n_in, n_out\) = 8"):
        TrainConfig(method="fixed", sizes=[784, 8, 10], ranks=[9])
    with pytest.raises(ValueError, match="apply to arch 'mlp' only"):
        TrainConfig(arch="lenet5", method="fixed", init="glorot")
    with pytest.raises(ValueError, match="finetune_epochs .* not implemented with optimizer "
                                         "'adam'"):
        TrainConfig(method="adaptive", tau=0.1, optimizer="adam", finetune_epochs=1)


def test_defaults_are_filled_in_from_architecture_and_method():
    c = TrainConfig(arch="lenet5", method="adaptive", tau=0.2)
    assert (c.epochs, c.batch_size, c.schedule, c.lr, c.warmup, c.rank) == (
        10, 128, "cosine", 0.05, 100, 500)
    a = TrainConfig(method="adaptive", tau=0.1, optimizer="adam")
    assert (a.lr, a.momentum) == (1e-3, 0.0)
    assert TrainConfig(method="fixed", sizes=[784, 9, 8, 10], ranks=[4, 6]).rank == 6
    # the parts made alone keep None ("the default"): only the configuration knows it
    assert StepSpec(method="adaptive", tau=0.1).lr is None and RunSpec().epochs is None


def test_records_round_trip_nested_and_the_earlier_flat_ones_load():
    c = TrainConfig(method="fixed", ranks=[3, 4], sizes=[784, 9, 8, 10], seed=2,
                    decay=2.0, out="somewhere")
    record = json.loads(json.dumps(c.to_dict()))
    assert list(record) == list(PARTS) and record["start"]["decay"] == 2.0
    assert TrainConfig.from_dict(record) == c
    # the flat record of the same run (the format before the parts) gives the same
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_flat()))) == c
    assert flat_options(record) == c.to_flat() == flat_options(c.to_flat())
    # a part missing from a nested record takes its defaults; a flat record without
    # "validation" is a run of the time before the option (the whole training set)
    assert TrainConfig.from_dict({"step": {"method": "dense"}}).validation is True
    assert TrainConfig.from_dict({"method": "dense"}).validation is False
    with pytest.raises(TypeError, match="config part 'run' must be a dict, got int"):
        TrainConfig.from_dict({"run": 3})
    with pytest.raises(ValueError, match=r"unknown configuration part\(s\) \['lr'\]"):
        TrainConfig.from_dict({"run": {}, "lr": 0.1})


@given(method=st.sampled_from(["dense", "fixed", "adaptive", "vanilla", "sonly", "parallel"]),
       lr=st.floats(1e-4, 1.0), seed=st.integers(0, 2 ** 31), epochs=st.integers(1, 50),
       validation=st.booleans(), dtype=st.sampled_from(["float32", "float64"]))
def test_any_valid_configuration_round_trips(method, lr, seed, epochs, validation, dtype):
    extra = {"tau": 0.1} if method in ("adaptive", "parallel") else {}
    c = TrainConfig(method=method, lr=lr, seed=seed, epochs=epochs, validation=validation,
                    dtype=dtype, **extra)
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert TrainConfig(**c.to_flat()) == c


@pytest.mark.parametrize("options", [dict(method="adaptive", tau=0.1),
                                     dict(method="fixed", rank=5),
                                     dict(method="vanilla", rank=5),
                                     dict(method="adaptive", tau=0.1, arch="lenet5", rank=8)],
                         ids=["adaptive", "fixed", "vanilla", "lenet5"])
def test_the_spectrum_options_shape_the_drawn_start_and_their_defaults_change_nothing(options):
    sizes = {} if options.get("arch") == "lenet5" else {"sizes": [30, 20, 20, 10]}
    base = TrainConfig(dtype="float64", **sizes, **options)
    plain = build_model(base)
    again = build_model(base.replace(spectrum_length=40.0, spectrum_norm=0.6))  # the defaults
    for a, b in zip(plain.parameters(), again.parameters()):
        assert np.array_equal(a.value, b.value)
    model = build_model(base.replace(spectrum_length=2.0, spectrum_norm=1.5))
    first = model.layers[0]
    W = first.factors.to_dense() if hasattr(first, "factors") else first.weight()
    sigma = np.linalg.svd(W, compute_uv=False)
    r = int(np.sum(sigma > 1e-12 * sigma[0]))
    n_out = W.shape[0]
    eps = np.finfo(np.float64).eps
    assert abs(np.linalg.norm(sigma[:r]) - 1.5 * np.sqrt(2 * n_out)) < 100 * eps * n_out
    # the profile: the draw's singular values times exp(-i / 2), sorted (they decay faster)
    assert sigma[1] / sigma[0] <= np.exp(-0.5) * (1 + 1e-12)
