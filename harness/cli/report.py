"""`txchaos report [RESULTS_DIR] [--out DIR]`: build the Allure HTML report of chaos runs.

With `--run RUN_DIR` (repeatable) the results are first made from saved run
directories, so an old run can be re-reported without re-running it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.errors import EXIT_VALID, BadInput

DEFAULT_RESULTS = Path("allure-results")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "report", help="build the Allure HTML report from Allure results or saved run directories",
        description="Build the Allure 3 HTML report from an Allure results directory (from "
                    "`pytest --alluredir` or `txchaos run --alluredir`), or from saved run "
                    "directories with --run, keeping history and trends across runs in a file "
                    "beside the report.")
    p.add_argument("results", nargs="?", default=None, type=Path, metavar="RESULTS_DIR",
                   help=f"Allure results (default: {DEFAULT_RESULTS})")
    p.add_argument("--run", action="append", type=Path, default=None, metavar="RUN_DIR",
                   help="report a saved run directory instead of a results directory "
                        "(repeatable)")
    p.add_argument("--out", "-o", default=Path("allure-report"), type=Path, metavar="DIR",
                   help="where to write the report (default: allure-report)")
    p.add_argument("--history", type=Path, default=None, metavar="FILE",
                   help="history file kept across runs (default: <DIR>-history.jsonl); "
                        "keep it between nightly jobs to get trends")
    p.add_argument("--name", default="txchaos chaos report", help="report title")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.allure_cli import build_report

    if args.run and args.results is not None:
        raise BadInput("give either RESULTS_DIR or --run RUN_DIR, not both")
    if args.run:
        from harness.report.standalone import write_results

        with tempfile.TemporaryDirectory(prefix="txchaos-results-") as tmp:
            for run_dir in args.run:
                write_results(run_dir, Path(tmp))
            built = build_report(Path(tmp), args.out, history=args.history, name=args.name)
    else:
        built = build_report(args.results or DEFAULT_RESULTS, args.out, history=args.history,
                             name=args.name)
    print(f"Report of {built.tests} test results: {built.report_dir / 'index.html'}")
    print(f"History (keep it for trends): {built.history_file}")
    print(f"Open it with: npx allure open {built.report_dir}  "
          f"(or serve the directory over HTTP)")
    return EXIT_VALID
