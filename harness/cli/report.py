"""`txchaos report [RESULTS_DIR] [--out DIR]`: build the Allure HTML report of chaos runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import EXIT_VALID


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="build the Allure HTML report from pytest --alluredir results",
        description="Build the Allure 3 HTML report from an Allure results directory, "
                    "keeping history and trends across runs in a file beside the report.")
    p.add_argument("results", nargs="?", default="allure-results", type=Path,
                   metavar="RESULTS_DIR", help="Allure results (default: allure-results)")
    p.add_argument("--out", "-o", default=Path("allure-report"), type=Path, metavar="DIR",
                   help="where to write the report (default: allure-report)")
    p.add_argument("--history", type=Path, default=None, metavar="FILE",
                   help="history file kept across runs (default: <DIR>-history.jsonl); "
                        "keep it between nightly jobs to get trends")
    p.add_argument("--name", default="txchaos chaos report", help="report title")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.allure_cli import build_report

    built = build_report(args.results, args.out, history=args.history, name=args.name)
    print(f"Report of {built.tests} test results: {built.report_dir / 'index.html'}")
    print(f"History (keep it for trends): {built.history_file}")
    print(f"Open it with: npx allure open {built.report_dir}  "
          f"(or serve the directory over HTTP)")
    return EXIT_VALID
