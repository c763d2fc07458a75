"""Find an adapter class by name: built-in, `txchaos.adapters` entry point, or module:Class."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from adapters.base import Adapter
from harness.errors import BadInput

__all__ = ["available", "load_adapter"]

BUILTIN = {
    "rabbitmq": "adapters.reference:RabbitMQAdapter",
    "kafka": "adapters.reference:KafkaAdapter",
    "nats": "adapters.reference:NatsAdapter",
    "kafka-eos-py": "adapters.kafka_eos:KafkaEosPythonAdapter",
    "kafka-eos-java": "adapters.kafka_eos:KafkaEosJavaAdapter",
}


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
    known = available()
    spec = known.get(target, target if ":" in target else None)
    if spec is None:
        raise BadInput(f"unknown target {target!r}; choose one of {', '.join(sorted(known))} "
                       "or give module:Class")
    try:
        cls = _import(spec)
    except (ImportError, AttributeError) as e:
        raise BadInput(f"cannot load target {target!r} from {spec}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise BadInput(f"{spec} is not an adapters.base.Adapter subclass")
    return cls
