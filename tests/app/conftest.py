"""The app against a real Postgres and a real Redis, started once per session."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient

import app.core.request_telemetry as request_telemetry
from app.core import outages
from app.core.config import Settings
from app.main import create_app
from devservers import PG_PASSWORD, REDIS_PASSWORD, PostgresServer, RedisServer
from tests.app.live import LiveServer

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def env(postgres: PostgresServer, redis_server: RedisServer) -> dict[str, str]:
    """The environment a deployment would give the app (secrets as plain variables here)."""
    return {
        "DATABASE_URL": postgres.url,
        "DATABASE_PASSWORD": PG_PASSWORD,
        "REDIS_URL": redis_server.url,
        "REDIS_PASSWORD": REDIS_PASSWORD,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "CLICK_FLUSH_INTERVAL_S": "0.05",
        "DB_STARTUP_TIMEOUT_S": "5",
    }


@pytest.fixture(scope="session")
def migrated(env: dict[str, str]) -> dict[str, str]:
    subprocess.run(
        [sys.executable, "-m", "app.migrate"], env={**os.environ, **env}, cwd=ROOT, check=True, capture_output=True
    )
    return env


def make_settings(env: dict[str, str], **overrides: object) -> Settings:
    values = {key.lower(): value for key, value in env.items()}
    return Settings(**{**values, "replica_name": "test-replica", **overrides})


@pytest.fixture
def settings(migrated: dict[str, str]) -> Settings:
    return make_settings(migrated)


def sql(env: dict[str, str], query: str) -> object:
    """Runs one statement on the test database and returns its first value."""

    async def run() -> object:
        conn = await asyncpg.connect(make_settings(env).database_dsn)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def clean(migrated: dict[str, str]) -> None:
    """Every test starts with no links, no clicks and an empty Redis."""
    sql(migrated, "TRUNCATE links, clicks")
    redis.Redis.from_url(make_settings(migrated).redis_dsn).flushall()


@pytest.fixture
def client(settings: Settings, clean: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def live(migrated: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app under Gunicorn with two workers."""
    server = LiveServer(migrated, tmp_path_factory.mktemp("live"), workers=2)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Access lines as the telemetry writes them."""
    batches: list[bytes] = []

    def write_lines(data: bytearray, wait_s: float) -> int:
        batches.append(bytes(data))
        return len(data)

    monkeypatch.setattr(request_telemetry, "write_lines", write_lines)
    return batches


@pytest.fixture(autouse=True)
def no_outage_carried_over() -> None:
    """Each test starts with Postgres and Redis in good standing: the outage trackers are per process."""
    for outage in (outages.POSTGRES, outages.REDIS):
        outage.__init__(outage._dependency)
