"""SIGTERM to a real Gunicorn master: readiness, drain, WebSockets, the final flush, the exit code."""

import asyncio
import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import redis
from fastapi import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.api.routes import clicks_ws
from app.core.config import ConfigError, Settings, load
from app.services.click_stream import ClickStream
from app.services.faults import FAULTS_KEY
from devservers import eventually
from tests.app.conftest import ADMIN_TOKEN, make_settings, sql
from tests.app.live import LiveServer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# WebSocket close code 1012, Service Restart: the server goes away, reconnecting is right.
SERVICE_RESTART = 1012


@contextmanager
def slow_stats(server: LiveServer, migrated: dict[str, str], latency_ms: int) -> Iterator[None]:
    """Injected latency on /api/stats/* (one worker: the switch is in effect once the PUT answers)."""
    httpx.put(
        f"{server.url}/api/admin/faults", json={"latency_ms": latency_ms, "route": "/api/stats"}, headers=ADMIN
    ).raise_for_status()
    try:
        yield
    finally:
        redis.Redis.from_url(make_settings(migrated).redis_dsn).delete(FAULTS_KEY)


def click(server: LiveServer, code: str, times: int) -> None:
    httpx.post(f"{server.url}/api/links", json={"url": "https://example.com", "code": code}).raise_for_status()
    for _ in range(times):
        assert httpx.get(f"{server.url}/{code}").status_code == 307


def pipelined(port: int, *paths: str) -> socket.socket:
    """Sends GETs of `paths` in one go on a new kept-alive connection: the server answers them in
    order, each starting when the one before has ended."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=15)
    conn.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: app\r\n\r\n" % path.encode() for path in paths))
    return conn


def statuses_until_closed(conn: socket.socket) -> tuple[list[int], bytes]:
    """Reads until the server closes the connection; the status of each response, and all the bytes."""
    data = b""
    with conn:
        while chunk := conn.recv(65536):
            data += chunk
    # A body (JSON here) ends without a newline: the next status line follows it directly.
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)], data


def test_sigterm_drains_the_replica(migrated: dict[str, str], clean: None, tmp_path: Path) -> None:
    """SIGTERM to the master while a slow request is in flight and a WebSocket is open: at once
    /ready says 503 to a new connection (the replica lingers, SHUTDOWN_LINGER_S, serving with
    `Connection: close`), the slow request completes with 200 and its connection closes, the
    WebSocket is closed with 1012 (Service Restart: reconnect), pending clicks and every access line
    (the WebSocket's too) are written, exit 0."""
    server = LiveServer(migrated, tmp_path, workers=1, CLICK_FLUSH_INTERVAL_S="60").start()
    assert server.process is not None
    try:
        click(server, "drain", 7)
        with (
            slow_stats(server, migrated, latency_ms=2000),
            connect(f"ws://127.0.0.1:{server.port}/ws/clicks", additional_headers={"X-Request-ID": "ws-drain"}) as ws,
        ):
            eventually(lambda: "websocket_connections 1.0" in httpx.get(f"{server.url}/metrics").text, "socket open")
            assert httpx.get(f"{server.url}/ready").status_code == 200
            conn = pipelined(server.port, "/api/stats/top")
            time.sleep(0.5)  # the slow request is now inside its 2 s of injected latency
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # well past Uvicorn's own reaction (0.1 s): only lingering still takes this
            ready = httpx.get(f"{server.url}/ready")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            statuses, answers = statuses_until_closed(conn)
            exit_code = server.process.wait(30)
    finally:
        server.stop()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == SERVICE_RESTART
    assert (ready.status_code, ready.json(), ready.headers["connection"]) == (503, {"status": "shutting_down"}, "close")
    assert statuses == [200]
    assert b"connection: close" in answers
    assert exit_code == 0
    assert sql(migrated, "SELECT clicks FROM links WHERE code = 'drain'") == 7
    access = {
        entry["path"]: entry for entry in map(json.loads, server.output().splitlines()) if entry["event"] == "request"
    }
    assert access["/api/stats/top"]["status"] == 200
    assert (access["/ws/clicks"]["status"], access["/ws/clicks"]["request_id"]) == (101, "ws-drain")


def test_a_request_longer_than_the_drain_does_not_cost_the_final_flush(
    migrated: dict[str, str], clean: None, tmp_path: Path
) -> None:
    """SHUTDOWN_DRAIN_S caps the wait for requests in flight: one that takes longer is cancelled, and
    the final flush still happens within the budget, long before Gunicorn's graceful timeout."""
    drain_s, flush_s, graceful_s = 1, 2, 6
    server = LiveServer(
        migrated,
        tmp_path,
        workers=1,
        CLICK_FLUSH_INTERVAL_S="60",
        SHUTDOWN_DRAIN_S=str(drain_s),
        SHUTDOWN_FLUSH_S=str(flush_s),
        GRACEFUL_TIMEOUT_S=str(graceful_s),
    ).start()
    try:
        click(server, "budget", 5)
        with slow_stats(server, migrated, latency_ms=30_000):
            slow = pipelined(server.port, "/api/stats/top")
            time.sleep(0.5)
            started = time.monotonic()
            exit_code = server.terminate(graceful_s + 10)
            elapsed = time.monotonic() - started
            statuses, _ = statuses_until_closed(slow)
    finally:
        server.stop()
    assert exit_code == 0
    assert sql(migrated, "SELECT clicks FROM links WHERE code = 'budget'") == 5
    # Drain (1 s) + flush (well under its 2 s here) + Uvicorn's and Gunicorn's own steps.
    assert elapsed < drain_s + flush_s, f"stopped after {elapsed:.1f}s"
    assert statuses == [500]  # cancelled at the end of the drain
    entries = [json.loads(line) for line in server.output().splitlines()]
    # Its access line too: written by the final flush, after the cancellation.
    [access] = [entry for entry in entries if entry.get("event") == "request" and entry["path"] == "/api/stats/top"]
    assert access["status"] == 500
    assert access["duration_ms"] > drain_s * 1000
    assert not [entry for entry in entries if entry.get("level") == "error" and "clicks" in entry["event"]]


def test_a_socket_closed_while_an_event_is_on_its_way_ends_quietly() -> None:
    """Shutdown closes the WebSocket (1012) while the handler may be sending an event: the send
    fails, and the handler ends like on any disconnect, instead of raising into the server's log."""
    stream = ClickStream(redis=None)  # type: ignore[arg-type]  # never started: events are put in by hand

    class ClosedSocket:
        state = SimpleNamespace(click_stream=stream)

        async def accept(self) -> None:
            pass

        async def receive_text(self) -> str:
            await asyncio.Event().wait()  # the disconnect message has not been read yet
            raise AssertionError("unreachable")

        async def send_text(self, data: str) -> None:
            raise WebSocketDisconnect(1006)

    async def scenario() -> None:
        handler = asyncio.create_task(clicks_ws.clicks(ClosedSocket()))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        stream._publish_locally('{"code": "on-its-way"}')
        await asyncio.wait_for(handler, 1)

    asyncio.run(scenario())


@pytest.mark.parametrize(("drain", "flush", "graceful"), [("15", "5", "20"), ("10", "9", "12")])
def test_linger_drain_and_flush_must_end_before_the_graceful_timeout(
    migrated: dict[str, str], monkeypatch: pytest.MonkeyPatch, drain: str, flush: str, graceful: str
) -> None:
    """A stop budget that does not add up stops the start, with one line naming the four settings."""
    for name, value in {**migrated, "SHUTDOWN_DRAIN_S": drain, "SHUTDOWN_FLUSH_S": flush}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GRACEFUL_TIMEOUT_S", graceful)
    with pytest.raises(ConfigError) as error:
        load(Settings)
    message = str(error.value)
    assert "\n" not in message
    assert f"SHUTDOWN_LINGER_S (1) + SHUTDOWN_DRAIN_S ({drain}) + SHUTDOWN_FLUSH_S ({flush}) must be less" in message
    assert f"GRACEFUL_TIMEOUT_S ({graceful})" in message
    monkeypatch.setenv("GRACEFUL_TIMEOUT_S", str(1 + int(drain) + int(flush) + 1))
    assert load(Settings).graceful_timeout_s == 1 + int(drain) + int(flush) + 1
