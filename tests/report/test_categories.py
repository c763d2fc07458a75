"""Failure messages land in the right Allure category; defects and lab trouble never mix."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.categories import (CATEGORIES, INVARIANTS, categories_json, classify,
                                       failure_message, infrastructure_message, unknown_message,
                                       violation_message)

EXPECTED = {
    "atomicity": "Atomicity violated",
    "client-agreement": "Payment lost",
    "exactly-once": "Applied twice",
    "conservation": "Money not conserved",
    "no-negative": "Negative balance",
    "resolution": "Stuck in doubt",
}
PREFIXES = ["", "AssertionError: ", "Failed: ", "harness.errors.BadInput: "]


@pytest.mark.parametrize("invariant", INVARIANTS)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_violation_lands_in_its_category(invariant: str, prefix: str) -> None:
    msg = prefix + violation_message(invariant, "2 payments; mentions INFRASTRUCTURE: too")
    assert classify(msg, "failed") == EXPECTED[invariant]


@pytest.mark.parametrize("prefix", PREFIXES + ["harness.errors.InfraError: "])
@pytest.mark.parametrize("status", ["broken", "failed"])
def test_infrastructure_lands_in_infrastructure(prefix: str, status: str) -> None:
    msg = prefix + infrastructure_message("rabbitmq did not start; INVARIANT VIOLATED [atomicity]: x")
    assert classify(msg, status) == "Infrastructure error"


def test_infra_error_class_without_prefix_is_infrastructure() -> None:
    assert classify("harness.errors.InfraError: toxiproxy unreachable", "broken") == "Infrastructure error"


def test_other_failures_are_not_filed_under_txchaos_categories() -> None:
    assert classify("AssertionError: assert 1 == 2", "failed") is None
    assert classify("ValueError: INVARIANT VIOLATED [atomicity] without the colon", "failed") is None
    assert classify("AssertionError: see INVARIANT VIOLATED [atomicity]: not first", "failed") is None


def test_aliases_canonicalise() -> None:
    assert violation_message("exactly_once", "x").startswith("INVARIANT VIOLATED [exactly-once]")
    assert unknown_message("liveness", "x") == "INVARIANT UNKNOWN [resolution]: x"
    assert classify(unknown_message("atomicity", "state unreadable"), "failed") == "Verdict unknown"


def test_failure_message_from_verdict(violated_run_dir: Path, valid_run_dir: Path) -> None:
    verdict = json.loads((violated_run_dir / "verdict.json").read_text())
    msg = failure_message(verdict)
    assert msg is not None
    first, *rest = msg.splitlines()
    assert classify("Failed: " + msg) == "Atomicity violated"
    assert "pay-000031" in first
    assert any("[exactly-once]" in line and "pay-000044" in line for line in rest)
    assert failure_message(json.loads((valid_run_dir / "verdict.json").read_text())) is None


def test_categories_json_is_well_formed() -> None:
    cats = categories_json()
    assert [c["name"] for c in cats] == [c.name for c in CATEGORIES]
    for c in cats:
        re.compile(c["messageRegex"])
        assert c["matchedStatuses"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to check JavaScript regexes")
def test_patterns_match_the_same_in_javascript() -> None:
    """Allure 3 matches with JavaScript RegExp: the categories must behave the same there."""
    samples = [("Failed: " + violation_message(i, "x"), "failed") for i in INVARIANTS]
    samples += [("harness.errors.InfraError: " + infrastructure_message("x"), "broken")]
    script = (
        "const cats=JSON.parse(process.argv[1]);const s=JSON.parse(process.argv[2]);"
        "console.log(JSON.stringify(s.map(([m,st])=>{const c=cats.find(c=>"
        "c.matchedStatuses.includes(st)&&new RegExp(c.messageRegex).test(m));"
        "return c?c.name:null})))")
    out = subprocess.run(["node", "-e", script, json.dumps(categories_json()), json.dumps(samples)],
                         capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == [classify(m, st) for m, st in samples]
