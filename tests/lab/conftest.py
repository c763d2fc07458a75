"""Shared helpers of the lab tests: the process table and Toxiproxy toxics."""

from __future__ import annotations

import os
import time
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


def clustered_lab(tmp_path_factory, service: str) -> Iterator[Lab]:
    """A lab running `service` as a three-node cluster (a fixture's body). At the end, after
    every fault the module's tests struck it with, `lab down` of the service leaves none of
    its nodes' processes and none of its proxies (peers' and clients'), and `lab down` of
    the lab leaves no process at all."""
    root = Path(tmp_path_factory.mktemp(f"{service}-cluster"))
    lab = Lab(root, cluster=3)
    try:
        lab.ensure(service)
        yield lab
        api = lab.toxiproxy
        assert api.proxies(), "the cluster had no proxies to remove"
        lab.down(service)
        assert api.proxies() == {}
        assert not live_pids_mentioning(str(root / f"{service}-"))
    finally:
        lab.down()
    assert not live_pids_mentioning(str(root))


def node_states(lab: Lab, service: str) -> list[tuple[str, str]]:
    """(node, state) of each node of a clustered `service`, as `lab status` shows them."""
    return [(s.service, s.state) for s in lab.status() if s.service.startswith(f"{service}-")]


def wait(cond, timeout: float = 30.0, what: str = "", show=None) -> None:
    """Poll `cond` until true; on timeout say what was awaited and, with `show`, what was seen."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception as e:
            seen = e
        time.sleep(0.25)
    if show is not None:
        try:
            seen = show()
        except Exception as e:
            seen = e
    raise AssertionError(f"not within {timeout:g} s: {what} (last seen: {seen!r})")
