"""Every overlay renders, every object in it validates strictly (unknown fields are errors)
against the schemas of each Kubernetes release in the supported range, no custom resource is
needed, and checkov's Kubernetes policies pass on what is rendered, each accepted finding
answered in k8s/README.md."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests import figures
from tests.compose import ROOT
from tests.k8s.manifests import KUBERNETES_VERSIONS, OVERLAYS, rendered

# Every apiVersion the manifests use is Kubernetes' own: nothing needs a CRD installed.
CORE_GROUPS = {"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1",
               "rbac.authorization.k8s.io/v1"}  # fmt: skip


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(overlay: str, version: str) -> None:
    problems = []
    for obj in rendered(overlay):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_custom_resource_is_needed(overlay: str) -> None:
    assert {obj["apiVersion"] for obj in rendered(overlay)} <= CORE_GROUPS


def answered_checks() -> set[str]:
    """The checkov checks k8s/README.md answers (its "Policy findings" table)."""
    text = (ROOT / "k8s" / "README.md").read_text()
    section = text.split("## Policy findings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| (CKV2?_K8S_\d+) \|", section, re.MULTILINE))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes_or_each_finding_is_answered(overlay: str, tmp_path: Path) -> None:
    # One file per object: checkov passes over a file with "{{" in it (the alert templates of
    # the rules ConfigMap) as a Helm template, and so over every object in that file.
    for index, obj in enumerate(rendered(overlay)):
        (tmp_path / f"{index:02d}.yaml").write_text(yaml.safe_dump(obj))
    result = subprocess.run(
        [Path(sys.executable).parent / "checkov", "--framework", "kubernetes", "--directory", tmp_path,
         "--output", "json", "--compact", "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # not the repository's .checkov.yaml
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # no call home (tests/config/test_linters.py)
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["resource_count"] > 0 and summary["parsing_errors"] == 0, summary
    failed = {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}
    unanswered = sorted(f"{check} on {resource}" for check, resource in failed if check not in answered_checks())
    figures.record(
        "linters",
        f"checkov kubernetes, k8s/overlays/{overlay}: {summary['resource_count']} resources, "
        f"{summary['passed']} passed, {summary['failed']} failed (each answered in k8s/README.md)",
    )
    assert not unanswered, "checkov findings not answered in k8s/README.md:\n" + "\n".join(unanswered)
