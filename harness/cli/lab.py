"""`txchaos lab up|status|down`: a lab that outlives the command, for manual work.

`up` starts the services, writes their state to DIR/state.json (default
.txchaos/lab) and leaves them running; `status` and `down` read that file. The
state file is also a lab config: `pytest --lab .txchaos/lab/state.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.lab import SERVICES, Lab, registry
from harness.procs import process_state

DEFAULT_DIR = Path(".txchaos/lab")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lab", help="start, inspect and stop the brokers and Toxiproxy")
    sub = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    for name, doc in (("up", "start services (all if none named) and leave them running"),
                      ("status", "show each service's state, endpoint and version"),
                      ("down", "stop services (all if none named)")):
        sp = sub.add_parser(name, help=doc)
        if name != "status":
            sp.add_argument("services", nargs="*", metavar="SERVICE",
                            help=f"any of: {', '.join(SERVICES)}")
        if name == "up":
            sp.add_argument("--cluster", type=int, choices=(1, 3), default=1,
                            help="nodes per broker: 1, or 3 as a cluster (NATS, Kafka)")
        sp.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help="where the lab keeps its data, logs and state.json (default %(default)s)")
        sp.set_defaults(handler={"up": _up, "status": _status, "down": _down}[name])


def _state_path(args: argparse.Namespace) -> Path:
    return args.dir / "state.json"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise BadInput(f"{path} is not a lab state file ({e}); remove it") from None


def _alive_services(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s: info for s, info in state.get("services", {}).items()
            if info.get("pid") and process_state(int(info["pid"])) in ("running", "stopped")}


def _print(rows: list[tuple[str, str, str, str]]) -> None:
    rows = [("SERVICE", "STATE", "ENDPOINT", "VERSION"), *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _up(args: argparse.Namespace) -> int:
    wanted = tuple(args.services) or SERVICES
    for s in wanted:
        if s not in SERVICES:
            raise BadInput(f"unknown service {s!r}; choose from {', '.join(SERVICES)}")
    path = _state_path(args)
    state = _load(path)
    if state is not None:
        alive = _alive_services(state)
        if alive and all(s in alive for s in wanted):
            return _status(args)
        if alive:
            raise BadInput(f"a lab is already up in {args.dir} ({', '.join(alive)}); "
                           "run `txchaos lab down` first, then `txchaos lab up` with every service you need")
        registry.kill_lab(Path(state.get("lab_dir", "/nonexistent")))
        path.unlink(missing_ok=True)
    lab = Lab(args.dir.resolve(), cluster=args.cluster)
    try:
        lab.ensure(*wanted)
        lab.detach(path)
    except BaseException:
        lab.down()
        raise
    return _status(args)


def _status(args: argparse.Namespace) -> int:
    state = _load(_state_path(args))
    if state is None:
        print(f"no lab is up in {args.dir}")
        return 0
    alive = _alive_services(state)
    rows = []
    for s, info in state.get("services", {}).items():
        rows.append((s, "running" if s in alive else "dead", info.get("url", "-"), info.get("version", "-")))
    _print(rows)
    return 0


def _down(args: argparse.Namespace) -> int:
    path = _state_path(args)
    state = _load(path)
    if state is None:
        print(f"no lab is up in {args.dir}")
        return 0
    lab_dir = Path(state.get("lab_dir", "/nonexistent"))
    names = set(args.services)
    for s in names:
        if s not in SERVICES:
            raise BadInput(f"unknown service {s!r}; choose from {', '.join(SERVICES)}")
    if not names or names >= set(state.get("services", {})):
        stopped = registry.kill_lab(lab_dir)
        path.unlink(missing_ok=True)
        for service in SERVICES:  # data and logs of the lab; the dir itself may be the user's
            shutil.rmtree(args.dir / service, ignore_errors=True)
        print(f"lab down: stopped {', '.join(stopped) or 'nothing'}")
        return 0
    groups = registry.lab_pgids(lab_dir)
    for name, pgid in groups.items():
        if name.split("-")[0] in names:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.killpg(pgid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            (lab_dir / "pids" / f"{name}.pid").unlink(missing_ok=True)
    for s in names:
        state.get("services", {}).pop(s, None)
        state.pop({"rabbitmq": "rabbitmq_url", "kafka": "kafka_bootstrap", "nats": "nats_url",
                   "toxiproxy": "toxiproxy_url"}[s], None)
    path.write_text(json.dumps(state, indent=2))
    print(f"lab down: stopped {', '.join(sorted(names))}")
    return 0

