"""Markers follow the layout: tests/app -> app, tests/config -> config, tests/stack -> stack."""

from pathlib import Path

import pytest

LAYERS = ("app", "config", "stack")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))
