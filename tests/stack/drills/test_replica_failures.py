"""One replica killed, out of memory, or stopped in the middle of a slow flush."""

import subprocess
import time

from devservers import eventually
from tests.stack.drills.conftest import assert_every_click_stored, docker, psql, replica_containers, report
from tests.stack.drills.traffic import CREATED_URL_PREFIX, Traffic
from tests.stack.stacks import Stack

IDEMPOTENT = ("health", "redirect", "read")


def test_replica_killed(stack: Stack, traffic: Traffic) -> None:
    """`docker kill` (SIGKILL): nginx retries idempotent requests elsewhere, so clients see no
    error; a creation fails only if it was in flight on that replica, and none is applied twice."""
    victim = replica_containers(stack)[0]
    with traffic.running() as record:
        record.mark("kill")
        docker("kill", victim)
        record.mark("killed")  # the signal lands somewhere in between
        time.sleep(8)  # past nginx's next DNS answer (valid=5s): the dead address is gone
    created = record.created_urls()
    doubles = psql(
        stack,
        f"SELECT url FROM links WHERE url LIKE '{CREATED_URL_PREFIX}%' GROUP BY url HAVING count(*) > 1",
    )
    stored = set(psql(stack, f"SELECT url FROM links WHERE url LIKE '{CREATED_URL_PREFIX}%'").split())
    failed_creates = record.failures(("create",))
    figures = report(stack, record, "docker kill of one replica", f"creations failed: {len(failed_creates)}")
    assert not record.failures(IDEMPOTENT), figures
    assert not doubles, f"applied twice: {doubles}"
    assert {url for url, status in created.items() if status == 201} <= stored
    for outcome in failed_creates:  # in flight when the replica died
        assert outcome.started < record.marks["killed"] and outcome.ended > record.marks["kill"], figures
    assert len(failed_creates) <= traffic.clients, figures


def test_flush_in_flight_at_sigterm(stack: Stack, traffic: Traffic, links: list[str]) -> None:
    """SIGTERM to a replica while its click flush waits on a slow Postgres (a lock held on
    `links`): the replica drains and flushes before it exits, so every acknowledged click is stored."""
    victim = replica_containers(stack)[0]
    with traffic.running(mix=("redirect",)) as record:
        # The flush's UPDATE of links.clicks waits for this lock; redirects (reads) do not.
        locker = stack.compose.popen(
            "exec", "-T", "postgres", "psql", "-U", "app", "-d", "app", "-c",
            "BEGIN; LOCK TABLE links IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;",
        )  # fmt: skip
        time.sleep(1)
        record.mark("sigterm")
        stopped = time.monotonic()
        docker("stop", "--time", "30", victim)
        stop_s = time.monotonic() - stopped
        locker.wait(timeout=30)
    exit_code = docker("inspect", "--format", "{{.State.ExitCode}}", victim)
    figures = report(
        stack,
        record,
        "SIGTERM during a slow click flush",
        f"the replica stopped in {stop_s:.1f} s, exit code {exit_code}",
    )
    assert exit_code == "0", figures
    assert not record.failures(), figures
    assert_every_click_stored(stack, record, links)


def test_worker_out_of_memory(stack: Stack, traffic: Traffic) -> None:
    """A fault makes one replica's worker take more memory than the replica's limit: the kernel
    kills that worker, Gunicorn starts another in the same container, and clients see no error on
    idempotent requests (nginx retries them); a creation fails only if it was in flight there."""
    victim = replica_containers(stack)[0]
    started = docker("inspect", "--format", "{{.State.StartedAt}}", victim)
    hostname = docker("inspect", "--format", "{{.Config.Hostname}}", victim)
    with traffic.running() as record:
        record.mark("fault")
        fault = subprocess.run(
            ["docker", "exec", victim, "python", "-m", "app.faults", "memory", "--mb", "1024"],
            capture_output=True,
            text=True,
        )
        record.mark("killed")
        time.sleep(5)
    logs = docker("logs", "--since", "1m", victim)
    failed_creates = record.failures(("create",))
    figures = report(
        stack,
        record,
        "a worker past the memory limit",
        f"the fault's answer: {fault.stderr.strip() or fault.stdout.strip()}",
        f"creations failed: {len(failed_creates)}",
    )
    assert fault.returncode == 1 and "gave no answer" in fault.stderr, fault
    assert "Perhaps out of memory?" in logs, logs[-2000:]
    assert docker("inspect", "--format", "{{.State.StartedAt}}", victim) == started, "the container was restarted"
    assert not record.failures(IDEMPOTENT), figures
    for outcome in failed_creates:  # in flight while the worker took the memory, and died
        assert record.marks["fault"] < outcome.ended and outcome.started < record.marks["killed"], figures
    assert len(failed_creates) <= traffic.clients, figures
    with stack.client() as client:  # the replica serves again, with its new worker
        # (nginx leaves it out for fail_timeout, 10 s, after the failed tries)
        eventually(
            lambda: hostname in {client.get("/health").headers["x-replica"] for _ in range(10)},
            "the replica serving again",
            30,
            1,
        )
