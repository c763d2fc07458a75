"""Shared helpers of the lab tests: the process table and Toxiproxy toxics."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.lab import Lab


def live_pids_in_groups(pgids: set[int]) -> list[int]:
    """Pids of live (non-zombie) processes whose process group is in `pgids`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid in pgids and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def live_pids_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line or environment mentions `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in blob and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@contextmanager
def latency(lab: Lab, proxy: str, ms: int) -> Iterator[None]:
    """A latency toxic on the server-to-client stream of `proxy`, removed on exit."""
    lab.toxiproxy.add_toxic(proxy, "latency", stream="downstream", name="test_latency", latency=ms)
    try:
        yield
    finally:
        lab.toxiproxy.remove_toxic(proxy, "test_latency")


@contextmanager
def disabled(lab: Lab, proxy: str) -> Iterator[None]:
    lab.toxiproxy.set_enabled(proxy, False)
    try:
        yield
    finally:
        lab.toxiproxy.set_enabled(proxy, True)
