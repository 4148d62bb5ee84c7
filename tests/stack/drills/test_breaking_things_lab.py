"""Workshop lab 4 in the drills' stack, first of the package (the file's name orders it): a replica
killed, Redis stopped and Postgres restarted under traffic, each judged by what README promises.

First, on purpose: after the replicas were scaled down (`--scale app=5`, then 3), a killed replica
made nginx answer every request 502 ("no live upstreams") for about 5 s. Lab 4 found it; the
cause is not fixed yet (workshop/README.md, "Known issue"). Here the lab runs on a stack that was
never scaled down.
"""

import pytest

from tests.stack.drills.conftest import restore
from tests.stack.stacks import Stack
from tests.stack.workshop import assert_passed, run_lab


@pytest.mark.timeout(600)
def test_lab_4_breaking_things(stack: Stack) -> None:
    try:
        assert_passed(run_lab(stack, "04-breaking-things/run", timeout=560))
    finally:
        restore(stack)
