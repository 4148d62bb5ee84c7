"""A dependency's outage: logged once when it starts and once when it ends, asked again at most
every RETRY_INTERVAL_S meanwhile."""

import pytest
import structlog

from app.core import outages
from app.core.outages import RETRY_INTERVAL_S, Outage


def test_an_outage_is_logged_once_and_its_end_once(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(outages, "monotonic", lambda: now[0])
    redis = Outage("redis")
    with structlog.testing.capture_logs() as logs:
        for _ in range(50):
            redis.failed(ConnectionError("refused"))
        now[0] += 2.5
        redis.answered()
        redis.answered()
    assert [(entry["event"], entry["dependency"]) for entry in logs] == [
        ("dependency_down", "redis"),
        ("dependency_recovered", "redis"),
    ]
    assert logs[1]["failures"] == 50 and logs[1]["outage_s"] == 2.5


def test_a_failed_dependency_is_skipped_for_a_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(outages, "monotonic", lambda: now[0])
    postgres = Outage("postgres")
    assert postgres.available()
    with structlog.testing.capture_logs():
        postgres.failed(OSError("down"))
        assert not postgres.available()
        now[0] += RETRY_INTERVAL_S
        assert postgres.available()  # one caller tries again…
        postgres.failed(OSError("still down"))
        assert not postgres.available()  # …and the others wait for the next interval
        postgres.answered()
    assert postgres.available()
