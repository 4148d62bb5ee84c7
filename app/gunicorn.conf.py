"""Gunicorn settings for the app image: `gunicorn -c app/gunicorn.conf.py`."""

import importlib
import os
from pathlib import Path

from prometheus_client import multiprocess

from app.core.config import get_settings
from app.core.cpu import available_cpus
from app.core.logging import stdlib_config

# Validated in the master, before any worker forks: a bad setting stops the start here.
settings = get_settings()

wsgi_app = "app.asgi:app"
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "uvicorn_worker.UvicornWorker"
# Async workers: about one per CPU of the quota (2n+1 was written for sync workers).
workers = settings.web_concurrency or available_cpus()
# The heartbeat file on tmpfs: a disk-backed /tmp can stall workers into timeouts.
worker_tmp_dir = "/dev/shm"
timeout = 30
# How long a worker has after SIGTERM before Gunicorn SIGKILLs it: the worker's own budget
# (SHUTDOWN_DRAIN_S + SHUTDOWN_FLUSH_S, checked by Settings) ends first. Below the Compose
# stop_grace_period (30 s), so Docker never SIGKILLs the master while a worker stops.
graceful_timeout = settings.graceful_timeout_s
# The backend's idle keep-alive timeout (KEEPALIVE_S, 75 s). nginx closes idle upstream
# connections after 60 s (NGINX_UPSTREAM_KEEPALIVE_TIMEOUT); the backend must wait longer or it
# can close a connection just as nginx reuses it, which nginx reports as a 502 (the keep-alive
# drill in tests/stack/drills/ shows both pairs).
keepalive = settings.keepalive_s
forwarded_allow_ips = settings.forwarded_allow_ips
accesslog = None  # the app logs its own access line
# Gunicorn 27's runtime control socket: not used here, and the root filesystem is read-only.
control_socket_disable = True
logconfig_dict = stdlib_config(settings.log_level, settings.replica_name)


def on_starting(server):
    # uvloop and httptools are the fast paths; refuse to run without them.
    for module in ("uvloop", "httptools"):
        importlib.import_module(module)
    # Files of a previous run would be merged into this run's metrics.
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def post_worker_init(worker):
    # "auto" would quietly fall back to asyncio and h11; name them so a missing one fails.
    worker.config.loop = "uvloop"
    worker.config.http = "httptools"
    # uvicorn-worker passes no drain timeout on, and without one Uvicorn waits for the slowest
    # request however long it takes; past it, Uvicorn cancels what is left and shuts down.
    worker.config.timeout_graceful_shutdown = settings.shutdown_drain_s


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
