"""Dependencies shared by the routes, as `Annotated` aliases.

All `async def`, although none awaits: FastAPI runs a plain `def` dependency in its thread pool,
a round trip to a worker thread per dependency per request. The redirect route takes none of
them: even as `async def`, resolving dependencies is a large part of its cost (README, Performance).
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from app.core.config import Settings
from app.core.tokens import same_secret
from app.services.faults import FaultSwitch
from app.services.link_cache import LinkCache


async def _settings(request: Request) -> Settings:
    return request.state.settings


async def _cache(request: Request) -> LinkCache:
    return request.state.cache


async def _faults(request: Request) -> FaultSwitch:
    return request.state.faults


SettingsDep = Annotated[Settings, Depends(_settings)]
CacheDep = Annotated[LinkCache, Depends(_cache)]
FaultsDep = Annotated[FaultSwitch, Depends(_faults)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The admin token (`ADMIN_TOKEN`); to delete a link, that link's management token also does.",
)


async def _bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    return credentials.credentials if credentials is not None else None


# The token of `Authorization: Bearer <token>`, or None; declares the security scheme in OpenAPI.
BearerDep = Annotated[str | None, Depends(_bearer_token)]


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def is_admin(settings: Settings, token: str | None) -> bool:
    return token is not None and same_secret(token, settings.admin_token.get_secret_value())


async def _require_admin(settings: SettingsDep, token: BearerDep) -> None:
    if not is_admin(settings, token):
        raise unauthorized("admin token missing or wrong")


async def _require_admin_in_production(request: Request, settings: SettingsDep) -> None:
    """Production: the admin token, as for the admin routes. Locally: open, for workshops. The
    header is read here, not through the security scheme, so that the local OpenAPI document (the
    only one served) declares no authentication that the local app does not ask for."""
    if settings.environment != "production":
        return
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer" or not is_admin(settings, token):
        raise unauthorized("listing links needs the admin token in production")


AdminDep = Depends(_require_admin)
AdminInProductionDep = Depends(_require_admin_in_production)
