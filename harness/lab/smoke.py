"""A smoke check of a running lab: every broker answers through a proxy of its own.

For a lab brought up with `txchaos lab up` (e.g. before pointing a pytest
session at it with `--lab .txchaos/lab/state.json`):
`python -m harness.lab.smoke STATE_FILE` exits 0 when every broker of the lab
answers its protocol handshake through a fresh Toxiproxy proxy (and Kafka
advertises that proxy, not its own port), else prints why and exits 3.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness.errors import TxchaosError
from harness.lab import BROKERS, Lab, probes


def smoke(state_file: Path) -> list[str]:
    """One line per broker checked; raises on the first one that fails."""
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab.from_option(str(state_file), root=Path(tmp))
        try:
            for broker in BROKERS:
                if broker not in (lab.external or {}):
                    continue
                link = lab.link(broker, "smoke")
                host, port = link.listen
                if broker == "rabbitmq":
                    detail = f"AMQP {probes.amqp_version(host, port)}"
                elif broker == "nats":
                    detail = f"NATS {probes.nats_version(host, port)} with JetStream"
                else:
                    advertised = probes.kafka_brokers(host, port)
                    if advertised != [link.listen]:
                        raise TxchaosError(f"kafka advertises {advertised}, not its proxy {link.listen}")
                    detail = f"Kafka metadata advertises the proxy {host}:{port}"
                lines.append(f"ok  {broker:<9} through proxy {link.proxy} ({link.url}): {detail}")
        finally:
            lab.down()
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m harness.lab.smoke STATE_FILE", file=sys.stderr)
        return 3
    try:
        for line in smoke(Path(argv[0])):
            print(line)
    except TxchaosError as e:
        print(f"smoke check failed: {e}", file=sys.stderr)
        return 3
    except Exception as e:  # a handshake that failed: say which, without a traceback
        print(f"smoke check failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
