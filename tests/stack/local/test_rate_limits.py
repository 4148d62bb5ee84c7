"""Rate limits per real client IP: the burst gets through, then 429s, whatever the client claims."""

import asyncio
import secrets
from collections import Counter

import httpx
import pytest

from tests.stack.local.conftest import BURST
from tests.stack.local.test_edge import assert_security_headers
from tests.stack.stacks import Stack

SENT = 60


def burst(stack: Stack, spoof: bool) -> list[httpx.Response]:
    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=SENT)
        async with httpx.AsyncClient(
            base_url=stack.https, verify=stack.ssl_context(), limits=limits, timeout=15
        ) as client:

            def headers() -> dict[str, str]:
                return {"X-Forwarded-For": f"203.0.113.{secrets.randbelow(250)}"} if spoof else {}

            return await asyncio.gather(*(client.get("/api/links?limit=1", headers=headers()) for _ in range(SENT)))

    return asyncio.run(send_all())


@pytest.mark.parametrize("spoof", [False, True], ids=["plain", "spoofed-x-forwarded-for"])
def test_burst_then_429(stack: Stack, full_budget: None, spoof: bool) -> None:
    """One request plus the burst pass (a token may refill meanwhile); the rest get a proper 429."""
    responses = burst(stack, spoof)
    counts = Counter(response.status_code for response in responses)
    assert set(counts) == {200, 429}, counts
    assert BURST + 1 <= counts[200] <= BURST + 3, counts
    limited = next(response for response in responses if response.status_code == 429)
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["detail"].startswith("Too many requests")
    assert_security_headers(limited)


def test_probes_bypass_the_limit(stack: Stack, full_budget: None) -> None:
    with stack.client() as client:
        statuses = {client.get("/health").status_code for _ in range(BURST * 2)}
    assert statuses == {200}
