"""Build the HTML report with the Allure 3 CLI, keeping history and trends across runs.

Allure 3 (npm `allure`) needs no Java; the project's bootstrap installs it under
.cache/node. History lives in one JSONL file beside the report (Allure 3's
`historyPath`), so a nightly job that keeps that file gets trends across runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput, InfraError
from harness.report.categories import categories_json
from harness.report.files import write_report_files

__all__ = ["find_allure", "build_report", "Built", "INSTALL_HINT"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = ("install the Allure 3 CLI (needs Node.js 18+): "
                f"`npm install --prefix {PROJECT_ROOT / '.cache/node'} allure@3`, "
                "or put Allure 3's `allure` on PATH")
GENERATE_TIMEOUT_S = 300


@dataclass(frozen=True)
class Built:
    report_dir: Path
    history_file: Path
    tests: int


def _version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[-1].strip() if out.returncode == 0 and text else None


def find_allure() -> str:
    """The Allure 3 executable: .cache/node (project, then cwd), then PATH; else InfraError."""
    candidates = [PROJECT_ROOT / ".cache/node/node_modules/.bin/allure",
                  Path.cwd() / ".cache/node/node_modules/.bin/allure"]
    on_path = shutil.which("allure")
    found_old = None
    for exe in [*(str(c) for c in candidates if c.is_file()), *([on_path] if on_path else [])]:
        version = _version(exe)
        if version and version.split(".")[0] == "3":
            return exe
        found_old = found_old or (exe, version)
    if found_old:
        raise InfraError(f"{found_old[0]} is Allure {found_old[1] or '(version unknown)'}, "
                         f"not Allure 3; {INSTALL_HINT}")
    raise InfraError(f"no Allure CLI found; {INSTALL_HINT}")


def _count_results(results: Path) -> int:
    return sum(1 for _ in results.glob("*-result.json"))


def _clear_old_report(out: Path) -> None:
    """Remove a previous report at `out` (Allure leaves stale data files behind otherwise);
    refuse to touch a directory that is not one."""
    if not out.exists():
        return
    if out.is_dir() and not any(out.iterdir()):
        return
    if not (out.is_dir() and (out / "index.html").is_file() and (out / "data").is_dir()):
        raise BadInput(f"{out} exists and is not an Allure report; choose another --out "
                       "or remove it")
    shutil.rmtree(out)


def build_report(results: Path, out: Path, *, history: Path | None = None,
                 name: str = "txchaos chaos report") -> Built:
    """Generate `out` from `results`; the history file defaults to `<out>-history.jsonl`."""
    results, out = Path(results).resolve(), Path(out).resolve()
    if not results.is_dir() or _count_results(results) == 0:
        raise BadInput(f"no Allure results in {results}: run the suites with "
                       f"`pytest suites --alluredir {results}` first")
    exe = find_allure()
    _clear_old_report(out)
    history = Path(history).resolve() if history else out.with_name(out.name + "-history.jsonl")
    history.parent.mkdir(parents=True, exist_ok=True)
    if not (results / "categories.json").is_file():
        write_report_files(results)  # results from a session without the txchaos plugin
    config = out.with_name(out.name + "-allurerc.json")
    # Allure 3's own report reads categories from its config; categories.json in the
    # results serves Allure 2 and the classic report.
    config.write_text(json.dumps({"name": name, "output": str(out), "historyPath": str(history),
                                  "categories": categories_json()}, indent=1))
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    try:
        proc = subprocess.run([exe, "generate", str(results), "-o", str(out), "--config",
                               str(config), "--name", name], capture_output=True, text=True,
                              timeout=GENERATE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise InfraError(f"allure generate took over {GENERATE_TIMEOUT_S} s; are the "
                         f"attachments in {results} very large?") from None
    finally:
        config.unlink(missing_ok=True)
    if proc.returncode != 0 or not (out / "index.html").is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise InfraError(f"allure generate failed (exit {proc.returncode}):\n{tail}")
    return Built(out, history, _count_results(results))
