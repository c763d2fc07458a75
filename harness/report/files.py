"""Allure report files the allure-pytest plugin does not write: environment, categories, executor.

They describe the session as a whole (which target and broker versions, which
seed, which commit), and the categories file is what files each failure under
"Atomicity violated" or "Infrastructure error" rather than a generic defect.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from harness.report.categories import categories_json
from harness.report.rundir import load_run
from harness.report.secrets import mask

__all__ = ["write_report_files", "note_run", "noted_runs", "environment", "git_revision"]

_NOTED: list[Path] = []


def note_run(run_dir: Path) -> None:
    """Remember a run directory attached in this session, for environment.properties."""
    p = Path(run_dir).resolve()
    if p not in _NOTED:
        _NOTED.append(p)


def noted_runs() -> list[Path]:
    return list(_NOTED)


def git_revision(cwd: Path | None = None) -> str:
    """The commit of the checkout at `cwd`, else of txchaos itself ('-dirty' when it has
    local changes), or 'unknown'."""
    if cwd is None:
        here = _revision(None)
        return here if here != "unknown" else _revision(Path(__file__).resolve().parents[2])
    return _revision(cwd)


def _revision(cwd: Path | None) -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd,
                             capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _join(values: list[Any]) -> str:
    seen = [str(v) for v in dict.fromkeys(v for v in values if v not in (None, "", []))]
    if len(seen) > 8:
        return ", ".join(seen[:8]) + f" (+{len(seen) - 8} more)"
    return ", ".join(seen)


def environment(run_dirs: list[Path], info: dict[str, Any] | None = None) -> dict[str, str]:
    """Key/value pairs for environment.properties from the runs' run.json plus `info`."""
    runs = []
    for d in run_dirs:
        try:
            runs.append(load_run(d).run)
        except Exception:  # noqa: BLE001 - a broken run dir still leaves the others
            continue
    env: dict[str, str] = {}
    env["target"] = _join([r.get("target") for r in runs])
    env["seed"] = _join([r.get("seed") for r in runs])
    env["mutant"] = _join([r.get("mutant") for r in runs])
    versions: dict[str, list[Any]] = {}
    for r in runs:
        for k, v in (r.get("versions") or {}).items():
            versions.setdefault(k, []).append(v)
    for k, vs in sorted(versions.items()):
        env[f"{k}.version"] = _join(vs)
    env["runs"] = str(len(runs)) if runs else ""
    for k, v in (info or {}).items():
        if v not in (None, "", []):
            env[k] = _join(v) if isinstance(v, (list, tuple)) else str(v)
    env.setdefault("git.revision", git_revision())
    return {k: mask(v) for k, v in env.items() if v}


def _properties(env: dict[str, str]) -> str:
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")
    return "".join(f"{esc(k)}={esc(v)}\n" for k, v in env.items())


def _executor() -> dict[str, Any]:
    """Who built this: a CI job when the usual CI variables say so, else a local run."""
    e = os.environ
    if e.get("GITHUB_RUN_ID"):
        url = f"{e.get('GITHUB_SERVER_URL', '')}/{e.get('GITHUB_REPOSITORY', '')}/actions/runs/{e['GITHUB_RUN_ID']}"
        return {"name": "GitHub Actions", "type": "github", "buildName": f"run {e['GITHUB_RUN_ID']}",
                "buildUrl": url, "reportName": "txchaos"}
    if e.get("CI_JOB_ID"):
        return {"name": "GitLab CI", "type": "gitlab", "buildName": f"job {e['CI_JOB_ID']}",
                "buildUrl": e.get("CI_JOB_URL", ""), "reportName": "txchaos"}
    if e.get("BUILD_NUMBER"):
        return {"name": "Jenkins", "type": "jenkins", "buildName": f"build {e['BUILD_NUMBER']}",
                "buildUrl": e.get("BUILD_URL", ""), "reportName": "txchaos"}
    return {"name": "local", "type": "local", "buildName": f"txchaos @ {git_revision()}",
            "reportName": "txchaos"}


def write_report_files(results_dir: Path, run_dirs: list[Path] | None = None,
                       info: dict[str, Any] | None = None) -> list[Path]:
    """Write environment.properties, categories.json and executor.json into `results_dir`."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    runs = list(run_dirs) if run_dirs is not None else noted_runs()
    out = {
        "environment.properties": _properties(environment(runs, info)),
        "categories.json": json.dumps(categories_json(), indent=1) + "\n",
        "executor.json": json.dumps({k: mask(v) for k, v in _executor().items()}, indent=1) + "\n",
    }
    paths = []
    for name, text in out.items():
        p = results_dir / name
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
