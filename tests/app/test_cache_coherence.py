"""A deleted link never comes back from the redirect cache: not through a redirect that read it
just before the delete, not through a Redis outage during the delete."""

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient

from app import crud
from app.api.errors import RETRY_AFTER_S
from app.api.routes.links import CACHE_DOWN_NOT_DELETED
from app.core.config import Settings
from app.services import link_cache
from devservers import RedisServer, eventually
from tests.app.conftest import sql
from tests.app.test_links import bearer, create, delete


class Hold:
    """Holds the next redirect between its Postgres read and its cache put."""

    def __init__(self) -> None:
        self.read = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    held = Hold()
    read = crud.get_link

    async def get_link(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
        row = await read(conn, code)
        if not held.read.is_set():
            held.read.set()
            await asyncio.to_thread(held.release.wait, 10)
        return row

    monkeypatch.setattr(crud, "get_link", get_link)
    try:
        yield held
    finally:
        held.release.set()


def cached(settings: Settings, code: str) -> str | None:
    return redis.Redis.from_url(settings.redis_dsn, decode_responses=True).get(f"link:{code}")


def delete_during_redirect(client: TestClient, hold: Hold, code: str, settings: Settings, outlive: bool) -> None:
    """A redirect of `code` reads it from Postgres; the link is deleted; then the redirect puts what
    it read into the cache (after the delete's tombstone expired, if `outlive`)."""
    link = create(client, code=code)
    with ThreadPoolExecutor(1) as executor:
        redirect = executor.submit(client.get, f"/{code}", follow_redirects=False)
        assert hold.read.wait(10)
        assert delete(client, link) == 204
        if outlive:
            eventually(lambda: cached(settings, code) is None, "the tombstone expired")
        hold.release.set()
        assert redirect.result(10).status_code == 307  # it read the link before the delete


def test_redirect_that_read_before_a_delete_does_not_cache_the_link(
    client: TestClient, hold: Hold, settings: Settings
) -> None:
    """The put of a redirect that read the link before the delete is refused by the tombstone."""
    delete_during_redirect(client, hold, "racy", settings, outlive=False)
    assert client.get("/racy", follow_redirects=False).status_code == 404
    assert cached(settings, "racy") == link_cache.TOMBSTONE


def test_read_older_than_a_tombstone_lives_is_not_cached(
    client: TestClient, hold: Hold, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redirect held past the tombstone's life does not put what it read: it is too old to trust."""
    monkeypatch.setattr(link_cache, "TOMBSTONE_TTL_S", 1)
    monkeypatch.setattr(link_cache, "MAX_READ_AGE_S", 0.5)
    delete_during_redirect(client, hold, "slow", settings, outlive=True)
    assert client.get("/slow", follow_redirects=False).status_code == 404
    assert cached(settings, "slow") is None


def links_with_code(env: dict[str, str], code: str) -> object:
    return sql(env, f"SELECT count(*) FROM links WHERE code = '{code}'")


def test_delete_with_redis_down_is_503_and_keeps_the_row(
    client: TestClient, migrated: dict[str, str], redis_server: RedisServer
) -> None:
    """With Redis down a delete could not invalidate the cache: it deletes nothing and says so;
    the client's retry once Redis is back deletes it, and the redirect ends."""
    link = create(client, code="kept")
    assert client.get("/kept", follow_redirects=False).status_code == 307
    redis_server.stop()
    try:
        response = client.delete("/api/links/kept", headers=bearer(link["management_token"]))
        assert response.status_code == 503
        assert response.json() == {"detail": CACHE_DOWN_NOT_DELETED}
        assert response.headers["retry-after"] == str(RETRY_AFTER_S)
        assert links_with_code(migrated, "kept") == 1
    finally:
        redis_server.start()
    eventually(lambda: client.get("/ready").status_code == 200, "ready again once Redis is back")
    assert delete(client, link) == 204
    assert client.get("/kept", follow_redirects=False).status_code == 404


def test_redis_lost_during_a_delete_still_deletes(
    client: TestClient, migrated: dict[str, str], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis gone between the delete's two invalidations: the row is gone as asked, so 204."""
    link = create(client, code="midway")
    delete_row = crud.delete_link

    async def delete_link(conn: asyncpg.Connection, link_id: int) -> bool:
        redis_server.stop()
        return await delete_row(conn, link_id)

    monkeypatch.setattr(crud, "delete_link", delete_link)
    try:
        assert delete(client, link) == 204
    finally:
        if redis_server.process is None:
            redis_server.start()
    assert links_with_code(migrated, "midway") == 0
    assert client.get("/midway", follow_redirects=False).status_code == 404
