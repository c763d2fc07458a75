"""The built-in adapters: the reference payment system (targets.payments) over one broker.

Every service is its own OS process (a ManagedProcess). Each service's broker
connection goes through its own Toxiproxy link, the clients reach the
coordinator through the "clients-coordinator" proxy and the coordinator reads
shard balances through one proxy per shard, so cutting a link cuts exactly one
path. The state snapshot and failpoint arming go directly to each service:
they are the harness's view, not traffic of the system under test.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from adapters.base import Adapter, Node, TargetContext, Topology, joined_url
from adapters.http_client import HttpClient
from harness.errors import BadInput, InfraError
from harness.model import OpResult, Outcome, Transfer
from harness.procs import ManagedProcess, ServiceStartError
from targets.payments.failpoints import ALL_POINTS, COORDINATOR_POINTS, PARTICIPANT_POINTS
from targets.payments.config import DELIVERIES
from targets.payments.mutants import MUTANTS

__all__ = ["ReferenceAdapter", "RabbitMQAdapter", "KafkaAdapter", "NatsAdapter"]

SHARDS = ("accounts-a", "accounts-b")
SERVICES: tuple[tuple[str, str], ...] = (
    ("accounts-a", "targets.payments.accounts"),
    ("accounts-b", "targets.payments.accounts"),
    ("ledger", "targets.payments.ledger"),
    ("notifications", "targets.payments.notifications"),
    ("coordinator", "targets.payments.coordinator"),
)
DEFAULT_SETTINGS = {
    "TXCHAOS_VOTE_TIMEOUT": "5",
    "TXCHAOS_REPLY_TIMEOUT": "8",
    "TXCHAOS_RESEND_INTERVAL": "2",
    "TXCHAOS_INDOUBT_TIMEOUT": "6",
}


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
        return r.status == 200


class ReferenceAdapter(HttpClient, Adapter):
    """The reference 2PC payment system on the broker named by `broker`.

    `settings` overrides the services' TXCHAOS_* timeouts (seconds), e.g.
    {"TXCHAOS_INDOUBT_TIMEOUT": "2"} for a fast test.
    """

    broker: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset({"read", "no-negative", "failpoints", "mutants",
                                                        "clusters"})
    options: ClassVar[Mapping[str, str]] = {
        "delivery": "; ".join(f"{k}{' (default)' if k == 'resend' else ''}: {v}" for k, v in DELIVERIES.items())}
    timeouts: ClassVar[dict[str, float]] = {
        name: float(DEFAULT_SETTINGS[f"TXCHAOS_{name.upper().replace('-', '')}_TIMEOUT"])
        for name in ("vote", "reply", "in-doubt")}

    def __init__(self, *, settings: Mapping[str, str] | None = None) -> None:
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.procs: dict[str, ManagedProcess] = {}
        self.urls: dict[str, str] = {}  # direct HTTP URL of each service
        self.client_url = ""
        self.namespace = ""
        self.accounts: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------
    def start(self, ctx: TargetContext) -> Topology:
        from harness.lab.ports import free_port

        if ctx.mutant and ctx.mutant not in MUTANTS:
            raise BadInput(f"unknown mutant {ctx.mutant!r} for {self.name}; choose one of {', '.join(MUTANTS)}")
        unknown = set(ctx.failpoints) - {n for n, _ in SERVICES}
        if unknown:
            raise BadInput(f"failpoints for unknown node(s) {', '.join(sorted(unknown))}; "
                           f"nodes: {', '.join(n for n, _ in SERVICES)}")
        if not ctx.accounts:
            raise BadInput("the target needs at least two accounts")
        delivery = ctx.options.get("delivery", "resend")
        if delivery not in DELIVERIES:
            raise BadInput(f"target option delivery={delivery!r}: choose one of {', '.join(DELIVERIES)}")
        ctx.lab.ensure(self.broker)
        self.accounts = dict(ctx.accounts)
        self.namespace = f"t{uuid.uuid4().hex[:10]}"  # broker inboxes are "<namespace>_<service>"
        ports = {name: free_port() for name, _ in SERVICES}
        self.urls = {name: f"http://127.0.0.1:{p}" for name, p in ports.items()}
        links = [ctx.proxy(f"coordinator-{shard}", ports[shard], node="coordinator") for shard in SHARDS]
        shard_urls = [f"{shard}={link.url}" for shard, link in zip(SHARDS, links)]
        base_env = {
            **self.settings,
            "TXCHAOS_ACCOUNTS": json.dumps(self.accounts),
            "TXCHAOS_SHARDS": ",".join(SHARDS),
            "TXCHAOS_NAMESPACE": self.namespace,
            "TXCHAOS_TEST_MODE": "1",
            "TXCHAOS_SHARD_URLS": ",".join(shard_urls),
            "TXCHAOS_DELIVERY": delivery,
            "PYTHONUNBUFFERED": "1",
        }
        if ctx.mutant:
            base_env["TXCHAOS_MUTANT"] = ctx.mutant
        nodes: list[Node] = []
        try:
            for name, module in SERVICES:
                own = ctx.links(self.broker, name)  # one per broker node
                links += own
                env = {**base_env, "TXCHAOS_BROKER_URL": _transport_url(self.broker, joined_url(own)),
                       "TXCHAOS_DATA_DIR": str(ctx.data_dir(name)),
                       "TXCHAOS_FAILPOINTS": ctx.failpoints.get(name, "")}
                url = self.urls[name]
                self.procs[name] = proc = ctx.spawn(
                    name, [sys.executable, "-m", module, "--name", name, "--port", str(ports[name])],
                    env=env, ready=lambda u=url: _healthy(u), ready_timeout=30, stop_timeout=5)
                coordinator = name == "coordinator"
                nodes.append(Node(name, "coordinator" if coordinator else "participant", process=proc,
                                  meta={"url": url, "failpoints": list(COORDINATOR_POINTS if coordinator
                                                                        else PARTICIPANT_POINTS),
                                        "failpoint-actions": FAILPOINT_ACTIONS}))
        except ServiceStartError as e:
            self.stop()
            raise InfraError(f"the {self.name} reference target did not start: {e}") from None
        client = ctx.proxy("clients-coordinator", ports["coordinator"], node="coordinator")
        self.client_url = client.url
        links.append(client)
        brokers, peers = ctx.broker(self.broker)
        return Topology(nodes=nodes + brokers, links=links + peers)

    def stop(self) -> None:
        for name in reversed([n for n, _ in SERVICES]):
            proc = self.procs.get(name)
            if proc is not None:
                proc.stop()

    # -- operations -----------------------------------------------------------
    async def transfer(self, t: Transfer) -> OpResult:
        timeout = aiohttp.ClientTimeout(total=float(self.settings["TXCHAOS_REPLY_TIMEOUT"]) + 4)
        try:
            async with self._http().post(f"{self.client_url}/payments", json=t.to_json(), timeout=timeout) as r:
                body = await r.json(content_type=None)
                status = r.status
        except asyncio.TimeoutError:
            return OpResult(Outcome.UNKNOWN, error="timeout")
        except (aiohttp.ClientError, ValueError) as e:
            return OpResult(Outcome.UNKNOWN, error=f"connection: {type(e).__name__}")
        return classify(status, body)

    async def read(self) -> OpResult:
        try:
            async with self._http().get(f"{self.client_url}/balances",
                                        timeout=aiohttp.ClientTimeout(total=5)) as r:
                body = await r.json(content_type=None)
                if r.status == 200 and isinstance(body, dict) and isinstance(body.get("balances"), dict):
                    return OpResult(Outcome.OK, value=body["balances"])
                return OpResult(Outcome.UNKNOWN, error=f"http-{r.status}")
        except (asyncio.TimeoutError, aiohttp.ClientError, ValueError) as e:
            return OpResult(Outcome.UNKNOWN, error=f"read: {type(e).__name__}")

    async def snapshot(self) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for name, url in self.urls.items():
            try:
                async with self._http().get(f"{url}/state", timeout=aiohttp.ClientTimeout(total=10)) as r:
                    r.raise_for_status()
                    states[name] = await r.json()
            except (asyncio.TimeoutError, aiohttp.ClientError, ValueError) as e:
                raise InfraError(f"{name} did not answer GET {url}/state ({type(e).__name__}); "
                                 f"is it running? see its log {self.procs[name].log_path}") from None
        coordinator = states.pop("coordinator")
        return {"initial_balances": dict(self.accounts), "participants": states, "coordinator": coordinator}

    # -- failpoints and mutants -----------------------------------------------
    def mutants(self) -> list[str]:
        return list(MUTANTS)

    def failpoints(self) -> list[str]:
        return list(ALL_POINTS)

    async def arm_failpoint(self, node: str, name: str, action: str = "crash", **params: Any) -> None:
        """Arm `name` on `node`. params: ms (delay), nth (fire on the n-th hit) or probability.

        Action "off" disarms every failpoint of the node, so one that did not fire
        during its fault window cannot crash the node after healing. It uses a
        plain blocking request in a thread: healing runs outside the run's loop."""
        if node not in self.urls:
            raise BadInput(f"no node {node!r}; nodes: {', '.join(self.urls)}")
        if action == "off":
            await asyncio.to_thread(_disarm, f"{self.urls[node]}/admin/failpoints")
            return
        allowed = COORDINATOR_POINTS if node == "coordinator" else PARTICIPANT_POINTS
        if name not in allowed:
            raise BadInput(f"{node} has no failpoint {name!r}; it has {', '.join(allowed)}")
        spec = f"{name}={failpoint_action(action, **params)}"
        async with self._http().post(f"{self.urls[node]}/admin/failpoints", json={"spec": spec},
                                     timeout=aiohttp.ClientTimeout(total=5)) as r:
            if r.status != 200:
                raise BadInput(f"{node} refused failpoint {spec!r}: {(await r.text()).strip()}")


def _disarm(url: str) -> None:
    request = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(request, timeout=5):
        pass


# what arm_failpoint() takes (Node.meta "failpoint-actions", docs/faults.md): generated
# schedules crash nodes at steps and stall steps past the timeouts with a per-hit probability
FAILPOINT_ACTIONS: dict[str, list[str]] = {"crash": [], "delay": ["ms", "probability"]}


def failpoint_action(action: str, *, ms: int | None = None, nth: int | None = None,
                     probability: float | None = None) -> str:
    """The spec text of an action: crash | error | delay(MS), with @N or %P."""
    if action == "delay":
        action = f"delay({int(ms or 0)})"
    elif action not in ("crash", "error"):
        raise BadInput(f"unknown failpoint action {action!r}; use crash, delay or error")
    if nth is not None:
        return f"{action}@{int(nth)}"
    if probability is not None:
        return f"{action}%{float(probability)}"
    return action


def classify(status: int, body: Any) -> OpResult:
    """Map the coordinator's answer: only a definite commit is OK, only a definite abort FAIL."""
    state = body.get("status") if isinstance(body, dict) else None
    if status == 200 and state == "committed":
        return OpResult(Outcome.OK)
    if status == 409 and state == "aborted":
        return OpResult(Outcome.FAIL, error=str(body.get("reason") or "aborted"))
    if status in (400, 422) and isinstance(body, dict):
        return OpResult(Outcome.FAIL, error=f"rejected: {body.get('error')}")
    return OpResult(Outcome.UNKNOWN, error=f"http-{status}" + (f"-{state}" if state else ""))


def _transport_url(broker: str, url: str) -> str:
    """targets.payments.transport picks its broker by URL scheme; a Kafka bootstrap has none."""
    return url if "://" in url else f"{broker}://{url}"


class RabbitMQAdapter(ReferenceAdapter):
    name = "rabbitmq"
    broker = "rabbitmq"
    services = frozenset({"rabbitmq"})


class KafkaAdapter(ReferenceAdapter):
    name = "kafka"
    broker = "kafka"
    services = frozenset({"kafka"})


class NatsAdapter(ReferenceAdapter):
    name = "nats"
    broker = "nats"
    services = frozenset({"nats"})
