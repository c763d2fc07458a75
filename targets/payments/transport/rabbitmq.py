"""RabbitMQ transport (pika): durable queues, persistent messages, publisher confirms.

pika's BlockingConnection is not thread-safe and not asyncio, so each
connection lives in a thread of its own: one publisher thread (sends are
handed to it and awaited through a future) and one consumer thread per served
inbox. Both reconnect forever with a short backoff, because the broker is
killed and partitioned on purpose. A consumer acknowledges a message only after
its handler returned on the event loop, so a crash in between redelivers it.

URL: amqp://user:pass@host:port/vhost, or the URLs of a cluster's nodes joined by
commas. On a cluster, queues are quorum queues (replicated on a Raft majority; a
confirm means a majority stored it), and each new connection goes to the next node
in turn, so a client whose node died, paused or was cut off moves on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import queue
import threading
import time
import zlib
from typing import Any

import pika
import pika.exceptions

from targets.payments.transport.base import Handler, Message, Transport, TransportError

log = logging.getLogger("txchaos.target.rabbitmq")

_RETRY = 0.5  # seconds between reconnect attempts
_SEND_TIMEOUT = 10.0  # a send waits this long for a confirm before failing


def _params(url: str, client_id: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = 5  # detect a silent partition within ~10 s
    params.blocked_connection_timeout = 10
    params.socket_timeout = 3
    params.connection_attempts = 1
    params.client_properties = {"connection_name": client_id}
    return params


class _Nodes:
    """The broker's node URLs; each connection takes the next in turn (a client starts at
    a node of its own, so a cluster's clients spread over its nodes)."""

    def __init__(self, url: str, client_id: str, durable: bool = True) -> None:
        self.urls = [u.strip() for u in url.split(",") if u.strip()] or [url]
        self.clustered = len(self.urls) > 1
        self.durable = durable
        self._next = zlib.crc32(client_id.encode()) % len(self.urls)
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            url = self.urls[self._next]
            self._next = (self._next + 1) % len(self.urls)
            return url

    def declare(self, channel: Any, inbox: str) -> None:
        if not self.durable:  # a classic queue on the declaring node only, gone when it stops
            channel.queue_declare(queue=inbox, durable=False)
            return
        args = {"x-queue-type": "quorum"} if self.clustered else None
        channel.queue_declare(queue=inbox, durable=True, arguments=args)


class _Publisher(threading.Thread):
    """Owns the publishing connection; serves (inbox, body, dedup_id, future) jobs."""

    def __init__(self, nodes: _Nodes, client_id: str) -> None:
        super().__init__(name=f"rmq-pub-{client_id}", daemon=True)
        self.nodes, self.client_id = nodes, client_id
        self.jobs: queue.Queue[tuple[str, bytes, str, concurrent.futures.Future[None]] | None] = queue.Queue()
        self._conn: Any = None
        self._channel: Any = None
        self._declared: set[str] = set()

    def _connect(self) -> None:
        self._conn = pika.BlockingConnection(_params(self.nodes.take(), self.client_id + "-pub"))
        self._channel = self._conn.channel()
        self._channel.confirm_delivery()
        self._declared.clear()

    def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def run(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=1.0)
            except queue.Empty:
                self._heartbeat()
                continue
            if job is None:
                self._drop()
                return
            inbox, body, dedup_id, fut = job
            if fut.done():  # the sender gave up already
                continue
            try:
                if self._channel is None or not self._channel.is_open:
                    self._drop()
                    self._connect()
                if inbox not in self._declared:
                    self.nodes.declare(self._channel, inbox)
                    self._declared.add(inbox)
                self._channel.basic_publish(
                    exchange="",
                    routing_key=inbox,
                    body=body,
                    properties=pika.BasicProperties(
                        delivery_mode=pika.DeliveryMode.Persistent if self.nodes.durable
                        else pika.DeliveryMode.Transient,
                        content_type="application/json",
                        message_id=dedup_id,
                    ),
                    mandatory=True,
                )
                fut.set_result(None)
            except Exception as e:  # any broker/network failure: report, reconnect next time
                self._drop()
                if not fut.done():
                    fut.set_exception(TransportError(f"publish to {inbox} failed: {e!r}"))

    def _heartbeat(self) -> None:
        """Answer heartbeats while idle, so the broker keeps the connection."""
        if self._conn is not None:
            try:
                self._conn.process_data_events(0)
            except Exception:
                self._drop()


class _Consumer(threading.Thread):
    """Consumes one inbox, hands each message to the handler on the event loop."""

    def __init__(self, nodes: _Nodes, client_id: str, inbox: str, handler: Handler,
                 loop: asyncio.AbstractEventLoop, ack_first: bool) -> None:
        super().__init__(name=f"rmq-sub-{inbox}", daemon=True)
        self.nodes, self.client_id, self.inbox = nodes, client_id, inbox
        self.handler, self.loop, self.ack_first = handler, loop, ack_first
        self.stopping = threading.Event()
        self.done: asyncio.Future[None] = loop.create_future()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._consume_once()
                except Exception as e:
                    if not self.stopping.is_set():
                        log.warning("consumer of %s lost its connection (%r); reconnecting", self.inbox, e)
                        time.sleep(_RETRY)
        finally:
            self.loop.call_soon_threadsafe(lambda: self.done.done() or self.done.set_result(None))

    def _consume_once(self) -> None:
        conn = pika.BlockingConnection(_params(self.nodes.take(), self.client_id + "-sub"))
        try:
            ch = conn.channel()
            self.nodes.declare(ch, self.inbox)
            ch.basic_qos(prefetch_count=8)
            log.info("consuming %s", self.inbox)
            for method, _props, body in ch.consume(self.inbox, inactivity_timeout=0.5):
                if self.stopping.is_set():
                    break
                if method is None:
                    continue
                self._deliver(conn, ch, method.delivery_tag, body)
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def _deliver(self, conn: Any, ch: Any, tag: int, body: bytes) -> None:
        try:
            message = json.loads(body)
            if not isinstance(message, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            log.error("malformed message on %s acknowledged and dropped: %s: %r", self.inbox, e, body[:200])
            ch.basic_ack(tag)
            return
        if self.ack_first:
            ch.basic_ack(tag)
        fut = asyncio.run_coroutine_threadsafe(self.handler(message), self.loop)
        # wake the connection's ioloop the moment the handler finishes
        fut.add_done_callback(lambda _: conn.add_callback_threadsafe(lambda: None))
        while not fut.done():
            conn.process_data_events(time_limit=1)  # answers heartbeats meanwhile
        try:
            fut.result()
        except Exception as e:
            log.warning("handler failed on %s (%r); message will be redelivered", self.inbox, e)
            if not self.ack_first:
                conn.sleep(0.2)
                ch.basic_nack(tag, requeue=True)
            return
        if not self.ack_first:
            ch.basic_ack(tag)


class RabbitMQTransport(Transport):
    def __init__(self, url: str, *, client_id: str, durable: bool = True) -> None:
        self.url, self.client_id = url, client_id
        self.nodes = _Nodes(url, client_id, durable)
        self._publisher: _Publisher | None = None
        self._consumers: list[_Consumer] = []

    async def connect(self) -> None:
        if self._publisher is None:
            self._publisher = _Publisher(self.nodes, self.client_id)
            self._publisher.start()

    async def send(self, inbox: str, message: Message, *, dedup_id: str) -> None:
        await self.connect()
        assert self._publisher is not None
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._publisher.jobs.put((inbox, json.dumps(message).encode(), dedup_id, fut))
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), _SEND_TIMEOUT)
        except asyncio.TimeoutError:
            fut.cancel()
            raise TransportError(f"no publisher confirm for {inbox} within {_SEND_TIMEOUT:.0f}s") from None

    async def serve(self, inbox: str, handler: Handler, *, ack_before_handling: bool = False) -> None:
        consumer = _Consumer(self.nodes, self.client_id, inbox, handler,
                             asyncio.get_running_loop(), ack_before_handling)
        self._consumers.append(consumer)
        consumer.start()
        await consumer.done

    async def close(self) -> None:
        for c in self._consumers:
            c.stopping.set()
        if self._publisher is not None:
            self._publisher.jobs.put(None)
            self._publisher = None
        for c in self._consumers:
            await asyncio.to_thread(c.join, 3)
        self._consumers.clear()
