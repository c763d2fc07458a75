"""What a lazy disk (txchaos-lazyfs, the power-loss faults' filesystem) costs a target.

    .venv/bin/python bench/lazyfs_overhead.py [--brokers nats,rabbitmq,kafka]
        [--clients 8] [--duration 10] [--rounds 2]

Two measurements, each beside its baseline in the same run:

- sqlite: single-row commits per second of one SQLite store in WAL mode with
  synchronous=FULL (every commit fsyncs, as the reference target's stores do),
  on a plain directory vs on a lazy disk over the same filesystem;
- payments: the reference target's payments per second (`clients` concurrent
  clients, 2PC over four participants), with its data dirs plain vs on lazy
  disks; the two alternate for `--rounds` rounds, so drift on a shared machine
  hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapters.base import TargetContext  # noqa: E402
from adapters.registry import load_adapter  # noqa: E402
from harness.disk import LazyDisk  # noqa: E402
from harness.errors import TxchaosError  # noqa: E402
from harness.lab import Lab  # noqa: E402
from target_throughput import ACCOUNTS, payments  # noqa: E402


def sqlite_commits(directory: Path, seconds: float) -> float:
    db = sqlite3.connect(directory / "bench.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, v TEXT)")
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
        n += 1
    rate = n / (time.monotonic() - start)
    db.close()
    return rate


def bench_sqlite(root: Path, seconds: float) -> list[str]:
    plain = root / "sqlite-plain"
    plain.mkdir()
    disk = LazyDisk(root / "sqlite-lazy", root / "sqlite-backing")
    try:
        base, lazy = sqlite_commits(plain, seconds), sqlite_commits(disk.mountpoint, seconds)
    finally:
        disk.close()
    return [_row("sqlite", "commits/s", base, lazy)]


def payments_rate(lab: Lab, run_dir: Path, broker: str, clients: int, duration: float, disks: bool) -> float:
    adapter = load_adapter(broker)()
    ctx = TargetContext(lab=lab, run_dir=run_dir, accounts=ACCOUNTS, disks=disks)
    try:
        adapter.start(ctx)

        async def measure() -> float:
            try:
                await payments(adapter, clients, 2.0, f"{run_dir.name}-warm")
                return (await payments(adapter, clients, duration, run_dir.name)).rate
            finally:
                await adapter.aclose()

        return asyncio.run(measure())
    finally:
        adapter.stop()
        ctx.close()


def bench_payments(lab: Lab, root: Path, broker: str, clients: int, duration: float, rounds: int) -> list[str]:
    lab.ensure(broker)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for disks in (False, True):
            rates[disks].append(payments_rate(lab, root / f"{broker}-{r}-{'lazy' if disks else 'plain'}",
                                              broker, clients, duration, disks))
    return [_row(broker, f"payments/s ({clients} clients)", statistics.median(rates[False]),
                 statistics.median(rates[True]))]


HEADER = f"{'what':<9} {'unit':<24} {'plain':>9} {'lazy disk':>9} {'lazy/plain':>10}"


def _row(what: str, unit: str, base: float, lazy: float) -> str:
    return f"{what:<9} {unit:<24} {base:>9.1f} {lazy:>9.1f} {lazy / base if base else 0:>10.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="nats,rabbitmq,kafka")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="plain/lazy alternations per broker")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
        root = Path(tmp)
        lab = Lab(root / "lab")
        print(HEADER, flush=True)
        try:
            for row in bench_sqlite(root, min(args.duration, 5.0)):
                print(row, flush=True)
            for broker in [b for b in args.brokers.split(",") if b]:
                for row in bench_payments(lab, root, broker, args.clients, args.duration, args.rounds):
                    print(row, flush=True)
        except TxchaosError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        finally:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
