"""Link faults through Toxiproxy: toxics on one proxy, or the proxy switched off.

Wraps toxiproxy-python. That library keeps the server address as class-level
state and sends requests without a timeout, so every call here goes through
`ToxiproxyServer._api()`, which points the library at this server under a lock
(two servers in one process stay apart). Where the library lacks something it
is extended here with plain REST calls (with timeouts): reading a proxy's
toxics and enabled flag in one request (`state()`) and resetting the server.

Toxiproxy's latency is one-way per stream: `direction="both"` adds a toxic to
the upstream (client to server) and to the downstream stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.errors import BadInput, InfraError

__all__ = ["ToxiproxyServer", "ToxicSpec", "toxics_for", "TOXIC_PREFIX"]

TOXIC_PREFIX = "txchaos"
_LOCK = threading.RLock()
_TIMEOUT = 5.0
_HEAL_DEADLINE = 30.0  # seconds a toxic's removal is retried


@dataclass(frozen=True)
class ToxicSpec:
    """One toxic as Toxiproxy takes it."""

    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


def toxics_for(fault: str, params: dict[str, Any]) -> list[ToxicSpec]:
    """The toxics that make link fault `fault` (pure; `link-down` has none)."""
    from faults.catalog import family
    from faults.link import LinkFamily, ToxicFamily

    fam = family(fault)
    if not isinstance(fam, LinkFamily):
        from faults.catalog import CATALOG

        raise BadInput(f"{fault!r} is not a link fault; link faults: "
                       f"{', '.join(n for n, f in CATALOG.items() if isinstance(f, LinkFamily))}")
    if not isinstance(fam, ToxicFamily):
        fam.check(params)
        return []
    return fam.toxics(params)


class ToxiproxyServer:
    """One Toxiproxy server, reached at `url` (e.g. http://127.0.0.1:8474)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url if "//" in url else f"http://{url}")
        if not parsed.hostname or not parsed.port:
            raise BadInput(f"Toxiproxy URL {url!r} needs a host and a port, e.g. http://127.0.0.1:8474")
        self.url = f"http://{parsed.hostname}:{parsed.port}"
        self.host, self.port = parsed.hostname, parsed.port
        self._counter = 0

    @contextmanager
    def _api(self) -> Iterator[Toxiproxy]:
        """The library pointed at this server, with its errors made actionable."""
        with _LOCK:
            client = Toxiproxy()
            client.update_api_consumer(self.host, self.port)
            try:
                yield client
            except requests.RequestException as e:
                raise InfraError(f"Toxiproxy at {self.url} is unreachable ({e.__class__.__name__}); "
                                 "is the lab up?") from None
            except NotFound as e:
                raise BadInput(f"Toxiproxy at {self.url}: not found: {_text(e)}") from None
            except (InvalidToxic, ProxyExists) as e:
                raise BadInput(f"Toxiproxy at {self.url} refused the request: {_text(e)}") from None

    def _rest(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = requests.request(method, self.url + path, timeout=_TIMEOUT, **kwargs)
        except requests.RequestException as e:
            raise InfraError(f"Toxiproxy at {self.url} is unreachable ({e.__class__.__name__}); "
                             "is the lab up?") from None
        if r.status_code >= 400:
            raise InfraError(f"Toxiproxy at {self.url}: {method} {path} -> {r.status_code}: {r.text.strip()}")
        return r.json() if r.content else None

    # -- reading -------------------------------------------------------------
    def state(self) -> dict[str, dict[str, Any]]:
        """Every proxy: {"enabled", "listen", "upstream", "toxics": [...]} (REST; one request)."""
        return dict(self._rest("GET", "/proxies"))

    def proxy_names(self) -> list[str]:
        return sorted(self.state())

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> str:
        """Create a proxy; returns the address it listens on."""
        with self._api() as api:
            return str(api.create(upstream=upstream, name=name, listen=listen).listen)

    def delete_proxy(self, name: str) -> None:
        with self._api() as api:
            proxy = api.get_proxy(name)
            if proxy is not None:
                proxy.destroy()

    # -- faults --------------------------------------------------------------
    def add_toxics(self, proxy: str, fault: str, params: dict[str, Any]) -> list[str]:
        """Add the toxics of link fault `fault` to `proxy`; returns their names."""
        names: list[str] = []
        with self._api() as api:
            p = api.get_proxy(proxy)
            if p is None:
                raise BadInput(f"no proxy {proxy!r} on {self.url}; proxies: {', '.join(api.proxies())}")
            try:
                for spec in toxics_for(fault, params):
                    self._counter += 1
                    name = f"{TOXIC_PREFIX}-{fault}-{spec.stream}-{self._counter}"
                    p.add_toxic(name=name, type=spec.type, stream=spec.stream,
                                toxicity=spec.toxicity, attributes=spec.attributes)
                    names.append(name)
            except BaseException:
                for name in names:
                    p.destroy_toxic(name)
                raise
        return names

    def remove_toxics(self, proxy: str, names: list[str]) -> None:
        """Remove the named toxics; ones already gone are fine (healing is idempotent).

        Toxiproxy answers 503 when a toxic cannot be detached in time (a multi-second
        latency toxic still holding data under traffic); the removal is retried until
        _HEAL_DEADLINE, so a slow link does not turn a run into "could not heal"."""
        for name in names:
            deadline = time.monotonic() + _HEAL_DEADLINE
            while True:
                try:
                    self._rest("DELETE", f"/proxies/{proxy}/toxics/{name}")
                    break
                except InfraError as e:
                    if "-> 404" in str(e):
                        break
                    if time.monotonic() > deadline or "-> 4" in str(e):
                        raise
                    time.sleep(0.5)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Enable or disable (link down: drop and refuse connections) one proxy."""
        with self._api() as api:
            p = api.get_proxy(proxy)
            if p is None:
                raise BadInput(f"no proxy {proxy!r} on {self.url}; proxies: {', '.join(api.proxies())}")
            p.enable() if enabled else p.disable()

    def reset(self) -> None:
        """Remove every toxic and enable every proxy (what a killed run left behind)."""
        self._rest("POST", "/reset")

    def heal(self, proxies: list[str]) -> None:
        """Remove every toxic from `proxies` and enable them; missing proxies are skipped."""
        state = self.state()
        for name in proxies:
            info = state.get(name)
            if info is None:
                continue
            self.remove_toxics(name, [t["name"] for t in info.get("toxics") or []])
            if not info.get("enabled", True):
                self._rest("POST", f"/proxies/{name}", json={"enabled": True})


def _text(e: Exception) -> str:
    arg = e.args[0] if e.args else ""
    return arg.decode("utf-8", "replace").strip() if isinstance(arg, bytes) else str(arg)


# The library keeps its defaults at class level; make sure nothing else silently
# talks to a default port on some other host.
APIConsumer.host = "127.0.0.1"
