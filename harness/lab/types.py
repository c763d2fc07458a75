"""The values the lab hands out: where a service is, and which proxy fronts which client."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BROKERS", "SERVICES", "Endpoint", "ProxyLink", "ServiceStatus"]

BROKERS = ("rabbitmq", "kafka", "nats")
SERVICES = (*BROKERS, "toxiproxy")


@dataclass(frozen=True)
class Endpoint:
    """A service's direct (unproxied) address; `managed` is False for an external service."""

    service: str
    host: str
    port: int
    url: str
    version: str
    managed: bool


@dataclass(frozen=True)
class ProxyLink:
    """One Toxiproxy proxy dedicated to one client's connection to one service.

    `url` is what the client connects with; cutting `proxy` cuts only this client.
    """

    proxy: str
    service: str
    client: str
    url: str
    listen: tuple[str, int]
    upstream: tuple[str, int]


@dataclass(frozen=True)
class ServiceStatus:
    """What `lab status` prints: `state` is running, paused, dead or external."""

    service: str
    state: str
    endpoint: Endpoint | None
    pid: int | None = None
