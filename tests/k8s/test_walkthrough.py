"""k8s/README.md's walkthrough cannot run here (no cluster), so every command in it is a step of
scripts/k8s, and each step runs with --dry-run: it parses, renders, and prints the commands
it would run, in the order the guarantees need (migrations before the rollout)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.compose import ROOT
from tests.k8s.manifests import kustomize

SCRIPT = ROOT / "scripts" / "k8s"


def k8s(*args: str, script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(kustomize()).parent), os.environ["PATH"]])}
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=60, env=env)


def walkthrough() -> list[str]:
    """The commands of the README's shell blocks (comments and blank lines aside)."""
    text = (ROOT / "k8s" / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.DOTALL)
    return [
        line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")
    ]


def test_every_walkthrough_command_is_a_step_of_the_script() -> None:
    commands = walkthrough()
    assert len(commands) >= 8
    assert [c for c in commands if not c.startswith("scripts/k8s ")] == []


@pytest.mark.parametrize("command", walkthrough())
def test_each_walkthrough_step_dry_runs(command: str) -> None:
    result = k8s("--dry-run", *command.split()[1:])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("+ "), result.stdout


def test_deploy_migrates_before_it_rolls_out() -> None:
    steps = [line for line in k8s("--dry-run", "deploy", "dev").stdout.splitlines() if line.startswith("+ ")]
    order = [next(i for i, s in enumerate(steps) if marker in s) for marker in (
        "delete job migrate", "--selector 'app.kubernetes.io/component!=app'", "--for=condition=complete job/migrate",
        "kubectl apply -f -", "rollout status")]  # fmt: skip
    assert order == sorted(order), steps


def test_prod_deploys_only_a_pinned_image(tmp_path: Path) -> None:
    refused = k8s("--dry-run", "deploy", "prod")
    assert refused.returncode == 2 and "not pinned" in refused.stderr
    assert k8s("pin-image", "registry.example.com/linkstack/app:1.0").returncode == 2
    # On a copy of the repository's k8s/ and script: pinning changes files.
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s", ignore=shutil.ignore_patterns(".local"))
    shutil.copytree(ROOT / "prometheus", tmp_path / "prometheus")
    (tmp_path / "scripts").mkdir()
    script = Path(shutil.copy(SCRIPT, tmp_path / "scripts" / "k8s"))
    reference = "registry.example.com/linkstack/app@sha256:" + "ab" * 32
    assert k8s("pin-image", reference, script=script).returncode == 0
    assert f"image: {reference}" in k8s("render", "prod", script=script).stdout
    assert k8s("--dry-run", "deploy", "prod", script=script).returncode == 0
