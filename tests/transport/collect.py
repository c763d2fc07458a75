"""A recording handler and bounded waits for the transport tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import AsyncIterator

from targets.payments.transport.base import Handler, Message, Transport, TransportError


class Collector:
    """Records every message handed to it; `fail_first` makes the first n calls raise."""

    def __init__(self, fail_first: int = 0) -> None:
        self.messages: list[Message] = []
        self.calls = 0
        self.fail_first = fail_first
        self._changed = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError(f"handler failure {self.calls} (on purpose)")
        self.messages.append(message)
        self._changed.set()

    async def wait_contains(self, message: Message, timeout: float) -> None:
        """Wait until `message` was handled; AssertionError if it is not in time."""
        deadline = time.monotonic() + timeout
        while message not in self.messages:
            assert time.monotonic() < deadline, f"{message} not handled in {timeout}s: {self.messages}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass

    async def wait_for(self, count: int, timeout: float) -> list[Message]:
        """The first `count` messages; AssertionError if they do not arrive in time."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(self.messages)} of {count} messages "
                                     f"in {timeout}s: {self.messages}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.messages[:count]


@asynccontextmanager
async def serving(transport: Transport, inbox: str, handler: Handler,
                  **kw: bool) -> AsyncIterator[asyncio.Task[None]]:
    """Serve `inbox` in the background for the duration of the block, then close."""
    task = asyncio.create_task(transport.serve(inbox, handler, **kw))
    try:
        yield task
    finally:
        await transport.close()
        await asyncio.wait_for(task, 20)


async def send_until_confirmed(transport: Transport, inbox: str, message: Message, *,
                               dedup_id: str, timeout: float) -> int:
    """Retry a send the way a service does; returns how many attempts failed."""
    deadline = time.monotonic() + timeout
    failures = 0
    while True:
        try:
            await transport.send(inbox, message, dedup_id=dedup_id)
            return failures
        except TransportError:
            failures += 1
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.2)
