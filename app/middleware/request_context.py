"""One pure ASGI middleware for what every request needs: an id, an access line, metrics.

One layer instead of three keeps the per-request cost to a single `send` wrapper.
"""

import random
import re
from collections.abc import Awaitable
from time import perf_counter

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import REQUEST_ID
from app.core.request_telemetry import RequestTelemetry

log = structlog.get_logger()

REQUEST_ID_HEADER = b"x-request-id"
# Accepted from the client only if it looks like an id: bounded, no characters that
# could forge log lines or headers (the access line writes it as it is).
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
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
    def __init__(self, app: ASGIApp, replica: str, replica_header: bool, telemetry: RequestTelemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        self.extra_headers = [(b"x-replica", replica.encode())] if replica_header else []

    def _headers_on_accept(self, scope: Scope, send: Send) -> Send:
        """WebSocket handshakes carry the request id and replica too (the 101 response)."""
        headers = [(b"x-request-id", _request_id(scope)), *self.extra_headers]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        return send_with_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, receive, self._headers_on_accept(scope, send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = perf_counter()
        request_id = _request_id(scope)
        status = 0  # until the response starts
        extra_headers = [(b"x-request-id", request_id), *self.extra_headers]

        # A plain function that returns the server's awaitable: no coroutine of its own per message.
        def send_with_context(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
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
            REQUEST_ID.reset(token)
