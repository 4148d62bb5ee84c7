"""Load balancing over the replicas: all serve, scaling needs no reload (a killed one: tests/stack/drills/)."""

import subprocess
from collections import Counter

from devservers import eventually
from tests.stack.stacks import Stack


def replicas_serving(stack: Stack, requests: int) -> Counter[str]:
    """Which replica answered each request (X-Replica; /health is not rate-limited)."""
    with stack.client() as client:
        return Counter(client.get("/health").headers["x-replica"] for _ in range(requests))


def container_hostnames(stack: Stack) -> set[str]:
    ids = stack.containers("app")
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Config.Hostname}}", *ids], capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def nginx_state(stack: Stack) -> tuple[str, str]:
    """nginx's container start time and master pid: a restart or re-exec would change them."""
    container = stack.containers("nginx")[0]
    started = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.StartedAt}}", container], capture_output=True, text=True, check=True
    ).stdout
    master = subprocess.run(
        ["docker", "exec", container, "cat", "/tmp/nginx.pid"], capture_output=True, text=True, check=True
    ).stdout
    return started.strip(), master.strip()


def test_every_replica_serves(stack: Stack) -> None:
    counts = replicas_serving(stack, 60)
    assert set(counts) == container_hostnames(stack)
    assert len(counts) == 3
    assert min(counts.values()) >= 10, counts


def test_scaling_needs_no_reload(stack: Stack) -> None:
    """--scale app=5 as the README has it: the new replicas get traffic through the same nginx,
    never reloaded, and the running ones are left alone (this stack was started with `up --build`,
    after which a plain `up` recreates them all at once: README, "Rollouts")."""
    before = nginx_state(stack)
    running = set(stack.containers("app"))
    try:
        stack.compose.run("up", "-d", "--wait", "--no-recreate", "--scale", "app=5", timeout=300)
        eventually(
            lambda: (
                set(replicas_serving(stack, 50)) == container_hostnames(stack) and len(container_hostnames(stack)) == 5
            ),
            "all 5 replicas serving",
            timeout=30,
            interval=1,
        )
        logs = stack.compose.run("logs", "--no-color", "nginx").stdout
        assert nginx_state(stack) == before
        assert "reconfiguring" not in logs and "signal process started" not in logs
        assert running <= set(stack.containers("app")), "a running replica was recreated"
    finally:
        stack.compose.run("up", "-d", "--wait", "--no-recreate", "--scale", "app=3", timeout=300)
