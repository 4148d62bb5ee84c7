"""The compose files, as Compose itself reads them."""

import json

import pytest

from tests.compose import PROD, PROD_CONFIG_ENV, Compose, local_images
from tests.stack.hardening import READERS

CORE = {"secrets", "certs", "postgres", "redis", "migrate", "app", "nginx"}
MONITORING = {"prometheus", "alertmanager", "alert-sink", "nginx-exporter", "postgres-exporter", "redis-exporter"}
# No local image can stand in for these (compose.local-images.yaml leaves them out).
UPSTREAM_ONLY = {"grafana", "loki", "alloy"}
LOGS = {"socket-proxy"}
# Long-running, and their images have neither a shell nor a probe: Prometheus' `up` is their health.
NO_HEALTHCHECK = {"nginx-exporter", "postgres-exporter", "redis-exporter"}
UIS = {"prometheus": 9090, "alertmanager": 9093, "grafana": 3000}
# Locally the one root container (compose.yaml says why); compose.prod.yaml makes it non-root.
ROOT_LOCALLY = {"socket-proxy"}
INTERNAL_NETWORKS = {"backend", "edge", "docker-api"}


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


def assert_hardened(services: dict, root_allowed: set[str]) -> None:
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"] and not service.get("cap_add"), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service["deploy"]["resources"]["limits"].get("pids", 0) > 0, name
        user = str(service.get("user", "")).split(":")[0]
        if name not in root_allowed:
            # Unset: the image's USER, non-root in every image used (checked on the running stack).
            assert user not in ("0", "root"), f"{name} runs as root"


@pytest.mark.parametrize("files", [("compose.yaml",), PROD], ids=["local", "production"])
def test_every_service_is_non_root_read_only_without_capabilities(files: tuple[str, ...]) -> None:
    """Every service, one-shot jobs and the loadtest profile included: not root (socket-proxy only
    locally), read-only root, cap_drop ALL and no cap_add, no-new-privileges, a pids limit."""
    compose = Compose("linkstack-config", files, env=PROD_CONFIG_ENV)
    services = json.loads(compose.run("--profile", "loadtest", "config", "--format", "json").stdout)["services"]
    assert_hardened(services, ROOT_LOCALLY if files == ("compose.yaml",) else set())
    if files == PROD:
        assert "user" not in services["socket-proxy"], "production: the image's non-root user"
        assert services["socket-proxy"]["group_add"] == ["999"]


def secret_groups(services: dict) -> dict[str, str]:
    """Each secret's group, from the "secrets" job's command (NAME:GID:DIRS)."""
    specs = [arg.split(":") for arg in services["secrets"]["command"] if arg.count(":") == 2]
    return {name: gid for name, gid, _ in specs}


def readers_by_group(services: dict, groups: dict[str, str]) -> dict[str, frozenset[str]]:
    """The secrets each service may read by the groups it is given (group_add)."""
    readable = {
        name: frozenset(secret for secret, gid in groups.items() if gid in service.get("group_add", []))
        for name, service in services.items()
    }
    return {name: secrets for name, secrets in readable.items() if secrets}


def test_local_secrets_are_mounted_per_consumer() -> None:
    """Each consumer mounts the one secrets volume made for it, and gets the groups of exactly the
    secrets it reads; the job writes each secret into its consumers' volumes only."""
    services = config(Compose("linkstack-config"))["services"]
    groups = secret_groups(services)
    assert len(set(groups.values())) == len(groups) == 4, "one group per secret"
    assert readers_by_group(services, groups) == {k: v for k, v in READERS.items() if k in services}
    mounted = {
        name: [(v["source"], v["target"], v.get("read_only", False)) for v in service.get("volumes", [])]
        for name, service in services.items()
    }
    volume_of = {"postgres-exporter": "postgres", "redis-exporter": "redis", "migrate": "app"}
    for name in READERS.keys() - {"secrets"} & services.keys():
        own = f"secrets-{volume_of.get(name, name)}"
        secret_mounts = [m for m in mounted[name] if m[0].startswith("secrets")]
        assert secret_mounts == [(own, "/run/secrets", True)], name
    for name in services.keys() - READERS.keys():
        assert not [m for m in mounted[name] if m[0].startswith("secrets")], name
    # The job's table: each secret into the volumes of its consumers.
    dirs = {spec.split(":")[0]: set(spec.split(":")[2].split(",")) for spec in services["secrets"]["command"][1:]}
    assert dirs == {
        "postgres_password": {"postgres", "app"},
        "redis_password": {"redis", "app"},
        "admin_token": {"app"},
        "grafana_admin_password": {"grafana"},
    }


def test_production_secrets_per_consumer() -> None:
    """compose.prod.yaml: each service lists exactly the Compose secrets it reads, with the same
    groups as locally, and mounts no secrets volume."""
    services = config(Compose("linkstack-config", PROD, env=PROD_CONFIG_ENV))["services"]
    listed = {name: frozenset(s["source"] for s in service.get("secrets", [])) for name, service in services.items()}
    assert {name: secrets for name, secrets in listed.items() if secrets} == {
        k: v for k, v in READERS.items() if k in services
    }
    local = config(Compose("linkstack-config"))["services"]
    assert readers_by_group(services, secret_groups(local)) == {k: v for k, v in READERS.items() if k in services}


@pytest.mark.parametrize("files", [("compose.yaml",), PROD], ids=["local", "production"])
def test_networks_without_a_need_for_a_route_out_are_internal(files: tuple[str, ...]) -> None:
    """backend, edge and docker-api are internal. loadgen carries nginx's published ports,
    observability the UIs' (and Alertmanager's way to a pager), and metrics is the one network
    with a gateway of the app and the exporters (compose.yaml says why): they are not. Postgres,
    Redis and migrate are on internal networks only."""
    project = config(Compose("linkstack-config", files, env=PROD_CONFIG_ENV))
    networks = project["networks"]
    assert {name for name, network in networks.items() if network.get("internal")} == INTERNAL_NETWORKS
    for name in ("migrate", "postgres", "redis"):
        assert set(project["services"][name]["networks"]) <= INTERNAL_NETWORKS, name
    for name in ("app", "nginx-exporter", "postgres-exporter", "redis-exporter"):
        assert set(project["services"][name]["networks"]) - INTERNAL_NETWORKS == {"metrics"}, name


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
    """The overlay: 80/443 public and no other port published, restart policy, production mode,
    Compose secrets, no anonymous Grafana."""
    services = config(Compose("linkstack-config", PROD, env=PROD_CONFIG_ENV))["services"]
    ports = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert {(p["published"], p["target"]) for p in ports.pop("nginx")} == {("80", 8080), ("443", 8443)}
    assert ports == {}, "production publishes nginx only: the header says how to reach the UIs"
    for name, service in services.items():
        if name not in ("secrets", "certs", "migrate", "local-images-notice"):
            assert service["restart"] == "unless-stopped", name
    if "grafana" in services:
        assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
        assert [s["source"] for s in services["grafana"]["secrets"]] == ["grafana_admin_password"]
    assert not any(v["source"].startswith("secrets-") for s in services.values() for v in s.get("volumes", [])), (
        "production reads Compose secrets, not the generated volume"
    )
    assert services["app"]["environment"]["ENVIRONMENT"] == "production"
    assert services["nginx"]["environment"]["NGINX_EXPOSE_REPLICA"] == "off"
    assert {s["source"] for s in services["app"]["secrets"]} == {"postgres_password", "redis_password", "admin_token"}


def test_production_overlay_requires_a_domain() -> None:
    result = Compose("linkstack-config", PROD, env={**PROD_CONFIG_ENV, "DOMAIN": ""}).run("config", "-q", check=False)
    assert result.returncode != 0
    assert "set DOMAIN to the public host name" in result.stderr


def test_production_overlay_requires_the_docker_socket_group() -> None:
    result = Compose("linkstack-config", PROD, env={**PROD_CONFIG_ENV, "DOCKER_SOCKET_GID": ""}).run(
        "config", "-q", check=False
    )
    assert result.returncode != 0
    assert "set DOCKER_SOCKET_GID" in result.stderr


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
