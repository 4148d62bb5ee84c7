"""Load balancing: how nginx's least_conn spreads requests over the app replicas.

least_conn sends each request to the replica with the fewest requests in flight, so the
in-progress gauge (http_requests_in_progress, the sum over a replica's workers) should stay
level across replicas while a slow replica gets a smaller share of the requests.
"""

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable
from grafana_foundation_sdk.models import dashboard

from .common import (
    PROMETHEUS,
    bargauge_panel,
    dashboard_base,
    prom,
    section,
    share,
    status_panel,
    timeseries_panel,
)

UID = "linkstack-load-balancing"

# Matches the replicas chosen in the instance variable (all of them by default).
INSTANCE = 'instance=~"$instance"'


def instance_variable() -> QueryVariable:
    return (
        QueryVariable("instance")
        .label("Replica")
        .description("App replicas (address:port), as Prometheus' DNS discovery finds them.")
        .datasource(PROMETHEUS)
        .query('label_values(up{job="app"}, instance)')
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.NATURAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def build() -> Dashboard:
    return (
        dashboard_base(
            UID, "linkstack / Load balancing", "Requests, requests in flight, latency and errors per app replica."
        )
        .with_variable(instance_variable())
        .with_row(section("least_conn at a glance"))
        .with_panel(
            bargauge_panel(
                "Share of requests per replica",
                "Each replica's share of the requests of the last minute (instance:http_requests:rate1m, probes "
                "and scrapes included: every replica gets the same of those). With one slow replica, least_conn "
                "gives it less.",
                "percentunit",
                prom(share(f"instance:http_requests:rate1m{{{INSTANCE}}}"), "{{instance}}", instant=True),
                max_value=1,
            )
        )
        .with_panel(
            bargauge_panel(
                "Requests in progress now",
                "Requests each replica is serving now, all its workers together. least_conn counts nginx's "
                "open requests per replica, which this follows: it should stay level across replicas.",
                "none",
                prom(f'http_requests_in_progress{{job="app", {INSTANCE}}}', "{{instance}}", instant=True),
            )
        )
        .with_panel(
            status_panel(
                "Scrape status per replica",
                'up{job="app"}: 1 if Prometheus reached the replica at the last scrape.',
                prom(f'up{{job="app", {INSTANCE}}}', "{{instance}}"),
                span=8,
            )
        )
        .with_row(section("Per replica over time"))
        .with_panel(
            timeseries_panel(
                "Requests/s per replica",
                "instance:http_requests:rate1m.",
                "reqps",
                prom(f"instance:http_requests:rate1m{{{INSTANCE}}}", "{{instance}}"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests in progress per replica",
                'http_requests_in_progress{job="app"}: one series per replica, the sum over its workers.',
                "none",
                prom(f'http_requests_in_progress{{job="app", {INSTANCE}}}', "{{instance}}"),
            )
        )
        .with_panel(
            timeseries_panel(
                "p99 latency per replica",
                "instance:http_request_duration_seconds:p99_1m (all traffic).",
                "s",
                prom(f"instance:http_request_duration_seconds:p99_1m{{{INSTANCE}}}", "{{instance}}"),
            )
        )
        .with_panel(
            timeseries_panel(
                "5xx/s per replica",
                "instance:http_request_errors:rate1m (0 for a replica that never answered 5xx).",
                "reqps",
                prom(
                    f"instance:http_request_errors:rate1m{{{INSTANCE}}}"
                    f" or 0 * instance:http_requests:rate1m{{{INSTANCE}}}",
                    "{{instance}}",
                ),
            )
        )
        .with_row(section("nginx (stub_status through nginx-prometheus-exporter)"))
        .with_panel(
            status_panel(
                "nginx up",
                "nginx_up: 1 if the exporter read nginx's stub_status at the last scrape.",
                prom("nginx_up"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests/s through nginx",
                "rate of nginx_http_requests_total: every request nginx handled, its own health checks included.",
                "reqps",
                prom("sum(rate(nginx_http_requests_total[$__rate_interval]))", "requests"),
                span=10,
            )
        )
        .with_panel(
            timeseries_panel(
                "nginx client connections",
                "Open client connections (active), and what they are doing: reading a request, writing a "
                "response, or idle in keep-alive (waiting).",
                "none",
                prom("nginx_connections_active", "active"),
                prom("nginx_connections_reading", "reading"),
                prom("nginx_connections_writing", "writing"),
                prom("nginx_connections_waiting", "waiting"),
                span=10,
            )
        )
    )
