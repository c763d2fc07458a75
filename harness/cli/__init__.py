"""`txchaos` command line: one module per subcommand, each with `register(subparsers)`.

Every subcommand returns an exit code; a TxchaosError becomes its message on
stderr and its exit code (3 for bad input or broken infrastructure), never a
traceback. Ctrl-C and SIGTERM unwind through `finally` blocks, so faults heal
and processes are reaped.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from harness.errors import EXIT_BAD_INPUT, TxchaosError

SUBCOMMANDS = ("lab", "run", "campaign", "shrink", "check", "report")


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means "unknown verdict" here, so use 3."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="txchaos",
        description="Chaos testing for distributed transactions (2PC over a message broker).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=_Parser)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"harness.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"harness.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TxchaosError as e:
        print(f"txchaos: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("txchaos: interrupted; faults healed and processes stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
