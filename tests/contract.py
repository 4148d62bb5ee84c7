"""The API against its own OpenAPI document: schemathesis with every check, and its verdict.

Shared by the run against the app (tests/app/test_api_contract.py) and the run through nginx
(tests/stack/drills/test_contract_through_nginx.py). Every response schemathesis got is counted
by status from its NDJSON report: a clean run has no failure, no error and no 5xx.
"""

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests import figures

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Bounded for CI: about 30 s against the app on the 2-core machine, every phase included.
MAX_EXAMPLES = 200
ARGS = (
    "--checks",
    "all",
    "--max-examples",
    str(MAX_EXAMPLES),
    # A redirect's target is any URL a link was made with: never follow one off the stack.
    "--max-redirects",
    "0",
    # Fault injection makes the app fail on purpose (injected 5xx, latency, memory taken); it is
    # absent in production and not routed by nginx (tests/app/test_faults.py covers it).
    "--exclude-tag",
    "admin",
    "--no-color",
)


@dataclass
class Outcome:
    exit_code: int
    output: str
    report: dict
    statuses: Counter[int]

    def figures(self) -> str:
        ops, cases = self.report["operations"], self.report["test_cases"]
        by_status = ", ".join(f"{status} ×{count}" for status, count in sorted(self.statuses.items()))
        return (
            f"schemathesis {self.report['schemathesis_version']}: {ops['tested']} operations"
            f" ({ops['total']} in the document), {cases['generated']} test cases,"
            f" {sum(self.statuses.values())} responses ({by_status}),"
            f" {len(self.report['failures'])} failures, {len(self.report['errors'])} errors,"
            f" {self.report['running_time']:.1f} s, seed {self.report['seed']}"
        )


def _statuses(ndjson: Path) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        if "ScenarioFinished" in event:
            for interaction in event["ScenarioFinished"]["recorder"].get("interactions", {}).values():
                if interaction.get("response"):
                    statuses[interaction["response"]["status_code"]] += 1
    return statuses


def run_schemathesis(base_url: str, schema_location: str, workdir: Path, *extra_args: str) -> Outcome:
    """Runs schemathesis against `base_url` with the document at `schema_location`; prints and
    returns the outcome. `extra_args`: headers (`-H "Authorization: Bearer ..."`), `--tls-verify`."""
    json_report, ndjson_report = workdir / "schemathesis.json", workdir / "schemathesis.ndjson"
    command = [
        str(SCHEMATHESIS),
        "run",
        schema_location,
        "--url",
        base_url,
        *ARGS,
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(json_report),
        "--report-ndjson-path",
        str(ndjson_report),
        *extra_args,
    ]
    # In `workdir`: what schemathesis keeps (.schemathesis/: examples, crashes) stays out of the tree.
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    outcome = Outcome(done.returncode, done.stdout + done.stderr, json.loads(json_report.read_text()), Counter())
    outcome.statuses = _statuses(ndjson_report)
    figures.record("schemathesis", f"{base_url}: {outcome.figures()}")
    return outcome


def assert_clean(outcome: Outcome) -> None:
    """Every operation tested, nothing failed or errored, no 5xx answered."""
    server_errors = {status: n for status, n in outcome.statuses.items() if status >= 500}
    clean = (
        outcome.exit_code == 0
        and not outcome.report["failures"]
        and not outcome.report["errors"]
        and not server_errors
        and outcome.report["operations"]["tested"] == outcome.report["operations"]["selected"] > 0
    )
    assert clean, f"{outcome.figures()}\n5xx: {server_errors}\n{outcome.output[-20000:]}"
