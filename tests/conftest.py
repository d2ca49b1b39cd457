import os

from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

# The suite's own NumPy work (reference computations, hypothesis examples, the engine
# outside the optimisers) at 1 BLAS thread for the whole session, as the package runs its
# steps: with OpenBLAS's default of one thread per core, a test process sharing a 2-core
# machine with one other job ran the suite several times slower (the effect of
# benchmarks/README.md, section "1. Threads"). tests/test_threads.py sets the counts it
# needs itself.
_ONE_BLAS_THREAD = threadpool_limits(1, user_api="blas")

# `ci`: no deadline (shared, noisy machines), fewer examples so the suite stays in budget.
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true"
                      else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
