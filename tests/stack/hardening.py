"""What the container-security tests read from a running Compose project: its containers as Docker
describes them, each one's processes from the host's /proc, who can read which secret, and whether
a secret's value shows up anywhere it must not. Shared by tests/stack/local/test_container_security.py
and tests/stack/test_production_overlay.py."""

import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SECRETS = ("postgres_password", "redis_password", "admin_token", "grafana_admin_password")
APP_SECRETS = frozenset({"postgres_password", "redis_password", "admin_token"})
# Who may read each secret: compose.yaml's "secrets" job (its table) and compose.prod.yaml's
# secrets: lists. Every other service reads none.
READERS: Mapping[str, frozenset[str]] = {
    "postgres": frozenset({"postgres_password"}),
    "postgres-exporter": frozenset({"postgres_password"}),
    "redis": frozenset({"redis_password"}),
    "redis-exporter": frozenset({"redis_password"}),
    "app": APP_SECRETS,
    "migrate": APP_SECRETS,
    "grafana": frozenset({"grafana_admin_password"}),
    "secrets": frozenset(SECRETS),  # writes them (local) or checks them (production)
}
PROBE = "/probe"  # where probe_readable mounts the secrets


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


@dataclass(frozen=True)
class Container:
    inspect: dict

    @property
    def id(self) -> str:
        return self.inspect["Id"]

    @property
    def service(self) -> str:
        return self.inspect["Config"]["Labels"]["com.docker.compose.service"]

    @property
    def name(self) -> str:
        return self.inspect["Name"].lstrip("/")

    @property
    def running(self) -> bool:
        return bool(self.inspect["State"]["Running"])

    @property
    def host_pids(self) -> list[int]:
        """Every process of the container, as host PIDs (`docker top`)."""
        rows = docker("top", self.id, "-eo", "pid").stdout.split()[1:]
        return [int(pid) for pid in rows]

    def status(self, pid: int) -> dict[str, str]:
        """/proc/PID/status as a mapping; empty if the process has exited meanwhile."""
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split(":\t", 1) for line in lines if ":\t" in line)

    def identity(self) -> tuple[int, int, list[int]]:
        """uid, gid and supplementary groups of PID 1, read from the host's /proc."""
        status = self.status(self.inspect["State"]["Pid"])
        return int(status["Uid"].split()[0]), int(status["Gid"].split()[0]), [int(g) for g in status["Groups"].split()]

    def argv(self) -> list[str]:
        """Every process's command line (/proc/PID/cmdline), NULs as spaces."""
        lines = []
        for pid in self.host_pids:
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except FileNotFoundError:  # exited meanwhile
                continue
        return lines

    def readable_secrets(self) -> frozenset[str] | None:
        """The secrets this container reads at /run/secrets, trying each as its own user (`docker exec`);
        None if its image has no `cat` to try with."""
        readable = set()
        for name in SECRETS:
            result = docker("exec", self.id, "cat", f"/run/secrets/{name}", check=False)
            if "executable file not found" in result.stderr + result.stdout:
                return None
            if result.returncode == 0:
                readable.add(name)
        return frozenset(readable)


def containers(project: str) -> list[Container]:
    """Every container of the project, running or exited (the one-shot jobs)."""
    ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
    assert ids, f"no containers in project {project}"
    return [Container(item) for item in json.loads(docker("inspect", *ids).stdout)]


def probe_readable(image: str, identity: tuple[int, int, list[int]], mounts: Iterable[str]) -> set[str]:
    """Which of the files mounted under PROBE (`mounts`: docker -v specs, read-only) the identity
    can read: a throw-away container of `image` (which needs sh and cat), as that uid, gid and groups."""
    uid, gid, groups = identity
    command = [
        "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges:true", "--user", f"{uid}:{gid}",
        *(arg for group in groups for arg in ("--group-add", str(group))),
        *(arg for mount in mounts for arg in ("-v", mount)),
        "--entrypoint", "sh", image, "-c",
        f'for f in $(find {PROBE} -type f); do cat "$f" >/dev/null 2>&1 && basename "$f"; done; true',
    ]  # fmt: skip
    return set(docker(*command).stdout.split())


def leaks(values: Mapping[str, str], text: str | bytes) -> list[str]:
    """The names of the secrets whose value occurs in `text`."""
    blob = text.encode() if isinstance(text, str) else text
    return [name for name, value in values.items() if value.encode() in blob]


def image_leaks(values: Mapping[str, str], image: str) -> list[str]:
    """Secrets whose value occurs in the image: every layer's files (`docker save`, scanned as a
    stream), its history (the commands that built it) and its configuration."""
    found = set(leaks(values, docker("history", "--no-trunc", image).stdout))
    found |= set(leaks(values, docker("image", "inspect", image).stdout))
    overlap = max(len(v) for v in values.values())
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
        assert save.stdout is not None
        tail = b""
        while chunk := save.stdout.read(1 << 20):
            window = tail + chunk
            found |= set(leaks(values, window))
            tail = window[-overlap:]
    assert save.returncode == 0, f"docker save {image} failed"
    return sorted(found)


def assert_locked_down(container: Container, root_allowed: bool = False) -> None:
    """Read-only root, every capability dropped and none added, no-new-privileges, a pids limit;
    unless `root_allowed`, a non-root user configured and no process of it running as root."""
    config, host, name = container.inspect["Config"], container.inspect["HostConfig"], container.name
    assert host["ReadonlyRootfs"] is True, f"{name}: writable root"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], f"{name}: capabilities {host['CapAdd']}"
    assert "no-new-privileges:true" in (host["SecurityOpt"] or []), f"{name}: no no-new-privileges"
    assert (host["PidsLimit"] or 0) > 0, f"{name}: no pids limit"
    if root_allowed:
        return
    user = config["User"].split(":")[0]
    assert user not in ("", "0", "root"), f"{name}: user {config['User']!r}"
    if container.running:
        uids = {container.status(pid).get("Uid", "-").split()[0] for pid in container.host_pids}
        assert "0" not in uids, f"{name}: a process runs as root"
