"""HTTP/1.1 byte for byte, on a socket of its own: for requests an HTTP client would normalise
(a forged Host, conflicting framing, a path above the root) and answers it would hide (none)."""

import json
import socket
import ssl
from urllib.parse import urlsplit

from tests.stack.stacks import Stack


def port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"https": 443, "http": 80}[parts.scheme]


def send_raw(stack: Stack, request: bytes, *, tls: bool = True, sni: str | None = "localhost") -> bytes:
    """`request` byte for byte, on a fresh connection to nginx; all it answers until it closes.
    sni=None: no server name in the TLS handshake, as from a client that connects by address."""
    sock = socket.create_connection(("127.0.0.1", port(stack.https if tls else stack.http)), timeout=10)
    if tls:
        context = stack.ssl_context()
        context.check_hostname = sni is not None  # the chain is still verified against the CA
        sock = context.wrap_socket(sock, server_hostname=sni)
    answer = b""
    with sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, ssl.SSLEOFError):
            pass  # closed without a TLS close_notify: the end, as for plain TCP
    return answer


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def detail_of(answer: bytes) -> str:
    """The JSON error body's detail (nginx's own errors have the app's shape)."""
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]


def request(method: str, path: str, *headers: str, host: str = "localhost", body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body
