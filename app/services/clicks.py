"""Clicks: acknowledged in memory, written to Postgres in batches, announced on Redis pub/sub.

A redirect appends (link id, time) to this worker's buffer and returns at once. A background
task flushes the buffer every `interval` seconds in one transaction; a failed flush keeps the
batch and retries, so neither a Redis outage nor a Postgres hiccup loses an acknowledged click.
Shutdown flushes whatever is left. Pub/sub events are best effort (a live view, not a record):
one message per flush, one JSON event per line.
"""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import crud
from app.core.metrics import CLICK_FLUSH_FAILURES, CLICKS_DROPPED, CLICKS_FLUSHED, CLICKS_PENDING
from app.services.background import BackgroundLoop

log = structlog.get_logger()

CLICKS_CHANNEL = "clicks"
SHUTDOWN_FLUSH_ATTEMPTS = 5


@dataclass(slots=True, frozen=True)
class Click:
    link_id: int
    code: str
    at: datetime


class ClickRecorder(BackgroundLoop):
    task_name = "click-flusher"

    def __init__(self, pool: asyncpg.Pool, redis: Redis, replica: str, interval_s: float, max_pending: int) -> None:
        super().__init__()
        self._pool = pool
        self._redis = redis
        self._replica = replica
        self._interval_s = interval_s
        self._max_pending = max_pending
        self._pending: list[Click] = []
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, link_id: int, code: str) -> None:
        if len(self._pending) >= self._max_pending:
            CLICKS_DROPPED.inc()
            log.error("click_buffer_full", max_pending=self._max_pending)
            return
        self._pending.append(Click(link_id, code, datetime.now(UTC)))
        CLICKS_PENDING.inc()

    async def close(self) -> None:
        """Stops the loop, then flushes what is left (with retries: this is the last chance)."""
        await super().close()
        for attempt in range(1, SHUTDOWN_FLUSH_ATTEMPTS + 1):
            if await self.flush():
                return
            await asyncio.sleep(0.2 * attempt)
        log.error("clicks_lost_at_shutdown", count=len(self._pending))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()

    async def flush(self) -> bool:
        """Writes the pending clicks; returns False (keeping them) if Postgres refused."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return True
            try:
                async with self._pool.acquire() as conn:
                    written = await crud.record_clicks(conn, [c.link_id for c in batch], [c.at for c in batch])
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._pending[:0] = batch
                CLICK_FLUSH_FAILURES.inc()
                log.warning("click_flush_failed", error=str(exc), pending=len(self._pending))
                return False
            CLICKS_PENDING.dec(len(batch))
            CLICKS_FLUSHED.inc(written)
        await self._announce(batch)
        return True

    async def _announce(self, batch: list[Click]) -> None:
        """One message per batch, an event a line: every worker of every replica receives each
        message, so a message per click would cost each of them a Redis read per click."""
        replica = self._replica
        events = b"\n".join(
            orjson.dumps({"code": click.code, "replica": replica, "at": click.at.isoformat()}) for click in batch
        )
        try:
            await self._redis.publish(CLICKS_CHANNEL, events)
        except RedisError as exc:
            log.warning("click_events_not_published", error=str(exc), count=len(batch))
