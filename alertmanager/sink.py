"""The stack's notification receiver: Alertmanager's webhooks, made visible.

Each notification becomes one JSON line per alert on stdout (`docker compose logs alert-sink`,
and Loki through the log pipeline), and the last MAX_KEPT stay readable as JSON at `GET /`
for scripts and tests. Standard library only: it runs on the plain Python image.
"""

import json
import signal
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_KEPT = 500
MAX_BODY = 1 << 20

kept: deque[dict] = deque(maxlen=MAX_KEPT)
lock = threading.Lock()


def log(event: str, **fields: object) -> None:
    line = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "info", "event": event}
    print(json.dumps(line | fields), flush=True)


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, {"status": "ok"})
        elif self.path == "/":
            with lock:
                self._reply(200, list(kept))
        else:
            self._reply(404, {"detail": "GET / lists notifications, POST /<receiver> takes Alertmanager's webhook"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self._reply(400, {"detail": f"a JSON body of 1 byte to {MAX_BODY} bytes is expected"})
            return
        try:
            payload = json.loads(self.rfile.read(length))
            alerts = payload["alerts"]
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"detail": f"not an Alertmanager webhook payload: {exc!r}"})
            return
        receiver = self.path.strip("/") or payload.get("receiver", "")
        for alert in alerts:
            labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
            notification = {
                "receiver": receiver,
                "status": alert.get("status"),
                "alertname": labels.get("alertname"),
                "severity": labels.get("severity"),
                "labels": labels,
                "summary": annotations.get("summary"),
                "description": annotations.get("description"),
                "runbook": annotations.get("runbook"),
                "starts_at": alert.get("startsAt"),
                "ends_at": alert.get("endsAt"),
            }
            with lock:
                kept.append(notification)
            log("notification", **notification)
        self._reply(200, {"received": len(alerts)})

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: the notifications are the log."""


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    # As PID 1, Python ignores SIGTERM unless it handles it: `docker stop` would wait its whole
    # timeout, then SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log("listening", port=port)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
