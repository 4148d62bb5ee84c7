"""The local stack's containers, as Docker runs them: each secret readable by its consumers only,
no secret value anywhere else, non-root and locked down, nothing published but what should be,
and no route out where none is needed (compose.yaml: x-hardening, the "secrets" job, networks)."""

import json
import socket

import httpx
import pytest

from tests.compose import local_images
from tests.stack.hardening import (
    PROBE,
    READERS,
    SECRETS,
    Container,
    assert_locked_down,
    containers,
    docker,
    image_leaks,
    leaks,
    probe_readable,
)
from tests.stack.stacks import Stack

# Locally socket-proxy runs as root (without capabilities) to open the Docker socket, whose
# group differs from host to host: compose.yaml explains; compose.prod.yaml runs it non-root.
ROOT_BY_DESIGN = {"socket-proxy"}
# Published on 127.0.0.1 only: nginx, and the observability UIs (Locust's is in a profile not up here).
PUBLISHED = {"nginx": {8080, 8443}, "prometheus": {9090}, "alertmanager": {9093}, "grafana": {3000}}
NETWORKS = ("backend", "edge", "docker-api", "metrics", "observability", "loadgen")
INTERNAL_NETWORKS = {"backend", "edge", "docker-api"}
OUTSIDE = ("deb.debian.org", 80)  # somewhere beyond every network of the stack
VOLUMES = {"postgres": "secrets-postgres", "redis": "secrets-redis", "app": "secrets-app", "grafana": "secrets-grafana"}


@pytest.fixture(scope="module")
def all_containers(stack: Stack) -> list[Container]:
    return containers(stack.compose.project)


@pytest.fixture(scope="module")
def secret_values(stack: Stack) -> dict[str, str]:
    """Each secret's value, read from the volumes by the job that wrote them. Never printed."""
    paths = [f"/secrets/app/{name}" for name in SECRETS[:3]] + ["/secrets/grafana/grafana_admin_password"]
    script = " ".join(f'cat "{path}"; echo;' for path in paths)
    result = stack.compose.run("run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "secrets", "-c", script)
    values = dict(zip(SECRETS, result.stdout.split(), strict=True))
    assert all(len(value) == 64 for value in values.values()), "secrets are 32 random bytes as hex"
    return values


def test_each_container_reads_only_its_own_secrets(all_containers: list[Container]) -> None:
    """From inside every running container, as its user: `cat` of each secret at /run/secrets
    succeeds for exactly the secrets its service consumes (postgres only postgres_password, redis
    only redis_password, the app its three, ...)."""
    tried = set()
    for container in all_containers:
        if not container.running:
            continue
        readable = container.readable_secrets()
        if readable is None:  # an upstream image without cat (distroless): the probe below covers it
            continue
        tried.add(container.service)
        assert readable == READERS.get(container.service, frozenset()), container.name
    assert tried >= {"postgres", "redis", "app", "postgres-exporter", "redis-exporter"}


def test_secrets_stay_private_even_in_a_shared_mount(stack: Stack, all_containers: list[Container]) -> None:
    """Owner, group and mode alone keep each secret to its consumers: with every secret volume
    mounted, each running container's identity (uid, gid, groups of its PID 1) reads only its own."""
    project = stack.compose.project
    image = next(c.inspect["Config"]["Image"] for c in all_containers if c.service == "secrets")
    mounts = [f"{project}_{volume}:{PROBE}/{name}:ro" for name, volume in VOLUMES.items()]
    for container in all_containers:
        if container.running:
            readable = probe_readable(image, container.identity(), mounts)
            assert readable == set(READERS.get(container.service, ())), container.name


def test_no_secret_in_images_inspect_argv_or_logs(
    all_containers: list[Container], secret_values: dict[str, str]
) -> None:
    """No secret's value in the layers, history or config of the images the stack builds, in any
    container's `docker inspect` (Env, Cmd, Entrypoint, Labels, health log, ...), in any process's
    argv, or in any container's log."""
    built = {c.inspect["Config"]["Image"] for c in all_containers}
    built = {image for image in built if image.startswith("linkstack/")}
    if docker("image", "inspect", "linkstack/locust:dev", check=False).returncode == 0:
        built.add("linkstack/locust:dev")
    assert {"linkstack/app:dev", "linkstack/init:dev"} <= built
    for image in sorted(built):
        assert image_leaks(secret_values, image) == [], image
    for container in all_containers:
        assert leaks(secret_values, json.dumps(container.inspect)) == [], f"docker inspect {container.name}"
        if container.running:
            assert leaks(secret_values, "\n".join(container.argv())) == [], f"argv in {container.name}"
        logs = docker("logs", container.id)
        assert leaks(secret_values, logs.stdout + logs.stderr) == [], f"logs of {container.name}"


def test_every_container_is_locked_down(all_containers: list[Container]) -> None:
    """Every container, jobs included: a non-root user configured and every process running as
    non-root (socket-proxy excepted here), read-only root, all capabilities dropped and none added,
    no-new-privileges, a pids limit."""
    for container in all_containers:
        assert_locked_down(container, root_allowed=container.service in ROOT_BY_DESIGN)
    assert {c.service for c in all_containers} >= {"secrets", "certs", "migrate", "postgres", "app", "nginx"}


def test_only_nginx_and_the_uis_are_published_on_loopback(stack: Stack, all_containers: list[Container]) -> None:
    """Published ports: nginx's two and the observability UIs, all on 127.0.0.1; nginx answers on
    both although its network to the app is internal."""
    expected = {k: v for k, v in PUBLISHED.items() if not (local_images() and k == "grafana")}
    published: dict[str, set[int]] = {}
    for container in all_containers:
        for port, bindings in (container.inspect["NetworkSettings"]["Ports"] or {}).items():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", f"{container.name} {port} on {binding['HostIp']}"
                published.setdefault(container.service, set()).add(int(port.split("/")[0]))
    assert published == expected
    with stack.client() as client:
        assert client.get("/health").status_code == 200
    assert httpx.get(f"{stack.http}/health").status_code == 200


def test_internal_networks_have_no_route_out(stack: Stack, all_containers: list[Container]) -> None:
    """backend, edge and docker-api are internal: from a container on one of them, an
    address the host reaches (Debian's mirror, which scripts/local-images needs anyway) is out of
    reach, while from observability and loadgen, which are not, it answers."""
    project = stack.compose.project
    networks = json.loads(docker("network", "inspect", *(f"{project}_{n}" for n in NETWORKS)).stdout)
    assert {n["Name"].removeprefix(f"{project}_") for n in networks if n["Internal"]} == INTERNAL_NETWORKS
    try:
        address = socket.gethostbyname(OUTSIDE[0])
        socket.create_connection((address, OUTSIDE[1]), timeout=5).close()
    except OSError as error:
        pytest.skip(f"the host itself cannot reach {OUTSIDE[0]}: {error}")
    image = next(c.inspect["Config"]["Image"] for c in all_containers if c.service == "app")
    probe = f"import socket; socket.create_connection(({address!r}, {OUTSIDE[1]}), timeout=3); print('reached')"
    reached = {
        network: "reached" in docker("run", "--rm", "--network", f"{project}_{network}", "--entrypoint", "python",
                                     image, "-c", probe, check=False).stdout
        for network in NETWORKS
    }  # fmt: skip
    assert reached == {network: network not in INTERNAL_NETWORKS for network in NETWORKS}
