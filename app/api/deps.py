"""Dependencies shared by the routes, as `Annotated` aliases."""

import secrets
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.config import Settings
from app.services.clicks import ClickRecorder
from app.services.faults import FaultSwitch
from app.services.link_cache import LinkCache


def _settings(request: Request) -> Settings:
    return request.state.settings


def _pool(request: Request) -> asyncpg.Pool:
    return request.state.pool


def _cache(request: Request) -> LinkCache:
    return request.state.cache


def _clicks(request: Request) -> ClickRecorder:
    return request.state.clicks


def _faults(request: Request) -> FaultSwitch:
    return request.state.faults


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
CacheDep = Annotated[LinkCache, Depends(_cache)]
ClicksDep = Annotated[ClickRecorder, Depends(_clicks)]
FaultsDep = Annotated[FaultSwitch, Depends(_faults)]

_bearer = HTTPBearer(auto_error=False)


def _require_admin(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    expected = settings.admin_token.get_secret_value().encode()
    if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "admin token missing or wrong", headers={"WWW-Authenticate": "Bearer"}
        )


AdminDep = Depends(_require_admin)
