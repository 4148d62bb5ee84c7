"""A workshop's alert drill: faults switched in one replica reach every replica."""

from devservers import eventually
from tests.stack.stacks import Stack


def test_fault_switch_reaches_every_replica(stack: Stack, full_budget: None) -> None:
    """`python -m app.faults` in one container; within a second every replica fails the route."""
    faults = ("exec", "-T", "--index", "1", "app", "python", "-m", "app.faults")
    stack.compose.run(*faults, "set", "--error-rate", "1", "--route", "/api/stats")
    try:
        with stack.client() as client:

            def all_replicas_failing() -> bool:
                responses = [client.get("/api/stats/top") for _ in range(6)]
                return {r.status_code for r in responses} == {500} and len(
                    {r.headers["x-replica"] for r in responses}
                ) > 1

            eventually(all_replicas_failing, "injected 500s from more than one replica", timeout=10, interval=1.5)
            assert client.get("/api/links", params={"limit": 1}).status_code == 200
    finally:
        stack.compose.run(*faults, "clear")
    with stack.client() as client:
        eventually(
            lambda: {client.get("/api/stats/top").status_code for _ in range(6)} == {200},
            "every replica past the drill",
            timeout=10,
            interval=1.5,
        )
