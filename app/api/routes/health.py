"""Liveness, readiness and the metrics scrape."""

import asyncio

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from app.core import metrics

router = APIRouter(tags=["operations"])

READY_CHECK_TIMEOUT_S = 1.0


@router.get("/health")
async def health() -> dict[str, str]:
    """The process answers. No dependency is called: a database outage must not restart replicas."""
    return {"status": "ok"}


async def _check_postgres(request: Request) -> None:
    async with request.state.pool.acquire(timeout=READY_CHECK_TIMEOUT_S) as conn:
        await conn.fetchval("SELECT 1", timeout=READY_CHECK_TIMEOUT_S)


async def _check_redis(request: Request) -> None:
    await asyncio.wait_for(request.state.redis.ping(), READY_CHECK_TIMEOUT_S)


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready to take traffic: Postgres and Redis answer, and no shutdown has begun."""
    if request.state.lifecycle.shutting_down:
        return JSONResponse({"status": "shutting_down"}, status.HTTP_503_SERVICE_UNAVAILABLE)
    names = ("postgres", "redis")
    results = await asyncio.gather(_check_postgres(request), _check_redis(request), return_exceptions=True)
    checks = {
        name: "ok" if result is None else f"error: {result!r}" for name, result in zip(names, results, strict=True)
    }
    for name, result in zip(names, results, strict=True):
        metrics.READINESS.labels(name).set(result is None)
    ok = all(result is None for result in results)
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    request.state.telemetry.flush()  # this worker's batch; the others' lag at most one flush interval
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
