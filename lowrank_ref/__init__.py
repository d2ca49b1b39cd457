"""lowrank_ref: a NumPy reference implementation of dynamical low-rank approximation (DLRA)
and dynamical low-rank training (DLRT) of neural networks.

See docs/references.md for the papers implemented and docs/design.md for the architecture; the public names are
``LowRank`` here and the functions of ``lowrank_ref.integrators``,
``lowrank_ref.truncation``, ``lowrank_ref.odes``, ``lowrank_ref.checks`` and
``lowrank_ref.oracle``.
"""
from .lowrank import LowRank

__version__ = "0.1.0"
__all__ = ["LowRank", "__version__"]
