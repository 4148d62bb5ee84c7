"""Fault injection for workshops and alert drills. Never mounted in production."""

from fastapi import APIRouter, status

from app.api.deps import AdminDep, FaultsDep
from app.api.responses import UNAUTHORIZED, UNAVAILABLE
from app.models import FaultConfig, MemoryFault, MemoryHeld

router = APIRouter(
    prefix="/api/admin", tags=["admin"], dependencies=[AdminDep], responses={**UNAUTHORIZED, **UNAVAILABLE}
)

# What the memory fault took, kept for the worker's lifetime: holding it is the fault.
_held: list[bytearray] = []
MEGABYTE = 1 << 20


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


@router.post("/faults/memory")
async def take_memory(fault: MemoryFault) -> MemoryHeld:
    """Takes `megabytes` more in the worker that serves this, and keeps it. Each megabyte is written
    to, so it is resident: past the container's memory limit the kernel kills this worker, and
    Gunicorn starts another (the out-of-memory drill, tests/stack/drills/)."""
    for _ in range(fault.megabytes):
        _held.append(bytearray(b"\x01") * MEGABYTE)
    return MemoryHeld(held_mb=len(_held))
