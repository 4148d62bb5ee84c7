"""Throwaway Postgres and Redis servers from the machine's server packages, free ports, and
waiting for something to happen: shared by the tests and scripts/bench-app.

Each server runs in a temporary directory on a free loopback port and is torn down afterwards.
Importable as `devservers`: the tests get scripts/ on sys.path from pytest's `pythonpath`, the
scripts beside it have it as their own directory.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PG_PASSWORD = "test-postgres-password"
REDIS_PASSWORD = "test-redis-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually[T](check: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Calls `check` until it returns a truthy value without raising; returns that value.

    The error says what never came, and the last exception `check` raised.
    """
    deadline = time.monotonic() + timeout
    last_error = "never true"
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_error = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for: {what} (last error: {last_error})")
        time.sleep(interval)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"Timed out after {timeout}s waiting for port {port}")


def _postgres_bindir() -> Path:
    if "PG_BINDIR" in os.environ:
        return Path(os.environ["PG_BINDIR"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server found: apt-get install -y postgresql (or set PG_BINDIR)")
    return found[-1].parent


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        # Its own directory straight under /tmp: the `postgres` user cannot enter pytest's.
        self.workdir = Path(tempfile.mkdtemp(prefix="linkstack-pg-"))
        self.data = self.workdir / "data"
        self.port = free_port()
        # initdb refuses to run as root: run the server as the packaged `postgres` user then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.workdir)

    def init(self) -> None:
        pwfile = self.workdir / "pw"
        pwfile.write_text(PG_PASSWORD)
        if self._as:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.workdir / "log"),
            "-w",
            "start",
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        config = f'port {self.port}\nbind 127.0.0.1\nsave ""\nappendonly no\nrequirepass {REDIS_PASSWORD}\n'
        assert self.process.stdin is not None
        self.process.stdin.write(config.encode())
        self.process.stdin.close()
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
