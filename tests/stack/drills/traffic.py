"""Steady background traffic through nginx, every response recorded: the evidence of each drill.

A few client threads, each with its own kept-alive HTTP/1.1 connection, cycle through a mix:
`/health`, redirects of the drill's own links (each 307 is an acknowledged click), reads of a
link, and link creations with a URL of their own (so a creation applied twice would show as two
rows). The client retries nothing but what HTTP/1.1 clients (browsers, urllib3) retry: an
idempotent request on a kept-alive connection that the server closed before sending a single byte
of an answer (RFC 9112, 9.3.1: it cannot have been processed). Those retries are counted and
printed; everything else is recorded as a plain client would see it.
"""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import cycle, pairwise

import httpx

from tests.stack.stacks import Stack

# What each kind of request answers when all is well.
EXPECTED = {"health": 200, "redirect": 307, "read": 200, "create": 201}
DEFAULT_MIX = ("redirect", "health", "redirect", "read", "redirect", "create")
CREATED_URL_PREFIX = "https://example.com/drill/"
# httpcore's words for a connection closed before any byte of an answer.
CLOSED_UNANSWERED = "Server disconnected without sending a response"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer at all (connection error, timeout)
    detail: str  # the error, or the body of an unexpected answer
    code: str  # the link redirected, read or created ("" for /health)
    url: str = ""  # what a creation asked for
    request_id: str = ""  # sent as X-Request-ID: nginx's and the app's log lines carry it

    @property
    def ok(self) -> bool:
        return self.status == EXPECTED[self.kind]

    @property
    def failure(self) -> str:
        return f"{self.kind} {self.status if self.status is not None else self.detail.split(':')[0]}"


@dataclass
class Record:
    outcomes: list[Outcome] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # what the drill did, and when
    retries: int = 0  # idempotent requests sent again after an unanswered close (module docstring)

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def failures(self, kinds: tuple[str, ...] = tuple(EXPECTED)) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok and o.kind in kinds]

    def longest_gap(self, kinds: tuple[str, ...] = tuple(EXPECTED)) -> float:
        """The longest time without a successful answer, from the first to the last success."""
        ends = sorted(o.ended for o in self.outcomes if o.ok and o.kind in kinds)
        return max((b - a for a, b in pairwise(ends)), default=float("inf"))

    def clicks_acknowledged(self) -> Counter[str]:
        return Counter(o.code for o in self.outcomes if o.kind == "redirect" and o.status == 307)

    def created_urls(self) -> dict[str, int | None]:
        return {o.url: o.status for o in self.outcomes if o.kind == "create"}

    def between(self, start: str, end: str) -> list[Outcome]:
        """The requests started between two marks."""
        return [o for o in self.outcomes if self.marks[start] <= o.started < self.marks[end]]

    def summary(self, name: str) -> str:
        by_kind = Counter(o.kind for o in self.outcomes)
        failed = Counter(o.failure for o in self.failures())
        duration = max(o.ended for o in self.outcomes) - min(o.started for o in self.outcomes)
        slowest = max(o.ended - o.started for o in self.outcomes)
        lines = [
            f"{name}: {len(self.outcomes)} requests in {duration:.1f} s"
            f" ({', '.join(f'{kind} {n}' for kind, n in sorted(by_kind.items()))})",
            f"  failed: {sum(failed.values())}"
            + (f" ({', '.join(f'{k} ×{n}' for k, n in sorted(failed.items()))})" if failed else ""),
            f"  longest gap between successes: {self.longest_gap():.3f} s; slowest answer: {slowest:.3f} s;"
            f" client retries after an unanswered close: {self.retries}",
        ]
        return "\n".join(lines)


class Traffic:
    def __init__(self, stack: Stack, links: list[str], clients: int = 4, pause_s: float = 0.01) -> None:
        self._stack = stack
        self._links = links
        self.clients = clients
        self._pause_s = pause_s
        self._stop = threading.Event()
        self._crashed: list[BaseException] = []
        self._run_id = uuid.uuid4().hex[:6]  # request ids unique across drills
        self.record = Record()

    def _run_client(self, index: int, mix: tuple[str, ...]) -> None:
        try:
            self._client(index, mix)
        except BaseException as exc:  # a bug in the drill, not an answer: it must not pass unseen
            self._crashed.append(exc)
            raise

    def _client(self, index: int, mix: tuple[str, ...]) -> None:
        links = cycle(self._links[index:] + self._links[:index])
        # No pooling tricks: one kept-alive connection, as a plain client has. HTTP/1.1 only:
        # httpx's HTTP/2 fails requests that a GOAWAY lets finish (httpcore raises on any stream
        # once the connection is terminated), so it would blame nginx's reload for its own bug.
        with self._stack.client() as client:
            for number, kind in enumerate(cycle(mix)):
                if self._stop.is_set():
                    return
                headers = {"X-Request-ID": f"drill-{self._run_id}-{index}-{number}"}
                code, url = next(links) if kind in ("redirect", "read") else "", ""
                started = time.monotonic()
                try:
                    if kind != "create":
                        path = {"health": "/health", "redirect": f"/{code}", "read": f"/api/links/{code}"}[kind]
                        response = self._get(client, path, headers)
                    else:
                        url = f"{CREATED_URL_PREFIX}{uuid.uuid4().hex}"
                        response = client.post("/api/links", json={"url": url}, headers=headers)
                        if response.status_code == 201:
                            code = response.json()["code"]
                except httpx.HTTPError as exc:
                    status, detail = None, f"{type(exc).__name__}: {exc}"
                else:
                    status = response.status_code
                    detail = "" if status == EXPECTED[kind] else response.text[:200]
                request_id = headers["X-Request-ID"]
                outcome = Outcome(kind, started, time.monotonic(), status, detail, code, url, request_id)
                self.record.outcomes.append(outcome)  # list.append is atomic under the GIL
                time.sleep(self._pause_s)

    def _get(self, client: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
        try:
            return client.get(path, headers=headers)
        except httpx.RemoteProtocolError as exc:
            if CLOSED_UNANSWERED not in str(exc):
                raise
            self.record.retries += 1
            return client.get(path, headers=headers)

    @contextmanager
    def running(self, mix: tuple[str, ...] = DEFAULT_MIX) -> Iterator[Record]:
        """Traffic for the duration of the block; the record is complete when it exits."""
        threads = [threading.Thread(target=self._run_client, args=(i, mix), daemon=True) for i in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)  # a baseline before the drill acts
            yield self.record
            time.sleep(1.0)  # and the recovery after it
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=30)
        if self._crashed:
            raise RuntimeError("a traffic client crashed") from self._crashed[0]
