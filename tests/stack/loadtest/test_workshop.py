"""Workshop labs 2, 4 and 5 in the load-test stack, which has Locust: scaling to five replicas,
least_conn against round robin and a run from Locust's web UI in a browser (lab 2); a replica
killed, Redis stopped and Postgres restarted under traffic (lab 4), after lab 2, in a stack that
`up --build` started, as a room's stack would be after the labs before it; the p99 alert from
pending to firing on Prometheus' and Alertmanager's pages, its notification and its resolve
(lab 5, on the shortened timing of tests/stack/fast_alerts.py)."""

import pytest

from tests.stack.stacks import Stack
from tests.stack.workshop import assert_passed, run_lab


@pytest.mark.timeout(900)
def test_lab_5_the_p99_alert(stack: Stack) -> None:
    assert_passed(run_lab(stack, "05-p99-alert/run", timeout=860))


@pytest.mark.timeout(600)
def test_lab_2_scaling_and_balancing(stack: Stack) -> None:
    # 20 s phases: the verdict's p99 ratio is ~0.01 against a 0.7 limit, the margin holds.
    assert_passed(run_lab(stack, "02-scaling-and-balancing/run", "--duration", "20", timeout=560))


@pytest.mark.timeout(400)
def test_lab_4_breaking_things_after_scaling(stack: Stack) -> None:
    # After lab 2's scale-up and -down, and a stack started with `up --build`: restoring the killed
    # replica must not recreate the others (README, "Change a running stack with `--no-recreate`").
    assert_passed(run_lab(stack, "04-breaking-things/run", timeout=360))
