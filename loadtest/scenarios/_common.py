"""What every scenario shares: TLS against the stack's CA, one client address per simulated
user, and the links the users follow.

Files starting with "_" are not scenarios: Locust skips them when it loads this folder.
"""

import ipaddress
import itertools
import os
import random
import secrets
from typing import Any

import gevent.ssl
from locust import FastHttpUser, events
from locust.env import Environment

import _metrics  # noqa: F401  (Locust's figures for Prometheus, on the master)

# RFC 2544's range for benchmark traffic: 131,072 addresses that are nobody's real client.
CLIENT_RANGE = ipaddress.ip_network("198.18.0.0/15")
ADDRESSES_PER_WORKER = 8192
_next_address = itertools.count()


def _ca_file() -> str:
    path = os.environ.get("LOADTEST_CA_FILE", "")
    if not path or not os.path.isfile(path):
        raise SystemExit(
            f"LOADTEST_CA_FILE={path!r} is not a file: point it at the stack's CA certificate "
            "(scripts/ca-cert > ca.pem); TLS is verified, never skipped"
        )
    return path


def tls_context() -> gevent.ssl.SSLContext:
    return gevent.ssl.create_default_context(cafile=_ca_file())


@events.init.add_listener
def _check_ca(environment: Environment, **_: Any) -> None:
    _ca_file()  # fail at start, with the reason, rather than with the first request


def client_address(environment: Environment) -> str:
    """An address of its own for each user, distinct across workers (nginx trusts the
    generators' network to name it in X-Forwarded-For: compose.yaml, network "loadgen")."""
    worker = getattr(environment.runner, "worker_index", 0)
    offset = (worker * ADDRESSES_PER_WORKER + next(_next_address)) % CLIENT_RANGE.num_addresses
    return str(CLIENT_RANGE[offset])


class StackUser(FastHttpUser):
    """A client of the stack with its own address; TLS verified against the stack's CA."""

    abstract = True
    insecure = False
    ssl_context_factory = staticmethod(tls_context)

    def on_start(self) -> None:
        self.address = client_address(self.environment)

    def send(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        headers = {"X-Forwarded-For": self.address, **kwargs.pop("headers", {})}
        return self.client.request(method, path, name=name, headers=headers, **kwargs)


class LinkPool:
    """Codes of links that stay for the whole run, shared by the users of one process."""

    def __init__(self) -> None:
        self.codes: list[str] = []

    def create(self, user: StackUser, prefix: str) -> str | None:
        """POST /api/links; the new code, or None when the stack refused (counted as a failure)."""
        created = self.create_owned(user, prefix)
        return created[0] if created else None

    @staticmethod
    def create_owned(user: StackUser, prefix: str) -> tuple[str, str] | None:
        """POST /api/links; the new code and its management token (what deleting it takes)."""
        code = f"{prefix}{secrets.token_hex(5)}"
        body = {"url": f"https://example.com/{code}", "code": code}
        with user.send("POST", "/api/links", "POST /api/links", json=body, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"create: {response.status_code}")
                return None
            return code, response.json()["management_token"]

    def add(self, code: str | None) -> None:
        if code is not None:
            self.codes.append(code)

    def pick(self) -> str | None:
        return random.choice(self.codes) if self.codes else None


def follow(user: StackUser, code: str, name: str = "GET /{code}") -> Any:
    """The redirect, not followed: a 307 is the answer we measure."""
    with user.send("GET", f"/{code}", name, allow_redirects=False, catch_response=True) as response:
        if response.status_code != 307:
            response.failure(f"redirect: {response.status_code}")
        return response
