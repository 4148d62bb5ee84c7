"""The hot path: redirects from the cache, clicks counted, Redis optional."""

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from redis.asyncio import Redis as AsyncRedis

from app.core.config import Settings
from app.main import create_app
from app.services.link_cache import LinkCache
from devservers import RedisServer, eventually
from tests.app.conftest import make_settings, sql
from tests.app.live import LiveServer
from tests.app.test_links import bearer, create, delete


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
    """Every redirect becomes one click in Postgres, and the link says when the last one was."""
    assert create(client, code="counted")["last_clicked_at"] is None
    for _ in range(5):
        client.get("/counted", follow_redirects=False)
    eventually(lambda: clicks_of(client, "counted") == 5, "5 clicks flushed to Postgres")
    assert client.get("/api/links/counted").json()["last_clicked_at"] is not None


def test_delete_invalidates_the_cache(client: TestClient, settings: Settings) -> None:
    """A deleted code stops redirecting at once, although it was cached."""
    link = create(client, code="stale")
    client.get("/stale", follow_redirects=False)
    assert redis.Redis.from_url(settings.redis_dsn).exists("link:stale")
    assert delete(client, link) == 204
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
    """A connected WebSocket receives each click as JSON: code, replica, time (one message a
    click, although a flush publishes its clicks in one Redis message)."""
    create(client, code="live")
    with client.websocket_connect("/ws/clicks") as ws:
        eventually(lambda: _metric(client, "websocket_connections") == 1, "socket counted")
        for _ in range(3):
            client.get("/live", follow_redirects=False)
        events = [ws.receive_json() for _ in range(3)]
    for event in events:
        assert event["code"] == "live"
        assert event["replica"] == "test-replica"
        assert event["at"]
    eventually(lambda: _metric(client, "websocket_connections") == 0, "socket released")


def test_click_events_name_no_replica_in_production(settings: Settings, clean: None) -> None:
    """Production hides which replica served a request (no X-Replica): its click events do too."""
    with TestClient(create_app(settings.model_copy(update={"environment": "production"}))) as client:
        create(client, code="anon")
        with client.websocket_connect("/ws/clicks") as ws:
            eventually(lambda: _metric(client, "websocket_connections") == 1, "socket counted")
            client.get("/anon", follow_redirects=False)
            event = ws.receive_json()
    assert event["code"] == "anon" and event["at"]
    assert "replica" not in event


# --- each worker's local copies (app/services/link_cache.py) ---

OLD_URL, NEW_URL = "https://example.com/old", "https://example.com/new"

Get = Callable[[str], httpx.Response]


def _serves_from_local_copy(get: Get, env: dict[str, str], code: str) -> bool:
    """Fills a worker's local copy of `code` and tells whether its redirects now come from it.

    Two redirects: a Redis miss (Postgres, then Redis), then a Redis hit, which the worker keeps
    once its invalidation subscription is up. Then Postgres says NEW_URL and Redis forgets the
    code: OLD_URL can only come from the local copy. Postgres and Redis are put back afterwards.
    """
    store = redis.Redis.from_url(make_settings(env).redis_dsn)
    for _ in range(2):
        get(f"/{code}")
    store.delete(f"link:{code}")
    sql(env, f"UPDATE links SET url = '{NEW_URL}' WHERE code = '{code}'")
    location = get(f"/{code}").headers["location"]
    sql(env, f"UPDATE links SET url = '{OLD_URL}' WHERE code = '{code}'")
    store.delete(f"link:{code}")  # a redirect from Postgres put NEW_URL there
    return location == OLD_URL


def test_delete_on_one_instance_ends_another_instances_local_copy(
    migrated: dict[str, str], clean: None, tmp_path: Path
) -> None:
    """A redirected link stays in each worker's memory (up to LOCAL_CACHE_TTL_S, here 300 s);
    a delete on instance A ends instance B's copy within a second, through Redis pub/sub."""
    a = LiveServer(migrated, tmp_path, workers=1, LOCAL_CACHE_TTL_S="300")
    b = LiveServer(migrated, tmp_path, workers=1, LOCAL_CACHE_TTL_S="300")
    try:
        a.start()
        b.start()
        created = httpx.post(f"{a.url}/api/links", json={"url": OLD_URL, "code": "shared"}).raise_for_status()

        def get_b(path: str) -> httpx.Response:
            return httpx.get(b.url + path)

        eventually(lambda: _serves_from_local_copy(get_b, migrated, "shared"), "B redirecting from its local copy")
        token = created.json()["management_token"]
        assert httpx.delete(f"{a.url}/api/links/shared", headers=bearer(token)).status_code == 204
        deleted = time.monotonic()
        assert httpx.get(f"{a.url}/shared").status_code == 404
        eventually(lambda: get_b("/shared").status_code == 404, "B no longer redirecting", timeout=1.0)
        assert time.monotonic() - deleted < 1.0
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def long_local_copies(settings: Settings, clean: None) -> Iterator[TestClient]:
    """The app with local copies that would live for 5 minutes if nothing ended them."""
    with TestClient(create_app(settings.model_copy(update={"local_cache_ttl_s": 300}))) as client:
        yield client


def test_local_copies_are_dropped_while_invalidations_could_be_lost(
    long_local_copies: TestClient, migrated: dict[str, str], redis_server: RedisServer
) -> None:
    """With Redis gone, a delete elsewhere could not reach this worker: it drops its local copies
    and answers from Postgres until its subscription is back."""
    client = long_local_copies

    def get(path: str) -> httpx.Response:
        return client.get(path, follow_redirects=False)

    create(client, url=OLD_URL, code="outage")
    eventually(lambda: _serves_from_local_copy(get, migrated, "outage"), "a local copy")
    sql(migrated, f"UPDATE links SET url = '{NEW_URL}' WHERE code = 'outage'")
    redis_server.stop()
    try:
        eventually(lambda: get("/outage").headers["location"] == NEW_URL, "the redirect from Postgres")
    finally:
        redis_server.start()
    eventually(lambda: client.get("/ready").status_code == 200, "ready again once Redis is back")


def test_local_copies_are_bounded_in_number_and_age(settings: Settings, clean: None) -> None:
    """At most `local_size` copies (the oldest goes first), each for at most `local_ttl_s`."""

    async def scenario() -> None:
        store = AsyncRedis.from_url(settings.redis_dsn, decode_responses=True)
        cache = LinkCache(store, ttl_s=60, local_ttl_s=1.0, local_size=2)
        cache.start()

        async def keep_locally(code: str) -> None:
            """In Redis long enough to be read and kept, then only in the local copy."""
            for _ in range(100):
                await store.set(f"link:{code}", f"1 https://{code}.example")
                await cache.get(code)
                await store.delete(f"link:{code}")
                if await cache.get(code) is not None:
                    return
                await asyncio.sleep(0.05)  # the subscription is not confirmed yet
            raise AssertionError(f"{code} never kept locally")

        try:
            for code in ("first", "second", "third"):
                await keep_locally(code)
            assert await cache.get("first") is None
            assert await cache.get("second") == (1, "https://second.example")
            assert await cache.get("third") == (1, "https://third.example")
            await asyncio.sleep(1.1)
            assert await cache.get("third") is None
        finally:
            await cache.close()
            await store.aclose()

    asyncio.run(scenario())
