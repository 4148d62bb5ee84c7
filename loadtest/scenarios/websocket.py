"""websocket: clients on /ws/clicks receive the clicks that other clients make.

Listeners connect first; clickers follow links made for this run ("ws-…") a few times a second.
Each event a listener receives is recorded as a "WS click delivered" sample whose time is the
delay from the click (the event's "at", set by the replica that served it) to its arrival, so
Locust's table shows the delivery latency. Clickers stop after --click-seconds, before the run
ends, so every click has time to arrive; scripts/loadtest sets delivered against
clicks × listeners: the loss.
"""

import json
import ssl
import time
from datetime import datetime
from typing import Any

import gevent
from locust import between, constant, events, task
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from _common import LinkPool, StackUser, follow, tls_context

links = LinkPool()
LISTENERS = 5
PREFIX = "ws-"
CLICKERS_START_AFTER_S = 3.0  # listeners are connected by then


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--click-seconds",
        type=float,
        default=20,
        help="websocket scenario: clickers stop after this long, leaving the rest of the run for delivery",
    )


class Listener(StackUser):
    fixed_count = LISTENERS
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        url = self.host.replace("https://", "wss://", 1) + "/ws/clicks"
        context: ssl.SSLContext = tls_context()
        self.socket: ClientConnection = connect(
            url, ssl=context, additional_headers={"X-Forwarded-For": self.address}, open_timeout=10
        )

    def on_stop(self) -> None:
        self.socket.close()

    @task
    def receive(self) -> None:
        try:
            message = self.socket.recv(timeout=1)
        except TimeoutError:
            return
        except ConnectionClosed as error:
            self.fire(0, error)
            self.on_start()
            return
        event = json.loads(message)
        if event["code"].startswith(PREFIX):
            delay = time.time() - datetime.fromisoformat(event["at"]).timestamp()
            self.fire(max(delay, 0) * 1000, None)

    def fire(self, millis: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="WS",
            name="click delivered",
            response_time=millis,
            response_length=0,
            exception=error,
            context={},
        )


class Clicker(StackUser):
    wait_time = between(0.2, 0.4)

    def on_start(self) -> None:
        super().on_start()
        self.code = links.create(self, PREFIX)
        gevent.sleep(CLICKERS_START_AFTER_S)
        self.stop_at = time.monotonic() + self.environment.parsed_options.click_seconds

    @task
    def click(self) -> None:
        if self.code and time.monotonic() < self.stop_at:
            follow(self, self.code, "GET /{code} (click)")
