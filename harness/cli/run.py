"""`txchaos run`: one chaos run from the command line."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from adapters.registry import parse_options
from faults.catalog import DEFAULT_FAULTS, parse_families
from faults.coverage import coverage_lines
from faults.schedule import Schedule
from harness.errors import BadInput, TxchaosError
from harness.run import RunConfig, RunResult, run_chaos
from harness.runconfig import default_run_dir
from harness.verdict_table import format_verdict_table
from harness.workload_shapes import shape, shape_names


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "run", help="one chaos run against a target: workload + faults, then the verdict",
        description="Start the target, run clients and a seeded fault schedule together, heal, "
                    "wait for in-doubt payments, snapshot and check. Exit 0 valid, 1 violated, "
                    "2 unknown, 3 bad input or broken infrastructure.")
    p.add_argument("--target", default=None,
                   help="rabbitmq, kafka, nats, an entry point name or module:Class "
                        "(required unless --replay)")
    p.add_argument("--replay", type=Path, default=None, metavar="RUN_DIR",
                   help="re-run a saved run exactly: its configuration (run.json), seed and "
                        "fault schedule; other options are ignored except --out, --lab, "
                        "--quiet, --alluredir and --target (with a warning)")
    p.add_argument("--mutant", default=None, help="switch on a seeded bug of the target")
    p.add_argument("--target-opt", action="append", default=None, metavar="KEY=VALUE",
                   help="an option of the target's adapter (repeatable); see docs/adapters.md")
    p.add_argument("--faults", default=",".join(DEFAULT_FAULTS),
                   help=f"comma-separated fault families (default {','.join(DEFAULT_FAULTS)}); "
                        "see docs/faults.md; 'default' for the default mix (e.g. default,clock-jump), "
                        "'none' for a fault-free run")
    p.add_argument("--schedule", type=Path, default=None, help="replay a schedule.json instead of generating one")
    p.add_argument("--duration", type=float, default=45.0, help="seconds of chaos (default 45)")
    p.add_argument("--seed", type=int, default=None, help="seed; a run without one picks one and prints it")
    p.add_argument("--workload", default="mixed", metavar="NAME",
                   help=f"what the clients request: {', '.join(shape_names())} (default mixed); "
                        "see docs/workloads.md")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    p.add_argument("--accounts", type=int, default=8, help="accounts in the workload (default 8)")
    p.add_argument("--failpoint", action="append", default=[], metavar="NODE=SPEC",
                   help="arm a failpoint of the target at start (repeatable), e.g. "
                        "coordinator=after-send-prepare=crash@3 (docs/reference-target.md)")
    p.add_argument("--intensity", type=float, default=0.5, help="share of the run under faults, 0..1")
    p.add_argument("--quiesce", type=float, default=30.0, help="seconds payments may stay in doubt after healing")
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<time>-<target>-seed<N>)")
    p.add_argument("--lab", default="local", help="local (start services here), external (TXCHAOS_* variables) or a lab file")
    p.add_argument("--cluster", type=int, choices=(1, 3), default=1,
                   help="nodes per broker in the local lab: 1, or 3 as a cluster (docs/clusters.md)")
    p.add_argument("--quiet", action="store_true", help="no live progress line")
    p.add_argument("--alluredir", type=Path, default=None, metavar="DIR",
                   help="also write Allure results of the run into DIR (one test per checker); "
                        "build the report with `txchaos report DIR`")
    p.set_defaults(handler=handle)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    if args.replay is not None:
        from harness.runconfig import replay_config

        config, warnings = replay_config(args.replay, target=args.target)
        for w in warnings:
            print(f"txchaos: warning: {w}", file=sys.stderr)
        config.out = args.out.resolve() if args.out else None
        if args.lab != "local":
            config.lab = args.lab
        return config
    if args.target is None:
        raise BadInput("give --target (or --replay RUN_DIR)")
    if args.duration <= 0:
        raise BadInput(f"--duration must be positive, got {args.duration:g}")
    if args.clients < 1:
        raise BadInput(f"--clients must be at least 1, got {args.clients}")
    if args.accounts < 2:
        raise BadInput(f"--accounts must be at least 2, got {args.accounts}")
    failpoints: dict[str, str] = {}
    for item in args.failpoint:
        node, sep, spec = item.partition("=")
        if not sep or not node or not spec:
            raise BadInput(f"--failpoint {item!r}: expected NODE=SPEC, e.g. coordinator=after-vote=crash")
        failpoints[node] = f"{failpoints[node]};{spec}" if node in failpoints else spec
    if not 0 <= args.intensity <= 1:
        raise BadInput(f"--intensity must be between 0 and 1, got {args.intensity:g}")
    if args.schedule is not None and not args.schedule.is_file():
        raise BadInput(f"--schedule {args.schedule}: no such file")
    shape(args.workload)  # BadInput listing the valid workloads
    faults = parse_families(args.faults)
    lab = args.lab if args.lab in ("local", "external") else str(Path(args.lab).resolve())
    return RunConfig(target=args.target, mutant=args.mutant, target_options=parse_options(args.target_opt), faults=faults, duration=args.duration,
                     seed=args.seed, out=args.out.resolve() if args.out else None,
                     clients=args.clients, accounts=args.accounts, failpoints=failpoints,
                     intensity=args.intensity, quiesce_timeout=args.quiesce,
                     schedule_file=args.schedule.resolve() if args.schedule else None, lab=lab,
                     workload=args.workload, cluster=args.cluster)


def handle(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config.seed is None:
        import random

        config.seed = random.SystemRandom().randrange(1, 2**31)
        print(f"txchaos: no --seed given; using seed {config.seed}", file=sys.stderr)
    if config.out is None:
        config.out = default_run_dir(config, config.seed)
    try:
        result = run_chaos(config, progress=not args.quiet)
    except (TxchaosError, KeyboardInterrupt):
        # A broken or interrupted run still shows in the report, as Infrastructure error.
        if args.alluredir is not None and (config.out / "run.json").is_file():
            _write_allure(config.out, args.alluredir, config)
        raise
    print_result(result)
    if args.alluredir is not None:
        _write_allure(result.run_dir, args.alluredir, config)
    return result.exit_code


def _write_allure(run_dir: Path, alluredir: Path, config: RunConfig) -> None:
    from harness.report.standalone import write_results

    written = write_results(run_dir, alluredir,
                            info={"option.target": config.target, "option.seed": config.seed,
                                  "option.faults": ",".join(config.faults) or "none"})
    print(f"allure results: {len(written)} tests in {alluredir}")
    print(f"build the report: txchaos report {shlex.quote(str(alluredir))} --out allure-report")


def print_result(result: RunResult) -> None:
    c = result.counts
    print(f"\n{result.config.target}{' mutant ' + result.config.mutant if result.config.mutant else ''}"
          f" seed {result.seed}: {c.get('ok', 0)} ok, {c.get('fail', 0)} failed, "
          f"{c.get('info', 0)} unknown, {c.get('faults', 0)} faults injected")
    for notice in result.notices:
        print(f"NOTE: {notice}")
    print(format_verdict_table(result.verdict))
    schedule = result.run_dir / "schedule.json"
    lines = coverage_lines(Schedule.load(schedule)) if schedule.is_file() else []
    if lines:
        print("\n" + "\n".join(lines))
    label = {True: "VALID", False: "VIOLATED", "unknown": "UNKNOWN"}[result.valid]
    print(f"\nverdict: {label}")
    print(f"run directory: {result.run_dir}")
    print(f"reproduce:     {result.command}")
