"""Figures the tests measure (drills, load tests, scanners), printed at the end of the session by
tests/conftest.py, so that they show in CI output whether the tests pass or fail."""

from collections import defaultdict

SECTIONS: dict[str, list[str]] = defaultdict(list)


def record(section: str, text: str) -> None:
    SECTIONS[section].append(text)
