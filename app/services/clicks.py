"""Clicks: acknowledged in memory, written to Postgres in batches, announced on Redis pub/sub.

A redirect appends (link id, time) to this worker's buffer and returns at once. A background
task flushes the buffer every `interval` seconds in one transaction; a failed flush (whatever the
error, cancellation included) puts the batch back and retries, so neither a Redis outage nor a
Postgres hiccup loses an acknowledged click. The buffer, batch in flight included, holds at most
`max_pending` clicks: beyond that new clicks are dropped and counted. Shutdown stops the loop
between flushes, never inside one, and flushes whatever is left. Pub/sub events are best effort
(a live view, not a record): one message per flush, one JSON event per line.
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
from app.core.outages import POSTGRES, REDIS
from app.services.background import BackgroundLoop

log = structlog.get_logger()

CLICKS_CHANNEL = "clicks"
# After an unexpected error the loop waits this long before the next flush (the batch is kept).
ERROR_BACKOFF_S = 1.0
# Between attempts of the final flush; the lifespan bounds the whole of it (SHUTDOWN_FLUSH_S).
SHUTDOWN_RETRY_DELAY_S = 0.2
FLUSH_ERRORS = (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(slots=True, frozen=True)
class Click:
    link_id: int
    code: str
    at: datetime


class ClickRecorder(BackgroundLoop):
    task_name = "click-flusher"

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        replica: str | None,
        interval_s: float,
        max_pending: int,
        acquire_timeout_s: float,
    ) -> None:
        super().__init__()
        self._pool = pool
        self._redis = redis
        self._replica = replica
        self._interval_s = interval_s
        self._max_pending = max_pending
        self._acquire_timeout_s = acquire_timeout_s
        self._pending: list[Click] = []
        # The batch being written: still pending, so it counts against max_pending.
        self._in_flight = 0
        # Set while clicks are being dropped: one log line per episode, not one per click.
        self._dropping = False
        self._stopping = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._pending) + self._in_flight

    def record(self, link_id: int, code: str) -> None:
        if len(self._pending) + self._in_flight >= self._max_pending:
            CLICKS_DROPPED.inc()
            if not self._dropping:
                self._dropping = True
                log.error("click_buffer_full", max_pending=self._max_pending)
            return
        self._pending.append(Click(link_id, code, datetime.now(UTC)))
        CLICKS_PENDING.inc()

    async def close(self) -> None:
        """Stops the loop after the flush in progress, if any, then flushes what is left until it
        is written. Unbounded here: the caller bounds it (the lifespan, with SHUTDOWN_FLUSH_S)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        while not await self.flush():
            await asyncio.sleep(SHUTDOWN_RETRY_DELAY_S)

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while not await self._stopped_within(self._interval_s):
            try:
                await self.flush()
            except Exception:
                # A bug, not an outage (flush handles those): loud, counted, and the loop lives on.
                CLICK_FLUSH_FAILURES.inc()
                log.exception("click_flush_crashed", pending=self.pending, retry_in_s=ERROR_BACKOFF_S)
                if await self._stopped_within(ERROR_BACKOFF_S):
                    return

    async def flush(self) -> bool:
        """Writes the pending clicks; returns False (keeping them) if Postgres refused.

        One at a time: the loop's, then after it has stopped, close()'s."""
        batch, self._pending = self._pending, []
        if not batch:
            return True
        self._in_flight = len(batch)
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                written = await crud.record_clicks(conn, [c.link_id for c in batch], [c.at for c in batch])
        except FLUSH_ERRORS as exc:
            self._pending[:0] = batch
            CLICK_FLUSH_FAILURES.inc()
            POSTGRES.failed(exc, pending=len(self._pending))  # logged once per outage; the metric counts each
            return False
        except BaseException:
            # Cancelled (shutdown's budget ran out) or a bug: the batch is still ours, kept and counted.
            self._pending[:0] = batch
            raise
        finally:
            self._in_flight = 0
        POSTGRES.answered()
        CLICKS_PENDING.dec(len(batch))
        CLICKS_FLUSHED.inc(written)
        self._dropping = False
        await self._announce(batch)
        return True

    async def _announce(self, batch: list[Click]) -> None:
        """One message per batch, an event a line: every worker of every replica receives each
        message, so a message per click would cost each of them a Redis read per click. An event
        names the replica that served the click only when it was given one (not in production)."""
        named = {"replica": self._replica} if self._replica is not None else {}
        events = b"\n".join(orjson.dumps({"code": click.code, **named, "at": click.at.isoformat()}) for click in batch)
        try:
            await self._redis.publish(CLICKS_CHANNEL, events)
        except RedisError as exc:
            REDIS.failed(exc, lost="click events for the live stream")
        else:
            REDIS.answered()
