"""The provisioned Grafana dashboards and datasources, read back for tests.

`queries()` gives every query of one datasource type with Grafana's variables replaced by
values a live Prometheus or Loki accepts, so that a test can run each against the stack.
"""

import json
import re
from collections.abc import Collection, Iterator
from pathlib import Path

import yaml

from tests.compose import ROOT

GRAFANA = ROOT / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml"

# Grafana's interval variables: one minute is four scrapes (prometheus.yml scrapes every 15 s).
INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__auto": "1m", "__range": "1m"}
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}")


def provisioning(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def datasources() -> list[dict]:
    return provisioning(DATASOURCES)["datasources"]


def dashboards() -> list[dict]:
    """Every grafana/dashboards/*.json, parsed, in file-name order."""
    return [json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))]


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel that is not a row, rows' nested (collapsed) panels included."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def rows(dashboard: dict) -> Iterator[dict]:
    return (panel for panel in dashboard.get("panels", []) if panel.get("type") == "row")


def target_datasource(panel: dict, target: dict) -> dict:
    """The target's datasource reference, else the panel's (Grafana's own fallback)."""
    return target.get("datasource") or panel.get("datasource") or {}


def substitute(expr: str, dashboard: dict, request_id: str) -> str:
    """`expr` with every variable replaced; an unknown variable is an error, not a silent pass."""
    variables = {variable["name"]: variable for variable in dashboard.get("templating", {}).get("list", [])}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in INTERVALS:
            return INTERVALS[name]
        variable = variables.get(name)
        if variable is None:
            raise AssertionError(f"{dashboard['title']}: {expr!r} uses ${name}, which the dashboard does not define")
        if variable["type"] == "textbox":
            return request_id if name == "request_id" else variable.get("query", "")
        if variable.get("includeAll"):
            return variable.get("allValue") or ".*"
        raise AssertionError(f"{dashboard['title']}: no test value for ${name} ({variable['type']})")

    return VARIABLE.sub(value, expr)


def queries(
    datasource_type: str, request_id: str = "", *, uid: str | None = None, exclude_uids: Collection[str] = ()
) -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, expression) for every query of that datasource type.

    Variables become values the datasource accepts: interval variables 1m, multi-value
    variables their "All" value (`.*`, inside regex matchers), `$request_id` the value given.
    `uid` keeps that one dashboard's queries, `exclude_uids` leaves those dashboards out; a uid
    no dashboard has is an error, not an empty list a test would pass on.
    """
    every = dashboards()
    named = set(exclude_uids) | ({uid} if uid is not None else set())
    if unknown := named - {dashboard["uid"] for dashboard in every}:
        raise ValueError(f"no dashboard has uid {', '.join(sorted(unknown))}")
    found = []
    for dashboard in every:
        if dashboard["uid"] in exclude_uids or uid not in (None, dashboard["uid"]):
            continue
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target_datasource(panel, target).get("type") == datasource_type and not target.get("hide"):
                    found.append(
                        (dashboard["title"], panel["title"], substitute(target["expr"], dashboard, request_id))
                    )
    return found
