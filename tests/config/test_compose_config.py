"""The compose files, as Compose itself reads them."""

import json

import pytest

from tests.compose import Compose, local_images

PROD = ("compose.yaml", "compose.prod.yaml")
CORE = {"secrets", "certs", "postgres", "redis", "migrate", "app", "nginx"}
MONITORING = {"prometheus", "alertmanager", "alert-sink", "nginx-exporter", "postgres-exporter", "redis-exporter"}
# No local image can stand in for these (compose.local-images.yaml leaves them out).
UPSTREAM_ONLY = {"grafana", "loki", "alloy"}
LOGS = {"socket-proxy"}
# Long-running, and their images have neither a shell nor a probe: Prometheus' `up` is their health.
NO_HEALTHCHECK = {"nginx-exporter", "postgres-exporter", "redis-exporter"}
UIS = {"prometheus": 9090, "alertmanager": 9093, "grafana": 3000}


def config(compose: Compose) -> dict:
    return json.loads(compose.run("config", "--format", "json").stdout)


def test_local_stack_needs_no_env_file() -> None:
    """compose.yaml alone validates: every variable has a default."""
    services = config(Compose("linkstack-config"))["services"]
    if local_images():
        assert set(services) == CORE | MONITORING | LOGS | {"local-images-notice"}
    else:
        assert set(services) == CORE | MONITORING | LOGS | UPSTREAM_ONLY
    assert services["app"]["deploy"]["replicas"] == 3


def test_only_nginx_and_the_uis_are_published_on_loopback() -> None:
    services = config(Compose("linkstack-config"))["services"]
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    expected_uis = UIS if not local_images() else {k: v for k, v in UIS.items() if k not in UPSTREAM_ONLY}
    assert set(published) == {"nginx", *expected_uis}
    assert {(p["host_ip"], p["published"], p["target"]) for p in published["nginx"]} == {
        ("127.0.0.1", "8080", 8080),
        ("127.0.0.1", "8443", 8443),
    }
    for name, port in expected_uis.items():
        assert [(p["host_ip"], p["published"], p["target"]) for p in published[name]] == [
            ("127.0.0.1", str(port), port)
        ]


def test_every_long_running_service_is_hardened() -> None:
    """Read-only root, no capabilities, no privilege gain, limits, a healthcheck (or Prometheus' up)."""
    services = config(Compose("linkstack-config"))["services"]
    long_running = {name for name, service in services.items() if service.get("restart") != "no"}
    assert long_running >= {"postgres", "redis", "app", "nginx", *MONITORING, *LOGS}
    for name in long_running:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        if name not in NO_HEALTHCHECK:
            assert service["healthcheck"]["test"], name
    # app and nginx are non-root by their images' USER (checked on the running stack).
    assert services["postgres"]["user"] == services["redis"]["user"] == "999:999"


def test_graceful_stop_outlasts_gunicorn() -> None:
    """stop_grace_period (30 s) exceeds Gunicorn's graceful_timeout (20 s, app/gunicorn.conf.py)."""
    app = config(Compose("linkstack-config"))["services"]["app"]
    assert app["stop_grace_period"] == "30s"


def test_no_secret_in_the_environment() -> None:
    """Secrets travel as files: no password or token value in any service's environment."""
    services = config(Compose("linkstack-config"))["services"]
    for name, service in services.items():
        for key in service.get("environment") or {}:
            if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET")):
                assert key.endswith("_FILE"), f"{name}: {key}"


def test_production_overlay() -> None:
    """The overlay: 80/443 public, UIs on loopback, restart policy, production mode, Compose secrets,
    no anonymous Grafana."""
    services = config(Compose("linkstack-config", PROD, env={"DOMAIN": "links.example.com"}))["services"]
    ports = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert {(p["published"], p["target"]) for p in ports.pop("nginx")} == {("80", 8080), ("443", 8443)}
    assert {p["host_ip"] for service in ports.values() for p in service} == {"127.0.0.1"}
    for name, service in services.items():
        if name not in ("secrets", "certs", "migrate", "local-images-notice"):
            assert service["restart"] == "unless-stopped", name
    if "grafana" in services:
        assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
        assert [s["source"] for s in services["grafana"]["secrets"]] == ["grafana_admin_password"]
    assert not any(v["source"] == "secrets" for s in services.values() for v in s.get("volumes", [])), (
        "production reads Compose secrets, not the generated volume"
    )
    assert services["app"]["environment"]["ENVIRONMENT"] == "production"
    assert services["nginx"]["environment"]["NGINX_EXPOSE_REPLICA"] == "off"
    assert {s["source"] for s in services["app"]["secrets"]} == {"postgres_password", "redis_password", "admin_token"}


def test_production_overlay_requires_a_domain() -> None:
    result = Compose("linkstack-config", PROD, env={"DOMAIN": ""}).run("config", "-q", check=False)
    assert result.returncode != 0
    assert "set DOMAIN to the public host name" in result.stderr


@pytest.mark.parametrize(
    "variable",
    [
        "NGINX_IMAGE",
        "POSTGRES_IMAGE",
        "REDIS_IMAGE",
        "PROMETHEUS_IMAGE",
        "ALERTMANAGER_IMAGE",
        "NGINX_EXPORTER_IMAGE",
        "POSTGRES_EXPORTER_IMAGE",
        "REDIS_EXPORTER_IMAGE",
        "SOCKET_PROXY_IMAGE",
    ],
)
def test_images_are_pinned_and_replaceable(variable: str) -> None:
    """Each upstream image is a variable; the default is a pinned tag, never latest."""
    compose = Compose("linkstack-config", env={variable: "example/replacement:1"})
    images = {service.get("image") for service in config(compose)["services"].values()}
    assert "example/replacement:1" in images
    defaults = Compose("linkstack-config", env={variable: ""})
    for image in {s.get("image") for s in config(defaults)["services"].values()} - {None}:
        assert ":" in image and not image.endswith(":latest"), image


def test_only_alloy_reaches_the_docker_socket_proxy() -> None:
    """The socket is mounted once, read-only, into socket-proxy, whose network only Alloy shares."""
    services = config(Compose("linkstack-config"))["services"]
    mounts = [
        (name, volume)
        for name, service in services.items()
        for volume in service.get("volumes", [])
        if volume["source"] == "/var/run/docker.sock"
    ]
    assert [(name, volume["read_only"]) for name, volume in mounts] == [("socket-proxy", True)]
    sharing = {name for name, service in services.items() if "docker-api" in (service.get("networks") or {})}
    assert sharing == ({"socket-proxy"} if local_images() else {"socket-proxy", "alloy"})
    assert config(Compose("linkstack-config"))["networks"]["docker-api"]["internal"] is True


def test_load_generators_reach_nginx_only() -> None:
    """The loadtest profile: Locust's master and workers, hardened, on the generators' network
    (nginx's only neighbour there) and, for the master, where Prometheus scrapes it; the web UI on
    loopback. Never on edge or backend: a generator cannot bypass nginx and its limits."""
    services = json.loads(
        Compose("linkstack-config").run("--profile", "loadtest", "config", "--format", "json").stdout
    )["services"]
    assert set(services["locust"]["networks"]) == {"loadgen", "observability"}
    assert set(services["locust-worker"]["networks"]) == {"loadgen"}
    on_loadgen = {name for name, service in services.items() if "loadgen" in service.get("networks", {})}
    assert on_loadgen == {"nginx", "locust", "locust-worker"}
    assert [(p["host_ip"], p["target"]) for p in services["locust"]["ports"]] == [("127.0.0.1", 8089)]
    assert "ports" not in services["locust-worker"]
    for name in ("locust", "locust-worker"):
        service = services[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert service["environment"]["LOADTEST_CA_FILE"] == "/certs/ca.crt", name
