"""False alarms: the correct targets under mixed faults with random seeds.

    .venv/bin/python bench/false_alarms.py [--targets rabbitmq,kafka,nats] [--runs 20] [--duration 20]

Prints one line per run and a table: runs, violations, unknowns, and the
seeds. The count of violations must be zero.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.lab import Lab  # noqa: E402
from harness.run import RunConfig, run_chaos  # noqa: E402
from suites.test_nightly import MIXED  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="rabbitmq,kafka,nats")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--duration", type=float, default=20.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="txchaos-false-alarms-"))
    lab = Lab.from_option("local", root=root / "lab")
    rng = random.SystemRandom()
    summary: dict[str, dict[str, list[int]]] = {}
    try:
        for target in args.targets.split(","):
            row = summary.setdefault(target, {"seeds": [], "violated": [], "unknown": []})
            for i in range(args.runs):
                seed = rng.randrange(1, 2**31)
                result = run_chaos(RunConfig(target=target, seed=seed, faults=MIXED,
                                             duration=args.duration, out=root / f"{target}-{seed}"),
                                   lab=lab)
                row["seeds"].append(seed)
                if result.valid is False:
                    row["violated"].append(seed)
                elif result.valid == "unknown":
                    row["unknown"].append(seed)
                bad = [c["name"] for c in result.verdict["checkers"] if c["valid"] is not True]
                print(f"{target:9} run {i + 1:2}/{args.runs} seed {seed:>10}: {result.counts} "
                      f"{'VALID' if not bad else 'NOT VALID: ' + ','.join(bad)}", flush=True)
    finally:
        lab.down()
    print(f"\n{'target':10}{'runs':>6}{'violated':>10}{'unknown':>9}  seeds")
    for target, row in summary.items():
        print(f"{target:10}{len(row['seeds']):>6}{len(row['violated']):>10}{len(row['unknown']):>9}  "
              f"{' '.join(map(str, row['seeds']))}")
    return 1 if any(row["violated"] for row in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
