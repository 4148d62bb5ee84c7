"""compose.prod.yaml on top of compose.yaml: real certificates and secrets, or no start at all.

`prod_stack` brings the overlay up once for the module, with test certificates and secrets laid
out as its header tells an operator to; more production checks can use it."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.compose import PROD, Compose
from tests.stack.hardening import PROBE, READERS, SECRETS, Container, assert_locked_down, containers, probe_readable
from tests.stack.raw_http import request, send_raw, status_of
from tests.stack.stacks import Stack, isolated_env, running

DOMAIN = "localhost"
# Each secret's group, as the overlay's header tells an operator to set them (owner root, 0440):
# only its consumers get the group (compose.yaml's group_add).
SECRET_GROUPS = {
    "postgres_password": 10101,
    "redis_password": 10102,
    "admin_token": 10103,
    "grafana_admin_password": 10104,
}


def letsencrypt_layout(folder: Path, ca: trustme.CA) -> Path:
    """live/DOMAIN/{fullchain,privkey}.pem, readable by nginx's uid 101 as the header requires."""
    live = folder / "live" / DOMAIN
    live.mkdir(parents=True)
    issued = ca.issue_cert(DOMAIN, "127.0.0.1")
    issued.private_key_pem.write_to_path(str(live / "privkey.pem"))
    (live / "fullchain.pem").write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    for path in (folder, folder / "live", live):
        path.chmod(0o755)
    for pem in live.iterdir():
        pem.chmod(0o644)
    return folder


def secrets_dir(folder: Path) -> Path:
    """The header's recipe: a root-only folder; each file root-owned, its own group, 0440."""
    folder.mkdir(mode=0o700)
    for name, gid in SECRET_GROUPS.items():
        path = folder / name
        path.write_text(os.urandom(32).hex())
        os.chown(path, 0, gid)
        path.chmod(0o440)
    return folder


def prod_env_in(folder: Path, octet: int) -> dict[str, str]:
    """Everything the overlay requires, made in `folder`: CA (ca.pem), certificates, secrets;
    subnets of their own (`octet`), so a second project can exist beside this one."""
    folder.chmod(0o755)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return {
        "DOMAIN": DOMAIN,
        "LETSENCRYPT_DIR": str(letsencrypt_layout(folder / "letsencrypt", ca)),
        "SECRETS_DIR": str(secrets_dir(folder / "secrets")),
        "DOCKER_SOCKET_GID": str(os.stat("/var/run/docker.sock").st_gid),
        **{key: value for key, value in isolated_env(octet).items() if "_PORT" not in key},
    }


@pytest.fixture(scope="module")
def prod_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prod")


@pytest.fixture(scope="module")
def prod_env(prod_folder: Path) -> dict[str, str]:
    return prod_env_in(prod_folder, 205)


@pytest.fixture(scope="module")
def prod_stack(prod_env: dict[str, str], prod_folder: Path) -> Iterator[Stack]:
    """The overlay up on 80/443 with test secrets and certificates, once for the module."""
    compose = Compose("linkstack-prodtest", PROD, env=prod_env)
    with running(
        compose, prod_folder, https="https://localhost", http="http://localhost", ca_file=prod_folder / "ca.pem"
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def prod_containers(prod_stack: Stack) -> list[Container]:
    return containers(prod_stack.compose.project)


def test_production_overlay_passes_the_smoke_check(prod_stack: Stack) -> None:
    """Up with test secrets and certificates on 80/443; the smoke check passes; no X-Replica."""
    result = prod_stack.smoke()
    assert result.returncode == 0, result.stdout + result.stderr
    with prod_stack.client() as client:
        response = client.get("/health")
        assert "x-replica" not in response.headers
        assert client.put("/api/admin/faults", json={}).status_code == 404


def test_each_compose_secret_is_readable_by_its_consumers_only(
    prod_env: dict[str, str], prod_containers: list[Container]
) -> None:
    """From inside every running container, as its user, exactly its service's secrets are
    readable at /run/secrets; and with all four secret files mounted as Compose mounts them,
    each container's identity (uid, gid, groups of PID 1) still reads only its own."""
    folder = Path(prod_env["SECRETS_DIR"])
    mounts = [f"{folder / name}:{PROBE}/{name}:ro" for name in SECRETS]
    image = next(c.inspect["Config"]["Image"] for c in prod_containers if c.service == "secrets")
    tried = set()
    for container in prod_containers:
        if not container.running:
            continue
        expected = READERS.get(container.service, frozenset())
        assert probe_readable(image, container.identity(), mounts) == expected, container.name
        readable = container.readable_secrets()
        if readable is not None:  # None: an upstream image without cat, covered by the probe
            tried.add(container.service)
            assert readable == expected, container.name
    assert tried >= {"postgres", "redis", "app"}


def test_only_nginx_publishes_ports(prod_containers: list[Container]) -> None:
    """80 and 443 of nginx are the host's only published ports; the UIs are reached through SSH
    tunnels (the overlay's header)."""
    published = {
        (container.service, port.split("/")[0], binding["HostPort"])
        for container in prod_containers
        for port, bindings in (container.inspect["NetworkSettings"]["Ports"] or {}).items()
        for binding in bindings or []
    }
    assert {(service, target, host) for service, target, host in published} == {
        ("nginx", "8080", "80"),
        ("nginx", "8443", "443"),
    }


def test_every_production_container_is_locked_down(prod_containers: list[Container]) -> None:
    """All non-root (socket-proxy too: its image's user with the socket's group), read-only root,
    no capabilities, no-new-privileges, a pids limit."""
    for container in prod_containers:
        assert_locked_down(container)
    proxy = next(c for c in prod_containers if c.service == "socket-proxy")
    assert proxy.running and proxy.inspect["State"]["Health"]["Status"] == "healthy"


def test_production_api_keeps_links_to_their_owners(prod_stack: Stack, prod_folder: Path) -> None:
    """The whole list needs the admin token; deleting needs the link's management token (or the
    admin's); no OpenAPI document, no docs, no fault injection."""
    admin = {"Authorization": f"Bearer {(prod_folder / 'secrets' / 'admin_token').read_text().strip()}"}
    with prod_stack.client() as client:
        created = client.post("/api/links", json={"url": "https://example.com/owned"})
        assert created.status_code == 201, created.text
        code, token = created.json()["code"], created.json()["management_token"]
        assert client.get("/api/links").status_code == 401
        assert code in [link["code"] for link in client.get("/api/links", headers=admin).json()["items"]]
        assert "management_token" not in client.get(f"/api/links/{code}").json()
        assert client.delete(f"/api/links/{code}").status_code == 401
        assert client.delete(f"/api/links/{code}", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
        assert client.delete(f"/api/links/{code}", headers={"Authorization": f"Bearer {token}"}).status_code == 204
        for hidden in ("/openapi.json", "/docs"):
            assert client.get(hidden).status_code == 404, hidden
        assert client.put("/api/admin/faults", json={}).status_code == 404


def test_production_edge_shows_the_public_no_internals(prod_stack: Stack) -> None:
    """/ready is the status word only; click events name no replica; a Host that is not DOMAIN
    gets no response at all (see tests/stack/local/test_edge_hardening.py for the local stack)."""
    with prod_stack.client() as client:
        assert client.get("/ready").json() == {"status": "ready"}
        with prod_stack.websocket("/ws/clicks") as ws:
            code = client.post("/api/links", json={"url": "https://example.com/streamed"}).json()["code"]
            assert client.get(f"/{code}").status_code == 307
            event = json.loads(ws.recv(timeout=10))
    assert event["code"] == code
    assert "replica" not in event, event
    for tls in (True, False):
        assert send_raw(prod_stack, request("GET", "/health", host="evil.example"), tls=tls) == b""
        assert status_of(send_raw(prod_stack, request("GET", "/health", host=DOMAIN), tls=tls)) == 200


def test_production_overlay_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    """With a secret file missing nothing starts, and the message names the file."""
    env = prod_env_in(tmp_path, 204)
    (Path(env["SECRETS_DIR"]) / "admin_token").unlink()
    compose = Compose("linkstack-prodtest-nosecrets", PROD, env=env)
    try:
        result = compose.run("up", "-d", "--wait", "--wait-timeout", "120", check=False, timeout=900)
        assert result.returncode != 0
        assert "admin_token" in result.stderr, result.stderr
        running_services = compose.run("ps", "--status", "running", "-q").stdout.split()
        assert running_services == []
    finally:
        compose.run("down", "-v", "--remove-orphans", check=False)
