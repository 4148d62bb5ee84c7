"""Liveness, readiness and the metrics scrape."""

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from app.core import metrics
from app.models import ReadinessReport

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process answers. No dependency is called: a database outage must not restart replicas."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadinessReport,
    response_model_exclude_none=True,
    responses={503: {"model": ReadinessReport, "description": "Not ready: a dependency fails, or shutting down."}},
)
async def ready(request: Request) -> JSONResponse:
    """Ready to take traffic: Postgres and Redis answer, and no shutdown has begun. Each worker
    checks at most once a second (app/services/readiness.py); why a check fails is in its log.
    Internal: the orchestrator and Prometheus ask it, nginx does not serve it to the public."""
    if request.state.lifecycle.shutting_down:
        return JSONResponse({"status": "shutting_down"}, status.HTTP_503_SERVICE_UNAVAILABLE)
    checks = await request.state.readiness.check()
    ok = all(checks.values())
    return JSONResponse(
        {
            "status": "ready" if ok else "unavailable",
            "checks": {name: "ok" if passed else "failing" for name, passed in checks.items()},
        },
        status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    request.state.telemetry.flush()  # this worker's batch; the others' lag at most one flush interval
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
