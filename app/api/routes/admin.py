"""Fault injection for workshops and alert drills. Never mounted in production."""

from fastapi import APIRouter, status

from app.api.deps import AdminDep, FaultsDep
from app.models import FaultConfig

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[AdminDep])


@router.get("/faults")
async def read_faults(faults: FaultsDep) -> FaultConfig:
    await faults.refresh()
    return faults.config


@router.put("/faults")
async def set_faults(config: FaultConfig, faults: FaultsDep) -> FaultConfig:
    """Applies to every replica within a second (each polls the switch in Redis)."""
    await faults.set(config)
    return config


@router.delete("/faults", status_code=status.HTTP_204_NO_CONTENT)
async def clear_faults(faults: FaultsDep) -> None:
    await faults.clear()
