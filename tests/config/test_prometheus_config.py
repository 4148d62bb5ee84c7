"""Prometheus' and Alertmanager's configuration, checked by their own tools in the pinned images."""

import json
import subprocess

import pytest
import yaml

from tests.compose import ROOT, Compose


def image(service: str) -> str:
    return json.loads(Compose("linkstack-config").run("config", "--format", "json").stdout)["services"][service][
        "image"
    ]


def tool(service: str, entrypoint: str, *args: str, mounts: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    volumes = [arg for mount in mounts for arg in ("-v", mount)]
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/tmp",  # promtool test rules keeps its scratch TSDB there
            *volumes,
            "--entrypoint",
            entrypoint,
            "-w",
            "/etc/prometheus/rules",
            image(service),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


PROMETHEUS_MOUNT = (f"{ROOT / 'prometheus'}:/etc/prometheus:ro",)


def test_promtool_check_config() -> None:
    """prometheus.yml and every rule file it loads are valid for the pinned Prometheus."""
    result = tool(
        "prometheus", "/bin/promtool", "check", "config", "/etc/prometheus/prometheus.yml", mounts=PROMETHEUS_MOUNT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


@pytest.mark.parametrize("rules", ["recording.yml", "alerts.yml"])
def test_promtool_check_rules(rules: str) -> None:
    """Names, expressions, labels and annotation templates of each rule file."""
    result = tool("prometheus", "/bin/promtool", "check", "rules", rules, mounts=PROMETHEUS_MOUNT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("tests", ["recording.test.yml", "alerts.test.yml"])
def test_promtool_test_rules(tests: str) -> None:
    """Each alert fires where it must and stays quiet where it must not; the recording rules compute
    what the dashboards show (prometheus/rules/*.test.yml)."""
    result = tool("prometheus", "/bin/promtool", "test", "rules", tests, mounts=PROMETHEUS_MOUNT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    """No alert in alerts.yml without a case in alerts.test.yml."""
    alerts = {
        line.split(":", 1)[1].strip()
        for line in (ROOT / "prometheus/rules/alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = (ROOT / "prometheus/rules/alerts.test.yml").read_text()
    assert alerts, "no alerts found"
    assert {alert for alert in alerts if f"alertname: {alert}" not in tested} == set()


def test_amtool_check_config() -> None:
    """alertmanager.yml: routes, receivers and inhibitions are valid for the pinned Alertmanager."""
    result = tool(
        "alertmanager",
        "/bin/amtool",
        "check-config",
        "/etc/alertmanager/alertmanager.yml",
        mounts=(f"{ROOT / 'alertmanager'}:/etc/alertmanager:ro",),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_runbook_link_leads_to_a_readme_section() -> None:
    """Each alert's runbook annotation names a README heading that exists, so the link is never dead."""
    readme = (ROOT / "README.md").read_text()
    groups = yaml.safe_load((ROOT / "prometheus/rules/alerts.yml").read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["runbook"] == f"README.md#{rule['alert'].lower()}", rule["alert"]
        assert f"\n#### {rule['alert']}\n" in readme, f"README has no section for {rule['alert']}"


def test_promtool_check_k8s_dev_config() -> None:
    """The dev overlay's Prometheus config (Kubernetes discovery) and the rules it loads."""
    mounts = (
        f"{ROOT / 'k8s/overlays/dev/prometheus.yml'}:/etc/prometheus/prometheus.yml:ro",
        f"{ROOT / 'prometheus/rules'}:/etc/prometheus/rules:ro",
    )
    result = tool("prometheus", "/bin/promtool", "check", "config", "/etc/prometheus/prometheus.yml", mounts=mounts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout
