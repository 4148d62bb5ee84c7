"""The Ingress is the Compose stack's nginx: the same headers, limits, timeouts, balancing and
ciphers, only the app's public routes, and only annotations the NGINX Ingress Controller 5.5
knows, each where it may stand (a master or a minion of the mergeable Ingress)."""

import re

import pytest

from app.main import create_app
from tests.compose import ROOT
from tests.k8s.manifests import OVERLAYS, compose_services, objects, settings_from

NGINX = ROOT / "nginx"
# nginx/kubernetes-ingress v5.5.4, internal/configs/annotations.go and internal/k8s/validation.go:
# the Ingress annotations the open-source controller reads.
CONTROLLER_ANNOTATIONS = {
    "ingress.kubernetes.io/ssl-redirect",
    *(f"nginx.org/{name}" for name in (
        "add-header", "add-header-inherit", "app-root", "basic-auth-realm", "basic-auth-secret",
        "client-body-buffer-size", "client-max-body-size", "custom-http-errors", "fail-timeout", "grpc-services",
        "hsts", "hsts-behind-proxy", "hsts-include-subdomains", "hsts-max-age", "http-redirect-code", "keepalive",
        "lb-method", "limit-req-burst", "limit-req-delay", "limit-req-dry-run", "limit-req-key",
        "limit-req-log-level", "limit-req-no-delay", "limit-req-rate", "limit-req-reject-code", "limit-req-scale",
        "limit-req-zone-size", "listen-ports", "listen-ports-ssl", "location-snippets", "max-conns", "max-fails",
        "mergeable-ingress-type", "path-regex", "policies", "proxy-buffer-size", "proxy-buffering", "proxy-buffers",
        "proxy-busy-buffers-size", "proxy-connect-timeout", "proxy-hide-headers", "proxy-max-temp-file-size",
        "proxy-next-upstream", "proxy-next-upstream-timeout", "proxy-next-upstream-tries", "proxy-pass-headers",
        "proxy-read-timeout", "proxy-redirect-from", "proxy-redirect-to", "proxy-send-timeout", "proxy-set-headers",
        "redirect-to-https", "rewrite-target", "rewrites", "server-snippets", "server-tokens", "ssl-ciphers",
        "ssl-prefer-server-ciphers", "ssl-redirect", "ssl-services", "sticky-cookie-services", "upstream-zone-size",
        "use-cluster-ip", "websocket-services",
    )),
}  # fmt: skip
# The same source's masterDenylist and minionDenylist (the parts that apply to these annotations).
MASTER_ONLY = {
    "nginx.org/proxy-hide-headers",
    "ingress.kubernetes.io/ssl-redirect",
    "nginx.org/http-redirect-code",
    "nginx.org/server-tokens",
    "nginx.org/ssl-ciphers",
    "nginx.org/hsts",
    "nginx.org/server-snippets",
}
MINION_ONLY = {"nginx.org/websocket-services", "nginx.org/rewrites", "nginx.org/ssl-services"}
# Set by other controllers of the cluster, not the ingress controller's.
OTHER_ANNOTATIONS = {"cert-manager.io/cluster-issuer"}
# Headers whose values are nginx variables there (the request id, the replica): the controller
# refuses '$' in add-header; the app sends its own X-Request-ID, and X-Replica is hidden.
VARIABLE_HEADERS = {"X-Request-ID", "X-Replica"}


def ingresses(overlay: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects(overlay, "Ingress")}


def master(overlay: str) -> dict[str, str]:
    return ingresses(overlay)["linkstack"]["metadata"]["annotations"]


def nginx_value(text: str, directive: str) -> str:
    (value,) = re.findall(rf"^\s*{directive}\s+([^;]+);", text, re.MULTILINE)
    return value.strip()


def http_conf() -> str:
    return (NGINX / "templates/00-http.conf.template").read_text()


def add_headers(annotation: str) -> dict[str, tuple[str, bool]]:
    """nginx.org/add-header as the controller parses it (version1.ParseAddHeaders)."""
    headers = {}
    for entry in filter(None, (e.strip() for e in annotation.split(","))):
        parts = entry.split(":", 2)
        always = len(parts) == 3 and parts[2].strip().lower() == "always"
        headers[parts[0].strip()] = (parts[1].strip() if len(parts) > 1 else "", always)
    return headers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_annotations_the_controller_reads_each_where_it_may_stand(overlay: str) -> None:
    for name, ingress in ingresses(overlay).items():
        annotations = set(ingress["metadata"]["annotations"])
        assert annotations <= CONTROLLER_ANNOTATIONS | OTHER_ANNOTATIONS, annotations - CONTROLLER_ANNOTATIONS
        role = ingress["metadata"]["annotations"]["nginx.org/mergeable-ingress-type"]
        assert not annotations & (MINION_ONLY if role == "master" else MASTER_ONLY), name
        assert (role == "master") == ("http" not in ingress["spec"]["rules"][0]), "paths live in minions only"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_security_headers_are_nginx_s(overlay: str) -> None:
    snippet = (NGINX / "snippets/response-headers.conf").read_text()
    lines = re.findall(r'^add_header\s+(\S+)\s+(?:"([^"]*)"|(\S+))\s+always;', snippet, re.MULTILINE)
    nginx = {name: (quoted or bare, True) for name, quoted, bare in lines}
    assert set(nginx) > VARIABLE_HEADERS
    expected = {name: value for name, value in nginx.items() if name not in VARIABLE_HEADERS}
    assert add_headers(master(overlay)["nginx.org/add-header"]) == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_limits_timeouts_and_balancing_are_nginx_s(overlay: str) -> None:
    annotations = master(overlay)
    nginx_env = compose_services()["nginx"]["environment"]
    http = http_conf()
    assert annotations["nginx.org/limit-req-rate"] == nginx_env["NGINX_RATE"]
    assert annotations["nginx.org/limit-req-burst"] == nginx_env["NGINX_BURST"]
    assert annotations["nginx.org/limit-req-no-delay"] == "true"
    assert annotations["nginx.org/limit-req-reject-code"] == nginx_value(http, "limit_req_status").split()[0]
    assert annotations["nginx.org/lb-method"] == nginx_env["NGINX_BALANCE"]
    assert annotations["nginx.org/keepalive"] == nginx_env["NGINX_UPSTREAM_KEEPALIVE"]
    assert annotations["nginx.org/ssl-ciphers"] == nginx_value(http, "ssl_ciphers")
    for directive in ("client_max_body_size", "proxy_connect_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        assert annotations[f"nginx.org/{directive.replace('_', '-')}"] == nginx_value(http, directive).split()[0]
    for name in ("linkstack-api", "linkstack-redirects"):
        minion = ingresses(overlay)[name]["metadata"]["annotations"]
        assert minion["nginx.org/proxy-next-upstream"] == nginx_value(http, "proxy_next_upstream")
        assert minion["nginx.org/proxy-next-upstream-tries"] == nginx_value(http, "proxy_next_upstream_tries")
        assert minion["nginx.org/proxy-next-upstream-timeout"] == nginx_value(http, "proxy_next_upstream_timeout")
    ws_location = (
        (NGINX / "templates/default.conf.template").read_text().split("location /ws/", 1)[1].split("\n    }", 1)[0]
    )
    ws = ingresses(overlay)["linkstack-ws"]["metadata"]["annotations"]
    assert ws["nginx.org/proxy-read-timeout"] == nginx_value(ws_location, "proxy_read_timeout")
    assert ws["nginx.org/proxy-send-timeout"] == nginx_value(ws_location, "proxy_send_timeout")
    assert ws["nginx.org/websocket-services"] == "app"


def routed(overlay: str, path: str) -> bool:
    """Whether some minion's path takes this request path (Exact, Prefix, or the controller's regex)."""
    for ingress in ingresses(overlay).values():
        regex = ingress["metadata"]["annotations"].get("nginx.org/path-regex")
        for rule in ingress["spec"]["rules"]:
            for entry in rule.get("http", {}).get("paths", []):
                want, kind = entry["path"], entry["pathType"]
                if kind == "Exact" and path == want:
                    return True
                if kind == "Prefix" and (path == want.rstrip("/") or path.startswith(want.rstrip("/") + "/")):
                    return True
                if kind == "ImplementationSpecific" and regex == "case_sensitive" and re.match("^" + want, path):
                    return True
    return False


PUBLIC_SAMPLES = ["/api/links", "/api/links/abc123", "/api/stats/top", "/health", "/ready", "/ws/clicks", "/abc123"]
INTERNAL_SAMPLES = ["/metrics", "/api/admin/faults", "/api/admin/faults/memory", "/openapi.json", "/x/y"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_public_routes_are_routed_and_internal_ones_are_not(overlay: str) -> None:
    app = create_app(settings_from({"DATABASE_URL": "postgresql://a@b/c", "REDIS_URL": "redis://r"}))
    public = [p.replace("{code}", "abc123") for p in app.openapi()["paths"] if not p.startswith("/api/admin")]
    assert [p for p in public + PUBLIC_SAMPLES if not routed(overlay, p)] == []
    assert [p for p in INTERNAL_SAMPLES if routed(overlay, p)] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_host_over_tls(overlay: str) -> None:
    all_ingresses = ingresses(overlay).values()
    hosts = {rule["host"] for ingress in all_ingresses for rule in ingress["spec"]["rules"]}
    assert hosts == {"localhost" if overlay == "dev" else "links.example.com"}
    assert {ingress["spec"]["ingressClassName"] for ingress in all_ingresses} == {"nginx"}
    assert ingresses(overlay)["linkstack"]["spec"]["tls"] == [{"hosts": sorted(hosts), "secretName": "linkstack-tls"}]
