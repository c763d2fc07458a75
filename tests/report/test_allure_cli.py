"""`txchaos report` input checks: missing CLI, missing results, an --out that is not a report."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadInput, InfraError
from harness.report import allure_cli


def test_missing_allure_cli_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allure_cli, "PROJECT_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InfraError, match="npm install --prefix .*allure@3"):
        allure_cli.find_allure()


def test_old_allure_on_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "allure"  # a stand-in Allure 2 launcher: prints its version only
    fake.write_text("#!/bin/sh\necho 2.30.0\n")
    fake.chmod(0o755)
    monkeypatch.setattr(allure_cli, "PROJECT_ROOT", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InfraError, match="is Allure 2.30.0, not Allure 3"):
        allure_cli.find_allure()


def test_no_results_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "res").mkdir()
    with pytest.raises(BadInput, match="no Allure results"):
        allure_cli.build_report(tmp_path / "res", tmp_path / "out")


def test_out_that_is_not_a_report_is_never_removed(tmp_path: Path) -> None:
    out = tmp_path / "mydata"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    with pytest.raises(BadInput, match="not an Allure report"):
        allure_cli._clear_old_report(out)
    assert (out / "precious.txt").read_text() == "keep"
