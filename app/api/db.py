"""Postgres for the routes: a pooled connection, waited for at most DB_ACQUIRE_TIMEOUT_S.

Postgres down, restarting, stalled or out of connections answers 503 (app/api/errors.py): never a
500, never a request queued without bound.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import Request

from app.api.errors import DATABASE_NOT_ANSWERING, Unavailable
from app.core.db import UNAVAILABLE
from app.core.outages import POSTGRES


@asynccontextmanager
async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    state = request.state
    try:
        # asyncpg bounds the connection's reset on release by the same timeout.
        async with state.pool.acquire(timeout=state.settings.db_acquire_timeout_s) as conn:
            yield conn
    except UNAVAILABLE as exc:
        raise Unavailable(DATABASE_NOT_ANSWERING, POSTGRES) from exc
    POSTGRES.answered()
