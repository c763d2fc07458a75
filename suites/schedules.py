"""Hand-written fault schedules for the suites that aim at one protocol step."""

from __future__ import annotations

from faults.schedule import FaultEvent, Schedule

COORDINATOR_FAILPOINTS = ("after-log-payment", "after-send-prepare", "before-log-decision",
                          "after-log-decision", "after-send-first-decision")
PARTICIPANT_FAILPOINTS = ("after-persist-prepared", "after-vote", "before-apply",
                          "after-apply-before-ack")
PARTICIPANTS = ("accounts-a", "accounts-b", "ledger", "notifications")


def crash_at(points: list[tuple[str, str]], *, start: float = 1.0, every: float = 3.0,
             seed: int | None = None) -> Schedule:
    """Crash `node` at failpoint `name`, one after another, `every` seconds apart.

    Each event arms the failpoint; the node dies when the next payment passes
    it and is started again when the event ends.
    """
    events = [FaultEvent(at=start + i * every, duration=round(every * 0.8, 3), fault="failpoint",
                         targets=(node,), params={"name": name, "action": "crash"})
              for i, (node, name) in enumerate(points)]
    return Schedule(seed=seed, events=events)


def all_crashpoints() -> list[tuple[str, str]]:
    """Every failpoint once: the coordinator's, then each participant kind's."""
    points = [("coordinator", fp) for fp in COORDINATOR_FAILPOINTS]
    for i, fp in enumerate(PARTICIPANT_FAILPOINTS):
        points.append((PARTICIPANTS[i % len(PARTICIPANTS)], fp))
    return points


def coordinator_crash(*, at: float = 2.0, down_for: float = 4.0) -> Schedule:
    """The classic blocking case: the coordinator dies after logging a decision
    and stays down while participants sit prepared."""
    return Schedule(seed=None, events=[
        FaultEvent(at=at, duration=down_for, fault="failpoint", targets=("coordinator",),
                   params={"name": "after-send-prepare", "action": "crash"}),
    ])
