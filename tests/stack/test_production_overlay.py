"""compose.prod.yaml on top of compose.yaml: real certificates and secrets, or no start at all."""

import os
from pathlib import Path

import pytest
import trustme

from devservers import free_port
from tests.compose import Compose
from tests.stack.stacks import running

PROD = ("compose.yaml", "compose.prod.yaml")
DOMAIN = "localhost"
# Each secret's owner, as the overlay's header tells an operator to set them.
SECRET_OWNERS = {
    "postgres_password": (999, 10001),
    "redis_password": (999, 10001),
    "admin_token": (10001, 10001),
    "grafana_admin_password": (472, 10001),
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
    folder.mkdir(mode=0o750)
    for name, (uid, gid) in SECRET_OWNERS.items():
        path = folder / name
        path.write_text(os.urandom(24).hex())
        os.chown(path, uid, gid)
        path.chmod(0o440)
    os.chown(folder, 0, 10001)
    return folder


@pytest.fixture
def prod_env(tmp_path: Path) -> dict[str, str]:
    tmp_path.chmod(0o755)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return {
        "DOMAIN": DOMAIN,
        "LETSENCRYPT_DIR": str(letsencrypt_layout(tmp_path / "letsencrypt", ca)),
        "SECRETS_DIR": str(secrets_dir(tmp_path / "secrets")),
        "EDGE_SUBNET": "10.213.202.0/24",
        "EDGE_IP_RANGE": "10.213.202.128/25",
        "NGINX_EDGE_IP": "10.213.202.2",
        "PROMETHEUS_PORT": str(free_port()),
        "ALERTMANAGER_PORT": str(free_port()),
        "GRAFANA_PORT": str(free_port()),
    }


def test_production_overlay_passes_the_smoke_check(prod_env: dict[str, str], tmp_path: Path) -> None:
    """Up with test secrets and certificates on 80/443; the smoke check passes; no X-Replica."""
    compose = Compose("linkstack-prodtest", PROD, env=prod_env)
    with running(
        compose, tmp_path, https="https://localhost", http="http://localhost", ca_file=tmp_path / "ca.pem"
    ) as stack:
        result = stack.smoke()
        assert result.returncode == 0, result.stdout + result.stderr
        with stack.client() as client:
            response = client.get("/health")
            assert "x-replica" not in response.headers
            assert client.put("/api/admin/faults", json={}).status_code == 404


def test_production_overlay_refuses_to_start_without_secrets(prod_env: dict[str, str], tmp_path: Path) -> None:
    """With a secret file missing nothing starts, and the message names the file."""
    (Path(prod_env["SECRETS_DIR"]) / "admin_token").unlink()
    compose = Compose("linkstack-prodtest-nosecrets", PROD, env=prod_env)
    try:
        result = compose.run("up", "-d", "--wait", "--wait-timeout", "120", check=False, timeout=900)
        assert result.returncode != 0
        assert "admin_token" in result.stderr, result.stderr
        running_services = compose.run("ps", "--status", "running", "-q").stdout.split()
        assert running_services == []
    finally:
        compose.run("down", "-v", "--remove-orphans", check=False)
