"""`txchaos campaign`: many seeded chaos runs within a budget (docs/campaigns.md)."""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from faults.catalog import parse_families
from harness.campaign import (CampaignSpec, RunRecord, campaign_exit_code, format_coverage,
                              format_runs, format_seconds, parse_duration, parse_shard,
                              write_campaign_json)
from harness.errors import BadInput

# One worker per core, at most two: on 2 cores two workers ran 1.6x the runs of one and a
# third added almost nothing (bench/campaign_parallel.py; docs/campaigns.md "Parallel runs").
DEFAULT_PARALLEL = max(1, min(2, os.cpu_count() or 1))


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "campaign", help="many seeded chaos runs within a time budget; coverage and verdicts",
        description="Run seeded chaos runs (seeds derived from the campaign seed) until the budget "
                    "or the run count is spent, or the first violation (unless --keep-going). "
                    "Exit 0 all valid, 1 any violated, 2 unknown, 3 bad input or broken "
                    "infrastructure, 130 interrupted.")
    p.add_argument("--target", required=True, help="rabbitmq, kafka, nats, an entry point name or module:Class")
    p.add_argument("--mutant", default=None, help="switch on a seeded bug of the target")
    p.add_argument("--target-opt", action="append", default=None, metavar="KEY=VALUE",
                   help="an option of the target's adapter for every run (repeatable); see docs/adapters.md")
    p.add_argument("--faults", default=None,
                   help="comma-separated fault families (default: the run's default mix)")
    p.add_argument("--duration", default=None, help="seconds of chaos per run (e.g. 30, 45s, 2m)")
    p.add_argument("--budget", default=None,
                   help="wall time for the whole campaign: 90s, 20m, 1h, 1h30m (default 20m "
                        "unless --runs is given)")
    p.add_argument("--runs", type=int, default=None, help="number of runs of the whole campaign "
                   "(all shards together)")
    p.add_argument("--seed", type=int, default=None, help="campaign seed; run seeds derive from it")
    p.add_argument("--keep-going", action="store_true", help="do not stop at the first violation")
    p.add_argument("--parallel", type=int, default=None,
                   help=f"runs at once on this machine, each with its own lab (default "
                        f"{DEFAULT_PARALLEL} here: one per core, at most 2; 1 with --lab external)")
    p.add_argument("--shard", default="1/1", help="I/N: run only shard I of N of the campaign's "
                   "seeds (a CI matrix of N machines runs one campaign)")
    p.add_argument("--workload", default=None, metavar="NAME",
                   help="workload shape of every run (default: the run's default; docs/workloads.md)")
    p.add_argument("--clients", type=int, default=None, help="concurrent clients per run")
    p.add_argument("--accounts", type=int, default=None, help="accounts in each run's workload")
    p.add_argument("--intensity", type=float, default=None, help="share of each run under faults, 0..1")
    p.add_argument("--quiesce", type=float, default=None,
                   help="seconds payments may stay in doubt after healing")
    p.add_argument("--lab", default="local", help="local (each worker starts its own), external or a lab file")
    p.add_argument("--cluster", type=int, choices=(1, 3), default=None,
                   help="nodes per broker in each worker's lab: 1, or 3 as a cluster")
    p.add_argument("--out", type=Path, default=None,
                   help="campaign directory (default campaigns/<time>-<target>-seed<N>)")
    p.add_argument("--alluredir", type=Path, default=None, metavar="DIR",
                   help="also write Allure results of every run into DIR; shards may share or "
                        "merge their DIRs; build with `txchaos report DIR --history FILE`")
    p.add_argument("--quiet", action="store_true", help="no live view")
    p.set_defaults(handler=handle)


def spec_from_args(args: argparse.Namespace) -> CampaignSpec:
    """The campaign spec; BadInput for anything unusable, before anything starts."""
    run: dict[str, Any] = {"target": args.target}
    if args.mutant:
        run["mutant"] = args.mutant
    if args.target_opt:
        from adapters.registry import parse_options

        run["target_options"] = parse_options(args.target_opt)
    if args.faults is not None:
        run["faults"] = list(parse_families(args.faults))
    if args.duration is not None:
        run["duration"] = parse_duration(args.duration, "--duration")
    if args.clients is not None:
        if args.clients < 1:
            raise BadInput(f"--clients must be at least 1, got {args.clients}")
        run["clients"] = args.clients
    if args.accounts is not None:
        if args.accounts < 2:
            raise BadInput(f"--accounts must be at least 2, got {args.accounts}")
        run["accounts"] = args.accounts
    if args.workload is not None:
        from harness.workload_shapes import shape

        shape(args.workload)  # BadInput listing the valid workloads
        run["workload"] = args.workload
    if args.intensity is not None:
        if not 0 < args.intensity <= 1:
            raise BadInput(f"--intensity must be in (0, 1], got {args.intensity:g}")
        run["intensity"] = args.intensity
    if args.quiesce is not None:
        if args.quiesce <= 0:
            raise BadInput(f"--quiesce must be positive, got {args.quiesce:g}")
        run["quiesce_timeout"] = args.quiesce
    if args.cluster is not None:
        run["cluster"] = args.cluster
    if args.parallel is None:
        args.parallel = DEFAULT_PARALLEL if args.lab == "local" else 1
    if args.lab != "local":
        if args.parallel > 1:
            raise BadInput("--parallel needs --lab local: runs in parallel each need their own "
                           "brokers, or one run's broker faults hit the others")
        args.lab = args.lab if args.lab == "external" else str(Path(args.lab).resolve())
        run["lab"] = args.lab
    budget = parse_duration(args.budget) if args.budget is not None else (
        None if args.runs is not None else 20 * 60.0)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    spec = CampaignSpec(seed=seed, run=run, budget_s=budget, runs=args.runs,
                        shard=parse_shard(args.shard), parallel=args.parallel,
                        keep_going=args.keep_going)
    validate_run(run)
    return spec


def validate_run(run: dict[str, Any]) -> None:
    """Target, mutant and faults exist (the same checks a run makes, once, up front)."""
    from adapters.registry import check_options, load_adapter
    from faults.catalog import family

    adapter_cls = load_adapter(run["target"])
    check_options(adapter_cls, run.get("target_options") or {}, run["target"])
    for fault in run.get("faults") or ():
        family(fault)
    mutant = run.get("mutant")
    if mutant:
        mutants = adapter_cls().mutants()
        if mutant not in mutants:
            raise BadInput(f"target {run['target']!r} has no mutant {mutant!r}; "
                           f"its mutants: {', '.join(mutants) or 'none'}")


def campaign_dir(args: argparse.Namespace, spec: CampaignSpec) -> Path:
    if args.out is not None:
        path = args.out
    else:
        mutant = f"-{spec.run['mutant']}" if spec.run.get("mutant") else ""
        shard = f"-shard{spec.shard.index}of{spec.shard.count}" if spec.shard.count > 1 else ""
        path = Path("campaigns") / (f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.run['target']}"
                                    f"{mutant}-seed{spec.seed}{shard}")
    path = path.resolve()
    if (path / "campaign.json").exists():
        raise BadInput(f"{path} already holds a campaign; choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def handle(args: argparse.Namespace) -> int:
    from harness.campaign_runner import CampaignView, run_campaign

    spec = spec_from_args(args)
    out = campaign_dir(args, spec)
    alluredir = args.alluredir.resolve() if args.alluredir is not None else None
    what = f"{spec.runs} runs" if spec.runs is not None else "runs"
    if spec.budget_s is not None:
        what += f" within {format_seconds(spec.budget_s)}"
    print(f"campaign seed {spec.seed} ({what}, shard {spec.shard}, parallel {spec.parallel}) "
          f"on {spec.run['target']}{' mutant ' + spec.run['mutant'] if spec.run.get('mutant') else ''}")
    print(f"campaign directory: {out}", flush=True)
    started_at, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.monotonic()

    done: list[RunRecord] = []

    def on_record(record: RunRecord) -> None:
        done.append(record)  # campaign.json kept current, for a look while it runs
        write_campaign_json(out / "campaign.json", spec, done, started_at=started_at,
                            elapsed_s=time.monotonic() - t0, stopped="running")
        if alluredir is not None:
            from harness.campaign_allure import write_run_results

            write_run_results(Path(record.run_dir), alluredir, key=f"seed {record.seed}",
                              label=f"campaign {spec.seed} run {record.index} (seed {record.seed})",
                              info={"option.target": spec.run["target"],
                                    "option.campaign_seed": spec.seed,
                                    "option.shard": str(spec.shard)})

    view = CampaignView(spec, enabled=not args.quiet)
    interrupted = False
    try:
        outcome = run_campaign(spec, out, lab=args.lab, view=view, on_record=on_record)
    except KeyboardInterrupt:  # only if Ctrl-C came before the workers started
        interrupted = True
        from harness.campaign_runner import CampaignOutcome

        outcome = CampaignOutcome(records=view.records, stopped="interrupted",
                                  elapsed_s=time.monotonic() - view.t0)
    interrupted = interrupted or outcome.stopped == "interrupted"
    write_campaign_json(out / "campaign.json", spec, outcome.records, started_at=started_at,
                        elapsed_s=outcome.elapsed_s, stopped=outcome.stopped)
    print_summary(spec, outcome.records, out, stopped=outcome.stopped, elapsed_s=outcome.elapsed_s,
                  alluredir=alluredir)
    if outcome.error:
        print(f"txchaos: error: {outcome.error}", file=sys.stderr)
    if interrupted:
        print("txchaos: interrupted; faults healed and processes stopped", file=sys.stderr)
        return 130
    if outcome.stopped == "bad-input":
        return 3
    return campaign_exit_code(outcome.records)


def print_summary(spec: CampaignSpec, records: list[RunRecord], out: Path, *, stopped: str,
                  elapsed_s: float, alluredir: Path | None) -> None:
    from harness.campaign import coverage_table

    why = {"runs": "all runs done", "budget": "budget spent", "violation": "first violation",
           "interrupted": "interrupted", "broken": "runs broke", "bad-input": "bad input"}
    print(f"\ncampaign seed {spec.seed}, shard {spec.shard}: {len(records)} runs in "
          f"{format_seconds(elapsed_s)} (stopped: {why.get(stopped, stopped)})\n")
    print(format_coverage(coverage_table(records)))
    print()
    print(format_runs(records))
    code = campaign_exit_code(records)
    label = {0: "VALID", 1: "VIOLATED", 2: "UNKNOWN", 3: "BROKEN"}[code] if records else "NO RUNS"
    counts = (f"{sum(r.valid is True for r in records)} valid, "
              f"{sum(r.valid is False for r in records)} violated, "
              f"{sum(r.valid == 'unknown' for r in records)} unknown, "
              f"{sum(r.valid is None for r in records)} broken")
    print(f"\nverdict: {label} ({counts})")
    print(f"campaign: {out / 'campaign.json'}")
    print(f"repeat:   {spec.command()}")
    for r in sorted(records, key=lambda r: r.index):
        if r.valid is False:
            print(f"violated: run {r.index} seed {r.seed} ({', '.join(r.violated)})")
            if r.command:
                print(f"  reproduce: {r.command}")
            print(f"  shrink:    txchaos shrink {shlex.quote(r.run_dir)}")
    if alluredir is not None:
        print(f"allure results in {alluredir}; build the report: txchaos report "
              f"{shlex.quote(str(alluredir))} --out allure-report --history allure-history.jsonl")
