"""Every endpoint and dependency is a coroutine: none takes a trip through FastAPI's thread pool."""

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute

from app.api.routes import admin, clicks_ws, health, links, redirect, stats


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


def _runs_on_the_event_loop(call: Callable[..., Any]) -> bool:
    # An instance (HTTPBearer) is called through its __call__.
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def test_no_endpoint_or_dependency_runs_in_the_thread_pool() -> None:
    """FastAPI runs a plain `def` endpoint or dependency in its thread pool: a thread hop per
    request each, which once cost a cached redirect half its CPU (README, Performance)."""
    routes = [
        route
        for module in (admin, clicks_ws, health, links, redirect, stats)
        for route in module.router.routes
        if isinstance(route, APIRoute | APIWebSocketRoute)
    ]
    calls = [call for route in routes for call in _calls(route.dependant)]
    assert len(calls) > len(routes)
    assert [call for call in calls if not _runs_on_the_event_loop(call)] == []
