"""A dependency's outage in the log: one line when it starts failing, one when it answers again.

A line per failed request or retry would flood the log during an outage (a redirect fails over
in a millisecond) and cost CPU just when the stack is degraded; the metrics and the access lines
count every failure. Per worker: each worker notices an outage on its own.
"""

from time import monotonic

import structlog

log = structlog.get_logger()


# During an outage a dependency is asked again at most this often per worker (`available`): each
# request would otherwise wait for its own failure (a connect, a DNS lookup in the thread pool that
# Postgres' connects need too) to learn what the previous one learnt.
RETRY_INTERVAL_S = 0.5
# An outage ends when the dependency answers this long after its last failure: parts of the app
# whose connections broke meet the restart a moment later than others, and a restarting Redis
# answers LOADING for a while. Without it one outage would be logged as several.
SETTLE_S = 2.0


class Outage:
    __slots__ = ("_dependency", "_failures", "_last_failure", "_retry_at", "_since")

    def __init__(self, dependency: str) -> None:
        self._dependency = dependency
        self._since: float | None = None
        self._failures = 0
        self._last_failure = 0.0
        self._retry_at = 0.0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def available(self) -> bool:
        """Worth a try: no outage, or none noticed in the last RETRY_INTERVAL_S."""
        return self._since is None or monotonic() >= self._retry_at

    def failed(self, exc: BaseException, **fields: object) -> None:
        """Logs the first failure of an outage, with its traceback and the request's id."""
        self._failures += 1
        self._last_failure = monotonic()
        self._retry_at = self._last_failure + RETRY_INTERVAL_S
        if self._since is None:
            self._since = monotonic()
            log.error("dependency_down", dependency=self._dependency, exc_info=exc, **fields)

    def answered(self) -> None:
        """The dependency served a call: ends the outage, if there was one and it has settled.
        Cheap when there wasn't."""
        if self._since is not None and monotonic() - self._last_failure >= SETTLE_S:
            log.info(
                "dependency_recovered",
                dependency=self._dependency,
                outage_s=round(monotonic() - self._since, 3),
                failures=self._failures,
            )
            self._since = None
            self._failures = 0


# One per dependency and worker: whichever part of the app meets the outage first logs it.
POSTGRES = Outage("postgres")
REDIS = Outage("redis")
