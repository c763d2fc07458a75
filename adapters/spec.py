"""A target described in TOML instead of Python: `--target spec:PATH.toml`.

The spec (format in docs/adapters.md, validation in adapters/spec_schema.py)
names the services to start, how a payment is submitted and how each answer
maps to ok / fail / unknown, and how state is read. This module runs it through
the same TargetContext any Python adapter uses: each service is a spawned
process with its own proxied broker link and its own proxies to the services
it names, clients reach services through "clients-NAME" proxies, and state is
read directly from each service (the harness's view, not system traffic).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from adapters.base import Adapter, Link, Node, TargetContext, Topology
from adapters.http_client import HttpClient
from adapters.spec_schema import load_spec
from adapters.spec_values import Request, ServiceSpec, TargetSpec
from harness.errors import BadInput, InfraError
from harness.model import OpResult, Outcome, Transfer
from harness.procs import ManagedProcess, ServiceStartError

__all__ = ["SpecAdapter", "load_spec_adapter"]

# how long the harness waits for each of its calls, in seconds; any other name in a spec's
# [timeouts] is one of the target's own timeouts (Adapter.timeouts), e.g. vote or in-doubt
LIMITS = {"start": 60.0, "submit": 15.0, "read": 5.0, "state": 10.0, "failpoint": 5.0}


def load_spec_adapter(path: str) -> type[SpecAdapter]:
    """An Adapter class bound to the spec at `path`, validated now (BadInput otherwise)."""
    spec = load_spec(path)
    caps = set()
    if spec.read is not None:
        caps.add("read")
        if spec.read.snapshot:
            caps.add("snapshot-reads")
    if spec.no_negative:
        caps.add("no-negative")
    if spec.failpoints is not None:
        caps.add("failpoints")
    if spec.mutants:
        caps.add("mutants")
    attrs = {"spec": spec, "name": spec.name, "capabilities": frozenset(caps),
             "services": frozenset({spec.broker}) if spec.broker else frozenset(),
             "options": {k: f"spec option (default {v!r})" for k, v in spec.options.items()},
             "notices": spec.notices,
             "limits": {**LIMITS, **{k: v for k, v in spec.timeouts.items() if k in LIMITS}},
             "timeouts": {k: v for k, v in spec.timeouts.items() if k not in LIMITS}}
    return type(f"SpecAdapter[{spec.name}]", (SpecAdapter,), attrs)


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as r:
        return 200 <= r.status < 300


class SpecAdapter(HttpClient, Adapter):
    """Runs a TargetSpec; made per spec file by `load_spec_adapter`."""

    spec: ClassVar[TargetSpec]
    limits: ClassVar[dict[str, float]] = dict(LIMITS)

    def __init__(self) -> None:
        self.procs: dict[str, ManagedProcess] = {}
        self.values: dict[str, dict[str, str]] = {}  # per service: its placeholder values
        self.client: dict[str, str] = {}             # placeholder values of client requests
        self.accounts: dict[str, int] = {}
        self._ctx: TargetContext | None = None  # set when services run as containers

    def _where(self, key: str) -> str:
        return f"{self.spec.path}: {key}"

    # -- lifecycle ------------------------------------------------------------
    def start(self, ctx: TargetContext) -> Topology:
        from harness.lab.ports import free_port

        spec = self.spec
        if ctx.mutant and ctx.mutant not in spec.mutants:
            raise BadInput(f"{self._where('mutants.names')}: no mutant {ctx.mutant!r}; "
                           f"it lists {', '.join(spec.mutants) or 'none'}")
        if ctx.failpoints:
            raise BadInput(f"{spec.path}: a spec target arms failpoints only through the failpoint "
                           "fault of a schedule, not at start")
        self.accounts = dict(ctx.accounts)
        options = {f"option.{k}": v for k, v in {**spec.options, **ctx.options}.items()}
        ports = {name: free_port() for name in spec.services}
        common = {**options, "accounts": json.dumps(self.accounts, sort_keys=True),
                  "account_ids": ",".join(sorted(self.accounts)), "mutant": ctx.mutant or "",
                  "participants": ",".join(n for n, s in spec.services.items() if s.role == "participant"),
                  "namespace": f"{spec.name}-{uuid.uuid4().hex[:10]}",
                  "seed": str(ctx.seed), "spec_dir": str(spec.dir), "run_dir": str(ctx.run_dir)}
        links: list[Link] = []
        nodes: list[Node] = []
        try:
            for name, svc in spec.services.items():
                values = {**common, "name": name, "port": str(ports[name]), "data_dir": str(ctx.data_dir(name))}
                if svc.uses_broker:
                    link = ctx.link(spec.broker, name)  # type: ignore[arg-type]
                    links.append(link)
                    values.update(broker_url=link.url, broker_address=link.address)
                for peer in svc.peers:
                    link = ctx.proxy(f"{name}-{peer}", ports[peer], node=name)
                    links.append(link)
                    values.update({f"service.{peer}.url": link.url, f"service.{peer}.address": link.address})
                self.values[name] = values
                env = {k: t.render(values) for k, t in svc.env.items()}
                if spec.mutant_env and ctx.mutant:
                    env[spec.mutant_env] = ctx.mutant
                health = svc.health.render(values) if svc.health else None
                ready = (lambda u=health: _healthy(u)) if health else None  # type: ignore[misc]
                meta: dict[str, Any] = {"port": ports[name]}
                if spec.failpoints is not None:
                    meta["failpoints"] = list(svc.failpoints if svc.failpoints is not None else spec.failpoints.names)
                if svc.image is not None:
                    nodes.append(Node(name, svc.role, container=self._container(ctx, svc, values, env, ready),
                                      meta=meta))
                    continue
                argv = [_program(svc.command.render(values), spec), *(a.render(values) for a in svc.args)]
                self.procs[name] = proc = ctx.spawn(name, argv, env=env, cwd=spec.dir, ready=ready,
                                                    ready_timeout=self.limits["start"])
                nodes.append(Node(name, svc.role, process=proc, meta=meta))
        except InfraError:
            self.stop()
            raise
        except ServiceStartError as e:
            self.stop()
            key = "health" if "was not ready" in str(e) else "command"
            raise InfraError(f"{self._where(f'services.{name}.{key}')}: the service did not start: {e}") from None
        for request in self._requests():
            for n in request.url.names + (request.body.names if request.body else ()):
                if n.startswith("service.") and n not in self.client:
                    peer = n.split(".")[1]
                    link = ctx.proxy(f"clients-{peer}", ports[peer], node=peer)
                    links.append(link)
                    self.client.update({f"service.{peer}.url": link.url, f"service.{peer}.address": link.address})
        self.client.update(options)
        if spec.broker:
            brokers, peers = ctx.broker(spec.broker)  # type: ignore[arg-type]
            nodes += brokers
            links += peers
        return Topology(nodes=nodes, links=list(dict.fromkeys(links)))

    def _container(self, ctx: TargetContext, svc: ServiceSpec, values: dict[str, str], env: dict[str, str],
                   ready: Any) -> str:
        """Run `svc` as a container (host network; its data dir mounted at the same path)."""
        self._ctx = ctx
        image = svc.image
        assert image is not None
        argv = [svc.command.render(values), *(a.render(values) for a in svc.args)]
        try:
            if image in self.spec.images:
                ctx.containers.image_from_binary(image, self.spec.images[image].binary)
            return ctx.containers.run(svc.name, image, argv, env=env, mounts=[Path(values["data_dir"])],
                                      ready=ready, ready_timeout=self.limits["start"])
        except InfraError as e:
            raise InfraError(f"{self._where(f'services.{svc.name}.image')}: {e}") from None

    def _requests(self) -> list[Request]:
        return [self.spec.submit.request, *([self.spec.read.request] if self.spec.read else [])]

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        if self._ctx is not None:
            self._ctx.containers.close()

    # -- operations -----------------------------------------------------------
    async def transfer(self, t: Transfer) -> OpResult:
        submit = self.spec.submit
        values = {**self.client, "id": t.id, "from": t.source, "to": t.dest, "amount": str(t.amount)}
        try:
            status, body, text = await _call(self._http(), submit.request, values, self.limits["submit"])
        except asyncio.TimeoutError:
            return OpResult(submit.on_timeout, error="timeout")
        except aiohttp.ClientError as e:
            return OpResult(submit.on_connection_error, error=f"connection: {type(e).__name__}")
        for rule in submit.rules:
            if rule.matches(status, body, text):
                detail = body.get("error") or body.get("reason") if isinstance(body, dict) else None
                return OpResult(rule.result, error=None if rule.result is Outcome.OK else
                                f"http-{status}" + (f": {detail}" if detail else ""))
        return OpResult(Outcome.UNKNOWN, error=f"http-{status}")

    async def read(self) -> OpResult:
        if self.spec.read is None:
            raise NotImplementedError(f"{self.name} does not offer reads")
        try:
            status, body, _ = await _call(self._http(), self.spec.read.request, self.client, self.limits["read"])
        except (asyncio.TimeoutError, aiohttp.ClientError) as e:
            return OpResult(Outcome.UNKNOWN, error=f"read: {type(e).__name__}")
        for part in filter(None, self.spec.read.balances.split(".")):
            body = body.get(part) if isinstance(body, dict) else None
        if status == 200 and isinstance(body, dict) and all(isinstance(v, int) for v in body.values()):
            return OpResult(Outcome.OK, value=body)
        return OpResult(Outcome.UNKNOWN, error=f"read: http-{status}")

    async def snapshot(self) -> dict[str, Any]:
        participants: dict[str, Any] = {}
        payments: dict[str, Any] = {}
        for name, svc in self.spec.services.items():
            if svc.state_url is None and not svc.state_command:
                continue
            record = await self._state(name)
            if svc.role == "coordinator":
                payments.update(record.get("payments") or {})
            else:
                participants[name] = record
        state: dict[str, Any] = {"initial_balances": dict(self.accounts), "participants": participants}
        if any(s.role == "coordinator" for s in self.spec.services.values()):
            state["coordinator"] = {"payments": payments}
        return state

    async def _state(self, name: str) -> dict[str, Any]:
        svc, values = self.spec.services[name], self.values[name]
        timeout = self.limits["state"]
        key = f"services.{name}.{'state' if svc.state_url else 'state_command'}"
        try:
            if svc.state_url is not None:
                url = svc.state_url.render(values)
                async with self._http().get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                    r.raise_for_status()
                    record = await r.json(content_type=None)
            else:
                record = await _run_json([t.render(values) for t in svc.state_command], timeout, self.spec)
        except (asyncio.TimeoutError, aiohttp.ClientError, ValueError, OSError) as e:
            raise InfraError(f"{self._where(key)}: {name} gave no state ({type(e).__name__}: {e}); "
                             f"see its log {self.procs[name].log_path}") from None
        if not isinstance(record, dict):
            raise InfraError(f"{self._where(key)}: {name}'s state is not a JSON object (docs/formats.md)")
        return record

    # -- failpoints and mutants -----------------------------------------------
    def mutants(self) -> list[str]:
        return list(self.spec.mutants)

    def failpoints(self) -> list[str]:
        return list(self.spec.failpoints.names) if self.spec.failpoints else []

    async def arm_failpoint(self, node: str, name: str, action: str = "crash", **params: Any) -> None:
        """Call the spec's failpoint hook on `node`. A session per call: healing
        ("off") runs on an event loop of its own (adapters/base.py)."""
        fp = self.spec.failpoints
        if fp is None:
            raise NotImplementedError(f"{self.name} has no failpoints")
        if node not in self.values:
            raise BadInput(f"no node {node!r}; nodes: {', '.join(self.values)}")
        request = fp.disarm if action == "off" else fp.arm
        if request is None:
            return
        own = self.spec.services[node].failpoints or fp.names
        if action != "off" and name not in own:
            raise BadInput(f"{self._where('failpoints.names')}: {node} has no failpoint {name!r}; "
                           f"it has {', '.join(own)}")
        values = {**self.values[node], "node": node, "failpoint": name, "action": action,
                  "ms": str(params.get("ms", 0))}
        async with aiohttp.ClientSession() as session:
            status, _, text = await _call(session, request, values, self.limits["failpoint"])
        if not 200 <= status < 300:
            raise InfraError(f"{self._where('failpoints')}: {node} answered {status} to {action} "
                             f"{name!r}: {text.strip()[:200]}")


def _program(command: str, spec: TargetSpec) -> str:
    """A command as an absolute path: relative to the spec's directory, else .cache/bin, else PATH."""
    import os
    import shutil

    from harness.lab.binaries import CACHE

    if "/" in command:
        return str((spec.dir / command).resolve())
    return shutil.which(command, path=f"{CACHE / 'bin'}:{os.environ.get('PATH', '')}") or command


async def _call(session: aiohttp.ClientSession, request: Request, values: dict[str, str],
                timeout: float) -> tuple[int, Any, str]:
    """One HTTP request of the spec: (status, JSON body or None, text)."""
    body = request.body.render(values) if request.body else None
    headers = dict(request.headers)
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    async with session.request(request.method, request.url.render(values), data=body, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        text = await r.text()
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        return r.status, parsed, text


async def _run_json(argv: list[str], timeout: float, spec: TargetSpec) -> Any:
    argv = [_program(argv[0], spec), *argv[1:]]
    proc = await asyncio.create_subprocess_exec(*argv, cwd=spec.dir, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise OSError(f"exit code {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")
    return json.loads(out)
