"""Each scenario of loadtest/ run headless by scripts/loadtest against a real stack, as a user
runs it, and held to its own verdict. steady is the CI load gate."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from devservers import eventually
from tests.compose import ROOT
from tests.dashboards import queries
from tests.stack.loadtest.conftest import record
from tests.stack.stacks import Stack
from tests.stack.telemetry import LEFT_OUT_PREFIXES, SYNTHETIC, Alertmanager, Prometheus

P99_ALERT = "AppHighLatencyP99"


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


def notifications(stack: Stack) -> list[dict]:
    """What the alert sink received, read inside the stack (it publishes no port)."""
    script = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/').read().decode())"
    return yaml.safe_load(stack.compose.run("exec", "-T", "alert-sink", "python", "-c", script).stdout)


@pytest.mark.timeout(900)  # at worst: the scenario's wait for a settled alert, then its whole budget
def test_p99_breach_fires_notifies_and_resolves_the_alert(
    stack: Stack, prometheus: Prometheus, alertmanager: Alertmanager, tmp_path: Path
) -> None:
    """p99-breach's injected latency under load: AppHighLatencyP99 goes pending, then firing,
    reaches Alertmanager and the notification sink; once the latency is switched off it resolves,
    in Prometheus within the scenario's verdict, then in Alertmanager. (for: and intervals
    shortened by the test overlay, tests/stack/fast_alerts.py; the expression is the committed one.)"""
    process = loadtest(stack, tmp_path, "p99-breach")
    try:
        states = set()

        def firing() -> bool:
            states.update(alert["state"] for alert in prometheus.alerts(P99_ALERT))
            return "firing" in states

        eventually(firing, f"{P99_ALERT} firing in Prometheus", timeout=240, interval=1)
        assert "pending" in states, "it must be pending before it fires"
        eventually(lambda: alertmanager.alerts(P99_ALERT), "the alert in Alertmanager", timeout=30)
        eventually(
            lambda: any(n["alertname"] == P99_ALERT and n["status"] == "firing" for n in notifications(stack)),
            "a firing notification at the sink (warning: group_wait 30 s)",
            timeout=60,
            interval=2,
        )
    finally:
        finish(process, tmp_path, timeout=840)
    eventually(
        lambda: all(a["status"]["state"] != "active" for a in alertmanager.alerts(P99_ALERT)),
        "resolved in Alertmanager",
        timeout=60,
        interval=2,
    )


def test_least_conn_keeps_the_p99_off_a_hanging_replica(stack: Stack, tmp_path: Path) -> None:
    verdict_of(stack, tmp_path, "least-conn", "--duration", "30")


def test_rate_limit_lets_through_rate_and_burst_and_spares_clients_under_it(stack: Stack, tmp_path: Path) -> None:
    verdict_of(stack, tmp_path, "rate-limit", "--duration", "20")


def test_websocket_delivers_every_click(stack: Stack, tmp_path: Path) -> None:
    verdict_of(stack, tmp_path, "websocket", "--duration", "30")


def test_web_ui_runs_any_scenario_with_two_workers(stack: Stack) -> None:
    """The workshop path: `--profile loadtest up` gives the web UI with every scenario's users
    to pick from and two workers; a run started there reaches the stack."""
    compose = stack.compose
    # --build: the scenarios as they are in this checkout, as scripts/loadtest does.
    compose.run(
        "--profile",
        "loadtest",
        "up",
        "-d",
        "--build",
        "--wait",
        "--scale",
        "locust-worker=2",
        "locust",
        "locust-worker",
    )
    ui = f"http://127.0.0.1:{compose.env['LOCUST_PORT']}"
    try:
        with httpx.Client(base_url=ui, timeout=10) as client:
            page = client.get("/").text
            for user_class in ("SteadyClient", "UnevenClient", "BurstClient", "BreachClient", "Listener", "Clicker"):
                assert user_class in page, f"{user_class} not offered by the web UI"
            eventually(lambda: client.get("/stats/requests").json()["worker_count"] == 2, "two workers", timeout=60)
            form = {"user_count": "10", "spawn_rate": "10", "user_classes": "SteadyClient", "run_time": "15s"}
            assert client.post("/swarm", data=form).json()["success"]

            def finished() -> dict:
                stats = client.get("/stats/requests").json()
                return stats if stats["state"] == "stopped" else {}

            stats = eventually(finished, "the run's end", timeout=60, interval=1)
        total = next(row for row in stats["stats"] if row["name"] == "Aggregated")
        assert total["num_requests"] > 20 and total["num_failures"] == 0, total
    finally:
        compose.run("--profile", "loadtest", "rm", "-sf", "locust", "locust-worker", check=False)
