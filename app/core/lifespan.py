"""Start-up and shutdown: open the pool and Redis, start the background tasks, then close
everything in reverse order with pending clicks flushed.

Shutdown runs after Uvicorn has drained the requests in flight (SHUTDOWN_DRAIN_S at most). Every
step is bounded and runs even if an earlier one failed: the final flush of clicks and access
lines within SHUTDOWN_FLUSH_S, each other step within CLOSE_TIMEOUT_S. Settings checks that the
drain and the flush end before Gunicorn's graceful timeout kills the worker.
"""

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypedDict

import asyncpg
import structlog
from fastapi import FastAPI
from redis.asyncio import Redis

from app.core.config import Settings
from app.core.db import DatabaseUnavailable, open_pool
from app.core.metrics import DB_POOL_IN_USE, DB_POOL_MAX, DB_POOL_SIZE
from app.core.redis import open_redis
from app.core.request_telemetry import RequestTelemetry
from app.services.click_stream import ClickStream
from app.services.clicks import ClickRecorder
from app.services.faults import FaultSwitch
from app.services.link_cache import LinkCache
from app.services.readiness import Readiness

log = structlog.get_logger()

POOL_SAMPLE_INTERVAL_S = 1.0
# Each shutdown step but the final flush (cancelling a background task, closing Redis or the
# pool): five of them, so at most 2.5 s beside SHUTDOWN_FLUSH_S.
CLOSE_TIMEOUT_S = 0.5


@dataclass
class Lifecycle:
    shutting_down: bool = False


class State(TypedDict):
    """What each request sees as `request.state` (and middleware as `scope["state"]`)."""

    settings: Settings
    lifecycle: Lifecycle
    pool: asyncpg.Pool
    redis: Redis
    cache: LinkCache
    clicks: ClickRecorder
    click_stream: ClickStream
    faults: FaultSwitch
    telemetry: RequestTelemetry
    readiness: Readiness


def _flag_on_termination(lifecycle: Lifecycle, linger_s: float) -> None:
    """Readiness fails from the first moment of a shutdown, before the server stops; on SIGTERM the
    server's own shutdown starts `linger_s` later.

    Why linger: the server's shutdown closes its idle kept-alive connections, and nginx may be
    sending a request on one at that instant; a POST lost that way is a 502 (nginx re-sends only
    idempotent requests). While the replica lingers it serves as before, but every response says
    `Connection: close` (RequestContextMiddleware), so nginx uses up its idle connections to this
    replica instead of keeping them. A second signal, or SIGINT (Ctrl-C), stops at once.

    Wraps the server's own SIGTERM/SIGINT handlers (Uvicorn restores its originals on exit).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous) -> None:
            if lifecycle.shutting_down or signum != signal.SIGTERM or not linger_s:
                lifecycle.shutting_down = True
                previous(signum, frame)
                return
            lifecycle.shutting_down = True
            # From a signal handler only the thread-safe entry into the loop is safe.
            loop.call_soon_threadsafe(loop.call_later, linger_s, previous, signum, frame)

        signal.signal(sig, handler)


async def _sample_pool(pool: asyncpg.Pool, max_size: int) -> None:
    DB_POOL_MAX.set(max_size)
    while True:
        size = pool.get_size()
        DB_POOL_SIZE.set(size)
        DB_POOL_IN_USE.set(size - pool.get_idle_size())
        await asyncio.sleep(POOL_SAMPLE_INTERVAL_S)


async def _close_all(*closes: tuple[str, Callable[[], Awaitable[object]]]) -> None:
    """Runs each close in order within CLOSE_TIMEOUT_S; one that fails or overruns is logged and
    the next runs all the same."""
    for name, close in closes:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await close()
        except TimeoutError:
            log.error("shutdown_step_timed_out", step=name, timeout_s=CLOSE_TIMEOUT_S)
        except Exception:
            log.exception("shutdown_step_failed", step=name)


async def _final_flush(clicks: ClickRecorder, telemetry: RequestTelemetry, budget_s: float) -> None:
    """Pending clicks, retried until written, then the access lines: within budget_s together."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    try:
        async with asyncio.timeout_at(deadline):
            await clicks.close()
    except TimeoutError:
        log.error("clicks_lost_at_shutdown", count=clicks.pending, budget_s=budget_s)
    except Exception:
        log.exception("clicks_lost_at_shutdown", count=clicks.pending)
    # Whatever became of the clicks. Uvicorn's drain is over: every request has its line by now.
    telemetry.flush(wait_s=max(deadline - loop.time(), 0.0))


def lifespan_for(settings: Settings, telemetry: RequestTelemetry, lifecycle: Lifecycle) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        try:
            pool = await open_pool(settings)
        except DatabaseUnavailable as exc:
            log.error("startup_failed", reason=str(exc))
            raise SystemExit(1) from None
        redis = open_redis(settings)
        clicks = ClickRecorder(
            pool,
            redis,
            # Click events name the replica only where responses do (X-Replica): not in production.
            settings.replica_name if settings.replica_header else None,
            settings.click_flush_interval_s,
            settings.click_buffer_max,
            settings.db_acquire_timeout_s,
        )
        click_stream = ClickStream(redis)
        faults = FaultSwitch(redis, settings.replica_name)
        cache = LinkCache(redis, settings.cache_ttl_s, settings.local_cache_ttl_s, settings.local_cache_size)
        clicks.start()
        cache.start()
        click_stream.start()
        if settings.faults_enabled:
            faults.start()
        sampler = asyncio.create_task(_sample_pool(pool, settings.db_pool_max_size), name="pool-sampler")
        _flag_on_termination(lifecycle, settings.shutdown_linger_s)
        loop = type(asyncio.get_running_loop())
        log.info("started", environment=settings.environment, event_loop=f"{loop.__module__}.{loop.__qualname__}")
        try:
            yield State(
                settings=settings,
                lifecycle=lifecycle,
                pool=pool,
                redis=redis,
                cache=cache,
                clicks=clicks,
                click_stream=click_stream,
                faults=faults,
                telemetry=telemetry,
                readiness=Readiness(pool, redis),
            )
        finally:
            lifecycle.shutting_down = True
            sampler.cancel()
            await _close_all(("faults", faults.close), ("cache", cache.close), ("click_stream", click_stream.close))
            # Before Redis and the pool close: the clicks are written and announced through them.
            await _final_flush(clicks, telemetry, settings.shutdown_flush_s)
            await _close_all(("redis", redis.aclose), ("pool", pool.close))
            log.info("stopped")

    return lifespan
