"""Fault injection shared by every replica: the switch lives in Redis, each worker polls it."""

import asyncio

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.outages import REDIS
from app.models import FaultConfig
from app.services.background import BackgroundLoop

log = structlog.get_logger()

FAULTS_KEY = "faults:config"
POLL_INTERVAL_S = 1.0


class FaultSwitch(BackgroundLoop):
    task_name = "fault-poller"

    def __init__(self, redis: Redis, replica: str) -> None:
        super().__init__()
        self._redis = redis
        self._replica = replica
        self._use(FaultConfig())

    def _use(self, config: FaultConfig) -> None:
        self.config = config
        # Read on every request: a plain attribute, not a computed property.
        self.active = config.active

    def applies_to(self, path: str) -> FaultConfig | None:
        if not self.active:
            return None
        config = self.config
        if config.replica is not None and config.replica != self._replica:
            return None
        if config.route is not None and not path.startswith(config.route):
            return None
        return config

    async def set(self, config: FaultConfig) -> None:
        await self._redis.set(FAULTS_KEY, config.model_dump_json())
        self._use(config)

    async def clear(self) -> None:
        await self._redis.delete(FAULTS_KEY)
        self._use(FaultConfig())

    async def refresh(self) -> None:
        raw = await self._redis.get(FAULTS_KEY)
        self._use(FaultConfig.model_validate_json(raw) if raw else FaultConfig())

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
                REDIS.answered()
            except RedisError as exc:
                # Keep the last known switch: a Redis blip must not silently end a drill.
                REDIS.failed(exc)
            except ValueError as exc:
                log.warning("fault_config_invalid", error=str(exc))
            await asyncio.sleep(POLL_INTERVAL_S)
