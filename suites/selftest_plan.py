"""Which fault exposes each seeded bug of the reference targets, and which checker
must then catch it. docs/reference-target.md explains each row."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from faults.schedule import FaultEvent, Schedule
from suites.schedules import crash_at


@dataclass(frozen=True)
class Exposure:
    mutant: str
    schedule: Schedule
    duration: float
    expected: tuple[str, ...]  # any of these checkers judging the run violated counts
    quiesce: float = 15.0  # the resolution bound: the target resolves doubt within ~8 s
    brokers: tuple[str, ...] = ()  # only on these lone brokers (empty: every one)


def _crashes(node: str, failpoint: str, *, times: int = 3, every: float = 3.0,
             start: float = 1.0) -> Schedule:
    return crash_at([(node, failpoint)] * times, start=start, every=every)


def _on_participants(failpoint: str, *, every: float = 3.0) -> Schedule:
    nodes = ("accounts-a", "accounts-b", "accounts-a", "accounts-b")
    return crash_at([(node, failpoint) for node in nodes], every=every)


def _power_cuts(nodes: tuple[str, ...], *, failpoint: str | None = None, start: float = 3.0,
                every: float = 5.0) -> Schedule:
    """Cut the power of each of `nodes` in turn (at once, or when it reaches `failpoint`),
    `every` seconds apart; each stays down until 1.5 s after the event starts."""
    params = {"failpoint": failpoint} if failpoint else {}
    return Schedule(seed=None, events=[FaultEvent(at=start + i * every, duration=1.5, fault="power-loss",
                                                  targets=(node,), params=params)
                                       for i, node in enumerate(nodes)])


def broker_backlog_loss(fault: str, *, lead: float = 2.0, down: float = 1.5, tail: float = 0.5,
                        starts: tuple[float, ...] = (2.0, 9.0)) -> Schedule:
    """Every participant fails to apply a COMMIT (the message stays in the broker and comes
    back), and `lead` seconds in `fault` strikes the broker for `down`: what the broker kept
    only in memory, or only on a leader that loses its place, is gone with it. A broker that
    keeps what it acknowledged delivers every COMMIT once the failpoints are disarmed."""
    participants = ("accounts-a", "accounts-b", "ledger", "notifications")
    events = []
    for at in starts:
        events.append(FaultEvent(at=at, duration=lead + down + tail, fault="failpoint", targets=participants,
                                 params={"name": "before-apply", "action": "error", "probability": 1.0}))
        events.append(FaultEvent(at=at + lead, duration=down, fault=fault, targets=(), params={}))
    return Schedule(seed=None, events=events)


def _delays(node: str, failpoint: str, ms: int, *, times: int = 2, every: float = 12.0,
            start: float = 1.0, armed: float = 3.0, probability: float = 0.3) -> Schedule:
    """Stall payments at `failpoint` on `node` by `ms`, each hit with `probability`, for
    `armed` seconds, `times` times, `every` seconds apart. Several payments stall per
    window: one stalled payment exposes nothing when its decision happens to be abort."""
    return Schedule(seed=None, events=[
        FaultEvent(at=start + i * every, duration=armed, fault="failpoint", targets=(node,),
                   params={"name": failpoint, "action": "delay", "ms": ms, "probability": probability})
        for i in range(times)])


PLAN: dict[str, Exposure] = {e.mutant: e for e in [
    Exposure("decision-not-logged", _crashes("coordinator", "after-send-first-commit"), 11.0,
             ("atomicity", "client-agreement")),
    Exposure("vote-before-persist", _on_participants("after-vote"), 14.0,
             ("atomicity", "client-agreement", "exactly-once", "resolution")),
    # the point follows an ABORT too (a quarter of the ledger's decisions here): five crashes,
    # so that one lands on a COMMIT (three all missed about once in fifty)
    Exposure("no-dedup", _crashes("ledger", "after-apply-before-ack", times=5), 17.0,
             ("exactly-once",)),
    Exposure("ack-before-apply", _crashes("notifications", "before-apply"), 11.0,
             ("atomicity", "client-agreement", "exactly-once")),
    Exposure("commit-when-in-doubt", _crashes("coordinator", "after-send-prepare", times=2,
                                              every=8.0), 18.0,
             ("atomicity", "client-agreement")),
    Exposure("early-reply", _crashes("coordinator", "before-log-commit"), 11.0,
             ("client-agreement",)),
    Exposure("no-recovery", _crashes("coordinator", "after-send-prepare", times=1), 8.0,
             ("resolution",)),
    Exposure("split-apply", _on_participants("mid-apply"), 14.0,
             ("conservation",)),
    # the coordinator stays down past the participants' in-doubt timeout (6 s); three
    # crashes, as the decision logged before one may be an abort, which exposes nothing
    Exposure("heuristic-abort", _crashes("coordinator", "after-log-decision", times=3, every=10.0), 32.0,
             ("atomicity", "client-agreement")),
    Exposure("abort-prepared-on-restart", _on_participants("after-vote"), 14.0,
             ("atomicity", "client-agreement")),
    Exposure("forget-before-ack", _crashes("coordinator", "after-send-first-commit"), 11.0,
             ("atomicity", "client-agreement")),
    # a coordinator slower than the in-doubt (6 s) and reply (8 s) timeouts
    Exposure("presume-abort-while-deciding", _delays("coordinator", "after-send-prepare", 9000), 26.0,
             ("atomicity", "client-agreement")),
    Exposure("timeout-as-abort", _delays("coordinator", "after-send-prepare", 9000), 26.0,
             ("client-agreement",)),
    # every payment that starts in a window stalls 3 s at the coordinator after its PREPAREs
    # (under the 6 s in-doubt timeout): its participants vote and hold it prepared; 1.5 s in,
    # the wall clock of a participant in every payment, then of a shard, steps 5 min
    # forward: what it holds prepared now looks minutes old, while the coordinator goes on
    # to commit. A pause at a random moment caught no payment when the clients were between
    # payments (a CI run missed with three of them)
    Exposure("wall-clock-heuristic", Schedule(seed=None, events=[
        FaultEvent(at=at, duration=duration, fault=fault, targets=(node,), params=params)
        for start, shard in ((2.0, "ledger"), (8.0, "accounts-a"), (14.0, "notifications"))
        for at, duration, fault, node, params in (
            (start, 2.5, "failpoint", "coordinator",
             {"name": "after-send-prepare", "action": "delay", "ms": 3000, "probability": 1.0}),
            (start + 1.5, 3.0, "clock-jump", shard, {"seconds": 300}))]), 20.0,
             ("atomicity", "client-agreement")),
    # a power cut drops what the store never fsynced: a decision already told to the client
    # and one participant, or the prepared records and effects (a kill -9 or a failpoint
    # crash of the same nodes at the same steps passes: tests/target/test_power.py)
    Exposure("decision-unsynced", _power_cuts(("coordinator", "coordinator"),
                                              failpoint="after-send-first-commit"), 14.0,
             ("atomicity", "client-agreement")),
    Exposure("store-sync-off", _power_cuts(("accounts-a", "ledger")), 14.0,
             ("atomicity", "client-agreement", "exactly-once", "conservation")),
    # the broker killed while COMMITs wait in it. On one Kafka node acks=1 is as durable as
    # acks=all (no replica to wait for): exposed on a cluster only (tests/run/test_cluster_run.py)
    Exposure("non-durable-broker", broker_backlog_loss("broker-kill"), 15.0,
             ("resolution", "atomicity", "client-agreement", "conservation"), brokers=("rabbitmq", "nats")),
    # no fault: concurrent payments from one account are enough, given time to drive balances low
    Exposure("no-funds-hold", Schedule(seed=None, events=[]), 30.0,
             ("no-negative",)),
]}


def baseline_schedule(mutants: Iterable[str] = ()) -> tuple[Schedule, float]:
    """Every distinct fault of the plan once (of the named mutants' exposures, if any):
    the run the correct target must pass.

    Two lanes, one after another within each: the coordinator's faults, and everyone
    else's; so a participant's crash or clock step may meet a coordinator crash or stall,
    as in the default mix. Returns the schedule and the run's duration."""
    seen: dict[tuple[str, tuple[str, ...], str], float] = {}
    for name in sorted(set(mutants)) or sorted(PLAN):
        for e in PLAN[name].schedule.events:
            key = (e.fault, e.targets, json.dumps(e.params, sort_keys=True))
            seen[key] = max(seen.get(key, 0.0), e.duration)
    events, free = [], {True: 1.0, False: 1.0}  # lane (the coordinator's?) -> when it is free
    for (fault, targets, params), duration in sorted(seen.items()):
        lane = "coordinator" in targets
        events.append(FaultEvent(at=free[lane], duration=duration, fault=fault, targets=targets,
                                 params=json.loads(params)))
        free[lane] += duration + 0.6
    events.sort(key=lambda e: e.at)
    return Schedule(seed=None, events=events), max(free.values()) + 1.0
