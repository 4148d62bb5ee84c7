"""The link API: create, read, list, delete."""

from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from redis.exceptions import RedisError

from app import crud
from app.api.db import connection
from app.api.deps import CacheDep, SettingsDep
from app.api.errors import Unavailable
from app.core.config import Settings
from app.core.outages import REDIS
from app.models import CODE_PATTERN, Link, LinkCreate, LinkPage

log = structlog.get_logger()

router = APIRouter(prefix="/api/links", tags=["links"])

CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]

CACHE_DOWN_NOT_DELETED = "the cache is not answering, so the link was not deleted; try again shortly"


def to_link(row: dict, settings: Settings) -> Link:
    base = str(settings.public_base_url).rstrip("/")
    return Link(
        code=row["code"],
        url=row["url"],
        short_url=f"{base}/{row['code']}",
        clicks=row["clicks"],
        created_at=row["created_at"],
        last_clicked_at=row["last_clicked_at"],
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_link(body: LinkCreate, request: Request, settings: SettingsDep, response: Response) -> Link:
    async with connection(request) as conn:
        try:
            row = await crud.create_link(conn, body.url, body.code)
        except crud.CodeTaken:
            raise HTTPException(status.HTTP_409_CONFLICT, f"code '{body.code}' is already taken") from None
    link = to_link(row, settings)
    response.headers["Location"] = f"/api/links/{link.code}"
    return link


@router.get("")
async def list_links(
    request: Request,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,18}$")] = None,
) -> LinkPage:
    async with connection(request) as conn:
        rows = await crud.list_links(conn, limit, int(cursor) if cursor else None)
    next_cursor = str(rows[-1]["id"]) if len(rows) == limit else None
    return LinkPage(items=[to_link(row, settings) for row in rows], next_cursor=next_cursor)


@router.get("/{code}")
async def get_link(code: CodePath, request: Request, settings: SettingsDep) -> Link:
    async with connection(request) as conn:
        row = await crud.get_link(conn, code)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link with code '{code}'")
    return to_link(row, settings)


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_link(code: CodePath, request: Request, cache: CacheDep) -> None:
    """The cache is invalidated before the row goes and again after it went (why both:
    app/services/link_cache.py). Before is the precondition: with Redis down nothing is deleted and
    the client gets a 503, so a retry is all it needs."""
    try:
        await cache.invalidate(code)
    except RedisError as exc:
        raise Unavailable(CACHE_DOWN_NOT_DELETED, REDIS) from exc
    async with connection(request) as conn:
        deleted = await crud.delete_link(conn, code)
    if not deleted:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link with code '{code}'")
    try:
        await cache.invalidate(code)
    except RedisError as exc:
        # The row is gone, as asked: 204. The first tombstone still keeps the link out of the cache.
        log.warning("cache_invalidation_after_delete_failed", code=code, error=str(exc))
