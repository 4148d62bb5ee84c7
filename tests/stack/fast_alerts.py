"""A test overlay that makes Prometheus' alerts fire within seconds, expressions unchanged.

prometheus/ is copied with 5 s scrape and evaluation intervals and every `for:` cut to a few
seconds, and mounted in place of the real folder. Only timing changes: what a test proves
about an alert's expression holds for the committed rules.
"""

import re
import shutil
from pathlib import Path

from tests.compose import ROOT

INTERVAL = "5s"
FOR = "10s"


def fast_alerts_overlay(workdir: Path) -> Path:
    folder = workdir / "prometheus-fast"
    shutil.copytree(ROOT / "prometheus", folder, ignore=shutil.ignore_patterns("*.test.yml"))
    config = folder / "prometheus.yml"
    config.write_text(re.sub(r"(?m)^(\s+(?:scrape|evaluation)_interval): \S+", rf"\1: {INTERVAL}", config.read_text()))
    alerts = folder / "rules" / "alerts.yml"
    shortened, count = re.subn(r"(?m)^(\s+for): \S+", rf"\1: {FOR}", alerts.read_text())
    assert count >= 10, f"only {count} for: durations found in {alerts}"
    alerts.write_text(shortened)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # Prometheus reads it as nobody
    overlay = workdir / "compose.fast-alerts.yaml"
    overlay.write_text(
        "services:\n"
        "  prometheus:\n"
        "    volumes: !override\n"
        f"      - {folder}:/etc/prometheus:ro\n"
        "      - prometheus-data:/prometheus\n"
    )
    return overlay
