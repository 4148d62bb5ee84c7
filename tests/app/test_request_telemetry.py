"""The batched access lines and request metrics: what a flush writes equals what each request did."""

import asyncio
import contextlib
import io
import json
import os
import select
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog
from starlette.routing import Route

import app.core.request_telemetry as request_telemetry
from app.core.metrics import ACCESS_LINES_DROPPED, HTTP_DURATION, HTTP_REQUESTS
from app.core.request_telemetry import MAX_PENDING, RequestTelemetry

ROUTE = Route("/telemetry-test/{item}", lambda: None)


def finished(seconds: float, *, method: str = "GET", path: str = "/telemetry-test/1", status: int = 200) -> tuple:
    end = time.perf_counter()
    return (end - seconds, end, b"req-1", method, ROUTE, path, ("203.0.113.7", 4711), status)


def test_buckets_match_observing_one_at_a_time(written: list[bytes]) -> None:
    """Sorting a batch into buckets gives what `observe` gives, bucket bounds themselves included."""
    telemetry = RequestTelemetry("replica-t")
    child = HTTP_DURATION.labels("/telemetry-test/{item}", "GET", 201)
    bounds = child._upper_bounds
    before = [bucket.get() for bucket in child._buckets]
    # Ends on the bounds exactly, as well as between them.
    ends = [0.0, 0.001, 0.005, 0.0050001, 0.01, 0.3, 0.5, 2.5, 9.99, 10.0, 42.0, 0.005]
    telemetry._finished = [(0.0, end, b"req", "GET", ROUTE, "/telemetry-test/1", None, 201) for end in ends]
    durations = [end - start for start, end, *_ in telemetry._finished]
    expected = list(before)
    for seconds in durations:
        expected[bisect_left(bounds, seconds)] += 1
    sum_before = child._sum.get()
    telemetry.flush()
    assert [bucket.get() for bucket in child._buckets] == expected
    assert child._sum.get() == pytest.approx(sum_before + sum(durations), abs=1e-6)
    requests = HTTP_REQUESTS.labels("/telemetry-test/{item}", "GET", 201)
    assert requests._value.get() >= len(durations)


def test_hostile_values_stay_inside_one_json_line(written: list[bytes]) -> None:
    """Quotes, newlines and unknown methods from clients are escaped, and the label stays bounded."""
    telemetry = RequestTelemetry('replica "q"')
    path = '/telemetry-test/"},\n{"level":"error"}\u2603'
    telemetry._finished = [finished(0.002, method="BREW", path=path, status=405)]
    telemetry.flush()
    lines = written[0].splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["path"] == path
    assert line["method"] == "BREW"
    assert line["replica"] == 'replica "q"'
    assert line["level"] == "info"
    assert line["client_ip"] == "203.0.113.7"
    assert line["duration_ms"] == pytest.approx(2.0, abs=0.01)
    other = HTTP_REQUESTS.labels("/telemetry-test/{item}", "OTHER", 405)
    assert other._value.get() >= 1


def test_timestamps_follow_each_request(written: list[bytes]) -> None:
    """Each line carries its own request's end time, not the time of the flush."""
    telemetry = RequestTelemetry("replica-t")
    end = time.perf_counter()
    telemetry._finished = [
        (end - 2.0, end - 1.5, b"early", "GET", ROUTE, "/telemetry-test/1", None, 200),
        (end - 0.1, end, b"late", "GET", ROUTE, "/telemetry-test/2", None, 200),
    ]
    telemetry.flush()
    early, late = (json.loads(line) for line in written[0].splitlines())
    gap = time.mktime(time.strptime(late["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.mktime(
        time.strptime(early["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")
    )
    assert gap in (1.0, 2.0)  # 1.5 s apart, seen through whole seconds
    assert early["client_ip"] is None


def test_a_burst_is_flushed_before_the_timer(written: list[bytes]) -> None:
    """Past MAX_PENDING requests the batch goes out at once (on the next turn of the loop, not
    inside the last request's clean-up): memory and log lag stay bounded."""

    async def burst() -> None:
        telemetry = RequestTelemetry("replica-t")
        for _ in range(MAX_PENDING):
            telemetry.record(finished(0.001))
        assert written == []
        await asyncio.sleep(0)
        assert len(written) == 1
        assert len(written[0].splitlines()) == MAX_PENDING
        telemetry.record(finished(0.001))
        await asyncio.sleep(request_telemetry.FLUSH_INTERVAL_S * 2)
        assert len(written) == 2

    asyncio.run(burst())


@contextmanager
def stdout_pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Makes stdout a non-blocking pipe, full to the brim, as a stalled log reader leaves it (its
    raw writes then return None); yields the read end."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    raw = open(write_fd, "wb", buffering=0)  # noqa: SIM115 - closed below
    while raw.write(b"x" * select.PIPE_BUF) is not None:
        pass
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, write_through=True))
    try:
        yield read_fd
    finally:
        raw.close()
        os.close(read_fd)


def drain(read_fd: int) -> bytes:
    """Everything in the pipe, the filler left out."""
    os.set_blocking(read_fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(read_fd, 1 << 16):
            data += chunk
    return data.lstrip(b"x")


def test_lines_a_full_pipe_refuses_stay_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw write that returns None wrote nothing: the lines are kept, metrics and lines do not
    part ways, and the next flush writes them, once each and in order."""
    telemetry = RequestTelemetry("replica-t")
    requests = HTTP_REQUESTS.labels("/telemetry-test/{item}", "GET", 202)
    before = requests._value.get()
    with stdout_pipe(monkeypatch) as read_fd:
        telemetry._finished = [finished(0.001, path=f"/telemetry-test/{i}", status=202) for i in range(3)]
        started = time.monotonic()
        telemetry.flush()
        assert time.monotonic() - started < request_telemetry.WRITE_WAIT_S + 0.5  # waited, briefly
        assert drain(read_fd) == b""
        telemetry._finished = [finished(0.001, path="/telemetry-test/3", status=202)]
        telemetry.flush()
        lines = [json.loads(line) for line in drain(read_fd).splitlines()]
    assert [line["path"] for line in lines] == [f"/telemetry-test/{i}" for i in range(4)]
    assert requests._value.get() == before + len(lines)


def test_a_flush_waits_for_the_pipe_to_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full pipe that drains within the wait takes the lines in the same flush."""
    telemetry = RequestTelemetry("replica-t")
    with stdout_pipe(monkeypatch) as read_fd:
        reader = threading.Timer(0.05, lambda: os.read(read_fd, 1 << 16))
        reader.start()
        telemetry._finished = [finished(0.001, path="/telemetry-test/waited")]
        telemetry.flush(wait_s=5)
        reader.join()
        assert b'"path":"/telemetry-test/waited"' in drain(read_fd)
    assert not telemetry._unwritten


def test_unwritten_lines_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_UNWRITTEN_BYTES the oldest lines go, counted in access_lines_dropped_total; how many
    is logged once stdout takes lines again."""
    monkeypatch.setattr(request_telemetry, "MAX_UNWRITTEN_BYTES", 2000)
    telemetry = RequestTelemetry("replica-t")
    dropped_before = ACCESS_LINES_DROPPED._value.get()
    with stdout_pipe(monkeypatch) as read_fd:
        for batch in range(4):
            telemetry._finished = [finished(0.001, path=f"/telemetry-test/{batch}-{i}") for i in range(10)]
            telemetry.flush(wait_s=0)
            assert len(telemetry._unwritten) <= 2000
            assert telemetry._unwritten.endswith(b"}\n")
        kept = telemetry._unwritten.count(b"\n")
        drain(read_fd)
        with structlog.testing.capture_logs() as logs:
            telemetry.flush()
        lines = [json.loads(line) for line in drain(read_fd).splitlines()]
    assert [line["path"] for line in lines][-1] == "/telemetry-test/3-9"
    assert len(lines) == kept
    assert logs == [
        {"event": "access_lines_dropped", "count": 40 - kept, "max_unwritten_bytes": 2000, "log_level": "warning"}
    ]
    assert ACCESS_LINES_DROPPED._value.get() - dropped_before == 40 - kept
