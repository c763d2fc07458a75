"""Fixtures shared by the suites: the chosen targets and a cache of chaos runs.

One chaos run checks every invariant at once; the suites report one test per
(target, fault family, invariant), so runs are cached per session and each
test reads its own checker's verdict from the shared run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import load_adapter
from harness.errors import TxchaosError
from harness.pytest_plugin import DEFAULT_SEED, option, run_seed, target_options
from harness.run import RunConfig, RunResult, run_chaos
from suites.spread import selected_targets

DEFAULT_DURATION = 15.0


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", selected_targets(metafunc.config))


def _dir_name(key: tuple[Any, ...]) -> str:
    """A readable, unique directory name for a run key."""
    text = "-".join(str(k) for k in key if k)
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


class ChaosRunner:
    """Runs chaos on the session's lab, once per distinct configuration."""

    def __init__(self, lab: Any, config: pytest.Config, base: Path) -> None:
        self.lab = lab
        self.config = config
        self.duration = option(config, "duration")
        self.target_options = target_options(config)
        self.base = base
        self.cache: dict[tuple[Any, ...], RunResult | BaseException] = {}
        self.fresh: set[tuple[Any, ...]] = set()

    def run(self, target: str, *, key: tuple[Any, ...], observer: Any = None,
            duration: float | None = None, **options: Any) -> tuple[RunResult, bool]:
        """The run for `key`, and whether this call made it (True) or reused it."""
        full_key = (target, *key)
        if full_key not in self.cache:
            seed = run_seed(self.config, *full_key)
            name = _dir_name(full_key)
            options.setdefault("cluster", getattr(self.lab, "cluster", 1))  # the session lab's shape
            config = RunConfig(target=target, seed=seed, out=self.base / name,
                               duration=self.duration or duration or DEFAULT_DURATION,
                               target_options=self.target_options, **options)
            try:
                self.cache[full_key] = run_chaos(config, lab=self.lab, observer=observer)
            except TxchaosError as e:
                self.cache[full_key] = e
            made = True
        else:
            made = False
        outcome = self.cache[full_key]
        if isinstance(outcome, BaseException):
            pytest.fail(f"INFRASTRUCTURE: {outcome}", pytrace=False)
        return outcome, made


@pytest.fixture(scope="session")
def chaos_runner(lab: Any, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRunner]:
    base = Path(os.environ.get("TXCHAOS_RUNS_DIR") or tmp_path_factory.mktemp("runs")).resolve()
    runner = ChaosRunner(lab, request.config, base)
    request.config.stash[_RUNNER] = runner
    yield runner


@pytest.fixture
def adapter_class(target: str) -> type:
    try:
        return load_adapter(target)
    except TxchaosError as e:
        pytest.fail(f"INFRASTRUCTURE: {e}", pytrace=False)


_MATRIX = pytest.StashKey[dict[tuple[str, str], dict[str, Any]]]()
_RUNNER = pytest.StashKey[ChaosRunner]()


@pytest.fixture(scope="session")
def detection_matrix(chaos_runner: ChaosRunner, request: pytest.FixtureRequest
                     ) -> Iterator[dict[tuple[str, str], dict[str, Any]]]:
    matrix = request.config.stash.setdefault(_MATRIX, {})
    yield matrix
    if matrix:
        path = Path(os.environ.get("TXCHAOS_SELFTEST_MATRIX", chaos_runner.base / "selftest-matrix.json"))
        rows = [{"mutant": m, "target": t, **cell} for (m, t), cell in sorted(matrix.items())]
        path.write_text(json.dumps(rows, indent=1))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runner = config.stash.get(_RUNNER, None)
    if runner is not None and runner.cache:
        seed = option(config, "seed")
        terminalreporter.write_sep("=", f"txchaos runs (session seed {DEFAULT_SEED if seed is None else seed})")
        for key, outcome in runner.cache.items():
            what = (f"seed {outcome.seed}: {'VALID' if outcome.valid is True else outcome.valid}"
                    if isinstance(outcome, RunResult) else f"INFRASTRUCTURE: {outcome}")
            terminalreporter.write_line(f"{'/'.join(str(k) for k in key if k)}: {what}")
    matrix = config.stash.get(_MATRIX, None)
    if matrix:
        from suites.matrix import format_matrix

        terminalreporter.write_sep("=", "txchaos detection matrix (mutant x target)")
        terminalreporter.write_line(format_matrix(matrix))
