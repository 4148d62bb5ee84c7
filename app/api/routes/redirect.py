"""The hot path: a short code to its target, from the cache when it can."""

import re

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import RedirectResponse

from app import crud
from app.api.deps import CacheDep, ClicksDep, PoolDep
from app.models import CODE_PATTERN

router = APIRouter(tags=["redirect"])

_CODE = re.compile(CODE_PATTERN)


@router.get("/{code}", response_class=RedirectResponse, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
async def follow(code: str, pool: PoolDep, cache: CacheDep, clicks: ClicksDep) -> RedirectResponse:
    if not _CODE.match(code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such link")
    hit = await cache.get(code)
    if hit is None:
        async with pool.acquire() as conn:
            row = await crud.get_link(conn, code)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such link")
        hit = (row["id"], row["url"])
        await cache.put(code, *hit)
    link_id, url = hit
    clicks.record(link_id, code)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
