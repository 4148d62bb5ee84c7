"""Aggregates over clicks: deliberately heavier than the other routes."""

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from app import crud
from app.api.db import connection
from app.models import TopLink, TopLinks

router = APIRouter(prefix="/api/stats", tags=["stats"])

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW_S = 30 * 86400
WINDOW = re.compile(r"([1-9][0-9]{0,6})([smhd])")


def window_seconds(window: str) -> int:
    match = WINDOW.fullmatch(window)
    seconds = int(match[1]) * UNIT_SECONDS[match[2]] if match else 0
    if not 0 < seconds <= MAX_WINDOW_S:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "window: a number and a unit (s, m, h or d), e.g. 15m or 1h, at most 30d",
        )
    return seconds


@router.get("/top")
async def top(
    request: Request,
    window: Annotated[str, Query(description="e.g. 90s, 15m, 1h, 7d (30d at most)")] = "1h",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopLinks:
    seconds = window_seconds(window)
    async with connection(request) as conn:
        rows = await crud.top_links(conn, seconds, limit)
    return TopLinks(window_seconds=seconds, items=[TopLink(**dict(row)) for row in rows])
