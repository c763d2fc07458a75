"""Which targets a session runs on, and how a `spread` test's cases share them out.

Hooked from the root conftest, so it applies to every test of the project: a suite's
cases over its `target`, a reference-target test's over its `broker`.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from harness.pytest_plugin import option

__all__ = ["ALL", "pytest_collection_modifyitems", "selected_targets"]

# `--target all`: the reference payment system on every broker. Other built-in targets
# (kafka-eos-py, kafka-eos-java) are named explicitly; tests/kafka_eos covers them.
ALL = ("rabbitmq", "kafka", "nats")


def selected_targets(config: pytest.Config) -> list[str]:
    """The targets the session runs on: --target (or $TXCHAOS_TARGETS), "all" expanded."""
    raw = option(config, "target") or [os.environ.get("TXCHAOS_TARGETS", "all")]
    names: list[str] = []
    for item in raw:
        for name in item.split(","):
            name = name.strip()
            if name == "all":
                names.extend(n for n in ALL if n not in names)
            elif name and name not in names:
                names.append(name)
    return names


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `spread` runs each of its cases (its parameters other than the target,
    e.g. the self-test's mutant; `spread("family")`: that parameter only) on one target in
    turn, so every case and every target is proven in a default run; the other (case,
    target) pairs are nightly. The target is the `target` parameter (the session's
    targets, when several) or a reference-target test's `broker` (every broker)."""
    over = {"target": selected_targets(config), "broker": list(ALL)}
    spread = [(i, key) for i in items if i.get_closest_marker("spread") is not None
              and (key := _over(i)) is not None and len(over[key]) > 1]
    cases: dict[str, list[str]] = {}
    for item, _ in spread:
        cases.setdefault(_name(item), []).append(_case(item))
    for item, key in spread:
        own, targets = sorted(set(cases[_name(item)])), over[key]
        if targets[own.index(_case(item)) % len(targets)] != _params(item)[key]:
            item.add_marker(pytest.mark.nightly)


def _over(item: pytest.Item) -> str | None:
    """The parameter a spread test's cases rotate over."""
    return next((k for k in ("target", "broker") if k in _params(item)), None)


def _name(item: pytest.Item) -> str:
    return getattr(item, "originalname", item.name)


def _params(item: pytest.Item) -> dict[str, Any]:
    return getattr(getattr(item, "callspec", None), "params", {})


def _case(item: pytest.Item) -> str:
    marker = item.get_closest_marker("spread")
    keys = set(marker.args) if marker is not None and marker.args else set(_params(item)) - {"target", "broker"}
    return repr(sorted((k, str(v)) for k, v in _params(item).items() if k in keys))
