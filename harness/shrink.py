"""Shrinking a failing fault schedule: the search, as pure logic over a predicate.

A candidate is a schedule's events plus the run's duration. The Shrinker asks
`fails(candidate)` — in real use "some of K re-runs on a real cluster violates
the same invariant" (`harness.shrink_runner`) — and keeps the smallest
candidate that still fails. Passes, repeated until none helps:

1. drop events: delta debugging (Zeller's ddmin), after trying no fault at all;
2. remove idle gaps: start the first fault early, close the gaps between
   faults, end the run soon after the last fault heals (shorter runs also make
   every later trial cheaper, so this runs second);
3. shorten windows: halve each fault's duration while it still fails;
4. weaken parameters: lower latency, more bandwidth, lower toxicity.

Every answer is cached by the candidate's hash, so no candidate is tried
twice; `BudgetSpent` raised by the predicate ends the search with the best
candidate so far.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from faults.schedule import FaultEvent

__all__ = ["Candidate", "BudgetSpent", "Shrinker", "ddmin", "any_of", "WEAKER",
           "MIN_WINDOW_S", "LEAD_S", "TAIL_S"]

T = TypeVar("T")
MIN_WINDOW_S = 0.5  # a window is not halved below this
LEAD_S = 0.5        # the first fault starts no earlier: the clients need a moment to start
TAIL_S = 2.0        # the run goes on this long after the last fault heals
MIN_GAP_S = 0.25    # gaps shorter than this are not worth a trial

# How to weaken a parameter by one step (None: it is as weak as it gets). Parameters
# not listed are left alone.
WEAKER: dict[str, Callable[[Any], Any]] = {
    "latency_ms": lambda v: int(v) // 2 if v >= 20 else None,
    "jitter_ms": lambda v: int(v) // 2 if v >= 2 else None,
    "rate_kbps": lambda v: int(v) * 4 if v < 4096 else None,
    "toxicity": lambda v: round(float(v) / 2, 3) if v > 0.3 else None,
    "period_s": lambda v: round(float(v) * 2, 3) if v < 8 else None,  # fewer crashes, flaps
    "down_s": lambda v: round(float(v) / 2, 3) if v >= 0.2 else None,
}


class BudgetSpent(Exception):
    """Raised by a predicate when the budget has no room for another trial."""


@dataclass(frozen=True)
class Candidate:
    """A schedule to try: its events (in start order) and the run's duration."""

    events: tuple[FaultEvent, ...]
    duration: float

    def to_json(self) -> dict[str, Any]:
        return {"duration": round(self.duration, 3), "events": [e.to_json() for e in self.events]}

    @property
    def key(self) -> str:
        """A hash of the schedule, the cache key: equal schedules, equal keys."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def fault_seconds(self) -> float:
        return round(sum(e.duration for e in self.events), 3)

    @property
    def end(self) -> float:
        return max((e.end for e in self.events), default=0.0)

    def with_events(self, events: Sequence[FaultEvent]) -> Candidate:
        return Candidate(tuple(sorted(events, key=lambda e: (e.at, e.fault, e.targets))),
                         self.duration)

    def describe(self) -> str:
        """'2 event(s), 3.2 s under fault, run 10 s' (and the events, when few)."""
        text = (f"{len(self.events)} event(s), {self.fault_seconds:g} s under fault, "
                f"run {self.duration:g} s")
        if 0 < len(self.events) <= 3:
            text += " [" + "; ".join(f"{e.fault} {','.join(e.targets) or '*'} at {e.at:g}s "
                                     f"for {e.duration:g}s" for e in self.events) + "]"
        return text


def any_of(once: Callable[[T, int], bool], k: int) -> Callable[[T], bool]:
    """A predicate that fails if `once` fails in any of `k` attempts (stops at the first):
    a real cluster is not deterministic, so one passing re-run proves little."""
    def fails(candidate: T) -> bool:
        return any(once(candidate, attempt) for attempt in range(k))
    return fails


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool]) -> list[T]:
    """A 1-minimal failing subsequence of `items` (which fail together): removing any
    single item of the result makes it pass (Zeller and Hildebrandt, 2002)."""
    current, n = list(items), 2
    while len(current) >= 2:
        size = len(current)
        chunks = [current[size * i // n:size * (i + 1) // n] for i in range(n)]
        for chunk in chunks:
            if fails(chunk):
                current, n = chunk, 2
                break
        else:
            for i in range(len(chunks) if n > 2 else 0):  # with 2 chunks: tested already
                complement = [x for j, c in enumerate(chunks) if j != i for x in c]
                if fails(complement):
                    current, n = complement, max(n - 1, 2)
                    break
            else:
                if n >= size:
                    break
                n = min(size, n * 2)
    return current


class Shrinker:
    """Searches for the smallest candidate that still fails, from a failing `original`."""

    def __init__(self, original: Candidate, fails: Callable[[Candidate], bool], *,
                 cache: dict[str, bool] | None = None,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self.original = original
        self.best = original
        self._fails = fails
        self.cache: dict[str, bool] = dict(cache or {})
        self.cache[original.key] = True  # it failed: that is why we shrink it
        self.trials = 0  # candidates actually tried (cache misses)
        self.log = log
        self.stopped = "fixpoint"
        self._tried_empty = False

    def test(self, candidate: Candidate) -> bool:
        key = candidate.key
        if key not in self.cache:
            self.cache[key] = bool(self._fails(candidate))
            self.trials += 1
        if self.cache[key]:
            self.best = candidate
        return self.cache[key]

    def run(self, rounds: int = 3) -> Candidate:
        """Apply the passes until none helps (at most `rounds` times) or the budget is spent."""
        try:
            for _ in range(rounds):
                before = self.best
                for step in (self.drop_events, self.remove_gaps, self.shorten_windows,
                             self.weaken, self.remove_gaps):
                    step()
                if self.best == before:
                    break
        except BudgetSpent:
            self.stopped = "budget"
        return self.best

    # -- passes ----------------------------------------------------------------
    def drop_events(self) -> None:
        if not self.best.events:
            return
        if not self._tried_empty:  # once: without faults it passed, shorter runs will too
            self._tried_empty = True
            if self.test(self.best.with_events([])):
                self.log("fails without any fault")
                return
        ddmin(list(self.best.events), lambda evs: self.test(self.best.with_events(evs)))

    def remove_gaps(self) -> None:
        """First fault at LEAD_S, no idle gaps between faults, run ends TAIL_S after the last."""
        events = list(self.best.events)
        if events:
            closed = _close_gaps(events, range(len(events)))
            if closed != events and not self.test(self.best.with_events(closed)):
                for i in range(len(events)):  # all at once failed: one gap at a time
                    moved = _close_gaps(list(self.best.events), [i])
                    if moved != list(self.best.events):
                        self.test(self.best.with_events(moved))
        shortest = max(self.best.end + TAIL_S, 2 * TAIL_S)
        for duration in (shortest, (shortest + self.best.duration) / 2):
            duration = round(duration, 3)
            if self.best.duration - duration < 1.0:
                continue
            if self.test(replace(self.best, duration=duration)):
                break

    def shorten_windows(self) -> None:
        for i in range(len(self.best.events)):
            while True:
                events = list(self.best.events)
                if i >= len(events):
                    break
                shorter = round(events[i].duration / 2, 3)
                if shorter < MIN_WINDOW_S:
                    break
                events[i] = replace(events[i], duration=shorter)
                if not self.test(self.best.with_events(events)):
                    break

    def weaken(self) -> None:
        for i in range(len(self.best.events)):
            for name in sorted(WEAKER):
                while True:
                    events = list(self.best.events)
                    if i >= len(events) or name not in events[i].params:
                        break
                    weaker = WEAKER[name](events[i].params[name])
                    if weaker is None:
                        break
                    events[i] = replace(events[i], params={**events[i].params, name: weaker})
                    if not self.test(self.best.with_events(events)):
                        break


def _close_gaps(events: list[FaultEvent], which: Sequence[int] | range) -> list[FaultEvent]:
    """Move event i (for i in `which`) and every later one earlier by the idle gap before it."""
    out = sorted(events, key=lambda e: (e.at, e.fault, e.targets))
    for i in which:
        if i >= len(out):
            continue
        busy_until = max((e.end for e in out[:i]), default=LEAD_S)
        gap = round(out[i].at - max(busy_until, LEAD_S), 3)
        if gap >= MIN_GAP_S:
            out = out[:i] + [replace(e, at=round(e.at - gap, 3)) for e in out[i:]]
    return out
