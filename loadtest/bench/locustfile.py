"""The smallest Locust user, to measure what one Locust process can offer (loadtest/bench/stack.py).

GET /health as fast as it goes (no wait), TLS verified against the stack's CA
(BENCH_CA_FILE). BENCH_CONNECT_TO=<address> sends connections for the URL's host
name to that address (nginx on the "loadgen" network), so the certificate's name
is verified while no host port and no docker-proxy are in the way.
"""

import os
import socket

import gevent.socket
import gevent.ssl
from locust import FastHttpUser, constant, task

CA_FILE = os.environ["BENCH_CA_FILE"]
CONNECT_TO = os.environ.get("BENCH_CONNECT_TO")
_getaddrinfo = gevent.socket.getaddrinfo


def _pinned_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
    if CONNECT_TO and host != CONNECT_TO:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (CONNECT_TO, int(port)))]
    return _getaddrinfo(host, port, *args, **kwargs)


gevent.socket.getaddrinfo = _pinned_getaddrinfo  # geventhttpclient resolves through this


class HealthUser(FastHttpUser):
    wait_time = constant(0)
    insecure = False
    ssl_context_factory = staticmethod(lambda: gevent.ssl.create_default_context(cafile=CA_FILE))

    @task
    def health(self) -> None:
        self.client.get("/health")
