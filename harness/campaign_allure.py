"""Allure results for the runs of a campaign or a shrink, one test per checker per run.

`harness.report.standalone.write_results` gives every run of the same target,
faults and mutant the same history id, and Allure files results that share a
history id as retries of one test, showing only the latest: a violated run
followed by a valid one would read as passed. So each run's results get a
history id of their own here (the old one plus a key such as the run's seed),
and a visible parameter that says which run they are.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

__all__ = ["write_run_results"]


def write_run_results(run_dir: Path, alluredir: Path, *, key: str, label: str,
                      info: dict[str, Any] | None = None,
                      attachment: tuple[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write `run_dir`'s results into `alluredir`, made distinct by `key` (shown as `label`),
    with an optional JSON `attachment` (name, body) on each; returns the result files."""
    from harness.report.standalone import write_results

    written = write_results(Path(run_dir), Path(alluredir), info=info)
    source = None
    if attachment is not None:
        source = f"{uuid.uuid4()}-attachment.json"
        (Path(alluredir) / source).write_text(json.dumps(attachment[1], indent=1))
    for path in written:
        result = json.loads(path.read_text())
        old = str(result.get("historyId", ""))
        result["historyId"] = hashlib.md5(f"{old}\x1f{key}".encode()).hexdigest()
        result.setdefault("parameters", []).append({"name": "run", "value": label})
        if source is not None and attachment is not None:
            result.setdefault("attachments", []).insert(
                0, {"name": attachment[0], "source": source, "type": "application/json"})
        path.write_text(json.dumps(result))
    return written
