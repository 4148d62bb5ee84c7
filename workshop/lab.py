"""What every lab's `run` shares: the running stack, its CA, and a verdict per step.

A lab prints one line per step, `PASS`/`FAIL`, the step's name and what was seen, and exits
0 when every step passed, 1 when one failed, 2 when it could not run (no stack, bad arguments).
The stack is the one `docker compose` sees from the repository: COMPOSE_PROJECT_NAME, the
ports (HTTPS_PORT, PROMETHEUS_PORT, ...) and --env-file as Compose reads them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from devservers import eventually  # noqa: E402 - scripts/ is no package
from tests.stack.drills.traffic import Traffic  # noqa: E402 - the failure drills' recorded traffic
from tests.stack.telemetry import Alertmanager, Prometheus  # noqa: E402 - the suite's API clients

__all__ = ["ROOT", "Lab", "Unrunnable", "eventually", "loadtest"]
# Debian's Chromium; CHROMIUM names another build.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def script(name: str) -> ModuleType:
    """One of scripts/ as a module: the labs drive the stack as scripts/loadtest does."""
    loader = SourceFileLoader(name.replace("-", "_"), str(ROOT / "scripts" / name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    sys.modules[loader.name] = module  # its dataclasses look themselves up there
    loader.exec_module(module)
    return module


loadtest = script("loadtest")
Unrunnable = loadtest.Unrunnable


class Lab:
    def __init__(self, title: str, description: str) -> None:
        parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--env-file", help="the env file the stack was started with (e.g. local-images.env)")
        self.parser = parser
        self.title = title
        self.failed = 0
        self.ca: Path | None = None
        self.started = time.monotonic()

    def start(self, argv: list[str] | None = None, *, stack: bool = True) -> argparse.Namespace:
        """Parses the arguments and, unless the lab only reads files (stack=False), finds the stack."""
        self.args = self.parser.parse_args(argv)
        try:
            if stack:
                self.stack = loadtest.Stack(self.args.env_file)
                self.stack.require_running()
                self.ca = self._ca()
        except Unrunnable as exc:
            self.cannot_run(exc)
        print(f"== {self.title}", flush=True)
        return self.args

    def cannot_run(self, reason: object) -> None:
        print(f"{self.title}: cannot run: {reason}", file=sys.stderr)
        raise SystemExit(2)

    def _ca(self) -> Path:
        command = [str(ROOT / "scripts" / "ca-cert")] + (
            ["--env-file", self.args.env_file] if self.args.env_file else []
        )
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise Unrunnable(f"scripts/ca-cert failed: {result.stderr.strip()}")
        path = Path(tempfile.mkstemp(prefix="linkstack-ca-", suffix=".pem")[1])
        path.write_text(result.stdout)
        return path

    @property
    def base_url(self) -> str:
        return f"https://localhost:{os.environ.get('HTTPS_PORT', '8443')}"

    def port(self, name: str, default: int) -> int:
        return int(os.environ.get(name, default))

    @property
    def prometheus(self) -> Prometheus:
        return Prometheus(f"http://127.0.0.1:{self.port('PROMETHEUS_PORT', 9090)}")

    @property
    def alertmanager(self) -> Alertmanager:
        return Alertmanager(f"http://127.0.0.1:{self.port('ALERTMANAGER_PORT', 9093)}")

    def compose_args(self) -> list[str]:
        return ["--env-file", self.args.env_file] if self.args.env_file else []

    def loadtest(self, scenario: str, *args: str) -> tuple[subprocess.Popen[str], Path]:
        """scripts/loadtest running the scenario in the stack; its reports' folder."""
        reports = Path(tempfile.mkdtemp(prefix=f"lab-{scenario}-"))
        command = [sys.executable, str(ROOT / "scripts/loadtest"), scenario, "--reports", str(reports)]
        process = subprocess.Popen(
            [*command, *self.compose_args(), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return process, reports

    @staticmethod
    def verdict(process: subprocess.Popen[str], reports: Path, timeout: float) -> tuple[bool, str]:
        """The scenario's verdict: passed or not, with its checks as figures."""
        output, _ = process.communicate(timeout=timeout)
        verdict_file = reports / "verdict.json"
        if not verdict_file.exists():
            return False, f"scripts/loadtest could not run (exit {process.returncode}): {output.strip()[-600:]}"
        verdict = json.loads(verdict_file.read_text())
        checks = "; ".join(f"{c['what']} {c['measured']} ({c['target']})" for c in verdict["checks"])
        return verdict["passed"], checks

    @contextmanager
    def browser(self) -> Iterator[Page]:
        """A page in a real, headless Chromium: what a participant sees in theirs."""
        if not Path(CHROMIUM).exists():
            raise Unrunnable(
                f"no Chromium at {CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM"
            )
        with sync_playwright() as playwright:
            # --no-sandbox: as root (CI, containers) Chromium refuses to start with its sandbox.
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                yield browser.new_page()
            finally:
                browser.close()

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTPS client of the stack that verifies its certificate (also what Traffic asks of a stack)."""
        return httpx.Client(base_url=self.base_url, verify=self.tls(), timeout=15, **kwargs)  # type: ignore[arg-type]

    def traffic(self, codes: list[str]) -> Traffic:
        """The failure drills' recorded traffic, kept under the stack's rate limit (it comes from
        this machine, one client address): two clients with a pause between requests."""
        return Traffic(self, codes, clients=2, pause_s=0.25)

    def links(self, prefix: str, count: int = 6) -> list[str]:
        """Fresh links, each redirected once, so that it sits in the cache and has one click."""
        codes = [f"{prefix}{secrets.token_hex(3)}" for _ in range(count)]
        with self.client() as client:
            for code in codes:
                client.post("/api/links", json={"url": f"https://example.com/{code}", "code": code}).raise_for_status()
                if client.get(f"/{code}").status_code != 307:
                    raise Unrunnable(f"/{code} does not redirect: is the stack healthy?")
        return codes

    def psql(self, query: str) -> str:
        """A query as the app's database user, inside the Postgres container."""
        return self.stack.run("exec", "-T", "postgres", "psql", "-U", "app", "-d", "app", "-tAc", query).strip()

    def clicks_stored(self, codes: list[str]) -> dict[str, int]:
        rows = self.psql(f"SELECT code, clicks FROM links WHERE code IN ({', '.join(repr(c) for c in codes)})")
        return {code: int(n) for code, n in (row.split("|") for row in rows.split())}

    def step(self, name: str, check: Callable[[], tuple[bool, str]]) -> bool:
        """Runs one observation; an exception is a failed step with its reason, not a crash."""
        try:
            ok, detail = check()
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
            if os.environ.get("LAB_DEBUG"):
                traceback.print_exc()
        print(f"{'PASS' if ok else 'FAIL'}  {name:<34} {detail}", flush=True)
        self.failed += not ok
        return ok

    def finish(self) -> None:
        if self.ca:
            self.ca.unlink(missing_ok=True)
        seconds = time.monotonic() - self.started
        verdict = "passed" if not self.failed else f"failed ({self.failed} step(s))"
        print(f"== {self.title}: {verdict} in {seconds:.0f} s", flush=True)
        raise SystemExit(1 if self.failed else 0)
