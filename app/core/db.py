"""The asyncpg pool, opened with a bounded retry so a slow Postgres start is not a failure."""

import asyncio
import time

import asyncpg
import structlog

from app.core.config import DatabaseSettings, Settings

log = structlog.get_logger()

RETRYABLE = (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)
# What a request meets when Postgres is down, restarting, stalled or out of connections: a timeout
# (acquire, connect, statement), the connection refused or lost. "Not now", never "a bad request".
# InternalClientError: a query on a connection that Postgres' shutdown is tearing down ("cannot
# switch to state …; another operation is in progress"), seen in the Postgres restart drill.
UNAVAILABLE = (
    *RETRYABLE,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)


class DatabaseUnavailable(Exception):
    """Postgres stayed unreachable for the whole start-up window."""


async def wait_for_database(settings: DatabaseSettings) -> None:
    """Returns once Postgres accepts a login; raises DatabaseUnavailable after db_startup_timeout_s."""
    deadline = time.monotonic() + settings.db_startup_timeout_s
    delay = 0.25
    while True:
        try:
            conn = await asyncpg.connect(settings.database_dsn, timeout=settings.db_connect_timeout_s)
        except RETRYABLE as exc:
            if time.monotonic() + delay > deadline:
                where = f"{settings.database_url.hosts()[0].get('host')}:{settings.database_url.hosts()[0].get('port')}"
                raise DatabaseUnavailable(
                    f"Postgres at {where} unreachable after {settings.db_startup_timeout_s:g}s: {exc}"
                ) from None
            log.warning("database_unreachable_retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            await conn.close()
            return


async def open_pool(settings: Settings) -> asyncpg.Pool:
    await wait_for_database(settings)
    return await asyncpg.create_pool(
        settings.database_dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_connect_timeout_s,
        command_timeout=settings.db_command_timeout_s,
    )
