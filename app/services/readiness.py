"""Readiness of this worker: Postgres and Redis answer.

Asked by the container healthcheck, by Prometheus and by nginx; a flood of /ready must not
become a flood of Postgres round trips. So each worker keeps its result for CACHE_S, and callers
that come while a check runs wait for that check rather than start their own: at most about one
round trip to each dependency per CACHE_S per worker, however many ask.

The answer says "ok" or "failing", nothing more: an exception's text can name hosts or carry
driver messages. The text goes to the log, once when a dependency starts failing (or fails
differently) and once when it answers again, not once per call.
"""

import asyncio
from time import monotonic

import asyncpg
import structlog
from redis.asyncio import Redis

from app.core import metrics

log = structlog.get_logger()

CACHE_S = 1.0
CHECK_TIMEOUT_S = 1.0

Checks = dict[str, bool]


class Readiness:
    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self._pool = pool
        self._redis = redis
        self._checks: Checks | None = None
        self._checked_at = 0.0
        self._running: asyncio.Task[Checks] | None = None
        # The last error logged per dependency, None while it answers.
        self._errors: dict[str, str | None] = {"postgres": None, "redis": None}

    async def check(self) -> Checks:
        """Whether each dependency answered: the last result if younger than CACHE_S, else
        the check in flight, else a new one."""
        if self._checks is not None and monotonic() - self._checked_at < CACHE_S:
            return self._checks
        if self._running is None:
            self._running = asyncio.create_task(self._run(), name="readiness-check")
        # Shielded: a caller that gives up (its client left) must not cancel the others' check.
        return await asyncio.shield(self._running)

    async def _postgres(self) -> None:
        async with self._pool.acquire(timeout=CHECK_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1", timeout=CHECK_TIMEOUT_S)

    async def _redis_ping(self) -> None:
        await asyncio.wait_for(self._redis.ping(), CHECK_TIMEOUT_S)

    async def _run(self) -> Checks:
        try:
            results = await asyncio.gather(self._postgres(), self._redis_ping(), return_exceptions=True)
            checks = {}
            for name, result in zip(("postgres", "redis"), results, strict=True):
                checks[name] = result is None
                metrics.READINESS.labels(name).set(result is None)
                self._log_change(name, result)
            self._checks, self._checked_at = checks, monotonic()
            return checks
        finally:
            self._running = None

    def _log_change(self, name: str, result: BaseException | None) -> None:
        error = None if result is None else f"{type(result).__name__}: {result}"
        if error == self._errors[name]:
            return
        if error is None:
            log.info("readiness_check_recovered", dependency=name)
        else:
            log.warning("readiness_check_failing", dependency=name, error=error)
        self._errors[name] = error
