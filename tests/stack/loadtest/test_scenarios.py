"""Each scenario of loadtest/ run headless by scripts/loadtest against a real stack, as a user
runs it, and held to its own verdict. steady is the CI load gate. least-conn and p99-breach run
inside workshop labs 2 and 5 (test_workshop.py), which check their verdicts and what a participant
sees besides: the alert on its way to Alertmanager and the sink, Locust's web UI in a browser."""

import os
import subprocess
import sys
from pathlib import Path

from devservers import eventually
from tests.compose import ROOT
from tests.dashboards import queries
from tests.stack.loadtest.conftest import record
from tests.stack.stacks import Stack
from tests.stack.telemetry import LEFT_OUT_PREFIXES, SYNTHETIC, Prometheus


def loadtest(stack: Stack, reports: Path, *args: str) -> subprocess.Popen[str]:
    """scripts/loadtest against this stack, as a user runs it."""
    env_file = os.environ.get("LINKSTACK_ENV_FILE")
    command = [sys.executable, "scripts/loadtest", *args, "--reports", str(reports)]
    command += ["--env-file", env_file] if env_file else []
    env = {**os.environ, **stack.compose.environment()}
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def empty_panels(prometheus: Prometheus) -> list[str]:
    """Load-test dashboard queries with no data, less those over series this stack cannot have:
    Alloy's (not in the local-images stack) and ALERTS (only while an alert is active)."""
    left_out = LEFT_OUT_PREFIXES + SYNTHETIC
    return [
        f"{panel}: {expr}"
        for _, panel, expr in queries("prometheus", uid="linkstack-load-test")
        if not all(s.startswith(left_out) for s in prometheus.selectors(expr)) and not prometheus.query(expr)
    ]


def finish(process: subprocess.Popen[str], reports: Path, timeout: float = 300) -> dict:
    """Waits for scripts/loadtest; its verdict, which must pass."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode in (0, 1), f"scripts/loadtest could not run ({process.returncode}):\n{output[-4000:]}"
    verdict = record(reports)
    assert verdict["passed"], (reports / "summary.md").read_text()
    return verdict


def verdict_of(stack: Stack, reports: Path, *args: str, timeout: float = 300) -> dict:
    return finish(loadtest(stack, reports, *args), reports, timeout)


def test_steady_is_the_load_gate(stack: Stack, prometheus: Prometheus, tmp_path: Path) -> None:
    """A minute of the realistic mix from two workers: error ratio <= 0.1 %, p99 <= 500 ms.
    Meanwhile Locust's own figures reach Prometheus, and every panel of the load-test dashboard
    has data."""
    process = loadtest(stack, tmp_path, "steady", "--duration", "60", "--workers", "2")
    try:
        eventually(lambda: prometheus.query("locust_users > 0"), "Locust's users in Prometheus", timeout=60, interval=2)
        eventually(lambda: prometheus.query("locust_workers == 2"), "two workers in Prometheus", timeout=30, interval=2)
        eventually(lambda: not empty_panels(prometheus), "every load-test panel answered", timeout=40, interval=5)
    finally:
        finish(process, tmp_path)


def test_rate_limit_lets_through_rate_and_burst_and_spares_clients_under_it(stack: Stack, tmp_path: Path) -> None:
    verdict_of(stack, tmp_path, "rate-limit", "--duration", "20")


def test_websocket_delivers_every_click(stack: Stack, tmp_path: Path) -> None:
    verdict_of(stack, tmp_path, "websocket", "--duration", "30")
