"""Prometheus, Alertmanager and the exporters on the running stack.

Every target up, replicas found through DNS as they come and go, every recording rule and
dashboard query answered from live data, every metric an alert reads present, and the routes
Alertmanager runs. The p99 alert from injected latency to a notification and back is
tests/stack/loadtest's p99-breach, which drives it with real load.
"""

import time
import uuid

import httpx
import pytest
import yaml

from devservers import eventually
from tests.compose import ROOT, local_images
from tests.dashboards import queries
from tests.stack.stacks import Stack
from tests.stack.telemetry import LEFT_OUT_PREFIXES, SYNTHETIC, Alertmanager, Prometheus

RULES = ROOT / "prometheus" / "rules"
# The load-test dashboard reads Locust's series, which exist only while Locust runs (the loadtest
# profile): this stack runs no Locust. tests/stack/loadtest checks its queries while a scenario runs.
LOAD_TEST_DASHBOARD = "linkstack-load-test"
ALWAYS = {"app", "nginx", "postgres", "redis", "prometheus", "alertmanager"}


def rules(kind: str) -> list[dict]:
    groups = yaml.safe_load((RULES / f"{kind}.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def traffic(stack: Stack, prometheus: Prometheus) -> None:
    """A little of everything the app serves, in two rounds a scrape apart, so that rates are not 0."""
    code = f"obs{uuid.uuid4().hex[:6]}"
    with stack.client() as client:
        assert client.post("/api/links", json={"url": "https://example.com/o", "code": code}).status_code == 201
        for _ in range(2):
            for _ in range(5):
                assert client.get(f"/{code}").status_code == 307
            assert client.get(f"/api/links/{code}").status_code == 200
            assert client.get("/api/links", params={"limit": 5}).status_code == 200
            assert client.get("/api/stats/top").status_code == 200
            assert client.get("/no-such-code-here").status_code == 404
            time.sleep(6)  # the test overlay scrapes every 5 s
        # A burst past the rate limit (10 r/s, burst 20): the 429s Alloy counts for NginxRateLimitedBurst.
        statuses = {client.get(f"/api/links/{code}").status_code for _ in range(40)}
        assert 429 in statuses


def test_every_target_is_up(prometheus: Prometheus) -> None:
    """Each replica, the exporters, Prometheus and Alertmanager (and the log services where they run) are up."""

    def all_up() -> list[dict]:
        targets = prometheus.targets()
        return targets if targets and all(t["health"] == "up" for t in targets) else []

    try:
        targets = eventually(all_up, "every target up", timeout=60, interval=2)
    except AssertionError:
        down = [
            (t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in prometheus.targets() if t["health"] != "up"
        ]
        raise AssertionError(f"targets down: {down}") from None
    jobs = {t["labels"]["job"] for t in targets}
    expected = ALWAYS if local_images() else ALWAYS | {"alloy", "loki", "grafana"}
    assert jobs == expected
    assert sum(t["labels"]["job"] == "app" for t in targets) == 3


def test_replicas_come_and_go_as_targets(stack: Stack, prometheus: Prometheus) -> None:
    """--scale app=4 adds a target through DNS; scaling back removes it. No Docker socket involved."""

    def app_targets(count: int) -> bool:
        targets = [t for t in prometheus.targets() if t["labels"]["job"] == "app"]
        return len(targets) == count and all(t["health"] == "up" for t in targets)

    try:
        stack.compose.run("up", "-d", "--wait", "--no-recreate", "--scale", "app=4", timeout=300)
        eventually(lambda: app_targets(4), "4 app targets up", timeout=60, interval=1)
    finally:
        stack.compose.run("up", "-d", "--wait", "--no-recreate", "--scale", "app=3", timeout=300)
    eventually(lambda: app_targets(3), "back to 3 app targets", timeout=60, interval=1)


def test_every_rule_evaluates(prometheus: Prometheus) -> None:
    """Prometheus loaded every rule of prometheus/rules and evaluates each without an error."""
    loaded = {rule["name"]: rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]}
    for rule in rules("recording") + rules("alerts"):
        name = rule.get("record") or rule["alert"]
        assert name in loaded, f"{name} not loaded"
        assert loaded[name]["health"] == "ok", f"{name}: {loaded[name].get('lastError')}"


def missing(prometheus: Prometheus, expr: str) -> list[str]:
    """The selectors of `expr` with no live series, leaving out those no running service can produce."""
    return [
        selector
        for selector in prometheus.selectors(expr)
        if not selector.startswith(SYNTHETIC + LEFT_OUT_PREFIXES) and not prometheus.query(selector)
    ]


def test_recording_rules_and_dashboards_return_data(prometheus: Prometheus, traffic: None) -> None:
    """No recording rule and no dashboard panel shows "No data" on a stack that served a little traffic
    (the load-test dashboard left out: no Locust runs here)."""
    checks = [("recording rule", rule["record"], rule["expr"]) for rule in rules("recording")]
    checks += queries("prometheus", exclude_uids=(LOAD_TEST_DASHBOARD,))

    def empty() -> list[str]:
        found = []
        for where, name, expr in checks:
            # Empty is acceptable only for a query over series of a service this stack left out.
            left_out = LEFT_OUT_PREFIXES and all(s.startswith(LEFT_OUT_PREFIXES) for s in prometheus.selectors(expr))
            if not prometheus.query(expr) and not left_out:
                found.append(f"{where} / {name}: {expr}")
        return found

    # Rules see new series a scrape and an evaluation later: give them a few rounds.
    try:
        eventually(lambda: not empty(), "every query answered", timeout=40, interval=5)
    except AssertionError:
        raise AssertionError("no data:\n" + "\n".join(empty())) from None


def test_every_metric_an_alert_reads_exists(prometheus: Prometheus, traffic: None) -> None:
    """Each alert expression runs, and every series it reads is exported by some running target.

    An alert over a metric nobody exports never fires: that is what this catches.
    """
    problems = []
    for rule in rules("alerts"):
        prometheus.query(rule["expr"])  # runs without an error
        if gone := missing(prometheus, rule["expr"]):
            problems.append(f"{rule['alert']}: no series for {gone}")
    assert not problems, "\n".join(problems)


def test_alertmanager_config_is_the_committed_one(alertmanager: Alertmanager) -> None:
    """The running Alertmanager routes by severity to the sink, with the inhibitions of alertmanager.yml."""
    status = httpx.get(f"{alertmanager.url}/api/v2/status", timeout=15).json()
    config = yaml.safe_load(status["config"]["original"])
    committed = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    # Alertmanager writes its defaults (continue: false) into what it reports.
    for running, written in zip(config["route"]["routes"], committed["route"]["routes"], strict=True):
        assert running.items() >= written.items()
    assert config["inhibit_rules"] == committed["inhibit_rules"]
