"""Settings: validated at start, secrets from files, messages that name the setting."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import ConfigError, DatabaseSettings, Settings, load

REQUIRED = {
    "DATABASE_URL": "postgresql://app@db:5432/app",
    "REDIS_URL": "redis://cache:6379/0",
    "ADMIN_TOKEN": "a-long-enough-admin-token",
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*REQUIRED, "DATABASE_PASSWORD", "REDIS_PASSWORD", "ENVIRONMENT", "DB_POOL_MIN_SIZE"]:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


class TestSettings:
    def test_defaults(self, environ: pytest.MonkeyPatch) -> None:
        settings = load(Settings)
        assert settings.environment == "local"
        assert settings.faults_enabled and settings.replica_header
        assert settings.database_dsn == "postgresql://app@db:5432/app"

    def test_missing_settings_are_named(self, environ: pytest.MonkeyPatch) -> None:
        environ.delenv("DATABASE_URL")
        environ.delenv("ADMIN_TOKEN")
        with pytest.raises(ConfigError) as error:
            load(Settings)
        assert "DATABASE_URL: Field required" in str(error.value)
        assert "ADMIN_TOKEN: Field required" in str(error.value)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("DATABASE_URL", "mysql://x@y/z"),
            ("REDIS_URL", "http://cache"),
            ("ENVIRONMENT", "staging"),
            ("ADMIN_TOKEN", "short"),
            ("DB_POOL_MAX_SIZE", "0"),
            ("WEB_CONCURRENCY", "lots"),
        ],
    )
    def test_malformed_settings_are_named(self, environ: pytest.MonkeyPatch, name: str, value: str) -> None:
        environ.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            load(Settings)

    def test_pool_bounds_are_checked_together(self, environ: pytest.MonkeyPatch) -> None:
        environ.setenv("DB_POOL_MIN_SIZE", "9")
        environ.setenv("DB_POOL_MAX_SIZE", "3")
        with pytest.raises(ConfigError, match="DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE"):
            load(Settings)

    def test_production_turns_the_local_helpers_off(self, environ: pytest.MonkeyPatch) -> None:
        environ.setenv("ENVIRONMENT", "production")
        settings = load(Settings)
        assert not settings.faults_enabled
        assert not settings.replica_header


class TestSecretFiles:
    def test_secrets_from_files(self, environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """`*_FILE` works for each secret; passwords are put into the URLs."""
        for name, value in {
            "DATABASE_PASSWORD": "p@ss:w/rd",
            "REDIS_PASSWORD": "r3dis",
            "ADMIN_TOKEN": "token-from-a-file-123",
        }.items():
            (tmp_path / name).write_text(value + "\n")
            environ.delenv(name, raising=False)
            environ.setenv(f"{name}_FILE", str(tmp_path / name))
        settings = load(Settings)
        assert settings.database_dsn == "postgresql://app:p%40ss%3Aw%2Frd@db:5432/app"
        assert settings.redis_dsn == "redis://:r3dis@cache:6379/0"
        assert settings.admin_token.get_secret_value() == "token-from-a-file-123"

    def test_url_itself_from_a_file(self, environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
        (tmp_path / "url").write_text("postgresql://u:secret@db/app")
        environ.delenv("DATABASE_URL")
        environ.setenv("DATABASE_URL_FILE", str(tmp_path / "url"))
        assert load(DatabaseSettings).database_dsn == "postgresql://u:secret@db/app"

    def test_unreadable_file_is_named(self, environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
        environ.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "missing"))
        with pytest.raises(ConfigError, match="REDIS_PASSWORD_FILE: cannot read"):
            load(Settings)

    def test_both_forms_is_an_error(self, environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
        (tmp_path / "token").write_text("another-long-admin-token")
        environ.setenv("ADMIN_TOKEN_FILE", str(tmp_path / "token"))
        with pytest.raises(ConfigError, match="ADMIN_TOKEN and ADMIN_TOKEN_FILE are both set"):
            load(Settings)


def test_entry_point_exits_with_one_line(tmp_path: Path) -> None:
    """A server started without settings prints one line naming them, no traceback, exit 2."""
    result = subprocess.run(
        [sys.executable, "-c", "import app.asgi"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: DATABASE_URL: Field required")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
