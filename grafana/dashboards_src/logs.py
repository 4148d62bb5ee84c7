"""Logs: one request followed through nginx and the app, error lines, volume, notifications.

Loki's labels are service (the Compose service), replica and level; request_id is structured
metadata, so it is filtered with a label filter after the stream selector, not inside it.
"""

from grafana_foundation_sdk.builders.dashboard import Dashboard, TextBoxVariable

from .common import dashboard_base, logs_panel, loki, section, timeseries_panel

UID = "linkstack-logs"


def request_id_variable() -> TextBoxVariable:
    return (
        TextBoxVariable("request_id")
        .label("Request ID")
        .description("The X-Request-ID nginx returned (and logged); the app logs the same id on every line.")
        .default_value("")
    )


def build() -> Dashboard:
    return (
        dashboard_base(UID, "linkstack / Logs", "Lines of one request, error lines, log volume, alert notifications.")
        .with_variable(request_id_variable())
        .with_row(section("One request"))
        .with_panel(
            logs_panel(
                "nginx and app lines of request $request_id",
                "nginx's access line and every app line logged while serving the request whose X-Request-ID is "
                "entered above.",
                loki('{service=~"nginx|app"} | request_id="$request_id"'),
                height=12,
            )
        )
        .with_row(section("Everything"))
        .with_panel(
            timeseries_panel(
                "Log lines by service and level",
                "Lines per interval, by Compose service and level.",
                "short",
                loki('sum by (service, level) (count_over_time({service=~".+"} [$__auto]))', "{{service}} {{level}}"),
                span=24,
                bars=True,
                stacked=True,
            )
        )
        .with_panel(
            logs_panel(
                "Error lines",
                "Every line at level error, from every service (an app exception is one line, traceback included).",
                loki('{service=~".+", level="error"}'),
            )
        )
        .with_panel(
            logs_panel(
                "Alert notifications",
                "What Alertmanager sent: alert-sink logs each alert of each webhook as one line.",
                loki('{service="alert-sink"}'),
                height=8,
            )
        )
    )
