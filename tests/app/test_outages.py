"""A dependency's outage: logged once when it starts and once when it ends, asked again at most
every RETRY_INTERVAL_S meanwhile."""

import pytest

from app.core import outages
from app.core.outages import RETRY_INTERVAL_S, SETTLE_S, Outage


class Log:
    """Stands in for the module's logger: structlog's capture_logs misses a logger cached by an
    earlier configure_logging (every create_app configures it)."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def error(self, event: str, **fields: object) -> None:
        self.entries.append({"event": event, **fields})

    info = error


def test_an_outage_is_logged_once_and_its_end_once(monkeypatch: pytest.MonkeyPatch) -> None:
    now, log = [100.0], Log()
    monkeypatch.setattr(outages, "monotonic", lambda: now[0])
    monkeypatch.setattr(outages, "log", log)
    redis = Outage("redis")
    for _ in range(50):
        redis.failed(ConnectionError("refused"))
    now[0] += 2.5
    redis.answered()
    redis.answered()
    logs = log.entries
    assert [(entry["event"], entry["dependency"]) for entry in logs] == [
        ("dependency_down", "redis"),
        ("dependency_recovered", "redis"),
    ]
    assert logs[1]["failures"] == 50 and logs[1]["outage_s"] == 2.5


def test_a_failed_dependency_is_skipped_for_a_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(outages, "monotonic", lambda: now[0])
    monkeypatch.setattr(outages, "log", Log())
    postgres = Outage("postgres")
    assert postgres.available()
    postgres.failed(OSError("down"))
    assert not postgres.available()
    now[0] += RETRY_INTERVAL_S
    assert postgres.available()  # one caller tries again…
    postgres.failed(OSError("still down"))
    assert not postgres.available()  # …and the others wait for the next interval
    now[0] += SETTLE_S
    postgres.answered()
    assert postgres.available()


def test_failures_soon_after_an_answer_are_the_same_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part of the app that meets the restart late (a broken pub/sub connection, Redis still
    loading) does not start a second outage: it ends SETTLE_S after the last failure."""
    now, log = [100.0], Log()
    monkeypatch.setattr(outages, "monotonic", lambda: now[0])
    monkeypatch.setattr(outages, "log", log)
    redis = Outage("redis")
    redis.failed(ConnectionError("refused"))
    now[0] += 1.0
    redis.answered()  # too soon to call it over…
    now[0] += 0.2
    redis.failed(ConnectionError("loading"))  # …rightly
    now[0] += SETTLE_S
    redis.answered()
    assert [(entry["event"], entry.get("failures")) for entry in log.entries] == [
        ("dependency_down", None),
        ("dependency_recovered", 2),
    ]
