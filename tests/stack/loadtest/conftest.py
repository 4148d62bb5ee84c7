"""A stack of its own for the load-test scenarios, with the production alert rules (no test
overlay): p99-breach reports the times a user would see. Each scenario's verdict table is
printed at the end of the session."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import figures
from tests.stack.stacks import Stack, local_stack
from tests.stack.telemetry import Prometheus

PROJECT = "linkstack-loadtest"


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with local_stack(PROJECT, 202, tmp_path_factory.mktemp("loadtest-stack")) as stack:
        yield stack


@pytest.fixture(scope="package")
def prometheus(stack: Stack) -> Prometheus:
    return Prometheus(f"http://127.0.0.1:{stack.compose.env['PROMETHEUS_PORT']}")


def record(reports: Path) -> dict:
    """The run's verdict.json, its summary kept for the session's end."""
    figures.record("load-test verdicts", (reports / "summary.md").read_text())
    return json.loads((reports / "verdict.json").read_text())
