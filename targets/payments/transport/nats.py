"""NATS JetStream transport (nats-py): one file-storage stream, one durable pull consumer per inbox.

Delivery without loss, the way JetStream documents it: `send` publishes with a
`Nats-Msg-Id` header (the stream drops a repeat inside its duplicate window) and
returns only after the stream's PubAck; consumers ack explicitly and only after
the handler returned, nak with a delay when it raised, and tell the server a
long handler is still working, so `ack_wait` can stay short and a crashed
consumer's messages come back within seconds.

The client stays on the address it was given: under chaos that address is a
Toxiproxy proxy, and a client that followed the server's advertised URLs would
route around the faults. It reconnects forever with short waits.

URL: nats://host:port[/namespace], or several servers of one cluster joined by commas
(nats://h:p1,nats://h:p2,nats://h:p3/namespace): the stream is then replicated on as
many servers (R3 on three), the client moves between them in turn. The optional
namespace gets its own stream and subjects, so several systems can share one server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from targets.payments.transport.serving import ServingTasks, quietly
from targets.payments.transport.base import (Handler, Message, Transport, TransportError,
                                              parse_broker_url)

__all__ = ["NatsTransport"]

log = logging.getLogger(__name__)

_NAME_OK = re.compile(r"^[A-Za-z0-9_-]+$")
ACK_WAIT = 5.0  # seconds before an unacknowledged message is redelivered
DUPLICATE_WINDOW = 120.0  # seconds in which a repeated Nats-Msg-Id is dropped
FETCH_BATCH = 16


def parse_nats_url(url: str) -> tuple[list[str], str]:
    """(server URLs without path, namespace or "") of one nats:// URL or several joined by
    commas (the namespace written on the last); ValueError if malformed."""
    servers, namespace = [], ""
    for part in url.split(","):
        host, port, namespace = parse_broker_url(part.strip(), "nats", _NAME_OK, "letters, digits, _ -")
        servers.append(f"nats://{host}:{port}")
    return servers, namespace


def decode(data: bytes) -> Message | None:
    """The JSON object in a message, or None if it is not one (logged and skipped)."""
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return message if isinstance(message, dict) else None


def msg_id(inbox: str, dedup_id: str) -> str:
    """The Nats-Msg-Id of a message. The stream de-duplicates across all its
    subjects, so the id is scoped by inbox: the same decision sent to two
    participants under one dedup_id must reach both."""
    return f"{inbox}/{dedup_id}"


def redelivery_delay(deliveries: int) -> float:
    """Nak delay after the n-th failed delivery: 0.2 s doubling up to 2 s."""
    return min(2.0, 0.2 * 2 ** max(0, deliveries - 1))


class NatsTransport(Transport):
    def __init__(self, url: str, *, client_id: str, send_timeout: float = 5.0, durable: bool = True) -> None:
        self.servers, namespace = parse_nats_url(url)
        self.durable_stream = durable  # False: an R1 stream in memory (a mutant's settings)
        self.server = ",".join(self.servers)  # for messages
        self.namespace = namespace
        self.client_id = client_id
        self.send_timeout = send_timeout
        self.stream = f"PAYMENTS_{namespace}" if namespace else "PAYMENTS"
        self.subject_prefix = f"payments_{namespace}" if namespace else "payments"
        if not durable:  # never the durable stream of another system on the same server
            self.stream, self.subject_prefix = f"{self.stream}_MEMORY", f"{self.subject_prefix}_memory"
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._lock = asyncio.Lock()
        self._stream_ready = False
        self._tasks = ServingTasks()

    # -- names ---------------------------------------------------------------
    def subject(self, inbox: str) -> str:
        if not _NAME_OK.match(inbox):
            raise ValueError(f"bad inbox name {inbox!r}: use letters, digits, _ -")
        return f"{self.subject_prefix}.{inbox}"

    def durable(self, inbox: str) -> str:
        self.subject(inbox)  # validates the name
        return f"inbox-{inbox}"

    # -- connection ----------------------------------------------------------
    async def connect(self) -> None:
        """Connect and declare the stream; TransportError if the server is unreachable."""
        await self._jetstream()

    async def _jetstream(self) -> JetStreamContext:
        async with self._lock:
            if self._tasks.closed:
                raise TransportError("transport is closed")
            if self._nc is None or self._nc.is_closed:
                self._nc, self._js, self._stream_ready = await self._open(), None, False
            if self._js is None:
                self._js = self._nc.jetstream(timeout=self.send_timeout)
            if not self._stream_ready:
                await self._declare_stream(self._js)
                self._stream_ready = True
            return self._js

    async def _open(self) -> NatsClient:
        own = [urlsplit(s).netloc for s in self.servers]
        turn = itertools.count(1)

        def stay_on_own_address(servers: list, info: dict) -> tuple[object | None, float]:
            # Never follow advertised cluster URLs: they would bypass the proxy. Among the
            # given servers, the next in turn (on a cluster, a cut node is left).
            netloc = own[next(turn) % len(own)]
            mine = next((s for s in servers if s.uri.netloc == netloc), None)
            return mine, 0.25

        async def on_error(e: Exception) -> None:
            log.debug("nats client %s: %r", self.client_id, e)

        try:
            return await nats.connect(
                servers=self.servers,
                name=self.client_id,
                dont_randomize=True,
                reconnect_to_server_handler=stay_on_own_address,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                connect_timeout=2,
                ping_interval=2,
                max_outstanding_pings=2,
                allow_reconnect=True,
                error_cb=on_error,
            )
        except Exception as e:
            raise TransportError(f"NATS at {self.server} unreachable: {e!r}") from e

    async def _declare_stream(self, js: JetStreamContext) -> None:
        config = StreamConfig(name=self.stream, subjects=[f"{self.subject_prefix}.>"],
                              storage=StorageType.FILE if self.durable_stream else StorageType.MEMORY,
                              duplicate_window=DUPLICATE_WINDOW,
                              num_replicas=len(self.servers) if self.durable_stream else 1)
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.stream_info(self.stream)  # exists with another config: use it as it is
        except Exception as e:
            raise TransportError(f"cannot declare JetStream stream {self.stream!r} "
                                 f"at {self.server}: {e!r}") from e

    # -- sending -------------------------------------------------------------
    async def send(self, inbox: str, message: Message, *, dedup_id: str) -> None:
        subject = self.subject(inbox)
        js = await self._jetstream()
        payload = json.dumps(message, separators=(",", ":")).encode()
        try:
            await js.publish(subject, payload, timeout=self.send_timeout, stream=self.stream,
                             headers={"Nats-Msg-Id": msg_id(inbox, dedup_id)})
        except Exception as e:  # timeout, no responders, disconnect: the caller retries
            self._stream_ready = False  # declared again next time, should the stream be gone
            raise TransportError(f"JetStream did not confirm message {dedup_id!r} "
                                 f"to {subject!r}: {e!r}") from e

    # -- serving -------------------------------------------------------------
    async def serve(self, inbox: str, handler: Handler, *, ack_before_handling: bool = False) -> None:
        subject, durable = self.subject(inbox), self.durable(inbox)
        task = self._tasks.track()
        wait = 0.1
        try:
            while not self._tasks.closed:
                sub = None
                try:
                    js = await self._jetstream()
                    sub = await js.pull_subscribe(
                        subject, durable=durable, stream=self.stream,
                        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT,
                                              max_deliver=-1, filter_subject=subject))
                    wait = 0.1
                    await self._consume(js, sub, durable, handler, ack_before_handling)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.warning("nats consumer of %s failed (%r); resubscribing", subject, e)
                    self._stream_ready = False
                    await self._tasks.pause(wait)
                    wait = min(2.0, wait * 2)
                finally:
                    if sub is not None:
                        await quietly(sub.unsubscribe())
        finally:
            self._tasks.untrack(task)

    async def _consume(self, js: JetStreamContext, sub: JetStreamContext.PullSubscription, durable: str,
                       handler: Handler, ack_before_handling: bool) -> None:
        idle = 0
        while not self._tasks.closed:
            try:
                msgs = await sub.fetch(FETCH_BATCH, timeout=1)
            except asyncio.TimeoutError:  # also nats.errors.TimeoutError: nothing new
                # Keep the subscription: a late answer to this pull lands in its
                # queue and the next fetch takes it. Resubscribing would leave the
                # server's pending pull on a dead inbox, swallowing new messages
                # until their ack_wait ran out. But a pull on a consumer that is gone
                # (a stream lost with its server) only ever times out: now and then,
                # check that it exists (NotFoundError resubscribes).
                idle += 1
                if idle % 5 == 0:
                    await js.consumer_info(self.stream, durable, timeout=self.send_timeout)
                continue
            idle = 0
            pending = list(msgs)
            keepalive = asyncio.create_task(self._keep_alive(pending))
            try:
                while pending:
                    await self._handle(pending[0], handler, ack_before_handling)
                    pending.pop(0)
            finally:
                keepalive.cancel()

    async def _keep_alive(self, pending: list[Msg]) -> None:
        """Tell the server that fetched messages are still being worked on."""
        while True:
            await asyncio.sleep(ACK_WAIT / 3)
            for msg in list(pending):
                await quietly(msg.in_progress())

    async def _handle(self, msg: Msg, handler: Handler, ack_before_handling: bool) -> None:
        message = decode(msg.data)
        if message is None:
            log.error("skipping a message that is not a JSON object on %s: %.200r",
                      msg.subject, msg.data)
            await msg.ack()
            return
        if ack_before_handling:
            await msg.ack()
        try:
            await handler(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            deliveries = msg.metadata.num_delivered or 1
            log.exception("handler failed on %s (delivery %d); it will be redelivered",
                          msg.subject, deliveries)
            if not ack_before_handling:
                await msg.nak(delay=redelivery_delay(deliveries))
            return
        if not ack_before_handling:
            await msg.ack()

    # -- closing -------------------------------------------------------------
    async def close(self) -> None:
        await self._tasks.close()
        if self._nc is not None:
            nc, self._nc, self._js = self._nc, None, None
            await quietly(nc.close())

