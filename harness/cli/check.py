"""`txchaos check`: re-check a saved run (or any recorded history and state) offline.

Exit codes: 0 valid, 1 an invariant is violated, 2 undecided, 3 bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.errors import EXIT_UNKNOWN, EXIT_VALID, EXIT_VIOLATED, BadInput

__all__ = ["register", "handle", "format_table"]

_MARK = {True: "valid", False: "VIOLATED", "unknown": "unknown"}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "check", help="check a run's history and final state against the six invariants",
        description="Check a run directory (history.jsonl + state.json), or a history and a "
                    "state given separately. Formats: docs/formats.md. Exit 0 valid, "
                    "1 violated, 2 unknown, 3 bad input.")
    p.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                   help="a run directory holding history.jsonl and state.json")
    p.add_argument("--history", type=Path, metavar="H.jsonl", help="history file (JSONL)")
    p.add_argument("--state", type=Path, metavar="S.json", help="final state file (JSON)")
    p.add_argument("--out", type=Path, metavar="verdict.json",
                   help="where to write the verdict (default: RUN_DIR/verdict.json; "
                        "with --history/--state: not written unless given)")
    p.add_argument("--snapshot-reads", dest="snapshot_reads", action="store_true", default=None,
                   help="the target's ok reads are atomic snapshots: check their sums")
    p.add_argument("--no-snapshot-reads", dest="snapshot_reads", action="store_false",
                   help="do not check the sums of reads (default, or as the run was checked)")
    p.add_argument("--no-negative", dest="no_negative", action="store_true", default=None,
                   help="the target promises no negative balance (default, or as the run was checked)")
    p.add_argument("--allow-negative", dest="no_negative", action="store_false",
                   help="the target allows overdrafts: skip the no-negative checker")
    p.add_argument("--resolution-bound", type=float, default=None, metavar="SECONDS",
                   help="longest a payment may stay in doubt after healing, when the state "
                        "does not say (default 30, or as the run was checked)")
    p.add_argument("--examples", type=int, default=3, metavar="N",
                   help="evidence examples to print per kind (default 3)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar or lines on stderr (shown only for checks past a second)")
    p.set_defaults(handler=handle)


def _inputs(args: argparse.Namespace) -> tuple[Path, Path, Path | None]:
    if args.run_dir is not None:
        if args.history or args.state:
            raise BadInput("give either RUN_DIR or --history and --state, not both")
        d: Path = args.run_dir
        if not d.is_dir():
            raise BadInput(f"{d}: not a run directory")
        return d / "history.jsonl", d / "state.json", args.out or d / "verdict.json"
    if not (args.history and args.state):
        raise BadInput("give a RUN_DIR, or both --history H.jsonl and --state S.json")
    return args.history, args.state, args.out


def _options(args: argparse.Namespace, options_cls: type) -> Any:
    """The check options: those a saved run was checked with (run.json "check"), so a
    re-check reproduces its verdict, then the defaults; flags given override both."""
    saved: dict[str, Any] = {}
    if args.run_dir is not None and (args.run_dir / "run.json").is_file():
        from harness.runconfig import load_run_meta

        check = load_run_meta(args.run_dir).get("check")
        if isinstance(check, dict):
            saved = {k: v for k, v in check.items() if k in options_cls.__dataclass_fields__}
    given = {"snapshot_reads": args.snapshot_reads, "no_negative": args.no_negative,
             "resolution_bound_s": args.resolution_bound}
    return options_cls(**{**saved, **{k: v for k, v in given.items() if v is not None}})


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the reader says what is wrong with it


def format_table(verdict: dict[str, Any], examples: int = 3) -> str:
    """Checker, result, summary and evidence counts; then the first examples of each problem."""
    rows = [("checker", "result", "evidence", "summary")]
    for c in verdict["checkers"]:
        counts = ", ".join(f"{k}={e['count']}" for k, e in c["evidence"].items()) or "-"
        rows.append((c["name"], _MARK.get(c["valid"], str(c["valid"])), counts, c["summary"]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
    for c in verdict["checkers"]:
        for kind, e in c["evidence"].items():
            if e.get("severity") == "info":
                continue
            for ex in e["examples"][:examples]:
                lines.append(f"  {c['name']} / {kind}: {ex.get('detail', '')} "
                             f"{json.dumps({k: v for k, v in ex.items() if k != 'detail'})}")
    lines.append(f"overall: {_MARK.get(verdict['valid'], verdict['valid'])}")
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    from harness.checkers import CheckOptions, check_files
    from harness.checkers.progress import CheckProgress

    history_path, state_path, out = _inputs(args)
    options = _options(args, CheckOptions)
    progress = CheckProgress(_size(history_path) + _size(state_path)) if args.progress else None
    try:
        verdict = check_files(history_path, state_path, options, progress=progress).to_json()
    finally:
        if progress is not None:
            progress.close()
    print(format_table(verdict, args.examples))
    if out is not None:
        try:
            out.write_text(json.dumps(verdict, indent=1) + "\n")
        except OSError as e:
            raise BadInput(f"{out}: cannot write the verdict ({e.strerror})") from None
        print(f"verdict written to {out}")
    return {True: EXIT_VALID, False: EXIT_VIOLATED}.get(verdict["valid"], EXIT_UNKNOWN)
