"""Builds the ASGI application from settings (`app.asgi:app` is what servers run)."""

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

from app.api import openapi
from app.api.errors import EXCEPTION_HANDLERS
from app.api.routes import admin, clicks_ws, health, links, redirect, stats
from app.core.config import Settings
from app.core.lifespan import Lifecycle, lifespan_for
from app.core.logging import configure_logging
from app.core.request_telemetry import RequestTelemetry
from app.middleware.faults import FaultInjectionMiddleware
from app.middleware.request_context import RequestContextMiddleware


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable message naming each bad field, plus the structured errors."""
    errors = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0])
        message = error["msg"].removeprefix("Value error, ")
        errors.append({"field": field, "message": message, "type": error["type"]})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status.HTTP_422_UNPROCESSABLE_CONTENT)


# What a 405 can offer instead; the method of each is tried against the routes (below).
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _method_not_allowed(request: Request, exc: HTTPException) -> Response:
    """405 with an Allow header naming every method the path supports. Starlette names only those
    of the first route whose path matched; GET and DELETE of /api/links/{code} are two routes."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)


def create_app(settings: Settings, *, middleware: bool = True) -> FastAPI:
    """`middleware=False` leaves out the request middleware: only the benchmark wants that."""
    configure_logging(settings.log_level, settings.replica_name)
    telemetry = RequestTelemetry(settings.replica_name)
    lifecycle = Lifecycle()
    local = settings.environment != "production"
    app = FastAPI(
        title="linkstack",
        summary="A link shortener: the sample service of a production-parity stack.",
        lifespan=lifespan_for(settings, telemetry, lifecycle),
        docs_url="/docs" if local else None,
        redoc_url=None,
        openapi_url="/openapi.json" if local else None,
        exception_handlers={
            RequestValidationError: _validation_error,
            status.HTTP_405_METHOD_NOT_ALLOWED: _method_not_allowed,
            **EXCEPTION_HANDLERS,
        },
    )
    for router in (health.router, links.router, stats.router, clicks_ws.router):
        app.include_router(router)
    if settings.faults_enabled:
        app.include_router(admin.router)
    # Last: `/{code}` would otherwise shadow the fixed paths.
    app.include_router(redirect.router)
    app.openapi = lambda: openapi.build(app)  # type: ignore[method-assign]
    if middleware:
        if settings.faults_enabled:
            app.add_middleware(FaultInjectionMiddleware)
        app.add_middleware(
            RequestContextMiddleware,
            replica=settings.replica_name,
            replica_header=settings.replica_header,
            telemetry=telemetry,
            lifecycle=lifecycle,
        )
    return app
