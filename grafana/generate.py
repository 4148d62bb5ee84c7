"""Writes the provisioned dashboards, grafana/dashboards/<uid>.json, from grafana/dashboards_src/.

    uv run grafana/generate.py           write them (and remove JSON files no module makes)
    uv run grafana/generate.py --check   change nothing; exit 1 naming every file that differs

The JSON files are committed: Grafana reads them from the directory the dashboard provider
(grafana/provisioning/dashboards/dashboards.yaml) points at. Edit the Python, never the JSON.
"""

import argparse
import sys
from pathlib import Path

from dashboards_src import alerts, dependencies, load_balancing, load_test, logs, overview
from dashboards_src.common import render

OUT = Path(__file__).resolve().parent / "dashboards"
MODULES = (overview, load_balancing, dependencies, logs, alerts, load_test)


def generated() -> dict[str, str]:
    """File name -> content, one per dashboard module."""
    files: dict[str, str] = {}
    for module in MODULES:
        name = f"{module.UID}.json"
        if name in files:
            raise SystemExit(f"generate: two modules make {name}: dashboard uids must be unique")
        files[name] = render(module.build())
    return files


def differences(files: dict[str, str]) -> list[str]:
    """What on disk is not what the generator makes: changed, missing or stray files."""
    found = {path.name for path in OUT.glob("*.json")}
    changed = [
        f"{name} ({'missing' if name not in found else 'differs'})"
        for name, text in sorted(files.items())
        if name not in found or (OUT / name).read_text(encoding="utf-8") != text
    ]
    stray = [f"{name} (no module makes it)" for name in sorted(found - files.keys())]
    return changed + stray


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args()

    files = generated()
    problems = differences(files)
    where = OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT
    if args.check:
        if problems:
            for problem in problems:
                print(f"generate --check: {where}/{problem}")
            print(f"generate --check: FAILED, {len(problems)} file(s); run `uv run grafana/generate.py`")
            return 1
        print(f"generate --check: OK, {len(files)} dashboards in {where} are what the generator makes")
        return 0

    OUT.mkdir(exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
    for path in OUT.glob("*.json"):
        if path.name not in files:
            path.unlink()
    print(f"generate: wrote {len(files)} dashboards to {where} ({len(problems)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
