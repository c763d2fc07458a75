"""harness.lab: real brokers (RabbitMQ, Kafka, NATS) and Toxiproxy for chaos runs.

    lab = Lab.from_option("local", root=run_dir / "lab")
    lab.ensure("kafka")                      # starts toxiproxy + kafka, ready
    link = lab.link("kafka", "accounts-a")   # that client's own proxy
    ...                                      # client connects to link.url
    lab.down()
"""

from harness.lab.core import Lab
from harness.lab.types import BROKERS, SERVICES, Endpoint, ProxyLink, ServiceStatus

__all__ = ["BROKERS", "SERVICES", "Endpoint", "Lab", "ProxyLink", "ServiceStatus"]
