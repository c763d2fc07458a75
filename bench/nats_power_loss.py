"""NATS JetStream under power cuts: its default fsync interval against `sync_interval: always`.

    .venv/bin/python bench/nats_power_loss.py [--version 2.15.3] [--messages 2000]
        [--seeds 1,2,3] [--duration 30]

The lab's NATS keeps its JetStream store on a lazy disk (txchaos-lazyfs), so a
power cut loses what the server never fsynced. For each sync setting (the
server's default, then `always`), in the same run:

- acked: `--messages` publishes to a file-backed stream, each acknowledged by
  the server (the client's only durability promise); then a power cut of the
  server (kill -9, unsynced writes dropped) and a restart; the table counts the
  acknowledged messages the stream still holds;
- target: the reference payment system on that NATS under `power-loss-all`
  (every node and the broker cut at once, again and again) for each seed; the
  table gives the checkers' verdicts and how much unsynced broker data the cuts
  dropped. The protocol re-sends every PREPARE and decision until it is
  acknowledged, so lost broker messages alone should not break a payment.

TXCHAOS_NATS_VERSION selects the server (built from its Go module on first use);
Debian's 2.9.10 has no `sync_interval`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats  # noqa: E402
from nats.js.api import StorageType, StreamConfig  # noqa: E402
from nats.js.errors import NotFoundError  # noqa: E402

from harness.errors import TxchaosError  # noqa: E402
from harness.lab import Lab  # noqa: E402
from harness.run import RunConfig, run_chaos  # noqa: E402

SYNCS = (("default", None), ("always", "always"))


async def _publish(url: str, n: int) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(StreamConfig(name="bench", subjects=["bench.>"], storage=StorageType.FILE))
        acked = 0
        for i in range(n):
            await js.publish("bench.m", f"{i}".encode(), stream="bench")
            acked += 1
        return acked
    finally:
        await nc.close()


async def _count(url: str) -> int:
    """Messages in the stream; 0 if the cut took the stream itself."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream(timeout=10).stream_info("bench")
        return info.state.messages
    except NotFoundError:
        return 0
    finally:
        await nc.close()


def acked_after_cut(root: Path, messages: int) -> tuple[int, int, str]:
    """(acknowledged, still there after a power cut, what the cut dropped)."""
    lab = Lab(root, disks=True)
    try:
        lab.ensure("nats")
        url = lab.endpoint("nats").url
        acked = asyncio.run(_publish(url, messages))
        proc = lab.process("nats")
        assert proc is not None and proc.disk is not None
        proc.kill(signal.SIGKILL)
        files, size = proc.disk.drop()
        proc.start()
        return acked, asyncio.run(_count(url)), f"{size // 1024} KiB in {files} files"
    finally:
        lab.down()


def target_runs(root: Path, seeds: list[int], duration: float) -> list[tuple[int, str, str]]:
    out = []
    for seed in seeds:
        result = run_chaos(RunConfig(target="nats", faults=("power-loss-all",), duration=duration,
                                     seed=seed, out=root / f"run-{seed}"))
        broken = [c["name"] for c in result.verdict["checkers"] if c["valid"] is not True]
        lost = 0
        for line in (result.run_dir / "history.jsonl").read_text().splitlines():
            if '"nemesis"' in line and '"start"' in line:
                desc = json.loads(line)["value"].get("description", "")
                m = re.search(r"nats lost (\d+) KiB", desc)
                lost += int(m.group(1)) if m else 0
        out.append((seed, "VALID" if not broken else "VIOLATED: " + ",".join(broken), f"{lost} KiB"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=os.environ.get("TXCHAOS_NATS_VERSION", "2.15.3"))
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args(argv)
    os.environ["TXCHAOS_NATS_VERSION"] = args.version
    seeds = [int(s) for s in args.seeds.split(",") if s]
    print(f"nats-server {args.version}; {args.messages} acked publishes; power-loss-all runs of "
          f"{args.duration:g} s, seeds {args.seeds}", flush=True)
    print(f"{'sync':<8} {'what':<7} {'result':<44} {'unsynced dropped':>16}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="txchaos-bench-") as tmp:
            for label, sync in SYNCS:
                if sync:
                    os.environ["TXCHAOS_NATS_SYNC"] = sync
                else:
                    os.environ.pop("TXCHAOS_NATS_SYNC", None)
                acked, kept, dropped = acked_after_cut(Path(tmp) / f"acked-{label}", args.messages)
                print(f"{label:<8} {'acked':<7} {f'{kept} of {acked} acked messages kept':<44} {dropped:>16}",
                      flush=True)
                for seed, verdict, lost in target_runs(Path(tmp) / f"target-{label}", seeds, args.duration):
                    print(f"{label:<8} {'target':<7} {f'seed {seed}: {verdict}':<44} {lost:>16}", flush=True)
    except TxchaosError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
