"""Bringing a whole stack up for a test session, and always down again."""

import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from websockets.sync.client import ClientConnection, connect

from devservers import free_port
from tests.compose import ROOT, Compose


@dataclass
class Stack:
    compose: Compose
    https: str
    http: str
    ca_file: Path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def websocket(self, path: str) -> ClientConnection:
        """A WebSocket through nginx, from websockets' threaded client, over TLS 1.2.

        That client's reader thread is already reading when the handshake request is sent. Over
        TLS 1.3 it is reading the server's session tickets then, and one OpenSSL connection used
        by two threads at once lost the request: 15 of 3,000 handshakes through nginx timed out,
        and nginx logged none of them. A one-thread client lost none of 3,000, and neither did
        TLS 1.2, which sends nothing after the handshake. Browsers and Locust (gevent) are
        one-thread clients.
        """
        context = self.ssl_context()
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return connect(self.https.replace("https://", "wss://") + path, ssl=context, open_timeout=10)

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTPS client that verifies the stack's certificate against its CA."""
        return httpx.Client(base_url=self.https, verify=self.ssl_context(), timeout=15, **kwargs)  # type: ignore[arg-type]

    def smoke(self) -> subprocess.CompletedProcess[str]:
        """scripts/smoke against this stack, as an operator runs it."""
        command = [sys.executable, "scripts/smoke", self.https, "--ca", str(self.ca_file), "--http-url", self.http]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    def containers(self, service: str) -> list[str]:
        return self.compose.run("ps", "-q", service).stdout.split()


def isolated_env(octet: int) -> dict[str, str]:
    """Free host ports and an edge subnet of its own, so a developer's running stack is left alone."""
    return {
        "HTTP_PORT": str(free_port()),
        "HTTPS_PORT": str(free_port()),
        "EDGE_SUBNET": f"10.213.{octet}.0/24",
        "EDGE_IP_RANGE": f"10.213.{octet}.128/25",
        "NGINX_EDGE_IP": f"10.213.{octet}.2",
        "LOADGEN_SUBNET": f"10.214.{octet}.0/24",
        "LOADGEN_IP_RANGE": f"10.214.{octet}.128/25",
        "LOADGEN_GATEWAY": f"10.214.{octet}.1",
        "LOCUST_PORT": str(free_port()),
        "PROMETHEUS_PORT": str(free_port()),
        "ALERTMANAGER_PORT": str(free_port()),
        "GRAFANA_PORT": str(free_port()),
    }


@contextmanager
def running(compose: Compose, workdir: Path, https: str, http: str, ca_file: Path | None = None) -> Iterator[Stack]:
    """`up --wait`, then `down -v` whatever happens; leftovers of a broken run are removed first."""
    compose.run("down", "-v", "--remove-orphans", check=False)
    try:
        compose.run("up", "-d", "--build", "--wait", "--wait-timeout", "300", timeout=900)
        if ca_file is None:
            ca_file = workdir / f"ca-{uuid.uuid4().hex[:6]}.pem"
            ca_file.write_text(compose.run("run", "--rm", "--no-deps", "-T", "certs", "print-ca").stdout)
        yield Stack(compose, https, http, ca_file)
    except BaseException:
        logs = compose.run("logs", "--no-color", "--tail", "40", check=False).stdout
        print(f"--- logs of {compose.project} ---\n{logs}")
        raise
    finally:
        # Stopped before removed, to see how each service stopped: 137 is SIGKILL, what Docker
        # sends to a service still running when the timeout ends (it ignored SIGTERM).
        running = compose.run("ps", "-q", "--status", "running", check=False).stdout.split()
        compose.run("stop", "--timeout", "30", check=False)
        ended = subprocess.run(
            ["docker", "inspect", "--format", "{{.Name}} {{.State.ExitCode}}", *running], capture_output=True, text=True
        ).stdout.splitlines()
        compose.run("down", "-v", "--remove-orphans", "--timeout", "30", check=False)
        label = f"label=com.docker.compose.project={compose.project}"
        for kind in (["ps", "-aq"], ["volume", "ls", "-q"], ["network", "ls", "-q"]):
            leftover = subprocess.run(
                ["docker", *kind, "--filter", label], capture_output=True, text=True
            ).stdout.split()
            assert not leftover, f"{kind[0]}: left behind by {compose.project}: {leftover}"
        killed = [line.split()[0].lstrip("/") for line in ended if line.endswith(" 137")]
        assert not killed, f"ignored SIGTERM until killed 30 s later: {killed}"


@contextmanager
def local_stack(
    project: str, octet: int, workdir: Path, *overlays: str, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """compose.yaml (and `overlays`) up as `project`, on ports and subnets of its own (`isolated_env`),
    with `env` on top."""
    env = {**isolated_env(octet), **(env or {})}
    compose = Compose(project, files=("compose.yaml", *overlays), env=env)
    https, http = f"https://localhost:{env['HTTPS_PORT']}", f"http://localhost:{env['HTTP_PORT']}"
    with running(compose, workdir, https=https, http=http) as stack:
        yield stack
