"""The cluster runs what the Compose stack runs: the same settings (exactly the ones the app
reads), probes on routes the app serves, a stop budget that adds up, the Compose stack's limits,
images and connection budget, and the very rule files of prometheus/."""

import re

import pytest
import yaml

from app.core.config import SECRET_FIELDS, DatabaseSettings, Settings
from app.main import create_app
from tests.compose import ROOT
from tests.config.test_shutdown_budget import MASTER_MARGIN_S
from tests.k8s.manifests import (
    OVERLAYS,
    compose_services,
    config_map_data,
    container,
    environment,
    named,
    pod_spec,
    settings_from,
)

# The image's own variables (app/Dockerfile), not settings.
IMAGE_ENV = {"PORT", "PROMETHEUS_MULTIPROC_DIR"}
# compose.yaml's service for each dev-overlay workload run from an upstream image.
COMPOSE_TWINS = {("StatefulSet", "postgres"): "postgres", ("StatefulSet", "redis"): "redis",
                 ("Deployment", "prometheus"): "prometheus"}  # fmt: skip


def setting_names(cls: type[DatabaseSettings]) -> set[str]:
    names = {name.upper() for name in cls.model_fields}
    return names | {f"{name.upper()}_FILE" for name in SECRET_FIELDS if name in cls.model_fields}


def compose_app_env(overlay: str) -> dict[str, str]:
    app = compose_services(production=overlay == "prod")["app"]
    return {k: v for k, v in app["environment"].items() if v is not None}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_app_gets_exactly_the_settings_compose_gives_it(overlay: str) -> None:
    env = environment(overlay, named(overlay, "Deployment", "app"), "app")
    assert set(env) <= setting_names(Settings), set(env) - setting_names(Settings)
    assert set(env) == set(compose_app_env(overlay))
    assert not pod_spec(named(overlay, "Deployment", "app")).get("enableServiceLinks", True), (
        "Kubernetes would add SERVICE_HOST/PORT variables the app does not read"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_given_is_valid(overlay: str) -> None:
    settings = settings_from(environment(overlay, named(overlay, "Deployment", "app"), "app"))
    assert settings.environment == ("local" if overlay == "dev" else "production")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_get_only_what_they_read(overlay: str) -> None:
    job = named(overlay, "Job", "migrate")
    env = environment(overlay, job, "migrate")
    assert "DATABASE_URL" in env and "DATABASE_PASSWORD_FILE" in env
    secret_files = {item["key"] for v in pod_spec(job)["volumes"] if "secret" in v for item in v["secret"]["items"]}
    assert secret_files == {"postgres_password"}


def test_probes_ask_routes_the_app_serves_on_its_port() -> None:
    app_settings = settings_from({"DATABASE_URL": "postgresql://a@b/c", "REDIS_URL": "redis://r"})
    routes = set(create_app(app_settings).openapi()["paths"])
    dockerfile_port = int(re.search(r"PORT=(\d+)", (ROOT / "app/Dockerfile").read_text())[1])
    for overlay in OVERLAYS:
        app = container(named(overlay, "Deployment", "app"), "app")
        ports = {p["name"]: p["containerPort"] for p in app["ports"]}
        assert ports == {"http": dockerfile_port}
        probes = {kind: app[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
        assert probes["readinessProbe"]["path"] == "/ready", "ready means Postgres and Redis answer"
        assert probes["livenessProbe"]["path"] == "/health", "a database outage must not restart replicas"
        for probe in probes.values():
            assert probe["path"] in routes and probe["port"] in ports
        service = named(overlay, "Service", "app")
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_stop_budget_adds_up(overlay: str) -> None:
    deployment = named(overlay, "Deployment", "app")
    settings = settings_from(environment(overlay, deployment, "app"))
    pre_stop = container(deployment, "app")["lifecycle"]["preStop"]
    assert set(pre_stop) == {"sleep"}, "the kubelet's sleep action, no shell"
    budget = pre_stop["sleep"]["seconds"] + settings.graceful_timeout_s + settings.shutdown_flush_s + MASTER_MARGIN_S
    assert budget <= pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert (
        settings.shutdown_linger_s + settings.shutdown_drain_s + settings.shutdown_flush_s < settings.graceful_timeout_s
    )
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", duration))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_waits_no_longer_than_a_stopping_replica_serves(overlay: str) -> None:
    settings = settings_from(environment(overlay, named(overlay, "Deployment", "app"), "app"))
    # The click stream excepted: a stopping replica closes its WebSockets (1012), clients reconnect.
    for name in ("linkstack", "linkstack-api", "linkstack-redirects"):
        annotations = named(overlay, "Ingress", name)["metadata"]["annotations"]
        for key in ("nginx.org/proxy-read-timeout", "nginx.org/proxy-send-timeout"):
            if key in annotations:
                assert seconds(annotations[key]) <= settings.shutdown_drain_s <= settings.graceful_timeout_s


def cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def mebibytes(quantity: str) -> float:
    """Kubernetes' memory quantities and Compose's bytes, in MiB."""
    if quantity.endswith("Mi"):
        return float(quantity[:-2])
    return int(quantity) / 2**20


def assert_limits_match(limits: dict, compose_service: dict) -> None:
    compose_limits = compose_service["deploy"]["resources"]["limits"]
    assert cores(limits["cpu"]) == float(compose_limits["cpus"])
    assert mebibytes(limits["memory"]) == mebibytes(compose_limits["memory"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_limits_are_the_compose_stack_s(overlay: str) -> None:
    services = compose_services()
    assert_limits_match(container(named(overlay, "Deployment", "app"), "app")["resources"]["limits"], services["app"])
    assert_limits_match(
        container(named(overlay, "Job", "migrate"), "migrate")["resources"]["limits"], services["migrate"]
    )
    if overlay == "dev":
        for (kind, name), service in COMPOSE_TWINS.items():
            assert_limits_match(container(named("dev", kind, name), name)["resources"]["limits"], services[service])


def test_dev_images_are_the_ones_compose_pins() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    for (kind, name), service in COMPOSE_TWINS.items():
        variable = f"{service.upper()}_IMAGE"
        default = re.search(rf"\$\{{{variable}:-([^}}]+)\}}", compose)[1]
        assert container(named("dev", kind, name), name)["image"] == default, variable
    app_image = re.search(r"\$\{APP_IMAGE:-([^}]+)\}", compose)[1]
    assert container(named("dev", "Deployment", "app"), "app")["image"] == app_image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_connection_budget_holds_at_the_autoscaler_s_ceiling(overlay: str) -> None:
    deployment = named(overlay, "Deployment", "app")
    settings = settings_from(environment(overlay, deployment, "app"))
    pods = named(overlay, "HorizontalPodAutoscaler", "app")["spec"]["maxReplicas"]
    pods += deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    workers = settings.web_concurrency or int(cores(container(deployment, "app")["resources"]["limits"]["cpu"]))
    max_connections = int(re.search(r"max_connections=(\d+)", str(compose_services()["postgres"]["command"]))[1])
    if overlay == "dev":
        assert container(named("dev", "StatefulSet", "postgres"), "postgres")["args"] == [
            "-c", f"max_connections={max_connections}"]  # fmt: skip
    assert pods * workers * settings.db_pool_max_size <= 0.8 * max_connections


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rules_are_prometheus_s_own_files(overlay: str) -> None:
    data = config_map_data(overlay, "prometheus-rules")
    assert data == {name: (ROOT / "prometheus/rules" / name).read_text() for name in ("recording.yml", "alerts.yml")}


def test_dev_prometheus_scrapes_the_replicas_as_job_app() -> None:
    """The rules select job="app"; the replicas are found by the annotations the Deployment carries."""
    config = yaml.safe_load(config_map_data("dev", "prometheus-config")["prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "app"]
    keep = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    template = named("dev", "Deployment", "app")["spec"]["template"]["metadata"]
    assert re.fullmatch(keep[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)],
                        template["annotations"]["prometheus.io/scrape"])  # fmt: skip
    assert re.fullmatch(keep[("__meta_kubernetes_pod_label_app_kubernetes_io_component",)],
                        template["labels"]["app.kubernetes.io/component"])  # fmt: skip
    assert template["annotations"]["prometheus.io/port"] == "8000"
    rules = pod_spec(named("dev", "Deployment", "prometheus"))["volumes"]
    assert any(v.get("configMap", {}).get("name", "").startswith("prometheus-rules-") for v in rules)
