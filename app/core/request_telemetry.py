"""What every request leaves behind — one access line, one count, one duration — kept as a tuple
and rendered in one go every FLUSH_INTERVAL_S, like nginx's `access_log buffer= flush=`. The
in-progress gauge is set then too, from a plain count that each request moves up and down.

Why defer: a request then only appends a tuple. Rendering (JSON, timestamps, histogram buckets)
runs for a whole batch in one tight loop, where its code stays hot in the CPU's caches;
interleaved with the framework's own work, the same steps cost several times more. Measured as
worker user CPU per `GET /health` under wrk, side by side: 76-82 us without middleware, 93-103 us
with lines and observations built per request, 85-93 us deferred (scripts/bench-app prints the
current figures; the README says where the rest goes).

The price: /metrics of another worker and the log lag by at most FLUSH_INTERVAL_S, and a hard
crash (SIGKILL, OOM) loses that much. Shutdown flushes (the lifespan calls `flush`); so does a
scrape, for the worker that serves it.
"""

import asyncio
import os
import select
import sys
import time
from bisect import bisect_right
from typing import Any

import orjson

from app.core.metrics import HTTP_DURATION, HTTP_IN_PROGRESS, HTTP_REQUESTS, UNMATCHED_ROUTE

FLUSH_INTERVAL_S = 0.1
# Flushed early past this many requests, so a burst keeps memory and log lag bounded.
MAX_PENDING = 2048
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The label value of any other method: clients must not be able to grow the label set.
OTHER_METHOD = "OTHER"


class _Series:
    """One label set of HTTP_REQUESTS and HTTP_DURATION: the durations of this batch, and the
    fields its access lines share, encoded once.

    Adds the batch to the shared child's own bucket and sum values, which is what `observe` does
    one at a time (multiprocess files hold non-cumulative bucket counts). These attributes are
    prometheus_client internals, pinned in uv.lock; tests/app/test_request_telemetry.py checks the
    buckets against `observe`, tests/app/test_gunicorn.py the counts across workers.
    """

    __slots__ = ("child", "durations", "requests", "shared_fields")

    def __init__(self, replica: str, template: str, method: str, status: int) -> None:
        self.requests = HTTP_REQUESTS.labels(template, method, status)
        self.child = HTTP_DURATION.labels(template, method, status)
        self.durations: list[float] = []
        fields = {"level": "info", "event": "request", "replica": replica, "pid": os.getpid()}
        if method != OTHER_METHOD:  # the line carries the method itself, not its label
            fields["method"] = method
        self.shared_fields = orjson.dumps({**fields, "route": template, "status": status})[1:-1] + b","

    def flush(self) -> None:
        if not self.durations:
            return
        # Sorted once, each bucket's count is a binary search: no per-request work in Python.
        durations = sorted(self.durations)
        self.durations.clear()
        counted = 0
        for bucket, upper_bound in zip(self.child._buckets, self.child._upper_bounds, strict=True):
            # `observe` puts a value in the first bucket whose upper bound is >= the value.
            upto = bisect_right(durations, upper_bound, lo=counted)
            if upto > counted:
                bucket.inc(upto - counted)
                counted = upto
        self.child._sum.inc(sum(durations))
        self.requests.inc(len(durations))


# (start, end) from time.perf_counter, request id, method, the matched route or None, path,
# the ASGI client address, status: what the middleware has at hand, nothing computed yet.
Finished = tuple[float, float, bytes, str, Any, str, tuple[str, int] | None, int]

# The access line: the app's other JSON lines have the same shape. Values a client can influence
# (path, client address, an unknown method) are JSON-encoded by orjson; the others are ours: the
# timestamp, a duration, and a request id that is generated or matched a strict pattern.
ACCESS_LINE = b'{"timestamp":"%s.%06d+00:00",%s"request_id":"%s","path":%s,"duration_ms":%.2f,"client_ip":%s}\n'


class RequestTelemetry:
    def __init__(self, replica: str) -> None:
        self._replica = replica
        self._finished: list[Finished] = []
        # Bounded: route templates x known methods x status codes.
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._flush_pending = False
        # Requests started and not yet recorded; the gauge takes it at each flush.
        self._in_progress = 0

    def start(self) -> None:
        """A request began: counted now, so the gauge sees it within one flush interval."""
        self._in_progress += 1
        if not self._flush_pending:
            self._arm_timer()

    def record(self, finished: Finished) -> None:
        self._in_progress -= 1
        self._finished.append(finished)
        if len(self._finished) >= MAX_PENDING:
            self.flush()
        elif not self._flush_pending:
            self._arm_timer()

    def _arm_timer(self) -> None:
        self._flush_pending = True
        asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._flush_on_timer)

    def _flush_on_timer(self) -> None:
        # Only the timer re-arms the timer: flushes for size, scrapes or shutdown add none.
        self._flush_pending = False
        self.flush()

    def flush(self) -> None:
        finished, self._finished = self._finished, []
        lines = bytearray()
        dumps = orjson.dumps
        # Encoded once per batch: most lines repeat a few paths and client addresses.
        paths: dict[str, bytes] = {}
        clients: dict[str | None, bytes] = {}
        # perf_counter is monotonic; the wall clock of each request's end is derived from it.
        to_wall = time.time() - time.perf_counter()
        second, date_time = -1, b""
        for start, end, request_id, method, route, path, client, status in finished:
            known = method in KNOWN_METHODS
            key = (getattr(route, "path_format", UNMATCHED_ROUTE), method if known else OTHER_METHOD, status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(self._replica, *key)
            seconds = end - start
            series.durations.append(seconds)

            # The timestamp format of app.core.logging.utc_timestamp, its date part cached per second.
            wall = end + to_wall
            if int(wall) != second:
                second = int(wall)
                date_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
            path_json = paths.get(path)
            if path_json is None:
                path_json = paths[path] = dumps(path)
            host = client[0] if client else None
            client_json = clients.get(host)
            if client_json is None:
                client_json = clients[host] = dumps(host)
            lines += ACCESS_LINE % (
                date_time,
                (wall - second) * 1_000_000,
                series.shared_fields if known else b'"method":%s,%s' % (dumps(method), series.shared_fields),
                request_id,
                path_json,
                seconds * 1000,
                client_json,
            )
        for series in self._series.values():
            series.flush()
        HTTP_IN_PROGRESS.set(self._in_progress)
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
