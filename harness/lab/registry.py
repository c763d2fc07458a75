"""Machine-wide bookkeeping of labs, so a lab left by a killed run is cleaned up.

Each lab has a dir under LABS_DIR (/tmp/txchaos-labs/<lab-id>/) holding
lab.json (owner pid, detached flag) and the pid files of its processes. At
each lab start, labs whose owner is dead are reaped; labs of a live owner are
never touched, and a detached lab (`txchaos lab up`) lives until `lab down`
or until its state file is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

from harness.procs import process_state, reap_orphans

__all__ = ["LABS_DIR", "register", "mark_detached", "reap_stale_labs", "kill_lab", "lab_pgids"]

LABS_DIR = Path(os.environ.get("TXCHAOS_LABS_DIR", "/tmp/txchaos-labs"))


def _alive(pid: int) -> bool:
    return process_state(pid) not in ("dead", "zombie")


def register(lab_id: str, root: Path) -> Path:
    d = LABS_DIR / lab_id
    (d / "pids").mkdir(parents=True, exist_ok=True)
    meta = {"owner": os.getpid(), "detached": False, "root": str(root), "created": time.time()}
    (d / "lab.json").write_text(json.dumps(meta))
    return d


def mark_detached(lab_dir: Path, state_path: Path) -> None:
    meta = _meta(lab_dir) or {}
    meta.update({"detached": True, "state": str(state_path)})
    (lab_dir / "lab.json").write_text(json.dumps(meta))


def _meta(lab_dir: Path) -> dict | None:
    try:
        return json.loads((lab_dir / "lab.json").read_text())
    except (OSError, ValueError):
        return None


def reap_stale_labs() -> list[str]:
    """Kill the processes of labs whose owner died; returns what was cleaned."""
    cleaned: list[str] = []
    if not LABS_DIR.is_dir():
        return cleaned
    for d in LABS_DIR.iterdir():
        meta = _meta(d)
        if meta is None:
            try:
                if time.time() - d.stat().st_mtime < 60:  # being created right now
                    continue
            except FileNotFoundError:  # another process reaped it meanwhile
                continue
        elif meta.get("detached"):
            if Path(meta.get("state", "")).is_file():
                continue
        elif int(meta.get("owner", 0)) != os.getpid() and _alive(int(meta.get("owner", 0))):
            continue
        cleaned += [f"{d.name}/{n}" for n in reap_orphans(d / "pids")]
        shutil.rmtree(d, ignore_errors=True)
    return cleaned


def lab_pgids(lab_dir: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for pidfile in sorted((lab_dir / "pids").glob("*.pid")):
        try:
            rec = json.loads(pidfile.read_text())
            out[str(rec["name"])] = int(rec["pgid"])
        except (OSError, ValueError, KeyError):
            continue
    return out


def kill_lab(lab_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stop every process group of a (detached) lab: SIGTERM, then SIGKILL; remove its dir."""
    groups = lab_pgids(lab_dir)
    order = sorted(groups, key=lambda n: n.startswith("toxiproxy") or n.endswith("epmd"))
    for name in order:  # brokers first; epmd and toxiproxy last
        _signal(groups[name], signal.SIGCONT)
        _signal(groups[name], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in groups.values()):
        time.sleep(0.1)
    for pgid in groups.values():
        _signal(pgid, signal.SIGKILL)
    shutil.rmtree(lab_dir, ignore_errors=True)
    return order


def _signal(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
