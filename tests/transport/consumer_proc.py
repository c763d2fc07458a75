"""A service-like process serving one inbox, for crash tests: SIGKILL it mid-handling.

Usage: python consumer_proc.py URL INBOX CLIENT_ID MARKER_DIR hang|ok
Writes MARKER_DIR/<client>.received when a message reaches the handler; in
"hang" mode the handler never returns (so the test kills it mid-handling), in
"ok" mode it appends the message to MARKER_DIR/<client>.handled and returns.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from targets.payments.transport.base import Message, make_transport


async def main(url: str, inbox: str, client_id: str, markers: Path, mode: str) -> None:
    transport = make_transport(url, client_id=client_id)
    await transport.connect()

    async def handler(message: Message) -> None:
        with open(markers / f"{client_id}.received", "a") as f:
            f.write(json.dumps(message) + "\n")
        if mode == "hang":
            await asyncio.Event().wait()
        with open(markers / f"{client_id}.handled", "a") as f:
            f.write(json.dumps(message) + "\n")

    await transport.serve(inbox, handler)


if __name__ == "__main__":
    url, inbox, client_id, markers, mode = sys.argv[1:6]
    asyncio.run(main(url, inbox, client_id, Path(markers), mode))
