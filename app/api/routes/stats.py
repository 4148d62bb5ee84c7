"""Aggregates over clicks: deliberately heavier than the other routes."""

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError

from app import crud
from app.api.db import connection
from app.api.responses import UNAVAILABLE
from app.models import TopLink, TopLinks, numbers_up_to

router = APIRouter(prefix="/api/stats", tags=["stats"], responses=UNAVAILABLE)

MAX_WINDOW_S = 30 * 86400
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WINDOW_MESSAGE = "a number and a unit (s, m, h or d), e.g. 15m or 1h, at most 30d"


# The window's whole rule, "at most 30 days" included, as the pattern the OpenAPI document states:
# what the schema accepts, the app accepts (tests/app/test_stats.py checks it value by value).
WINDOW_PATTERN = "^(?:" + "|".join(f"(?:{numbers_up_to(MAX_WINDOW_S // s)}){u}" for u, s in UNIT_SECONDS.items()) + ")$"
_WINDOW = re.compile(WINDOW_PATTERN)


def window_seconds(window: str) -> int:
    if not _WINDOW.fullmatch(window):
        # The same 422 as FastAPI's own validation, with a sentence rather than the pattern.
        raise RequestValidationError(
            [{"loc": ("query", "window"), "msg": WINDOW_MESSAGE, "type": "string_pattern_mismatch"}]
        )
    return int(window[:-1]) * UNIT_SECONDS[window[-1]]


@router.get("/top")
async def top(
    request: Request,
    window: Annotated[
        str, Query(description="e.g. 90s, 15m, 1h, 7d (30d at most)", json_schema_extra={"pattern": WINDOW_PATTERN})
    ] = "1h",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopLinks:
    seconds = window_seconds(window)
    async with connection(request) as conn:
        rows = await crud.top_links(conn, seconds, limit)
    return TopLinks(window_seconds=seconds, items=[TopLink(**dict(row)) for row in rows])
