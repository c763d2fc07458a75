"""A spec target whose services run as containers on a private Docker engine: docker-kill
and docker-pause from `txchaos run`, and nothing left behind, even after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "examples" / "go-payments" / "target.toml"

pytestmark = pytest.mark.docker


def _container_spec(tmp_path: Path) -> Path:
    """The Go example's spec with every service in a container of an image built from gopay."""
    text = SPEC.read_text().replace('command = "gopay"\n', 'image = "txchaos/gopay:local"\ncommand = "/bin/gopay"\n')
    text = text.replace("[services.accounts-a]", '[images."txchaos/gopay:local"]\nbinary = "gopay"\n\n'
                        "[services.accounts-a]", 1)
    assert text.count('image = "txchaos/gopay:local"') == 4
    spec = tmp_path / "target.toml"
    spec.write_text(text)
    return spec


def _left_behind(text: str) -> list[str]:
    """Processes whose command line or environment mentions `text`: dockerd (its data root)
    and the services in their containers (GOPAY_DATA)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (entry / "environ").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline or text in environ:
                found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def _argv(spec: Path, out: Path, duration: int) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--target", f"spec:{spec}", "--duration", str(duration),
            "--seed", "4", "--faults", "docker-kill,docker-pause", "--intensity", "0.8", "--quiet",
            "--out", str(out)]


def test_containers_under_docker_faults(tmp_path: Path, gopay: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(_argv(_container_spec(tmp_path), out, 10), capture_output=True, text=True,
                            timeout=400, cwd=tmp_path)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    history = (out / "history.jsonl").read_text()
    assert '"docker-kill"' in history and '"docker-pause"' in history, text
    assert "listening" in (out / "logs" / "coordinator.log").read_text()  # container output kept
    assert _left_behind(str(out)) == []


def test_ctrl_c_leaves_no_container_behind(tmp_path: Path, gopay: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(_argv(_container_spec(tmp_path), out, 60), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)
    history = out / "history.jsonl"
    deadline = time.monotonic() + 180
    while not (history.is_file() and '"nemesis"' in history.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no fault started within 180 s"
        time.sleep(0.2)
    assert any("/bin/gopay" in p for p in _left_behind(str(out)))  # the services run in containers now
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr, stderr
    deadline = time.monotonic() + 20
    while (left := _left_behind(str(out))) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == []
