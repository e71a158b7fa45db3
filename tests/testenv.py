"""Test-suite knobs from the environment, importable from any test module."""

from __future__ import annotations

import os

TIMEOUT_SCALE = float(os.environ.get("HUBBUB_TEST_TIMEOUT_SCALE", "1") or 1)
REDIS_URL = os.environ.get("HUBBUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def scaled(seconds: float) -> float:
    """A timeout, stretched on slow machines by ``HUBBUB_TEST_TIMEOUT_SCALE``."""
    return seconds * TIMEOUT_SCALE
