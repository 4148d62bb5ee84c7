"""Request ids, the replica header, the access line and unhandled errors."""

import asyncio
import json
import select
import sys
import time
from datetime import datetime, timedelta

import pytest
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

import app.core.request_telemetry as request_telemetry
from app.core.config import Settings
from app.core.lifespan import Lifecycle
from app.core.logging import REQUEST_ID
from app.core.request_telemetry import FLUSH_INTERVAL_S, RequestTelemetry, write_lines
from app.main import create_app
from app.middleware.request_context import RequestContextMiddleware

log = structlog.get_logger()


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


class TestRequestId:
    def test_generated_when_absent(self, client: TestClient) -> None:
        assert len(client.get("/health").headers["x-request-id"]) == 32

    def test_sane_incoming_id_is_kept(self, client: TestClient) -> None:
        response = client.get("/health", headers={"X-Request-ID": "abc-123.DEF_4:5"})
        assert response.headers["x-request-id"] == "abc-123.DEF_4:5"

    @pytest.mark.parametrize("bad", ["a" * 129, "has space", "semi;colon", 'quote"', ""])
    def test_insane_incoming_id_is_replaced(self, client: TestClient, bad: str) -> None:
        response = client.get("/health", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad
        assert len(response.headers["x-request-id"]) == 32


def test_replica_header_names_the_replica(client: TestClient) -> None:
    assert client.get("/nothere").headers["x-replica"] == "test-replica"


def test_access_line_shape(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    """One JSON line per request: id, method, route template, status, duration, client, replica."""
    capsys.readouterr()
    client.get("/api/links/abcd", headers={"X-Request-ID": "req-42"})
    time.sleep(FLUSH_INTERVAL_S * 3)  # access lines are written in batches
    access = [line for line in log_lines(capsys.readouterr().out) if line["event"] == "request"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42"
    assert line["method"] == "GET"
    assert line["route"] == "/api/links/{code}"
    assert line["path"] == "/api/links/abcd"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["client_ip"] == "testclient"
    assert line["replica"] == "test-replica"
    assert line["level"] == "info"
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0)


def test_unmatched_paths_share_one_route_label(client: TestClient) -> None:
    """Raw paths never become label values: unmatched ones share `<unmatched>`."""
    client.get("/api/nowhere/1")
    client.get("/api/nowhere/2")
    metrics = client.get("/metrics").text
    assert 'route="<unmatched>"' in metrics
    assert "nowhere" not in metrics


def test_unhandled_error_is_one_json_line_and_a_json_500(
    settings: Settings, clean: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug answers a JSON 500 with the request id and logs the traceback inside one JSON line."""
    app = create_app(settings)
    broken = APIRouter()

    @broken.get("/api/broken")
    async def fail() -> None:
        raise RuntimeError("boom")

    app.router.routes.insert(0, broken.routes[0])
    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        response = client.get("/api/broken", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["x-request-id"] == "req-500"
    out = capsys.readouterr().out
    errors = [line for line in log_lines(out) if line["event"] == "unhandled_error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-500"
    assert "RuntimeError: boom" in errors[0]["exception"]
    assert all(line.startswith("{") for line in out.splitlines() if line.strip())


def test_websocket_handshake_names_the_replica(client: TestClient) -> None:
    """The 101 response carries X-Replica and X-Request-ID like any other response."""
    with client.websocket_connect("/ws/clicks", headers={"X-Request-ID": "ws-1"}) as ws:
        # Starlette's test client keeps the accept message's headers on the session.
        headers = dict(ws.extra_headers)  # type: ignore[attr-defined]
    assert headers[b"x-replica"] == b"test-replica"
    assert headers[b"x-request-id"] == b"ws-1"


class TestBatchedWrites:
    """Access lines are written in batches, but never as a write a pipe could split mid-line."""

    def test_pieces_are_whole_lines_within_pipe_buf(self, monkeypatch: pytest.MonkeyPatch) -> None:
        lines = [b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * (i * 37 % 500)) for i in range(400)]
        lines.insert(200, b'{"huge":"' + b"y" * (2 * select.PIPE_BUF) + b'"}\n')
        pieces: list[bytes] = []

        class Raw:
            def write(self, piece: memoryview) -> int:
                # Like a raw file: accepts at most 3000 bytes per call.
                pieces.append(bytes(piece[:3000]))
                return min(len(piece), 3000)

            def flush(self) -> None:
                pass

        monkeypatch.setattr(sys, "stdout", type("Out", (), {"buffer": Raw()})())
        assert write_lines(b"".join(lines), wait_s=0) == len(b"".join(lines))
        assert b"".join(pieces) == b"".join(lines)
        for piece in pieces:
            assert len(piece) <= select.PIPE_BUF or piece.count(b"\n") <= 1


def test_request_id_is_reset_even_if_a_flush_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flush a burst triggers never runs inside the request's clean-up: whatever it does, the
    request's id leaves the context and the request ends normally."""
    monkeypatch.setattr(request_telemetry, "MAX_PENDING", 1)
    telemetry = RequestTelemetry("test-replica")
    flushes: list[str | None] = []

    def failing_flush(wait_s: float = 0) -> None:
        flushes.append(REQUEST_ID.get())
        raise RuntimeError("flush failed")

    monkeypatch.setattr(telemetry, "flush", failing_flush)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        pass

    async def request() -> None:
        scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"x-request-id", b"req-burst")]}
        await RequestContextMiddleware(app, "test-replica", False, telemetry, Lifecycle())(scope, None, send)  # type: ignore[arg-type]
        assert REQUEST_ID.get() is None
        await asyncio.sleep(0)  # the flush runs now, outside the request
        assert flushes == [None]

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # the failed flush, reported by the loop
    try:
        loop.run_until_complete(request())
    finally:
        loop.close()


def test_a_websocket_is_a_request(settings: Settings, clean: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Each WebSocket gets a request id, on its 101 and on every line logged while it is open, and
    one access line when it ends (status 101, or the refusal's, and the connection's lifetime). The
    request metrics count it, but its lifetime stays out of the latency histogram, and it is never
    a request in progress."""
    app = create_app(settings)
    extra = APIRouter()

    @extra.websocket("/ws/test-logs")
    async def logs(websocket: WebSocket) -> None:
        await websocket.accept()
        log.info("websocket_test_event")
        await websocket.close()

    @extra.websocket("/ws/test-refused")
    async def refused(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    app.router.routes[:0] = extra.routes
    with TestClient(app) as client:
        capsys.readouterr()
        with client.websocket_connect("/ws/clicks", headers={"X-Request-ID": "ws-2"}):
            time.sleep(0.05)
        with (
            client.websocket_connect("/ws/test-logs", headers={"X-Request-ID": "ws-3"}) as ws,
            pytest.raises(WebSocketDisconnect),
        ):
            ws.receive_text()
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/test-refused"):
            pass
        time.sleep(FLUSH_INTERVAL_S * 3)  # access lines are written in batches
        metrics = client.get("/metrics").text
    lines = log_lines(capsys.readouterr().out)
    access = {line["path"]: line for line in lines if line["event"] == "request" and line["path"].startswith("/ws/")}
    clicks = access["/ws/clicks"]
    assert (clicks["route"], clicks["method"], clicks["status"], clicks["request_id"]) == (
        "/ws/clicks",
        "GET",
        101,
        "ws-2",
    )
    assert clicks["duration_ms"] >= 50  # the connection's lifetime
    assert access["/ws/test-refused"]["status"] == 403
    [event] = [line for line in lines if line["event"] == "websocket_test_event"]
    assert event["request_id"] == access["/ws/test-logs"]["request_id"] == "ws-3"
    assert 'http_requests_total{method="GET",route="/ws/test-refused",status="403"} 1.0' in metrics
    assert 'http_request_duration_seconds_count{method="GET",route="/ws/test-refused",status="403"} 1.0' in metrics
    assert 'http_requests_total{method="GET",route="/ws/test-logs",status="101"} 1.0' in metrics
    durations = [line for line in metrics.splitlines() if line.startswith("http_request_duration")]
    assert not [line for line in durations if "/ws/test-logs" in line]
    assert "http_requests_in_progress 1.0" in metrics  # the scrape alone
