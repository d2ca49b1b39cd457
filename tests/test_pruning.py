"""Pruning after training (lowrank_ref.pruning): truncated SVDs of a dense network's hidden
layers, by ranks or by the DLRT rank rule, and fine-tuning from them through the training
loop (``prune_from``)."""
import numpy as np
import pytest

from lowrank_ref.data import Dataset, split_validation
from lowrank_ref.lowrank_layers import LowRankDense
from lowrank_ref.nn import MLP, Dense
from lowrank_ref.pruning import prune_model, pruned_ranks
from lowrank_ref.training import TrainConfig, build_model, load_checkpoint, train

SIZES = [12, 10, 8, 4]


def _dense(seed=0, dtype=np.float64):
    return MLP.dense(SIZES, np.random.default_rng(seed), dtype)


def test_each_layer_is_its_best_approximation_and_the_rest_is_copied():
    dense = _dense()
    pruned = prune_model(dense, ranks=[4, 2])
    for layer, r, orig in zip(pruned.layers[:-1], [4, 2], dense.layers[:-1]):
        W = orig.W.value
        s = np.linalg.svd(W, compute_uv=False)
        err = np.linalg.norm(W - layer.factors.to_dense())
        assert isinstance(layer, LowRankDense) and layer.rank == r
        assert np.isclose(err, np.linalg.norm(s[r:]), rtol=1e-12)          # Eckart-Young
        assert np.array_equal(layer.b.value, orig.b.value)
        assert layer.factors.orthonormality_error() < 1e-13
    last, orig = pruned.layers[-1], dense.layers[-1]
    assert isinstance(last, Dense) and np.array_equal(last.W.value, orig.W.value)
    assert last.W is not orig.W                                        # a copy
    assert pruned.activation == dense.activation


def test_full_rank_pruning_gives_the_dense_network_back():
    dense = _dense(1)
    full = prune_model(dense, ranks=[10, 8])
    X = np.random.default_rng(2).standard_normal((6, 12))
    assert np.allclose(full.predict(X), dense.predict(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tau", [0.0, 0.05, 0.2, 0.5, 1.0])
def test_tau_picks_the_smallest_rank_whose_tail_is_within_tau(tau):
    """The rule of rank-adaptive DLRT, computed here from the singular values."""
    dense = _dense(3)
    expected = []
    for layer in dense.layers[:-1]:
        s = np.linalg.svd(layer.W.value, compute_uv=False)
        tails = [np.linalg.norm(s[r:]) for r in range(len(s) + 1)]
        r = min(r for r in range(len(s) + 1) if tails[r] <= tau * np.linalg.norm(s) + 1e-15)
        expected.append(max(r, 1))
    assert pruned_ranks(dense, tau) == expected
    assert [layer.rank for layer in prune_model(dense, tau=tau).layers[:-1]] == expected


def test_float32_network_gives_float32_factors():
    pruned = prune_model(_dense(4, np.float32), ranks=[3, 3])
    assert all(a.dtype == np.float32 for a in pruned.layers[0].factors)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(), ValueError, "exactly one of ranks and tau"),
    (dict(ranks=[2, 2], tau=0.1), ValueError, "exactly one of ranks and tau"),
    (dict(ranks=[2]), ValueError, "one rank per hidden layer"),
    (dict(ranks=[11, 2]), ValueError, "ranks[0] must be <= min(n_in, n_out) = 10"),
    (dict(ranks=[0, 2]), ValueError, "ranks"),
    (dict(ranks=[2.5, 2]), TypeError, "ranks"),
    (dict(tau=-0.1), ValueError, "tau must be a finite number >= 0"),
    (dict(ranks=[2, 2], min_rank=2), ValueError, "only used with tau"),
])
def test_bad_arguments_are_refused_by_name(kwargs, exc, match):
    with pytest.raises(exc, match=match.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        prune_model(_dense(), **kwargs)


def test_a_low_rank_network_is_not_pruned_again():
    with pytest.raises(ValueError, match="dense network"):
        prune_model(prune_model(_dense(), ranks=[2, 2]), ranks=[1, 1])
    with pytest.raises(TypeError, match="model must be an MLP"):
        pruned_ranks(_dense().layers[0], 0.1)


def _blobs(seed=0, n=256):
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((4, 12))
    y = rng.integers(0, 4, n)
    X = centres[y] + rng.standard_normal((n, 12))
    y_valid = rng.integers(0, 4, 64)                   # a validation part, drawn last
    X_valid = centres[y_valid] + rng.standard_normal((64, 12))
    return Dataset(X[:192], y[:192], X[192:], y[192:], "blobs", "made up in test_pruning.py",
                   X_valid, y_valid)


@pytest.mark.parametrize("method, extra", [("fixed", dict(ranks=[3, 2])),
                                           ("sonly", dict(prune_tau=0.3))])
def test_fine_tuning_starts_from_the_pruned_checkpoint(tmp_path, method, extra):
    data = _blobs()
    base = dict(sizes=SIZES, batch_size=32, lr=0.05, dtype="float64")
    train(TrainConfig(method="dense", epochs=2, out=str(tmp_path / "dense"), **base),
          log=lambda s: None, data=data)
    cfg = TrainConfig(method=method, epochs=1, prune_from=str(tmp_path / "dense"),
                      out=str(tmp_path / method), **base, **extra)
    start = build_model(cfg)
    dense = MLP.dense(SIZES, np.random.default_rng(9), np.float64)
    arrays = load_checkpoint(tmp_path / "dense")["arrays"]
    for i, layer in enumerate(dense.layers):
        layer.W.value, layer.b.value = arrays[f"layer{i}.W"], arrays[f"layer{i}.b"]
    expected = (prune_model(dense, ranks=extra["ranks"]) if "ranks" in extra
                else prune_model(dense, tau=extra["prune_tau"]))
    for a, b in zip(start.layers[:-1], expected.layers[:-1]):
        assert np.allclose(a.factors.to_dense(), b.factors.to_dense(), rtol=1e-12, atol=1e-12)
    final = train(cfg, log=lambda s: None, data=data)
    assert final["ranks"] == [layer.rank for layer in expected.layers[:-1]]
    if method == "sonly":                       # S-only keeps the pruned bases
        ckpt = load_checkpoint(tmp_path / method)["arrays"]
        assert np.allclose(ckpt["layer0.U"], expected.layers[0].factors.U, atol=1e-12)


def test_prune_from_must_be_a_dense_run_of_the_same_sizes(tmp_path):
    data = _blobs()
    train(TrainConfig(method="fixed", rank=2, sizes=SIZES, epochs=1, batch_size=64,
                      out=str(tmp_path / "fixed")), log=lambda s: None, data=data)
    with pytest.raises(ValueError, match="prune_from must be a dense run"):
        build_model(TrainConfig(method="fixed", ranks=[2, 2], sizes=SIZES,
                                prune_from=str(tmp_path / "fixed")))
    train(TrainConfig(method="dense", sizes=SIZES, epochs=1, batch_size=64,
                      out=str(tmp_path / "dense")), log=lambda s: None, data=data)
    with pytest.raises(ValueError, match="has sizes"):
        build_model(TrainConfig(method="fixed", ranks=[2, 2], sizes=[12, 9, 8, 4],
                                prune_from=str(tmp_path / "dense")))


def test_a_lenet5_run_is_refused_by_prune_from_and_the_prune_command(tmp_path, capsys):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 48)
    X = rng.random((48, 784))
    data = split_validation(Dataset(X[:32], y[:32], X[32:], y[32:], "images",
                                    "made up in test_pruning.py"), 8)
    train(TrainConfig(arch="lenet5", method="dense", epochs=1, batch_size=16,
                      out=str(tmp_path / "lenet")), log=lambda s: None, data=data)
    with pytest.raises(ValueError, match="prune_from must be a dense run of arch 'mlp'"):
        build_model(TrainConfig(method="fixed", ranks=[2] * 4,
                                prune_from=str(tmp_path / "lenet")))
    from lowrank_ref.__main__ import main
    assert main(["prune", str(tmp_path / "lenet"), "--ranks", "2,2,2,2"]) == 2
    assert "prune works on dense runs of arch 'mlp'" in capsys.readouterr().err
