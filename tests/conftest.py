"""Markers follow the layout: tests/app -> app, tests/config -> config, tests/stack -> stack."""

from pathlib import Path

import pytest

from tests import figures

LAYERS = ("app", "config", "k8s", "stack")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for section, entries in figures.SECTIONS.items():
        terminalreporter.section(section)
        for text in entries:
            terminalreporter.write_line(text + "\n")
