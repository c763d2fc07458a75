"""`txchaos shrink RUN_DIR`: a smaller fault schedule that still violates the same invariant."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from harness.campaign import format_seconds, parse_duration
from harness.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "shrink", help="shrink a violated run's fault schedule to a small one that still fails",
        description="Search for a smaller fault schedule that still violates the run's invariant(s): "
                    "drop events (delta debugging), remove idle gaps, shorten windows, weaken "
                    "parameters. A candidate still fails if any of --reruns re-runs violates one "
                    "of the same invariants. Writes the minimal schedule as a replay bundle "
                    "(OUT/minimal) and OUT/shrink.json. Exit 0 done, 3 bad input or broken "
                    "infrastructure, 130 interrupted (the best schedule so far is written).")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a violated run directory")
    p.add_argument("--reruns", type=int, default=3,
                   help="re-runs per candidate; it still fails if any of them does (default 3)")
    p.add_argument("--budget", default="10m", help="wall time for the search: 90s, 10m, 1h (default 10m)")
    p.add_argument("--invariant", action="append", default=None, metavar="NAME",
                   help="keep only this violated invariant (repeatable; default: any the run violated)")
    p.add_argument("--out", type=Path, default=None, help="shrink directory (default RUN_DIR.shrink); "
                   "run again with the same --out to reuse its cached trials")
    p.add_argument("--lab", default="local", help="local, external or a lab file")
    p.add_argument("--alluredir", type=Path, default=None, metavar="DIR",
                   help="write Allure results of the original and the minimal run into DIR, the "
                        "minimal one with the shrink summary attached")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from harness.shrink_runner import load_original, shrink_run

    if args.reruns < 1:
        raise BadInput(f"--reruns must be at least 1, got {args.reruns}")
    budget = parse_duration(args.budget)
    original = load_original(args.run_dir, args.invariant)
    out = (args.out or original.run_dir.with_name(original.run_dir.name + ".shrink")).resolve()
    c = original.candidate
    print(f"shrinking {original.run_dir}: {c.describe()}; keeps violating "
          f"{' or '.join(original.invariants)} in any of {args.reruns} re-run(s); "
          f"budget {format_seconds(budget)}", flush=True)
    outcome = shrink_run(original, out, reruns=args.reruns, budget_s=budget, lab=args.lab,
                         quiet=args.quiet)
    print_outcome(outcome.summary)
    print(f"shrink directory: {out}")
    if args.alluredir is not None:
        write_allure(original.run_dir, outcome.minimal_run, outcome.summary, args.alluredir)
    if outcome.error:
        print(f"txchaos: error: {outcome.error}; the best schedule so far is written",
              file=sys.stderr)
        return 3
    if outcome.stopped == "interrupted":
        print("txchaos: interrupted; faults healed and processes stopped; the best schedule so far "
              "is written", file=sys.stderr)
        return 130
    return 0


def print_outcome(s: dict[str, Any]) -> None:
    o, m = s["original"], s["minimal"]
    why = {"fixpoint": "no smaller schedule fails", "budget": "budget spent",
           "interrupted": "interrupted", "broken": "a re-run broke"}[s["stopped"]]
    print(f"\n{s['trials']} candidates tried, {s['runs_taken']} runs in "
          f"{format_seconds(s['elapsed_s'])} (stopped: {why})\n")
    print(f"{'':9}{'events':>7}  {'seconds under fault':>19}  {'run seconds':>11}")
    for name, side in (("original", o), ("minimal", m)):
        print(f"{name:<9}{side['events']:>7}  {side['fault_seconds']:>19g}  {side['duration']:>11g}")
    print("\nminimal schedule:" if m["events"] else "\nminimal schedule: no fault at all")
    for e in m["schedule"]["events"]:
        params = " ".join(f"{k}={v}" for k, v in sorted(e["params"].items()))
        print(f"  at {e['at']:>7.3f}s for {e['duration']:>6.3f}s  {e['fault']} "
              f"{','.join(e['targets'])} {params}".rstrip())
    if s["smaller"]:
        print(f"\nstill violates: {', '.join(m.get('violated') or s['invariants'])}")
    elif s["stopped"] == "fixpoint":
        print(f"\nno smaller schedule violated {', '.join(s['invariants'])}")
    else:
        print(f"\n{why} before a smaller schedule violated {', '.join(s['invariants'])}")
    print(f"replay bundle: {m['run_dir']}")
    print(f"reproduce:     {s['reproduce']}")


def write_allure(original: Path, minimal: Path, summary: dict[str, Any], alluredir: Path) -> None:
    """Both runs' results; the minimal run's carry shrink.json as an attachment."""
    from harness.campaign_allure import write_run_results

    alluredir = alluredir.resolve()
    write_run_results(original, alluredir, key="shrink original", label="shrink: original",
                      info={"option.shrink": "original"})
    written = write_run_results(minimal, alluredir, key="shrink minimal", label="shrink: minimal",
                                info={"option.shrink": "minimal"},
                                attachment=("shrink summary (original vs minimal)", summary))
    print(f"allure results: {len(written)} tests of the minimal run in {alluredir}; build the "
          f"report: txchaos report {shlex.quote(str(alluredir))} --out allure-report")
