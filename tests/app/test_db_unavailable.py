"""Postgres (or Redis) stalled or down: every route answers fast, with a 503 that says why, never a
500 and never a wait without bound."""

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from time import monotonic

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.errors import CACHE_NOT_ANSWERING, DATABASE_NOT_ANSWERING, RETRY_AFTER_S
from app.core.config import ConfigError, Settings, load
from app.main import create_app
from devservers import PostgresServer, RedisServer, eventually
from tests.app.test_links import create
from tests.app.test_request_context import log_lines


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@contextmanager
def stalled(postgres: PostgresServer) -> Iterator[None]:
    """Every Postgres process stopped (SIGSTOP), the postmaster first so that it starts no other:
    connections are still accepted by the kernel, nothing is answered. Resumed on the way out."""
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    stopped: list[int] = []
    try:
        for pid in [postmaster, *_children(postmaster)]:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def timed(client: TestClient, path: str) -> tuple[httpx.Response, float]:
    started = monotonic()
    response = client.get(path)
    return response, monotonic() - started


def assert_unavailable(response: httpx.Response, detail: str) -> None:
    """A 503 with nothing but the plain sentence (no host, no driver message) and a Retry-After."""
    assert response.status_code == 503, response.text
    assert response.json() == {"detail": detail}
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)


@pytest.fixture
def one_connection(settings: Settings, clean: None) -> Iterator[TestClient]:
    """The app with one pooled connection, waited for 1 s at most, and 3 s statements at most."""
    impatient = settings.model_copy(
        update={"db_pool_max_size": 1, "db_acquire_timeout_s": 1.0, "db_command_timeout_s": 3.0}
    )
    with TestClient(create_app(impatient)) as client:
        yield client


def test_stalled_postgres_is_503_within_the_timeouts(one_connection: TestClient, postgres: PostgresServer) -> None:
    """Postgres stalls: the request that holds the only connection gives up after
    DB_COMMAND_TIMEOUT_S, the one queued behind it after DB_ACQUIRE_TIMEOUT_S; both answer 503."""
    client = one_connection
    pool = client.app_state["pool"]
    with ThreadPoolExecutor(2) as executor, stalled(postgres):
        holding = executor.submit(timed, client, "/api/links")
        eventually(lambda: pool.get_idle_size() == 0, "the only connection taken")
        queued, queued_s = executor.submit(timed, client, "/api/stats/top").result(timeout=10)
        held, held_s = holding.result(timeout=15)
    assert_unavailable(queued, DATABASE_NOT_ANSWERING)
    assert 1.0 <= queued_s < 2.5
    assert_unavailable(held, DATABASE_NOT_ANSWERING)
    # The statement timeout, then the wait for its cancellation, bounded by the acquire timeout.
    assert 3.0 <= held_s < 5.5
    eventually(lambda: client.get("/api/links").status_code == 200, "answers again once Postgres resumes")


def test_stopped_postgres_is_503_at_once_and_cached_redirects_go_on(
    client: TestClient, postgres: PostgresServer, capsys: pytest.CaptureFixture[str], admin_headers: dict
) -> None:
    """Every route that needs Postgres answers 503 at once (well within DB_ACQUIRE_TIMEOUT_S) and
    the outage is logged once, with the first request's id, and its end once; a cached link still
    redirects."""
    create(client, code="cached")
    assert client.get("/cached", follow_redirects=False).status_code == 307
    create(client, code="other")
    requests = [
        ("POST", "/api/links", {"url": "https://example.com"}),
        ("GET", "/api/links", None),
        ("GET", "/api/links/other", None),
        ("DELETE", "/api/links/other", None),  # with the admin token: a token alone needs no Postgres
        ("GET", "/api/stats/top", None),
        ("GET", "/other", None),
    ]
    capsys.readouterr()
    postgres.stop()  # the click flusher may be the first to notice, and log it
    try:
        for i, (method, path, body) in enumerate(requests):
            started = monotonic()
            headers = {"X-Request-ID": f"pg-down-{i}", **admin_headers}
            response = client.request(method, path, json=body, headers=headers)
            assert monotonic() - started < 1.0, path
            assert_unavailable(response, DATABASE_NOT_ANSWERING)
        assert client.get("/cached", follow_redirects=False).status_code == 307
        lines = log_lines(capsys.readouterr().out)
    finally:
        postgres.start()
    # Once per outage, not per request: with the traceback (and the request's id, if a request
    # met it first rather than the click flusher).
    logged = [line for line in lines if line["event"] == "dependency_down"]
    assert [line["dependency"] for line in logged] == ["postgres"]
    assert logged[0].get("request_id", "pg-down-0") == "pg-down-0"
    assert logged[0]["level"] == "error" and "Traceback" in logged[0]["exception"]
    assert not [line for line in lines if line["event"] == "unhandled_error"]
    eventually(lambda: client.get("/api/links/other").status_code == 200, "answers again once Postgres is back")
    recovered: list[dict] = []

    def outage_over() -> bool:  # declared once Postgres has answered for SETTLE_S
        assert client.get("/api/links/other").status_code == 200
        lines = log_lines(capsys.readouterr().out)
        recovered.extend(line for line in lines if line["event"] == "dependency_recovered")
        return bool(recovered)

    eventually(outage_over, "the end of the outage logged", 10, 0.3)
    assert [line["dependency"] for line in recovered] == ["postgres"]
    assert recovered[0]["failures"] >= len(requests)  # the requests', and the click flusher's if it tried


def test_redis_down_no_route_is_500(
    client: TestClient, redis_server: RedisServer, admin_headers: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis down: what needs only Postgres works; what needs Redis (a delete, the fault switch)
    answers 503. The outage is logged once, not per degraded redirect, and so is its end."""
    create(client, code="here")
    capsys.readouterr()
    redis_server.stop()  # the background loops may be the first to notice, and log it
    try:
        assert client.post("/api/links", json={"url": "https://example.com"}).status_code == 201
        assert client.get("/api/links").status_code == 200
        for _ in range(20):
            assert client.get("/here", follow_redirects=False).status_code == 307
        down = [line for line in log_lines(capsys.readouterr().out) if line["event"] == "dependency_down"]
        assert [line["dependency"] for line in down] == ["redis"]
        assert client.get("/api/stats/top").status_code == 200
        assert client.delete("/api/links/here", headers=admin_headers).status_code == 503  # test_cache_coherence.py
        for method in ("GET", "PUT", "DELETE"):
            body = {"latency_ms": 1} if method == "PUT" else None
            assert_unavailable(
                client.request(method, "/api/admin/faults", json=body, headers=admin_headers), CACHE_NOT_ANSWERING
            )
    finally:
        redis_server.start()
    eventually(lambda: client.get("/ready").status_code == 200, "ready again once Redis is back")
    events: list[tuple[str, str | None]] = []

    def recovered() -> bool:
        assert client.get("/here", follow_redirects=False).status_code == 307
        events.extend((line["event"], line.get("dependency")) for line in log_lines(capsys.readouterr().out))
        return ("dependency_recovered", "redis") in events

    eventually(recovered, "the end of the outage logged", 5, 0.2)
    assert ("dependency_down", "redis") not in events


def test_acquire_timeout_setting(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """DB_ACQUIRE_TIMEOUT_S: 2 s unless set, and a positive number of seconds."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load(Settings).db_acquire_timeout_s == 2.0
    monkeypatch.setenv("DB_ACQUIRE_TIMEOUT_S", "0.5")
    assert load(Settings).db_acquire_timeout_s == 0.5
    monkeypatch.setenv("DB_ACQUIRE_TIMEOUT_S", "0")
    with pytest.raises(ConfigError, match="DB_ACQUIRE_TIMEOUT_S: Input should be greater than 0"):
        load(Settings)
