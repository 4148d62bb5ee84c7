"""The link API: create, read, list, delete.

Links have owners without accounts: creating one returns a management token, once; deleting needs
it (or the admin token). The database keeps only its digest (app/core/tokens.py).
"""

from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from redis.exceptions import RedisError

from app import crud
from app.api.db import connection
from app.api.deps import AdminInProductionDep, BearerDep, CacheDep, SettingsDep, is_admin, unauthorized
from app.api.errors import Unavailable
from app.api.responses import NOT_FOUND, UNAUTHORIZED, UNAVAILABLE
from app.core import tokens
from app.core.config import Settings
from app.core.outages import REDIS
from app.models import CODE_PATTERN, RESERVED_CODES, Link, LinkCreate, LinkCreated, LinkPage, Problem

log = structlog.get_logger()

router = APIRouter(prefix="/api/links", tags=["links"], responses=UNAVAILABLE)

CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]

BIGINT_MAX = 2**63 - 1  # links.id
CACHE_DOWN_NOT_DELETED = "the cache is not answering, so the link was not deleted; try again shortly"
TOKEN_MISSING_OR_WRONG = "this link's management token (or the admin token) is missing or wrong"


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


def _not_found(code: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no link with code '{code}'")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": Problem, "description": "The code is taken, or reserved (a path the service serves)."}},
)
async def create_link(body: LinkCreate, request: Request, settings: SettingsDep, response: Response) -> LinkCreated:
    """Creates a link. The answer carries the link's management token: it is shown this once,
    and only its digest is kept, so it cannot be shown again."""
    if body.code is not None and body.code.lower() in RESERVED_CODES:
        raise HTTPException(status.HTTP_409_CONFLICT, f"code '{body.code}' is reserved")
    token, token_hash = tokens.new_token()
    async with connection(request) as conn:
        try:
            row = await crud.create_link(conn, body.url, body.code, token_hash)
        except crud.CodeTaken:
            raise HTTPException(status.HTTP_409_CONFLICT, f"code '{body.code}' is already taken") from None
    link = to_link(row, settings)
    response.headers["Location"] = f"/api/links/{link.code}"
    return LinkCreated(**link.model_dump(), management_token=token)


@router.get(
    "",
    dependencies=[AdminInProductionDep],
    responses={401: {**UNAUTHORIZED[401], "description": "Production only: the admin token is missing or wrong."}},
)
async def list_links(
    request: Request,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,18}$")] = None,
) -> LinkPage:
    """Every link, newest first, in keyset pages (`next_cursor`). Open on a local stack, for
    workshops; in production it needs the admin token (`Authorization: Bearer`), else 401."""
    async with connection(request) as conn:
        # A cursor past bigint's range (the pattern allows 19 digits) means "below every id".
        rows = await crud.list_links(conn, limit, min(int(cursor), BIGINT_MAX) if cursor else None)
    next_cursor = str(rows[-1]["id"]) if len(rows) == limit else None
    return LinkPage(items=[to_link(row, settings) for row in rows], next_cursor=next_cursor)


@router.get("/{code}", responses=NOT_FOUND)
async def get_link(code: CodePath, request: Request, settings: SettingsDep) -> Link:
    async with connection(request) as conn:
        row = await crud.get_link(conn, code)
    if row is None:
        raise _not_found(code)
    return to_link(row, settings)


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT, responses={**UNAUTHORIZED, **NOT_FOUND})
async def delete_link(
    code: CodePath, request: Request, settings: SettingsDep, cache: CacheDep, token: BearerDep
) -> None:
    """Needs `Authorization: Bearer` with the link's management token or the admin token (links
    made before management tokens existed: the admin token only). 404 for the admin token only:
    any other token gets 401 whether the link exists or not.

    The token is checked first: a request without the right one touches neither the cache nor the
    row. Then the cache is invalidated before the row goes and again after it went (why both:
    app/services/link_cache.py). Before is the precondition: with Redis down nothing is deleted and
    the client gets a 503, so a retry is all it needs."""
    if token is None:
        raise unauthorized(TOKEN_MISSING_OR_WRONG)
    async with connection(request) as conn:
        owner = await crud.link_owner(conn, code)
    admin = is_admin(settings, token)
    if owner is None:
        # Only the admin learns that there is no such link: any other token authorizes nothing here.
        raise _not_found(code) if admin else unauthorized(TOKEN_MISSING_OR_WRONG)
    if not (admin or tokens.matches(token, owner["token_hash"])):
        raise unauthorized(TOKEN_MISSING_OR_WRONG)
    try:
        await cache.invalidate(code)
    except RedisError as exc:
        raise Unavailable(CACHE_DOWN_NOT_DELETED, REDIS) from exc
    async with connection(request) as conn:
        deleted = await crud.delete_link(conn, owner["id"])
    if not deleted:
        raise _not_found(code)  # deleted meanwhile by another request
    try:
        await cache.invalidate(code)
    except RedisError as exc:
        # The row is gone, as asked: 204. The first tombstone still keeps the link out of the cache.
        log.warning("cache_invalidation_after_delete_failed", code=code, error=str(exc))
