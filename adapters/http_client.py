"""The HTTP client session of an adapter that talks to its target over HTTP."""

from __future__ import annotations

import asyncio

import aiohttp

__all__ = ["HttpClient"]


class HttpClient:
    """One aiohttp session per event loop: a session cannot outlive the loop it was
    made on, and the harness may drive an adapter from more than one loop."""

    _session: aiohttp.ClientSession | None = None
    _session_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession()
            self._session_loop = loop
        return self._session
