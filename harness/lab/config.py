"""External labs: services the user already runs, named by environment or a JSON file.

Keys (file) / variables (env): rabbitmq_url / TXCHAOS_RABBITMQ_URL,
kafka_bootstrap / TXCHAOS_KAFKA_BOOTSTRAP, nats_url / TXCHAOS_NATS_URL,
toxiproxy_url / TXCHAOS_TOXIPROXY_URL. Optional `kafka_client_listeners`
([[broker_port, proxy_port], ...]) lets links use per-client listeners, as the
state file of `txchaos lab up` provides.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import BadInput

__all__ = ["KEYS", "ENV", "load_external", "host_port"]

KEYS = {"rabbitmq": "rabbitmq_url", "kafka": "kafka_bootstrap", "nats": "nats_url",
        "toxiproxy": "toxiproxy_url"}
ENV = {"rabbitmq": "TXCHAOS_RABBITMQ_URL", "kafka": "TXCHAOS_KAFKA_BOOTSTRAP",
       "nats": "TXCHAOS_NATS_URL", "toxiproxy": "TXCHAOS_TOXIPROXY_URL"}
_DEFAULT_PORT = {"rabbitmq": 5672, "kafka": 9092, "nats": 4222, "toxiproxy": 8474}


def host_port(service: str, url: str) -> tuple[str, int]:
    """host and port of a service URL; a Kafka bootstrap may be plain host:port (first of a list)."""
    url = url.split(",")[0].strip()
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    try:
        port = parts.port or _DEFAULT_PORT[service]
    except ValueError:
        raise BadInput(f"{service}: bad port in {url!r}") from None
    if not parts.hostname:
        raise BadInput(f"{service}: no host in {url!r}")
    return parts.hostname, port


def load_external(option: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(service -> URL, extra settings) from the environment ("external") or a JSON file."""
    if option == "external":
        urls = {s: os.environ[v] for s, v in ENV.items() if os.environ.get(v)}
        if not urls:
            raise BadInput("--lab external: set at least one of " + ", ".join(ENV.values()))
        return urls, {}
    path = Path(option)
    if not path.is_file():
        raise BadInput(f"--lab {option!r}: expected local, external or the path of a JSON lab "
                       "config file (keys: " + ", ".join(KEYS.values()) + ")")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"lab config {path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadInput(f"lab config {path}: expected a JSON object")
    urls = {s: str(data[k]) for s, k in KEYS.items() if data.get(k)}
    if not urls:
        raise BadInput(f"lab config {path}: none of the keys " + ", ".join(KEYS.values()))
    for service, url in urls.items():
        host_port(service, url)
    return urls, data
