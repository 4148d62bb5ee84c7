"""Settings, read from the environment and validated once at start.

Every secret can also come from a file named by `<NAME>_FILE` (Docker and Compose secrets).
A missing or malformed setting stops the start with a one-line message naming it.
"""

import os
import socket
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AnyHttpUrl, Field, PostgresDsn, RedisDsn, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SECRET_FIELDS = ("database_url", "database_password", "redis_url", "redis_password", "admin_token")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads `<NAME>_FILE` for the secret fields; setting both forms is an error."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env_name = f"{field_name.upper()}_FILE"
        path = os.environ.get(env_name)
        if not path:
            return None, field_name, False
        if os.environ.get(field_name.upper()):
            raise ConfigError(f"{field_name.upper()} and {env_name} are both set: keep one")
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as exc:
            raise ConfigError(f"{env_name}: cannot read {path}: {exc.strerror}") from None

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name in SECRET_FIELDS:
            if name in self.settings_cls.model_fields:
                value, _, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
                if value is not None:
                    values[name] = value
        return values


def _with_password(url: str, password: SecretStr | None) -> str:
    """Returns the URL with the password put in (the URL itself stays free of secrets in compose)."""
    if password is None:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password.get_secret_value(), safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class DatabaseSettings(BaseSettings):
    """What the migration job needs: the database alone."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: PostgresDsn
    database_password: SecretStr | None = None
    db_connect_timeout_s: float = Field(5.0, gt=0)
    # How long start-up keeps retrying an unreachable Postgres before giving up.
    db_startup_timeout_s: float = Field(30.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, FileSecretsSource(settings_cls)

    @property
    def database_dsn(self) -> str:
        return _with_password(str(self.database_url), self.database_password)


class Settings(DatabaseSettings):
    environment: Literal["local", "production"] = "local"
    redis_url: RedisDsn
    redis_password: SecretStr | None = None
    admin_token: SecretStr = Field(min_length=16)
    public_base_url: AnyHttpUrl = AnyHttpUrl("https://localhost:8443")
    replica_name: str = Field(default_factory=socket.gethostname, min_length=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Gunicorn: workers default to the container's CPU quota (app/core/cpu.py).
    web_concurrency: int | None = Field(None, ge=1, le=64)
    # Gunicorn's keepalive: how long an idle connection from nginx is kept. Longer than nginx's
    # upstream keepalive_timeout (60 s), so the proxy always closes first (app/gunicorn.conf.py).
    keepalive_s: int = Field(75, ge=1)
    # Proxies whose X-Forwarded-For is believed (nginx's network); anyone else's is ignored.
    forwarded_allow_ips: str = "127.0.0.1,::1"

    # Connection budget (README): replicas x workers x db_pool_max_size, doubled during a
    # rolling deploy, stays under Postgres' max_connections with headroom.
    db_pool_min_size: int = Field(1, ge=0)
    db_pool_max_size: int = Field(5, ge=1, le=100)
    db_command_timeout_s: float = Field(10.0, gt=0)
    # How long a request waits for a pooled connection (and for its reset on release) before it
    # answers 503: a stalled Postgres must not queue requests without bound.
    db_acquire_timeout_s: float = Field(2.0, gt=0)
    # Redis is a cache and a bus here: a slow Redis must not stall the hot path.
    redis_timeout_s: float = Field(0.5, gt=0)
    cache_ttl_s: int = Field(3600, ge=1)
    # Each worker's own copy of the links it redirects (app/services/link_cache.py): how long an
    # entry lives at most, and how many a worker keeps (4096: at most 9 MB even with 2 KB URLs).
    local_cache_ttl_s: float = Field(5.0, gt=0)
    local_cache_size: int = Field(4096, ge=1)
    click_flush_interval_s: float = Field(0.5, gt=0)
    click_buffer_max: int = Field(100_000, ge=1)
    # The stop budget (README, Connections and timeouts): after SIGTERM, requests in flight get
    # shutdown_drain_s (then Uvicorn cancels them), the final flush of clicks and access lines
    # shutdown_flush_s; both must end before Gunicorn's graceful_timeout_s SIGKILLs the worker.
    graceful_timeout_s: int = Field(20, ge=1)  # Gunicorn takes whole seconds
    # Before all that, on SIGTERM: serving on, with `Connection: close`, while nginx lets go of its
    # idle connections to the replica (app/core/lifespan.py). 0: stop at once.
    shutdown_linger_s: float = Field(1.0, ge=0)
    shutdown_drain_s: float = Field(10.0, gt=0)
    shutdown_flush_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        if self.shutdown_linger_s + self.shutdown_drain_s + self.shutdown_flush_s >= self.graceful_timeout_s:
            raise ValueError(
                f"SHUTDOWN_LINGER_S ({self.shutdown_linger_s:g}) + SHUTDOWN_DRAIN_S ({self.shutdown_drain_s:g})"
                f" + SHUTDOWN_FLUSH_S ({self.shutdown_flush_s:g}) must be less than GRACEFUL_TIMEOUT_S"
                f" ({self.graceful_timeout_s}): the rest of the stop needs time too"
            )
        return self

    @property
    def redis_dsn(self) -> str:
        return _with_password(str(self.redis_url), self.redis_password)

    @property
    def faults_enabled(self) -> bool:
        """Fault injection exists only outside production; no setting can turn it on there."""
        return self.environment != "production"

    @property
    def replica_header(self) -> bool:
        return self.environment != "production"


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        problems.append(f"{name}: {error['msg']}")
    return "; ".join(problems)


def load[T: DatabaseSettings](cls: type[T]) -> T:
    """Builds settings or raises ConfigError with a message naming each bad setting."""
    try:
        return cls()
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def load_or_exit[T: DatabaseSettings](cls: type[T]) -> T:
    """For entry points: a bad setting ends the process with one line, no traceback."""
    try:
        return load(cls)
    except ConfigError as exc:
        print(f"configuration error: {exc} (see .env.example)", file=sys.stderr)
        raise SystemExit(2) from None


@lru_cache
def get_settings() -> Settings:
    return load_or_exit(Settings)
