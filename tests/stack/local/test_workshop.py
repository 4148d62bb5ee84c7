"""Workshop labs 1, 3 and 7 against the local stack, through workshop/check as an instructor runs it
before a session: each lab passes, the report says so, and the stack is left as found."""

import re

import pytest

from tests.stack.stacks import Stack
from tests.stack.workshop import assert_passed, run_lab


@pytest.mark.timeout(900)
def test_the_check_runs_labs_1_3_7_and_finds_the_stack_as_it_was(stack: Stack, full_budget: None) -> None:
    result = run_lab(stack, "check", "--labs", "1,3,7", timeout=840)
    assert_passed(result)
    report = result.stdout.split("== report", 1)[1]
    for lab in ("01-request-journey", "03-rate-limits", "07-compose-to-cluster"):
        assert f"{lab}" in report and "passed" in report.split(lab, 1)[1].splitlines()[0], report
    assert re.search(r"^stack as found\s+yes$", report, re.MULTILINE), report
    assert "== ready for the workshop" in result.stdout
