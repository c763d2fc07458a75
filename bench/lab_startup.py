"""Cold-start seconds of each lab service and of the whole lab, as a table.

Each service is timed in a fresh lab (fresh data dir, fresh ports) from
`ensure()` until its protocol handshake passes; brokers are timed after their
lab's Toxiproxy is already up, so the number is the broker's own. The whole lab
is every service at once (started in parallel). Aim: whole lab <= 30 s.

    .venv/bin/python bench/lab_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.errors import TxchaosError
from harness.lab import BROKERS, SERVICES, Lab


def _timed(root: Path, service: str | None) -> float:
    lab = Lab(root)
    try:
        if service is None:
            t0 = time.monotonic()
            lab.ensure(*SERVICES)
            return time.monotonic() - t0
        if service in BROKERS:
            lab.ensure("toxiproxy")
        t0 = time.monotonic()
        lab.ensure(service)
        return time.monotonic() - t0
    finally:
        lab.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (default 1)")
    args = parser.parse_args(argv)
    rows: list[tuple[str, list[float]]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
            for i, name in enumerate([*SERVICES, None]):
                times = [_timed(Path(tmp) / f"{i}-{r}", name) for r in range(args.repeat)]
                rows.append((name or "whole lab", times))
    except TxchaosError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 3
    print(f"{'service':<12} {'cold start s (median)':>22} {'min':>7} {'max':>7}")
    for name, times in rows:
        print(f"{name:<12} {statistics.median(times):>22.2f} {min(times):>7.2f} {max(times):>7.2f}")
    whole = statistics.median(rows[-1][1])
    print(f"whole lab ready in {whole:.1f} s (aim <= 30 s): {'ok' if whole <= 30 else 'SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
