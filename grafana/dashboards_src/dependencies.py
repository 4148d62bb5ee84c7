"""Dependencies: Postgres, Redis and the link cache, the click pipeline, WebSockets.

Postgres and Redis are seen twice: from their exporters (postgres-exporter, redis_exporter)
and from the app (pool gauges, cache look-ups, readiness checks).
"""

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .common import dashboard_base, prom, section, stat_panel, status_panel, thresholds, timeseries_panel

UID = "linkstack-dependencies"

APP_DB = 'datname="app"'


def build() -> Dashboard:
    return (
        dashboard_base(UID, "linkstack / Dependencies", "Postgres, Redis, the link cache, click flushes, WebSockets.")
        .with_row(section("Postgres"))
        .with_panel(
            status_panel(
                "Postgres up",
                "pg_up: 1 if postgres-exporter reached Postgres at the last scrape.",
                prom("pg_up"),
            )
        )
        .with_panel(
            stat_panel(
                "Pool utilisation",
                "job:db_pool_utilisation:ratio: connections checked out over the pools' upper bound, all replicas. "
                "AppDbPoolSaturated fires when one replica stays above 90%.",
                "percentunit",
                prom("job:db_pool_utilisation:ratio"),
                span=4,
                height=8,
                steps=thresholds((0.7, "orange"), (0.9, "red")),
            )
        )
        .with_panel(
            timeseries_panel(
                "Backends on database app",
                "pg_stat_database_numbackends: connections to the app's database, the pools' and everyone else's.",
                "none",
                prom(f"pg_stat_database_numbackends{{{APP_DB}}}", "backends"),
                span=8,
                height=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Transactions/s on database app",
                "Rates of pg_stat_database_xact_commit and xact_rollback.",
                "ops",
                prom(f"sum(rate(pg_stat_database_xact_commit{{{APP_DB}}}[$__rate_interval]))", "commits"),
                prom(f"sum(rate(pg_stat_database_xact_rollback{{{APP_DB}}}[$__rate_interval]))", "rollbacks"),
                span=8,
                height=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "App's Postgres pools",
                "All replicas together: connections checked out, open, and the pools' upper bound.",
                "none",
                prom('sum(db_pool_connections_in_use{job="app"})', "in use"),
                prom('sum(db_pool_connections{job="app"})', "open"),
                prom('sum(db_pool_max_connections{job="app"})', "max"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Pool utilisation per replica",
                "Connections checked out over the pool's upper bound, per replica: what AppDbPoolSaturated judges.",
                "percentunit",
                prom(
                    'sum by (instance) (db_pool_connections_in_use{job="app"})'
                    ' / sum by (instance) (db_pool_max_connections{job="app"})',
                    "{{instance}}",
                ),
            )
        )
        .with_row(section("Redis and the link cache"))
        .with_panel(
            status_panel(
                "Redis up",
                "redis_up: 1 if redis_exporter reached Redis at the last scrape.",
                prom("redis_up"),
            )
        )
        .with_panel(
            stat_panel(
                "Cache hit ratio",
                "job:cache_hit_ratio:rate1m: redirects the cache answered, over the last minute. "
                "Needs one redirect since the replicas started.",
                "percentunit",
                prom("job:cache_hit_ratio:rate1m"),
                span=4,
                height=8,
                steps=thresholds((0.5, "orange"), (0.8, "green"), base="red"),
                no_value="no look-ups",
            )
        )
        .with_panel(
            timeseries_panel(
                "Cache look-ups/s by result",
                "cache_requests_total: hit, miss, or error (Redis down: the app asks Postgres).",
                "ops",
                prom('sum by (result) (rate(cache_requests_total{job="app"}[$__rate_interval]))', "{{result}}"),
                span=8,
                height=8,
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Redis keyspace hits and misses/s",
                "Redis' own count of key look-ups that found a key (hits) or not (misses).",
                "ops",
                prom("sum(rate(redis_keyspace_hits_total[$__rate_interval]))", "hits"),
                prom("sum(rate(redis_keyspace_misses_total[$__rate_interval]))", "misses"),
                span=8,
                height=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Cache hit ratio over time",
                "job:cache_hit_ratio:rate1m.",
                "percentunit",
                prom("job:cache_hit_ratio:rate1m", "hit ratio"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Redis memory used",
                "redis_memory_used_bytes.",
                "bytes",
                prom("redis_memory_used_bytes", "used"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Redis clients",
                "redis_connected_clients: the app's connections and pub/sub subscribers, the exporter's.",
                "none",
                prom("redis_connected_clients", "clients"),
                span=8,
            )
        )
        .with_row(section("Clicks: acknowledged, then flushed to Postgres"))
        .with_panel(
            timeseries_panel(
                "Clicks pending flush",
                "clicks_pending_flush: acknowledged clicks still in a worker's memory, per replica. "
                "It grows while Postgres writes fail.",
                "none",
                prom('clicks_pending_flush{job="app"}', "{{instance}}"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Clicks flushed/s",
                "clicks_flushed_total: clicks written to Postgres.",
                "ops",
                prom('sum(rate(clicks_flushed_total{job="app"}[$__rate_interval]))', "flushed"),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Flush failures and dropped clicks/s",
                "click_flush_failures_total (the batch is kept and retried) and clicks_dropped_total "
                "(the buffer was full: acknowledged clicks lost). Both should stay at 0.",
                "ops",
                prom('sum(rate(click_flush_failures_total{job="app"}[$__rate_interval]))', "flush failures"),
                prom('sum(rate(clicks_dropped_total{job="app"}[$__rate_interval]))', "dropped"),
                span=8,
            )
        )
        .with_row(section("WebSockets and readiness"))
        .with_panel(
            timeseries_panel(
                "Open WebSockets",
                "websocket_connections per replica: live-click subscribers.",
                "none",
                prom('websocket_connections{job="app"}', "{{instance}}"),
            )
        )
        .with_panel(
            status_panel(
                "Readiness per replica and dependency",
                "readiness_check_ok: 1 if the replica's last readiness check reached the dependency.",
                prom('readiness_check_ok{job="app"}', "{{instance}} {{dependency}}"),
                span=12,
                zero="failing",
                one="ok",
            )
        )
    )
