import os

from hypothesis import HealthCheck, settings

# `ci`: no deadline (shared, noisy machines), fewer examples so the suite stays in budget.
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true"
                      else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
