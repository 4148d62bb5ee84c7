"""Alerts: what is pending and firing (Prometheus' ALERTS), what Alertmanager did with it.

ALERTS has no series while nothing is pending or firing, so its counts fall back to 0.
Grafana's alert list panel reads rule sources (Prometheus, Loki, Grafana), never an
Alertmanager datasource, and the SDK has no builder for it: the table below stands in for it,
and Grafana's Alerting pages read the Alertmanager datasource for silences and groups.
"""

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .common import (
    dashboard_base,
    logs_panel,
    loki,
    prom,
    section,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)

UID = "linkstack-alerts"


def build() -> Dashboard:
    return (
        dashboard_base(UID, "linkstack / Alerts", "Alerts pending and firing, and Alertmanager's notifications.")
        .with_row(section("Now"))
        .with_panel(
            stat_panel(
                "Firing",
                "Alerts firing: their condition held for their whole `for`.",
                "none",
                prom('count(ALERTS{alertstate="firing"}) or vector(0)'),
                steps=thresholds((1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Critical firing",
                "Firing alerts of severity critical: act now.",
                "none",
                prom('count(ALERTS{alertstate="firing", severity="critical"}) or vector(0)'),
                steps=thresholds((1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Pending",
                "Alerts whose condition holds, waiting out their `for` before they fire.",
                "none",
                prom('count(ALERTS{alertstate="pending"}) or vector(0)'),
                steps=thresholds((1, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Active in Alertmanager",
                'alertmanager_alerts{state="active"}: alerts Alertmanager holds and has not silenced or inhibited.',
                "none",
                prom('sum(alertmanager_alerts{state="active"})'),
                steps=thresholds((1, "red")),
            )
        )
        .with_panel(
            table_panel(
                "Pending and firing alerts",
                "ALERTS now, one row per alert, severity and state (Value: instances). A single row '(none)' "
                "means nothing is pending or firing.",
                prom(
                    "count by (alertname, severity, alertstate) (ALERTS)"
                    ' or on() label_replace(vector(0), "alertname", "(none)", "", "")',
                    instant=True,
                    table_format=True,
                ),
                rename={"Value": "instances"},
            )
        )
        .with_row(section("Over time"))
        .with_panel(
            timeseries_panel(
                "Alerts pending and firing",
                "Count of ALERTS by state.",
                "none",
                prom('count(ALERTS{alertstate="firing"}) or vector(0)', "firing"),
                prom('count(ALERTS{alertstate="pending"}) or vector(0)', "pending"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Alertmanager notifications/s",
                "Webhook notifications Alertmanager sent to alert-sink, and those that failed.",
                "ops",
                prom('sum(rate(alertmanager_notifications_total{integration="webhook"}[$__rate_interval]))', "sent"),
                prom(
                    'sum(rate(alertmanager_notifications_failed_total{integration="webhook"}[$__rate_interval]))',
                    "failed",
                ),
            )
        )
        .with_row(section("Notifications received"))
        .with_panel(
            logs_panel(
                "alert-sink",
                "One line per alert per notification: status, alertname, severity, summary, runbook.",
                loki('{service="alert-sink"}'),
            )
        )
    )
