"""Schedules that cover: every (family x target) a topology offers, on several time scales.

Random draws leave whole classes of nodes untouched in a run, so the generator
cycles instead. Each family walks its aims (faults.family.Aim: targets and pinned
parameters such as a failpoint's name) in a fixed permutation, rotated by the seed
so consecutive seeds start where the previous one stopped: a campaign over seeds
0..N covers every pair before it repeats one. Families take turns by weight
(smooth weighted round robin), so each run holds some of every family.

Windows are drawn on three scales: short (0.5-3 s), medium, and long, longer than
the target's own timeouts (an adapter declares them; else 15 s counts as long).
Crash storms are a family of their own (faults.nodes.CrashStorm). A family that holds
many nodes at once may claim a window in a topology (Family.claims): laid first, once
per run, late in it (where the coordinator's long faults are over). From intensity
0.3 three lanes place faults side by side, so faults on different nodes overlap, as
in Jepsen's combined nemesis; faults on the same node never overlap, except that a
toxic holds only its own link (Family.touches). The
same inputs give a byte-identical schedule; the last fault heals by 85 % of the
run, leaving a quiet tail.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faults.catalog import CATALOG, family
from faults.family import EVERYTHING, Aim, Family
from faults.schedule import FaultEvent, Schedule
from harness.errors import BadInput
from harness.topology import Topology

__all__ = ["generate", "time_scales", "LONG_DEFAULT"]

LONG_DEFAULT = 15.0  # a window this long counts as "long" when the target declares no timeouts
SHORT = (0.5, 3.0)
MEDIUM_HIGH = 8.0
QUIET_TAIL = 0.15  # the last share of a run has no fault
_SCALE_ODDS = {"short": 0.6, "medium": 0.27, "long": 0.13}
_ROLE_WEIGHT = {"coordinator": 3}  # in 2PC the coordinator is in every payment: aim at it 3x as often
_DRY_RUNS = 16  # dry runs that estimate how many aims of each family one run uses
_SEPARATION = 0.1  # seconds between two faults on the same node
_PATIENCE = 3.0  # seconds the next aim in a family's line may wait for its busy node
_CLAIM_FROM = 2.0  # a claimed window starts once the workload runs ...
_CLAIM_LATE = 0.6  # ... in the last 40 % of the room it leaves


def time_scales(timeouts: Mapping[str, float] | None) -> dict[str, tuple[float, float]]:
    """The (low, high) window bounds of each scale; "long" starts past the longest timeout."""
    longest = max((float(v) for v in (timeouts or {}).values()), default=0.0)
    long_low = longest * 1.25 + 1.0 if longest > 0 else LONG_DEFAULT
    return {"short": SHORT, "medium": (SHORT[1], max(SHORT[1] + 0.5, min(long_low, MEDIUM_HIGH))),
            "long": (long_low, long_low * 1.6)}


class _Cycle:
    """One family's aims in a fixed permutation, started at `offset`; taking an aim
    out of order (to avoid a busy node) leaves the others in line."""

    def __init__(self, fam: Family, aims: list[Aim], topology: Topology, offset: int) -> None:
        self.order = _spread(fam, aims, topology)
        self.queue: list[Aim] = []
        self.position = offset % len(self.order)

    def upcoming(self) -> list[Aim]:
        while len(self.queue) < len(self.order):
            self.queue.append(self.order[self.position])
            self.position = (self.position + 1) % len(self.order)
        return self.queue

    def take(self, aim: Aim) -> None:
        self.queue.remove(aim)


def _spread(fam: Family, aims: list[Aim], topology: Topology) -> list[Aim]:
    """The family's aims in one cycle, each role's aims spread evenly over it (smooth
    weighted round robin over roles, each role's aims shuffled): any few consecutive
    aims, which is what one run uses, reach every role, e.g. the coordinator."""
    rng = random.Random(f"txchaos-cover:{fam.name}")
    by_role: dict[str, list[Aim]] = {}
    for a in aims:
        by_role.setdefault(_role(fam, topology, a), []).extend([a] * _weight(fam, topology, a))
    for role in sorted(by_role):
        rng.shuffle(by_role[role])
    share = {role: len(line) for role, line in by_role.items()}
    total = sum(share.values())
    credit = dict.fromkeys(by_role, 0.0)
    order: list[Aim] = []
    while len(order) < total:
        for role in by_role:
            credit[role] += share[role] / total
        role = max((r for r in sorted(by_role) if by_role[r]), key=lambda r: credit[r])
        credit[role] -= 1
        order.append(by_role[role].pop(0))
    return order


def _roles(fam: Family, topology: Topology, aim: Aim) -> set[str]:
    """The roles of the nodes an aim acts on (a link's targets are proxies: their nodes)."""
    acted_on = fam.acts_on(topology, aim.targets)
    return {n.role for n in topology.nodes if n.name in acted_on}


def _role(fam: Family, topology: Topology, aim: Aim) -> str:
    return ",".join(sorted(_roles(fam, topology, aim)))


def _weight(fam: Family, topology: Topology, aim: Aim) -> int:
    weights = _ROLE_WEIGHT if fam.role_weight is None else fam.role_weight
    return max([weights.get(r, 1) for r in _roles(fam, topology, aim)], default=1)


class _Turns:
    """Smooth weighted round robin over families: each gets its share, interleaved."""

    def __init__(self, fams: list[Family], rng: random.Random) -> None:
        self.fams = fams
        self.credit = {f.name: rng.random() * f.weight for f in fams}  # seeded phase

    def next(self) -> Family:
        total = sum(f.weight for f in self.fams)
        for f in self.fams:
            self.credit[f.name] += f.weight
        best = max(self.fams, key=lambda f: (self.credit[f.name], f.name))
        self.credit[best.name] -= total
        return best


@dataclass
class _Placed:
    event: FaultEvent
    touched: set[str]


def _clashes(placed: list[_Placed], touched: set[str], t: float, dur: float) -> list[_Placed]:
    return [p for p in placed
            if (p.touched & touched or EVERYTHING in p.touched | touched)
            and p.event.at < t + dur + _SEPARATION and t < p.event.end + _SEPARATION]


def _scale(rng: random.Random, fam: Family, scales: dict[str, tuple[float, float]],
           room: float) -> tuple[float, float] | None:
    """Bounds of a scale drawn for `fam` that fits in `room` seconds (None: nothing fits)."""
    fitting = [s for s in fam.scales if scales[s][0] <= room]
    if not fitting:
        return None
    name = rng.choices(fitting, weights=[_SCALE_ODDS[s] for s in fitting])[0]
    low, high = scales[name]
    return low, min(high, room)


def _pick(rng: random.Random, fam: Family, cycle: _Cycle, topology: Topology, placed: list[_Placed],
          t: float, bounds: tuple[float, float], room: float) -> _Placed | None:
    """The first aim in the family's line that fits at `t` without touching a busy node.
    The head of the line may wait up to _PATIENCE seconds for its node instead: an aim
    skipped here is easily skipped by every run, since each seed starts further on."""
    for i, aim in enumerate(cycle.upcoming()):
        params = fam.params(rng, aim)
        dur = fam.window(rng, *bounds, params)
        touched = fam.touches(topology, aim.targets)
        at = t
        busy = _clashes(placed, touched, at, dur)
        if busy and i == 0:
            at = max(p.event.end for p in busy) + _SEPARATION
            busy = _clashes(placed, touched, at, dur) if at - t <= _PATIENCE else busy
        if dur <= room - (at - t) and not busy:
            cycle.take(aim)
            return _Placed(FaultEvent(round(at, 3), round(dur, 3), fam.name, aim.targets, params), touched)
    return None


def _claim(rng: random.Random, fam: Family, cycle: _Cycle, topology: Topology, placed: list[_Placed],
           scales: dict[str, tuple[float, float]], end: float) -> _Placed | None:
    """A claiming family's window, laid before the others take turns. Late in the run:
    the long faults on the coordinator start early and would not fit around it."""
    bounds = _scale(rng, fam, scales, end - _CLAIM_FROM)
    if bounds is None:
        return None
    aim = cycle.upcoming()[0]
    params = fam.params(rng, aim)
    dur = fam.window(rng, *bounds, params)
    room = end - _CLAIM_FROM - dur
    touched = fam.touches(topology, aim.targets)
    at = _CLAIM_FROM + room * rng.uniform(_CLAIM_LATE, 1.0)
    if room < 0 or _clashes(placed, touched, at, dur):
        return None
    cycle.take(aim)
    return _Placed(FaultEvent(round(at, 3), round(dur, 3), fam.name, aim.targets, params), touched)


def _lay(rng: random.Random, fams: list[Family], aims: dict[str, list[Aim]], topology: Topology,
         duration: float, intensity: float, scales: dict[str, tuple[float, float]],
         offsets: Mapping[str, int]) -> tuple[list[FaultEvent], dict[str, int]]:
    end = duration * (1 - QUIET_TAIL)
    cycles = {f.name: _Cycle(f, aims[f.name], topology, offsets.get(f.name, 0)) for f in fams}
    turns = _Turns(fams, rng)
    lanes = 1 if intensity < 0.3 else 3 if intensity < 0.8 else 4
    clocks = [rng.uniform(0.2, 1.5) + lane * rng.uniform(0.5, 2.0) for lane in range(lanes)]
    open_lanes = set(range(lanes))
    placed: list[_Placed] = []
    uses = dict.fromkeys(cycles, 0)
    for fam in (f for f in fams if f.claims(topology)):
        got = _claim(rng, fam, cycles[fam.name], topology, placed, scales, end)
        if got:
            placed.append(_Placed(got.event, got.touched | {EVERYTHING}) if lanes == 1 else got)
            uses[fam.name] += 1
    spent: dict[int, set[str]] = {lane: set() for lane in open_lanes}  # families that no longer fit
    while open_lanes:
        lane = min(open_lanes, key=lambda k: (clocks[k], k))
        if len(spent[lane]) == len(fams):
            open_lanes.discard(lane)
            continue
        fam, t = turns.next(), clocks[lane]
        if fam.name in spent[lane]:
            continue
        while True:
            bounds = _scale(rng, fam, scales, end - t)
            got = bounds and _pick(rng, fam, cycles[fam.name], topology, placed, t, bounds, end - t)
            if got:
                placed.append(got)
                uses[fam.name] += 1
                gap = rng.uniform(0.2, 0.8) * min(got.event.duration, 2.0) * (1 - intensity) / intensity
                clocks[lane] = got.event.end + max(gap, _SEPARATION)
                break
            later = [p.event.end + _SEPARATION for p in placed if p.event.end + _SEPARATION > t]
            if bounds is None or not later:  # nothing of this family fits in what is left
                spent[lane].add(fam.name)
                break
            t = min(later)  # every aim is busy at t: try again when the first clash ends
    return [p.event for p in placed], uses


def generate(seed: int, *, families: Sequence[str], duration: float, topology: Topology,
             intensity: float = 0.5, failpoints: Sequence[str] = (),
             timeouts: Mapping[str, float] | None = None) -> Schedule:
    """A seeded schedule of `families` over `duration` seconds that cycles through every
    aim each family has in `topology` (see the module docstring).

    `intensity` (0 < i <= 1) sets the gaps between faults and, above 0.4, how many run
    side by side. `failpoints` are the names the target offers (the failpoint family
    needs them); `timeouts` the target's own, in seconds, which set what "long" means.
    """
    for name in families:
        family(name)
    if not families:
        raise BadInput(f"choose at least one fault family; valid: {', '.join(CATALOG)}")
    if not 0 < intensity <= 1:
        raise BadInput(f"intensity must be in (0, 1], got {intensity}")
    if duration <= 0:
        raise BadInput(f"chaos duration must be positive, got {duration}")
    offered = sorted(failpoints)
    aims = {n: a for n in dict.fromkeys(families) if (a := family(n).candidates(topology, offered))}
    if not aims:
        hint = " (failpoint also needs the target's failpoint names)" if "failpoint" in families else ""
        raise BadInput(f"none of the fault families {', '.join(families)} applies to this topology "
                       f"(nodes: {', '.join(n.name for n in topology.nodes)}){hint}")
    fams = [family(n) for n in aims]
    scales = time_scales(timeouts)

    def lay(rng_seed: int, offsets: Mapping[str, int]) -> tuple[list[FaultEvent], dict[str, int]]:
        return _lay(random.Random(rng_seed), fams, aims, topology, duration, intensity, scales, offsets)

    # A campaign should walk each family's aims like one long run: seed s starts where
    # seeds 0..s-1 stopped, on average. Dry runs on fixed seeds say how many aims of each
    # family one run uses; the offset is seed x that rate (independent of this seed).
    rate = dict.fromkeys(aims, 0.0)
    for dry in range(_DRY_RUNS):
        for name, count in lay(-1 - dry, {})[1].items():
            rate[name] += count / _DRY_RUNS
    events, _ = lay(seed, {name: math.floor(seed * r) for name, r in rate.items()})
    return Schedule(seed, sorted(events, key=lambda e: (e.at, e.fault, e.targets)))
