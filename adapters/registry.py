"""Find an adapter class by name: built-in, `txchaos.adapters` entry point, module:Class,
or `spec:PATH.toml` (a target described in TOML, adapters/spec.py).

Whatever the source, the class is checked before anything starts: it must be an
Adapter subclass, every capability it declares must be a known one
(adapters.base.CAPABILITIES: a misspelt capability would otherwise be silently
ignored) and a capability that promises a method must come with that method.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points

from adapters.base import CAPABILITIES, Adapter
from harness.errors import BadInput

__all__ = ["available", "check_adapter", "check_options", "load_adapter", "parse_options"]

BUILTIN = {
    "rabbitmq": "adapters.reference:RabbitMQAdapter",
    "kafka": "adapters.reference:KafkaAdapter",
    "nats": "adapters.reference:NatsAdapter",
}
SPEC_PREFIX = "spec:"


def available() -> dict[str, str]:
    """Every known target name and where its class lives."""
    found = dict(BUILTIN)
    for ep in entry_points(group="txchaos.adapters"):
        found.setdefault(ep.name, ep.value)
    return found


def _import(spec: str) -> type:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


def load_adapter(target: str) -> type[Adapter]:
    """The Adapter subclass for `target`; BadInput listing the choices if none fits."""
    if target.startswith(SPEC_PREFIX):
        from adapters.spec import load_spec_adapter

        return check_adapter(load_spec_adapter(target[len(SPEC_PREFIX):]), target)
    known = available()
    spec = known.get(target, target if ":" in target else None)
    if spec is None:
        raise BadInput(f"unknown target {target!r}; choose one of {', '.join(sorted(known))}, "
                       "give module:Class, or spec:PATH.toml")
    try:
        cls = _import(spec)
    except (ImportError, AttributeError) as e:
        raise BadInput(f"cannot load target {target!r} from {spec}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise BadInput(f"{spec} is not an adapters.base.Adapter subclass")
    return check_adapter(cls, spec)


def check_adapter(cls: type[Adapter], where: str) -> type[Adapter]:
    """Refuse unknown capabilities and capabilities whose method is missing."""
    unknown = sorted(set(cls.capabilities) - set(CAPABILITIES))
    if unknown:
        raise BadInput(f"{where}: unknown capabilit{'y' if len(unknown) == 1 else 'ies'} "
                       f"{', '.join(map(repr, unknown))}; known: {', '.join(CAPABILITIES)}")
    for cap in sorted(cls.capabilities):
        method = CAPABILITIES[cap]
        if method is not None and getattr(cls, method) is getattr(Adapter, method):
            raise BadInput(f"{where}: declares capability {cap!r} but does not define {method}()")
    return cls


def parse_options(items: list[str] | None, *, flag: str = "--target-opt") -> dict[str, str]:
    """`key=value` strings (repeatable flag) as a dict; BadInput naming a malformed one."""
    options: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{flag} {item!r}: expected key=value")
        options[key.strip()] = value
    return options


def check_options(cls: type[Adapter], options: Mapping[str, str], target: str) -> None:
    """Refuse options the adapter does not declare, listing those it does."""
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in cls.options.items()) or "it takes none"
        raise BadInput(f"target {target!r} has no option {', '.join(map(repr, unknown))}; {known}")
