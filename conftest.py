"""Root conftest: the txchaos plugin itself loads through its pytest11 entry point.

In this project the short spellings (--target, --seed, --chaos-duration, --faults,
--lab) are free, so they stand for the --txchaos-* options.
"""

from harness.pytest_plugin import add_short_options
from suites.spread import pytest_collection_modifyitems  # noqa: F401  (a hook)


def pytest_addoption(parser):
    add_short_options(parser)
