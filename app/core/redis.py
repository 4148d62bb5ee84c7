"""The Redis client: short timeouts, because Redis is a cache and a bus, never the source of truth."""

from redis.asyncio import Redis

from app.core.config import Settings


def open_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis_dsn,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
