"""The migration job: idempotent, safe to run concurrently, clear when Postgres is away; every
migration reversible, and expand-only: the previous release's SQL works on the new schema."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from alembic import command

from app import crud
from app.migrate import alembic_config
from app.models import Link
from devservers import PostgresServer
from tests.app.conftest import ROOT, make_settings, sql

HEAD = "0003"


def migrate(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.migrate"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def fresh_db(env: dict[str, str], postgres: PostgresServer) -> Iterator[dict[str, str]]:
    sql(env, "CREATE DATABASE fresh")
    try:
        yield {**env, "DATABASE_URL": postgres.url.rsplit("/", 1)[0] + "/fresh"}
    finally:
        sql(env, "DROP DATABASE fresh WITH (FORCE)")


def test_concurrent_runs_then_a_rerun(fresh_db: dict[str, str]) -> None:
    """Three jobs at once all succeed, the schema is applied once, and a later run is a no-op."""
    jobs = [migrate(fresh_db) for _ in range(3)]
    outputs = [job.communicate(timeout=60)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0, 0], outputs
    for step in ("Running upgrade  -> 0001", "Running upgrade 0001 -> 0002", "Running upgrade 0002 -> 0003"):
        assert sum(step in output for output in outputs) == 1, (step, outputs)
    rerun = migrate(fresh_db)
    rerun.communicate(timeout=60)
    assert rerun.returncode == 0
    assert sql(fresh_db, "SELECT version_num FROM alembic_version") == HEAD


def test_unreachable_postgres_fails_with_one_line(env: dict[str, str]) -> None:
    bad = {**env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres", "DB_STARTUP_TIMEOUT_S": "1"}
    job = migrate(bad)
    output = job.communicate(timeout=30)[0]
    assert job.returncode == 1
    failure = json.loads(output.strip().splitlines()[-1])
    assert failure["event"] == "migration_failed"
    assert "unreachable after 1s" in failure["reason"]


# ------------------------------------------------------------------ reversible, expand-only


def on_db[T](env: dict[str, str], work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def run() -> T:
        conn = await asyncpg.connect(make_settings(env).database_dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def alembic(env: dict[str, str], direction: str, revision: str) -> None:
    getattr(command, direction)(alembic_config(make_settings(env)), revision)


def links_columns(env: dict[str, str]) -> list[str]:
    async def columns(conn: asyncpg.Connection) -> list[str]:
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'links' ORDER BY ordinal_position"
        )
        return [row["column_name"] for row in rows]

    return on_db(env, columns)


def test_upgrade_downgrade_round_trip(fresh_db: dict[str, str]) -> None:
    """head -> 0002 -> 0001 -> head -> nothing -> head: every downgrade undoes its upgrade, data
    of the older shape survives a step back, and the new release cannot run on the old schema
    (which is why a rollout migrates before it starts a new replica)."""
    alembic(fresh_db, "upgrade", "head")
    assert sql(fresh_db, "SELECT version_num FROM alembic_version") == HEAD
    assert links_columns(fresh_db) == ["id", "code", "url", "clicks", "created_at", "last_clicked_at", "token_hash"]
    sql(fresh_db, "INSERT INTO links (code, url, token_hash) VALUES ('owned', 'https://example.com', '\\x00')")

    alembic(fresh_db, "downgrade", "0002")
    assert links_columns(fresh_db) == ["id", "code", "url", "clicks", "created_at", "last_clicked_at"]
    assert sql(fresh_db, "SELECT url FROM links WHERE code = 'owned'") == "https://example.com"
    with pytest.raises(asyncpg.UndefinedColumnError):
        on_db(fresh_db, lambda conn: crud.link_owner(conn, "owned"))
    sql(fresh_db, "INSERT INTO links (code, url, last_clicked_at) VALUES ('kept', 'https://example.com', now())")

    alembic(fresh_db, "downgrade", "0001")
    assert sql(fresh_db, "SELECT version_num FROM alembic_version") == "0001"
    assert links_columns(fresh_db) == ["id", "code", "url", "clicks", "created_at"]
    assert sql(fresh_db, "SELECT url FROM links WHERE code = 'kept'") == "https://example.com"
    with pytest.raises(asyncpg.UndefinedColumnError):
        on_db(fresh_db, lambda conn: crud.get_link(conn, "kept"))

    alembic(fresh_db, "upgrade", "head")
    assert links_columns(fresh_db)[-2:] == ["last_clicked_at", "token_hash"]
    assert sql(fresh_db, "SELECT last_clicked_at IS NULL FROM links WHERE code = 'kept'") is True
    assert sql(fresh_db, "SELECT token_hash IS NULL FROM links WHERE code = 'owned'") is True

    alembic(fresh_db, "downgrade", "base")
    assert sql(fresh_db, "SELECT count(*) FROM alembic_version") == 0
    assert sql(fresh_db, "SELECT to_regclass('links') IS NULL AND to_regclass('clicks') IS NULL") is True
    alembic(fresh_db, "upgrade", "head")
    assert sql(fresh_db, "SELECT version_num FROM alembic_version") == HEAD


# The previous release's statements (app/crud.py as of migration 0001), word for word: during a
# rollout its replicas keep running them against the schema the new release migrated to.
PREVIOUS_COLUMNS = ["id", "code", "url", "clicks", "created_at"]
PREVIOUS_RELEASE = {
    "create": "INSERT INTO links (code, url) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING "
    "RETURNING id, code, url, clicks, created_at",
    "get": "SELECT id, code, url, clicks, created_at FROM links WHERE code = $1",
    "list": "SELECT id, code, url, clicks, created_at FROM links WHERE ($1::bigint IS NULL OR id < $1) "
    "ORDER BY id DESC LIMIT $2",
    "delete": "DELETE FROM links WHERE code = $1 RETURNING id",
    "insert_clicks": """
        INSERT INTO clicks (link_id, clicked_at)
        SELECT c.link_id, c.clicked_at
        FROM unnest($1::bigint[], $2::timestamptz[]) AS c(link_id, clicked_at)
        JOIN links l ON l.id = c.link_id
        RETURNING link_id
        """,
    "count_clicks": """
        UPDATE links SET clicks = links.clicks + c.n
        FROM (SELECT link_id, count(*) AS n FROM unnest($1::bigint[]) AS link_id GROUP BY link_id) c
        WHERE links.id = c.link_id
        """,
    "top": """
        SELECT l.code, l.url, c.n AS clicks
        FROM (
            SELECT link_id, count(*) AS n FROM clicks
            WHERE clicked_at >= now() - make_interval(secs => $1)
            GROUP BY link_id ORDER BY n DESC LIMIT $2
        ) c
        JOIN links l ON l.id = c.link_id
        ORDER BY c.n DESC, l.code
        """,
}


async def previous_release_clicks(conn: asyncpg.Connection, link_ids: list[int], times: list[datetime]) -> int:
    async with conn.transaction():
        inserted = await conn.fetch(PREVIOUS_RELEASE["insert_clicks"], link_ids, times)
        await conn.execute(PREVIOUS_RELEASE["count_clicks"], [row["link_id"] for row in inserted])
    return len(inserted)


def test_previous_release_runs_on_the_expanded_schema(fresh_db: dict[str, str]) -> None:
    """Expand: after 0002 the previous release's every statement works and returns what it
    did, while the new release writes last_clicked_at beside it on the same rows."""
    alembic(fresh_db, "upgrade", "head")
    now = datetime.now(UTC)

    async def both_releases(conn: asyncpg.Connection) -> None:
        # The previous release: creates, reads, lists and counts as it always did.
        old = await conn.fetchrow(PREVIOUS_RELEASE["create"], "oldrel", "https://example.com/old")
        assert list(old.keys()) == PREVIOUS_COLUMNS
        assert list((await conn.fetchrow(PREVIOUS_RELEASE["get"], "oldrel")).keys()) == PREVIOUS_COLUMNS
        assert [row["code"] for row in await conn.fetch(PREVIOUS_RELEASE["list"], None, 10)] == ["oldrel"]
        assert await previous_release_clicks(conn, [old["id"], old["id"]], [now, now]) == 2
        # Its clicks leave the new column alone: NULL means "no click recorded by a release
        # that knows the column".
        assert await conn.fetchval("SELECT last_clicked_at FROM links WHERE id = $1", old["id"]) is None

        # The new release on the same link: counts on top and sets the time.
        assert await crud.record_clicks(conn, [old["id"]], [now + timedelta(seconds=1)]) == 1
        row = await crud.get_link(conn, "oldrel")
        assert row["clicks"] == 3
        assert row["last_clicked_at"] == now + timedelta(seconds=1)
        assert Link(short_url="https://s/oldrel", **dict(row)).last_clicked_at == now + timedelta(seconds=1)

        # Both releases at once, as during a rollout: a link the new release made, clicked by
        # the old one, then by the new one with an earlier time (a late batch): counts add up
        # and the time never goes backwards.
        new = await crud.create_link(conn, "https://example.com/new", "newrel", b"\x01" * 32)
        assert new["last_clicked_at"] is None
        await previous_release_clicks(conn, [new["id"]], [now])
        await crud.record_clicks(conn, [new["id"], new["id"]], [now + timedelta(seconds=5), now])
        await crud.record_clicks(conn, [new["id"]], [now - timedelta(minutes=1)])
        row = await conn.fetchrow(PREVIOUS_RELEASE["get"], "newrel")
        assert row["clicks"] == 4
        assert await conn.fetchval("SELECT last_clicked_at FROM links WHERE code = 'newrel'") == now + timedelta(
            seconds=5
        )

        top = await conn.fetch(PREVIOUS_RELEASE["top"], 3600, 10)
        assert [(r["code"], r["clicks"]) for r in top] == [("newrel", 4), ("oldrel", 3)]
        assert await conn.fetchval(PREVIOUS_RELEASE["delete"], "oldrel") == old["id"]
        assert await conn.fetchval(PREVIOUS_RELEASE["delete"], "newrel") == new["id"]

    on_db(fresh_db, both_releases)


# The release before management tokens (app/crud.py as of migration 0002), word for word.
RELEASE_0002 = {
    "create": "INSERT INTO links (code, url) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING "
    "RETURNING id, code, url, clicks, created_at, last_clicked_at",
    "get": "SELECT id, code, url, clicks, created_at, last_clicked_at FROM links WHERE code = $1",
    "delete": "DELETE FROM links WHERE code = $1 RETURNING id",
}


def test_release_0002_runs_beside_management_tokens(fresh_db: dict[str, str]) -> None:
    """Expand: after 0003 the release before it creates, reads and deletes as it did, never sees
    token_hash; its links have none, so only the admin token can delete them (README, API)."""
    alembic(fresh_db, "upgrade", "head")

    async def both_releases(conn: asyncpg.Connection) -> None:
        old = await conn.fetchrow(RELEASE_0002["create"], "oldrel", "https://example.com/old")
        assert "token_hash" not in dict(old)
        assert "token_hash" not in dict(await conn.fetchrow(RELEASE_0002["get"], "oldrel"))
        owner = await crud.link_owner(conn, "oldrel")
        assert owner is not None and owner["token_hash"] is None

        new = await crud.create_link(conn, "https://example.com/new", "newrel", b"\x01" * 32)
        assert "token_hash" not in dict(new)
        assert (await conn.fetchrow(RELEASE_0002["get"], "newrel"))["url"] == "https://example.com/new"
        assert await conn.fetchval(RELEASE_0002["delete"], "newrel") == new["id"]
        assert await crud.delete_link(conn, old["id"])

    on_db(fresh_db, both_releases)
