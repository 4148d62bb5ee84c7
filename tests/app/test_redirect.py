"""The hot path: redirects from the cache, clicks counted, Redis optional."""

import redis
from fastapi.testclient import TestClient

from app.core.config import Settings
from tests.app.test_links import create
from tests.polling import eventually
from tests.servers import RedisServer


def clicks_of(client: TestClient, code: str) -> int:
    return client.get(f"/api/links/{code}").json()["clicks"]


def test_redirect_is_307_to_the_target(client: TestClient) -> None:
    """GET /{code} answers 307 with the stored URL, query strings and all."""
    create(client, url="https://example.com/a?b=c#d", code="goto")
    response = client.get("/goto", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "https://example.com/a?b=c#d"


def test_unknown_and_malformed_codes_are_404(client: TestClient) -> None:
    assert client.get("/nothere", follow_redirects=False).status_code == 404
    assert client.get("/a.b", follow_redirects=False).status_code == 404


def test_second_redirect_comes_from_the_cache(client: TestClient, settings: Settings) -> None:
    """Cache-aside: the first redirect fills Redis, with a TTL; the next one is a hit."""
    create(client, code="cached")
    client.get("/cached", follow_redirects=False)
    store = redis.Redis.from_url(settings.redis_dsn)
    assert 0 < store.ttl("link:cached") <= settings.cache_ttl_s
    before = _metric(client, 'cache_requests_total{result="hit"}')
    client.get("/cached", follow_redirects=False)
    assert _metric(client, 'cache_requests_total{result="hit"}') == before + 1


def test_clicks_are_counted(client: TestClient) -> None:
    """Every redirect becomes one click in Postgres."""
    create(client, code="counted")
    for _ in range(5):
        client.get("/counted", follow_redirects=False)
    eventually(lambda: clicks_of(client, "counted") == 5, "5 clicks flushed to Postgres")


def test_delete_invalidates_the_cache(client: TestClient, settings: Settings) -> None:
    """A deleted code stops redirecting at once, although it was cached."""
    create(client, code="stale")
    client.get("/stale", follow_redirects=False)
    assert redis.Redis.from_url(settings.redis_dsn).exists("link:stale")
    client.delete("/api/links/stale")
    assert client.get("/stale", follow_redirects=False).status_code == 404


def test_redirects_and_clicks_survive_redis_outage(client: TestClient, redis_server: RedisServer) -> None:
    """With Redis down, redirects fall back to Postgres and every click is still recorded."""
    create(client, code="noredis")
    redis_server.stop()
    try:
        for _ in range(3):
            assert client.get("/noredis", follow_redirects=False).status_code == 307
        eventually(lambda: clicks_of(client, "noredis") == 3, "3 clicks flushed while Redis is down")
        assert client.get("/ready").status_code == 503
    finally:
        redis_server.start()
    eventually(lambda: client.get("/ready").status_code == 200, "ready again once Redis is back")


def _metric(client: TestClient, sample: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_websocket_streams_clicks(client: TestClient) -> None:
    """A connected WebSocket receives each click as JSON: code, replica, time."""
    create(client, code="live")
    with client.websocket_connect("/ws/clicks") as ws:
        eventually(lambda: _metric(client, "websocket_connections") == 1, "socket counted")
        client.get("/live", follow_redirects=False)
        event = ws.receive_json()
    assert event["code"] == "live"
    assert event["replica"] == "test-replica"
    assert event["at"]
    eventually(lambda: _metric(client, "websocket_connections") == 0, "socket released")
