"""Clock faults on real processes: only the node's wall clock moves, monotonic time and
sleeps stay true, and healing sets the clock true again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faults.catalog import CATALOG
from faults.clock import clock_of
from faults.family import Reach
from faults.schedule import generate
from harness.clock import Clock
from harness.errors import BadInput
from harness.procs import ManagedProcess
from harness.topology import Node, Topology

# Prints (wall - true wall, monotonic) every 20 ms; sleeps with time.sleep, which
# libfaketime's own monotonic switch breaks under Python (EINVAL).
PROBE = """
import ctypes, sys, time
libc = ctypes.CDLL(None)
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
def true_wall():  # the raw syscall, which the shim does not intercept
    ts = TS(); libc.syscall(228, 0, ctypes.byref(ts)); return ts.s + ts.ns / 1e9
while True:
    print(f"{time.time() - true_wall():.3f} {time.monotonic():.3f}", flush=True)
    time.sleep(0.02)
"""


class Probe:
    """A real process on `clock`, and its latest readings."""

    def __init__(self, clock: Clock) -> None:
        self.p = subprocess.Popen([sys.executable, "-c", PROBE], stdout=subprocess.PIPE, text=True,
                                  env={**clock.env(), "PATH": "/usr/bin:/bin"})

    def read(self, settle: float = 0.3) -> list[tuple[float, float]]:
        """Readings over the next `settle` seconds."""
        assert self.p.stdout is not None
        out, end = [], time.monotonic() + settle
        while time.monotonic() < end:
            line = self.p.stdout.readline().split()
            out.append((float(line[0]), float(line[1])))
        return out

    def close(self) -> None:
        self.p.kill()
        self.p.wait()


@pytest.fixture
def probe(tmp_path: Path):
    clock = Clock(tmp_path / "node.clock")
    pr = Probe(clock)
    yield clock, pr
    pr.close()
    clock.close()


def test_a_jump_moves_only_the_wall_clock_and_healing_sets_it_true(probe) -> None:
    clock, pr = probe
    assert abs(pr.read()[-1][0]) < 0.05
    clock.jump(60)
    after = pr.read()
    assert abs(after[-1][0] - 60) < 0.05
    monos = [m for _, m in after]
    assert all(0 <= b - a < 0.5 for a, b in zip(monos, monos[1:]))  # monotonic never jumped
    clock.jump(-90)
    assert abs(pr.read()[-1][0] + 30) < 0.05  # steps add up, backward too
    clock.reset()
    assert abs(pr.read()[-1][0]) < 0.05


def test_a_skew_runs_the_wall_clock_fast_or_slow_without_a_step(probe) -> None:
    clock, pr = probe
    pr.read(0.1)
    clock.skew(5.0)
    r = pr.read(1.0)
    (w0, m0), (w1, m1) = r[0], r[-1]
    gained = (w1 - w0) / (m1 - m0)  # wall seconds gained per true second: rate - 1
    assert 3.0 < gained < 5.0, gained
    assert abs(r[0][0]) < 0.3  # no step at the change
    clock.skew(1.0)  # keeps what it gained, runs true from now
    held = pr.read(0.5)
    assert abs(held[-1][0] - held[0][0]) < 0.05
    clock.reset()
    assert abs(pr.read()[-1][0]) < 0.05


def _clocked(tmp: Path, name: str, role: str, clocked: bool) -> Node:
    proc = ManagedProcess(name, [sys.executable, "-c", "import time; time.sleep(600)"],
                          log_path=tmp / f"{name}.log")
    proc.clock = Clock(tmp / f"{name}.clock") if clocked else None
    return Node(name, role, process=proc)


def test_generated_clock_faults_hit_only_nodes_on_a_clock(tmp_path: Path) -> None:
    topo = Topology([_clocked(tmp_path, "coordinator", "coordinator", True),
                     _clocked(tmp_path, "accounts", "participant", True),
                     _clocked(tmp_path, "gateway", "participant", False)], [])
    events = [e for seed in range(10) for e in
              generate(seed, families=["clock-jump", "clock-skew", "kill"], duration=60, topology=topo).events]
    clock_events = [e for e in events if e.fault.startswith("clock-")]
    assert {e.fault for e in clock_events} == {"clock-jump", "clock-skew"}
    assert {t for e in clock_events for t in e.targets} == {"coordinator", "accounts"}
    assert any(e.fault == "kill" and "gateway" in e.targets for e in events)
    with pytest.raises(BadInput, match="none of the fault families"):
        generate(1, families=["clock-jump"], duration=30,
                 topology=Topology([_clocked(tmp_path, "x", "participant", False)], []))


def test_injecting_steps_the_clock_and_healing_resets_it(tmp_path: Path) -> None:
    node = _clocked(tmp_path, "coordinator", "coordinator", True)
    plain = _clocked(tmp_path, "gateway", "participant", False)
    reach = Reach(Topology([node, plain], []), toxiproxy=None)  # type: ignore[arg-type]
    fam = CATALOG["clock-jump"]
    inj = asyncio.run(fam.inject(reach, fam.plan(reach, ("coordinator",), fam.check({"seconds": -300}))))
    clock = clock_of(node)
    assert clock is not None and abs(clock.offset_s() + 300) < 0.01
    inj.heal()
    assert abs(clock.offset_s()) < 0.001
    with pytest.raises(BadInput, match="does not run on a txchaos clock.*coordinator"):
        fam.plan(reach, ("gateway",), fam.check({}))
    with pytest.raises(BadInput, match="non-zero"):
        fam.check({"seconds": 0})
    with pytest.raises(BadInput, match="rate"):
        CATALOG["clock-skew"].check({"rate": 0})


def test_faults_default_stands_for_the_default_mix() -> None:
    from faults.catalog import DEFAULT_FAULTS, parse_families

    assert parse_families("default,clock-jump") == (*DEFAULT_FAULTS, "clock-jump")
    assert parse_families("kill, pause,kill") == ("kill", "pause")
    assert parse_families("none") == ()
