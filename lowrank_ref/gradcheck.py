"""The gradient check of the autodiff engine: reverse mode against central differences.

:func:`check_grad` compares the gradient that one ``backward()`` of
:mod:`lowrank_ref.autodiff` gives with central finite differences along random directions
(all inputs jointly and each input alone), in float64, with the tolerances of
:data:`lowrank_ref.checks.TOLERANCE_FACTORS`. Every op, layer and mode of the package is
checked with it, and ``tests/test_gradcheck.py`` shows that a planted wrong gradient fails it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import check_int, check_rng
from .autodiff import Tensor
from .checks import TOLERANCE_FACTORS

__all__ = ["GradCheckResult", "check_grad", "assert_grad"]


@dataclass
class GradCheckResult:
    """Outcome of :func:`check_grad`.

    Attributes
    ----------
    passed : bool
        Every direction within tolerance.
    max_rel_error : float
        Largest ``|analytic - numeric| / max(|analytic|, |numeric|, atol / rtol)``.
    details : list of dict
        One row per direction with keys ``direction`` (index of the random draw),
        ``inputs`` (``"all"`` or the index of the only perturbed input), ``analytic``,
        ``numeric``, ``abs_error``, ``rel_error``, ``step``, ``atol``, ``passed``.
    rtol : float
        The relative tolerance used.
    """

    passed: bool
    max_rel_error: float
    details: list = field(default_factory=list)
    rtol: float = 0.0

    def __str__(self) -> str:
        head = (f"gradient check {'passed' if self.passed else 'FAILED'}: "
                f"max relative error {self.max_rel_error:.3e} (rtol {self.rtol:.1e})")
        rows = [f"  direction {d['direction']} inputs={d['inputs']!s:>4}: "
                f"analytic {d['analytic']:+.12e} numeric {d['numeric']:+.12e} "
                f"rel {d['rel_error']:.2e}{'' if d['passed'] else '  <-- FAIL'}"
                for d in self.details]
        return "\n".join([head] + rows)


def check_grad(f, inputs, rng, n_directions: int = 3, eps=None, rtol=None,
               atol=None) -> GradCheckResult:
    """Compare reverse-mode gradients with central differences along random directions.

    For each of ``n_directions`` random draws, the directional derivative
    ``<grad f(x), d> = sum_i <dF/dx_i, d_i>`` from one ``backward()`` is compared with
    ``(f(x + h d) - f(x - h d)) / (2 h)`` for a unit direction ``d`` (Frobenius norm over
    all inputs together) that perturbs all inputs jointly, and for one that perturbs
    each input alone (so an error confined to one input's gradient is not diluted).

    Parameters
    ----------
    f : callable
        ``f(*tensors) -> Tensor`` with one element (a scalar loss), built from
        :mod:`lowrank_ref.ops`. It is called with leaf tensors requiring gradients once,
        then with plain tensors at the perturbed points.
    inputs : list of float64 ndarray
        The point ``x``; one array per argument of ``f``. Not modified.
    rng : numpy.random.Generator
        Source of the random directions.
    n_directions : int, default 3
        Number of random draws (each gives ``1 + len(inputs)`` comparisons, or one when
        there is a single input).
    eps : float, optional
        Finite-difference step ``h``. Default ``eps64**(1/3) * max(1, rms(x))`` with the
        root-mean-square over all entries of all inputs (about ``6e-6`` for unit-size
        inputs; it grows with large inputs): this balances the truncation error
        ``h^2 |f'''| / 6`` against the rounding error ``~ eps64 |f| / h``, so the difference
        quotient is accurate to ``~eps64**(2/3) = 3.7e-11`` relative.
    rtol : float, optional
        Relative tolerance; default ``TOLERANCE_FACTORS["grad_check_rtol"] * eps64**(2/3)``
        (``1.1e-6``), far above the attainable ``3.7e-11`` and far below the ``1e-3`` of a
        0.1 % error in a backward.
    atol : float, optional
        Absolute floor; default ``TOLERANCE_FACTORS["grad_check_roundoff"] * eps64 * scale / h``
        with ``scale = max(|f(x)|, |f(x + h d)|, |f(x - h d)|)``: the rounding noise of the
        difference quotient when ``f`` is evaluated to about 100 ulps of its size. It only
        matters for directional derivatives much smaller than ``f`` itself (e.g. 0).

    Returns
    -------
    GradCheckResult
        ``passed`` is true when, for every direction,
        ``|analytic - numeric| <= max(rtol * max(|analytic|, |numeric|), atol)``.
        A failing check raises nothing; see :func:`assert_grad`.

    Raises
    ------
    TypeError
        If ``inputs`` are not float64 arrays, ``rng`` is not a Generator or ``f`` does not
        return a Tensor.
    ValueError
        If ``f`` returns more than one element or ``n_directions < 1``.

    Notes
    -----
    Kinks (ReLU at 0): if some pre-activation lies within about ``h`` of a kink, the
    difference quotient straddles it and the check fails, although the backward is right
    (it returns the subgradient 0 at 0). Use inputs whose pre-activations are bounded away
    from 0; with continuous random inputs and fixed seeds the chance of hitting a kink
    is ``O(h)`` per unit and negligible. The check only uses float64: finite differences in
    float32 are not accurate enough to detect a 0.1 % error.

    To check a layer's parameters, let ``f`` install its arguments into the layer, e.g.
    ``def f(W, b): layer.W, layer.b = W, b; return cross_entropy(layer(X), y)``.

    Examples
    --------
    >>> from lowrank_ref import ops
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    >>> res = check_grad(lambda a, b: ops.sum(ops.tanh(ops.matmul(a, b))), [A, B], rng)
    >>> res.passed, res.max_rel_error < 1e-8
    (True, True)
    """
    check_rng(rng)
    check_int(n_directions, "n_directions", low=1)
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"inputs must be a list of float64 arrays, got {type(inputs).__name__}")
    xs = []
    for i, x in enumerate(inputs):
        x = np.asarray(x)
        if x.dtype != np.float64:
            raise TypeError(f"inputs[{i}] must be float64 (finite differences need it), "
                            f"got {x.dtype}")
        xs.append(x.copy())

    def evaluate(arrays, requires_grad=False):
        tensors = [Tensor(a, requires_grad=requires_grad, name=f"inputs[{i}]")
                   for i, a in enumerate(arrays)]
        out = f(*tensors)
        if not isinstance(out, Tensor):
            raise TypeError(f"f must return a Tensor, got {type(out).__name__}")
        if out.value.size != 1:
            raise ValueError(f"f must return a one-element Tensor, got shape {out.shape}")
        return out, tensors

    out, leaves = evaluate([x.copy() for x in xs], requires_grad=True)
    f0 = float(out.value.reshape(()))
    if out.requires_grad:                     # else f does not depend on its inputs
        out.backward()
    grads = [t.grad if t.grad is not None else np.zeros_like(t.value) for t in leaves]

    u = float(np.finfo(np.float64).eps)
    n_total = sum(x.size for x in xs)
    x_rms = np.sqrt(sum(float(np.sum(x * x)) for x in xs) / max(n_total, 1))
    x_scale = max(1.0, float(x_rms))
    h = float(eps) if eps is not None else u ** (1 / 3) * x_scale
    rtol = float(rtol) if rtol is not None else TOLERANCE_FACTORS["grad_check_rtol"] * u ** (2 / 3)
    groups = [("all", list(range(len(xs))))] if len(xs) > 1 else []
    groups += [(i, [i]) for i in range(len(xs))]

    details = []
    for k in range(n_directions):
        for label, idx in groups:
            ds = [np.zeros_like(x) for x in xs]
            for i in idx:
                ds[i] = rng.standard_normal(xs[i].shape)
            norm = np.sqrt(sum(float(np.sum(d * d)) for d in ds))
            if norm == 0:
                continue                      # only empty arrays: nothing to perturb
            ds = [d / norm for d in ds]
            analytic = sum(float(np.vdot(g, d)) for g, d in zip(grads, ds))
            fp = float(evaluate([x + h * d for x, d in zip(xs, ds)])[0].value.reshape(()))
            fm = float(evaluate([x - h * d for x, d in zip(xs, ds)])[0].value.reshape(()))
            numeric = (fp - fm) / (2 * h)
            scale = max(abs(f0), abs(fp), abs(fm))
            floor = (float(atol) if atol is not None
                     else TOLERANCE_FACTORS["grad_check_roundoff"] * u * scale / h)
            err = abs(analytic - numeric)
            denom = max(abs(analytic), abs(numeric), floor / rtol, np.finfo(np.float64).tiny)
            rel = err / denom if np.isfinite(err) else np.inf
            details.append(dict(direction=k, inputs=label, analytic=analytic, numeric=numeric,
                                abs_error=err, rel_error=rel, step=h, atol=floor,
                                passed=bool(rel <= rtol)))
    max_rel = max((d["rel_error"] for d in details), default=0.0)
    return GradCheckResult(passed=all(d["passed"] for d in details),
                           max_rel_error=float(max_rel), details=details, rtol=rtol)


def assert_grad(f, inputs, rng, **kwargs) -> GradCheckResult:
    """:func:`check_grad`, raising ``AssertionError`` with the per-direction table on failure.

    Examples
    --------
    >>> from lowrank_ref import ops
    >>> rng = np.random.default_rng(1)
    >>> assert_grad(lambda x: ops.mean(ops.tanh(x)), [rng.standard_normal((2, 3))], rng).passed
    True
    """
    result = check_grad(f, inputs, rng, **kwargs)
    if not result.passed:
        raise AssertionError(str(result))
    return result
