"""Postgres restarted, Redis stopped, under traffic: what clients see, and that nothing is lost."""

import json
import time

from devservers import eventually
from tests.stack.drills.conftest import assert_every_click_stored, docker, replica_containers, report
from tests.stack.drills.traffic import Traffic
from tests.stack.stacks import Stack

OUTAGE_S = 5
# A write waits DB_ACQUIRE_TIMEOUT_S (2 s) at most for a connection, then answers 503.
FAIL_FAST_S = 3.0


def started_at(containers: list[str]) -> list[str]:
    return [docker("inspect", "--format", "{{.State.StartedAt}}", c) for c in containers]


def wait_ready(stack: Stack, what: str) -> float:
    """Seconds until /ready answers 200 through nginx (every replica it reaches)."""
    begun = time.monotonic()
    with stack.client() as client:
        eventually(lambda: all(client.get("/ready").status_code == 200 for _ in range(6)), what, 60, 0.2)
    return time.monotonic() - begun


def outage_lines(stack: Stack, event: str) -> list[dict]:
    """The replicas' log lines of a Redis outage (app/core/outages.py) in the last two minutes."""
    logs = stack.compose.run("logs", "--no-color", "--no-log-prefix", "--since", "2m", "app").stdout
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event and line.get("dependency") == "redis"]


def test_postgres_restart(stack: Stack, traffic: Traffic, links: list[str]) -> None:
    """Readiness 503 during the outage; writes fail fast with a 503 that says why; cached links keep
    redirecting; everything recovers without restarting a replica; no acknowledged click is lost."""
    replicas = replica_containers(stack)
    before = started_at(replicas)
    with traffic.running() as record, stack.client() as probe:
        record.mark("stop")
        stack.compose.run("stop", "postgres")
        time.sleep(OUTAGE_S)
        readiness = probe.get("/ready")
        record.mark("start")
        stack.compose.run("start", "postgres")
        recovery_s = wait_ready(stack, "ready again after Postgres came back")
        record.mark("recovered")
    failed = record.failures()
    slowest_failure = max((o.ended - o.started for o in failed), default=0.0)
    figures = report(
        stack,
        record,
        "Postgres restarted",
        f"outage {record.marks['start'] - record.marks['stop']:.1f} s; ready again {recovery_s:.1f} s after start;"
        f" slowest failed answer {slowest_failure:.3f} s",
    )
    assert readiness.status_code == 503, readiness.text
    assert not record.failures(("health", "redirect")), figures
    assert record.failures(("create",)), "no write met the outage: the drill proved nothing"
    for outcome in failed:  # reads and writes: a quick 503 that says why, and only during the outage
        assert outcome.status == 503 and "database is not answering" in outcome.detail, outcome
        assert outcome.ended - outcome.started < FAIL_FAST_S, outcome
        assert record.marks["stop"] < outcome.ended and outcome.started < record.marks["recovered"], outcome
    assert started_at(replicas) == before, "a replica was restarted"
    assert_every_click_stored(stack, record, links)


def test_redis_stopped(stack: Stack, traffic: Traffic, links: list[str]) -> None:
    """Redirects are served from Postgres meanwhile (degraded, logged once per outage and worker,
    not per request), no click is lost, and the cache comes back by itself."""
    with traffic.running() as record:
        record.mark("stop")
        stack.compose.run("stop", "redis")
        time.sleep(OUTAGE_S)
        record.mark("start")
        stack.compose.run("start", "redis")
        recovery_s = wait_ready(stack, "ready again after Redis came back")
        record.mark("recovered")
    redirects = [o for o in record.between("stop", "start") if o.kind == "redirect"]
    workers = {(e["replica"], e["pid"]) for e in outage_lines(stack, "dependency_down")}
    # Each worker's fault poller asks Redis every second: the end of the outage is logged by then.
    eventually(
        lambda: {(e["replica"], e["pid"]) for e in outage_lines(stack, "dependency_recovered")} >= workers,
        "every worker that logged the outage logged its end",
        10,
        0.5,
    )
    down, recovered = outage_lines(stack, "dependency_down"), outage_lines(stack, "dependency_recovered")
    figures = report(
        stack,
        record,
        "Redis stopped",
        f"outage {record.marks['start'] - record.marks['stop']:.1f} s; ready again {recovery_s:.1f} s after start;"
        f" redirects meanwhile {len(redirects)}; outage log lines: {len(down)} down, {len(recovered)} recovered",
    )
    assert not record.failures(), figures
    assert len(redirects) > 50, "too little traffic met the outage"
    # Once per worker, whatever the number of requests; twice at most, when Redis, back, still
    # answers LOADING for a moment (a short outage of its own).
    assert workers and len(down) <= 2 * len(workers), down
    assert_every_click_stored(stack, record, links)
