"""The txchaos pytest plugin: options, markers and fixtures, registered in one place.

Loaded through the `pytest11` entry point wherever txchaos is installed, so it
must behave in someone else's project: every option is prefixed
(`--txchaos-target`, ...) with an ini twin (`txchaos_target`, ...); the short
spellings (`--target`, ...) only where a project asks for them in its conftest
(`add_short_options`, as txchaos's own root conftest.py does);
nothing happens (no signal handler, no lab) until a txchaos fixture is used;
`nightly` tests are deselected unless `-m` asks for them; session state lives in
`config.stash`.
"""

from __future__ import annotations

import signal
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Allure report files (environment, categories, executor) at session end.
pytest_plugins = ["harness.report.pytest_hooks"]

__all__ = ["option", "run_seed", "add_short_options", "target_options", "DEFAULT_SEED"]

DEFAULT_SEED = 1  # CI is deterministic: a session without --txchaos-seed uses this one

MARKERS = {
    "quick": "short chaos runs (about a minute of chaos in all) for every CI run",
    "chaos": "chaos runs against a real target under faults",
    "nightly": "long chaos campaigns; deselected unless -m names nightly",
    "crashpoints": "crashes at named 2PC failpoints",
    "selftest": "proves txchaos catches every seeded bug (mutant) of the reference targets",
    "spread": "with several targets, each case runs on one target in turn by default, the rest nightly",
    "docker": "needs a Docker engine (a private dockerd the tests start from docker.io)",
    "txchaos_requires(*capabilities)": "skip for targets whose adapter lacks these capabilities "
                                       "(e.g. failpoints, mutants, read)",
}


@dataclass(frozen=True)
class _Option:
    name: str          # --txchaos-<name>, ini txchaos_<name with _>
    alias: str | None  # short spelling, for projects that add_short_options()
    help: str
    type: Any = str
    metavar: str | None = None
    append: bool = False


OPTIONS = [
    _Option("target", "--target", "target system(s): rabbitmq, kafka, nats, all, an entry point "
            "name, module:Class (repeatable, or comma-separated)", append=True, metavar="NAME"),
    _Option("seed", "--seed", f"session seed; each run's seed derives from it and the run's name "
            f"(default {DEFAULT_SEED})", type=int),
    _Option("duration", "--chaos-duration", "seconds of chaos per run", type=float, metavar="SECONDS"),
    _Option("faults", "--faults", "fault families to inject (see `txchaos run --help`)", metavar="F1,F2"),
    _Option("lab", "--lab", "local: start brokers and Toxiproxy here; external: use the TXCHAOS_* "
            "environment variables; or a lab config file", metavar="local|external|FILE"),
    _Option("cluster", "--cluster", "nodes per broker in a local lab: 1, or 3 as a cluster (NATS, "
            "Kafka; docs/clusters.md)", type=int, metavar="N"),
    _Option("target-opt", None, "an option of the target's adapter (repeatable; in the ini, one a "
            "line)", append=True, metavar="KEY=VALUE"),
]


def _kwargs(opt: _Option, help: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dest": _dest(opt.name), "default": None, "help": help,
                              "metavar": opt.metavar}
    if opt.append:
        kwargs["action"] = "append"
    else:
        kwargs["type"] = opt.type
    return kwargs


def _dest(name: str) -> str:
    return f"txchaos_{name.replace('-', '_')}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("txchaos", "txchaos chaos testing")
    for opt in OPTIONS:
        group.addoption(f"--txchaos-{opt.name}", **_kwargs(opt, opt.help))
        parser.addini(_dest(opt.name), f"{opt.help} (ini twin of --txchaos-{opt.name})",
                      default=None)


def add_short_options(parser: pytest.Parser) -> None:
    """`--target`, `--seed`, `--chaos-duration`, `--faults`, `--lab` as spellings of the
    `--txchaos-*` options, for a project's conftest.py that knows they are free."""
    group = parser.getgroup("txchaos")
    for opt in OPTIONS:
        if opt.alias:
            group.addoption(opt.alias, **_kwargs(opt, f"same as --txchaos-{opt.name}"))


def option(config: pytest.Config, name: str) -> Any:
    """A txchaos option: the command line, else its ini twin, else None."""
    spec = next(o for o in OPTIONS if o.name == name)
    value = config.getoption(_dest(name), None)
    if value is None:
        raw = config.getini(_dest(name))
        if raw not in (None, "", []):
            value = [str(raw)] if spec.append else spec.type(raw)
    return value


def run_seed(config: pytest.Config, *key: Any) -> int:
    """The seed of the run named `key`: fixed by the session seed, different per run."""
    session = option(config, "seed")
    session = DEFAULT_SEED if session is None else session
    return zlib.crc32(repr((session, *key)).encode()) % (2**31 - 1) + 1


def target_options(config: pytest.Config) -> dict[str, str]:
    """--txchaos-target-opt KEY=VALUE (or the txchaos_target_opt ini lines) as a dict."""
    from adapters.registry import parse_options

    items = [line.strip() for item in option(config, "target-opt") or [] for line in item.splitlines()]
    return parse_options([i for i in items if i], flag="--txchaos-target-opt")


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    _check_options(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _used(config):
        return None
    seed = option(config, "seed")
    return (f"txchaos: session seed {DEFAULT_SEED if seed is None else seed}"
            f"{' (default)' if seed is None else ''}; each run prints its own seed and replay command")


def _used(config: pytest.Config) -> bool:
    return any(config.getoption(_dest(o.name), None) is not None for o in OPTIONS)


def _check_options(config: pytest.Config) -> None:
    """Bad faults or targets are usage errors, before anything starts."""
    from harness.errors import BadInput

    try:
        target_options(config)
    except BadInput as e:
        raise pytest.UsageError(str(e)) from None
    faults = option(config, "faults")
    if faults:
        from faults.catalog import family

        for name in faults.split(","):
            if name.strip():
                try:
                    family(name.strip())
                except BadInput as e:
                    raise pytest.UsageError(f"--txchaos-faults: {e}") from None
    for item in option(config, "target") or []:
        from adapters.registry import load_adapter

        for name in item.split(","):
            if name.strip() and name.strip() != "all":
                try:
                    load_adapter(name.strip())
                except BadInput as e:
                    raise pytest.UsageError(f"--txchaos-target: {e}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect nightly tests unless the -m expression names them."""
    if "nightly" in (config.getoption("markexpr", "") or ""):
        return
    keep = [i for i in items if i.get_closest_marker("nightly") is None]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`txchaos_requires(cap, ...)`: skip unless the item's target offers every capability."""
    marker = item.get_closest_marker("txchaos_requires")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None or "target" not in callspec.params:
        return
    from adapters.registry import load_adapter

    target = callspec.params["target"]
    cls = load_adapter(target)
    missing = [c for c in marker.args if c not in cls.capabilities]
    if missing:
        pytest.skip(f"{target} does not offer {', '.join(missing)}")


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


_PREVIOUS_SIGTERM = pytest.StashKey[Any]()


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One lab for the whole session; services start lazily on `lab.ensure(...)`.

    While it lives, SIGTERM (CI timeouts, `kill`) unwinds like Ctrl-C so faults heal.
    """
    from harness.lab import Lab

    config = request.config
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    root = Path(tmp_path_factory.mktemp("lab"))
    the_lab = Lab.from_option(option(config, "lab") or "local", root=root,
                              cluster=int(option(config, "cluster") or 1))
    try:
        yield the_lab
    finally:
        try:
            the_lab.down()
        finally:
            if _PREVIOUS_SIGTERM in config.stash:
                signal.signal(signal.SIGTERM, config.stash[_PREVIOUS_SIGTERM] or signal.SIG_DFL)
