"""The migration job: idempotent, safe to run concurrently, clear when Postgres is away."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devservers import PostgresServer
from tests.app.conftest import ROOT, sql


def migrate(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.migrate"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def fresh_db(env: dict[str, str], postgres: PostgresServer) -> Iterator[dict[str, str]]:
    sql(env, "CREATE DATABASE fresh")
    try:
        yield {**env, "DATABASE_URL": postgres.url.rsplit("/", 1)[0] + "/fresh"}
    finally:
        sql(env, "DROP DATABASE fresh WITH (FORCE)")


def test_concurrent_runs_then_a_rerun(fresh_db: dict[str, str]) -> None:
    """Three jobs at once all succeed, the schema is applied once, and a later run is a no-op."""
    jobs = [migrate(fresh_db) for _ in range(3)]
    outputs = [job.communicate(timeout=60)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0, 0], outputs
    applied = sum("Running upgrade  -> 0001" in output for output in outputs)
    assert applied == 1
    rerun = migrate(fresh_db)
    rerun.communicate(timeout=60)
    assert rerun.returncode == 0
    assert sql(fresh_db, "SELECT version_num FROM alembic_version") == "0001"


def test_unreachable_postgres_fails_with_one_line(env: dict[str, str]) -> None:
    bad = {**env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres", "DB_STARTUP_TIMEOUT_S": "1"}
    job = migrate(bad)
    output = job.communicate(timeout=30)[0]
    assert job.returncode == 1
    failure = json.loads(output.strip().splitlines()[-1])
    assert failure["event"] == "migration_failed"
    assert "unreachable after 1s" in failure["reason"]
