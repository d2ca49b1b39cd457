"""The checkpoint format: save, load and restore the model and the optimiser state.

A checkpoint is a :func:`numpy.savez` archive written atomically after every epoch
(:func:`lowrank_ref.training.atomic.atomic_write`) and read with ``allow_pickle=False``:
nothing in it can run code. :data:`CHECKPOINT_FORMAT` is 1; every checkpoint written since
the format was introduced still loads and resumes bit for bit. See
docs/design.md, section "Training runs: records, checkpoints, locks".
"""
from __future__ import annotations

import copy
import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._validate import check_path
from ..factorized import FactorizedLayer
from ..lowrank import LowRank
from ..lowrank_layers import LowRankLayer
from ..nn import Network
from .atomic import atomic_write
from .config import TrainConfig
from .records import HISTORY_COLUMNS, OPTIONAL_COLUMNS

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "load_config",
           "check_history", "restore_model", "restore_optimizer", "check_optimizer_state",
           "checkpoint_path", "CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "TRIAL_LR"]

CHECKPOINT_NAME = "checkpoint.npz"
CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or not one written by :func:`save_checkpoint`."""


def _model_arrays(model: Network) -> dict:
    """The arrays of every layer of ``model`` under the checkpoint's keys.

    A layer's kind is its ``KIND``: "lowrank" (:class:`~lowrank_ref.lowrank_layers.LowRankDense`)
    and "lowrank_conv2d" store ``U``, ``S``, ``V``, ``b`` (any
    :class:`~lowrank_ref.lowrank_layers.LowRankLayer`); "dense" and "conv2d" store ``W``, ``b``;
    "factorized" and "factorized_conv2d" (any :class:`~lowrank_ref.factorized.FactorizedLayer`)
    ``U``, ``V``, ``b``.
    """
    arrays = {"n_layers": np.array(len(model.layers))}
    for i, layer in enumerate(model.layers):
        kind = getattr(layer, "KIND", None)
        if isinstance(layer, LowRankLayer):
            arrays.update({f"layer{i}.U": layer.U, f"layer{i}.S": layer.S,
                           f"layer{i}.V": layer.V, f"layer{i}.b": layer.b.value})
        elif kind in ("dense", "conv2d"):
            arrays.update({f"layer{i}.W": layer.W.value, f"layer{i}.b": layer.b.value})
        elif isinstance(layer, FactorizedLayer):
            arrays.update({f"layer{i}.U": layer.U.value, f"layer{i}.V": layer.V.value,
                           f"layer{i}.b": layer.b.value})
        else:
            raise TypeError(f"cannot checkpoint layer {i} of type {type(layer).__name__}")
        arrays[f"layer{i}.kind"] = np.array(kind)
    return arrays


def save_checkpoint(path, model: Network, optimizer, config: TrainConfig, history: list,
                    epochs_done: int, finetune_done: int, phase: str) -> None:
    """Write a checkpoint atomically with :func:`numpy.savez` (no pickled objects).

    Keys: ``format`` (int), ``config`` and ``history`` (JSON in 0-d unicode arrays),
    ``epochs_done`` / ``finetune_done`` (epochs completed in each phase), ``opt_phase``
    (the phase whose optimiser state is stored), ``n_layers``, per layer of ``model.layers``
    ``layer{i}.kind`` (the layer's ``KIND``: "dense", "conv2d", "lowrank", "lowrank_conv2d",
    "factorized" or "factorized_conv2d") and
    its arrays ``layer{i}.W``, ``.b`` (``W`` 4-d for "conv2d"), ``layer{i}.U``, ``.S``, ``.V``,
    ``.b`` (ranks may differ per layer; a low-rank convolution stores its kernel matrix's
    factors), or ``layer{i}.U``, ``.V``, ``.b`` (the two factorised kinds, ``W_mat = U V^T``), and
    ``opt.<name>`` for every array of ``optimizer.state_arrays()``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (``<run folder>/checkpoint.npz`` in a run).
    model : Network
        Dense, convolutional and low-rank layers only.
    optimizer
        Any optimiser of :mod:`lowrank_ref.dlrt` (``state_arrays()``).
    config : TrainConfig
    history : list of dict
        The rows of ``history.csv`` so far (JSON-serialisable), one per epoch done
        (:func:`check_history`).
    epochs_done, finetune_done : int
        Epochs completed in the main and the fine-tuning phase.
    phase : {"train", "finetune"}
        The phase ``optimizer`` belongs to.
    """
    check_history(history, epochs_done, finetune_done)
    arrays = {"format": np.array(CHECKPOINT_FORMAT),
              "config": np.array(json.dumps(config.to_dict())),
              "history": np.array(json.dumps(history)),
              "epochs_done": np.array(epochs_done), "finetune_done": np.array(finetune_done),
              "opt_phase": np.array(phase)}
    arrays.update(_model_arrays(model))
    for key, value in optimizer.state_arrays().items():
        arrays[f"opt.{key}"] = np.asarray(value)
    atomic_write(Path(check_path(path, "path")), lambda f: np.savez(f, **arrays))


def checkpoint_path(path) -> Path:
    """``path/checkpoint.npz`` if ``path`` is a folder, else ``path`` (a run folder or a file).

    Raises
    ------
    TypeError
        If ``path`` is not a str or os.PathLike.
    """
    path = Path(check_path(path, "path"))
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``allow_pickle=False``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file, or a run folder holding ``checkpoint.npz``.

    Returns
    -------
    dict
        ``config`` (:class:`TrainConfig`), ``history`` (list of dict), ``epochs_done``,
        ``finetune_done`` (int), ``opt_phase`` (str), ``arrays`` (every array by key),
        ``path`` (pathlib.Path).

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint at ``path``.
    CheckpointError
        (a ValueError) naming the file, if it is truncated, corrupt (zip CRC), not an npz,
        holds pickled objects, or lacks a required entry.
    """
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (expected the {CHECKPOINT_NAME} a "
                                f"training run writes after every epoch)")
    hint = " (the run's last good state is lost; start a new run)"
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):         # an .npy array, say
            raise CheckpointError(f"checkpoint {path} is not an .npz archive (it holds "
                                  f"{type(z).__name__}){hint}")
        with z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated "
                              f"({type(exc).__name__}: {exc}){hint}") from None
    required = ("format", "config", "history", "epochs_done", "finetune_done", "opt_phase",
                "n_layers")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: not written by "
                              f"lowrank_ref.training")
    counts = {}
    for key in ("format", "epochs_done", "finetune_done", "n_layers"):
        a = arrays[key]
        if a.shape != () or a.dtype.kind not in "iu" or int(a) < 0:
            raise CheckpointError(f"checkpoint {path}: {key} must be an int >= 0, got "
                                  f"dtype {a.dtype} shape {a.shape}")
        counts[key] = int(a)
    if counts["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {counts['format']}, this "
                              f"version reads format {CHECKPOINT_FORMAT}")
    for key in ("config", "history", "opt_phase"):
        if arrays[key].shape != () or arrays[key].dtype.kind != "U":
            raise CheckpointError(f"checkpoint {path}: {key} must be a string, got dtype "
                                  f"{arrays[key].dtype} shape {arrays[key].shape}")
    try:
        config = TrainConfig.from_dict(json.loads(str(arrays["config"])))
        history = json.loads(str(arrays["history"]))
        check_history(history, counts["epochs_done"], counts["finetune_done"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an invalid configuration or "
                              f"history: {exc}") from None
    phase = str(arrays["opt_phase"])
    want = "finetune" if counts["finetune_done"] else "train"
    if phase != want:
        raise CheckpointError(f"checkpoint {path}: opt_phase must be {want!r} (the phase of "
                              f"its last epoch), got {phase!r}")
    return {"config": config, "history": history, "epochs_done": counts["epochs_done"],
            "finetune_done": counts["finetune_done"],
            "opt_phase": phase, "arrays": arrays, "path": path}


def check_history(history, epochs_done: int, finetune_done: int) -> None:
    """Raise ValueError unless ``history`` is the rows of ``history.csv`` of a checkpoint.

    One dict per epoch done (``epochs_done`` main epochs, then ``finetune_done`` fine-tuning
    epochs), each with every column of :data:`~lowrank_ref.training.records.HISTORY_COLUMNS`
    (but the ``OPTIONAL_COLUMNS`` ``val_loss``, ``val_acc``, which the rows of earlier
    records lack): ``epoch`` the 1-based epoch over both phases, ``phase`` "train" then
    "finetune", and finite numbers for the losses, accuracies, counts, rates and seconds
    (``lr`` too), where the validation and the test metrics may be None (not evaluated in
    that epoch) but not both; ``ranks`` is text.

    Examples
    --------
    >>> row = dict(dict.fromkeys(HISTORY_COLUMNS, 0.0), val_loss=None, val_acc=None)
    >>> check_history([dict(row, epoch=1, phase="train", ranks="")], 1, 0)
    >>> check_history([dict(row, epoch=1, phase="train")], 2, 0)
    Traceback (most recent call last):
    ...
    ValueError: history has 1 rows for 2 epochs done (2 main, 0 fine-tuning)
    """
    if not isinstance(history, list):
        raise ValueError(f"history must be a list of rows, got {type(history).__name__}")
    if len(history) != epochs_done + finetune_done:
        raise ValueError(f"history has {len(history)} rows for {epochs_done + finetune_done} "
                         f"epochs done ({epochs_done} main, {finetune_done} fine-tuning)")
    for i, row in enumerate(history):
        where = f"history row {i + 1}"
        if not isinstance(row, dict):
            raise ValueError(f"{where} must be a dict of the columns, got {type(row).__name__}")
        missing = [k for k in HISTORY_COLUMNS if k not in row and k not in OPTIONAL_COLUMNS]
        if missing:
            raise ValueError(f"{where} lacks {missing}")
        evaluated = [part for part in ("val", "test")
                     if row.get(f"{part}_loss") is not None or row.get(f"{part}_acc") is not None]
        if not evaluated:
            raise ValueError(f"{where} has neither validation nor test metrics")
        if type(row["epoch"]) is not int or row["epoch"] != i + 1:
            raise ValueError(f"{where}: epoch must be {i + 1}, got {row['epoch']!r}")
        phase = "train" if i < epochs_done else "finetune"
        if row["phase"] != phase:
            raise ValueError(f"{where}: phase must be {phase!r}, got {row['phase']!r}")
        if not isinstance(row["ranks"], str):
            raise ValueError(f"{where}: ranks must be text ('r1|r2|...'), got {row['ranks']!r}")
        for k in HISTORY_COLUMNS:
            if k in ("epoch", "phase", "ranks") or (k.startswith(("val_", "test_"))
                                                    and k.split("_")[0] not in evaluated):
                continue
            value = row.get(k)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)):
                raise ValueError(f"{where}: {k} must be a finite number, got {value!r}")


def load_config(path) -> TrainConfig:
    """The :class:`TrainConfig` stored in the checkpoint of a run folder (or file)."""
    return load_checkpoint(path)["config"]


def restore_model(model: Network, arrays: dict, path: Path, dtype) -> None:
    """Replace the parameters of ``model`` by those of a checkpoint (exact arrays), in place.

    ``arrays`` and ``path`` as returned by :func:`load_checkpoint`; the arrays are cast to
    ``dtype``. Raises :class:`CheckpointError` naming ``path`` if a layer's kind, shape or
    values (finite; orthonormal factors) do not fit the model.
    """
    n = int(arrays["n_layers"])
    if n != len(model.layers):
        raise CheckpointError(f"checkpoint {path} has {n} layers, the configuration "
                              f"builds {len(model.layers)}")

    def get(i, name, ndim=2):
        a = arrays[f"layer{i}.{name}"]
        ndim = 1 if name == "b" else ndim
        if a.dtype.kind not in "biuf" or a.ndim != ndim:
            raise CheckpointError(f"checkpoint {path}: layer{i}.{name} must be a real {ndim}-d "
                                  f"array, got dtype {a.dtype} shape {a.shape}")
        a = np.array(a, dtype=dtype)
        if not np.all(np.isfinite(a)):
            raise CheckpointError(f"checkpoint {path}: layer{i}.{name} must be finite, got "
                                  f"{int(a.size - np.count_nonzero(np.isfinite(a)))} NaN/Inf "
                                  f"entries (a checkpoint is only written after a finite epoch)")
        return a

    for i, layer in enumerate(model.layers):
        try:
            kind, want = str(arrays[f"layer{i}.kind"]), getattr(layer, "KIND", None)
            if kind != want:
                raise CheckpointError(f"checkpoint {path}: layer {i} is {kind!r}, the "
                                      f"configuration's method builds a {want!r} layer")
            if isinstance(layer, LowRankLayer):
                Y = LowRank(get(i, "U"), get(i, "S"), get(i, "V"))
                if Y.U.shape[0] != layer.n_out or Y.V.shape[0] != layer.n_in:
                    raise CheckpointError(f"checkpoint {path}: layer {i} is "
                                          f"{Y.U.shape[0]} x {Y.V.shape[0]}, the "
                                          f"configuration needs {layer.n_out} x {layer.n_in}")
                try:
                    layer.load_factors(Y, get(i, "b"))
                except CheckpointError:
                    raise
                except (ValueError, TypeError) as exc:   # shapes, orthonormality
                    raise CheckpointError(f"checkpoint {path}: layer {i}: {exc}") from None
            elif isinstance(layer, FactorizedLayer):
                U, V, b = get(i, "U"), get(i, "V"), get(i, "b")
                if (U.shape, V.shape, b.shape) != (layer.U.shape, layer.V.shape, layer.b.shape):
                    raise CheckpointError(f"checkpoint {path}: layer {i} has U {U.shape}, V "
                                          f"{V.shape}, b {b.shape}; the configuration needs "
                                          f"{layer.U.shape}, {layer.V.shape}, {layer.b.shape}")
                layer.U.value, layer.V.value, layer.b.value = U, V, b
            else:
                W, b = get(i, "W", layer.W.ndim), get(i, "b")
                if W.shape != layer.W.shape or b.shape != layer.b.shape:
                    raise CheckpointError(f"checkpoint {path}: layer {i} has W {W.shape}, "
                                          f"b {b.shape}; the configuration needs "
                                          f"{layer.W.shape}, {layer.b.shape}")
                layer.W.value, layer.b.value = W, b
        except KeyError as exc:
            raise CheckpointError(f"checkpoint {path} lacks the array {exc} of layer {i}") from None


def restore_optimizer(opt, arrays: dict, path: Path, dtype) -> None:
    """Load the ``opt.*`` arrays of a checkpoint into ``opt`` (checked, cast to ``dtype``).

    Every array must be a float array, finite in ``dtype``, and the optimiser must read it as
    it is: ``opt.state_arrays()`` right after loading gives back the same names, shapes and
    values (an array the optimiser does not know, or reads otherwise, such as a fractional
    step count, is refused). Whether the state fits the model is
    :func:`check_optimizer_state`.

    Raises :class:`CheckpointError` naming ``path`` if the state does not fit ``opt``.
    """
    state = {}
    for k, v in arrays.items():
        if not k.startswith("opt."):
            continue
        if v.dtype.kind != "f" or not np.all(np.isfinite(v)):
            raise CheckpointError(f"checkpoint {path}: {k} must be a finite float array, got "
                                  f"dtype {v.dtype} shape {v.shape}")
        with np.errstate(over="ignore"):
            state[k[4:]] = np.array(v, dtype=dtype)
        if not np.all(np.isfinite(state[k[4:]])):
            raise CheckpointError(f"checkpoint {path}: {k} overflows {np.dtype(dtype).name}")
    try:
        opt.load_state_arrays(state)
        back = {k: np.asarray(v) for k, v in opt.state_arrays().items()}
    except (KeyError, ValueError, IndexError, TypeError, OverflowError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an invalid optimiser state "
                              f"({type(exc).__name__}: {exc})") from None
    unread = sorted(f"opt.{k}" for k in set(state) - set(back))
    if unread:
        raise CheckpointError(f"checkpoint {path} holds optimiser arrays that "
                              f"{type(opt).__name__} does not use: {unread}")
    changed = sorted(f"opt.{k}" for k in state if back[k].shape != state[k].shape
                     or not np.array_equal(back[k], state[k]))
    if changed:
        raise CheckpointError(f"checkpoint {path}: {type(opt).__name__} does not read the "
                              f"optimiser arrays {changed} as they are (e.g. a step count "
                              f"that is not a whole number)")


#: The learning rate of the trial step of :func:`check_optimizer_state`: the smallest normal
#: float64, so that the step changes no parameter beyond rounding but runs every formula.
TRIAL_LR = float(np.finfo(np.float64).tiny)


def check_optimizer_state(model: Network, opt, fresh, X, y, path: Path) -> None:
    """Refuse, naming ``path``, an optimiser state (restored into ``opt``) that does not fit.

    The layout of a state is the optimiser's own; what is checked is that the restored state
    behaves like one the optimiser builds itself. One step at the learning rate
    :data:`TRIAL_LR` on the batch ``(X, y)`` is taken on copies of ``model``: by ``opt``
    from the restored state, and by ``fresh(model_copy)``, a new optimiser of the same
    configuration, from none. The restored state must hold the arrays (names) that the fresh
    one holds after its first step, the step from it must succeed and leave finite
    parameters and state, and the two states after the step must have the same names and
    shapes. This refuses arrays dropped, added or of another shape (a transposed buffer, a
    row that would broadcast), and values that make a step non-finite (a negative Adam
    second moment or step count). ``model`` and ``opt`` are not changed.

    Raises
    ------
    CheckpointError
        Naming ``path`` and what does not fit.
    """
    def trial(optimizer):
        optimizer.lr = TRIAL_LR
        with np.errstate(all="ignore"):
            optimizer.step(X, y)
        return {k: np.asarray(v) for k, v in optimizer.state_arrays().items()}

    restored = {k: np.asarray(v).shape for k, v in opt.state_arrays().items()}
    reference = copy.deepcopy(model)
    expected = trial(fresh(reference))
    what = f"checkpoint {path}: the optimiser state does not fit the model"
    lacking = [f"opt.{k}" for k in sorted(set(expected) - set(restored))]
    unknown = [f"opt.{k}" for k in sorted(set(restored) - set(expected))]
    if lacking or unknown:
        raise CheckpointError(f"{what}: " + "; ".join(
            ([f"it lacks {lacking}"] if lacking else [])
            + ([f"it holds {unknown}, which a step of this optimiser does not make"]
               if unknown else [])))
    network, optimizer = copy.deepcopy((model, opt))
    try:
        after = trial(optimizer)
    except (ValueError, IndexError, KeyError, TypeError, FloatingPointError, OverflowError,
            ZeroDivisionError, np.linalg.LinAlgError) as exc:
        raise CheckpointError(f"{what}: a step from it fails ({type(exc).__name__}: "
                              f"{exc})") from None
    finite = all(np.all(np.isfinite(a)) for a in list(after.values())
                 + [a for a in _model_arrays(network).values() if a.dtype.kind == "f"])
    if not finite:
        raise CheckpointError(f"{what}: a step from it gives non-finite values (a negative "
                              f"second moment or step count?)")
    shapes = {k: a.shape for k, a in after.items()}
    wrong = sorted(f"opt.{k}" for k in expected if shapes.get(k) != expected[k].shape)
    if wrong or set(shapes) != set(expected):
        raise CheckpointError(f"{what}: after a step from it the arrays "
                              f"{wrong or sorted(set(shapes) ^ set(expected))} differ in "
                              f"shape from a fresh optimiser's (wrong shapes in the file?)")
