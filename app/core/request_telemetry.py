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

from app.core.metrics import HTTP_DURATION, UNMATCHED_ROUTE

FLUSH_INTERVAL_S = 0.1
# Flushed early past this many requests, so a burst keeps memory and log lag bounded.
MAX_PENDING = 2048
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Series:
    """One labelled child of HTTP_DURATION: its bucket counts for this batch, and its route
    template ready to go into access lines.

    Adds the counts to the shared child's own bucket and sum values, which is what `observe` does
    one at a time (multiprocess files hold non-cumulative bucket counts). These attributes are
    prometheus_client internals, pinned in uv.lock; tests/app/test_gunicorn.py checks the sums.
    """

    __slots__ = ("bounds", "child", "counts", "route_json", "total")

    def __init__(self, template: str, method: str, status: int) -> None:
        self.child = HTTP_DURATION.labels(template, method, status)
        self.bounds = self.child._upper_bounds
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        self.route_json = orjson.dumps(template)

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
Finished = tuple[float, float, bytes, str, Any, str, tuple[str, int] | None, int]

# The access line, formatted like the app's other JSON lines. Every value a client can influence
# (method, path, client address) is JSON-encoded by orjson; the others are ours: the timestamp,
# numbers, route templates, and a request id that is generated or matched a strict pattern.
ACCESS_LINE = (
    b'{"timestamp":"%s.%06d+00:00","level":"info","event":"request","replica":%s,"pid":%d,'
    b'"request_id":"%s","method":%s,"route":%s,"path":%s,"status":%d,"duration_ms":%.2f,"client_ip":%s}\n'
)
METHOD_JSON = {method: orjson.dumps(method) for method in KNOWN_METHODS}


class RequestTelemetry:
    def __init__(self, replica: str) -> None:
        self._replica_json = orjson.dumps(replica)
        self._finished: list[Finished] = []
        # Bounded: route templates x known methods x status codes.
        self._series: dict[tuple[str, str, int], _Series] = {}
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
        replica, pid, dumps = self._replica_json, os.getpid(), orjson.dumps
        # perf_counter is monotonic; the wall clock of each request's end is derived from it.
        to_wall = time.time() - time.perf_counter()
        second, date_time = -1, b""
        for start, end, request_id, method, route, path, client, status in finished:
            # Any method a client invents shares one label value.
            method_json = METHOD_JSON.get(method)
            key = (getattr(route, "path_format", UNMATCHED_ROUTE), method if method_json else "OTHER", status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(*key)
            seconds = end - start
            series.counts[bisect_left(series.bounds, seconds)] += 1
            series.total += seconds

            wall = end + to_wall
            if int(wall) != second:
                second = int(wall)
                date_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
            lines += ACCESS_LINE % (
                date_time,
                (wall - second) * 1_000_000,
                replica,
                pid,
                request_id,
                method_json or dumps(method),
                series.route_json,
                dumps(path),
                status,
                seconds * 1000,
                dumps(client[0] if client else None),
            )
        for series in self._series.values():
            series.flush()
        if lines:
            write_lines(lines)


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
