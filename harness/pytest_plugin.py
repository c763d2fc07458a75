"""The txchaos pytest plugin: options, markers and fixtures, registered in one place.

Loaded through the `pytest11` entry point, so `pytest suites --target=kafka`
works from any directory once txchaos is installed.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# Allure report files (environment, categories, executor) at session end.
pytest_plugins = ["harness.report.pytest_hooks"]

MARKERS = {
    "quick": "short chaos runs (about a minute of chaos in all) for every CI run",
    "chaos": "chaos runs against a real target under faults",
    "nightly": "long randomized chaos campaigns; not part of the default run",
    "crashpoints": "crashes at named 2PC failpoints",
    "selftest": "proves txchaos catches every seeded bug (mutant) of the reference targets",
    "docker": "needs a Docker engine (a private dockerd the tests start from docker.io)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("txchaos", "txchaos chaos testing")
    group.addoption("--target", action="append", default=None, metavar="NAME",
                    help="target system(s): rabbitmq, kafka, nats, all, an entry point "
                         "name or module:Class (repeatable, or comma-separated)")
    group.addoption("--seed", type=int, default=None, help="seed for workloads and fault schedules")
    group.addoption("--chaos-duration", type=float, default=None, metavar="SECONDS",
                    help="seconds of chaos per run")
    group.addoption("--faults", default=None, metavar="F1,F2",
                    help="fault families to inject (see `txchaos run --help`)")
    group.addoption("--lab", default="local", metavar="local|external|FILE",
                    help="local: start brokers and Toxiproxy here; external: use the "
                         "TXCHAOS_* environment variables; or a lab config file")
    group.addoption("--txchaos-target-opt", action="append", default=None, metavar="KEY=VALUE",
                    help="an option of the target's adapter (repeatable); adds to the "
                         "txchaos_target_opt ini lines")
    parser.addini("txchaos_target_opt", "options of the target's adapter, one KEY=VALUE a line",
                  type="linelist", default=[])


def target_options(config: pytest.Config) -> dict[str, str]:
    """--txchaos-target-opt over the txchaos_target_opt ini lines, as a dict."""
    from adapters.registry import parse_options

    return parse_options([*config.getini("txchaos_target_opt"),
                          *(config.getoption("--txchaos-target-opt", None) or [])],
                         flag="--txchaos-target-opt")


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    _check_options(config)
    # SIGTERM (CI timeouts, `kill`) must unwind like Ctrl-C so faults heal.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def _check_options(config: pytest.Config) -> None:
    """Bad --faults or --target values are usage errors, before anything starts."""
    from harness.errors import BadInput

    try:
        target_options(config)
    except BadInput as e:
        raise pytest.UsageError(str(e)) from None
    faults = config.getoption("--faults", None)
    if faults:
        from faults.catalog import family

        for name in faults.split(","):
            if name.strip():
                try:
                    family(name.strip())
                except BadInput as e:
                    raise pytest.UsageError(f"--faults: {e}") from None
    for item in config.getoption("--target", None) or []:
        from adapters.registry import load_adapter

        for name in item.split(","):
            if name.strip() and name.strip() != "all":
                try:
                    load_adapter(name.strip())
                except BadInput as e:
                    raise pytest.UsageError(f"--target: {e}") from None


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One lab for the whole session; services start lazily on `lab.ensure(...)`."""
    from harness.lab import Lab

    root = Path(tmp_path_factory.mktemp("lab"))
    the_lab = Lab.from_option(request.config.getoption("--lab"), root=root)
    try:
        yield the_lab
    finally:
        the_lab.down()
