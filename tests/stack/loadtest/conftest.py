"""A stack of its own for the load-test scenarios. Prometheus runs with the test overlay of
tests/stack/fast_alerts.py (shorter intervals and `for:` durations, the same expressions), so
that p99-breach takes the alert through firing and back in about a minute and a half rather
than four. Each scenario's verdict table is printed at the end of the session."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import figures
from tests.stack.fast_alerts import fast_alerts_overlay
from tests.stack.stacks import Stack, local_stack
from tests.stack.telemetry import Prometheus

PROJECT = "linkstack-loadtest"


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("loadtest-stack")
    with local_stack(PROJECT, 202, workdir, str(fast_alerts_overlay(workdir))) as stack:
        yield stack


@pytest.fixture(scope="package")
def prometheus(stack: Stack) -> Prometheus:
    return Prometheus(f"http://127.0.0.1:{stack.compose.env['PROMETHEUS_PORT']}")


def record(reports: Path) -> dict:
    """The run's verdict.json, its summary kept for the session's end."""
    figures.record("load-test verdicts", (reports / "summary.md").read_text())
    return json.loads((reports / "verdict.json").read_text())
