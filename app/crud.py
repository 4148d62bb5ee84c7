"""SQL for links and clicks. Uniqueness is the database's job: no read-then-write."""

import secrets
import string
from datetime import datetime

import asyncpg

ALPHABET = string.ascii_letters + string.digits
GENERATED_LENGTH = 7
# 62^7 codes: a collision is rare, several in a row means something else is wrong.
GENERATE_ATTEMPTS = 5

# Named, never "*": a release must keep working when a later migration adds a column
# (the expand/contract rule, README "Rollouts"). last_clicked_at: migration 0002. token_hash
# (0003) is left out on purpose: what reads a link never needs it (link_owner does).
LINK_COLUMNS = "id, code, url, clicks, created_at, last_clicked_at"


class CodeTaken(Exception):
    pass


async def create_link(conn: asyncpg.Connection, url: str, code: str | None, token_hash: bytes) -> asyncpg.Record:
    insert = (
        "INSERT INTO links (code, url, token_hash) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING"
        f" RETURNING {LINK_COLUMNS}"
    )
    if code is not None:
        row = await conn.fetchrow(insert, code, url, token_hash)
        if row is None:
            raise CodeTaken(code)
        return row
    for _ in range(GENERATE_ATTEMPTS):
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))
        row = await conn.fetchrow(insert, candidate, url, token_hash)
        if row is not None:
            return row
    raise RuntimeError(f"no free code after {GENERATE_ATTEMPTS} attempts")


async def get_link(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {LINK_COLUMNS} FROM links WHERE code = $1", code)


async def list_links(conn: asyncpg.Connection, limit: int, before_id: int | None) -> list[asyncpg.Record]:
    """Newest first, keyset-paginated on id: each page costs the same however deep it is."""
    return await conn.fetch(
        f"SELECT {LINK_COLUMNS} FROM links WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        before_id,
        limit,
    )


async def link_owner(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """The link's id and its management token's digest (NULL for links older than migration 0003)."""
    return await conn.fetchrow("SELECT id, token_hash FROM links WHERE code = $1", code)


async def delete_link(conn: asyncpg.Connection, link_id: int) -> bool:
    """By id, not code: ids are never reused, so a link deleted and made again under the same code
    since its owner was checked is not the one deleted."""
    return await conn.fetchval("DELETE FROM links WHERE id = $1 RETURNING id", link_id) is not None


async def record_clicks(conn: asyncpg.Connection, link_ids: list[int], times: list[datetime]) -> int:
    """Writes a batch of clicks; clicks of links deleted meanwhile are skipped, not an error.

    Each link's counter grows by its clicks in the batch and its last_clicked_at moves to the
    latest of them (never backwards: greatest() ignores a NULL and keeps a later time).
    """
    async with conn.transaction():
        inserted = await conn.fetch(
            """
            INSERT INTO clicks (link_id, clicked_at)
            SELECT c.link_id, c.clicked_at
            FROM unnest($1::bigint[], $2::timestamptz[]) AS c(link_id, clicked_at)
            JOIN links l ON l.id = c.link_id
            RETURNING link_id, clicked_at
            """,
            link_ids,
            times,
        )
        await conn.execute(
            """
            UPDATE links
            SET clicks = links.clicks + c.n, last_clicked_at = greatest(links.last_clicked_at, c.last_clicked_at)
            FROM (
                SELECT link_id, count(*) AS n, max(clicked_at) AS last_clicked_at
                FROM unnest($1::bigint[], $2::timestamptz[]) AS c(link_id, clicked_at)
                GROUP BY link_id
            ) c
            WHERE links.id = c.link_id
            """,
            [row["link_id"] for row in inserted],
            [row["clicked_at"] for row in inserted],
        )
    return len(inserted)


async def top_links(conn: asyncpg.Connection, window_seconds: int, limit: int) -> list[asyncpg.Record]:
    """The heavy query of the sample: it scans every click in the window."""
    return await conn.fetch(
        """
        SELECT l.code, l.url, c.n AS clicks
        FROM (
            SELECT link_id, count(*) AS n FROM clicks
            WHERE clicked_at >= now() - make_interval(secs => $1)
            GROUP BY link_id ORDER BY n DESC LIMIT $2
        ) c
        JOIN links l ON l.id = c.link_id
        ORDER BY c.n DESC, l.code
        """,
        window_seconds,
        limit,
    )
