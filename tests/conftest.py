import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# The derivation scripts and their helpers (_claims, _runner, _common) are documents of the
# repository, not modules of the package: they import each other from their folder.
DERIVATIONS = Path(__file__).resolve().parents[1] / "derivations"
sys.path.insert(0, str(DERIVATIONS))

# "ci": fast and deterministic enough for shared 2-core machines; "thorough": more examples.
settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
