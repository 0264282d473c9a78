# Hypothesis settings for both test trees (tests/ and sim/tests/), however pytest is invoked.
from hypothesis import HealthCheck, settings

# CI machines are small and busy: judge properties, not the speed of data generation.
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.load_profile("ci")
