"""Service overview: the app's RED signals, for users (headline) and per route.

Built on prometheus/rules/recording.yml: job:* leave probes and scrapes out (what the alerts
judge), route:* keep all traffic. The error-ratio rules only exist once some request has
answered 5xx, so each falls back to 0 × the request rate: 0 errors, not "No data".
"""

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .common import PROBES, dashboard_base, prom, section, stat_panel, status_panel, thresholds, timeseries_panel

UID = "linkstack-overview"


def build() -> Dashboard:
    return (
        dashboard_base(UID, "linkstack / Service overview", "Request rate, errors and latency of the app.")
        .with_row(section("Users' view: probes and scrapes left out"))
        .with_panel(
            stat_panel(
                "Requests/s",
                "Requests users sent over the last minute (job:http_requests:rate1m); 0 before the first one.",
                "reqps",
                prom("sum(job:http_requests:rate1m) or vector(0)"),
                span=5,
            )
        )
        .with_panel(
            stat_panel(
                "Error ratio",
                "Share of users' requests answered 5xx over the last minute (job:http_request_error_ratio:rate1m). "
                "AppHighErrorRatio fires above 5% for 2 minutes.",
                "percentunit",
                prom("sum(job:http_request_error_ratio:rate1m) or vector(0)"),
                span=5,
                steps=thresholds((0.01, "orange"), (0.05, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "p99 latency",
                "99th percentile of users' requests over the last minute (job:http_request_duration_seconds:p99_1m). "
                "AppHighLatencyP99 fires above 500 ms for 2 minutes.",
                "s",
                prom("job:http_request_duration_seconds:p99_1m"),
                span=5,
                steps=thresholds((0.25, "orange"), (0.5, "red")),
                no_value="no traffic",
            )
        )
        .with_panel(
            stat_panel(
                "Replicas up",
                "App replicas that answered Prometheus' last scrape.",
                "none",
                prom('sum(up{job="app"})'),
                span=5,
                steps=thresholds((1, "green"), base="red"),
            )
        )
        .with_panel(
            stat_panel(
                "Alerts firing",
                "Prometheus alerts firing now (the Alerts dashboard lists them).",
                "none",
                prom('count(ALERTS{alertstate="firing"}) or vector(0)'),
                span=4,
                steps=thresholds((1, "red")),
            )
        )
        .with_row(section("Per route: all traffic, probes and scrapes included"))
        .with_panel(
            timeseries_panel(
                "Request rate by route",
                "route:http_requests:rate1m: requests/s per route template (<unmatched> for no route).",
                "reqps",
                prom("route:http_requests:rate1m", "{{route}}"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratio by route",
                "route:http_request_error_ratio:rate1m: share of each route's requests answered 5xx "
                "(0 for a route that never failed).",
                "percentunit",
                prom("route:http_request_error_ratio:rate1m or 0 * route:http_requests:rate1m", "{{route}}"),
            )
        )
        .with_panel(
            timeseries_panel(
                "p50 latency by route",
                "route:http_request_duration_seconds:p50_1m. A route with no request in the last minute has no value.",
                "s",
                prom("route:http_request_duration_seconds:p50_1m", "{{route}}"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "p95 latency by route",
                "route:http_request_duration_seconds:p95_1m.",
                "s",
                prom("route:http_request_duration_seconds:p95_1m", "{{route}}"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "p99 latency by route",
                "route:http_request_duration_seconds:p99_1m. Buckets end at 10 s: a p99 of 10 s means 'at least'.",
                "s",
                prom("route:http_request_duration_seconds:p99_1m", "{{route}}"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Responses by status",
                "Requests/s by HTTP status, every route and replica.",
                "reqps",
                prom('sum by (status) (rate(http_requests_total{job="app"}[$__rate_interval]))', "{{status}}"),
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Users' requests/s and errors/s",
                f"Requests users sent (routes other than {PROBES}) and those answered 5xx.",
                "reqps",
                prom("sum(job:http_requests:rate1m) or vector(0)", "requests"),
                prom("sum(job:http_request_errors:rate1m) or vector(0)", "5xx"),
            )
        )
        .with_row(section("Replicas"))
        .with_panel(
            status_panel(
                "Scrape status per replica",
                'up{job="app"}: 1 if Prometheus reached the replica\'s /metrics at the last scrape.',
                prom('up{job="app"}', "{{instance}}"),
                span=24,
                height=4,
            )
        )
    )
