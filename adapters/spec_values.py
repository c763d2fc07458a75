"""The values a target spec is read into (adapters/spec_schema.py reads and checks them).

Plain frozen data: what to start, how to submit and classify a payment, how to
read state, failpoints and mutants. Templates keep their {placeholders} until
adapters/spec.py fills them at start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model import Outcome

__all__ = ["BROKERS", "FAILPOINT_VARS", "RESULTS", "ROLES", "SERVICE_VARS", "SUBMIT_VARS", "FailpointSpec",
           "ImageSpec", "ReadSpec", "Request", "Rule", "ServiceSpec", "SubmitSpec", "TargetSpec", "Template"]

BROKERS = ("rabbitmq", "kafka", "nats")
ROLES = ("coordinator", "participant")
RESULTS = {"ok": Outcome.OK, "fail": Outcome.FAIL, "unknown": Outcome.UNKNOWN}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")

# what a placeholder may name in each context (service.NAME.* and option.NAME are checked apart)
SERVICE_VARS = ("name", "port", "data_dir", "broker_url", "broker_address", "accounts", "account_ids",
                "participants", "mutant", "namespace", "seed", "spec_dir", "run_dir")
SUBMIT_VARS = ("id", "from", "to", "amount")
FAILPOINT_VARS = (*SERVICE_VARS, "node", "failpoint", "action", "ms")


@dataclass(frozen=True)
class Template:
    """A string with {placeholders}, checked when the spec is read, filled when used."""

    text: str
    key: str  # where it was written, for messages

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.text))

    def render(self, values: Mapping[str, str]) -> str:
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), self.text)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    role: str
    command: Template
    args: tuple[Template, ...]
    env: Mapping[str, Template]
    health: Template | None
    state_url: Template | None
    state_command: tuple[Template, ...]
    failpoints: tuple[str, ...] | None = None  # the [failpoints] names this service has (None: all)
    image: str | None = None  # run as a container of this image; `command` is then a path inside it

    def templates(self) -> list[Template]:
        return [self.command, *self.args, *self.env.values(), *([self.health] if self.health else []),
                *([self.state_url] if self.state_url else []), *self.state_command]

    def placeholders(self) -> set[str]:
        return {n for t in self.templates() for n in t.names}

    @property
    def uses_broker(self) -> bool:
        return bool({"broker_url", "broker_address"} & self.placeholders())

    @property
    def peers(self) -> list[str]:
        """Other services this one reaches (through a proxy of its own), by {service.NAME.*}."""
        return sorted({n.split(".")[1] for n in self.placeholders() if n.startswith("service.")})


@dataclass(frozen=True)
class ImageSpec:
    """An image txchaos builds itself (`docker import`): one static binary at /bin/NAME."""

    tag: str
    binary: Path


@dataclass(frozen=True)
class Request:
    method: str
    url: Template
    body: Template | None
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Rule:
    """An answer that matches `statuses` (and `json` fields / `contains`) means `result`."""

    statuses: frozenset[int]
    json: Mapping[str, Any]
    contains: str | None
    result: Outcome

    def matches(self, status: int, body: Any, text: str) -> bool:
        if status not in self.statuses:
            return False
        if self.contains is not None and self.contains not in text:
            return False
        return all(isinstance(body, dict) and body.get(k) == v for k, v in self.json.items())


@dataclass(frozen=True)
class SubmitSpec:
    request: Request
    rules: tuple[Rule, ...]
    on_timeout: Outcome
    on_connection_error: Outcome


@dataclass(frozen=True)
class ReadSpec:
    request: Request
    balances: str  # dotted path to the balances object in the JSON answer ("" = the answer)
    snapshot: bool


@dataclass(frozen=True)
class FailpointSpec:
    names: tuple[str, ...]
    arm: Request
    disarm: Request | None


@dataclass(frozen=True)
class TargetSpec:
    path: Path
    name: str
    broker: str | None
    roles: tuple[str, ...]
    services: Mapping[str, ServiceSpec]
    submit: SubmitSpec
    read: ReadSpec | None
    failpoints: FailpointSpec | None
    mutant_env: str | None
    mutants: tuple[str, ...]
    options: Mapping[str, str]
    timeouts: Mapping[str, float]
    no_negative: bool
    notices: tuple[str, ...] = field(default=())
    images: Mapping[str, ImageSpec] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.path.parent
