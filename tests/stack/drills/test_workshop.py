"""Workshop lab 6 in the drills' stack: a release with an expand migration rolled out under
traffic without a failed request, the too-early contract and its errors, then everything back."""

import pytest

from tests.stack.drills.conftest import restore
from tests.stack.stacks import Stack
from tests.stack.workshop import assert_passed, run_lab


@pytest.mark.timeout(900)
def test_lab_6_zero_downtime_deploy(stack: Stack) -> None:
    try:
        assert_passed(run_lab(stack, "06-zero-downtime-deploy/run", timeout=860))
    finally:
        restore(stack)
