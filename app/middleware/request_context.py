"""One pure ASGI middleware for what every request needs: an id, an access line, metrics.

One layer instead of three keeps the per-request cost to a single `send` wrapper. A WebSocket
connection is a request too: its id is on the 101 response and on every line logged while it is
open, and its access line, written when it ends, carries the handshake's status (101 if accepted)
and the connection's lifetime.
"""

import random
import re
from collections.abc import Awaitable
from time import perf_counter

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.lifespan import Lifecycle
from app.core.logging import REQUEST_ID
from app.core.request_telemetry import RequestTelemetry

log = structlog.get_logger()

REQUEST_ID_HEADER = b"x-request-id"
# Accepted from the client only if it looks like an id: bounded, no characters that
# could forge log lines or headers (the access line writes it as it is).
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
CONNECTION_CLOSE = (b"connection", b"close")
INTERNAL_ERROR_BODY = b'{"detail":"internal server error"}'
INTERNAL_ERROR_START: Message = {
    "type": "http.response.start",
    "status": 500,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(INTERNAL_ERROR_BODY)).encode())],
}


def _request_id(scope: Scope) -> bytes:
    """As the header carries it: behind nginx, which always sends one, nothing to convert."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if SANE_REQUEST_ID.fullmatch(value):
                return value
            break
    # Unique, not secret: the Mersenne Twister is a tenth of os.urandom's cost per request
    # (and the random module reseeds itself in each forked worker).
    return random.getrandbits(128).to_bytes(16).hex().encode()


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, replica: str, replica_header: bool, telemetry: RequestTelemetry, lifecycle: Lifecycle
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        self.lifecycle = lifecycle
        self.extra_headers = [(b"x-replica", replica.encode())] if replica_header else []

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = perf_counter()
        request_id = _request_id(scope)
        status = 0  # until the handshake is answered
        extra_headers = [(b"x-request-id", request_id), *self.extra_headers]

        def send_with_context(message: Message) -> Awaitable[None]:
            nonlocal status
            kind = message["type"]
            if kind == "websocket.accept":
                status = 101
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            elif kind == "websocket.http.response.start":  # a denial response
                status = message["status"]
            elif kind == "websocket.close" and not status:  # refused: the server answers 403
                status = 403
            return send(message)

        token = REQUEST_ID.set(request_id.decode())
        try:
            await self.app(scope, receive, send_with_context)
        finally:
            REQUEST_ID.reset(token)
            # The handshake is a GET; an error before it is answered makes the server answer 500.
            self.telemetry.record_websocket(
                (
                    start,
                    perf_counter(),
                    request_id,
                    "GET",
                    scope.get("route"),
                    scope["path"],
                    scope.get("client"),
                    status or 500,
                )
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = perf_counter()
        request_id = _request_id(scope)
        status = 0  # until the response starts
        extra_headers = [(b"x-request-id", request_id), *self.extra_headers]

        lifecycle = self.lifecycle

        # A plain function that returns the server's awaitable: no coroutine of its own per message.
        def send_with_context(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
                if lifecycle.shutting_down:  # lingering before a stop (app/core/lifespan.py)
                    message["headers"].append(CONNECTION_CLOSE)
            return send(message)

        token = REQUEST_ID.set(request_id.decode())
        self.telemetry.start()
        try:
            await self.app(scope, receive, send_with_context)
        except Exception:
            # Logged here, as one JSON line with the traceback and the request id; the client
            # gets a JSON 500 that carries the id too.
            log.exception("unhandled_error", path=scope["path"])
            if status:
                raise
            await send_with_context(dict(INTERNAL_ERROR_START))
            await send({"type": "http.response.body", "body": INTERNAL_ERROR_BODY})
        finally:
            REQUEST_ID.reset(token)
            # Only what is at hand: the telemetry renders the line and the route label later.
            self.telemetry.record(
                (
                    start,
                    perf_counter(),
                    request_id,
                    scope["method"],
                    scope.get("route"),
                    scope["path"],
                    scope.get("client"),
                    status or 500,
                )
            )
