"""The Python adapter of docs/adapters.md is complete: loaded by module:Class, it passes a chaos run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = 11


def test_docs_python_adapter_runs(tmp_path: Path, gopay: Path) -> None:
    text = (REPO / "docs" / "adapters.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(code) == 1, "docs/adapters.md should hold exactly one Python example"
    (tmp_path / "gopay_adapter.py").write_text(code[0])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", "gopay_adapter:GoPayments",
         "--target-opt", f"gopay={gopay}", "--duration", "8", "--seed", str(SEED),
         "--faults", "kill,partition", "--intensity", "0.6", "--quiet", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "verdict: VALID" in out and " 0 ok," not in out, out
    assert '"fault"' in (tmp_path / "run" / "history.jsonl").read_text(), "no fault was injected"
