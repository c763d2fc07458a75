"""End to end: a pytest session with --alluredir, `txchaos report`, the page in headless Chromium.

The session has one failing test that attaches a hand-built violated run
(fixture) and one passing test; the rendered report must show the failure's
category, the violated invariant and the payment ids.
Set TXCHAOS_SCREENSHOT=path to also save a screenshot of the failing test's page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.report.allure_cli import find_allure
from tests.report.browser import chromium, render, serve

FIXTURES = Path(__file__).parent / "fixtures"

SESSION = textwrap.dedent('''
    import json
    from pathlib import Path

    import pytest

    from harness.report import AllureObserver, attach_run, failure_message, label_test

    FIXTURES = Path({fixtures!r})


    def _run(run_dir, target, mutant):
        obs = AllureObserver()
        run = json.loads((run_dir / "run.json").read_text())
        label_test(target, "atomicity", "partition", run["seed"], mutant)
        with obs.phase("start target", target=target, broker=run["broker_url"]):
            pass
        with obs.phase("workload", seed=run["seed"]):
            for line in (run_dir / "history.jsonl").read_text().splitlines():
                op = json.loads(line)
                if op["process"] == "nemesis":
                    obs.fault(op["value"], started=op["f"] == "start")
        with obs.phase("heal"):
            pass
        verdict = json.loads((run_dir / "verdict.json").read_text())
        with obs.phase("check"):
            obs.checker(verdict)
        message = failure_message(verdict)
        attach_run(run_dir, failed=message is not None)
        if message:
            pytest.fail(message, pytrace=False)


    def test_atomicity_under_partition_mutant():
        _run(FIXTURES / "fixture-violated-run", "rabbitmq", "commit-on-first-yes")


    def test_atomicity_under_partition():
        _run(FIXTURES / "fixture-valid-run", "rabbitmq", None)


    def test_lab_broken():
        from harness.errors import InfraError
        from harness.report import infrastructure_message
        label_test("rabbitmq", "atomicity", "partition", 42)
        raise InfraError(infrastructure_message("toxiproxy did not answer on 127.0.0.1:8474"))
''')


def _allure_or_skip() -> None:
    try:
        find_allure()
    except InfraError as e:
        pytest.skip(str(e))
    if chromium() is None:
        pytest.skip("chromium is not installed")


def test_failing_run_reads_well_in_the_rendered_report(tmp_path: Path) -> None:
    _allure_or_skip()
    (tmp_path / "test_fixture_session.py").write_text(SESSION.format(fixtures=str(FIXTURES)))
    results, report = tmp_path / "allure-results", tmp_path / "allure-report"
    session = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              f"--alluredir={results}", "test_fixture_session.py"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert session.returncode == 1, session.stdout + session.stderr
    assert "2 failed, 1 passed" in session.stdout
    assert (results / "categories.json").is_file()  # written by the report's session hook
    assert "target=rabbitmq" in (results / "environment.properties").read_text()
    assert not any("guest:guest" in p.read_text(errors="replace")
                   for p in results.iterdir() if p.suffix in (".html", ".json", ".txt", ".svg")
                   and not p.name.endswith("-result.json"))

    raw = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    mutant = next(r for r in raw if r["name"] == "test_atomicity_under_partition_mutant")
    steps = {s["name"]: s for s in mutant["steps"]}
    assert list(steps) == ["start target", "workload", "heal", "check"]
    assert {"name": "broker", "value": "amqp://guest:****@127.0.0.1:35672/"} in \
        steps["start target"]["parameters"]
    faults = [s["name"] for s in steps["workload"]["steps"]]
    assert faults[:2] == ["fault start: partition accounts-b", "fault stop: partition accounts-b"]
    checks = {s["name"]: s["status"] for s in steps["check"]["steps"]}
    assert checks["check atomicity: VIOLATED"] == "failed"
    assert checks["check conservation: valid"] == "passed"

    built = subprocess.run([sys.executable, "-m", "harness", "report", str(results), "--out",
                            str(report)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    assert str(report / "index.html") in built.stdout
    history = report.with_name("allure-report-history.jsonl")
    assert history.is_file() and history.read_text().strip()

    tests = [json.loads(p.read_text()) for p in (report / "data" / "test-results").glob("*.json")]
    failed = [t for t in tests if t.get("status") == "failed"]
    assert len(failed) == 1
    with serve(report, tmp_path) as base:
        url = f"{base}index.html#/{failed[0]['id']}"
        dom = render(url)
        categories = render(f"{base}index.html#/categories")
        shot = os.environ.get("TXCHAOS_SCREENSHOT")
        if shot:
            render(url, screenshot=Path(shot).resolve())
    assert "test_atomicity_under_partition_mutant" in dom
    assert "Atomicity violated" in dom  # its category
    assert "INVARIANT VIOLATED [atomicity]" in dom  # the violated invariant
    assert "pay-000031" in dom and "pay-000044" in dom  # the payment ids
    # the broken lab is filed apart from the product defect
    assert "Atomicity violated" in categories and "Infrastructure error" in categories
    filed = {t["status"]: [c["name"] for c in t.get("categories") or []] for t in tests}
    assert filed == {"failed": ["Atomicity violated"], "broken": ["Infrastructure error"],
                     "passed": []}


def test_report_without_results_says_what_to_do(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "report", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 3
    assert "no Allure results" in out.stderr and "--alluredir" in out.stderr
    assert "Traceback" not in out.stderr
