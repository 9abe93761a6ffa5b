"""Whether the grader's sandbox (bubblewrap) runs here, and a mark for the tests that need it: they skip with the
reason on a machine without it, and fail in CI, where `.ci/run` installs bubblewrap."""

from __future__ import annotations

import os

import pytest

from starter.grading.sandbox import SandboxUnavailable, check_available

try:
    check_available()
    MISSING = ""
except SandboxUnavailable as reason:
    MISSING = f"{reason} (`sudo apt install bubblewrap`)"
SKIP = bool(MISSING) and not os.environ.get("CI")
confined = pytest.mark.skipif(SKIP, reason=f"needs the grader's sandbox: {MISSING}")


def require_sandbox() -> None:
    """Skip the calling test or fixture where the sandbox is missing (outside CI)."""
    if SKIP:
        pytest.skip(f"needs the grader's sandbox: {MISSING}")
