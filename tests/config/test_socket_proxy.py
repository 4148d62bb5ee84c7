"""loki/socket-proxy.cfg, run for real: HAProxy in front of the Docker socket lets Alloy read
containers and their logs, and nothing else.

The proxy runs as Compose will run it (root without capabilities, read-only root, the socket
mounted read-only) on a throw-away network, published on a random 127.0.0.1 port. The requests
are the ones Alloy v1.18.1 makes (discovery.docker, loki.source.docker: see the header of the
config) and a range of ones it must not be able to make. Image: $SOCKET_PROXY_IMAGE, else the
value in $LINKSTACK_ENV_FILE (local-images.env), else the upstream pin.
"""

import http.client
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devservers import eventually
from tests.compose import ROOT

UPSTREAM_IMAGE = "haproxy:3.2"
CONFIG = ROOT / "loki/socket-proxy.cfg"
CONFIG_IN_IMAGE = "/usr/local/etc/haproxy/haproxy.cfg"  # the official image's CMD reads it
SOCKET = "/var/run/docker.sock"
# The healthcheck proposed for Compose: needs only bash (no curl or wget in the image).
HEALTHCHECK = (
    "exec 3<>/dev/tcp/127.0.0.1/2375 && printf 'HEAD /_ping HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"
)
SUBJECT_LINE = "socket-proxy-test-line"


def proxy_image() -> str:
    if image := os.environ.get("SOCKET_PROXY_IMAGE"):
        return image
    env_file = os.environ.get("LINKSTACK_ENV_FILE")
    if env_file:
        for line in (ROOT / env_file).read_text().splitlines():
            key, _, value = line.strip().partition("=")
            if key == "SOCKET_PROXY_IMAGE" and value:
                return value
    return UPSTREAM_IMAGE


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


@dataclass
class Proxy:
    container: str
    network: str
    port: int
    subject: str  # id of a running container to inspect, read, and try to harm
    label: str  # a label only the subject carries
    api_version: str

    @property
    def leftover(self) -> str:
        """The name a network or volume would get if a refused create got through."""
        return f"{self.network}-refused"

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 10
    ) -> tuple[int, bytes, http.client.HTTPMessage]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read(), response.headers
        finally:
            connection.close()


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    """The proxy and a subject container on a network of their own; all removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    network, container, subject = (f"linkstack-socket-proxy-{suffix}{part}" for part in ("", "", "-subject"))
    label = f"linkstack.test.socket-proxy={suffix}"
    image = proxy_image()
    try:
        docker("network", "create", network)
        subject_args = ["--name", subject, "--network", network, "--label", label, "--entrypoint", "sh"]
        docker("run", "-d", *subject_args, image, "-c", f"echo {SUBJECT_LINE}; exec sleep 600")
        # As Compose runs it: root for the root-owned socket, but no capability and a read-only root.
        hardening = ["--user", "0:0", "--cap-drop", "ALL", "--read-only", "--security-opt", "no-new-privileges:true"]
        mounts = ["-v", f"{SOCKET}:{SOCKET}:ro", "-v", f"{CONFIG}:{CONFIG_IN_IMAGE}:ro"]
        docker(
            "run", "-d", "--name", container, "--network", network, *hardening, *mounts, "-p", "127.0.0.1::2375", image
        )
        port = int(docker("port", container, "2375/tcp").stdout.split()[0].rsplit(":", 1)[1])
        subject_id = docker("inspect", "-f", "{{.Id}}", subject).stdout.strip()
        probe = Proxy(container, network, port, subject_id, label, api_version="")
        _, _, headers = eventually(
            lambda: (reply := probe.request("GET", "/_ping", timeout=2))[0] == 200 and reply,
            "the proxy answering GET /_ping",
            timeout=30,
            interval=0.2,
        )
        probe.api_version = headers["Api-Version"]
        yield probe
    finally:
        docker("rm", "-f", container, subject, check=False)
        docker("network", "rm", network, f"{network}-refused", check=False)
        docker("volume", "rm", f"{network}-refused", check=False)


def test_config_check_passes_without_warnings() -> None:
    """haproxy -c accepts the file in the pinned image, with no warning."""
    mount = ["-v", f"{CONFIG}:{CONFIG_IN_IMAGE}:ro"]
    result = docker(
        "run", "--rm", *mount, "--entrypoint", "haproxy", proxy_image(), "-c", "-f", CONFIG_IN_IMAGE, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output and "ALERT" not in output, output


def test_ping_answers_head_and_get(proxy: Proxy) -> None:
    """API version negotiation works: HEAD /_ping (the client's first try) and GET /_ping."""
    for method in ("HEAD", "GET"):
        status, _, headers = proxy.request(method, "/_ping")
        assert status == 200, method
        assert headers["Api-Version"], method


def test_lists_containers_with_and_without_version_prefix(proxy: Proxy) -> None:
    """GET /containers/json with a label filter (what discovery.docker sends) answers JSON, bare
    and under /v1.NN/ (the negotiated version, and v1.41 where the engine still accepts it)."""
    query = "?filters=" + json.dumps({"label": [proxy.label]}).replace(" ", "")
    prefixes = {"", f"/v{proxy.api_version}"}
    if tuple(map(int, proxy.api_version.split("."))) < (1, 44):  # engines 29+ refuse API versions below 1.44
        prefixes.add("/v1.41")
    for prefix in prefixes:
        status, body, headers = proxy.request("GET", f"{prefix}/containers/json{query}")
        assert status == 200, prefix
        assert headers["Content-Type"].startswith("application/json")
        assert [c["Id"] for c in json.loads(body)] == [proxy.subject], prefix


def test_lists_networks(proxy: Proxy) -> None:
    """GET /networks (discovery.docker labels each target with its network)."""
    status, body, _ = proxy.request("GET", f"/v{proxy.api_version}/networks")
    assert status == 200
    assert proxy.network in {network["Name"] for network in json.loads(body)}


def test_inspects_a_container(proxy: Proxy) -> None:
    """GET /containers/ID/json (loki.source.docker reads Config.Tty and State)."""
    status, body, _ = proxy.request("GET", f"/v{proxy.api_version}/containers/{proxy.subject}/json")
    assert status == 200
    assert json.loads(body)["State"]["Running"] is True


def test_reads_and_follows_logs(proxy: Proxy) -> None:
    """GET /containers/ID/logs, once and with follow=1 (the stream stays open and delivers)."""
    query = "?stdout=1&stderr=1&timestamps=1"
    status, body, _ = proxy.request("GET", f"/v{proxy.api_version}/containers/{proxy.subject}/logs{query}")
    assert status == 200
    assert SUBJECT_LINE.encode() in body

    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.request("GET", f"/v{proxy.api_version}/containers/{proxy.subject}/logs{query}&follow=1")
        response = connection.getresponse()
        assert response.status == 200
        received = b""
        while SUBJECT_LINE.encode() not in received:
            chunk = response.read1(4096)
            assert chunk, "the follow stream ended"
            received += chunk
    finally:
        connection.close()


def _writes(proxy: Proxy) -> list[tuple[str, str, bytes | None]]:
    """Writes that would be harmless if they got through: they touch only this test's objects
    (the fixture removes them) or fail in the engine, so a loosened proxy fails the test and no more."""
    subject, leftover = proxy.subject, json.dumps(proxy.leftover)
    only_ours = json.dumps({"label": [proxy.label]}).replace(" ", "")
    return [
        ("POST", "/containers/create", b'{"Image":"scratch","HostConfig":{"Binds":["/:/host"]}}'),
        ("POST", "/v1.41/containers/create", b'{"Image":"scratch"}'),
        ("POST", f"/containers/{subject}/stop", None),
        ("POST", f"/containers/{subject}/kill", None),
        ("POST", f"/containers/{subject}/restart", None),
        ("POST", f"/containers/{subject}/pause", None),
        ("DELETE", f"/containers/{subject}?force=1", None),
        ("POST", f"/containers/{subject}/exec", b'{"Cmd":["sh","-c","id"]}'),
        ("PUT", f"/containers/{subject}/archive?path=/tmp", b""),
        ("POST", "/images/create?fromImage=scratch", None),  # a reserved name: never pulled
        ("POST", "/networks/create", f'{{"Name":{leftover}}}'.encode()),
        ("POST", "/volumes/create", f'{{"Name":{leftover}}}'.encode()),
        ("POST", f"/containers/prune?filters={only_ours}", None),
        ("POST", "/build", b""),
        # Right path, wrong method.
        ("POST", "/containers/json", None),
        ("DELETE", "/networks", None),
        ("PUT", f"/containers/{subject}/json", b"{}"),
    ]


def test_refuses_every_write_and_the_subject_survives(proxy: Proxy) -> None:
    """Creating, stopping, killing, deleting, exec: 403 from the proxy, and the container still runs."""
    for method, path, body in _writes(proxy):
        status, answer, _ = proxy.request(method, path, body)
        assert status == 403, f"{method} {path} -> {status} {answer[:200]!r}"
        assert json.loads(answer)["message"].startswith("socket-proxy:"), f"{method} {path}"
    state = json.loads(docker("inspect", proxy.subject).stdout)[0]["State"]
    assert state["Running"] is True and state["Paused"] is False
    assert docker("ps", "-a", "-q", "--filter", "label=" + proxy.label).stdout.split() == [proxy.subject[:12]]


@pytest.mark.parametrize(
    "path",
    [
        "/images/json",
        "/secrets",
        "/configs",
        "/info",
        "/version",
        "/events",
        "/volumes",
        "/system/df",
        "/plugins",
        "/swarm",
        "/containers/SUBJECT/export",  # the whole filesystem of the container
        "/containers/SUBJECT/archive?path=/etc",  # files out of it
        "/containers/SUBJECT/attach/ws?stdin=1&stream=1",  # a GET that upgrades to a writable attach
        "/containers/SUBJECT/top",
        "/containers/SUBJECT/stats?stream=0",
        "/exec/SUBJECT/json",
        "/containers/SUBJECT/json/../../../images/json",
        "/containers/..%2F..%2Fimages%2Fjson/json",
        "/v1.41/images/json",
    ],
)
def test_refuses_reads_alloy_does_not_need(proxy: Proxy, path: str) -> None:
    """GET outside the list (images, secrets, container files, attach, events, ...) is 403 too."""
    status, answer, _ = proxy.request("GET", path.replace("SUBJECT", proxy.subject))
    assert status == 403, f"GET {path} -> {status} {answer[:200]!r}"


def test_logs_refusals_errors_and_streams_but_not_routine_polling(proxy: Proxy) -> None:
    """One compact line (client, method, URI, status, bytes, ms, backend) for a refusal, an error
    and a log stream as it opens; none for a successful list or inspect, which Alloy repeats
    every few seconds."""
    marker = uuid.uuid4().hex[:8]
    proxy.request("POST", f"/containers/create?name={marker}", b"{}")
    proxy.request("GET", f"/containers/json?limit=1&marker={marker}")
    proxy.request("GET", f"/containers/{proxy.subject}/json?marker={marker}")
    proxy.request("GET", f"/containers/no-such-container-{marker}/json")
    proxy.request("GET", f"/containers/{proxy.subject}/logs?stdout=1&marker={marker}")

    def lines() -> list[str]:
        return [line for line in docker("logs", proxy.container).stdout.splitlines() if marker in line]

    logged = eventually(lambda: len(lines()) >= 3 and lines(), "three log lines", timeout=5)
    assert len(logged) == 3, logged
    refused, missing, stream = logged
    assert f" POST /containers/create?name={marker} 403 " in refused and refused.endswith(" docker_api")
    assert f" GET /containers/no-such-container-{marker}/json 404 " in missing and missing.endswith(" docker")
    assert f"/logs?stdout=1&marker={marker} 200 " in stream and stream.endswith(" docker_logs")


def test_healthcheck_command_works_in_the_image(proxy: Proxy) -> None:
    """The Compose healthcheck (bash /dev/tcp, HEAD /_ping through the proxy) passes in the image."""
    result = docker("exec", proxy.container, "bash", "-c", HEALTHCHECK, check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
