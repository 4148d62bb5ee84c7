"""Alembic environment: asyncpg through SQLAlchemy, one transaction, one lock.

The advisory lock makes concurrent runs (two deploys, or `scale migrate=2`) queue up: the
second sees the first's work and finds nothing left to do.
"""

import asyncio

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

# Any constant shared by every release of this app.
MIGRATION_LOCK_ID = 727_274_001


def _run(connection: Connection) -> None:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


async def _main() -> None:
    dsn = context.config.attributes["dsn"].replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(dsn, poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_main())
