"""Request and response bodies."""

import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

CODE_PATTERN = r"^[A-Za-z0-9_-]{3,32}$"
# Paths the app (or a proxy in front of it) serves itself: a short code must never shadow them.
RESERVED_CODES = frozenset(
    {"api", "health", "ready", "metrics", "ws", "docs", "redoc", "openapi.json", "admin", "static", "favicon.ico"}
)
MAX_URL_LENGTH = 2048
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def _check_url(url: str) -> str:
    if _CONTROL_OR_SPACE.search(url):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    return url


def _check_code(code: str) -> str:
    if code.lower() in RESERVED_CODES:
        raise ValueError(f"'{code}' is reserved")
    return code


TargetUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH), AfterValidator(_check_url)]
ShortCode = Annotated[str, Field(pattern=CODE_PATTERN), AfterValidator(_check_code)]


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: TargetUrl
    code: ShortCode | None = None


class Link(BaseModel):
    code: str
    url: str
    short_url: str
    clicks: int
    created_at: datetime
    # Migration 0002; None until the link's first click recorded since then.
    last_clicked_at: datetime | None = None


class LinkPage(BaseModel):
    items: list[Link]
    next_cursor: str | None


class TopLink(BaseModel):
    code: str
    url: str
    clicks: int


class TopLinks(BaseModel):
    window_seconds: int
    items: list[TopLink]


class FaultConfig(BaseModel):
    """Injected latency and errors, for workshops and alert drills."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(0, ge=0, le=30_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    replica: str | None = Field(None, min_length=1, description="Only this replica (its X-Replica name).")
    route: str | None = Field(None, pattern=r"^/", description="Only paths that start with this prefix.")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.error_rate > 0


class MemoryFault(BaseModel):
    """Memory for the worker that serves the request to take and keep, for out-of-memory drills."""

    model_config = ConfigDict(extra="forbid")

    megabytes: int = Field(ge=1, le=4096)


class MemoryHeld(BaseModel):
    held_mb: int
