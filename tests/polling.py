"""Waiting for something that happens eventually, with a message that says what never came."""

import time
from collections.abc import Callable


def eventually[T](check: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Calls `check` until it returns a truthy value without raising; returns that value."""
    deadline = time.monotonic() + timeout
    last_error = "never true"
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_error = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for: {what} (last error: {last_error})")
        time.sleep(interval)
