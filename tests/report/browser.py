"""Test helpers: serve a report over loopback HTTP and render it in headless Chromium.

Allure 3 reports load their data with fetch(), which browsers refuse over
file://, so the report is served on 127.0.0.1 by a ManagedProcess.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from harness.lab.ports import free_port
from harness.procs import ManagedProcess

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def serve(directory: Path, log_dir: Path) -> Iterator[str]:
    """`directory` served at http://127.0.0.1:<port>/ for the duration of the block."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"

    def ready() -> bool:
        with urllib.request.urlopen(base + "index.html", timeout=2) as r:
            return r.status == 200

    server = ManagedProcess("report-http", [sys.executable, "-m", "http.server", "--bind",
                                            "127.0.0.1", "--directory", str(directory), str(port)],
                            log_path=log_dir / "report-http.log", ready=ready, ready_timeout=20)
    server.start()
    try:
        yield base
    finally:
        server.stop()


def render(url: str, *, screenshot: Path | None = None, timeout: float = 90) -> str:
    """The DOM of `url` after its scripts ran (and optionally a PNG of the page)."""
    exe = chromium()
    assert exe, "chromium is not installed"
    with tempfile.TemporaryDirectory(prefix="txchaos-chromium-") as profile:
        args = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
                "--window-size=1400,1100"]
        args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        proc = subprocess.Popen(args + [url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            # Chromium leaves helper processes in its group: stop them all with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return out.decode("utf-8", "replace")
