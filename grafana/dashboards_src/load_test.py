"""Load test: the load Locust offers (its own figures) against how the stack copes with it.

Locust's series (job "locust", loadtest/scenarios/_metrics.py) exist only while the loadtest
profile runs its master; the stack's come from prometheus/rules/recording.yml (job:* leave
probes and scrapes out, instance:* keep them). Locust measures from the client, through nginx
and TLS, its percentiles over its last ~10 s; the app's p99 is its histogram over a minute.
Each description says what to look for in which scenario (loadtest/scenarios/*.py).
"""

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .common import (
    dashboard_base,
    named_values,
    prom,
    section,
    share,
    stat_panel,
    state_timeline_panel,
    status_panel,
    thresholds,
    timeseries_panel,
)

UID = "linkstack-load-test"

SENT = "sum(rate(locust_requests_total[$__rate_interval]))"
FAILED = "sum(rate(locust_failures_total[$__rate_interval]))"
# No value, rather than NaN, while nothing is sent.
FAILURE_RATIO = f"{FAILED} / ({SENT} > 0)"

# AppHighLatencyP99 (prometheus/rules/alerts.yml): the app's p99 above 500 ms for 2 minutes.
P99_LIMIT = 0.5
# As one number: 0 inactive, 1 pending, 2 firing (ALERTS has no series while it is inactive).
P99_ALERT_STATE = (
    'max(ALERTS{alertname="AppHighLatencyP99", alertstate="firing"}) * 2'
    ' or max(ALERTS{alertname="AppHighLatencyP99"}) or vector(0)'
)
ALERT_STATES = named_values(("inactive", "green"), ("pending", "orange"), ("firing", "red"))


def locust_percentile(quantile: str) -> str:
    return f'locust_response_time_seconds{{quantile="{quantile}"}}'


def build() -> Dashboard:
    return (
        dashboard_base(
            UID,
            "linkstack / Load test",
            "The load Locust offers (users, requests, its own latency) against the stack's latency, errors, "
            "per-replica share, 429s and the p99 alert.",
        )
        # Locust is scraped every 5 s: a 30 s refresh would hide a ramp.
        .refresh("10s")
        .with_row(section("Now"))
        .with_panel(
            status_panel(
                "Locust",
                "locust_running: 1 while a test spawns or runs. 'stopped' also when no Locust master is up "
                "(scripts/loadtest starts one under the loadtest profile).",
                prom("max(locust_running) or vector(0)"),
                height=4,
                zero="stopped",
                one="running",
            )
        )
        .with_panel(
            stat_panel(
                "Simulated users",
                "locust_users: users running now, all workers together.",
                "none",
                prom("sum(locust_users)"),
                span=4,
            )
        )
        .with_panel(
            stat_panel(
                "Locust workers",
                "locust_workers: workers connected to the master (0: one runner on its own, no workers).",
                "none",
                prom("sum(locust_workers)"),
                span=4,
            )
        )
        .with_panel(
            stat_panel(
                "Locust's current requests/s",
                "locust_requests_per_second: what Locust's UI shows as current RPS.",
                "reqps",
                prom("sum(locust_requests_per_second)"),
                span=4,
            )
        )
        .with_panel(
            stat_panel(
                "Locust failure ratio",
                "Failed over sent requests (Locust's counters). steady's gate is 0.1%; in rate-limit the burst "
                "clients' 429s count as failures, so it is high by design.",
                "percentunit",
                prom(FAILURE_RATIO),
                span=4,
                steps=thresholds((0.001, "orange"), (0.05, "red")),
                no_value="no load",
            )
        )
        .with_panel(
            stat_panel(
                "AppHighLatencyP99 now",
                "The p99 alert's state: inactive, pending (p99 above 500 ms, waiting out its 2 minutes) or firing. "
                "p99-breach drives it through pending and firing and back.",
                "none",
                prom(P99_ALERT_STATE),
                span=4,
                mappings=ALERT_STATES,
            )
        )
        .with_row(section("Offered load: Locust's own figures"))
        .with_panel(
            timeseries_panel(
                "Users and workers",
                "locust_users and locust_workers. Ramps follow the scenario's spawn rate; everything below "
                "should be read against the users running at that moment.",
                "none",
                prom("sum(locust_users)", "users"),
                prom("sum(locust_workers)", "workers"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Sent and failed requests/s",
                "Rates of locust_requests_total and locust_failures_total: the load offered and what Locust "
                "judged failed. In websocket, each delivered click counts as a request ('click delivered').",
                "reqps",
                prom(SENT, "sent"),
                prom(FAILED, "failed"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Sent requests/s by Locust name",
                "Rate of locust_requests_total by name. least-conn names each answer '… via <replica>': each "
                "replica's share as the client sees it; rate-limit splits '(burst)' from '(under the limit)'.",
                "reqps",
                prom("sum by (name) (rate(locust_requests_total[$__rate_interval]))", "{{name}}"),
                span=8,
                stacked=True,
            )
        )
        .with_row(section("Latency: Locust's, from the client, against the stack's"))
        .with_panel(
            timeseries_panel(
                "Locust percentiles and the stack's p99",
                "Locust's p50/p95/p99 over its last ~10 s (0 while stopped), and the app's p99 over a minute "
                "(job:http_request_duration_seconds:p99_1m, probes left out); dashed: AppHighLatencyP99's 500 ms. "
                "steady keeps both under it; in p99-breach both cross it, Locust's first. Locust's above the "
                "app's: time spent in nginx, TLS or the network, or waiting for a connection.",
                "s",
                prom(locust_percentile("0.5"), "Locust p50"),
                prom(locust_percentile("0.95"), "Locust p95"),
                prom(locust_percentile("0.99"), "Locust p99"),
                prom("job:http_request_duration_seconds:p99_1m", "app p99 (1m)"),
                span=16,
                alert_line=P99_LIMIT,
            )
        )
        .with_panel(
            state_timeline_panel(
                "AppHighLatencyP99 over time",
                "The alert's state over time (ALERTS). In p99-breach: pending soon after the injected latency, "
                "firing 2 minutes later, inactive once the fault is off and a minute of fast requests has passed.",
                prom(P99_ALERT_STATE, "AppHighLatencyP99"),
                ALERT_STATES,
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "App p99 per replica",
                "instance:http_request_duration_seconds:p99_1m (probes included). In least-conn, the replica "
                "made slow stands out; with least_conn few requests wait on it, with round robin a third do.",
                "s",
                prom("instance:http_request_duration_seconds:p99_1m", "{{instance}}"),
                alert_line=P99_LIMIT,
            )
        )
        .with_panel(
            timeseries_panel(
                "Open WebSockets and nginx connections",
                "websocket_connections per replica (live-click listeners) and nginx's open client connections. "
                "In websocket, the listeners stay connected for the whole run, spread over the replicas.",
                "none",
                prom('websocket_connections{job="app"}', "WebSockets {{instance}}"),
                prom("nginx_connections_active", "nginx connections"),
            )
        )
        .with_row(section("The stack: what arrived, where it went, what failed"))
        .with_panel(
            timeseries_panel(
                "Sent, through nginx, served by the app",
                "Requests/s Locust sent; nginx handled (nginx_http_requests_total: 429s and its own checks "
                "included); the app served to users (job:http_requests:rate1m, probes left out). In rate-limit "
                "the app's line stays below nginx's by the 429s.",
                "reqps",
                prom(SENT, "Locust sent"),
                prom("sum(rate(nginx_http_requests_total[$__rate_interval]))", "nginx handled"),
                prom("sum(job:http_requests:rate1m) or vector(0)", "app served"),
            )
        )
        .with_panel(
            timeseries_panel(
                "App requests/s per replica",
                "instance:http_requests:rate1m, stacked: the total is what the app served. least-conn: the slow "
                "replica's band thins under least_conn, stays a third under round robin.",
                "reqps",
                prom("instance:http_requests:rate1m", "{{instance}}"),
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Share of requests per replica over time",
                "Each replica's share of the requests of the last minute (probes and scrapes included: every "
                "replica gets the same of those). Level at a third each in steady; in least-conn the slow "
                "replica's share falls.",
                "percentunit",
                prom(share("instance:http_requests:rate1m"), "{{instance}}"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratios: app and Locust",
                "The app's 5xx over users' requests (job:http_request_error_ratio:rate1m) and Locust's failed "
                "over sent; dashed: AppHighErrorRatio's 5%. Locust's alone high: failures nginx made (429s in "
                "rate-limit, 502/504s) or Locust's own checks.",
                "percentunit",
                prom("sum(job:http_request_error_ratio:rate1m) or vector(0)", "app 5xx ratio"),
                prom(FAILURE_RATIO, "Locust failure ratio"),
                span=8,
                alert_line=0.05,
            )
        )
        .with_panel(
            timeseries_panel(
                "Rate-limited (429) requests/s",
                "Requests nginx's limit_req rejected, counted by Alloy from nginx's access lines "
                "(0 while Alloy runs and saw none; no data where Alloy does not run). Dashed: "
                "NginxRateLimitedBurst's 5/s. Only rate-limit should show any, all from burst clients.",
                "reqps",
                prom(
                    "sum(rate(loki_process_custom_nginx_rate_limited_requests_total[$__rate_interval]))"
                    " or 0 * sum(alloy_build_info)",
                    "429",
                ),
                span=8,
                alert_line=5,
            )
        )
        .with_panel(
            timeseries_panel(
                "Locust failures/s by name",
                "Rate of locust_failures_total by name: which requests failed. Expected only for rate-limit's "
                "'(burst)'; anything else (least-conn's '… via <replica>', a WebSocket) is a finding.",
                "reqps",
                prom("sum by (name) (rate(locust_failures_total[$__rate_interval]))", "{{name}}"),
                span=24,
            )
        )
    )
