"""The hot path: a short code to its target, from the cache when it can."""

import re
from time import monotonic
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import RedirectResponse

from app import crud
from app.api.db import connection
from app.api.responses import UNAVAILABLE
from app.models import CODE_PATTERN, Problem

router = APIRouter(tags=["redirect"])

_CODE = re.compile(CODE_PATTERN)

# Checked by hand below (a malformed code is a 404 here, not a 422: it is a URL, not an API
# input), stated in the schema. Reserved codes (app/models.py) name no link; the paths they
# would be are the app's own routes.
RedirectCode = Annotated[str, Path(json_schema_extra={"pattern": CODE_PATTERN})]


@router.get(
    "/{code}",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses={
        307: {
            "description": "To the link's target; the click is counted.",
            "headers": {"Location": {"description": "The target URL.", "schema": {"type": "string"}}},
        },
        404: {"model": Problem, "description": "No link with this code."},
        **UNAVAILABLE,
    },
)
async def follow(code: RedirectCode, request: Request) -> RedirectResponse:
    # The app state read here, not through app.api.deps: resolving three dependencies cost
    # FastAPI ~40 us per redirect, more than the handler, cache hit and click together
    # (scripts/bench-app --profile, and --against a tree with them back).
    state = request.state
    if not _CODE.match(code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such link")
    hit = await state.cache.get(code)
    if hit is None:
        read_started = monotonic()
        async with connection(request) as conn:
            row = await crud.get_link(conn, code)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such link")
        hit = (row["id"], row["url"])
        await state.cache.put(code, *hit, read_started=read_started)
    link_id, url = hit
    state.clicks.record(link_id, code)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
