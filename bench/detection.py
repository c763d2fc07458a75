"""How reliably each seeded bug is caught, per mutant and broker, over seeds.

    .venv/bin/python bench/detection.py [--mode plan|default] [--targets rabbitmq,kafka,nats]
                                        [--seeds 10] [--mutants a,b] [--duration S]
                                        [--cluster 3] [--target-opt delivery=broker]

--mode plan (the self-test): each cell runs the self-test plan's fault schedule
for that mutant (suites/selftest_plan.py) once per seed.
--mode default (what a user's system gets): each cell runs `txchaos run` with
its default settings and no schedule given — the default fault mix, workload
and duration — once per seed, and counts any violated invariant as detected.
`--mutants none` runs the correct target: every "detection" is then a false alarm.

Prints, per cell: detected/runs, the median (max) seconds of chaos until the
first offending operation, and in default mode the median wall time a
campaign of such runs (seed 1, 2, ...) spends until its first detection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.explain import first_violation_time  # noqa: E402
from harness.lab import Lab  # noqa: E402
from harness.run import RunConfig, run_chaos  # noqa: E402
from suites.selftest_plan import PLAN  # noqa: E402


def _config(args: argparse.Namespace, target: str, mutant: str, seed: int,
            out: Path) -> tuple[RunConfig, tuple[str, ...] | None]:
    shape = {"cluster": args.cluster, "target_options": dict(o.split("=", 1) for o in args.target_opt)}
    if args.mode == "plan":
        plan = PLAN[mutant]
        return RunConfig(target=target, mutant=mutant, seed=seed, schedule=plan.schedule,
                         duration=plan.duration, quiesce_timeout=plan.quiesce, out=out,
                         **shape), plan.expected
    config = RunConfig(target=target, mutant=None if mutant == "none" else mutant, seed=seed,
                       out=out, **shape)
    duration = args.duration
    if duration:
        config.duration = duration
    return config, None  # any violated invariant counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("plan", "default"), default="plan")
    ap.add_argument("--targets", default="rabbitmq,kafka,nats")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--mutants", default=",".join(sorted(PLAN)))
    ap.add_argument("--duration", type=float, default=None, help="default mode: seconds per run")
    ap.add_argument("--cluster", type=int, default=1, choices=(1, 3), help="nodes per broker")
    ap.add_argument("--target-opt", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    targets, mutants = args.targets.split(","), args.mutants.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    root = Path(tempfile.mkdtemp(prefix="txchaos-detection-"))
    lab = Lab.from_option("local", root=root / "lab", cluster=args.cluster)
    table: dict[tuple[str, str], list[tuple[float | None, float]]] = {}
    try:
        for target in targets:
            for mutant in mutants:
                for seed in seeds:
                    config, expected = _config(args, target, mutant, seed, root / f"{target}-{mutant}-{seed}")
                    started = time.monotonic()
                    result = run_chaos(config, lab=lab)
                    wall = time.monotonic() - started
                    caught = [c for c in result.verdict["checkers"] if c["valid"] is False
                              and (expected is None or c["name"] in expected)]
                    t = min((first_violation_time(result.run_dir, c) or config.duration)
                            for c in caught) if caught else None
                    table.setdefault((mutant, target), []).append((t, wall))
                    by = ",".join(c["name"] for c in caught)
                    print(f"{target:9} {mutant:26} seed {seed}: "
                          f"{f'detected at {t:.1f}s by {by}' if t is not None else 'MISSED'} "
                          f"({wall:.0f}s)", flush=True)
    finally:
        lab.down()
    print(f"\nmode {args.mode}, seeds {seeds.start}..{seeds.stop - 1}")
    print(f"{'mutant':30}" + "".join(f"{t:>34}" for t in targets))
    for mutant in mutants:
        cells = []
        for target in targets:
            runs = table.get((mutant, target), [])
            hits = [t for t, _ in runs if t is not None]
            cell = f"{len(hits)}/{len(runs)}"
            if hits:
                cell += f" {statistics.median(hits):.1f}s (max {max(hits):.1f})"
                if args.mode == "default":
                    spent = 0.0
                    for t, wall in runs:
                        spent += wall
                        if t is not None:
                            break
                    cell += f" first@{spent:.0f}s"
            cells.append(cell)
        print(f"{mutant:30}" + "".join(f"{c:>34}" for c in cells))
    print("cells: detected/runs, median (max) seconds of chaos to the first offending operation"
          + ("; first@: wall seconds a campaign of these runs took to its first detection"
             if args.mode == "default" else ""))
    print(f"runs kept in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
