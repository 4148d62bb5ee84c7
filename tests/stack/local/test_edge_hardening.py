"""The edge against hostile requests: each control of nginx (nginx/templates, nginx/snippets) with
a test that fails without it. Raw sockets wherever an HTTP client would normalise the request."""

import asyncio
import json
import re
import secrets
import socket
import ssl
import subprocess
import time
from collections import Counter
from contextlib import ExitStack

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from devservers import eventually
from tests.stack.local.conftest import BURST, RATE
from tests.stack.local.test_logs import lines
from tests.stack.raw_http import detail_of, port, request, send_raw, status_of
from tests.stack.stacks import Stack

NGINX_ID = re.compile(r"[0-9a-f]{32}")  # nginx's own $request_id


def request_id(name: str) -> str:
    return f"edge-{name}-{secrets.token_hex(6)}"


def app_lines(stack: Stack) -> str:
    return stack.compose.run("logs", "--no-color", "--no-log-prefix", "app").stdout


def assert_never_reached_the_app(stack: Stack, ids: list[str]) -> None:
    """None of `ids` is in the app's logs, once a request sent after them is (lines go out every 0.1 s)."""
    marker = request_id("marker")
    with stack.client() as client:
        assert client.get("/health", headers={"X-Request-ID": marker}).status_code == 200
    eventually(lambda: marker in app_lines(stack), "the marker request in the app's log", timeout=15, interval=0.5)
    time.sleep(0.5)
    logged = app_lines(stack)
    assert [rid for rid in ids if rid in logged] == []


def test_oversized_header_never_reaches_the_app(stack: Stack) -> None:
    """A header line over large_client_header_buffers (8k): 431 from nginx, nothing proxied."""
    rid = request_id("header")
    answer = send_raw(stack, request("GET", "/health", f"X-Request-ID: {rid}", "X-Pad: " + "a" * 9000))
    assert status_of(answer) in (400, 431, 494), answer[:300]
    assert detail_of(answer) == "Request header fields too large"
    assert_never_reached_the_app(stack, [rid])


def test_oversized_body_gets_413(stack: Stack, full_budget: None) -> None:
    """A body over client_max_body_size (64k) is refused by nginx with the JSON 413."""
    rid = request_id("body")
    body = json.dumps({"url": "https://example.com/" + "a" * 70_000}).encode()
    with stack.client() as client:
        response = client.post(
            "/api/links", content=body, headers={"Content-Type": "application/json", "X-Request-ID": rid}
        )
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large"}
    assert_never_reached_the_app(stack, [rid])


def test_a_client_dribbling_headers_is_cut_off(stack: Stack) -> None:
    """Slowloris: a header sent one byte a second is dropped at client_header_timeout (10 s),
    unanswered, while the client is still sending."""
    sock = socket.create_connection(("127.0.0.1", port(stack.https)), timeout=1)
    started = time.monotonic()
    closed_after = None
    with stack.ssl_context().wrap_socket(sock, server_hostname="localhost") as tls:
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        while closed_after is None and time.monotonic() - started < 15:
            try:
                tls.sendall(b"a")
                if tls.recv(1) == b"":
                    closed_after = time.monotonic() - started
            except TimeoutError:
                continue  # still open, nothing said: the next byte
            except (OSError, ssl.SSLError):
                closed_after = time.monotonic() - started
    assert closed_after is not None, "still open after 15 s of dribbling"
    assert 9 <= closed_after <= 12, closed_after


@pytest.mark.parametrize(
    "path",
    [
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/api/links/..%2f..%2f..%2fetc%2fpasswd",
        "/%252e%252e/%252e%252e/etc/passwd",
        "/health/../../../etc/passwd",
    ],
)
def test_path_traversal_serves_no_file(stack: Stack, path: str) -> None:
    """Paths that climb above the root, plain or encoded: nginx refuses them (400) or the app
    finds no such link (404); no file, no 5xx."""
    answer = send_raw(stack, request("GET", path))
    assert status_of(answer) in (400, 404), answer[:300]
    assert b"root:" not in answer
    assert detail_of(answer) in ("Bad request", "Not Found")


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_an_unknown_host_gets_no_response(stack: Stack, tls: bool) -> None:
    """A Host outside NGINX_SERVER_NAME, or none (HTTP/1.0), or one named in an absolute URI: the
    connection closes without a byte (444), on both ports. The stack's own names are served,
    also to a TLS client that sends no SNI (why the default server does not refuse handshakes)."""
    for host_request in (
        request("GET", "/health", host="evil.example"),
        request("GET", "/api/links/x", host="localhost.evil.example"),
        b"GET /health HTTP/1.0\r\n\r\n",
        request("GET", "http://evil.example/health"),
    ):
        assert send_raw(stack, host_request, tls=tls) == b"", host_request
    for name in ("localhost", "127.0.0.1", "linkstack.localhost"):
        assert status_of(send_raw(stack, request("GET", "/health", host=name), tls=tls)) == 200
    if tls:  # no SNI, a known Host: the default server's handshake, then the named server answers
        assert status_of(send_raw(stack, request("GET", "/health", host="127.0.0.1"), sni=None)) == 200
        assert send_raw(stack, request("GET", "/health", host="evil.example"), sni=None) == b""


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 4",
        "Content-Length: 0\r\nContent-Length: 4",
    ],
    ids=["cl-then-te", "te-then-cl", "duplicate-cl"],
)
def test_smuggling_shaped_requests_are_refused(stack: Stack, full_budget: None, framing: str) -> None:
    """Requests whose length two parsers could read differently: 400 from nginx, never proxied."""
    rid = request_id("smuggle")
    answer = send_raw(stack, request("POST", "/api/links", f"X-Request-ID: {rid}", framing, body=b"0\r\n\r\n"))
    assert status_of(answer) == 400, answer[:300]
    assert detail_of(answer) == "Bad request"
    assert_never_reached_the_app(stack, [rid])


@pytest.mark.parametrize(
    "hostile",
    [
        'x"}{"level":"error","event":"forged',  # quotes and braces
        '%0d%0a{"level":"error"}',  # an encoded CRLF
        'a\\u000a\\"b',  # JSON escapes
        "a\x1b[31mred\tb",  # a terminal escape and a tab
        "a" * 129,  # a sane alphabet, too long
    ],
    ids=["quotes-braces", "encoded-crlf", "json-escapes", "control-chars", "too-long"],
)
def test_hostile_request_ids_are_replaced(stack: Stack, hostile: str) -> None:
    """An X-Request-ID outside [A-Za-z0-9._:-]{1,128} is replaced by nginx's own 32 hex digits,
    which the response, nginx's access line and the app's line carry: one line each, and each
    parses as JSON (lines() loads every line that holds the id)."""
    answer = send_raw(
        stack,
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Request-ID: "
        + hostile.encode()
        + b"\r\n\r\n",
    )
    assert status_of(answer) == 200, answer[:300]
    sent_back = re.search(rb"\r\nX-Request-ID: ([^\r]*)\r\n", answer)
    assert sent_back, answer[:500]
    rid = sent_back.group(1).decode()
    assert NGINX_ID.fullmatch(rid), rid
    nginx = eventually(lambda: lines(stack, "nginx", rid), "nginx's line", timeout=15, interval=0.5)
    app = eventually(lambda: lines(stack, "app", rid), "the app's line", timeout=15, interval=0.5)
    assert [line["request_id"] for line in nginx] == [rid]
    assert [line["request_id"] for line in app] == [rid]


def nginx_env(stack: Stack, name: str) -> str:
    config = json.loads(stack.compose.run("config", "--format", "json").stdout)
    return config["services"]["nginx"]["environment"][name]


def handshake(stack: Stack) -> bool:
    with stack.websocket("/ws/clicks"):
        return True


def test_websockets_per_client_are_capped(stack: Stack, full_budget: None) -> None:
    """NGINX_WS_PER_CLIENT sockets open; the next handshake gets a JSON 429; closing one frees a place."""
    allowed = int(nginx_env(stack, "NGINX_WS_PER_CLIENT"))
    assert allowed + 2 <= BURST + 1, "the handshakes must fit the rate limit's burst"
    with ExitStack() as opened:
        sockets = [opened.enter_context(stack.websocket("/ws/clicks")) for _ in range(allowed)]
        with pytest.raises(InvalidStatus) as refused, stack.websocket("/ws/clicks"):
            pass
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body or b"{}")["detail"].startswith("Too many open WebSocket")
        sockets[0].close()
        # nginx counts a connection until its proxied side has closed too.
        eventually(lambda: handshake(stack), "a handshake accepted once a socket closed", timeout=5, interval=0.5)


def test_public_ready_is_the_status_word_only_and_rate_limited(stack: Stack, full_budget: None) -> None:
    """Through nginx /ready is {"status": "ready"} on both ports, or {"status": "unavailable"}
    while Redis is frozen: nothing about which dependency failed or how. The internal check
    location is a 404; a burst of /ready gets 429s."""

    async def burst() -> Counter[int]:
        limits = httpx.Limits(max_connections=BURST + 20)
        async with httpx.AsyncClient(verify=stack.ssl_context(), limits=limits, timeout=15) as client:
            answers = await asyncio.gather(*(client.get(f"{stack.https}/ready") for _ in range(BURST + 20)))
        return Counter(answer.status_code for answer in answers)

    with stack.client() as client:
        for base in (stack.https, stack.http):
            response = client.get(f"{base}/ready")
            assert (response.status_code, response.json()) == (200, {"status": "ready"}), response.text
        assert client.get("/_ready").status_code == 404
        assert client.post("/ready").status_code == 405
        counts = asyncio.run(burst())
        assert set(counts) == {200, 429}, counts

        time.sleep(BURST / RATE)  # the budget back
        (redis,) = stack.containers("redis")
        subprocess.run(["docker", "pause", redis], check=True, capture_output=True)
        try:
            # Within the replicas' readiness cache (1 s, app/services/readiness.py) and a check's timeout.
            response = eventually(
                lambda: (answer := client.get("/ready")).status_code == 503 and answer,
                "/ready unavailable while Redis is frozen",
                timeout=10,
                interval=0.5,
            )
        finally:
            subprocess.run(["docker", "unpause", redis], check=True, capture_output=True)
        assert response.json() == {"status": "unavailable"}, response.text
        eventually(lambda: client.get("/ready").status_code == 200, "ready again", timeout=10, interval=0.5)
