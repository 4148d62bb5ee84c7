"""Cache-aside for the redirect hot path. Redis failing is a miss, never an error."""

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.metrics import CACHE_REQUESTS

log = structlog.get_logger()

_HIT = CACHE_REQUESTS.labels("hit")
_MISS = CACHE_REQUESTS.labels("miss")
_ERROR = CACHE_REQUESTS.labels("error")


def _key(code: str) -> str:
    return f"link:{code}"


class LinkCache:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def get(self, code: str) -> tuple[int, str] | None:
        """Returns (link id, target URL) or None."""
        try:
            value = await self._redis.get(_key(code))
        except RedisError as exc:
            _ERROR.inc()
            log.warning("cache_unavailable", error=str(exc))
            return None
        if value is None:
            _MISS.inc()
            return None
        _HIT.inc()
        link_id, _, url = value.partition(" ")
        return int(link_id), url

    async def put(self, code: str, link_id: int, url: str) -> None:
        try:
            await self._redis.set(_key(code), f"{link_id} {url}", ex=self._ttl_s)
        except RedisError as exc:
            log.warning("cache_unavailable", error=str(exc))

    async def invalidate(self, code: str) -> None:
        """Raises if Redis is down: a delete must not leave a stale redirect behind."""
        await self._redis.delete(_key(code))
