"""Dependencies shared by the routes, as `Annotated` aliases.

All `async def`, although none awaits: FastAPI runs a plain `def` dependency in its thread pool,
a round trip to a worker thread per dependency per request. The redirect route takes none of
them: even as `async def`, resolving dependencies is a large part of its cost (README, Performance).
"""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.config import Settings
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

_bearer = HTTPBearer(auto_error=False)


async def _require_admin(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    expected = settings.admin_token.get_secret_value().encode()
    if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "admin token missing or wrong", headers={"WWW-Authenticate": "Bearer"}
        )


AdminDep = Depends(_require_admin)
