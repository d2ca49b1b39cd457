"""Golden cases and the backend checker: the test oracle for faster backends.

A faster implementation (PyTorch, JAX, C++, ...) of the integrators and DLRT steps of this
package is *correct* when it reproduces, on a fixed set of named, deterministic float64
cases, the quantities that do not depend on the choice of factorisation. This subpackage
holds those golden cases, generated from fixed seeds by this package's reference code (the
expected outputs *are* the reference's outputs; the reference itself is verified against
theory by the rest of the test suite), the checker, and an export to ``.npz`` files for
backends that are not written in Python (docs/design.md, section "The oracle").

* :func:`cases` ``(family) -> list of Case`` -- the golden cases of a family, each with a
  unique ``name`` such as ``"truncate.ties_at_cut"``;
* :func:`check_case` ``(case, candidate, dtype=np.float64) -> list of Failure`` -- run a
  candidate on one case and compare (one pytest test per case: see the end);
* :func:`check` ``(family, candidate, dtype=np.float64) -> Report`` -- run a candidate on
  every case of a family and compare;
* :func:`export` ``(directory)`` / :func:`verify` ``(directory)`` / :func:`load`
  ``(directory)`` -- the cases as ``.npz`` files plus ``manifest.json``;
* :func:`reference` ``(family) -> candidate`` -- this package's implementation, wrapped
  as a candidate (it passes by construction; useful as a template).

Families and candidate signatures
---------------------------------
A candidate is called as ``candidate(**case.inputs)`` with plain NumPy arrays and Python
scalars (``int``, ``float``, ``bool``, ``str``; never ``None``) and must return a ``dict``
with every key of ``case.expected`` (extra keys are ignored). Families whose result is a
low-rank matrix return it under the keys ``"U"`` (m, r), ``"S"`` (r, r), ``"V"`` (n, r)
(docs/design.md, section "Notation"); ``S`` need not be diagonal.

====================================  ===========================================================
family                                ``candidate(...)`` keyword arguments -> returned keys
====================================  ===========================================================
``truncate``                          ``U_hat (m, k1), S_hat (k1, k2), V_hat (n, k2), tol,
                                      relative, min_rank, max_rank`` -> ``U, S, V``.
                                      ``k2 != k1`` occurs (a rectangular core: use its thin SVD);
                                      the rank is clamped to ``[min_rank, min(max_rank, k)]``,
                                      ``k = min(k1, k2)``, and is never above ``k``.
``projector_splitting_step``          ``U0 (m, r), S0 (r, r), V0 (n, r), A1 (m, m), A2 (n, n),
                                      B (m, n), t0, h, inner, substeps, order`` -> ``U, S, V``
``bug_step``                          ``U0, S0, V0, A1, A2, B, t0, h, inner, substeps``
                                      -> ``U, S, V``
``adaptive_bug_step``                 ``U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank,
                                      max_rank, inner, substeps`` -> ``U, S, V``
``parallel_bug_step``                 as ``adaptive_bug_step``
``midpoint_bug_step``                 as ``adaptive_bug_step``, and ``variant`` (``"4r"``:
                                      the half step is not truncated; ``"3r"``: it is
                                      truncated by the same rule as the result)
                                      -> ``U, S, V``
``rk_bug_step``                       ``U0, S0, V0, A1, A2, B, t0, h, tol, relative, min_rank,
                                      max_rank, tableau`` (a name of
                                      ``integrators.BUTCHER_TABLEAUX``; no ``inner``,
                                      ``substeps``) -> ``U, S, V``
``second_order_parallel_bug_step``    as ``adaptive_bug_step`` -> ``U, S, V``
``dlrt_layer_step``                   see "DLRT families" below -> ``U0, S0, V0, b0, rank0``
``dlrt_network_step``                 see "DLRT families" below -> ``U0, S0, V0, b0, rank0, U1,
                                      S1, V1, b1, rank1, W2, b2``
``dlrt_conv_layer_step``              see "DLRT families" below -> ``U0, S0, V0, b0, rank0, W1,
                                      b1``
``dlrt_parallel_step``                as ``dlrt_network_step`` (or ``dlrt_conv_layer_step`` where
                                      ``kernel_size`` is given), ``method="parallel"``
``dlrt_momentum_trajectory``          as ``dlrt_network_step``, with ``X (steps, batch, n_in)``,
                                      ``y (steps, batch)`` and ``momentum`` -> the network after
                                      the last step
``dlrt_adam_trajectory``              as ``dlrt_momentum_trajectory``, with ``beta1, beta2, eps``
                                      instead of ``momentum``
====================================  ===========================================================

The matrix ODE of the integrator families is ``dA/dt = F(t, A) = A1 @ A + A @ A2 + B``
(:func:`linear_rhs` builds it), ``substeps`` is always 1 and ``inner`` is ``"euler"`` (one
explicit Euler step per sub-flow, the DLRT case), except for ``midpoint_bug_step`` and
``second_order_parallel_bug_step``, whose flows are solved by ``inner="rk4"`` (with Euler
they would be first-order methods); ``max_rank`` is always an int (no cap is written as
``min(m, n)``).

DLRT families
~~~~~~~~~~~~~
One optimiser step of [SZKCT22] on one batch. The network is given by flat keys, layer
``i = 0, 1, ...``: a low-rank layer ``W_i = U{i} @ S{i} @ V{i}.T`` has ``U{i} (n_out, r)``,
``S{i} (r, r)``, ``V{i} (n_in, r)``, ``b{i} (n_out,)``; a dense layer has ``W{i} (n_out,
n_in)``, ``b{i} (n_out,)``. The layers compute ``Z = X @ W.T + b`` with ReLU between layers
(not after the last one); the loss is the mean cross-entropy of the last layer's logits
against the integer labels. Further inputs: ``X (batch, n_in)`` (float), ``y (batch,)``
(int64), ``lr`` (the learning rate: the SGD step), ``method`` (``"fixed"``: [SZKCT22],
fixed rank, the S-step gradient evaluated at ``W~ = U1 S~0 V1^T``; ``"adaptive"``: the
rank-adaptive step with the augmented bases, relative truncation to
``tau * ||S_hat1||_F``, ranks clamped to
``[min(min_rank, max_rank), max_rank]`` and to the augmented size), ``tau``, ``min_rank``,
``max_rank`` (used by ``"adaptive"`` only). Biases and dense layers take one SGD step with
their gradient at the start point. The returned dict holds the new value of every layer
key and ``rank{i}`` (int) for every low-rank layer. ``dlrt_layer_step`` is the one-layer
network (low-rank, no activation); ``dlrt_network_step`` is low-rank, ReLU, low-rank, ReLU,
dense. For ``"adaptive"`` the one-gradient step and the published 3-pass step give the same
expected output (both references pass).

``dlrt_conv_layer_step`` is a small convolutional network: a low-rank convolution (layer 0),
ReLU, flatten, dense (layer 1). Its inputs are those above, with ``X (batch, c_in, h, w)``
(NCHW images) and three more ints: ``kernel_size`` ``k`` (a ``k x k`` kernel), ``stride``,
``padding`` (zeros on every side) of the convolution. Its kernel ``W (c_out, c_in, k, k)``
is held as the kernel matrix ``W.reshape(c_out, c_in k k) = U0 S0 V0^T``, ``U0 (c_out,
r)``, ``V0 (c_in k k, r)``, which the step treats as a layer's weight: the patch under
output pixel ``(n, i, j)`` (its entries in the order ``(c, p, q)`` of ``W[o, c, p, q]``)
is a row, ``Z = patches @ W0^T + b0`` the convolution's output, one row per pixel, and
``dL/dW0 = dZ^T patches``. The output ``(batch, c_out, h_out, w_out)``, ``h_out = (h + 2
padding - k) // stride + 1`` (likewise ``w_out``), goes through ReLU and is flattened
channel-major (NCHW order) to ``(batch, c_out h_out w_out)``, the input of ``W1 (n_classes,
c_out h_out w_out)``. The cases: 2 -> 4 and 3 -> 8 channels, ``k = 3``, stride 1 with
padding 0 and stride 2 with padding 1, ``"fixed"`` and ``"adaptive"``.

``dlrt_parallel_step`` is one step of the parallel optimiser (``method="parallel"``,
:class:`lowrank_ref.dlrt.ParallelBUG`; [CKL24], GeoLoRA) on the networks above: from one
gradient ``G`` at ``W0``, ``K1 = U0 S0 - lr G V0``, ``L1 = V0 S0^T - lr G^T U0`` and
``S_bar = S0 - lr U0^T G V0`` in parallel; ``U_hat = [U0, U~]`` with ``U~`` an orthonormal
basis of ``(I - U0 U0^T) K1`` (likewise ``V~``); the core ``[[S_bar, L1^T V~], [U~^T K1,
0]]``, truncated as ``"adaptive"``. Before the truncation the matrix is ``W0 - lr P_T(W0)
G`` (the tangent projection of the SGD step).

``dlrt_momentum_trajectory`` and ``dlrt_adam_trajectory`` check optimiser *state*: the
steps of ``method`` (``"fixed"``, ``"adaptive"`` or ``"parallel"``, on the network of
``dlrt_network_step``) on the batches ``X[k], y[k]``, ``k = 0, 1, ...`` (three or four),
one after the other with the state carried between them; the bases change at every step,
and the tolerances are chosen so that a rank changes after the first step. Biases and the
dense layer take the rule's plain step. The rules (:mod:`lowrank_ref.directions`,
:mod:`lowrank_ref.adam`, whose docstrings give the formulas):

* **momentum** ``mu``: the velocity of a low-rank layer is a matrix ``M`` of its shape
  (zero at the start); at each step ``N = mu M + G``, the K-, L- and S-steps move along
  ``N V0``, ``N^T U0`` and ``U^T N V`` (``(U, V)`` the bases of the S-step); the velocity
  kept is ``U (U^T N V) V^T`` for ``"adaptive"`` (``U_hat``, ``V_hat``) and the tangent
  projection ``P_T(W0) N`` (with ``N`` at ``W0``) for ``"fixed"`` and ``"parallel"``.
  Plain parameters: ``v <- mu v + g`` (``v = g`` at the first step), ``p <- p - lr v``.
* **Adam with carried moments** (``t`` counts steps; ``adam(g) = m_hat / (sqrt(v_hat) +
  eps)`` after ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``): each low-rank
  layer is written in the singular vectors of ``W0`` before the step (``S0`` diagonal,
  descending); the K-moments ``(n_out, r)`` (columns along the previous ``V``) are carried
  by ``T = V0^T V_prev``, ``m <- m T^T``, ``v <- v (T * T)^T``, the L-moments likewise with
  ``U``; the S-moments, kept in the previous S-step's bases, by ``A = U^T U_prev``,
  ``B = V^T V_prev``: ``m <- A m B^T``, ``v <- (A * A) v (B * B)^T``. The S-step's bases are
  ``qr(K1)``, ``qr(L1)`` (``"fixed"``), ``U0``, ``V0`` (``"parallel"``), or ``[U0, U~]``,
  ``[V0, V~]`` with ``U~`` the *left singular vectors* of ``(I - U0 U0^T) K1``
  (``"adaptive"``: the coordinates of coordinatewise moments must not depend on the
  factorisation). Plain parameters: textbook Adam.

The rank of a ``"3r"`` ``midpoint_bug_step`` or an ``rk_bug_step`` case may be decided by
several truncations (the half step or the Runge-Kutta stages, and the result), that of a
trajectory by one truncation per step; its margin is the smallest of them. The Runge-Kutta
stages are truncated by ``tol`` alone (the clamp ``[1, min(m, n)]``), not clamped to
``[min_rank, max_rank]``.

Compared quantities
-------------------
Factors are unique only up to signs and rotations (``U Q1, Q1^T S Q2, V Q2``), so only
invariants are compared (all in float64, whatever the candidate's dtype):

========================  ==================================================  ===============
quantity                  error measured                                      tolerance key
========================  ==================================================  ===============
``rank``                  ``|r_cand - r_expected|`` (the number of columns)   exact (0)
``matrix``                ``||Yc - Ye||_F / ||Ye||_F``, ``Y = U S V^T``        ``"step"``
``singular_values``       ``||sc - se||_2 / ||se||_2`` (zero-padded)          ``"step"``
``projector_U`` / ``_V``  ``||Uc Uc^T - Ue Ue^T||_F`` (same rank only)         ``"step"``
``orthonormality``        ``max(||Uc^T Uc - I||_F, ||Vc^T Vc - I||_F)``       ``"orthonormality"``
``truncation_error``      ``| ||Y_hat - Yc||_F - ||Y_hat - Ye||_F | /         ``"truncation"``
                          ||S_hat||_F``
``bias`` / ``weight``     ``||bc - be|| / ||be||`` (biases, dense weights)    ``"step"``
========================  ==================================================  ===============

====================================  ============================================================
family                                quantities (``[i]``: per low-rank layer ``i`` of a network)
====================================  ============================================================
``truncate``                          rank, matrix, singular_values, projector_U/V,
                                      orthonormality, truncation_error
``projector_splitting_step``          rank, matrix, singular_values, projector_U/V, orthonormality
``bug_step``                          rank, matrix, singular_values, projector_U/V, orthonormality
``adaptive_bug_step``                 rank, matrix, singular_values, projector_U/V, orthonormality
``parallel_bug_step``                 rank, matrix, singular_values, projector_U/V, orthonormality
``midpoint_bug_step``                 rank, matrix, singular_values, projector_U/V, orthonormality
``rk_bug_step``                       rank, matrix, singular_values, projector_U/V, orthonormality
``second_order_parallel_bug_step``    rank, matrix, singular_values, projector_U/V, orthonormality
``dlrt_layer_step``                   rank[0], matrix[0], singular_values[0], projector_U/V[0],
                                      orthonormality[0], bias[0]
``dlrt_network_step``                 as the layer step for layers 0 and 1; weight[2], bias[2]
``dlrt_conv_layer_step``              as the layer step for layer 0 (the kernel matrix); weight[1],
                                      bias[1]
``dlrt_parallel_step``                as the layer, network or conv step
``dlrt_momentum_trajectory``,         as the network step, after the last step
``dlrt_adam_trajectory``
====================================  ============================================================

A quantity is compared in a case only where the inputs determine it: where its measured
condition number (below) exceeds :data:`COND_MAX` it is left out of ``case.tol`` -- e.g.
the matrix and projectors of a truncation whose cut falls inside a tie of singular values
(``truncate.ties_at_cut``), or the projector onto a direction carried by a singular value
of 1e-12; ``case.tol`` lists exactly the quantities compared.

Tolerances
----------
Each entry of ``case.tol`` is a :class:`Tol` ``(key, size, cond, margin)`` and its value in
precision ``dtype`` is ``checks.tolerance(key, dtype, size, cond) = factor(key) * eps(dtype)
* size * cond``: ``size`` is the largest dimension of the case (``max(m, n)``; for DLRT the
largest dimension of any input array, the batch included) and ``cond`` the condition number
of that quantity, *measured* at generation: the reference is re-run on inputs perturbed by
relative ``1e-10`` (Frobenius, each float array, two random directions) and ``cond = max(1,
change / 1e-10)``. (Normwise, not entrywise, perturbations: they also model the rounding of
the dense products every implementation forms, e.g. ``F(t, K V0^T)``.) So a float32
candidate (``check(..., dtype=np.float32)``: float inputs are cast to float32, scalars stay
Python numbers) is held to float32 tolerances, a float64 one to float64 tolerances. Ranks
are compared exactly. ``Tol.margin`` of a rank is the distance of the
truncation threshold from the nearest discarded tail that would change the (clamped) rank,
relative to ``||S_hat||_F``; a case whose margin is below
``tolerance("truncation", dtype, size, cond)`` cannot be decided in ``dtype`` (e.g. an
absolute tolerance of 1e-9 in float32) and is *skipped* for that dtype (listed in the
report), never silently passed.

Export format
-------------
``export(directory)`` writes ``<case name>.npz`` per case (keys ``input.<name>`` and
``expected.<name>``; scalars as 0-d arrays, strings as unicode arrays, no pickled objects;
written with fixed zip timestamps, so an export is byte-reproducible) and
``manifest.json`` (per case: name, family, file, sha256, dtype, the shapes and dtypes of all
arrays and the tolerances with their float64 and float32 values; plus the package version,
the format, the family list and ``cond_max``). ``verify(directory)`` covers every field:
it checks every hash, regenerates the cases and compares the stored inputs, expected
values and tolerances with the regenerated ones, and recomputes the manifest's own
fields (the shapes and dtypes from the arrays, the float64/float32 tolerance values from
their key, size and cond, the family list and ``cond_max`` from this version).

Where things are
----------------
``records.py`` (:class:`Case`, :class:`Tol`, :class:`Failure`, :class:`Report`),
``reference.py`` (the families, :func:`reference`, :func:`linear_rhs`), ``measure.py`` (the
compared quantities, how each error is measured, the measured condition numbers),
``margins.py`` (rank margins, the choice of truncation tolerances, models of the published
truncation bugs), ``generators.py`` (the inputs of every case, :func:`cases`),
``checker.py`` (:func:`check_case`, :func:`check`), ``golden.py`` (the golden files).

Testing your backend against lowrank_ref
----------------------------------------
Wrap your function so that it takes the case's keyword arguments (NumPy arrays) and returns
a dict of NumPy arrays; convert to and from your framework's tensors inside the wrapper.

>>> import numpy as np
>>> from lowrank_ref import oracle
>>> def my_truncate(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
...     # a stand-in for your backend: e.g. torch.from_numpy(...) in, .numpy() out
...     P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
...     theta = tol * np.linalg.norm(s) if relative else tol
...     tail = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])   # tail[j] = ||s[j:]||
...     r = next((j for j in range(len(s)) if tail[j] <= theta), len(s))
...     r = min(max(r, min_rank), max_rank, len(s))
...     return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Qt[:r].T}
>>> report = oracle.check("truncate", my_truncate)
>>> report.passed
True
>>> print(report)                                    # doctest: +ELLIPSIS
truncate (float64): PASSED, 16 cases, 0 skipped

A float32 backend is held to float32 tolerances (float inputs are cast to float32); the
two cases whose rank decision is finer than float32 resolves are skipped, not passed:

>>> print(oracle.check("truncate", my_truncate, dtype=np.float32))   # doctest: +ELLIPSIS
truncate (float32): PASSED, 14 cases, 2 skipped
  skipped (rank decision below the resolution of float32): truncate.tol0_absolute_small_tail, ...

A bug is reported by case, quantity, error and tolerance (here: the published DLRT rule
that leaves the last singular value out of the tail):

>>> def buggy(U_hat, S_hat, V_hat, tol, relative, min_rank, max_rank):
...     P, s, Qt = np.linalg.svd(S_hat, full_matrices=False)
...     theta = tol * np.linalg.norm(s) if relative else tol
...     r = next((j for j in range(len(s)) if np.linalg.norm(s[j:-1]) < theta), len(s))
...     r = min(max(r, min_rank), max_rank, len(s))
...     return {"U": U_hat @ P[:, :r], "S": np.diag(s[:r]), "V": V_hat @ Qt[:r].T}
>>> report = oracle.check("truncate", buggy)
>>> print(report)                                    # doctest: +ELLIPSIS
truncate (float64): FAILED (... failures), 16 cases, 0 skipped
  truncate.last_value_excluded  [rank] error 1.000e+00 > tol 0.000e+00: rank 2, expected 3
  truncate.last_value_excluded  [matrix] error ... > tol ...: relative Frobenius error of ...
...
>>> report.failures[0]                               # doctest: +ELLIPSIS
Failure(case='truncate.last_value_excluded', quantity='rank', error=1.0, tol=0.0, message=...)

In a test suite, one test per golden case (``pytest -k truncate.ties_at_cut`` runs one;
a failure lists that case's failures, one readable line each)::

    import pytest
    from lowrank_ref import oracle

    @pytest.mark.parametrize("case", oracle.cases("truncate"), ids=lambda c: c.name)
    def test_truncate(case):
        assert oracle.check_case(case, my_truncate) == []

>>> case = next(c for c in oracle.cases("truncate") if c.name == "truncate.last_value_excluded")
>>> oracle.check_case(case, my_truncate)
[]
>>> for failure in oracle.check_case(case, buggy):
...     print(failure)                               # doctest: +ELLIPSIS
truncate.last_value_excluded  [rank] error 1.000e+00 > tol 0.000e+00: rank 2, expected 3
truncate.last_value_excluded  [matrix] error ... > tol ...: relative Frobenius error of ...
...

For a float32 backend, ``check_case(case, candidate, dtype=np.float32)``; skip the cases
``oracle.resolvable(case, np.float32)`` rejects (what :func:`check` does).

Golden files for a backend in another language (``python -m lowrank_ref oracle export DIR``):

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     manifest = oracle.export(d)
...     oracle.verify(d).passed
True

References: [CKL22] Ceruti, Kusch, Lubich, BIT 62 (2022); [CL22] Ceruti, Lubich, BIT 62
(2022); [CKL24] Ceruti, Kusch, Lubich, SISC (2024); [LO14] Lubich, Oseledets, BIT 54 (2014);
[CEKL24] Ceruti, Einkemmer, Kusch, Lubich, BIT 64 (2024); [NR25] Nobile, Riffaud, arXiv
2502.07040 (2025); [SZKCT22] Schotthoefer et al., NeurIPS 2022.
"""
from .checker import check, check_case, resolvable
from .generators import cases, clear_cache
from .golden import export, export_command, load, verify, verify_command
from .measure import COND_MAX
from .records import Case, Failure, Report, Tol
from .reference import FAMILIES, linear_rhs, reference

__all__ = ["FAMILIES", "COND_MAX", "Tol", "Case", "Failure", "Report", "cases", "check",
           "check_case", "resolvable", "reference", "linear_rhs", "export", "load", "verify",
           "clear_cache", "export_command", "verify_command"]
