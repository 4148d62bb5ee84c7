"""What every linkstack dashboard shares: the datasources, the defaults, the panel shapes.

The datasource uids are the ones grafana/provisioning/datasources/datasources.yaml fixes; every
panel and every query names its datasource by uid, so a dashboard never depends on which
datasource is the default. Panels are laid out by the SDK left to right, 24 columns to a line.
"""

import json

from grafana_foundation_sdk.builders import bargauge, logs, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row, ThresholdsConfig
from grafana_foundation_sdk.builders.loki import Dataquery as LokiQuery
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard, prometheus
from grafana_foundation_sdk.models import loki as loki_models

PROMETHEUS = common.DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = common.DataSourceRef(type_val="loki", uid="loki")

TAG = "linkstack"

# The app's own traffic that is not users': Docker's healthcheck, Prometheus' scrapes.
PROBES = "/health|/ready|/metrics"

Query = PrometheusQuery | LokiQuery


def prom(expr: str, legend: str = "", *, instant: bool = False, table_format: bool = False) -> PrometheusQuery:
    query = PrometheusQuery().datasource(PROMETHEUS).expr(expr).editor_mode(prometheus.QueryEditorMode.CODE)
    if legend:
        query = query.legend_format(legend)
    query = query.instant() if instant else query.range()
    if table_format:
        query = query.format(prometheus.PromQueryFormat.TABLE)
    return query


def loki(expr: str, legend: str = "") -> LokiQuery:
    query = (
        LokiQuery()
        .datasource(LOKI)
        .expr(expr)
        .query_type(loki_models.LokiQueryType.RANGE)
        .editor_mode(loki_models.QueryEditorMode.CODE)
    )
    if legend:
        query = query.legend_format(legend)
    return query


def dashboard_base(uid: str, title: str, description: str) -> Dashboard:
    """A read-only dashboard (it is provisioned: edits belong in grafana/dashboards_src/)."""
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .readonly()
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .link(
            DashboardLink("linkstack dashboards")
            .type(dashboard.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(False)
            .target_blank(False)
        )
    )


def section(title: str) -> Row:
    """An expanded row: the panels that follow it belong to it until the next row."""
    return Row(title)


def thresholds(*steps: tuple[float, str], base: str = "green") -> ThresholdsConfig:
    """Absolute thresholds: `base` below the first step, each step's colour from its value on."""
    return (
        ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps(
            [dashboard.Threshold(value=None, color=base)] + [dashboard.Threshold(value=v, color=c) for v, c in steps]
        )
    )


def named_values(*names: tuple[str, str]) -> list[dashboard.ValueMap]:
    """Value mappings for a gauge of small whole numbers: 0, 1, 2 ... shown as each (text, colour)."""
    return [
        dashboard.ValueMap(
            options={
                str(value): dashboard.ValueMappingResult(text=text, color=color, index=value)
                for value, (text, color) in enumerate(names)
            }
        )
    ]


def states(zero: str, one: str) -> list[dashboard.ValueMap]:
    """Value mappings for a 0/1 gauge: 0 in red, 1 in green."""
    return named_values((zero, "red"), (one, "green"))


def share(series: str) -> str:
    """Each series of `series` as its share of their sum (one series per replica: each replica's share)."""
    return f"{series} / on() group_left() sum({series})"


def legend() -> VizLegendOptions:
    """A list of the series below the graph, no calculations."""
    return (
        VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .calcs([])
    )


def _frame[P: (timeseries.Panel, stat.Panel, statetimeline.Panel, bargauge.Panel, table.Panel, logs.Panel)](
    panel: P, title: str, description: str, span: int, height: int, targets: tuple[Query, ...]
) -> P:
    """What every panel has, whatever its kind: title, description, size, and the targets
    (refId A, B, ...), whose one datasource becomes the panel's."""
    datasources = {(t.build().datasource.type_val, t.build().datasource.uid) for t in targets}
    if len(datasources) != 1:
        raise ValueError(f"a panel's queries must share one datasource, got {sorted(datasources)}")
    panel = panel.title(title).description(description).span(span).height(height)
    panel = panel.datasource(targets[0].build().datasource)
    for index, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    *targets: Query,
    span: int = 12,
    height: int = 8,
    bars: bool = False,
    stacked: bool = False,
    alert_line: float | None = None,
) -> timeseries.Panel:
    """`alert_line`: a dashed red line at that value, an alert's threshold (in the panel's unit)."""
    panel = (
        timeseries.Panel()
        .unit(unit)
        .min(0)
        .line_width(1)
        .fill_opacity(10)
        .legend(legend())
        .tooltip(VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    if stacked:
        panel = panel.stacking(StackingConfig().mode(common.StackingMode.NORMAL))
    if alert_line is not None:
        panel = panel.thresholds(thresholds((alert_line, "red"))).thresholds_style(
            GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return _frame(panel, title, description, span, height, targets)


def stat_panel(
    title: str,
    description: str,
    unit: str,
    target: Query,
    *,
    span: int = 6,
    height: int = 4,
    steps: ThresholdsConfig | None = None,
    mappings: list[dashboard.ValueMap] | None = None,
    no_value: str | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .unit(unit)
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(common.BigValueTextMode.AUTO)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(steps or thresholds())
    )
    if mappings:
        panel = panel.mappings(mappings)
    if no_value is not None:
        panel = panel.no_value(no_value)
    return _frame(panel, title, description, span, height, (target,))


def status_panel(
    title: str,
    description: str,
    target: Query,
    *,
    span: int = 4,
    height: int = 8,
    zero: str = "down",
    one: str = "up",
) -> stat.Panel:
    """A 0/1 gauge shown by name, `zero` in red and `one` in green: is an exporter, replica or check up.

    8 high by default: it mostly opens a row of 8-high time series.
    """
    return stat_panel(
        title,
        description,
        "none",
        target,
        span=span,
        height=height,
        mappings=states(zero, one),
        steps=thresholds((1, "green"), base="red"),
    )


def state_timeline_panel(
    title: str,
    description: str,
    target: Query,
    mappings: list[dashboard.ValueMap],
    *,
    span: int = 12,
    height: int = 8,
) -> statetimeline.Panel:
    """A gauge of a few named states (`mappings`, in their colours) as coloured bands over time."""
    panel = (
        statetimeline.Panel()
        .mappings(mappings)
        .thresholds(thresholds())
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.9)
        .line_width(0)
        .fill_opacity(70)
        .legend(legend())
        .tooltip(VizTooltipOptions().mode(common.TooltipDisplayMode.SINGLE).sort(common.SortOrder.NONE))
    )
    return _frame(panel, title, description, span, height, (target,))


def bargauge_panel(
    title: str,
    description: str,
    unit: str,
    target: Query,
    *,
    span: int = 8,
    height: int = 8,
    max_value: float | None = None,
    steps: ThresholdsConfig | None = None,
) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .unit(unit)
        .min(0)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .orientation(common.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(steps or thresholds())
    )
    if max_value is not None:
        panel = panel.max(max_value)
    return _frame(panel, title, description, span, height, (target,))


def table_panel(
    title: str,
    description: str,
    target: Query,
    *,
    span: int = 24,
    height: int = 8,
    hide: tuple[str, ...] = ("Time",),
    rename: dict[str, str] | None = None,
) -> table.Panel:
    organize = dashboard.DataTransformerConfig(
        id_val="organize",
        options={"excludeByName": dict.fromkeys(hide, True), "renameByName": rename or {}},
    )
    return _frame(table.Panel().with_transformation(organize), title, description, span, height, (target,))


def logs_panel(title: str, description: str, target: LokiQuery, *, span: int = 24, height: int = 10) -> logs.Panel:
    panel = (
        logs.Panel()
        .show_time(True)
        .show_labels(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common.LogsSortOrder.DESCENDING)
        .dedup_strategy(common.LogsDedupStrategy.NONE)
    )
    return _frame(panel, title, description, span, height, (target,))


def render(builder: Dashboard) -> str:
    """The dashboard as its provisioned file: ids 1..n in layout order, sorted keys, 2-space indent."""
    model = json.loads(JSONEncoder().encode(builder.build()))
    next_id = 1
    for panel in model.get("panels", []):
        panel["id"] = next_id
        next_id += 1
        for nested in panel.get("panels", []):
            nested["id"] = next_id
            next_id += 1
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
