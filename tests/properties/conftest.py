"""Hypothesis profiles for the property tests: "ci" (default: few examples, derandomized, fast) and "soak".

Select with HYPOTHESIS_PROFILE=soak (e.g. ``HYPOTHESIS_PROFILE=soak pytest tests/properties``) for a longer run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    database=None,  # nothing written to .hypothesis/ in CI
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "soak",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
