"""nginx -t on the configuration as Compose renders it, in the pinned nginx image."""

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.compose import ROOT, Compose

PROD = ("compose.yaml", "compose.prod.yaml")


@pytest.fixture(scope="module")
def network() -> Iterator[str]:
    """A user-defined network, so Docker's DNS (127.0.0.11, the upstream's resolver) exists."""
    name = f"linkstack-nginx-t-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["docker", "network", "rm", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs")
    folder.chmod(0o755)
    issued = trustme.CA().issue_cert("localhost", "links.example.com")
    issued.cert_chain_pems[0].write_to_path(str(folder / "fullchain.pem"))
    issued.private_key_pem.write_to_path(str(folder / "privkey.pem"))
    for pem in folder.iterdir():
        pem.chmod(0o644)  # the unprivileged image reads it as uid 101
    return folder


def nginx_test(compose: Compose, network: str, certificate: Path) -> subprocess.CompletedProcess[str]:
    service = json.loads(compose.run("config", "--format", "json").stdout)["services"]["nginx"]
    env = service["environment"]
    # The repository's files as the compose files mount them (templates, snippets, entrypoint
    # script); the certificates are the test's own.
    binds = [
        arg
        for volume in service["volumes"]
        if volume["type"] == "bind" and Path(volume["source"]).is_relative_to(ROOT)
        for arg in ("-v", f"{volume['source']}:{volume['target']}:ro")
    ]
    env_args = [
        arg
        for key, value in env.items()
        if key not in ("NGINX_TLS_CERT", "NGINX_TLS_KEY")
        for arg in ("-e", f"{key}={value}")
    ]
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            network,
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/etc/nginx/conf.d:uid=101,gid=101",
            "--cap-drop",
            "ALL",
            *env_args,
            "-e",
            "NGINX_TLS_CERT=/certs/fullchain.pem",
            "-e",
            "NGINX_TLS_KEY=/certs/privkey.pem",
            *binds,
            "-v",
            f"{certificate}:/certs:ro",
            service["image"],
            "nginx",
            "-t",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "compose",
    [
        Compose("linkstack-config"),
        Compose("linkstack-config", PROD, env={"DOMAIN": "links.example.com"}),
        # The switches the load tests and benchmarks compare (loadtest/).
        Compose("linkstack-config", env={"NGINX_BALANCE": "round_robin", "NGINX_UPSTREAM_KEEPALIVE": "0"}),
    ],
    ids=["local", "production", "round-robin-no-keepalive"],
)
def test_nginx_accepts_the_rendered_config(compose: Compose, network: str, certificate: Path) -> None:
    result = nginx_test(compose, network, certificate)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr


def test_an_unknown_balancing_method_stops_nginx_with_the_reason(network: str, certificate: Path) -> None:
    result = nginx_test(Compose("linkstack-config", env={"NGINX_BALANCE": "fastest"}), network, certificate)
    assert result.returncode != 0
    assert "NGINX_BALANCE must be least_conn or round_robin, not 'fastest'" in result.stderr
