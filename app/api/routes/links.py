"""The link API: create, read, list, delete."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from app import crud
from app.api.deps import CacheDep, PoolDep, SettingsDep
from app.core.config import Settings
from app.models import CODE_PATTERN, Link, LinkCreate, LinkPage

router = APIRouter(prefix="/api/links", tags=["links"])

CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]


def to_link(row: dict, settings: Settings) -> Link:
    base = str(settings.public_base_url).rstrip("/")
    return Link(
        code=row["code"],
        url=row["url"],
        short_url=f"{base}/{row['code']}",
        clicks=row["clicks"],
        created_at=row["created_at"],
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_link(body: LinkCreate, pool: PoolDep, settings: SettingsDep, response: Response) -> Link:
    async with pool.acquire() as conn:
        try:
            row = await crud.create_link(conn, body.url, body.code)
        except crud.CodeTaken:
            raise HTTPException(status.HTTP_409_CONFLICT, f"code '{body.code}' is already taken") from None
    link = to_link(row, settings)
    response.headers["Location"] = f"/api/links/{link.code}"
    return link


@router.get("")
async def list_links(
    pool: PoolDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,18}$")] = None,
) -> LinkPage:
    async with pool.acquire() as conn:
        rows = await crud.list_links(conn, limit, int(cursor) if cursor else None)
    next_cursor = str(rows[-1]["id"]) if len(rows) == limit else None
    return LinkPage(items=[to_link(row, settings) for row in rows], next_cursor=next_cursor)


@router.get("/{code}")
async def get_link(code: CodePath, pool: PoolDep, settings: SettingsDep) -> Link:
    async with pool.acquire() as conn:
        row = await crud.get_link(conn, code)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link with code '{code}'")
    return to_link(row, settings)


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_link(code: CodePath, pool: PoolDep, cache: CacheDep) -> None:
    async with pool.acquire() as conn:
        deleted = await crud.delete_link(conn, code)
    if not deleted:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link with code '{code}'")
    await cache.invalidate(code)
