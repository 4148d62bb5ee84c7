"""Prometheus metrics, correct under several Gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (it must be, before Python starts: the image does it),
every worker writes its samples to files there and a scrape merges them; gauges use
`livesum` so that dead workers drop out.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

UNMATCHED_ROUTE = "<unmatched>"

# Both are written once per batch of requests (app/core/request_telemetry.py), not per request.
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled, by route template.", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP requests handled, by route template: time from request start to the end of the response body.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Set at each telemetry flush from a per-worker count (no shared-file write per request);
# livesum adds up the replica's live workers: the figure least_conn balances on.
HTTP_IN_PROGRESS = Gauge(
    "http_requests_in_progress", "HTTP requests being served (WebSockets not counted).", multiprocess_mode="livesum"
)
READINESS = Gauge(
    "readiness_check_ok",
    "1 if the last readiness check reached the dependency, else 0.",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)
DB_POOL_IN_USE = Gauge("db_pool_connections_in_use", "Postgres connections checked out.", multiprocess_mode="livesum")
DB_POOL_SIZE = Gauge("db_pool_connections", "Postgres connections open in the pools.", multiprocess_mode="livesum")
DB_POOL_MAX = Gauge("db_pool_max_connections", "Upper bound of the pools.", multiprocess_mode="livesum")
CACHE_REQUESTS = Counter("cache_requests_total", "Link cache look-ups.", ["result"])
WEBSOCKETS = Gauge("websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum")
CLICKS_PENDING = Gauge("clicks_pending_flush", "Clicks acknowledged, not yet in Postgres.", multiprocess_mode="livesum")
CLICKS_FLUSHED = Counter("clicks_flushed_total", "Clicks written to Postgres.")
CLICK_FLUSH_FAILURES = Counter("click_flush_failures_total", "Failed click flushes (the batch is kept and retried).")
CLICKS_DROPPED = Counter("clicks_dropped_total", "Clicks dropped because the pending buffer was full.")
ACCESS_LINES_DROPPED = Counter(
    "access_lines_dropped_total", "Access lines dropped because stdout took none for longer than the buffer holds."
)
FAULTS_INJECTED = Counter("faults_injected_total", "Requests given an injected fault.", ["kind"])


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
