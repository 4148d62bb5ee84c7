"""Liveness and readiness."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.services import readiness
from devservers import PostgresServer, eventually
from tests.app.conftest import ROOT
from tests.app.live import LiveServer
from tests.app.test_db_unavailable import stalled
from tests.app.test_request_context import log_lines


def test_health_needs_no_dependency(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_when_dependencies_answer(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


def readiness_metrics(client: TestClient) -> set[str]:
    return {line for line in client.get("/metrics").text.splitlines() if line.startswith("readiness_check_ok{")}


def test_ready_follows_postgres_without_a_restart(
    client: TestClient, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """/ready turns 503 while Postgres is stopped and back to 200 when it returns, same process;
    readiness_check_ok says which dependency failed, for the AppNotReady alert. The body says
    "failing" and nothing more: why (host names, driver messages) is in the log, once per change,
    not once per call."""
    capsys.readouterr()
    postgres.stop()
    try:
        response = eventually(
            lambda: (r := client.get("/ready")).status_code == 503 and r, "503 while Postgres is down"
        )
        assert response.json() == {"status": "unavailable", "checks": {"postgres": "failing", "redis": "ok"}}
        for _ in range(3):  # more checks, one a second: the same failure, not logged again
            time.sleep(readiness.CACHE_S)
            assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200
        assert readiness_metrics(client) == {
            'readiness_check_ok{dependency="postgres"} 0.0',
            'readiness_check_ok{dependency="redis"} 1.0',
        }
    finally:
        postgres.start()
    eventually(lambda: client.get("/ready").status_code == 200, "200 once Postgres is back", timeout=15)
    assert 'readiness_check_ok{dependency="postgres"} 1.0' in readiness_metrics(client)
    lines = [line for line in log_lines(capsys.readouterr().out) if line["event"].startswith("readiness_check")]
    assert [(line["event"], line["dependency"]) for line in lines] == [
        ("readiness_check_failing", "postgres"),
        ("readiness_check_recovered", "postgres"),
    ]
    assert lines[0]["level"] == "warning" and lines[0]["error"]  # the exception's text, for operators


def redis_pings(settings: Settings) -> int:
    """PINGs Redis has served since its statistics were last reset: one per readiness check."""
    stats = redis.Redis.from_url(settings.redis_dsn).info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


def test_a_flood_of_ready_checks_at_most_once_a_second(client: TestClient, settings: Settings) -> None:
    """Each worker keeps its readiness result for CACHE_S: hundreds of /ready calls in 2 s cost
    about two checks, not hundreds of Postgres round trips."""
    redis.Redis.from_url(settings.redis_dsn).config_resetstat()
    calls, started = 0, time.monotonic()
    while time.monotonic() - started < 2 * readiness.CACHE_S:
        assert client.get("/ready").status_code == 200
        calls += 1
    assert calls > 50
    assert redis_pings(settings) <= 3, f"{redis_pings(settings)} checks for {calls} calls"


def test_concurrent_ready_calls_share_the_check_in_flight(
    client: TestClient, settings: Settings, postgres: PostgresServer
) -> None:
    """Callers that come while a check runs wait for it instead of starting their own: with
    Postgres stalled (each check takes its whole timeout), 20 callers at once cost one check."""
    time.sleep(readiness.CACHE_S)  # the last result has expired
    redis.Redis.from_url(settings.redis_dsn).config_resetstat()
    with stalled(postgres), ThreadPoolExecutor(20) as executor:
        responses = list(executor.map(lambda _: client.get("/ready"), range(20)))
    assert [r.status_code for r in responses] == [503] * 20
    assert redis_pings(settings) == 1


def test_ready_is_503_once_shutdown_begins(client: TestClient) -> None:
    """The shutdown flag (set by SIGTERM or lifespan exit) fails readiness before anything closes."""
    client.app_state["lifecycle"].shutting_down = True
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "shutting_down"}  # at once: no check, no cached result


def test_container_healthcheck_command(live: LiveServer) -> None:
    """`python -m app.healthcheck PATH` (the image's HEALTHCHECK) exits 0 on 200, 1 otherwise."""

    def healthcheck(*args: str, port: int = live.port) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PORT": str(port)}
        command = [sys.executable, "-m", "app.healthcheck", *args]
        return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)

    assert healthcheck().returncode == 0
    assert healthcheck("/ready").returncode == 0
    assert healthcheck("/nothere").returncode == 1
    down = healthcheck(port=1)
    assert down.returncode == 1
    assert "127.0.0.1:1/health" in down.stderr
