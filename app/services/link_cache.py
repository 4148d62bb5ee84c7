"""Cache-aside for the redirect hot path, in two levels. Redis failing is a miss, never an error.

Each worker keeps the links it redirected in a dict of its own, at most `local_size` of them, each
for at most `local_ttl_s`: a hit there costs no round trip to Redis. Redis, shared by every worker
and replica, sits behind it. A delete replaces the link in Redis with a tombstone and publishes its
code on INVALIDATIONS_CHANNEL; every worker of every replica drops it from its dict as the message
arrives (within milliseconds).

Pub/sub delivers at most once, so a worker uses its dict only while its subscription is up: the
dict starts empty once Redis has confirmed the subscription, and is emptied and bypassed from the
moment the subscription fails until it is back. The TTL bounds what a subscription that died
without an error (no message, no failure) could leave behind.

A redirect that misses reads Postgres and puts what it read into Redis. A delete can commit between
the two: without care, the put would bring the deleted link back for `ttl_s`. Hence, in Redis,
where every worker and replica sees it:

- a delete invalidates twice, before its Postgres DELETE and after the commit; each invalidation
  writes a tombstone (TOMBSTONE, for TOMBSTONE_TTL_S) over the entry and publishes the code;
- a put is `SET NX`, so it never replaces a tombstone, and it is skipped if its Postgres read
  began more than MAX_READ_AGE_S ago.

Why no deleted link comes back: a redirect that read the row read it before the commit, so its put
reaches Redis less than MAX_READ_AGE_S after the commit. The second tombstone, written after the
commit, lives TOMBSTONE_TTL_S > MAX_READ_AGE_S: a put that lands before it is overwritten by it, a
put that lands while it lives is refused. (Only a worker frozen for TOMBSTONE_TTL_S -
MAX_READ_AGE_S between its age check and Redis running its SET could still do it.) The first
invalidation is the precondition: with Redis down the delete stops before touching the row, so
there is nothing to undo. Should Redis fail between the two, the first tombstone still covers any
delete that commits within TOMBSTONE_TTL_S - MAX_READ_AGE_S of it, as the database timeouts ensure
(DB_ACQUIRE_TIMEOUT_S + DB_COMMAND_TIMEOUT_S: 12 s by default).

The dicts only copy live entries read from Redis, never a tombstone, and the generation counter
keeps out a value read before an invalidation arrived: a tombstone in Redis also keeps every
worker's dict from taking the link back.

A tombstone reads as a miss: a code deleted and created again is redirected from Postgres, uncached,
until its tombstone expires.
"""

import asyncio
from time import monotonic

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.metrics import CACHE_REQUESTS
from app.core.outages import REDIS
from app.services.background import BackgroundLoop

INVALIDATIONS_CHANNEL = "link-invalidations"
RESUBSCRIBE_DELAY_S = 1.0
# Never a live entry, which starts with the link id.
TOMBSTONE = "deleted"
# MAX_READ_AGE_S < TOMBSTONE_TTL_S (module docstring); the difference is the margin for a frozen worker.
TOMBSTONE_TTL_S = 60
MAX_READ_AGE_S = 10.0

_HIT = CACHE_REQUESTS.labels("hit")
_MISS = CACHE_REQUESTS.labels("miss")
_ERROR = CACHE_REQUESTS.labels("error")


def _key(code: str) -> str:
    return f"link:{code}"


class LinkCache(BackgroundLoop):
    task_name = "link-invalidations"

    def __init__(self, redis: Redis, ttl_s: int, local_ttl_s: float, local_size: int) -> None:
        super().__init__()
        self._redis = redis
        self._ttl_s = ttl_s
        self._local_ttl_s = local_ttl_s
        self._local_size = local_size
        # code -> (expiry on the monotonic clock, link id, URL); insertion order is age order.
        self._local: dict[str, tuple[float, int, str]] = {}
        self._subscribed = False
        # Moves with every invalidation: a value read from Redis before one arrived is not kept.
        self._generation = 0

    async def get(self, code: str) -> tuple[int, str] | None:
        """Returns (link id, target URL) or None."""
        entry = self._local.get(code)
        if entry is not None:
            expires, link_id, url = entry
            if expires > monotonic():
                _HIT.inc()
                return link_id, url
            del self._local[code]
        if not REDIS.available():  # skipped, as failed, while an outage is fresh
            _ERROR.inc()
            return None
        generation = self._generation
        try:
            value = await self._redis.get(_key(code))
        except RedisError as exc:
            _ERROR.inc()
            REDIS.failed(exc)
            return None
        REDIS.answered()
        if value is None or value == TOMBSTONE:
            _MISS.inc()
            return None
        _HIT.inc()
        link_id, _, url = value.partition(" ")
        if self._subscribed and generation == self._generation:
            self._keep(code, int(link_id), url)
        return int(link_id), url

    def _keep(self, code: str, link_id: int, url: str) -> None:
        if len(self._local) >= self._local_size:
            del self._local[next(iter(self._local))]  # the oldest
        self._local[code] = (monotonic() + self._local_ttl_s, link_id, url)

    async def put(self, code: str, link_id: int, url: str, read_started: float) -> None:
        """Into Redis only: the next redirect of the code fills this worker's dict from there.

        `read_started`: when the caller began reading the link from Postgres (time.monotonic()).
        Never replaces what Redis holds, a tombstone least of all (module docstring).
        """
        if monotonic() - read_started > MAX_READ_AGE_S or not REDIS.available():
            return
        try:
            await self._redis.set(_key(code), f"{link_id} {url}", ex=self._ttl_s, nx=True)
        except RedisError as exc:
            REDIS.failed(exc)

    async def invalidate(self, code: str) -> None:
        """Everywhere: a tombstone in Redis, this worker's dict and, via pub/sub, every other worker's.

        Raises if Redis is down: a delete must not leave a stale redirect behind.
        """
        self._drop(code)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_key(code), TOMBSTONE, ex=TOMBSTONE_TTL_S)
            pipe.publish(INVALIDATIONS_CHANNEL, code)
            await pipe.execute()

    def _drop(self, code: str) -> None:
        self._generation += 1
        self._local.pop(code, None)

    def _stop_using_local(self) -> None:
        self._subscribed = False
        self._local.clear()

    async def _run(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(INVALIDATIONS_CHANNEL)
                    while True:
                        # A blocking read: no timeout, since a quiet channel is normal.
                        message = await pubsub.get_message(timeout=None)
                        if message is None:
                            continue
                        if message["type"] == "message":
                            self._drop(message["data"])
                        elif message["type"] == "subscribe":
                            # Only now are invalidations sure to reach this worker.
                            self._subscribed = True
                            REDIS.answered()
            except (RedisError, OSError) as exc:
                REDIS.failed(exc, lost="link invalidations: this worker's dict is bypassed until they are back")
            finally:
                self._stop_using_local()
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)
