"""The app's flows end to end through nginx: links, redirects, stats and the click stream."""

import json
import secrets

from devservers import eventually
from tests.stack.stacks import Stack


def test_create_redirect_stats(stack: Stack, full_budget: None) -> None:
    """Create a link, follow it, and find its clicks in the metadata and the top list."""
    code = f"flow{secrets.token_hex(3)}"
    with stack.client() as client:
        created = client.post("/api/links", json={"url": "https://example.com/flow", "code": code})
        assert created.status_code == 201, created.text
        assert created.json()["short_url"] == f"{stack.https}/{code}"
        for _ in range(3):
            assert client.get(f"/{code}").status_code == 307
        eventually(lambda: client.get(f"/api/links/{code}").json()["clicks"] == 3, "3 clicks in the metadata", 15, 0.5)
        top = client.get("/api/stats/top", params={"window": "5m"}).json()["items"]
    assert {"code": code, "url": "https://example.com/flow", "clicks": 3} in top


def test_click_stream_crosses_replicas(stack: Stack, full_budget: None) -> None:
    """A WebSocket through nginx on one replica receives a click another replica served."""
    code = f"ws{secrets.token_hex(3)}"
    with stack.client() as client:
        client.post("/api/links", json={"url": "https://example.com/ws", "code": code}).raise_for_status()
        with stack.websocket("/ws/clicks") as ws:
            listener = ws.response.headers["X-Replica"]
            # least_conn prefers replicas without the open socket; a few tries are enough.
            for _ in range(20):
                served_by = client.get(f"/{code}").headers["x-replica"]
                if served_by != listener:
                    break
            assert served_by != listener, "every click was served by the listening replica"
            events = []
            while not any(e["replica"] == served_by for e in events):
                events.append(json.loads(ws.recv(timeout=10)))
    assert all(event["code"] == code for event in events)
