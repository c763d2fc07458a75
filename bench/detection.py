"""Seconds of chaos until each mutant is detected, per broker: median over seeds.

    .venv/bin/python bench/detection.py [--targets rabbitmq,kafka,nats] [--seeds 5]

Each cell runs the self-test plan's fault schedule for that mutant
(suites/selftest_plan.py) once per seed and takes the time from the start of
the run to the first operation in the violating checker's evidence. Bar: every
mutant detected within 60 s; aim 15 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.explain import first_violation_time  # noqa: E402
from harness.lab import Lab  # noqa: E402
from harness.run import RunConfig, run_chaos  # noqa: E402
from suites.selftest_plan import PLAN  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="rabbitmq,kafka,nats")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--mutants", default=",".join(sorted(PLAN)))
    args = ap.parse_args()
    targets = args.targets.split(",")
    mutants = args.mutants.split(",")
    root = Path(tempfile.mkdtemp(prefix="txchaos-detection-"))
    lab = Lab.from_option("local", root=root / "lab")
    table: dict[tuple[str, str], list[float | None]] = {}
    try:
        for target in targets:
            for mutant in mutants:
                plan = PLAN[mutant]
                for seed in range(1, args.seeds + 1):
                    result = run_chaos(RunConfig(target=target, mutant=mutant, seed=seed,
                                                 schedule=plan.schedule, duration=plan.duration,
                                                 quiesce_timeout=plan.quiesce,
                                                 out=root / f"{target}-{mutant}-{seed}"), lab=lab)
                    caught = [c for c in result.verdict["checkers"]
                              if c["valid"] is False and c["name"] in plan.expected]
                    t = min((first_violation_time(result.run_dir, c) or plan.duration)
                            for c in caught) if caught else None
                    table.setdefault((mutant, target), []).append(t)
                    print(f"{target:9} {mutant:22} seed {seed}: "
                          f"{'detected at %.1fs' % t if t is not None else 'MISSED'}", flush=True)
    finally:
        lab.down()
    print(f"\n{'mutant':22}" + "".join(f"{t:>22}" for t in targets))
    worst = 0.0
    for mutant in mutants:
        cells = []
        for target in targets:
            times = table.get((mutant, target), [])
            hits = [t for t in times if t is not None]
            if not hits:
                cells.append(f"0/{len(times)}")
            else:
                med = statistics.median(hits)
                worst = max(worst, med)
                cells.append(f"{len(hits)}/{len(times)} {med:.1f}s (max {max(hits):.1f})")
        print(f"{mutant:22}" + "".join(f"{c:>22}" for c in cells))
    print("cells: detected/runs, median (max) seconds to the first offending operation")
    print(f"\nworst median: {worst:.1f}s (bar 60 s, aim 15 s); runs kept in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
