"""What every service shares: logging, the HTTP server, the transport and a clean exit.

Each service is one OS process: an aiohttp server on 127.0.0.1 (GET /health,
GET /state, and POST/GET/DELETE /admin/failpoints only when TXCHAOS_TEST_MODE=1)
plus the broker consumer of its inbox. A bad setting exits with code 2 and one
line that names it, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from targets.payments import config as config_mod
from targets.payments import mutants
from targets.payments.failpoints import Failpoints, SpecError
from targets.payments.mutants import Hooks
from targets.payments.transport.base import Transport, TransportError, make_transport

log = logging.getLogger("txchaos.target")
CONNECT_PATIENCE = 20.0  # seconds a starting service keeps trying its broker before it gives up


class Service(Protocol):
    cfg: config_mod.Config
    transport: Transport
    failpoints: Failpoints
    hooks: Hooks

    def routes(self) -> list[web.RouteDef]: ...
    def state(self) -> dict[str, Any]: ...
    async def on_message(self, message: dict[str, Any]) -> None: ...
    async def background(self) -> None: ...
    async def recover(self) -> None: ...


def _admin_routes(svc: Service) -> list[web.RouteDef]:
    async def show(_: web.Request) -> web.Response:
        return web.json_response({p: a.describe() for p, a in svc.failpoints.armed.items()})

    async def arm(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            spec = body["spec"] if isinstance(body, dict) else None
            if not isinstance(spec, str):
                raise ValueError
        except (ValueError, KeyError):
            return web.json_response({"error": 'send {"spec": "point=action;..."}'}, status=400)
        try:
            armed = svc.failpoints.arm(spec)
        except SpecError as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"armed": [a.point for a in armed]})

    async def clear(_: web.Request) -> web.Response:
        svc.failpoints.clear()
        return web.json_response({"armed": []})

    return [web.get("/admin/failpoints", show), web.post("/admin/failpoints", arm),
            web.delete("/admin/failpoints", clear)]


def build_app(svc: Service) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"service": svc.cfg.name, "ok": True})

    async def state(_: web.Request) -> web.Response:
        return web.json_response(svc.state())

    app = web.Application()
    app.add_routes([web.get("/health", health), web.get("/state", state), *svc.routes()])
    if svc.cfg.test_mode:
        app.add_routes(_admin_routes(svc))
    return app


async def _connect(transport: Transport) -> None:
    """Connect, retrying for CONNECT_PATIENCE: a broker cluster that is failing over (a node
    just re-joined, a leader being elected) answers again within seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_PATIENCE
    while True:
        try:
            await transport.connect()
            return
        except TransportError as e:
            if loop.time() >= deadline:
                raise
            log.warning("broker not ready, trying again: %s", e)
            await asyncio.sleep(0.5)


async def _serve(svc: Service) -> None:
    await svc.recover()
    await _connect(svc.transport)
    runner = web.AppRunner(build_app(svc), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", svc.cfg.http_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(svc.transport.serve(svc.cfg.inbox(svc.cfg.name), svc.on_message,
                                                     ack_before_handling=svc.hooks.ack_before_applying)),
             asyncio.create_task(svc.background())]
    log.info("%s serving on 127.0.0.1:%d (broker %s, mutant %s)", svc.cfg.name, svc.cfg.http_port,
             svc.cfg.broker_url, svc.cfg.mutant or "none")
    await stop.wait()
    log.info("%s stopping", svc.cfg.name)
    for t in tasks:
        t.cancel()
    await svc.transport.close()
    await runner.cleanup()


def main(factory: Callable[[config_mod.Config], Service], default_name: str | None = None,
         argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    try:
        cfg = config_mod.load(argv, default_name=default_name)
        mutants.check(cfg.mutant)
        svc = factory(cfg)
        svc.failpoints.arm(cfg.failpoints)
    except (config_mod.ConfigError, SpecError, ValueError) as e:
        print(f"{default_name or 'service'}: configuration error: {e}", file=sys.stderr)
        return 2
    asyncio.run(_serve(svc))
    return 0


def transport_for(cfg: config_mod.Config) -> Transport:
    return make_transport(cfg.broker_url, client_id=f"{cfg.namespace}-{cfg.name}",
                          durable=not cfg.hooks.broker_non_durable)


async def retry_send(transport: Transport, inbox: str, message: dict[str, Any], dedup_id: str,
                     *, attempts: int = 3) -> bool:
    """Send with a few quick retries; False if the broker stayed unreachable."""
    for i in range(attempts):
        try:
            await transport.send(inbox, message, dedup_id=dedup_id)
            return True
        except Exception as e:
            log.warning("send to %s failed (%s), attempt %d/%d", inbox, e, i + 1, attempts)
            await asyncio.sleep(0.3 * (i + 1))
    return False


Background = Callable[[], Awaitable[None]]
