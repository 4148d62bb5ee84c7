"""The shape every service with a loop shares: `start()` it, `close()` cancels and waits."""

import asyncio
from abc import ABC, abstractmethod


class BackgroundLoop(ABC):
    """Runs `_run()` as one named task for the lifetime of the app."""

    task_name = "background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def _run(self) -> None: ...

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
