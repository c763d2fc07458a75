"""Hypothesis runs derandomized: the same examples every run, so CI is deterministic."""

from hypothesis import settings

settings.register_profile("txchaos-deterministic", derandomize=True, print_blob=True)
settings.load_profile("txchaos-deterministic")

pytest_plugins = ["pytester"]
