"""Start-up and shutdown: open the pool and Redis, start the background tasks, then close
everything in reverse order with pending clicks flushed."""

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
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

log = structlog.get_logger()

POOL_SAMPLE_INTERVAL_S = 1.0


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


def _flag_on_termination(lifecycle: Lifecycle) -> None:
    """Readiness must fail from the first moment of a shutdown, before the server stops.

    Wraps the server's own SIGTERM/SIGINT handlers (Uvicorn restores its originals on exit).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous) -> None:
            lifecycle.shutting_down = True
            previous(signum, frame)

        signal.signal(sig, handler)


async def _sample_pool(pool: asyncpg.Pool, max_size: int) -> None:
    DB_POOL_MAX.set(max_size)
    while True:
        size = pool.get_size()
        DB_POOL_SIZE.set(size)
        DB_POOL_IN_USE.set(size - pool.get_idle_size())
        await asyncio.sleep(POOL_SAMPLE_INTERVAL_S)


def lifespan_for(settings: Settings, telemetry: RequestTelemetry) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        lifecycle = Lifecycle()
        try:
            pool = await open_pool(settings)
        except DatabaseUnavailable as exc:
            log.error("startup_failed", reason=str(exc))
            raise SystemExit(1) from None
        redis = open_redis(settings)
        clicks = ClickRecorder(
            pool, redis, settings.replica_name, settings.click_flush_interval_s, settings.click_buffer_max
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
        _flag_on_termination(lifecycle)
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
            )
        finally:
            lifecycle.shutting_down = True
            sampler.cancel()
            await faults.close()
            await cache.close()
            await click_stream.close()
            await clicks.close()
            await redis.aclose()
            await pool.close()
            telemetry.flush()
            log.info("stopped")

    return lifespan
