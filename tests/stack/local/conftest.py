"""The local stack (compose.yaml alone), up once for this package, driven through nginx.

Prometheus runs with the test overlay of tests/stack/fast_alerts.py: shorter intervals and
`for:` durations, the same expressions.
"""

import time
from collections.abc import Iterator

import pytest

from tests.stack.fast_alerts import fast_alerts_overlay
from tests.stack.stacks import Stack, local_stack
from tests.stack.telemetry import Alertmanager, Prometheus

PROJECT = "linkstack-test"
RATE = 10  # r/s per client, compose.yaml's default
BURST = 20


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    with local_stack(PROJECT, 201, workdir, str(fast_alerts_overlay(workdir))) as stack:
        yield stack


@pytest.fixture
def full_budget() -> None:
    """Waits until earlier traffic's share of the rate-limit budget has refilled (burst / rate)."""
    time.sleep(BURST / RATE + 0.5)


@pytest.fixture(scope="package")
def prometheus(stack: Stack) -> Prometheus:
    return Prometheus(f"http://127.0.0.1:{stack.compose.env['PROMETHEUS_PORT']}")


@pytest.fixture(scope="package")
def alertmanager(stack: Stack) -> Alertmanager:
    return Alertmanager(f"http://127.0.0.1:{stack.compose.env['ALERTMANAGER_PORT']}")
