"""Shared by the tests: Hypothesis runs derandomized (the same examples every run,
so CI is deterministic), and a look at the process table for leftovers."""

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("txchaos-deterministic", derandomize=True, print_blob=True)
settings.load_profile("txchaos-deterministic")

pytest_plugins = ["pytester"]


@pytest.fixture
def processes_mentioning() -> Callable[[str], list[str]]:
    """Processes whose command line contains a text: what a test expects to be gone."""
    def find(text: str) -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline[:200]}")
        return found
    return find
