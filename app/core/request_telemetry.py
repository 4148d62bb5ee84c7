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

Lines stdout did not take (a full non-blocking pipe, an error) stay pending and go first at the
next flush; metrics count each request once, when its line is rendered, so the two agree as soon
as the lines are out. Past MAX_UNWRITTEN_BYTES the oldest lines are dropped, and counted in one
log line once stdout takes lines again.
"""

import asyncio
import contextlib
import os
import select
import sys
import time
from bisect import bisect_right
from typing import Any

import orjson
import structlog

from app.core.metrics import ACCESS_LINES_DROPPED, HTTP_DURATION, HTTP_IN_PROGRESS, HTTP_REQUESTS, UNMATCHED_ROUTE

log = structlog.get_logger()

FLUSH_INTERVAL_S = 0.1
# Flushed early past this many requests, so a burst keeps memory and log lag bounded.
MAX_PENDING = 2048
# Rendered lines kept while stdout refuses them (about 16,000 lines): past it the oldest go.
MAX_UNWRITTEN_BYTES = 4 * 1024 * 1024
# How long a flush waits, in all, for a full non-blocking stdout to take its lines: it blocks the
# event loop meanwhile, and what is left waits for the next flush anyway.
WRITE_WAIT_S = 0.01
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The label value of any other method: clients must not be able to grow the label set.
OTHER_METHOD = "OTHER"
WEBSOCKET_ACCEPTED = 101


class _Series:
    """One label set of HTTP_REQUESTS and HTTP_DURATION: the durations of this batch, and the
    fields its access lines share, encoded once.

    Adds the batch to the shared child's own bucket and sum values, which is what `observe` does
    one at a time (multiprocess files hold non-cumulative bucket counts). These attributes are
    prometheus_client internals, pinned in uv.lock; tests/app/test_request_telemetry.py checks the
    buckets against `observe`, tests/app/test_gunicorn.py the counts across workers.

    An accepted WebSocket (101) is counted, not timed: its duration is the connection's lifetime,
    no response time, and would swamp the latency percentiles. Its access line has the lifetime.
    """

    __slots__ = ("child", "durations", "requests", "shared_fields")

    def __init__(self, replica: str, template: str, method: str, status: int) -> None:
        self.requests = HTTP_REQUESTS.labels(template, method, status)
        self.child = HTTP_DURATION.labels(template, method, status) if status != WEBSOCKET_ACCEPTED else None
        self.durations: list[float] = []
        fields = {"level": "info", "event": "request", "replica": replica, "pid": os.getpid()}
        if method != OTHER_METHOD:  # the line carries the method itself, not its label
            fields["method"] = method
        self.shared_fields = orjson.dumps({**fields, "route": template, "status": status})[1:-1] + b","

    def flush(self) -> None:
        if not self.durations:
            return
        if self.child is None:
            self.requests.inc(len(self.durations))
            self.durations.clear()
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
        # Rendered lines stdout has not taken yet, oldest first, and how many were dropped.
        self._unwritten = bytearray()
        self._dropped = 0
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
        """A request counted by `start` ended."""
        self._in_progress -= 1
        self._finished.append(finished)
        if len(self._finished) == MAX_PENDING:
            # Soon, not here: the caller is a request's clean-up, which a flush must not disturb.
            asyncio.get_running_loop().call_soon(self.flush)
        elif not self._flush_pending:
            self._arm_timer()

    def record_websocket(self, finished: Finished) -> None:
        """A WebSocket ended: a line and the request metrics like any request, but never counted
        in progress (it may stay open for hours)."""
        self._in_progress += 1
        self.record(finished)

    def _arm_timer(self) -> None:
        self._flush_pending = True
        asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._flush_on_timer)

    def _flush_on_timer(self) -> None:
        # Only the timer re-arms the timer: flushes for size, scrapes or shutdown add none.
        self._flush_pending = False
        self.flush()
        if self._unwritten:  # stdout refused lines: retried without waiting for the next request
            self._arm_timer()

    def flush(self, wait_s: float = WRITE_WAIT_S) -> None:
        """Renders and counts the finished requests, then writes every pending line that stdout
        takes within `wait_s`."""
        finished, self._finished = self._finished, []
        lines = self._unwritten
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
            del lines[: write_lines(lines, wait_s)]
            if len(lines) > MAX_UNWRITTEN_BYTES:
                self._drop_oldest()
            elif not lines and self._dropped:
                # Logged now that stdout takes lines again: while it refused them, a line about it
                # could not have got out either.
                log.warning("access_lines_dropped", count=self._dropped, max_unwritten_bytes=MAX_UNWRITTEN_BYTES)
                self._dropped = 0

    def _drop_oldest(self) -> None:
        lines = self._unwritten
        # Whole lines, from the front, until what is left fits.
        cut = lines.find(b"\n", len(lines) - MAX_UNWRITTEN_BYTES - 1) + 1
        dropped = lines.count(b"\n", 0, cut)
        self._dropped += dropped
        ACCESS_LINES_DROPPED.inc(dropped)
        del lines[:cut]


def write_lines(data: bytes | bytearray, wait_s: float) -> int:
    """Writes whole lines to stdout in pieces of at most PIPE_BUF bytes; returns how many bytes
    it wrote: all of them, unless stdout failed or stayed full for `wait_s`.

    Every Gunicorn worker shares one stdout pipe, and a write(2) to a pipe is atomic only up to
    PIPE_BUF: larger batches from two workers could interleave mid-line. Bytes go straight to the
    binary layer (no re-encoding); it is raw under PYTHONUNBUFFERED, so partial writes are
    retried, and a raw write that returns None wrote nothing: the pipe is non-blocking and full.
    """
    out = sys.stdout.buffer
    view = memoryview(data)
    written = 0
    deadline = None
    while written < len(data):
        end = data.rfind(b"\n", written, written + select.PIPE_BUF) + 1
        if end <= written:  # a single line longer than PIPE_BUF: written whole, as any logger would
            end = (data.find(b"\n", written) + 1) or len(data)
        try:
            count = out.write(view[written:end])
        except BlockingIOError as exc:  # a buffered stdout, non-blocking and full
            count = exc.characters_written
        except OSError:
            break  # stdout is broken: what is left stays pending
        if count:
            written += count
            continue
        # Full: wait until the pipe drains, within the flush's budget; never spin.
        if deadline is None:
            deadline = time.monotonic() + wait_s
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [out], [], remaining)[1]:
            break
    with contextlib.suppress(OSError):  # a buffered stdout keeps what it could not write for later
        out.flush()
    return written
