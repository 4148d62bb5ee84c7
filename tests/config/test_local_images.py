"""The local stand-ins behave as the upstream images do where the stack relies on it.

Runs only when the suite uses them (scripts/test on a machine with no registry, as CI).
"""

import os
import subprocess

import pytest

from tests.compose import ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("LINKSTACK_ENV_FILE") != "local-images.env", reason="the suite runs on the upstream images"
)


def test_local_images_imitate_upstream() -> None:
    """scripts/local-images.d/smoke: users, entrypoints, envsubst, resolve, read-only roots."""
    result = subprocess.run(["scripts/local-images.d/smoke"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "smoke: all checks passed" in result.stdout
