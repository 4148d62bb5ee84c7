"""Top links over a time window."""

import re

import pytest
from fastapi.testclient import TestClient

from app.api.routes.stats import MAX_WINDOW_S, UNIT_SECONDS, WINDOW_PATTERN
from app.models import numbers_up_to
from devservers import eventually
from tests.app.test_links import create
from tests.app.test_redirect import clicks_of


def test_top_links_ranks_by_clicks_in_the_window(client: TestClient) -> None:
    """The most-clicked link comes first, with its count in the window."""
    for code, clicks in (("one", 1), ("three", 3), ("two", 2), ("none", 0)):
        create(client, code=code)
        for _ in range(clicks):
            client.get(f"/{code}", follow_redirects=False)
    eventually(lambda: clicks_of(client, "three") == 3 and clicks_of(client, "two") == 2, "clicks flushed")
    eventually(lambda: clicks_of(client, "one") == 1, "clicks flushed")
    top = client.get("/api/stats/top", params={"window": "5m", "limit": 2}).json()
    assert top["window_seconds"] == 300
    assert [(item["code"], item["clicks"]) for item in top["items"]] == [("three", 3), ("two", 2)]


@pytest.mark.parametrize("window", ["", "0s", "5", "5w", "1.5h", "31d", "-1h", "99999999d"])
def test_bad_window_is_422(client: TestClient, window: str) -> None:
    response = client.get("/api/stats/top", params={"window": window})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("window: ")


def test_bad_limit_is_422(client: TestClient) -> None:
    response = client.get("/api/stats/top", params={"limit": 0})
    assert response.status_code == 422
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize("limit", [1, 9, 10, 30, 99, 100, 720, 43200, 65535])
def test_numbers_up_to_matches_exactly_one_to_limit(limit: int) -> None:
    """The regular expression behind the window's and the URL port's schema patterns."""
    number = re.compile(f"(?:{numbers_up_to(limit)})")
    assert [n for n in range(limit * 2 + 11) if number.fullmatch(str(n))] == list(range(1, limit + 1))
    assert not number.fullmatch(f"0{limit}")


@pytest.mark.parametrize(("unit", "seconds"), UNIT_SECONDS.items())
def test_window_pattern_is_the_whole_rule(client: TestClient, unit: str, seconds: int) -> None:
    """What the documented pattern accepts is what the app takes, "at most 30d" included, value by
    value around the limit of each unit."""
    most = MAX_WINDOW_S // seconds
    for n in (1, most - 1, most, most + 1, most * 10):
        window = f"{n}{unit}"
        accepted = re.fullmatch(WINDOW_PATTERN.strip("^$"), window) is not None
        assert accepted == (n <= most), window
        assert client.get("/api/stats/top", params={"window": window}).status_code == (200 if accepted else 422)
