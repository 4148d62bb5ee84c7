"""The shape every service with a loop shares: `start()` it, `close()` cancels and waits."""

import asyncio
from abc import ABC, abstractmethod

import structlog

log = structlog.get_logger()

# After an unexpected error, the loop starts again this much later: a bug must not spin.
RESTART_DELAY_S = 1.0


class BackgroundLoop(ABC):
    """Runs `_run()` as one named task for the lifetime of the app.

    `_run` handles the failures it expects (a dependency down); anything else is a bug, and a
    loop that ended on it would leave the worker serving without it, silently. So it is logged
    with its traceback, and the loop starts again.
    """

    task_name = "background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def _run(self) -> None: ...

    async def _supervised(self) -> None:
        while True:
            try:
                await self._run()
                return
            except Exception:
                log.exception("background_loop_crashed", task=self.task_name, restart_in_s=RESTART_DELAY_S)
                await asyncio.sleep(RESTART_DELAY_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervised(), name=self.task_name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
