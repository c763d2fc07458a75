"""The one transport interface of the reference payment system.

Services exchange small JSON messages through named inboxes ("coordinator",
"accounts-a", "accounts-b", "ledger", "notifications"). Every implementation
gives at-least-once delivery without loss, the way its broker's documentation
says: a message is durable at the broker before `send` returns, and a received
message is acknowledged only after its handler returned (its effect is durable),
so a crash between the two redelivers it. Handlers are therefore idempotent.
`durable=False` exists only for the non-durable-broker mutant: the same calls with the
broker's settings for speed (no replication, nothing on disk, no durable acknowledgement).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[None]]


class TransportError(RuntimeError):
    """The broker refused or did not confirm a message; the caller retries."""


class Transport(ABC):
    @abstractmethod
    async def connect(self) -> None:
        """Connect and declare what is needed (queues, topics, streams); idempotent."""

    @abstractmethod
    async def send(self, inbox: str, message: Message, *, dedup_id: str) -> None:
        """Return once the broker holds the message durably (publisher confirm,
        acks=all, JetStream ack); raise TransportError otherwise. `dedup_id`
        names the message for brokers that de-duplicate (Nats-Msg-Id)."""

    @abstractmethod
    async def serve(self, inbox: str, handler: Handler, *, ack_before_handling: bool = False) -> None:
        """Deliver the inbox's messages to `handler` until `close()`.

        The message is acknowledged after `handler` returns; if it raises, the
        message is redelivered later. A message that is not valid JSON is logged
        and acknowledged (it must never block the inbox). `ack_before_handling`
        exists only for the mutants (hooks.ack_before_applying): acknowledge first."""

    @abstractmethod
    async def close(self) -> None:
        """Stop serving and disconnect; safe to call twice."""


def parse_broker_url(url: str, scheme: str, names: re.Pattern[str],
                     allowed: str) -> tuple[str, int, str]:
    """(host, port, namespace or "") of `scheme://host:port[/namespace]`; ValueError
    naming the URL if it is malformed or the namespace has characters outside `names`."""
    parts = urlsplit(url)
    if parts.scheme != scheme or not parts.hostname or not parts.port:
        raise ValueError(f"bad {scheme} URL {url!r}: expected {scheme}://host:port[/namespace]")
    namespace = parts.path.strip("/")
    if namespace and not names.match(namespace):
        raise ValueError(f"bad namespace {namespace!r} in {url!r}: use {allowed}")
    return parts.hostname, parts.port, namespace


def make_transport(url: str, *, client_id: str, durable: bool = True) -> Transport:
    """The transport for a broker URL: amqp://, kafka://host:port, nats://."""
    scheme = url.split("://", 1)[0]
    if scheme in ("amqp", "amqps"):
        from targets.payments.transport.rabbitmq import RabbitMQTransport

        return RabbitMQTransport(url, client_id=client_id, durable=durable)
    if scheme == "kafka":
        from targets.payments.transport.kafka import KafkaTransport

        return KafkaTransport(url, client_id=client_id, durable=durable)
    if scheme == "nats":
        from targets.payments.transport.nats import NatsTransport

        return NatsTransport(url, client_id=client_id, durable=durable)
    raise ValueError(f"unsupported broker URL {url!r}: use amqp://, kafka:// or nats://")
