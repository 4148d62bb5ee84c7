"""Fans the click events of every replica (Redis pub/sub) out to this worker's WebSockets.

One subscription per worker, however many sockets: each socket gets its own bounded queue,
and a slow client loses events rather than holding up the others.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.outages import REDIS
from app.services.background import BackgroundLoop
from app.services.clicks import CLICKS_CHANNEL

QUEUE_SIZE = 1000
RECONNECT_DELAY_S = 1.0


class ClickStream(BackgroundLoop):
    task_name = "click-stream"

    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self._redis = redis
        self._queues: set[asyncio.Queue[str]] = set()

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def _publish_locally(self, batch: str) -> None:
        """A message carries a flush's events, one JSON object a line; a socket gets one a message."""
        if not self._queues:
            return
        events = batch.split("\n")
        for queue in self._queues:
            for event in events:
                if queue.full():
                    break
                queue.put_nowait(event)

    async def _run(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CLICKS_CHANNEL)
                    while True:
                        # A blocking read: no timeout, since a quiet channel is normal.
                        message = await pubsub.get_message(timeout=None)
                        if message is not None:
                            self._publish_locally(message["data"])
            except (RedisError, OSError) as exc:
                REDIS.failed(exc, lost="the live click stream, until it reconnects")
                await asyncio.sleep(RECONNECT_DELAY_S)
