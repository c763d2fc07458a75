"""pytest hooks of the report: write the session-wide Allure files when --alluredir is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.files import noted_runs, write_report_files


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    alluredir = config.getoption("allure_report_dir", default=None)
    if not alluredir or hasattr(config, "workerinput"):
        return  # no Allure output, or an xdist worker (the controller writes them)
    from harness.pytest_plugin import option

    info = {"option.target": option(config, "target"), "option.seed": option(config, "seed"),
            "option.faults": option(config, "faults")}
    write_report_files(Path(alluredir), noted_runs(), info)
