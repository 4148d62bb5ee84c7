"""The k8s/ overlays rendered by kustomize, as the cluster would receive them, and the Compose
stack's own configuration to compare them with."""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from typing import Any

import yaml

from app.core.config import Settings
from tests.compose import PROD_CONFIG_ENV, ROOT, Compose

OVERLAYS = ("dev", "prod")
# The Kubernetes releases the manifests are checked against: the newest five that
# kubernetes-validate bundles. 1.33 is the oldest with the preStop sleep action on by default.
KUBERNETES_VERSIONS = ("1.33.0", "1.34.0", "1.35.0", "1.36.0", "1.37.0")

Object = dict[str, Any]


def kustomize() -> str:
    # .tools/bin: where scripts/test unpacks it when the machine has none.
    path = shutil.which("kustomize", path=os.pathsep.join([str(ROOT / ".tools" / "bin"), os.environ["PATH"]]))
    assert path, "kustomize is not installed: scripts/test installs it (or install kustomize 5)"
    return path


@cache
def rendered_text(overlay: str) -> str:
    result = subprocess.run(
        [kustomize(), "build", str(ROOT / "k8s" / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"k8s/overlays/{overlay} does not render:\n{result.stderr}"
    return result.stdout


def rendered(overlay: str) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(rendered_text(overlay)) if doc]


def objects(overlay: str, kind: str) -> list[Object]:
    return [obj for obj in rendered(overlay) if obj["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> Object:
    found = [obj for obj in objects(overlay, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: {len(found)} {kind} named {name}"
    return found[0]


def pod_spec(obj: Object) -> Object:
    return obj["spec"]["template"]["spec"]


def workloads(overlay: str) -> Iterator[Object]:
    for obj in rendered(overlay):
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet", "CronJob"):
            yield obj


def container(obj: Object, name: str) -> Object:
    (found,) = [c for c in pod_spec(obj)["containers"] if c["name"] == name]
    return found


def config_map_data(overlay: str, prefix: str) -> dict[str, str]:
    """A generated ConfigMap's data (its name carries a content hash)."""
    (found,) = [m for m in objects(overlay, "ConfigMap") if m["metadata"]["name"].startswith(prefix + "-")]
    return found["data"]


def environment(overlay: str, obj: Object, name: str) -> dict[str, str]:
    """What a container's environment holds: its ConfigMap's entries and its own env."""
    spec = container(obj, name)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env |= config_map_data(overlay, source["configMapRef"]["name"].rsplit("-", 1)[0])
    env |= {e["name"]: e["value"] for e in spec.get("env", [])}
    return env


@cache
def compose_services(production: bool = False) -> dict[str, Any]:
    files = ("compose.yaml", "compose.prod.yaml") if production else ("compose.yaml",)
    compose = Compose("linkstack-config", files=files, env=PROD_CONFIG_ENV)
    return json.loads(compose.run("config", "--format", "json").stdout)["services"]


def settings_from(env: dict[str, str]) -> Settings:
    """Settings as the app would build them from this environment (secrets stand in for the files)."""
    values = {k.lower(): v for k, v in env.items() if not k.endswith("_FILE")}
    return Settings(**values, admin_token="x" * 16, database_password="x", redis_password="x")
