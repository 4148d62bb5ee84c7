"""The app under Gunicorn, as the image runs it, on a free loopback port."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.core.request_telemetry import FLUSH_INTERVAL_S
from devservers import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]


class LiveServer:
    def __init__(self, env: dict[str, str], workdir: Path, workers: int = 2, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        metrics_dir = workdir / f"metrics-{self.port}"
        self.env = {
            **os.environ,
            **env,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            **extra_env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> "LiveServer":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_ready:
            eventually(lambda: httpx.get(f"{self.url}/ready").status_code == 200, f"gunicorn on {self.url} ready", 30)
        return self

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        time.sleep(3 * FLUSH_INTERVAL_S)  # access lines are written in batches
        return self.log_path.read_text()
