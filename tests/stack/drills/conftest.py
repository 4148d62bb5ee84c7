"""The failure drills' stack: compose.yaml alone, up once for the package, under steady traffic.

The rate limits are raised for this stack only: the drills' traffic comes from the host, where
every client is one address (README "Rate limits"), and a drill measures failures, not 429s.
Each drill prints its figures at the end of the session.
"""

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from devservers import eventually
from tests import figures
from tests.stack.drills.traffic import Record, Traffic
from tests.stack.stacks import Stack, local_stack

PROJECT = "linkstack-drills"
REPLICAS = 3
DRILL_ENV = {
    "RATE_LIMIT": "2000r/s",
    "RATE_LIMIT_BURST": "2000",
    "WRITE_RATE_LIMIT": "500r/s",
    "WRITE_RATE_LIMIT_BURST": "500",
}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with local_stack(PROJECT, 203, tmp_path_factory.mktemp("drills"), env=DRILL_ENV) as stack:
        yield stack


def psql(stack: Stack, query: str) -> str:
    """A query as the app's database user, inside the Postgres container."""
    return stack.compose.run("exec", "-T", "postgres", "psql", "-U", "app", "-d", "app", "-tAc", query).stdout.strip()


@pytest.fixture
def links(stack: Stack) -> list[str]:
    """Fresh links for one drill, each redirected once so that it sits in the cache."""
    codes = [f"d{secrets.token_hex(4)}" for _ in range(8)]
    with stack.client() as client:
        for code in codes:
            client.post("/api/links", json={"url": f"https://example.com/{code}", "code": code}).raise_for_status()
            assert client.get(f"/{code}").status_code == 307
    return codes


@pytest.fixture
def traffic(stack: Stack, links: list[str]) -> Iterator[Traffic]:
    """The drill's traffic; afterwards the stack is put back as the next drill expects it."""
    yield Traffic(stack, links)
    restore(stack)


def restore(stack: Stack) -> None:
    """Every service up and healthy, REPLICAS app replicas, as `up --wait` leaves it."""
    stack.compose.run("up", "-d", "--wait", "--scale", f"app={REPLICAS}", timeout=300)


def clicks_stored(stack: Stack, codes: list[str]) -> dict[str, int]:
    rows = psql(stack, f"SELECT code, clicks FROM links WHERE code IN ({', '.join(repr(c) for c in codes)})")
    return {code: int(clicks) for code, clicks in (row.split("|") for row in rows.splitlines())}


def assert_every_click_stored(stack: Stack, record: Record, links: list[str]) -> None:
    """Clicks acknowledged by a 307 = clicks in Postgres (each link was clicked once before the drill)."""
    acknowledged = {code: record.clicks_acknowledged()[code] + 1 for code in links}
    try:
        eventually(lambda: clicks_stored(stack, links) == acknowledged, "every acknowledged click stored", 20, 0.5)
    except AssertionError:
        stored = clicks_stored(stack, links)
        raise AssertionError(
            f"acknowledged {sum(acknowledged.values())} clicks, Postgres has {sum(stored.values())}: "
            + ", ".join(f"{code} {acknowledged[code]}/{stored.get(code)}" for code in links)
        ) from None


def replica_containers(stack: Stack) -> list[str]:
    return stack.containers("app")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def report(stack: Stack, record: Record, name: str, *extra: str) -> str:
    """The drill's figures, printed at the end of the session and returned for assertion messages
    (with nginx's lines of the failed requests and its errors of the last minute)."""
    lines = [record.summary(name), *(f"  {line}" for line in extra)]
    figures.record("failure drills", "\n".join(lines))
    failed_ids = {o.request_id for o in record.failures()}
    if failed_ids:
        logs = stack.compose.run("logs", "--no-color", "--no-log-prefix", "--since", "1m", "nginx").stdout
        lines += ["nginx on the failed requests, and its errors:"]
        lines += [line for line in logs.splitlines() if "[error]" in line or any(f'"{i}"' in line for i in failed_ids)]
    return "\n".join(lines)
