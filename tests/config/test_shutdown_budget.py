"""The stop budget adds up (README "Shutdown budget"), with the values the stack really runs with.

After SIGTERM a replica serves on for SHUTDOWN_LINGER_S (with `Connection: close`), gives its
requests in flight SHUTDOWN_DRAIN_S, then flushes clicks and access lines within SHUTDOWN_FLUSH_S;
all three end before Gunicorn's graceful_timeout SIGKILLs the worker, which ends before Compose's
stop_grace_period SIGKILLs the container. nginx waits for an answer no longer than the drain lets
a request run. And idle connections: nginx gives up on them before the replicas do (the keep-alive
race, tests/stack/drills/).
"""

import json
import re
import runpy

import pytest

from app.core.config import Settings
from tests.compose import PROD_CONFIG_ENV, ROOT, Compose

UPSTREAM_CONFIG = ROOT / "nginx/templates/00-http.conf.template"
# What Gunicorn's master needs after its workers are gone: reaping, closing, exiting.
MASTER_MARGIN_S = 5


def seconds(duration: str) -> float:
    """nginx's and Compose's durations: "10s", "500ms", "1m30s"."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def nginx_directive(name: str) -> str:
    """The http-level value of a directive in the upstream template."""
    values = re.findall(rf"^\s*{name}\s+(\S+);", UPSTREAM_CONFIG.read_text(), re.MULTILINE)
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


@pytest.fixture(scope="module", params=[("compose.yaml",), ("compose.yaml", "compose.prod.yaml")], ids=str)
def services(request: pytest.FixtureRequest) -> dict:
    compose = Compose("linkstack-config", files=request.param, env=PROD_CONFIG_ENV)
    return json.loads(compose.run("config", "--format", "json").stdout)["services"]


@pytest.fixture(scope="module")
def app_settings(services: dict) -> Settings:
    """The app's settings as the replicas get them: compose's environment on the defaults."""
    environment = {k: v for k, v in services["app"]["environment"].items() if v is not None}
    names = {name.upper() for name in Settings.model_fields}
    given = {k.lower(): v for k, v in environment.items() if k in names and not k.endswith("_FILE")}
    return Settings.model_construct(**{**{n: f.default for n, f in Settings.model_fields.items()}, **given})


def test_linger_drain_and_flush_end_before_gunicorn_kills_the_worker(app_settings: Settings) -> None:
    linger, drain = float(app_settings.shutdown_linger_s), float(app_settings.shutdown_drain_s)
    assert linger + drain + float(app_settings.shutdown_flush_s) < int(app_settings.graceful_timeout_s)


def test_gunicorn_takes_its_timeouts_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DATABASE_URL": "postgresql://app@postgres/app",
        "REDIS_URL": "redis://redis:6379/0",
        "ADMIN_TOKEN": "x" * 16,
        "GRACEFUL_TIMEOUT_S": "19",
        "KEEPALIVE_S": "71",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/unused",
    }.items():
        monkeypatch.setenv(name, value)
    from app.core.config import get_settings

    get_settings.cache_clear()
    try:
        config = runpy.run_path(str(ROOT / "app/gunicorn.conf.py"))
    finally:
        get_settings.cache_clear()
    assert (config["graceful_timeout"], config["keepalive"]) == (19, 71)


def test_compose_waits_longer_than_gunicorn(services: dict, app_settings: Settings) -> None:
    grace = seconds(services["app"]["stop_grace_period"])
    assert int(app_settings.graceful_timeout_s) + MASTER_MARGIN_S <= grace


def test_nginx_waits_no_longer_than_a_stopping_replica_serves(app_settings: Settings) -> None:
    assert seconds(nginx_directive("proxy_read_timeout")) <= float(app_settings.shutdown_drain_s)


def test_nginx_drops_idle_connections_before_the_replicas_do(services: dict, app_settings: Settings) -> None:
    assert nginx_directive("keepalive_timeout") == "${NGINX_UPSTREAM_KEEPALIVE_TIMEOUT}"
    proxy_idle = seconds(services["nginx"]["environment"]["NGINX_UPSTREAM_KEEPALIVE_TIMEOUT"])
    assert proxy_idle < int(app_settings.keepalive_s)
