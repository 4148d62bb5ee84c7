"""Injects the latency and errors switched on through the admin API (never in production)."""

import asyncio
import random

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.metrics import FAULTS_INJECTED
from app.services.faults import FaultSwitch

# Probes, scrapes and the switch itself stay healthy, or a drill could not be ended.
EXEMPT_PREFIXES = ("/health", "/ready", "/metrics", "/api/admin/")
INJECTED_ERROR_BODY = b'{"detail":"injected fault"}'


class FaultInjectionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        switch: FaultSwitch = scope["state"]["faults"]
        fault = switch.applies_to(scope["path"])
        if fault is not None:
            if fault.latency_ms:
                FAULTS_INJECTED.labels("latency").inc()
                await asyncio.sleep(fault.latency_ms / 1000)
            if fault.error_rate and random.random() < fault.error_rate:
                FAULTS_INJECTED.labels("error").inc()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(INJECTED_ERROR_BODY)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": INJECTED_ERROR_BODY})
                return
        await self.app(scope, receive, send)
