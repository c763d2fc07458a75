"""The shrinking search on pure predicates: ddmin finds exactly the events that matter,
K re-runs see through a flaky failure, windows, gaps and parameters shrink, the cache
never tries a candidate twice, and a spent budget returns the best so far."""

from __future__ import annotations

import itertools
import random

import pytest

from faults.schedule import FaultEvent
from harness.shrink import (LEAD_S, MIN_WINDOW_S, TAIL_S, BudgetSpent, Candidate, Shrinker,
                            any_of, ddmin)

SEED = 1202  # for the seeded flaky predicate


def ev(name: str, at: float, duration: float = 2.0, **params: object) -> FaultEvent:
    return FaultEvent(at=at, duration=duration, fault="kill", targets=(name,), params=dict(params))


def schedule(*names: str) -> Candidate:
    return Candidate(tuple(ev(n, 1.0 + 3 * i) for i, n in enumerate(names)), 30.0)


def names(c: Candidate) -> set[str]:
    return {e.targets[0] for e in c.events}


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
def test_ddmin_finds_exactly_the_two_events_that_matter(n: int) -> None:
    items = [chr(ord("A") + i) for i in range(n)]
    need = {"A", items[-1]} if n > 2 else {"A", "B"}
    calls: list[frozenset[str]] = []

    def fails(subset: list[str]) -> bool:
        calls.append(frozenset(subset))
        return need <= set(subset)

    assert set(ddmin(items, fails)) == need
    assert len(set(calls)) <= n * n  # ddmin's worst case is quadratic


def test_ddmin_is_1_minimal_for_a_single_culprit() -> None:
    assert ddmin(list("ABCDEFG"), lambda s: "E" in s) == ["E"]


def test_shrinker_reduces_A_and_C_out_of_five_events() -> None:
    original = schedule("A", "B", "C", "D", "E")
    shrinker = Shrinker(original, lambda c: {"A", "C"} <= names(c))
    best = shrinker.run()
    assert names(best) == {"A", "C"}
    # gaps removed: the first fault starts at LEAD_S and the next right after it
    first, second = best.events
    assert first.at == LEAD_S
    assert second.at == pytest.approx(first.end, abs=1e-3)
    # windows halved down to the floor, run ends TAIL_S after the last fault heals
    assert all(MIN_WINDOW_S <= e.duration < 2 * MIN_WINDOW_S for e in best.events)
    assert best.duration <= best.end + TAIL_S + 1.0
    assert shrinker.stopped == "fixpoint"


def test_a_bug_that_needs_no_fault_shrinks_to_no_event() -> None:
    best = Shrinker(schedule("A", "B", "C"), lambda c: True).run()
    assert best.events == ()


def test_the_cache_never_tries_a_candidate_twice() -> None:
    seen: list[str] = []

    def fails(c: Candidate) -> bool:
        seen.append(c.key)
        return {"B", "D"} <= names(c)

    shrinker = Shrinker(schedule("A", "B", "C", "D"), fails)
    shrinker.run(rounds=5)
    assert len(seen) == len(set(seen)) == shrinker.trials
    assert schedule("A", "B", "C", "D").key not in seen  # the original is known to fail
    again = Shrinker(schedule("A", "B", "C", "D"), fails, cache=shrinker.cache)
    seen.clear()
    assert again.run(rounds=5) == shrinker.best and seen == [] and again.trials == 0


def test_flaky_failure_is_found_with_k_reruns() -> None:
    """Fails in one of three attempts when A and C are both present (seeded): with K=1 the
    search loses the bug on some candidates; with K=6 it reaches exactly {A, C}."""
    def make(k: int) -> tuple[Shrinker, list[int]]:
        rng = random.Random(SEED)
        attempts = [0]

        def once(c: Candidate, attempt: int) -> bool:
            attempts[0] += 1
            return {"A", "C"} <= names(c) and rng.random() < 1 / 3
        return Shrinker(schedule("A", "B", "C", "D", "E", "F"), any_of(once, k)), attempts

    strict, _ = make(6)
    assert names(strict.run()) == {"A", "C"}
    sloppy, _ = make(1)
    best = sloppy.run()
    assert {"A", "C"} <= names(best)  # never loses the culprits: only failing candidates are kept
    assert len(best.events) >= 2


def test_any_of_stops_at_the_first_failing_attempt() -> None:
    tried: list[int] = []

    def once(c: str, attempt: int) -> bool:
        tried.append(attempt)
        return attempt == 1
    assert any_of(once, 3)("x") is True and tried == [0, 1]
    tried.clear()
    assert any_of(lambda c, a: tried.append(a) or False, 3)("x") is False and tried == [0, 1, 2]


def test_parameters_weaken_while_it_still_fails() -> None:
    latency = FaultEvent(at=1.0, duration=1.0, fault="latency", targets=("p",),
                         params={"latency_ms": 1000, "jitter_ms": 250, "direction": "both"})
    original = Candidate((latency,), 10.0)
    best = Shrinker(original, lambda c: bool(c.events) and c.events[0].params["latency_ms"] >= 200).run()
    assert best.events[0].params["latency_ms"] == 250
    assert best.events[0].params["jitter_ms"] == 1  # halved until 1 (<2 is as weak as it gets)
    assert best.events[0].params["direction"] == "both"  # not a strength: left alone


def test_a_spent_budget_returns_the_best_so_far() -> None:
    counter = itertools.count()

    def fails(c: Candidate) -> bool:
        if next(counter) >= 4:
            raise BudgetSpent
        return {"A"} <= names(c)

    original = schedule("A", "B", "C", "D", "E", "F", "G", "H")
    shrinker = Shrinker(original, fails)
    best = shrinker.run()
    assert shrinker.stopped == "budget"
    assert "A" in names(best) and len(best.events) < len(original.events)
