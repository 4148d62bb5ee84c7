"""The local stack (compose.yaml alone), up once for this package, driven through nginx."""

import time
from collections.abc import Iterator

import pytest

from tests.compose import Compose
from tests.stack.stacks import Stack, isolated_env, running

PROJECT = "linkstack-test"
RATE = 10  # r/s per client, compose.yaml's default
BURST = 20


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = isolated_env(201)
    compose = Compose(PROJECT, env=env)
    with running(
        compose,
        tmp_path_factory.mktemp("stack"),
        https=f"https://localhost:{env['HTTPS_PORT']}",
        http=f"http://localhost:{env['HTTP_PORT']}",
    ) as stack:
        yield stack


@pytest.fixture
def full_budget() -> None:
    """Waits until earlier traffic's share of the rate-limit budget has refilled (burst / rate)."""
    time.sleep(BURST / RATE + 0.5)
