"""A harness process that runs a long Nemesis schedule until interrupted.

Used by test_faults_interrupt.py: it puts a toxic, a cut link, a paused process
and (optionally) a paused container in force, then waits for SIGINT/SIGTERM.
The victim process is left out of the exit-time reaper, so what the test sees
afterwards is what the Nemesis itself healed.

usage: nemesis_runner.py CONFIG_JSON   (toxiproxy_url, latency_proxy, down_proxy,
                                        workdir, docker_socket?, container?)
"""

from __future__ import annotations

import asyncio
import atexit
import json
import signal
import sys
from pathlib import Path
from typing import Any

from harness.topology import Link, Node, Topology
from faults.nemesis import Nemesis
from faults.schedule import FaultEvent, Schedule
from harness.procs import ManagedProcess, reap_all


class FileRecorder:
    def __init__(self, path: Path) -> None:
        self.path = path

    def nemesis(self, f: str, value: dict[str, Any]) -> None:
        with open(self.path, "a") as out:
            out.write(json.dumps({"process": "nemesis", "type": "info", "f": f, "value": value}) + "\n")


def _term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    cfg = json.loads(sys.argv[1])
    work = Path(cfg["workdir"])
    atexit.unregister(reap_all)
    signal.signal(signal.SIGTERM, _term)
    victim = ManagedProcess("victim", [sys.executable, "-c", "import time; time.sleep(600)"],
                            log_path=work / "victim.log")
    victim.start()
    (work / "victim.pid").write_text(str(victim.pid))
    nodes = [Node("victim", "participant", process=victim), Node("other", "participant")]
    events = [FaultEvent(0, 120, "latency", (cfg["latency_proxy"],), {}),
              FaultEvent(0, 120, "link-down", (cfg["down_proxy"],), {}),
              FaultEvent(0, 120, "pause", ("victim",), {})]
    client = None
    if cfg.get("docker_socket"):
        import docker

        client = docker.DockerClient(base_url=f"unix://{cfg['docker_socket']}")
        nodes.append(Node("boxed", "participant", container=cfg["container"]))
        events.append(FaultEvent(0, 120, "docker-pause", ("boxed",), {}))
    topo = Topology(nodes, [Link("victim", "echo", cfg["latency_proxy"]),
                            Link("other", "echo", cfg["down_proxy"])])
    nem = Nemesis(topo, toxiproxy_url=cfg["toxiproxy_url"], recorder=FileRecorder(work / "history.jsonl"),
                  docker_client=client)
    try:
        asyncio.run(nem.run(Schedule(0, events)))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
