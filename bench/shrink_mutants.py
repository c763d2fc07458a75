"""Find a violation of each mutant with a campaign, then shrink it: sizes and cost.

    .venv/bin/python bench/shrink_mutants.py [--target nats] [--mutants no-dedup,early-reply]
        [--campaign-budget 3m] [--shrink-budget 5m] [--reruns 2] [--duration 20] [--seed 1]

For each mutant: `txchaos campaign --mutant M` (default faults) until its first
violation, then `txchaos shrink` of that run. Prints, per mutant, the runs the
campaign took, the original and minimal schedule (events / seconds under fault /
run seconds), the re-runs the shrink took and its wall time; the baseline is the
original schedule. Numbers depend on the machine's load: say so when quoting them.
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


def txchaos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT,
                          capture_output=True, text=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="nats")
    ap.add_argument("--mutants", default="no-dedup,early-reply,vote-before-persist")
    ap.add_argument("--campaign-budget", default="3m")
    ap.add_argument("--shrink-budget", default="5m")
    ap.add_argument("--reruns", default="2")
    ap.add_argument("--duration", default="20")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--keep", type=Path, default=None, help="keep campaigns and shrinks here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="txchaos-shrink-") as tmp:
        base = args.keep.resolve() if args.keep else Path(tmp)
        for mutant in args.mutants.split(","):
            out = base / f"campaign-{mutant}"
            txchaos("campaign", "--target", args.target, "--mutant", mutant, "--budget",
                    args.campaign_budget, "--duration", args.duration, "--seed", args.seed,
                    "--quiet", "--out", str(out))
            data = json.loads((out / "campaign.json").read_text())
            violated = [r for r in data["runs"] if r["valid"] is False]
            if not violated:
                rows.append((mutant, data["verdict"]["runs"], None, None, None, 0.0))
                print(f"{mutant}: no violation in {data['verdict']['runs']} runs", file=sys.stderr)
                continue
            t0 = time.monotonic()
            shrunk = base / f"shrink-{mutant}"
            txchaos("shrink", violated[0]["run_dir"], "--budget", args.shrink_budget,
                    "--reruns", args.reruns, "--quiet", "--out", str(shrunk))
            s = json.loads((shrunk / "shrink.json").read_text())
            rows.append((mutant, violated[0]["index"] + 1, s["original"], s["minimal"], s,
                         time.monotonic() - t0))
            print(f"{mutant}: {s['original']['events']} -> {s['minimal']['events']} events; "
                  f"minimal {json.dumps(s['minimal']['schedule']['events'])}", file=sys.stderr)
    print(f"{args.target}, campaign budget {args.campaign_budget} (runs of {args.duration} s), "
          f"shrink budget {args.shrink_budget}, --reruns {args.reruns} (loaded shared machine)")
    print(f"{'mutant':<22} {'runs to find':>12}  {'original ev/s/run':>18}  {'minimal ev/s/run':>17}  "
          f"{'invariants':<28} {'re-runs':>7}  {'shrink s':>8}  stopped")
    for mutant, found, o, m, s, wall in rows:
        if o is None:
            print(f"{mutant:<22} {'none in ' + str(found):>12}")
            continue
        side = lambda d: f"{d['events']}/{d['fault_seconds']:g}/{d['duration']:g}"  # noqa: E731
        print(f"{mutant:<22} {found:>12}  {side(o):>18}  {side(m):>17}  "
              f"{','.join(m.get('violated') or s['invariants']):<28} {s['runs_taken']:>7}  "
              f"{wall:8.0f}  {s['stopped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
