"""The keep-alive race: a backend that closes an idle connection just as nginx reuses it.

nginx keeps idle connections to the replicas for NGINX_UPSTREAM_KEEPALIVE_TIMEOUT; the app keeps
them for KEEPALIVE_S. If the app's timeout is the shorter one, it can close a connection at the
very moment nginx sends a request on it: nginx retries an idempotent request elsewhere, but a POST
has gone, and the client gets a 502. Bursts of concurrent POSTs, spaced around each timeout, hit
that moment. The shipped pair (proxy shorter) gives no 502; a mistuned pair (backend shorter) does.
Both pairs are scaled down from 60 s / 75 s to keep the drill short (each burst waits out a
timeout); the race is the same.
"""

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests import figures
from tests.stack.drills.conftest import restore
from tests.stack.stacks import Stack

BURST = 24  # concurrent POSTs: as many kept-alive connections between nginx and the replicas
# Pauses around a timeout, in milliseconds. A burst's connections all went idle together, so it hits
# the window (a few milliseconds wide) with many requests or with none; where the window lies
# depends on how long a burst takes to come and go (measured: 4 to 39 ms before the nominal
# timeout on the 2-core machine). So the pauses step by a millisecond across a wider range,
# nearest to the middle of what was measured first.
WINDOW_MS = range(-80, 11)
SCAN_MS = sorted(WINDOW_MS, key=lambda ms: abs(ms + 20))


def pauses(timeout_s: int, offsets_ms: range | list[int]) -> list[float]:
    return [timeout_s + ms / 1000 for ms in offsets_ms]


def bursts(stack: Stack, gaps: list[float], until: int | None = None) -> Counter[int | str]:
    """A burst of BURST concurrent POSTs after each pause in `gaps` (until an answer `until`
    comes); the answers, counted."""
    clients = [stack.client() for _ in range(BURST)]

    def create(client: httpx.Client) -> int | str:
        try:
            return client.post("/api/links", json={"url": f"https://example.com/race/{uuid.uuid4().hex}"}).status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__

    answers: Counter[int | str] = Counter()
    with ThreadPoolExecutor(BURST) as pool:
        answers.update(pool.map(create, clients))  # opens the connections
        for gap in gaps:
            time.sleep(gap)
            answers.update(pool.map(create, clients))
            if until is not None and answers[until]:
                break
    for client in clients:
        client.close()
    return answers


def with_timeouts(stack: Stack, proxy_s: int, backend_s: int) -> Stack:
    """nginx and the replicas recreated with these idle timeouts (restored by `restore`)."""
    env = {"NGINX_UPSTREAM_KEEPALIVE_TIMEOUT": f"{proxy_s}s", "KEEPALIVE_S": str(backend_s)}
    stack.compose.env.update(env)
    stack.compose.run("up", "-d", "--wait", "app", "nginx", timeout=300)
    return stack


@pytest.fixture
def tuned(stack: Stack) -> Stack:
    yield stack
    for name in ("NGINX_UPSTREAM_KEEPALIVE_TIMEOUT", "KEEPALIVE_S"):
        stack.compose.env.pop(name, None)
    restore(stack)


def test_keepalive_race(tuned: Stack) -> None:
    """Shipped pair, scaled (proxy 1 s < backend 2 s): bursts around both timeouts, zero 502s.
    Mistuned (proxy 10 s > backend 1 s): bursts just past the backend's timeout produce 502s."""
    stack = with_timeouts(tuned, proxy_s=1, backend_s=2)
    right = bursts(stack, pauses(1, WINDOW_MS[::4]) + pauses(2, WINDOW_MS[::10]))
    stack = with_timeouts(tuned, proxy_s=10, backend_s=1)
    wrong = bursts(stack, pauses(1, SCAN_MS), until=502)
    figures.record(
        "failure drills", f"keep-alive race, proxy 1 s < backend 2 s: {sum(right.values())} POSTs, {dict(right)}"
    )
    figures.record(
        "failure drills", f"keep-alive race, proxy 10 s > backend 1 s: {sum(wrong.values())} POSTs, {dict(wrong)}"
    )
    assert set(right) == {201}, right
    assert wrong[502] > 0, f"the mistuned pair produced no 502 this time: {wrong}"
