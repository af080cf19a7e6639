"""Shared fixtures: where the real SAS samples are, and skipping cleanly without them."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Real SAS files live beside the repository (../shared/xmm-samples); never inside it.
SAMPLES = REPO.parent / "shared" / "xmm-samples"


@pytest.fixture(scope="session")
def xmm_samples() -> Path:
    """The folder of real SAS files; skips the test with a reason when it is absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"real SAS samples not found at {SAMPLES} (they live in ../shared, outside the repo)")
    return SAMPLES
