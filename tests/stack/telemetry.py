"""Asking the stack's Prometheus and Alertmanager, as Grafana and an operator do."""

from dataclasses import dataclass
from typing import Any

import httpx

from tests.compose import local_images

# Series that only the services local images leave out produce (compose.local-images.yaml).
LEFT_OUT_PREFIXES = ("loki_", "alloy_", "grafana_") if local_images() else ()
# Prometheus makes ALERTS only while an alert is pending or firing.
SYNTHETIC = ("ALERTS",)


@dataclass
class Prometheus:
    url: str

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=15)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def selectors(self, expr: str) -> list[str]:
        """Every vector selector in the expression (offsets and ranges dropped), from Prometheus' own parser."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") == "vectorSelector":
                    matchers = ", ".join(
                        f'{m["name"]}{m["type"]}"{m["value"]}"' for m in node["matchers"] if m["name"] != "__name__"
                    )
                    found.append(f"{node['name']}{{{matchers}}}" if node["name"] else f"{{{matchers}}}")
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.api("parse_query", query=expr))
        return found

    def alerts(self, name: str) -> list[dict]:
        return [alert for alert in self.api("alerts")["alerts"] if alert["labels"]["alertname"] == name]

    def targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]


@dataclass
class Alertmanager:
    url: str

    def alerts(self, name: str) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=15)
        response.raise_for_status()
        return response.json()
