"""Liveness and readiness."""

from fastapi.testclient import TestClient

from tests.polling import eventually
from tests.servers import PostgresServer


def test_health_needs_no_dependency(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_when_dependencies_answer(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


def test_ready_follows_postgres_without_a_restart(client: TestClient, postgres: PostgresServer) -> None:
    """/ready turns 503 while Postgres is stopped and back to 200 when it returns, same process."""
    postgres.stop()
    try:
        response = eventually(
            lambda: (r := client.get("/ready")).status_code == 503 and r, "503 while Postgres is down"
        )
        assert response.json()["checks"]["postgres"].startswith("error")
        assert client.get("/health").status_code == 200
    finally:
        postgres.start()
    eventually(lambda: client.get("/ready").status_code == 200, "200 once Postgres is back", timeout=15)


def test_ready_is_503_once_shutdown_begins(client: TestClient) -> None:
    """The shutdown flag (set by SIGTERM or lifespan exit) fails readiness before anything closes."""
    client.app_state["lifecycle"].shutting_down = True
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "shutting_down"}
