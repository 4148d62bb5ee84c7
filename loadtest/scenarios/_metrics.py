"""Locust's own figures for Prometheus (job "locust", prometheus/prometheus.yml).

Served by the master, or by a runner on its own, on LOADTEST_METRICS_PORT (9646, the port of
the community exporter; 0 turns it off). Workers report to the master and serve nothing.
Read at each scrape from Locust's live statistics, so the figures are the ones its UI shows.
"""

import os
from collections.abc import Iterator
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

QUANTILES = (0.5, 0.95, 0.99)


class LocustCollector(Collector):
    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def collect(self) -> Iterator[Metric]:
        runner = self.environment.runner
        if runner is None:
            return
        stats = runner.stats
        yield _gauge("locust_users", "Simulated users running.", runner.user_count)
        workers = runner.worker_count if isinstance(runner, MasterRunner) else 0
        yield _gauge("locust_workers", "Workers connected to the master (0: a runner on its own).", workers)
        running = runner.state in ("spawning", "running")
        yield _gauge("locust_running", "1 while a test runs (spawning or running).", int(running))

        labels = ["method", "name"]
        requests = CounterMetricFamily("locust_requests", "Requests sent, by Locust's name.", labels=labels)
        failures = CounterMetricFamily("locust_failures", "Requests failed, by Locust's name.", labels=labels)
        for entry in stats.entries.values():
            requests.add_metric([entry.method or "", entry.name], entry.num_requests)
            failures.add_metric([entry.method or "", entry.name], entry.num_failures)
        yield requests
        yield failures

        percentiles = GaugeMetricFamily(
            "locust_response_time_seconds",
            "Response time of all requests over Locust's last ~10 s (its UI's current percentiles).",
            labels=["quantile"],
        )
        for quantile in QUANTILES:
            millis = stats.total.get_current_response_time_percentile(quantile) if running else None
            percentiles.add_metric([str(quantile)], (millis or 0) / 1000)
        yield percentiles
        rps = stats.total.current_rps
        yield _gauge("locust_requests_per_second", "Requests per second, Locust's current figure.", rps)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


@events.init.add_listener
def _serve(environment: Environment, **_: Any) -> None:
    port = int(os.environ.get("LOADTEST_METRICS_PORT", "9646"))
    if port == 0 or isinstance(environment.runner, WorkerRunner):
        return
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(environment))
    start_http_server(port, registry=registry)
