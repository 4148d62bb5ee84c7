"""The click recorder where batches get lost: a flush cancelled or crashing, a full buffer with a batch
in flight, and the lifespan's shutdown (every close runs, the final flush is bounded)."""

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI

import app.core.request_telemetry as request_telemetry
import app.services.clicks as clicks_module
from app import crud
from app.core.config import Settings
from app.core.lifespan import Lifecycle, State, lifespan_for
from app.core.logging import configure_logging
from app.core.metrics import CLICK_FLUSH_FAILURES, CLICKS_DROPPED, CLICKS_PENDING
from app.core.redis import open_redis
from app.core.request_telemetry import RequestTelemetry
from app.core.tokens import digest
from app.services.clicks import ClickRecorder
from app.services.faults import FaultSwitch
from tests.app.conftest import make_settings

RECORD_CLICKS = crud.record_clicks


class Gate:
    """Stands in for crud.record_clicks: each write waits until the gate opens (or fails, if told
    to), then writes for real. Says whether a write is waiting and whether one was cancelled."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()
        self.fail = fail
        self.cancelled = False

    async def __call__(self, conn: asyncpg.Connection, link_ids: list[int], times: list[datetime]) -> int:
        self.entered.set()
        try:
            await self.opened.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail
        return await RECORD_CLICKS(conn, link_ids, times)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Gate]:
    def install(fail: BaseException | None = None) -> Gate:
        gate = Gate(fail)
        monkeypatch.setattr(crud, "record_clicks", gate)
        return gate

    return install


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The app's JSON log lines written so far in this test."""
    configure_logging("INFO", "test-replica")
    capsys.readouterr()
    return lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@asynccontextmanager
async def recorder(settings: Settings, interval_s: float = 60, max_pending: int = 1000) -> AsyncIterator[ClickRecorder]:
    pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=2)
    redis = open_redis(settings)
    try:
        yield ClickRecorder(pool, redis, "test-replica", interval_s, max_pending, acquire_timeout_s=1)
    finally:
        await redis.aclose()
        await pool.close()


async def new_link(settings: Settings, code: str) -> int:
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        return (await crud.create_link(conn, "https://example.com", code, digest(code)))["id"]
    finally:
        await conn.close()


async def clicks_of(settings: Settings, code: str) -> int:
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM clicks JOIN links ON links.id = link_id WHERE code = $1", code)
    finally:
        await conn.close()


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 20))


def test_a_cancelled_flush_puts_its_batch_back(settings: Settings, clean: None, gate: Callable[..., Gate]) -> None:
    """Cancelled while Postgres writes (the shutdown budget ran out): the batch is pending again,
    and clicks_pending_flush still counts it."""

    async def scenario() -> None:
        link_id = await new_link(settings, "cancel")
        writes = gate()
        async with recorder(settings) as clicks:
            for _ in range(3):
                clicks.record(link_id, "cancel")
            pending_before = CLICKS_PENDING._value.get()
            flush = asyncio.create_task(clicks.flush())
            await writes.entered.wait()
            flush.cancel()
            with pytest.raises(asyncio.CancelledError):
                await flush
            assert clicks.pending == 3
            assert CLICKS_PENDING._value.get() == pending_before
            writes.opened.set()
            assert await clicks.flush()
            assert CLICKS_PENDING._value.get() == pending_before - 3
        assert await clicks_of(settings, "cancel") == 3

    run(scenario())


def test_close_lets_the_flush_in_flight_finish(settings: Settings, clean: None, gate: Callable[..., Gate]) -> None:
    """close() stops the loop between flushes: a write under way completes, it is never cancelled."""

    async def scenario() -> None:
        link_id = await new_link(settings, "inflight")
        writes = gate()
        async with recorder(settings, interval_s=0.01) as clicks:
            clicks.record(link_id, "inflight")
            clicks.start()
            await writes.entered.wait()
            closing = asyncio.create_task(clicks.close())
            await asyncio.sleep(0.1)
            assert not closing.done(), "close waits for the write in flight"
            clicks.record(link_id, "inflight")  # still accepted: left for the final flush
            writes.opened.set()
            await closing
            assert not writes.cancelled
            assert clicks.pending == 0
        assert await clicks_of(settings, "inflight") == 2

    run(scenario())


def test_the_flusher_survives_an_unexpected_error(
    settings: Settings,
    clean: None,
    gate: Callable[..., Gate],
    logs: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in a flush is logged with its traceback and counted; the batch is kept, and the loop
    goes on after a short pause and writes it."""
    monkeypatch.setattr(clicks_module, "ERROR_BACKOFF_S", 0.05)
    failures_before = CLICK_FLUSH_FAILURES._value.get()

    async def scenario() -> None:
        link_id = await new_link(settings, "crash")
        writes = gate(fail=RuntimeError("a bug"))
        writes.opened.set()
        async with recorder(settings, interval_s=0.01) as clicks:
            clicks.record(link_id, "crash")
            clicks.start()
            for _ in range(200):
                if await clicks_of(settings, "crash"):
                    break
                await asyncio.sleep(0.02)
            await clicks.close()
        assert await clicks_of(settings, "crash") == 1

    run(scenario())
    assert CLICK_FLUSH_FAILURES._value.get() == failures_before + 1
    [crash] = [line for line in logs() if line["event"] == "click_flush_crashed"]
    assert crash["level"] == "error"
    assert "RuntimeError: a bug" in crash["exception"]


def test_the_buffer_holds_max_pending_with_a_batch_in_flight(
    settings: Settings, clean: None, gate: Callable[..., Gate], logs: Callable[[], list[dict[str, Any]]]
) -> None:
    """The batch being written counts against CLICK_BUFFER_MAX: clicks beyond it are dropped when
    they come (counted, logged once), so putting a failed batch back never overfills the buffer."""
    dropped_before = CLICKS_DROPPED._value.get()

    async def scenario() -> None:
        link_id = await new_link(settings, "full")
        writes = gate(fail=OSError("connection lost"))
        async with recorder(settings, max_pending=5) as clicks:
            for _ in range(5):
                clicks.record(link_id, "full")
            flush = asyncio.create_task(clicks.flush())
            await writes.entered.wait()
            for _ in range(3):
                clicks.record(link_id, "full")
            writes.opened.set()
            assert not await flush
            assert clicks.pending == 5

    run(scenario())
    assert CLICKS_DROPPED._value.get() == dropped_before + 3
    assert [line["event"] for line in logs()].count("click_buffer_full") == 1


def run_lifespan(settings: Settings, telemetry: RequestTelemetry, during: Callable[[State], Awaitable[None]]) -> float:
    """Runs the app's lifespan around `during`, in a thread as servers do (no signal handlers are
    installed there); returns how long its shutdown took."""
    result: dict[str, object] = {}

    async def main() -> None:
        async with lifespan_for(settings, telemetry, Lifecycle())(FastAPI()) as state:
            await during(state)
            result["shutdown_started"] = time.monotonic()
        result["shutdown_s"] = time.monotonic() - result["shutdown_started"]  # type: ignore[operator]

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the lifespan's shutdown never ended"
    assert "shutdown_s" in result, "the lifespan raised"
    return result["shutdown_s"]  # type: ignore[return-value]


def a_request(path: str) -> request_telemetry.Finished:
    now = time.perf_counter()
    return (now - 0.01, now, b"req-shutdown", "GET", None, path, None, 200)


def test_every_close_runs_even_if_an_earlier_one_fails(
    migrated: dict[str, str],
    clean: None,
    written: list[bytes],
    logs: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A close that raises is logged; the clicks and the access lines are flushed all the same."""
    settings = make_settings(migrated, click_flush_interval_s=60)
    telemetry = RequestTelemetry("test-replica")

    async def broken_close(self: FaultSwitch) -> None:
        raise RuntimeError("close failed")

    monkeypatch.setattr(FaultSwitch, "close", broken_close)

    async def during(state: State) -> None:
        link_id = await new_link(settings, "closes")
        state["clicks"].record(link_id, "closes")
        telemetry.start()
        telemetry.record(a_request("/closes"))

    run_lifespan(settings, telemetry, during)
    assert asyncio.run(clicks_of(settings, "closes")) == 1
    assert b'"path":"/closes"' in b"".join(written)
    [failure] = [line for line in logs() if line["event"] == "shutdown_step_failed"]
    assert failure["step"] == "faults"
    assert "RuntimeError: close failed" in failure["exception"]


def test_the_final_flush_keeps_to_its_budget(
    migrated: dict[str, str],
    clean: None,
    gate: Callable[..., Gate],
    written: list[bytes],
    logs: Callable[[], list[dict[str, Any]]],
) -> None:
    """With Postgres not answering, the final flush gives up after SHUTDOWN_FLUSH_S (all attempts
    included) and says how many clicks it lost; the access lines are written anyway."""
    settings = make_settings(migrated, click_flush_interval_s=60, shutdown_flush_s=0.5)
    telemetry = RequestTelemetry("test-replica")
    gate()  # never opened: every write hangs

    async def during(state: State) -> None:
        link_id = await new_link(settings, "budget")
        for _ in range(4):
            state["clicks"].record(link_id, "budget")
        telemetry.start()
        telemetry.record(a_request("/budget"))

    shutdown_s = run_lifespan(settings, telemetry, during)
    assert shutdown_s < 0.5 + 1.0, f"shutdown took {shutdown_s:.2f}s"
    [lost] = [line for line in logs() if line["event"] == "clicks_lost_at_shutdown"]
    assert lost["count"] == 4
    assert b'"path":"/budget"' in b"".join(written)
