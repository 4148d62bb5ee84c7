"""What every lab's `run` shares: the running stack, its CA, and a verdict per step.

A lab prints one line per step, `PASS`/`FAIL`, the step's name and what was seen, and exits
0 when every step passed, 1 when one failed, 2 when it could not run (no stack, bad arguments).
The stack is the one `docker compose` sees from the repository: COMPOSE_PROJECT_NAME, the
ports (HTTPS_PORT, PROMETHEUS_PORT, ...) and --env-file as Compose reads them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from devservers import eventually  # noqa: E402 - scripts/ is no package

__all__ = ["ROOT", "Lab", "Unrunnable", "eventually", "loadtest"]


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
            print(f"{self.title}: cannot run: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"== {self.title}", flush=True)
        return self.args

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

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

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
