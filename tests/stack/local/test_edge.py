"""What a client sees at the edge: TLS, redirects, security headers, hidden internals."""

import socket
import ssl

import httpx
import pytest
import trustme

from tests.stack.stacks import Stack

SECURITY_HEADERS = (
    "strict-transport-security",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "content-security-policy",
)


def assert_security_headers(response: httpx.Response) -> None:
    missing = [name for name in SECURITY_HEADERS if name not in response.headers]
    assert not missing, f"{response.status_code} {response.url} lacks {missing}"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_smoke_script_passes(stack: Stack) -> None:
    """scripts/smoke, as an operator runs it against a deployment, passes every check."""
    result = stack.smoke()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def handshake(port: int, context: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("localhost", port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version() or ""


def test_tls_versions_and_verification(stack: Stack) -> None:
    """TLS 1.2 and 1.3 both verify against the stack's CA; a stranger's CA does not."""
    port = int(stack.https.rsplit(":", 1)[1])
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = stack.ssl_context()
        context.minimum_version = context.maximum_version = version
        assert handshake(port, context) == version.name.replace("_", ".").replace("TLSv1.", "TLSv1.")
    stranger = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, stranger)


def test_http_redirects_to_https_except_probes(stack: Stack) -> None:
    port = stack.https.rsplit(":", 1)[1]
    response = httpx.get(f"{stack.http}/api/links?limit=1", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == f"https://localhost:{port}/api/links?limit=1"
    assert httpx.get(f"{stack.http}/health").status_code == 200


@pytest.mark.parametrize(("path", "status"), [("/api/links", 200), ("/api/links/nothere", 404), ("/nothere", 404)])
def test_security_headers_on_every_response(stack: Stack, path: str, status: int) -> None:
    with stack.client() as client:
        response = client.get(path)
    assert response.status_code == status
    assert_security_headers(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/metrics"), ("GET", "/api/admin/faults"), ("PUT", "/api/admin/faults"), ("DELETE", "/api/admin/faults")],
)
def test_internal_endpoints_are_unreachable(stack: Stack, method: str, path: str) -> None:
    with stack.client() as client:
        assert client.request(method, path).status_code == 404


def test_request_id_round_trip(stack: Stack) -> None:
    """A sane X-Request-ID is kept end to end; an insane one is replaced by nginx's own."""
    with stack.client() as client:
        assert client.get("/health", headers={"X-Request-ID": "smoke-123"}).headers["x-request-id"] == "smoke-123"
        replaced = client.get("/health", headers={"X-Request-ID": "bad id!"}).headers["x-request-id"]
    assert replaced != "bad id!" and len(replaced) == 32
