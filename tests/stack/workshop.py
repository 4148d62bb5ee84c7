"""Runs a workshop lab (workshop/<lab>/run) against a test stack, as an instructor runs it, and
keeps its verdict lines for the figures printed at the end of the session."""

import os
import subprocess
import sys

from tests import figures
from tests.compose import ROOT
from tests.stack.stacks import Stack


def run_lab(stack: Stack, lab: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env_file = os.environ.get("LINKSTACK_ENV_FILE")
    command = [sys.executable, str(ROOT / "workshop" / lab), *args, *(["--env-file", env_file] if env_file else [])]
    env = {**os.environ, **stack.compose.environment()}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    verdicts = [line for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL", "=="))]
    figures.record("workshop", "\n".join(verdicts) or f"{lab}: no output; stderr: {result.stderr[-500:]}")
    return result


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "FAIL" not in [line[:4] for line in result.stdout.splitlines()], result.stdout
