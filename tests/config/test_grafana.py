"""Grafana's provisioning and the generated dashboards, checked without a Grafana.

Grafana cannot run here, so what it would read is checked by construction: the committed
dashboards are the generator's output, every datasource they name is provisioned with that
type, panels have queries and do not overlap, and the provider reads the directory the
dashboards are written to (and that Compose mounts, once the grafana service exists).
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from tests.compose import Compose
from tests.dashboards import (
    DASHBOARDS,
    DATASOURCES,
    GRAFANA,
    PROVIDERS,
    dashboards,
    datasources,
    panels,
    provisioning,
    queries,
    rows,
    target_datasource,
)

PROVISIONING_IN_CONTAINER = PurePosixPath("/etc/grafana/provisioning")


def run_generate(grafana: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(grafana / "generate.py"), *args],
        cwd=grafana.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestGenerator:
    def test_committed_dashboards_are_what_the_generator_makes(self) -> None:
        """`generate.py --check` passes: nobody edited the JSON by hand or forgot to regenerate."""
        result = run_generate(GRAFANA, "--check")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "generate --check: OK, 6 dashboards" in result.stdout

    def test_check_names_edited_and_stray_files_and_generate_repairs_them(self, tmp_path: Path) -> None:
        """--check exits 1 naming a hand-edited and a stray JSON file; a plain run puts both right."""
        copy = tmp_path / "grafana"
        shutil.copytree(GRAFANA, copy, ignore=shutil.ignore_patterns("__pycache__"))
        edited = copy / "dashboards" / "linkstack-overview.json"
        edited.write_text(edited.read_text().replace("linkstack / Service overview", "edited by hand"))
        (copy / "dashboards" / "old.json").write_text("{}\n")

        result = run_generate(copy, "--check")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "linkstack-overview.json (differs)" in result.stdout
        assert "old.json (no module makes it)" in result.stdout
        assert "FAILED, 2 file(s)" in result.stdout

        assert run_generate(copy).returncode == 0
        assert run_generate(copy, "--check").returncode == 0
        assert not (copy / "dashboards" / "old.json").exists()
        assert edited.read_text() == (DASHBOARDS / edited.name).read_text()


class TestDatasources:
    def test_the_three_datasources_have_fixed_uids(self) -> None:
        """prometheus (the default), loki and alertmanager, by uid, type and Compose service URL."""
        config = provisioning(DATASOURCES)
        assert config["apiVersion"] == 1
        found = {(d["uid"], d["type"], d["url"], d["access"]) for d in datasources()}
        assert found == {
            ("prometheus", "prometheus", "http://prometheus:9090", "proxy"),
            ("loki", "loki", "http://loki:3100", "proxy"),
            ("alertmanager", "alertmanager", "http://alertmanager:9093", "proxy"),
        }
        assert [d["uid"] for d in datasources() if d.get("isDefault")] == ["prometheus"]

    def test_alertmanager_is_prometheus_flavoured_and_gets_no_grafana_alerts(self) -> None:
        """Prometheus' Alertmanager API (not Mimir's, the default); Grafana's own alerts are not sent to it."""
        (alertmanager,) = (d for d in datasources() if d["uid"] == "alertmanager")
        assert alertmanager["jsonData"] == {"implementation": "prometheus", "handleGrafanaManagedAlerts": False}

    def test_loki_derived_field_reads_request_id_metadata(self) -> None:
        """request_id is matched as a label (structured metadata) and its `$` survives env expansion."""
        (loki,) = (d for d in datasources() if d["uid"] == "loki")
        (field,) = loki["jsonData"]["derivedFields"]
        assert field["matcherType"] == "label"
        assert field["matcherRegex"] == "request_id"
        assert field["datasourceUid"] == "loki"
        # Grafana expands $VAR in provisioning files; $$ is how a literal $ gets through.
        assert "$${__value.raw}" in field["url"]
        assert re.search(r"(?<!\$)\$\{", field["url"]) is None

    def test_every_datasource_reference_is_provisioned_with_its_type(self) -> None:
        """Panels, targets, variables and datasource links name a provisioned uid, with the matching type."""
        provisioned = {d["uid"]: d["type"] for d in datasources()}
        references: list[tuple[str, dict]] = []
        for dashboard in dashboards():
            for variable in dashboard.get("templating", {}).get("list", []):
                if "datasource" in variable:
                    references.append((f"{dashboard['title']} / ${variable['name']}", variable["datasource"]))
            for panel in panels(dashboard):
                where = f"{dashboard['title']} / {panel['title']}"
                references.append((where, panel["datasource"]))
                references.extend((f"{where} / {t['refId']}", t["datasource"]) for t in panel.get("targets", []))
        assert references
        for where, ref in references:
            assert ref.get("uid") in provisioned, f"{where}: datasource {ref} is not provisioned"
            assert ref.get("type") == provisioned[ref["uid"]], f"{where}: {ref} has the wrong type"
        linked = [f["datasourceUid"] for d in datasources() for f in d.get("jsonData", {}).get("derivedFields", [])]
        linked += [
            d["jsonData"]["alertmanagerUid"] for d in datasources() if "alertmanagerUid" in d.get("jsonData", {})
        ]
        assert set(linked) <= provisioned.keys()


class TestDashboards:
    def test_uids_are_fixed_unique_and_name_the_file(self) -> None:
        """Each dashboard's uid is unique, valid for Grafana (≤ 40 of [A-Za-z0-9_-]) and its file's name."""
        files = sorted(DASHBOARDS.glob("*.json"))
        uids = [json.loads(path.read_text())["uid"] for path in files]
        assert len(uids) == len(set(uids)) == 6
        assert [f"{uid}.json" for uid in uids] == [path.name for path in files]
        for uid in uids:
            assert re.fullmatch(r"linkstack-[a-z-]+", uid) and len(uid) <= 40, uid

    def test_schema_and_provisioned_settings(self) -> None:
        """Schema 39-41 (Grafana 12/13), read-only, tagged linkstack, a relative time range."""
        for dashboard in dashboards():
            assert 39 <= dashboard["schemaVersion"] <= 41, dashboard["title"]
            assert dashboard["editable"] is False, dashboard["title"]
            assert "linkstack" in dashboard["tags"], dashboard["title"]
            assert dashboard["time"] == {"from": "now-1h", "to": "now"}, dashboard["title"]

    def test_every_panel_has_a_title_and_queries_by_datasource_uid(self) -> None:
        """Every panel has a title, at least one target, and each target an expression, a unique refId
        and its own datasource uid."""
        for dashboard in dashboards():
            for panel in panels(dashboard):
                where = f"{dashboard['title']} / {panel.get('title')!r}"
                assert panel.get("title", "").strip(), where
                targets = panel.get("targets", [])
                assert targets, f"{where}: no query"
                for target in targets:
                    assert target.get("expr", "").strip(), f"{where}: empty expression"
                    assert target.get("datasource", {}).get("uid"), f"{where}: the target names no datasource uid"
                ref_ids = [target["refId"] for target in targets]
                assert len(ref_ids) == len(set(ref_ids)), where

    def test_panel_titles_are_unique_within_a_dashboard(self) -> None:
        """No two panels of a dashboard share a title: a title names one panel in reports and tests."""
        for dashboard in dashboards():
            titles = [panel["title"] for panel in panels(dashboard)]
            assert len(titles) == len(set(titles)), dashboard["title"]

    def test_expanded_rows_hold_no_panels(self) -> None:
        """An expanded row's panels follow it at top level: Grafana drops panels nested in an expanded row."""
        for dashboard in dashboards():
            for row in rows(dashboard):
                assert row["collapsed"] or not row.get("panels"), f"{dashboard['title']} / {row['title']}"

    def test_panels_tile_the_grid_without_overlap(self) -> None:
        """Panel ids are unique and every panel, rows included, fits the 24 columns without overlapping another."""
        for dashboard in dashboards():
            placed = [*rows(dashboard), *panels(dashboard)]
            ids = [panel["id"] for panel in placed]
            assert len(ids) == len(set(ids)), dashboard["title"]
            cells: dict[tuple[int, int], str] = {}
            for panel in placed:
                pos = panel["gridPos"]
                assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
                for x in range(pos["x"], pos["x"] + pos["w"]):
                    for y in range(pos["y"], pos["y"] + pos["h"]):
                        other = cells.setdefault((x, y), panel["title"])
                        assert other == panel["title"], f"{dashboard['title']}: {panel['title']!r} overlaps {other!r}"

    def test_panel_units(self) -> None:
        """Rates, ratios, durations and sizes carry Grafana's units (reqps, percentunit, s, bytes)."""
        units = {
            panel["title"]: panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            for dashboard in dashboards()
            for panel in panels(dashboard)
        }
        assert units["Requests/s"] == units["Request rate by route"] == "reqps"
        assert units["Error ratio"] == units["Share of requests per replica"] == "percentunit"
        assert units["p99 latency by route"] == units["p99 latency per replica"] == "s"
        assert units["Redis memory used"] == "bytes"


class TestQueries:
    def test_prometheus_rate_windows_are_rate_interval(self) -> None:
        """Raw rate()s over a range use $__rate_interval: at least four scrapes whatever the zoom."""
        for dashboard in dashboards():
            for panel in panels(dashboard):
                for target in panel["targets"]:
                    if target_datasource(panel, target)["type"] == "prometheus":
                        for window in re.findall(r"\[([^\]]*)\]", target["expr"]):
                            assert window == "$__rate_interval", f"{panel['title']}: [{window}]"

    def test_multi_value_variables_only_in_regex_matchers(self) -> None:
        """$instance (multi-value, All = .*) appears only after =~, where a regex is expected."""
        for dashboard in dashboards():
            for variable in dashboard.get("templating", {}).get("list", []):
                if not variable.get("multi"):
                    continue
                for panel in panels(dashboard):
                    for target in panel["targets"]:
                        for use in re.finditer(rf'(\S\S)"\${variable["name"]}\b', target["expr"]):
                            assert use.group(1) == "=~", f"{panel['title']}: {target['expr']}"

    def test_queries_substitute_every_variable(self) -> None:
        """The test helper turns every query into one a live Prometheus or Loki accepts: no `$` left."""
        prometheus = queries("prometheus")
        loki = queries("loki", request_id="0123456789abcdef")
        assert len(prometheus) > 40 and len(loki) == 5
        for _, _, expr in prometheus + loki:
            assert "$" not in expr, expr
        assert (
            "linkstack / Logs",
            "nginx and app lines of request $request_id",
            '{service=~"nginx|app"} | request_id="0123456789abcdef"',
        ) in loki
        assert any('instance=~".*"' in expr and "[1m]" not in expr for _, _, expr in prometheus)

    def test_queries_of_one_dashboard_or_all_but_some(self) -> None:
        """uid= keeps one dashboard's queries, exclude_uids= leaves dashboards out; an unknown uid is an error."""
        prometheus = queries("prometheus")
        load_test = queries("prometheus", uid="linkstack-load-test")
        rest = queries("prometheus", exclude_uids=("linkstack-load-test",))
        assert load_test and {title for title, _, _ in load_test} == {"linkstack / Load test"}
        assert sorted(load_test + rest) == sorted(prometheus)
        assert any(expr.startswith("locust_response_time_seconds") for _, _, expr in load_test)
        assert not any("locust_" in expr for _, _, expr in rest)
        with pytest.raises(ValueError, match="linkstack-no-such"):
            queries("prometheus", uid="linkstack-no-such")
        with pytest.raises(ValueError, match="linkstack-no-such"):
            queries("prometheus", exclude_uids=("linkstack-no-such",))


class TestMounts:
    def test_provider_reads_the_generated_dashboards(self) -> None:
        """One file provider, folder linkstack, not deletable nor savable from the UI, rereading every 30 s,
        reading /etc/grafana/dashboards; the generator writes grafana/dashboards."""
        config = provisioning(PROVIDERS)
        assert config["apiVersion"] == 1
        (provider,) = config["providers"]
        assert provider["type"] == "file"
        assert provider["folder"] == "linkstack"
        assert provider["disableDeletion"] is True
        assert provider["allowUiUpdates"] is False
        assert provider["updateIntervalSeconds"] == 30
        assert provider["options"]["path"] == "/etc/grafana/dashboards"
        assert sorted(DASHBOARDS.glob("*.json")), "grafana/dashboards is empty: uv run grafana/generate.py"

    def test_compose_mounts_dashboards_where_the_provider_reads(self) -> None:
        """The grafana service's bind mounts put grafana/dashboards at the provider's path and the
        provisioning files under /etc/grafana/provisioning."""
        # The profile compose.local-images.yaml puts grafana in, so it is there in either mode.
        compose = Compose("linkstack-config", env={"COMPOSE_PROFILES": "upstream-images"})
        services = json.loads(compose.run("config", "--format", "json").stdout)["services"]
        binds = [v for v in services["grafana"].get("volumes", []) if v["type"] == "bind"]

        def in_container(host: Path) -> PurePosixPath | None:
            for bind in sorted(binds, key=lambda b: len(b["source"]), reverse=True):
                if host.is_relative_to(bind["source"]):
                    return PurePosixPath(bind["target"]) / host.relative_to(bind["source"]).as_posix()
            return None

        (provider,) = provisioning(PROVIDERS)["providers"]
        assert in_container(DASHBOARDS) == PurePosixPath(provider["options"]["path"])
        assert in_container(PROVIDERS) == PROVISIONING_IN_CONTAINER / "dashboards" / PROVIDERS.name
        assert in_container(DATASOURCES) == PROVISIONING_IN_CONTAINER / "datasources" / DATASOURCES.name
        for bind in binds:
            if Path(bind["source"]).is_relative_to(GRAFANA):
                assert bind.get("read_only") is True, bind
