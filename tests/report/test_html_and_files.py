"""Verdict/evidence HTML, secret masking, bounded attachments and the session-wide report files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.report.bounded import GZIP_ABOVE, cap_text, maybe_gzip, tail_lines
from harness.report.files import environment, write_report_files
from harness.report.html import evidence_html, verdict_html
from harness.report.rundir import load_run
from harness.report.secrets import mask, mask_obj


def test_verdict_table_names_each_checker(violated_run_dir: Path) -> None:
    html = verdict_html(load_run(violated_run_dir))
    assert html.count("<tr>") == 1 + 6
    assert html.count("VIOLATED") == 3  # overall + atomicity + exactly-once
    assert "txchaos run --target rabbitmq --seed 42" in html
    assert "guest:guest" not in html


def test_evidence_shows_payment_states_and_history(violated_run_dir: Path) -> None:
    run = load_run(violated_run_dir)
    atomicity = next(c for c in run.violated if c["name"] == "atomicity")
    html = evidence_html(run, atomicity)
    assert "pay-000031" in html
    for participant, state in (("accounts-a", "committed"), ("accounts-b", "aborted"),
                               ("notifications", "prepared")):
        assert f"<td>{participant}</td><td>{state}</td>" in html
    assert "decision: commit" in html
    assert "&quot;id&quot;: &quot;pay-000031&quot;" in html  # the history slice
    twice = evidence_html(run, next(c for c in run.violated if c["name"] == "exactly-once"))
    assert "<td class='v-false'>2</td>" in twice


def test_evidence_is_capped() -> None:
    run = load_run(Path(__file__).parent / "fixtures" / "fixture-violated-run")
    many = {"name": "atomicity", "valid": False, "summary": "lots", "evidence": {"split": {
        "count": 500, "examples": [{"payment": f"pay-{i:06d}"} for i in range(500)]}}}
    html = evidence_html(run, many)
    assert "[showing the first 10 of 500" in html
    assert html.count("<h4>") == 10


@pytest.mark.parametrize("secret,hidden", [
    ("amqp://guest:guest@127.0.0.1:5672/", "guest@"),
    ("nats://user:s3cr3t@127.0.0.1:4222", "s3cr3t"),
    ("admin token=abc123def", "abc123def"),
    ('{"password": "hunter2"}', "hunter2"),
    ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
])
def test_secrets_are_masked(secret: str, hidden: str) -> None:
    assert hidden not in mask(secret)
    assert "****" in mask(secret)


def test_plain_text_is_left_alone() -> None:
    text = "pay-000031 committed at accounts-a; http://127.0.0.1:8474/proxies"
    assert mask(text) == text
    assert mask_obj({"admin_token": "x", "n": 3, "urls": ["amqp://a:b@h"]}) == \
        {"admin_token": "****", "n": 3, "urls": ["amqp://a:****@h"]}


def test_cap_text_and_tail_say_what_was_cut(tmp_path: Path) -> None:
    capped = cap_text("x" * 5000, 1000)
    assert len(capped) < 1200 and "[cut: showing the first 1000 of 5000 bytes" in capped
    log = tmp_path / "svc.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = tail_lines(log, lines=50)
    assert tail.startswith("[last 50 lines of svc.log") and "line 999" in tail and "line 949" not in tail


def test_large_history_is_gzipped(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text('{"index": 0}\n')
    assert maybe_gzip(small)[1] is False
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"index": i, "pad": "x" * 100}) + "\n" for i in range(4000)))
    body, gz, _ = maybe_gzip(big)
    assert gz and big.stat().st_size > GZIP_ABOVE and len(body) < big.stat().st_size / 5
    assert gzip.decompress(body) == big.read_bytes()


def test_report_files(tmp_path: Path, violated_run_dir: Path, valid_run_dir: Path) -> None:
    paths = write_report_files(tmp_path, [violated_run_dir, valid_run_dir], {"option.seed": 42})
    assert sorted(p.name for p in paths) == ["categories.json", "environment.properties", "executor.json"]
    props = (tmp_path / "environment.properties").read_text()
    for line in ("target=rabbitmq", "seed=42", "rabbitmq.version=3.10.8", "toxiproxy.version=2.12.0",
                 "option.seed=42"):
        assert line in props.splitlines()
    assert "git.revision=" in props
    cats = json.loads((tmp_path / "categories.json").read_text())
    assert "Infrastructure error" in [c["name"] for c in cats]
    assert json.loads((tmp_path / "executor.json").read_text())["name"]


def test_environment_masks_secrets() -> None:
    env = environment([], {"broker": "amqp://guest:guest@127.0.0.1/"})
    assert env["broker"] == "amqp://guest:****@127.0.0.1/"


def test_broken_run_files_are_bad_input(tmp_path: Path) -> None:
    (tmp_path / "verdict.json").write_text("{not json")
    with pytest.raises(BadInput, match="verdict.json"):
        load_run(tmp_path)
    with pytest.raises(BadInput, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "verdict.json").unlink()
    (tmp_path / "history.jsonl").write_text('{"index": 0}\n{"index": 1, "ti')  # torn last line
    run = load_run(tmp_path)
    assert len(run.history) == 1 and "verdict.json" in run.missing
