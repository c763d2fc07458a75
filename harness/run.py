"""The lifecycle of one chaos run, start to verdict.

start target ─► workload ∥ fault schedule ─► heal ─► quiesce ─► snapshot ─► check

Every phase writes into the run directory (docs/formats.md), which is the
hand-off to `txchaos check` and the report: history.jsonl, schedule.json,
state.json, verdict.json, run.json and logs/. Whatever happens — a failing
phase, Ctrl-C, SIGTERM — faults are healed, the target is stopped, and a lab
this run started is brought down.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from adapters.base import Adapter, TargetContext, Topology
from adapters.registry import check_options, load_adapter
from harness.errors import EXIT_UNKNOWN, EXIT_VALID, EXIT_VIOLATED, BadInput, InfraError, TxchaosError
from harness.progress import Progress, count_outcomes
from harness.quiesce import quiesce
from harness.runconfig import DEFAULT_FAULTS, RunConfig, default_run_dir, txchaos_version

__all__ = ["RunConfig", "RunResult", "RunObserver", "run_chaos", "DEFAULT_FAULTS"]

_T = TypeVar("_T")


class RunObserver(Protocol):
    """Told about phases and faults as they happen (the Allure report is one)."""

    def phase(self, name: str, **params: Any) -> contextlib.AbstractContextManager[Any]: ...
    def fault(self, value: dict[str, Any], started: bool) -> None: ...
    def checker(self, verdict: dict[str, Any]) -> None: ...


class _SilentObserver:
    def phase(self, name: str, **params: Any) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def fault(self, value: dict[str, Any], started: bool) -> None:
        pass

    def checker(self, verdict: dict[str, Any]) -> None:
        pass


@dataclass
class RunResult:
    run_dir: Path
    config: RunConfig
    seed: int
    verdict: dict[str, Any]
    command: str
    counts: dict[str, int]
    phases: list[dict[str, Any]]
    notices: tuple[str, ...] = ()  # the adapter's notices (e.g. a spec calling timeouts failures)

    @property
    def valid(self) -> bool | str:
        return self.verdict["valid"]

    @property
    def exit_code(self) -> int:
        return {True: EXIT_VALID, False: EXIT_VIOLATED}.get(self.valid, EXIT_UNKNOWN)  # type: ignore[arg-type]

    def checker(self, name: str) -> dict[str, Any]:
        for c in self.verdict["checkers"]:
            if c["name"] == name:
                return c
        raise KeyError(name)


class _Phases:
    """Times each phase (for run.json and the report) and tells the observer."""

    def __init__(self, observer: RunObserver, t0: float) -> None:
        self.observer, self.t0, self.done = observer, t0, []  # type: list[dict[str, Any]]

    @contextlib.contextmanager
    def __call__(self, name: str, **params: Any) -> Iterator[None]:
        start = time.monotonic() - self.t0
        try:
            with self.observer.phase(name, **params):
                yield
        finally:
            self.done.append({"name": name, "start": round(start, 3),
                              "end": round(time.monotonic() - self.t0, 3)})


class _ObservedRecorder:
    """The history recorder, with fault events also told to the observer."""

    def __init__(self, recorder: Any, observer: RunObserver) -> None:
        self._recorder, self._observer = recorder, observer

    def nemesis(self, f: str, value: dict[str, Any]) -> Any:
        op = self._recorder.nemesis(f, value)
        self._observer.fault(value, started=(f == "start"))
        return op

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)


def _run_dir(config: RunConfig, seed: int) -> Path:
    """The run directory, absolute (services run from other working directories)."""
    path = Path(config.out).resolve() if config.out is not None else default_run_dir(config, seed)
    if (path / "history.jsonl").exists():
        raise BadInput(f"{path} already holds a run; choose another --out (runs are never overwritten)")
    path.mkdir(parents=True, exist_ok=True)
    (path / "logs").mkdir(exist_ok=True)
    return path


def run_chaos(config: RunConfig, *, lab: Any = None, observer: RunObserver | None = None,
              progress: bool = False) -> RunResult:
    """One chaos run. `lab` is shared when given (pytest), else started and stopped here."""
    from faults.clock import CLOCK
    from faults.power import DISK
    from faults.nemesis import Nemesis
    from faults.schedule import Schedule, generate
    from harness.checkers import CheckOptions, check_all
    from harness.history import HistoryRecorder
    from harness.lab import Lab
    from harness.workload import WorkloadSpec, initial_balances
    from harness.workload_shapes import shape

    from faults.catalog import family
    from harness.lab.core import check_cluster

    adapter_cls = load_adapter(config.target)
    for fault in config.faults:
        family(fault)  # BadInput listing the valid faults, before anything starts
    check_options(adapter_cls, config.target_options, config.target)
    shape(config.workload)  # BadInput listing the valid workloads, before anything starts
    check_cluster(config.cluster, adapter_cls.services)  # before anything starts
    if config.cluster > 1 and "clusters" not in adapter_cls.capabilities:
        raise BadInput(f"target {config.target!r} connects its clients to one broker node (ctx.link): "
                       "run it with --cluster 1, or give its clients ctx.links, a proxy per node, and "
                       "declare the capability clusters (docs/clusters.md)")
    adapter: Adapter = adapter_cls()
    if config.mutant and config.mutant not in adapter.mutants():
        raise BadInput(f"target {config.target!r} has no mutant {config.mutant!r}; "
                       f"its mutants: {', '.join(adapter.mutants()) or 'none'}")
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(1, 2**31)
    run_dir = _run_dir(config, seed)
    observer = observer or _SilentObserver()
    t0 = time.monotonic()
    phases = _Phases(observer, t0)
    spec = WorkloadSpec(accounts=config.accounts, clients=config.clients, shape=config.workload,
                        read_share=0.05 if "read" in adapter_cls.capabilities else 0.0)
    own_lab = lab is None
    if own_lab:
        lab = Lab.from_option(config.lab, root=run_dir / "lab", cluster=config.cluster)
    recorder = HistoryRecorder(run_dir / "history.jsonl")
    counts: dict[str, int] = {}
    nemesis = None
    ctx: TargetContext | None = None
    failed = False
    options = CheckOptions(snapshot_reads="snapshot-reads" in adapter_cls.capabilities,
                           no_negative="no-negative" in adapter_cls.capabilities,
                           resolution_bound_s=config.quiesce_timeout)
    run_meta: dict[str, Any] = {
        "target": config.target, "mutant": config.mutant, "faults": list(config.faults),
        "seed": seed, "duration": config.duration, "clients": config.clients,
        "command": config.reproduce_command(run_dir),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {**config.to_json(), "seed": seed},
        "check": dataclasses.asdict(options),
        "txchaos": txchaos_version(),
        "notices": list(adapter_cls.notices),
    }
    try:
        given = (config.schedule if config.schedule is not None else
                 Schedule.load(config.schedule_file) if config.schedule_file else None)
        with phases("start target", target=config.target, mutant=config.mutant or "none"):
            needs = _needs(config.faults, given)
            if own_lab:  # its brokers are the run's own: their data dirs may be cut too
                lab.disks = DISK in needs
            lab.shape(config.cluster)  # a shared lab's brokers restart if they ran another shape
            lab.ensure(*adapter_cls.services)
            ctx = TargetContext(lab=lab, run_dir=run_dir, accounts=initial_balances(spec),
                                mutant=config.mutant, failpoints=dict(config.failpoints), seed=seed,
                                options=dict(config.target_options),
                                clocks=CLOCK in needs, disks=DISK in needs)
            try:
                topology: Topology = adapter.start(ctx)
            except TxchaosError:
                raise
            except Exception as e:  # the target's own failure to start is infrastructure
                raise InfraError(f"target {config.target!r} failed to start: {e}") from e
            ctx.sync_disks()
        run_meta["versions"] = _versions(lab, adapter_cls.services)
        schedule = (given if given is not None else
                    Schedule(seed, []) if not config.faults else  # --faults none
                    generate(seed, families=config.faults, duration=config.duration,
                             topology=topology, intensity=config.intensity, timeouts=adapter_cls.timeouts,
                             failpoints=adapter.failpoints() if "failpoints" in adapter_cls.capabilities
                             else ()))
        schedule.dump(run_dir / "schedule.json")
        run_meta["faults"] = sorted({e.fault for e in schedule.events})
        observed = _ObservedRecorder(recorder, observer)
        arm = adapter.arm_failpoint if "failpoints" in adapter_cls.capabilities else None
        nemesis = Nemesis(topology, toxiproxy_url=lab.toxiproxy_url, recorder=observed,
                          arm_failpoint=arm, docker_client=ctx.docker_client)
        nemesis.validate(schedule)
        state = _run_interruptibly(lambda: _live(adapter, recorder, nemesis, schedule, spec, seed,
                                                 config, progress, phases))
        (run_dir / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        recorder.close()
        with phases("check"):
            report = check_all(recorder.ops, state, options)
            verdict = report.to_json()
            for checker in verdict["checkers"]:
                observer.checker(checker)
        (run_dir / "verdict.json").write_text(json.dumps(verdict, indent=1))
        counts = count_outcomes(recorder.ops)
    except BaseException as e:
        failed = True
        if isinstance(e, KeyboardInterrupt):
            run_meta["interrupted"] = True
        else:
            run_meta["error"] = str(e) or type(e).__name__
        _heal_quietly(nemesis)  # the run's own error is the one to report
        raise
    finally:
        if nemesis is not None and not failed:
            nemesis.heal_all()  # a no-op when healed; raises InfraError if it cannot heal
        recorder.close()
        with phases("stop target"):
            try:
                adapter.stop()
            finally:
                if ctx is not None:
                    ctx.close()
        if own_lab:
            lab.down()
        run_meta["phases"] = phases.done
        run_meta["counts"] = counts
        (run_dir / "run.json").write_text(json.dumps(run_meta, indent=1))
    return RunResult(run_dir=run_dir, config=config, seed=seed, verdict=verdict,
                     command=run_meta["command"], counts=counts, phases=phases.done,
                     notices=tuple(adapter_cls.notices))


def _needs(families: tuple[str, ...], given: Any) -> set[str]:
    """What the run's fault families need prepared before the target starts (Family.needs);
    `given`: the schedule given to the run, if any."""
    from faults.catalog import CATALOG

    names = {e.fault for e in given.events} if given is not None else set(families)
    return set().union(*(CATALOG[n].needs for n in names if n in CATALOG))


async def _live(adapter: Adapter, recorder: Any, nemesis: Any, schedule: Any, spec: Any,
                seed: int, config: RunConfig, progress: bool, phases: _Phases) -> dict[str, Any]:
    """The phases that talk to the running target, in one event loop (client
    sessions belong to the loop that made them)."""
    try:
        with phases("workload and faults", seed=seed, duration=config.duration,
                    faults=",".join(sorted({e.fault for e in schedule.events})) or "none"):
            await _chaos(adapter, recorder, nemesis, schedule, spec, seed, config, progress)
        with phases("heal"):
            await asyncio.to_thread(nemesis.heal_all)
        healed_at = recorder.now()
        with phases("quiesce", bound_s=config.quiesce_timeout):
            state, resolution = await quiesce(adapter, timeout=config.quiesce_timeout)
        resolution["healed_at"] = healed_at
        resolution["quiesced_at"] = recorder.now()
        state["resolution"] = resolution
        return state
    finally:
        with contextlib.suppress(Exception):
            await adapter.aclose()


async def _chaos(adapter: Adapter, recorder: Any, nemesis: Any, schedule: Any, spec: Any,
                 seed: int, config: RunConfig, progress: bool) -> None:
    """Clients and faults at once; the faults stop (and heal) when the clients do."""
    stop = asyncio.Event()
    display = Progress(recorder, nemesis_events=schedule.events, duration=config.duration,
                       enabled=progress)
    faults = asyncio.create_task(nemesis.run(schedule, stop=stop))
    ticker = asyncio.create_task(display.run(stop))
    try:
        from harness.workload import run_clients

        await run_clients(adapter, recorder, spec, seed, until=config.duration)
    finally:
        stop.set()
        await asyncio.gather(faults, ticker, return_exceptions=False)
        display.finish()


def _run_interruptibly(make: Callable[[], Awaitable[_T]]) -> _T:
    """asyncio.run, but a Ctrl-C always ends in KeyboardInterrupt.

    asyncio turns SIGINT into a cancellation of the main task; code that absorbs
    it (a client library's retry loop) would let an interrupted run go on to a
    verdict. Here the first Ctrl-C cancels the chaos (finally blocks heal) and is
    re-raised once the loop is done; a second one interrupts at once.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(make())  # type: ignore[arg-type]
    interrupted = False

    async def main() -> _T:
        task, loop = asyncio.current_task(), asyncio.get_running_loop()

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal interrupted
            if interrupted:
                raise KeyboardInterrupt
            interrupted = True
            loop.call_soon_threadsafe(task.cancel)  # type: ignore[union-attr]

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            return await make()
        finally:
            signal.signal(signal.SIGINT, previous)

    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    if interrupted:
        raise KeyboardInterrupt
    return result


def _heal_quietly(nemesis: Any) -> None:
    if nemesis is None:
        return
    with contextlib.suppress(Exception):
        nemesis.heal_all()


def _versions(lab: Any, services: frozenset[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for service in (*sorted(services), "toxiproxy"):
        with contextlib.suppress(Exception):
            versions[service] = lab.endpoint(service).version
    return versions
