"""The app as the image runs it: Gunicorn, several workers, real signals."""

import json
import runpy
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import redis
from uvicorn import Config, Server
from websockets.sync.client import connect

from app.core.config import get_settings
from app.services.faults import FAULTS_KEY, POLL_INTERVAL_S
from devservers import eventually
from tests.app.conftest import ADMIN_TOKEN, make_settings
from tests.app.live import ROOT, LiveServer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_every_worker(live: LiveServer, clean: None) -> None:
    """After N requests the counters say N, whichever of the two workers served each one."""
    labels = '{method="GET",route="/api/stats/top",status="200"}'
    series = ("http_requests_total" + labels, "http_request_duration_seconds_count" + labels)
    before = [sample(httpx.get(f"{live.url}/metrics").text, name) for name in series]
    pids = set()
    for _ in range(40):
        # A new connection each time, so the kernel spreads them over the workers.
        with httpx.Client() as client:
            assert client.get(f"{live.url}/api/stats/top").status_code == 200
    for line in live.output().splitlines():
        entry = json.loads(line)
        if entry.get("route") == "/api/stats/top":
            pids.add(entry["pid"])
    assert len(pids) == 2, "both workers should have served requests"
    metrics = httpx.get(f"{live.url}/metrics").text
    assert [sample(metrics, name) for name in series] == [count + 40 for count in before]
    assert sample(metrics, "db_pool_max_connections") == 2 * 5
    assert 'http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/stats/top",status="200"}' in metrics


def test_in_progress_requests_add_up_across_workers(live: LiveServer, migrated: dict[str, str], clean: None) -> None:
    """http_requests_in_progress counts the slow requests in flight on both workers, and drops when they end."""
    httpx.put(f"{live.url}/api/admin/faults", json={"latency_ms": 5000, "route": "/api/stats"}, headers=ADMIN)
    try:
        eventually(lambda: httpx.get(f"{live.url}/api/admin/faults", headers=ADMIN).json()["latency_ms"], "switch on")
        time.sleep(2 * POLL_INTERVAL_S)  # the API reads Redis; each worker's poller has seen it by now
        # New connections, so the kernel spreads them over the two workers.
        slow = [threading.Thread(target=lambda: httpx.get(f"{live.url}/api/stats/top", timeout=15)) for _ in range(6)]
        for thread in slow:
            thread.start()
        # 6 in flight + the scrape itself; each worker's count lands within one flush interval.
        eventually(
            lambda: sample(httpx.get(f"{live.url}/metrics").text, "http_requests_in_progress") >= 7,
            "six slow requests counted",
            timeout=4,  # within the requests' 5 s, with room for a loaded machine
        )
        for thread in slow:
            thread.join()
    finally:
        redis.Redis.from_url(make_settings(migrated).redis_dsn).delete(FAULTS_KEY)
    eventually(
        lambda: sample(httpx.get(f"{live.url}/metrics").text, "http_requests_in_progress") == 1,
        "only the scrape in flight",
    )


def test_every_output_line_is_json(live: LiveServer) -> None:
    """Gunicorn's, Uvicorn's and the app's lines alike: one JSON object per line."""
    lines = live.output().splitlines()
    entries = [json.loads(line) for line in lines]
    loggers = {entry.get("logger") for entry in entries}
    assert {"gunicorn.error", "uvicorn.error"} <= loggers
    assert any(entry["event"] == "started" and entry["event_loop"] == "uvloop.Loop" for entry in entries)


def test_click_stream_crosses_processes(migrated: dict[str, str], clean: None, tmp_path: Path) -> None:
    """A WebSocket on one app process receives the click served by another process."""
    a = LiveServer(migrated, tmp_path, workers=1, REPLICA_NAME="replica-a")
    b = LiveServer(migrated, tmp_path, workers=1, REPLICA_NAME="replica-b")
    try:
        a.start()
        b.start()
        httpx.post(f"{b.url}/api/links", json={"url": "https://example.com", "code": "wsdemo"}).raise_for_status()
        with connect(f"ws://127.0.0.1:{a.port}/ws/clicks", open_timeout=5) as ws:
            eventually(lambda: "websocket_connections 1.0" in httpx.get(f"{a.url}/metrics").text, "socket counted")
            assert httpx.get(f"{b.url}/wsdemo").status_code == 307
            event = json.loads(ws.recv(timeout=10))
        assert event["code"] == "wsdemo"
        assert event["replica"] == "replica-b"
    finally:
        a.stop()
        b.stop()


def test_unreachable_postgres_exits_with_a_reason(migrated: dict[str, str], tmp_path: Path) -> None:
    """With Postgres unreachable, start-up retries for the bounded time then exits non-zero with one reason line."""
    env = {**migrated, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres", "DB_STARTUP_TIMEOUT_S": "1"}
    server = LiveServer(env, tmp_path, workers=1).start(wait_ready=False)
    assert server.process is not None
    assert server.process.wait(30) != 0
    entries = [json.loads(line) for line in server.output().splitlines()]
    failures = [entry for entry in entries if entry["event"] == "startup_failed"]
    assert len(failures) == 1
    assert "127.0.0.1:1 unreachable after 1s" in failures[0]["reason"]


def test_the_stop_budget_comes_from_the_settings(migrated: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Gunicorn's graceful_timeout is GRACEFUL_TIMEOUT_S, and each worker's Uvicorn stops waiting for
    requests in flight after SHUTDOWN_DRAIN_S (uvicorn-worker passes no drain timeout on itself)."""
    for name, value in {**migrated, "GRACEFUL_TIMEOUT_S": "17", "SHUTDOWN_DRAIN_S": "7.5"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        conf = runpy.run_path(str(ROOT / "app" / "gunicorn.conf.py"))
    finally:
        get_settings.cache_clear()
    assert conf["graceful_timeout"] == 17
    worker = SimpleNamespace(config=Config(app=None))
    conf["post_worker_init"](worker)
    assert Server(worker.config).config.timeout_graceful_shutdown == 7.5
