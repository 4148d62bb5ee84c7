"""How many CPUs this container may use: its cgroup quota, not the host's core count.

`os.cpu_count()` sees every host core (64 cores -> 129 workers -> OOM has been reported);
`os.process_cpu_count()` honours affinity but not a CFS quota such as `cpus: 1.5`.
"""

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota in CPUs (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), or None if unlimited."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100_000)
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota = _read(root / controller / "cpu.cfs_quota_us")
        period = _read(root / controller / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return None if int(quota) <= 0 else int(quota) / int(period)
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Whole CPUs to plan workers on: the quota rounded up, never more than the CPUs we may run on."""
    usable = os.process_cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    return usable if limit is None else max(1, min(usable, math.ceil(limit)))
