"""The examples in docs/formats.md are real: they load and check as the docs say."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.checkers import CheckOptions, check_all
from harness.history import load_history, load_state

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def _blocks() -> list[str]:
    return re.findall(r"```(?:json)?\n(.*?)```", DOC.read_text(), re.S)


def test_formats_examples_are_valid(tmp_path: Path) -> None:
    blocks = _blocks()
    history = next(b for b in blocks if b.startswith('{"index":0'))
    state = next(b for b in blocks if b.startswith('{"initial_balances"'))
    (tmp_path / "h.jsonl").write_text(history)
    (tmp_path / "s.json").write_text(state)
    report = check_all(load_history(tmp_path / "h.jsonl"), load_state(tmp_path / "s.json"),
                       CheckOptions(snapshot_reads=True))
    assert report.valid is True, report.to_json()
    verdict = json.loads(next(b for b in blocks if b.startswith('{"valid"')))
    assert set(verdict["checkers"][0]) == {"name", "valid", "summary", "evidence"}
