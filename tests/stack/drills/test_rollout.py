"""scripts/rollout under traffic: every replica replaced without a failed request, and a release
that never gets ready rolled back by itself."""

import os
import subprocess
import sys

import pytest

from tests.compose import ROOT
from tests.stack.drills.conftest import REPLICAS, assert_every_click_stored, docker, replica_containers, report
from tests.stack.drills.traffic import Traffic
from tests.stack.stacks import Stack

APP_IMAGE = "linkstack/app:dev"


def release(tag: str, *lines: str) -> str:
    """A new image of the app: the current one plus `lines` (a label makes it a different image)."""
    dockerfile = "\n".join([f"FROM {APP_IMAGE}", f"LABEL org.opencontainers.image.version={tag}", *lines])
    image = f"linkstack/app:{tag}"
    subprocess.run(
        ["docker", "build", "-q", "-t", image, "-"],
        input=dockerfile,
        text=True,
        capture_output=True,
        check=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    return image


def rollout(stack: Stack, image: str, *args: str) -> subprocess.CompletedProcess[str]:
    env_file = os.environ.get("LINKSTACK_ENV_FILE")
    command = [sys.executable, "scripts/rollout", "--image", image, *args]
    if env_file:
        command += ["--env-file", env_file]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **stack.compose.environment()},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def images() -> list[str]:
    """Release images made by a test, removed after it (the stack's teardown goes back to APP_IMAGE)."""
    made: list[str] = []
    yield made
    for image in made:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_rollout_of_every_replica(stack: Stack, traffic: Traffic, links: list[str], images: list[str]) -> None:
    """0 failed requests; the longest gap between successful answers under 1 s; no click lost
    (the old replicas flush theirs as they drain)."""
    old = set(replica_containers(stack))
    images.append(release("drill-next"))
    with traffic.running() as record:
        result = rollout(stack, images[0])
    figures = report(stack, record, "rollout of every replica", *result.stdout.strip().splitlines()[-12:])
    assert result.returncode == 0, result.stdout + result.stderr
    new = set(replica_containers(stack))
    assert len(new) == REPLICAS and not new & old, (old, new)
    assert {docker("inspect", "--format", "{{.Config.Image}}", c) for c in new} == {images[0]}
    assert not record.failures(), figures
    assert record.longest_gap() < 1.0, figures
    assert_every_click_stored(stack, record, links)


def test_rollout_of_a_release_that_never_gets_ready(stack: Stack, traffic: Traffic, images: list[str]) -> None:
    """Its replicas start but never answer /ready (a start-up that hangs): the rollout gives up
    after --timeout, removes them and leaves the old ones serving, without a failed request."""
    old = set(replica_containers(stack))
    images.append(release("drill-broken", 'CMD ["python", "-c", "import time; time.sleep(3600)"]'))
    with traffic.running() as record:
        result = rollout(stack, images[0], "--timeout", "20")
    figures = report(
        stack, record, "rollout of a release that never gets ready", *result.stdout.strip().splitlines()[-6:]
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "roll" in result.stdout.lower(), result.stdout
    assert set(replica_containers(stack)) == old
    assert not record.failures(), figures
