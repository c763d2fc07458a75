"""A tiny client of Toxiproxy's REST API, bound to one server.

toxiproxy-python keeps the server address as class-level state
(`Toxiproxy().update_api_consumer(host, port)`), so two servers in one process
would overwrite each other; the lab talks to its own server through this
per-instance client instead. Fault injectors may still use toxiproxy-python
after pointing it at `lab.toxiproxy_url`.
"""

from __future__ import annotations

from typing import Any

import requests

from harness.errors import InfraError

__all__ = ["ToxiproxyAPI"]


class ToxiproxyAPI:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            r = requests.request(method, f"{self.url}{path}", timeout=self.timeout, **kw)
        except requests.RequestException as e:
            raise InfraError(f"Toxiproxy at {self.url} unreachable: {e}") from None
        return r

    def proxies(self) -> dict[str, dict[str, Any]]:
        r = self._call("GET", "/proxies")
        r.raise_for_status()
        return r.json()

    def get(self, name: str) -> dict[str, Any] | None:
        r = self._call("GET", f"/proxies/{name}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def create(self, name: str, listen: str, upstream: str) -> dict[str, Any]:
        """Create `name`; an existing proxy of that name is replaced (it may be stale)."""
        if self.get(name) is not None:
            self.delete(name)
        r = self._call("POST", "/proxies",
                       json={"name": name, "listen": listen, "upstream": upstream, "enabled": True})
        if r.status_code >= 400:
            raise InfraError(f"Toxiproxy could not create proxy {name} on {listen} -> {upstream}: "
                             f"{r.status_code} {r.text.strip()}")
        return r.json()

    def delete(self, name: str) -> None:
        r = self._call("DELETE", f"/proxies/{name}")
        if r.status_code not in (204, 200, 404):
            r.raise_for_status()

    def set_enabled(self, name: str, enabled: bool) -> None:
        r = self._call("POST", f"/proxies/{name}", json={"enabled": enabled})
        r.raise_for_status()

    def add_toxic(self, proxy: str, type_: str, stream: str = "downstream", toxicity: float = 1.0,
                  name: str | None = None, **attributes: Any) -> dict[str, Any]:
        body = {"type": type_, "stream": stream, "toxicity": toxicity, "attributes": attributes,
                "name": name or f"{type_}_{stream}"}
        r = self._call("POST", f"/proxies/{proxy}/toxics", json=body)
        r.raise_for_status()
        return r.json()

    def remove_toxic(self, proxy: str, name: str) -> None:
        r = self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")
        if r.status_code not in (204, 200, 404):
            r.raise_for_status()
