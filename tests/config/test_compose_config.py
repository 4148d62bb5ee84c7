"""The compose files, as Compose itself reads them."""

import json

import pytest

from tests.compose import Compose

PROD = ("compose.yaml", "compose.prod.yaml")


def config(compose: Compose) -> dict:
    return json.loads(compose.run("config", "--format", "json").stdout)


def test_local_stack_needs_no_env_file() -> None:
    """compose.yaml alone validates: every variable has a default."""
    services = config(Compose("linkstack-config"))["services"]
    assert set(services) == {"secrets", "certs", "postgres", "redis", "migrate", "app", "nginx"}
    assert services["app"]["deploy"]["replicas"] == 3


def test_only_nginx_is_published_on_loopback() -> None:
    services = config(Compose("linkstack-config"))["services"]
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert set(published) == {"nginx"}
    assert {(p["host_ip"], p["published"], p["target"]) for p in published["nginx"]} == {
        ("127.0.0.1", "8080", 8080),
        ("127.0.0.1", "8443", 8443),
    }


def test_every_long_running_service_is_hardened() -> None:
    """Read-only root, no capabilities, no privilege gain, limits, a healthcheck."""
    services = config(Compose("linkstack-config"))["services"]
    for name in ("postgres", "redis", "app", "nginx"):
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["deploy"]["resources"]["limits"]["memory"], name
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
    """The overlay: 80/443 only, restart policy, production mode, Compose secrets."""
    services = config(Compose("linkstack-config", PROD, env={"DOMAIN": "links.example.com"}))["services"]
    ports = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert set(ports) == {"nginx"}
    assert {(p["published"], p["target"]) for p in ports["nginx"]} == {("80", 8080), ("443", 8443)}
    for name in ("postgres", "redis", "app", "nginx"):
        assert services[name]["restart"] == "unless-stopped", name
    assert services["app"]["environment"]["ENVIRONMENT"] == "production"
    assert services["nginx"]["environment"]["NGINX_EXPOSE_REPLICA"] == "off"
    assert {s["source"] for s in services["app"]["secrets"]} == {"postgres_password", "redis_password", "admin_token"}


def test_production_overlay_requires_a_domain() -> None:
    result = Compose("linkstack-config", PROD, env={"DOMAIN": ""}).run("config", "-q", check=False)
    assert result.returncode != 0
    assert "set DOMAIN to the public host name" in result.stderr


@pytest.mark.parametrize("variable", ["NGINX_IMAGE", "POSTGRES_IMAGE", "REDIS_IMAGE"])
def test_images_are_pinned_and_replaceable(variable: str) -> None:
    """Each upstream image is a variable; the default is a pinned tag, never latest."""
    compose = Compose("linkstack-config", env={variable: "example/replacement:1"})
    images = {service.get("image") for service in config(compose)["services"].values()}
    assert "example/replacement:1" in images
    defaults = Compose("linkstack-config", env={variable: ""})
    for image in {s.get("image") for s in config(defaults)["services"].values()} - {None}:
        assert ":" in image and not image.endswith(":latest"), image
