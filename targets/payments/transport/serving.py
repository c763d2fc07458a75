"""What the asyncio transports share: a closing flag, serve-loop tasks, quiet shutdown.

A serve loop sleeps through `pause()` so `close()` wakes it at once, and
`close()` gives running handlers a bounded time to finish before cancelling
them, so a shutdown never hangs on a broker that is down.
"""

from __future__ import annotations

import asyncio


class ServingTasks:
    def __init__(self) -> None:
        self._closed = asyncio.Event()
        self._serving: set[asyncio.Task[None]] = set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def track(self) -> asyncio.Task[None] | None:
        """Register the calling serve loop's task; returns it (to `untrack` later)."""
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)  # type: ignore[arg-type]
        return task  # type: ignore[return-value]

    def untrack(self, task: asyncio.Task[None] | None) -> None:
        if task is not None:
            self._serving.discard(task)

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the transport closes meanwhile."""
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def close(self) -> None:
        """Stop every serve loop: wait up to 10 s for handlers, then cancel."""
        self._closed.set()
        current = asyncio.current_task()
        pending = [t for t in self._serving if t is not current]
        if pending:
            _done, still = await asyncio.wait(pending, timeout=10)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=5)


async def quietly(awaitable: object) -> None:
    """Await a shutdown or keep-alive step whose failure must not hide the real outcome."""
    try:
        await asyncio.wait_for(awaitable, 10)  # type: ignore[arg-type]
    except Exception:
        pass
