"""Uniqueness under concurrent creation is decided by the database, across workers."""

import asyncio
from collections import Counter

import httpx
import pytest
from fastapi.testclient import TestClient

from app import crud
from tests.app.live import LiveServer

N = 60


async def _post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=N)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        return await asyncio.gather(*(client.post("/api/links", json=body) for body in bodies))


def test_same_custom_code_at_once(live: LiveServer, clean: None) -> None:
    """N simultaneous requests for one code: exactly one 201, the rest 409."""
    responses = asyncio.run(
        _post_all(live.url, [{"url": f"https://example.com/{i}", "code": "race"} for i in range(N)])
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: N - 1}


def test_generated_codes_are_unique(live: LiveServer, clean: None) -> None:
    """N simultaneous creations get N distinct codes."""
    responses = asyncio.run(_post_all(live.url, [{"url": f"https://example.com/{i}"} for i in range(N)]))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["code"] for r in responses}) == N


def test_collisions_are_retried(monkeypatch: pytest.MonkeyPatch, client: TestClient) -> None:
    """A generated code that is taken is retried with another, not reported as a conflict."""

    first = client.post("/api/links", json={"url": "https://example.com", "code": "AAAAAAA"}).json()
    letters = iter("A" * 7 + "B" * 7)
    monkeypatch.setattr(crud.secrets, "choice", lambda _: next(letters))
    second = client.post("/api/links", json={"url": "https://example.com"})
    assert second.status_code == 201
    assert (first["code"], second.json()["code"]) == ("AAAAAAA", "BBBBBBB")
