"""Cold-start seconds and resident memory of each lab service and of the whole lab, as a table.

Each service is timed in a fresh lab (fresh data dir, fresh ports) from
`ensure()` until its protocol handshake passes; brokers are timed after their
lab's Toxiproxy is already up, so the number is the broker's own. The whole lab
is every service at once (started in parallel). Rows marked x3 are the clustered
brokers (`Lab(cluster=3)`: three nodes, ready when they serve as one cluster),
beside the one-node rows as the baseline; "clustered lab" is every clusterable broker
as a cluster, with Toxiproxy. Memory is the resident set of the lab's
processes once ready. Aim: whole lab <= 30 s.

    .venv/bin/python bench/lab_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.errors import TxchaosError
from harness.lab import BROKERS, SERVICES, Lab
from harness.lab.core import CLUSTERED


def _rss_mib(pgids: set[int]) -> float:
    """Resident memory of every live process in the given process groups."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) not in pgids:
                continue
            status = (entry / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _timed(root: Path, service: str | None, cluster: int = 1) -> tuple[float, float]:
    """(seconds to ready, MiB resident once ready) of `service` (None: the whole lab)."""
    lab = Lab(root, cluster=cluster)
    try:
        everything = list(SERVICES) if cluster == 1 else [*CLUSTERED, "toxiproxy"]
        wanted = everything if service is None else [service]
        if service in BROKERS:
            lab.ensure("toxiproxy")
        t0 = time.monotonic()
        lab.ensure(*wanted)
        took = time.monotonic() - t0
        measured = {st.pid for st in lab.status() if st.pid and (service is None or st.service != "toxiproxy")}
        return took, _rss_mib({os.getpgid(p) for p in measured})
    finally:
        lab.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (default 1)")
    args = parser.parse_args(argv)
    rows: list[tuple[str, list[tuple[float, float]]]] = []
    cases = [(s, 1) for s in SERVICES] + [(None, 1)] + [(s, 3) for s in CLUSTERED] + [(None, 3)]
    try:
        with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
            for i, (name, size) in enumerate(cases):
                runs = [_timed(Path(tmp) / f"{i}-{r}", name, size) for r in range(args.repeat)]
                label = name + (" x3" if size > 1 else "") if name else \
                    ("whole lab" if size == 1 else "clustered lab")
                rows.append((label, runs))
    except TxchaosError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 3
    print(f"{'service':<14} {'cold start s (median)':>22} {'min':>7} {'max':>7} {'RSS MiB':>8}")
    for name, runs in rows:
        times = [t for t, _ in runs]
        rss = statistics.median(m for _, m in runs)
        print(f"{name:<14} {statistics.median(times):>22.2f} {min(times):>7.2f} {max(times):>7.2f} {rss:>8.0f}")
    for name, runs in rows:
        if name in ("whole lab", "clustered lab"):
            took = statistics.median(t for t, _ in runs)
            print(f"{name} ready in {took:.1f} s (aim <= 30 s): {'ok' if took <= 30 else 'SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
