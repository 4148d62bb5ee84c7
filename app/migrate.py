"""The migration job: `python -m app.migrate` waits for Postgres (bounded), then upgrades the
schema to the newest revision. Safe to run twice, and concurrently (env.py takes a lock)."""

import asyncio
import sys
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config

from app.core.config import DatabaseSettings, load_or_exit
from app.core.db import DatabaseUnavailable, wait_for_database
from app.core.logging import configure_logging

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: DatabaseSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["dsn"] = settings.database_dsn
    return config


def main() -> None:
    settings = load_or_exit(DatabaseSettings)
    configure_logging("INFO", "migrate")
    log = structlog.get_logger()
    try:
        asyncio.run(wait_for_database(settings))
    except DatabaseUnavailable as exc:
        log.error("migration_failed", reason=str(exc))
        sys.exit(1)
    command.upgrade(alembic_config(settings), "head")
    log.info("migrations_applied")


if __name__ == "__main__":
    main()
