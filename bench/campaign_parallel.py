"""Campaign throughput by --parallel: runs per minute and their verdicts.

    .venv/bin/python bench/campaign_parallel.py [--target nats] [--runs 6] [--duration 10]
                                                [--parallel 1,2,3]

Runs the same `txchaos campaign --runs R --keep-going` (same campaign seed, so
the same run seeds and schedules) once per --parallel value and prints wall
time, runs per minute (baseline: --parallel 1), the slowest run and the
verdicts: more workers only help while each run still gets the CPU it needs,
and a run starved of CPU may time out into unknowns or false alarms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="nats")
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--duration", default="10")
    ap.add_argument("--parallel", default="1,2,3")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
        for n in [int(x) for x in args.parallel.split(",")]:
            out = Path(tmp) / f"p{n}"
            t0 = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "harness", "campaign", "--target", args.target,
                 "--runs", str(args.runs), "--duration", args.duration, "--seed", str(args.seed),
                 "--parallel", str(n), "--keep-going", "--quiet", "--out", str(out)],
                cwd=ROOT, capture_output=True, text=True)
            wall = time.monotonic() - t0
            data = json.loads((out / "campaign.json").read_text())
            v = data["verdict"]
            slowest = max((r["elapsed_s"] for r in data["runs"]), default=0.0)
            rows.append((n, wall, v["runs"] / wall * 60, slowest, v, done.returncode))
    base = rows[0][2] if rows else 1.0
    print(f"{args.target}, {args.runs} runs of {args.duration}s chaos each (loaded shared machine)")
    print(f"{'parallel':>8}  {'wall s':>7}  {'runs/min':>8}  {'vs p1':>6}  {'slowest run s':>13}  "
          f"valid/violated/unknown/broken  exit")
    for n, wall, rate, slowest, v, code in rows:
        print(f"{n:>8}  {wall:7.1f}  {rate:8.2f}  {rate / base:5.2f}x  {slowest:13.1f}  "
              f"{v['valid']}/{v['violated']}/{v['unknown']}/{v['broken']:<23}  {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
