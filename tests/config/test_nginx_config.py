"""nginx -t on the configuration as Compose renders it, in the pinned nginx image; and the edge's
controls read back from what nginx loaded (`nginx -T`), so a lost directive fails here first."""

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import trustme

from tests.compose import PROD, PROD_CONFIG_ENV, ROOT, Compose


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


def nginx_test(
    compose: Compose, network: str, certificate: Path, option: str = "-t"
) -> subprocess.CompletedProcess[str]:
    """nginx -t (or -T: test, then print the whole configuration) in the compose file's nginx image."""
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
            option,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "compose",
    [
        Compose("linkstack-config"),
        Compose("linkstack-config", PROD, env=PROD_CONFIG_ENV),
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


# --- the rendered configuration as nginx reads it: `nginx -T`, parsed into blocks


@dataclass
class Block:
    """A directive with its arguments, and the directives inside its braces (if any)."""

    name: str
    args: list[str]
    children: list["Block"] = field(default_factory=list)

    def find(self, name: str, *args: str) -> list["Block"]:
        """Children called `name` whose arguments start with `args`."""
        return [child for child in self.children if child.name == name and child.args[: len(args)] == list(args)]

    def one(self, name: str, *args: str) -> "Block":
        (found,) = self.find(name, *args)
        return found


# Quoted strings first, so braces, semicolons and "#" inside them are text; comments are dropped.
TOKEN = re.compile(r"""'[^']*'|"[^"]*"|#[^\n]*|[{};]|[^\s{};'"#]+""")


def parse(dump: str) -> Block:
    """The configuration from nginx.conf down, `include`s followed through the files the dump lists."""
    parts = re.split(r"^# configuration file (\S+):$", dump, flags=re.MULTILINE)
    files = dict(zip(parts[1::2], parts[2::2], strict=True))

    def read(path: str, into: Block) -> None:
        stack, words = [into], []
        for token in TOKEN.findall(files[path]):
            if token.startswith("#"):
                continue
            if token == ";" and words[0] == "include":
                pattern = words[1] if words[1].startswith("/") else f"/etc/nginx/{words[1]}"
                for included in sorted(name for name in files if PurePosixPath(name).match(pattern)):
                    read(included, stack[-1])
                words = []
            elif token in ";{":
                stack[-1].children.append(block := Block(words[0], words[1:]))
                if token == "{":
                    stack.append(block)
                words = []
            elif token == "}":
                stack.pop()
            else:
                words.append(token[1:-1] if token[0] in "'\"" else token)
        assert len(stack) == 1 and not words, f"{path}: unbalanced braces or a missing ';'"

    root = Block("main", [])
    read(parts[1], root)
    return root


def rendered(compose: Compose, network: str, certificate: Path) -> Block:
    result = nginx_test(compose, network, certificate, "-T")
    assert result.returncode == 0, result.stderr
    return parse(result.stdout).one("http")


def servers(http: Block, port: int) -> dict[str, Block]:
    """The servers listening on `port`, by server_name ("_" for the default server)."""
    found = {}
    for server in http.find("server"):
        listen = server.find("listen")
        if listen and listen[0].args[0] == str(port):
            found[" ".join(server.one("server_name").args)] = server
    return found


@pytest.mark.parametrize(
    ("compose", "names"),
    [
        (Compose("linkstack-config"), "localhost 127.0.0.1 linkstack.localhost"),
        (Compose("linkstack-config", PROD, env=PROD_CONFIG_ENV), "links.example.com"),
    ],
    ids=["local", "production"],
)
def test_unknown_hosts_reach_a_server_that_answers_nothing(
    compose: Compose, names: str, network: str, certificate: Path
) -> None:
    """On both public ports the default server answers every path with 444 (nginx-health to
    loopback only); the API and the redirect live in a server for NGINX_SERVER_NAME alone."""
    http = rendered(compose, network, certificate)
    for port in (8080, 8443):
        by_name = servers(http, port)
        assert set(by_name) == {"_", names}, by_name.keys()
        default = by_name["_"]
        assert "default_server" in default.one("listen").args
        assert default.one("location", "/").one("return").args == ["444"]
        health = default.one("location", "=", "/nginx-health")
        assert health.one("if").args[:3] == ["($remote_addr", "!=", "127.0.0.1"]
        assert "default_server" not in by_name[names].one("listen").args
        assert not [loc for loc in by_name[names].find("location") if loc.find("return", "444")]


def test_public_ready_is_the_status_word_behind_auth_request(network: str, certificate: Path) -> None:
    """/ready on both public servers: rate-limited, answered by nginx after an auth_request to an
    internal location that proxies the app's /ready."""
    http = rendered(Compose("linkstack-config"), network, certificate)
    for port in (8080, 8443):
        (server,) = [s for name, s in servers(http, port).items() if name != "_"]
        ready = server.one("location", "=", "/ready")
        assert ready.one("limit_req").args[0] == "zone=per_client"
        assert ready.one("auth_request").args == ["/_ready"]
        assert not ready.find("proxy_pass")
        check = server.one("location", "=", "/_ready")
        assert check.find("internal") and check.one("proxy_pass").args == ["http://app/ready"]
        assert server.one("location", "@ready").one("return").args == ["200", '{"status":"ready"}\\n']


def test_websocket_limits_follow_the_environment(network: str, certificate: Path) -> None:
    """/ws/ holds a per-client and a global limit_conn, their sizes NGINX_WS_PER_CLIENT and
    NGINX_WS_MAX; the global zone's key is the same for every client."""
    compose = Compose("linkstack-config", env={"NGINX_WS_PER_CLIENT": "3", "NGINX_WS_MAX": "7"})
    http = rendered(compose, network, certificate)
    zones = {block.args[1]: block.args[0] for block in http.find("limit_conn_zone")}
    assert zones == {"zone=ws_per_client:10m": "$binary_remote_addr", "zone=ws_total:64k": "$server_name"}
    assert http.one("limit_conn_status").args == ["429"]
    (server,) = [s for name, s in servers(http, 8443).items() if name != "_"]
    limits = [block.args for block in server.one("location", "/ws/").find("limit_conn")]
    assert limits == [["ws_per_client", "3"], ["ws_total", "7"]]
