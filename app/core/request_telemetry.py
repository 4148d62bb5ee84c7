"""What every request leaves behind — one access line and one duration observation — kept as a
tuple and rendered in one go every FLUSH_INTERVAL_S, like nginx's `access_log buffer= flush=`.

Why defer: a request then only appends a tuple. Rendering (JSON, timestamps, histogram buckets)
runs for a whole batch in one tight loop, where its code stays hot in the CPU's caches;
interleaved with the framework's own work, the same steps cost several times more. Measured as
worker CPU per `GET /health` under wrk, side by side: 76-82 us without middleware, 93-103 us
with lines and observations built per request, 85-93 us deferred (scripts/bench-app prints the
current figures).

The price: /metrics of another worker and the log lag by at most FLUSH_INTERVAL_S, and a hard
crash (SIGKILL, OOM) loses that much. Shutdown flushes (the lifespan calls `flush`); so does a
scrape, for the worker that serves it.
"""

import asyncio
import os
import select
import sys
import time
from bisect import bisect_left
from typing import Any

import orjson
from prometheus_client import Histogram

from app.core.logging import utc_timestamp
from app.core.metrics import HTTP_DURATION, UNMATCHED_ROUTE

FLUSH_INTERVAL_S = 0.1
# Flushed early past this many requests, so a burst keeps memory and log lag bounded.
MAX_PENDING = 2048
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Durations:
    """Local bucket counts for one labelled child of HTTP_DURATION.

    Adds them to the shared child's own bucket and sum values, which is what `observe` does one
    at a time (multiprocess files hold non-cumulative bucket counts). These attributes are
    prometheus_client internals, pinned in uv.lock; tests/app/test_gunicorn.py checks the sums.
    """

    __slots__ = ("child", "counts", "total")

    def __init__(self, child: Histogram) -> None:
        self.child = child
        self.counts = [0] * len(child._upper_bounds)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.child._upper_bounds, seconds)] += 1
        self.total += seconds

    def flush(self) -> None:
        for index, count in enumerate(self.counts):
            if count:
                self.child._buckets[index].inc(count)
                self.counts[index] = 0
        if self.total:
            self.child._sum.inc(self.total)
            self.total = 0.0


# (start, end) from time.perf_counter, request id, method, the matched route or None, path,
# the ASGI client address, status: what the middleware has at hand, nothing computed yet.
Finished = tuple[float, float, str, str, Any, str, tuple[str, int] | None, int]


class RequestTelemetry:
    def __init__(self, replica: str) -> None:
        self._fixed = {"event": "request", "level": "info", "replica": replica, "pid": os.getpid()}
        self._finished: list[Finished] = []
        # Bounded: route templates x known methods x status codes.
        self._durations: dict[tuple[str, str, int], _Durations] = {}
        self._flush_pending = False

    def record(self, finished: Finished) -> None:
        self._finished.append(finished)
        if len(self._finished) >= MAX_PENDING:
            self.flush()
        elif not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._flush_on_timer)

    def _flush_on_timer(self) -> None:
        # Only the timer re-arms the timer: flushes for size, scrapes or shutdown add none.
        self._flush_pending = False
        self.flush()

    def flush(self) -> None:
        finished, self._finished = self._finished, []
        lines = bytearray()
        # perf_counter is monotonic; the wall clock of each request's end is derived from it.
        to_wall = time.time() - time.perf_counter()
        for start, end, request_id, method, route, path, client, status in finished:
            template = getattr(route, "path_format", UNMATCHED_ROUTE) if route is not None else UNMATCHED_ROUTE
            seconds = end - start
            self._durations_for(template, method, status).observe(seconds)
            line = {
                "request_id": request_id,
                "method": method,
                "route": template,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client_ip": client[0] if client else None,
                **self._fixed,
                "timestamp": utc_timestamp(end + to_wall),
            }
            lines += orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        for durations in self._durations.values():
            durations.flush()
        if lines:
            write_lines(lines)

    def _durations_for(self, route: str, method: str, status: int) -> _Durations:
        # Any method a client invents shares one label value.
        key = (route, method if method in KNOWN_METHODS else "OTHER", status)
        durations = self._durations.get(key)
        if durations is None:
            durations = self._durations[key] = _Durations(HTTP_DURATION.labels(*key))
        return durations


def write_lines(data: bytes | bytearray) -> None:
    """Writes whole lines to stdout in pieces of at most PIPE_BUF bytes.

    Every Gunicorn worker shares one stdout pipe, and a write(2) to a pipe is atomic only up to
    PIPE_BUF: larger batches from two workers could interleave mid-line. Bytes go straight to the
    binary layer (no re-encoding); it is raw under PYTHONUNBUFFERED, so partial writes are retried.
    """
    out = sys.stdout.buffer
    view = memoryview(data)
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + select.PIPE_BUF) + 1
        if end <= start:  # a single line longer than PIPE_BUF: written whole, as any logger would
            end = (data.find(b"\n", start) + 1) or len(data)
        piece = view[start:end]
        while piece:
            written = out.write(piece)
            piece = piece[written if written is not None else len(piece) :]
        start = end
    out.flush()
