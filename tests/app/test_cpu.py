"""Workers follow the container's CPU quota, in cgroup v2 and v1 layouts."""

import os
from pathlib import Path

import pytest

from app.core.cpu import available_cpus, cgroup_cpu_limit


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content + "\n")
    return root


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "max 100000"}, None),
        ({"cpu.max": "150000 100000"}, 1.5),
        ({"cpu.max": "50000 100000"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "200000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 2.0),
        ({}, None),
    ],
)
def test_quota(tmp_path: Path, files: dict[str, str], limit: float | None) -> None:
    assert cgroup_cpu_limit(write(tmp_path, files)) == limit


def test_workers_round_up_and_never_exceed_usable_cpus(tmp_path: Path) -> None:
    usable = os.process_cpu_count() or 1
    assert available_cpus(write(tmp_path / "half", {"cpu.max": "50000 100000"})) == 1
    assert available_cpus(write(tmp_path / "many", {"cpu.max": "6400000 100000"})) == usable
    assert available_cpus(write(tmp_path / "none", {})) == usable
