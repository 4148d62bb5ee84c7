"""Liveness and readiness."""

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from devservers import PostgresServer, eventually
from tests.app.conftest import ROOT
from tests.app.live import LiveServer


def test_health_needs_no_dependency(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_when_dependencies_answer(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


def readiness_metrics(client: TestClient) -> set[str]:
    return {line for line in client.get("/metrics").text.splitlines() if line.startswith("readiness_check_ok{")}


def test_ready_follows_postgres_without_a_restart(client: TestClient, postgres: PostgresServer) -> None:
    """/ready turns 503 while Postgres is stopped and back to 200 when it returns, same process;
    readiness_check_ok says which dependency failed, for the AppNotReady alert."""
    postgres.stop()
    try:
        response = eventually(
            lambda: (r := client.get("/ready")).status_code == 503 and r, "503 while Postgres is down"
        )
        assert response.json()["checks"]["postgres"].startswith("error")
        assert client.get("/health").status_code == 200
        assert readiness_metrics(client) == {
            'readiness_check_ok{dependency="postgres"} 0.0',
            'readiness_check_ok{dependency="redis"} 1.0',
        }
    finally:
        postgres.start()
    eventually(lambda: client.get("/ready").status_code == 200, "200 once Postgres is back", timeout=15)
    assert 'readiness_check_ok{dependency="postgres"} 1.0' in readiness_metrics(client)


def test_ready_is_503_once_shutdown_begins(client: TestClient) -> None:
    """The shutdown flag (set by SIGTERM or lifespan exit) fails readiness before anything closes."""
    client.app_state["lifecycle"].shutting_down = True
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "shutting_down"}


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
