"""One epoch of training without any I/O: :func:`train_epoch`, :func:`check_epoch`.

:func:`train_epoch` steps an optimiser over batches at the learning rates of a schedule and
returns what the epoch measured (:class:`EpochStats`); it writes no file and prints nothing.
A non-finite loss, a step that fails on non-finite values, or (:func:`check_epoch`)
non-finite parameters or evaluation losses at the end of the epoch raise
:class:`NonFinite`, which says what, where and at which learning rate; the caller
(:func:`lowrank_ref.training.train`) records it once, in one place
(:class:`~lowrank_ref.training.recorder.Recorder`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Tuple

import numpy as np

from .._validate import check_callable
from ..lowrank_layers import LowRankLayer
from ..nn import Network
from ..optimizers import Optimizer

__all__ = ["EpochStats", "NonFinite", "train_epoch", "check_epoch", "all_finite"]


class NonFinite(ArithmeticError):
    """A non-finite loss or parameter in an epoch.

    Attributes
    ----------
    what : str
        What was not finite ("the loss is nan", ...).
    batch : int
        1-based batch of the epoch (the last one for the end-of-epoch check).
    lr : float
        The learning rate of that step.
    """

    def __init__(self, what: str, batch: int, lr: float):
        super().__init__(f"{what} at batch {batch} (lr {lr:g})")
        self.what, self.batch, self.lr = what, batch, lr


@dataclass
class EpochStats:
    """What :func:`train_epoch` measured: the mean loss and the accuracy of the steps (at
    the start point of each step, "running"), the samples seen, the first and last
    learning rate and the number of batches."""

    train_loss: float
    train_acc: float
    seen: int
    first_lr: Optional[float]
    last_lr: Optional[float]
    n_batches: int


def train_epoch(model: Network, optimizer: Optimizer,
                batches: Iterable[Tuple[np.ndarray, np.ndarray]],
                schedule: Callable[[int], float],
                on_batch: Optional[Callable[[int, int, Network], None]] = None) -> EpochStats:
    """One pass of ``optimizer`` over ``batches``; no file or terminal work.

    Parameters
    ----------
    model : Network
        The network ``optimizer`` trains (passed to ``on_batch``).
    optimizer : Optimizer
        Its ``lr`` is set to ``schedule(b)`` before the ``b``-th step (0-based).
    batches : iterable of (X, y)
        The epoch's batches, in order.
    schedule : callable
        ``schedule(b) -> lr`` for the ``b``-th batch of this epoch.
    on_batch : callable, optional
        ``on_batch(batches_done, samples_seen, model)`` after each step (progress display).

    Returns
    -------
    EpochStats

    Raises
    ------
    TypeError
        ``model`` not a Network, ``optimizer`` not an Optimizer, ``schedule`` (or
        ``on_batch``) not callable.
    NonFinite
        A non-finite loss, or a step failing on non-finite values (``LinAlgError``,
        ``FloatingPointError`` of a diverging step's SVD); the model is then as that step
        left it.

    Examples
    --------
    >>> from lowrank_ref.nn import MLP
    >>> from lowrank_ref.optimizers import Euclidean
    >>> rng = np.random.default_rng(0)
    >>> model = MLP.dense([4, 8, 3], rng, np.float64)
    >>> X, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    >>> stats = train_epoch(model, Euclidean(model, 0.1), [(X[:5], y[:5]), (X[5:], y[5:])],
    ...                     lambda b: 0.1 / (b + 1))
    >>> stats.seen, stats.first_lr, stats.last_lr, stats.n_batches
    (10, 0.1, 0.05, 2)
    """
    if not isinstance(model, Network):
        raise TypeError(f"model must be a lowrank_ref Network, got {type(model).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a lowrank_ref Optimizer, got "
                        f"{type(optimizer).__name__}")
    check_callable(schedule, "schedule", "schedule(batch: int) -> lr")
    if on_batch is not None:
        check_callable(on_batch, "on_batch", "on_batch(batches_done, samples_seen, model)")
    loss_sum, correct, seen, first_lr, n_batches = 0.0, 0, 0, None, 0
    for b, (Xb, yb) in enumerate(batches):
        optimizer.lr = schedule(b)
        first_lr = optimizer.lr if first_lr is None else first_lr
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                res = optimizer.step(Xb, yb)
        except (np.linalg.LinAlgError, FloatingPointError) as exc:   # non-finite values in
            raise NonFinite(f"the step failed on non-finite values ({type(exc).__name__}: "
                            f"{exc})", b + 1, optimizer.lr) from exc  # a diverging step
        if not np.isfinite(res.loss):
            raise NonFinite(f"the loss is {res.loss}", b + 1, optimizer.lr)
        loss_sum += res.loss
        correct += int(np.sum(np.argmax(res.logits, axis=1) == yb))
        seen += len(yb)
        n_batches = b + 1
        if on_batch is not None:
            on_batch(n_batches, seen, model)
    return EpochStats(train_loss=loss_sum / max(n_batches, 1),
                      train_acc=correct / seen if seen else float("nan"), seen=seen,
                      first_lr=first_lr, last_lr=optimizer.lr if n_batches else None,
                      n_batches=n_batches)


def all_finite(model: Network) -> bool:
    """Whether every parameter of ``model`` (each factor of a low-rank layer) is finite."""
    for layer in model.layers:
        arrays = ([layer.U, layer.S, layer.V, layer.b.value] if isinstance(layer, LowRankLayer)
                  else [p.value for p in layer.parameters()])
        if not all(np.isfinite(a).all() for a in arrays):
            return False
    return True


def check_epoch(model: Network, metrics: dict, validation: bool, stats: EpochStats) -> None:
    """The end-of-epoch check: raise :class:`NonFinite` if a parameter of ``model`` or an
    evaluation loss of ``metrics`` (``val_loss``, ``test_loss``; None: not evaluated) is not
    finite."""
    if not (all(np.isfinite(metrics[k]) for k in ("val_loss", "test_loss")
                if metrics.get(k) is not None) and all_finite(model)):
        raise NonFinite("non-finite parameters or "
                        + ("validation" if validation else "test")
                        + " loss after the last step", stats.n_batches, stats.last_lr)
