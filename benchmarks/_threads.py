"""Set the BLAS thread count from ``--threads`` before NumPy is imported."""
from __future__ import annotations

import os
import sys


def limit_threads(argv=None, default=1) -> int:
    """Read ``--threads N`` from ``argv`` and export the BLAS thread variables (before numpy)."""
    argv = sys.argv[1:] if argv is None else argv
    n = default
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            n = int(argv[i + 1])
        elif a.startswith("--threads="):
            n = int(a.split("=", 1)[1])
    if "numpy" in sys.modules:
        raise RuntimeError("limit_threads must run before numpy is imported")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(n)
    return n
