"""Request and response bodies, and the input rules the OpenAPI document states.

Each rule that a schema states as a pattern is checked with that same pattern (a schema that
accepts what the app refuses is a broken contract); the validators add only a readable reason.
"""

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

CODE_PATTERN = r"^[A-Za-z0-9_-]{3,32}$"
# Paths the app (or a proxy in front of it) serves itself: a short code must never shadow them.
# Answered 409 "reserved" rather than stated in the schema: like a taken code, it is the service's
# state, not the input's shape (and a case-insensitive exclusion has no portable JSON Schema form).
RESERVED_CODES = frozenset(
    {"api", "health", "ready", "metrics", "ws", "docs", "redoc", "openapi.json", "admin", "static", "favicon.ico"}
)
MAX_URL_LENGTH = 2048


def numbers_up_to(limit: int) -> str:
    """A regular expression for the whole numbers 1 to `limit`, without leading zeros: the
    shorter numbers, then, digit by digit, those of limit's length that stay below it."""
    digits = str(limit)
    parts = []
    if len(digits) > 1:
        parts.append("[1-9]" + (f"[0-9]{{0,{len(digits) - 2}}}" if len(digits) > 2 else ""))
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            parts.append(f"{digits[:i]}[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(digits)
    return "|".join(parts)


# An absolute http(s) URI (RFC 3986): printable ASCII only (other characters percent-encoded), a
# scheme in any case, optional userinfo, a host name or IPv4 address, an optional port up to
# 65535, then path, query and fragment. What any HTTP client can follow: no IPv6 literals.
URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://"
    r"(?:[A-Za-z0-9._~%!$&'()*+,;=:-]*@)?"
    r"[A-Za-z0-9._~%!$&'()*+,;=-]+"
    rf"(?::(?:0|{numbers_up_to(65535)})?)?"
    r"(?:[/?#][!-~]*)?$"
)
_URL = re.compile(URL_PATTERN)
_PRINTABLE_ASCII = re.compile(r"[!-~]*")
_HTTP_SCHEME = re.compile(r"^https?://", re.IGNORECASE)


def _check_url(url: str) -> str:
    if _URL.fullmatch(url):
        return url
    if not _PRINTABLE_ASCII.fullmatch(url):
        raise ValueError("must be printable ASCII, without spaces: percent-encode other characters (RFC 3986)")
    if not _HTTP_SCHEME.match(url):
        raise ValueError("must be an http or https URL")
    raise ValueError("must name a host, and a port up to 65535 if any (scheme://host[:port][/path])")


TargetUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": URL_PATTERN}),
    AfterValidator(_check_url),
]
ShortCode = Annotated[str, Field(pattern=CODE_PATTERN)]


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: TargetUrl
    code: ShortCode | None = Field(
        None, description="Your own code; one is generated if absent. Reserved words (api, health, …) get a 409."
    )


class Link(BaseModel):
    code: str
    url: str
    short_url: str
    clicks: int
    created_at: datetime
    # Migration 0002; None until the link's first click recorded since then.
    last_clicked_at: datetime | None = None


class LinkCreated(Link):
    management_token: str = Field(
        description="The link's secret: `Authorization: Bearer <it>` deletes the link. Shown once, never again."
    )


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


class Problem(BaseModel):
    """What every error answers: one sentence."""

    detail: str


class FieldError(BaseModel):
    field: str = Field(description="The input's name, dotted for nested fields (e.g. `url`, `limit`).")
    message: str
    type: str = Field(description="The error's kind, e.g. `missing`, `string_pattern_mismatch`.")


class ValidationProblem(Problem):
    """422: `detail` names each bad field in one readable sentence; `errors` has them one by one."""

    errors: list[FieldError]


class DependencyChecks(BaseModel):
    postgres: Literal["ok", "failing"]
    redis: Literal["ok", "failing"]


class ReadinessReport(BaseModel):
    """Why a replica takes traffic or not; the errors themselves are in the replica's log."""

    status: Literal["ready", "unavailable", "shutting_down"]
    checks: DependencyChecks | None = Field(None, description="Absent while shutting down: nothing is checked then.")


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
