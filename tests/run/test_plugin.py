"""The pytest plugin behaves in someone else's project: prefixed options with ini
twins, short spellings only when free, nothing done until used, nightly
deselected unless asked for, capability requirements as a marker."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

_PROBE = """
import signal
import pytest
from harness.pytest_plugin import option, run_seed

def test_probe(request):
    config = request.config
    handler = signal.getsignal(signal.SIGTERM)
    print("SIGTERM-DEFAULT", handler in (signal.SIG_DFL, None))
    print("SEED", option(config, "seed"), run_seed(config, "a"), run_seed(config, "b"))

@pytest.mark.nightly
def test_long():
    pass
"""


def test_nothing_happens_until_used_and_nightly_is_deselected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=_PROBE)
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*SIGTERM-DEFAULT True*"])
    asked = pytester.runpytest_subprocess("-s", "-m", "nightly")
    asked.assert_outcomes(passed=1, deselected=1)


def test_seeds_are_fixed_and_come_from_option_or_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=_PROBE)
    first = pytester.runpytest_subprocess("-s", "-k", "probe")
    again = pytester.runpytest_subprocess("-s", "-k", "probe")
    line = [x for x in first.outlines if x.startswith("SEED")]
    assert line and line == [x for x in again.outlines if x.startswith("SEED")]
    _, session, a, b = line[0].split()
    assert session == "None" and a != b  # default session seed, a different seed per run
    pytester.makeini("[pytest]\ntxchaos_seed = 77\n")
    ini = pytester.runpytest_subprocess("-s", "-k", "probe")
    ini.stdout.fnmatch_lines(["SEED 77 *"])
    cli = pytester.runpytest_subprocess("-s", "-k", "probe", "--txchaos-seed", "5")
    cli.stdout.fnmatch_lines(["SEED 5 *"])
    assert [x for x in cli.outlines if x.startswith("SEED")] != line


def test_short_spelling_is_left_to_the_project(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
def pytest_addoption(parser):
    parser.addoption("--target", default="theirs")
""")
    pytester.makepyfile(test_x="""
from harness.pytest_plugin import option

def test_x(request):
    assert request.config.getoption("--target") == "theirs"
    assert option(request.config, "target") == ["nats"]
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--txchaos-target", "nats")
    if "already added" in result.stderr.str():
        pytest.fail("the plugin took --target although a conftest defines it: " + result.stderr.str())
    result.assert_outcomes(passed=1)


def test_bad_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--txchaos-target", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--txchaos-target: unknown target 'nope'*"])


def test_requires_marker_skips_targets_without_the_capability(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest

def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", ["nats"])
""")
    pytester.makepyfile(test_x="""
import pytest

@pytest.mark.txchaos_requires("failpoints")
def test_has(target):
    pass

@pytest.mark.txchaos_requires("no-such-capability")
def test_lacks(target):
    pass
""")
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*nats does not offer no-such-capability*"])
