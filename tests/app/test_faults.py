"""Fault injection: behind the admin token, shared by replicas through Redis, absent in production."""

import asyncio
import json
import subprocess
import sys

import pytest
import redis
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.redis import open_redis
from app.main import create_app
from app.services.faults import FAULTS_KEY, FaultSwitch
from tests.app.conftest import ROOT, make_settings
from tests.app.live import LiveServer

ALWAYS_FAIL = {"error_rate": 1.0}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": "Basic x"}]
)
def test_admin_needs_the_token(client: TestClient, headers: dict) -> None:
    """Without the right bearer token: 401, and the switch stays off."""
    response = client.put("/api/admin/faults", json=ALWAYS_FAIL, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert client.get("/api/links").status_code == 200


def test_error_rate_and_clear(client: TestClient, admin_headers: dict) -> None:
    """error_rate 1 fails every request but the exempt ones; DELETE ends the drill."""
    assert client.put("/api/admin/faults", json=ALWAYS_FAIL, headers=admin_headers).status_code == 200
    response = client.get("/api/links")
    assert response.status_code == 500
    assert response.json() == {"detail": "injected fault"}
    assert response.headers["x-request-id"]
    assert client.get("/health").status_code == 200
    assert client.get("/api/admin/faults", headers=admin_headers).json()["error_rate"] == 1.0
    assert client.delete("/api/admin/faults", headers=admin_headers).status_code == 204
    assert client.get("/api/links").status_code == 200


def test_latency_is_added(client: TestClient, admin_headers: dict) -> None:
    client.put("/api/admin/faults", json={"latency_ms": 300}, headers=admin_headers)
    response = client.get("/api/links")
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.3


@pytest.mark.parametrize(
    ("scope", "affected"),
    [
        ({"route": "/api/stats"}, False),
        ({"route": "/api/links"}, True),
        ({"replica": "another"}, False),
        ({"replica": "test-replica"}, True),
    ],
)
def test_limited_to_a_route_or_replica(client: TestClient, admin_headers: dict, scope: dict, affected: bool) -> None:
    client.put("/api/admin/faults", json={**ALWAYS_FAIL, **scope}, headers=admin_headers)
    assert (client.get("/api/links").status_code == 500) is affected


@pytest.mark.parametrize(
    "body", [{"error_rate": 1.5}, {"latency_ms": -1}, {"latency_ms": 60_000}, {"route": "api"}, {"bogus": 1}]
)
def test_bad_fault_config_is_422(client: TestClient, admin_headers: dict, body: dict) -> None:
    assert client.put("/api/admin/faults", json=body, headers=admin_headers).status_code == 422


def test_memory_fault_takes_and_keeps_memory(client: TestClient, admin_headers: dict) -> None:
    """The worker that serves it holds the megabytes, resident, until it dies; bounds are checked."""
    with open("/proc/self/status") as status:
        before = int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
    first = client.post("/api/admin/faults/memory", json={"megabytes": 8}, headers=admin_headers)
    second = client.post("/api/admin/faults/memory", json={"megabytes": 8}, headers=admin_headers)
    with open("/proc/self/status") as status:
        after = int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
    assert second.json()["held_mb"] - first.json()["held_mb"] == 8
    assert after - before >= 15 * 1024  # kB: written to, so resident
    for body in ({"megabytes": 0}, {"megabytes": 4097}, {}):
        assert client.post("/api/admin/faults/memory", json=body, headers=admin_headers).status_code == 422
    assert client.post("/api/admin/faults/memory", json={"megabytes": 1}).status_code == 401


def test_other_replicas_follow_the_switch(settings: Settings, client: TestClient, admin_headers: dict) -> None:
    """A second replica's switch picks the config up from Redis."""
    client.put("/api/admin/faults", json={"latency_ms": 5}, headers=admin_headers)

    async def other_replica_sees() -> int:
        redis = open_redis(settings)
        other = FaultSwitch(redis, "other-replica")
        await other.refresh()
        await redis.aclose()
        return other.config.latency_ms

    assert asyncio.run(other_replica_sees()) == 5


def test_production_has_no_fault_injection(migrated: dict[str, str], clean: None, admin_headers: dict) -> None:
    """In production the admin routes do not exist and a switch left in Redis has no effect."""
    with TestClient(create_app(make_settings(migrated, environment="local"))) as local:
        local.put("/api/admin/faults", json=ALWAYS_FAIL, headers=admin_headers)
    try:
        with TestClient(create_app(make_settings(migrated, environment="production"))) as prod:
            assert prod.put("/api/admin/faults", json={}, headers=admin_headers).status_code == 404
            assert prod.get("/api/links", headers=admin_headers).status_code == 200
            assert "x-replica" not in prod.get("/health").headers
    finally:
        redis.Redis.from_url(make_settings(migrated).redis_dsn).delete(FAULTS_KEY)


class TestCommandLine:
    """`python -m app.faults`, the workshop's way in (the admin API is not behind nginx)."""

    def run(self, live: LiveServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "app.faults", *args]
        full_env = {**live.env, **env}
        return subprocess.run(command, env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=30)

    def test_set_show_clear(self, live: LiveServer, clean: None) -> None:
        result = self.run(live, "set", "--latency-ms", "5", "--error-rate", "0.5", "--route", "/api/stats")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"latency_ms": 5, "error_rate": 0.5, "replica": None, "route": "/api/stats"}
        assert json.loads(self.run(live, "show").stdout)["error_rate"] == 0.5
        assert self.run(live, "clear").returncode == 0
        assert json.loads(self.run(live, "show").stdout)["error_rate"] == 0.0

    def test_bad_values_are_refused_with_the_reason(self, live: LiveServer, clean: None) -> None:
        result = self.run(live, "set", "--error-rate", "2")
        assert result.returncode == 1
        assert "422" in result.stderr and "error_rate" in result.stderr

    def test_memory_of_a_worker_that_dies_is_reported_without_a_traceback(self, live: LiveServer) -> None:
        """What the out-of-memory drill ends in: no answer. The command says so in a sentence."""
        result = self.run(live, "memory", "--mb", "1", PORT="1")
        assert result.returncode == 1
        assert result.stderr.startswith("faults: the replica gave no answer") and "Traceback" not in result.stderr

    def test_refused_in_production(self, live: LiveServer) -> None:
        result = self.run(live, "show", ENVIRONMENT="production")
        assert result.returncode == 2
        assert "does not exist in production" in result.stderr
