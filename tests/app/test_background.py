"""A background loop that meets a bug says so and starts again, instead of ending silently."""

import asyncio

import pytest

from app.services import background
from app.services.background import BackgroundLoop


class Flaky(BackgroundLoop):
    task_name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0
        self.running = asyncio.Event()

    async def _run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("a bug")
        self.running.set()
        await asyncio.Event().wait()


def test_a_crashed_loop_is_logged_and_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[tuple[str, dict]] = []
    monkeypatch.setattr(background, "RESTART_DELAY_S", 0.01)
    monkeypatch.setattr(background.log, "exception", lambda event, **fields: logged.append((event, fields)))

    async def scenario() -> int:
        loop = Flaky()
        loop.start()
        await asyncio.wait_for(loop.running.wait(), 5)
        await loop.close()
        return loop.runs

    assert asyncio.run(scenario()) == 2
    assert logged == [("background_loop_crashed", {"task": "flaky", "restart_in_s": 0.01})]
