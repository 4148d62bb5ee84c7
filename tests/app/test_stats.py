"""Top links over a time window."""

import pytest
from fastapi.testclient import TestClient

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
