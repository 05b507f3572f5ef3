"""Connections and links: the data path of the link proxy.

Each accepted client gets a :class:`Connection` with two :class:`Link` objects, ``upstream``
(client → server) and ``downstream`` (server → client). A link without toxics is on the
fast path: ``Endpoint.data_received`` writes the bytes straight into the other transport,
and flow control is the transports' own (``pause_writing`` of the sink pauses reading of the
source). A link with toxics feeds its chain of :mod:`stages`; when the last toxic goes, the
chain has already handed everything on, so the link goes back to the fast path at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING

from .httptap import HttpState, Sniffer
from .metrics import ByteCounter
from .stages import CLOSE, FIN, Chunk, Stage, make_stage
from .toxics import Toxic

if TYPE_CHECKING:
    import random

    from .proxy import Proxy

log = logging.getLogger("stacklet.linkproxy")

DIAL_TIMEOUT = 10.0  # seconds to connect to the upstream before closing the client
PIPELINE_HIGH = 4 * 1024 * 1024  # bytes held by a link's toxics before its source is paused
PIPELINE_LOW = 1024 * 1024  # ... and resumed
WRITE_BUFFER_HIGH = 1024 * 1024  # transport write buffer before the source is paused
WRITE_BUFFER_LOW = 256 * 1024
EARLY_LIMIT = 256 * 1024  # client bytes kept while the upstream is dialled before reading pauses
MAX_HOPS = 8  # a connection that came through this server's own proxies more often is a loop
MAX_DIALS = 256  # upstream dials in progress per proxy; clients beyond it are closed at once

# Local address of every upstream socket this process has open -> its connection. A client
# whose address is in it came from this server itself (one proxy dialling another, or itself).
_OUTGOING: dict[tuple, Connection] = {}


class Endpoint(asyncio.Protocol):
    """One socket of a proxied connection: its reads feed ``out``, its writes come from ``inbound``."""

    __slots__ = ("conn", "transport", "out", "inbound", "lost")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.out: Link | PendingLink | None = None
        self.inbound: Link | None = None
        self.lost = False

    def data_received(self, data: bytes) -> None:
        link = self.out
        if link.fast:
            link.write(data)
            counter = link.counter
            size = len(data)
            counter.received += size
            counter.sent += size
        else:
            link.ingest(data)

    def eof_received(self) -> bool:
        conn = self.conn
        if conn.eof_end is CLOSE and self.out.fast and conn.upstream.fast and conn.downstream.fast:
            conn.close_quietly()  # nothing in flight on either link: Toxiproxy's full close, at once
        else:
            self.out.source_ended(conn.eof_end)
        return True  # the connection decides when to close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if isinstance(exc, ConnectionResetError):
            self.conn.count_reset()
        self.conn.endpoint_lost(self)

    def pause_writing(self) -> None:
        if self.inbound is not None:
            self.inbound.set_sink_blocked(True)

    def resume_writing(self) -> None:
        if self.inbound is not None:
            self.inbound.set_sink_blocked(False)


class ClientEndpoint(Endpoint):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.conn.client_connected()


class UpstreamEndpoint(Endpoint):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        local = transport.get_extra_info("sockname")
        if local is not None:
            self.conn.local_address = local[:2]
            _OUTGOING[self.conn.local_address] = self.conn
        self.conn.upstream_connected()


class PendingLink:
    """Stands in for the upstream link while the upstream is dialled: keeps early client bytes.

    The client is read during the dial (its first bytes are forwarded the moment the upstream
    answers) and paused only if it sends more than EARLY_LIMIT. Being a separate object keeps
    a None check out of ``Endpoint.data_received``.
    """

    __slots__ = ("conn", "early", "size", "ended", "paused")
    fast = False

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.early: list[bytes] = []
        self.size = 0
        self.ended = False
        self.paused = False

    def ingest(self, data: bytes) -> None:
        self.early.append(data)
        self.size += len(data)
        if self.size > EARLY_LIMIT and not self.paused:
            self.paused = True
            self.conn.client.transport.pause_reading()

    def source_ended(self, end: str) -> None:
        self.ended = True


class Link:
    """One direction of a connection: source endpoint → toxic stages → sink endpoint.

    The link is also the last element of its stage chain: ``push()`` writes to the sink.
    """

    __slots__ = (
        "conn", "loop", "stream", "source", "sink", "write", "counter", "stages", "fast",
        "finished", "source_done", "buffered", "held_back", "sink_blocked", "reading_paused",
    )

    def __init__(self, conn: Connection, stream: str, source: Endpoint, sink: Endpoint, counter: ByteCounter):
        self.conn = conn
        self.loop = conn.loop
        self.stream = stream
        self.source = source
        self.sink = sink
        self.write = sink.transport.write
        self.counter = counter
        self.stages: list[Stage] = []
        self.fast = True
        self.finished = False
        self.source_done = False
        self.buffered = 0
        self.held_back = False
        self.sink_blocked = False
        self.reading_paused = False

    # -- toxic path --------------------------------------------------------------------

    def ingest(self, data: bytes) -> None:
        """A read from the source while the link has toxics."""
        if self.finished or self.source_done:
            return
        self.counter.received += len(data)
        self.stages[0].push(Chunk(data, time.monotonic()))

    def push(self, chunk: Chunk) -> None:
        """End of the chain: write to the sink, or end the link."""
        if self.finished:
            return
        data = chunk.data
        if data is not None:
            self.write(data)
            self.counter.sent += len(data)
        else:
            self.finish(chunk.end)

    def source_ended(self, end: str) -> None:
        """The source half-closed (FIN) or is gone (CLOSE): pass the end along the chain."""
        if self.source_done:
            return
        self.source_done = True
        if self.finished:
            return
        if self.stages:
            self.stages[0].push(Chunk(None, time.monotonic(), end))
        else:
            self.finish(end)

    def finish(self, end: str) -> None:
        if self.finished:
            return
        self._stop()
        self.conn.link_finished(self, end)

    def sink_lost(self) -> None:
        """Nothing more can be written: drop what the toxics hold."""
        self._stop()

    def _stop(self) -> None:
        self.finished = True
        self.fast = False
        for stage in self.stages:
            stage.discard()

    # -- flow control --------------------------------------------------------------------

    def hold(self, chunk: Chunk) -> None:
        if chunk.data is not None:
            self.buffered += len(chunk.data)
            if self.buffered > PIPELINE_HIGH and not self.held_back:
                self.held_back = True
                self._update_reading()

    def release(self, chunk: Chunk) -> None:
        if chunk.data is not None:
            self.buffered -= len(chunk.data)
            if self.held_back and self.buffered < PIPELINE_LOW:
                self.held_back = False
                self._update_reading()

    def set_sink_blocked(self, blocked: bool) -> None:
        self.sink_blocked = blocked
        self._update_reading()

    def _update_reading(self) -> None:
        paused = self.held_back or self.sink_blocked
        if paused == self.reading_paused:
            return
        self.reading_paused = paused
        transport = self.source.transport
        if self.source_done or self.source.lost or transport.is_closing():
            return
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # -- chain edits -----------------------------------------------------------------------

    def add_toxic(self, toxic: Toxic, rng: random.Random) -> None:
        """Append a stage; bytes already written are ahead of it, later ones go through it."""
        stage = make_stage(self, toxic, rng, self)
        if self.stages:
            self.stages[-1].next = stage
        self.stages.append(stage)
        if self.finished:
            stage.discard()
            return
        self.fast = False
        if stage.active:
            stage.begin()

    def update_toxic(self, toxic: Toxic) -> None:
        for stage in self.stages:
            if stage.toxic.name == toxic.name:
                if not self.finished:
                    stage.reconfigure(toxic)
                return

    def remove_toxic(self, name: str) -> None:
        """Take a stage out: it hands what it holds to its successor, then the chain closes up."""
        for index, stage in enumerate(self.stages):
            if stage.toxic.name == name:
                del self.stages[index]
                stage.detach()
                if index > 0:
                    self.stages[index - 1].next = stage.next
                self.fast = not self.stages and not self.finished
                return


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    __slots__ = (
        "proxy", "loop", "index", "client", "server", "upstream", "downstream",
        "dial_task", "closed", "reset_timer", "eof_end", "hops", "local_address", "reset_counted", "http",
    )

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.index = proxy.next_connection_index()
        self.client = ClientEndpoint(self)
        self.server = UpstreamEndpoint(self)
        self.upstream: Link | None = None
        self.downstream: Link | None = None
        self.dial_task: asyncio.Task | None = None
        self.closed = False
        self.reset_timer: asyncio.TimerHandle | None = None
        self.eof_end = FIN if proxy.half_close else CLOSE  # what a peer's FIN becomes
        self.hops = 0  # proxies of this server the client's bytes went through before this one
        self.local_address: tuple | None = None  # of the upstream socket, once connected
        self.reset_counted = False
        self.http: HttpState | None = None  # set when the connection is followed as HTTP

    def client_connected(self) -> None:
        proxy = self.proxy
        proxy.stats.connections_total += 1
        self.client.out = PendingLink(self)
        proxy.connections.add(self)
        if len(proxy.dialing) >= MAX_DIALS:
            proxy.dial_failed(RuntimeError(f"more than {MAX_DIALS} upstream dials in progress"))
            self.close()
            return
        proxy.watch_dial(self)
        self.dial_task = self.loop.create_task(self._dial())

    async def _loops(self) -> bool:
        """True when this client is this server's own upstream socket, MAX_HOPS times over."""
        peer = self.client.transport.get_extra_info("peername")
        if not peer:
            return False
        origin = _OUTGOING.get(peer[:2])
        if origin is None and peer[0] in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            await asyncio.sleep(0)  # the dialling side may learn its address in the same loop turn
            origin = _OUTGOING.get(peer[:2])
        if origin is not None:
            self.hops = origin.hops + 1
        return self.hops > MAX_HOPS

    async def _dial(self) -> None:
        proxy = self.proxy
        try:
            if await self._loops():
                raise RuntimeError(f"connection loop: the client came through this server {MAX_HOPS} times")
            host, port = proxy.upstream_address()
            await self.loop.create_connection(lambda: self.server, host, port)
        except asyncio.CancelledError:
            if self.dial_task is not None and not self.closed:  # the dial watch gave up on it
                proxy.dial_failed(TimeoutError(f"no answer within {DIAL_TIMEOUT:g} s"))
            self.close()
        except (OSError, ValueError, RuntimeError) as exc:
            if not self.closed:  # not a client that left during the dial
                proxy.dial_failed(exc)
            self.close()
        finally:
            self.dial_task = None
            proxy.dialing.pop(self, None)

    def upstream_connected(self) -> None:
        """The upstream socket is connected: wire the links, then let the client's bytes flow."""
        if self.closed or self.client.lost:
            self.server.transport.close()
            return
        proxy = self.proxy
        client, server = self.client, self.server
        pending = client.out
        for endpoint in (client, server):
            endpoint.transport.set_write_buffer_limits(WRITE_BUFFER_HIGH, WRITE_BUFFER_LOW)
        self.upstream = Link(self, "upstream", client, server, proxy.counters["upstream"])
        self.downstream = Link(self, "downstream", server, client, proxy.counters["downstream"])
        client.out = server.inbound = self.upstream
        server.out = client.inbound = self.downstream
        if proxy.toxics:
            for toxic in proxy.toxics_in_order():
                self.add_toxic(toxic)
        if proxy.protocol == "http":
            HttpState(self).install()
        elif proxy.protocol == "auto":
            Sniffer(self).install()
        for data in pending.early:
            client.data_received(data)
        if pending.ended:
            client.out.source_ended(self.eof_end)
        elif pending.paused:
            client.transport.resume_reading()

    def link_of(self, toxic: Toxic) -> Link | None:
        """The link a TCP toxic acts on (None for HTTP toxics: they act in :mod:`httptap`)."""
        if toxic.is_http:
            return None
        return self.upstream if toxic.stream == "upstream" else self.downstream

    def add_toxic(self, toxic: Toxic) -> None:
        link = self.link_of(toxic)
        if link is not None:
            link.add_toxic(toxic, self.proxy.rng_for(self.index, toxic))

    def update_toxic(self, toxic: Toxic) -> None:
        link = self.link_of(toxic)
        if link is not None:
            link.update_toxic(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        link = self.link_of(toxic)
        if link is not None:
            link.remove_toxic(toxic.name)

    # -- ends --------------------------------------------------------------------------

    def link_finished(self, link: Link, end: str) -> None:
        """A link delivered its end: half-close (FIN) or close (CLOSE) its sink.

        A close also ends the other direction; when that one has no toxics nothing is in
        flight on it, so both sockets are closed at once (Toxiproxy's full close).
        """
        sink = link.sink
        if not sink.lost:
            transport = sink.transport
            if end == FIN and transport.can_write_eof() and not transport.is_closing():
                transport.write_eof()
            else:
                transport.close()
        if end == CLOSE:
            other = self.downstream if link is self.upstream else self.upstream
            if other.fast:
                other.source_ended(CLOSE)
        self._close_when_done()

    def endpoint_lost(self, endpoint: Endpoint) -> None:
        if self.upstream is None or self.downstream is None:  # lost while dialling, or a failed dial
            self.close()
            return
        if self.upstream.fast and self.downstream.fast:
            self.close_quietly()
        else:
            endpoint.inbound.sink_lost()
            endpoint.out.source_ended(CLOSE)
        self._close_when_done()

    def close_quietly(self) -> None:
        """Both links are on the fast path (nothing held): end them and close both sockets."""
        for link in (self.upstream, self.downstream):
            link.finished = link.source_done = True
            link.fast = False
        for endpoint in (self.client, self.server):
            if not endpoint.lost:
                endpoint.transport.close()

    def _close_when_done(self) -> None:
        if not (self.upstream.finished and self.downstream.finished):
            return
        for endpoint in (self.client, self.server):
            if not endpoint.lost and not endpoint.transport.is_closing():
                endpoint.transport.close()
        if self.client.lost and self.server.lost:
            self._forget()
            self._release()

    def reset_later(self, delay: float) -> None:
        """Reset both sockets (TCP RST) after ``delay`` seconds; a pending reset is kept."""
        if self.reset_timer is None and not self.closed:
            self.reset_timer = self.loop.call_later(delay, self.reset)

    def count_reset(self) -> None:
        """Count this connection once in its proxy's resets."""
        if not self.reset_counted:
            self.reset_counted = True
            self.proxy.stats.resets += 1

    def reset(self) -> None:
        """Abort both sockets with SO_LINGER 0 so both peers get a TCP RST."""
        self.reset_timer = None
        self.count_reset()
        for link in (self.upstream, self.downstream):
            if link is not None:
                link.sink_lost()
        for endpoint in (self.client, self.server):
            transport = endpoint.transport
            if transport is None or endpoint.lost:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            transport.abort()

    def close(self) -> None:
        """Close both sockets now (proxy disabled, deleted or changed; failed dial)."""
        if self.closed:
            return
        self.closed = True
        task, self.dial_task = self.dial_task, None
        if task is not None and asyncio.current_task() is not task:
            task.cancel()
        for link in (self.upstream, self.downstream):
            if link is not None:
                link.sink_lost()
        for endpoint in (self.client, self.server):
            transport = endpoint.transport
            if transport is not None and not endpoint.lost:
                if transport.get_write_buffer_size():
                    transport.abort()  # a peer that does not read must not keep it open
                else:
                    transport.close()
        self._forget()

    def _forget(self) -> None:
        self.closed = True
        if self.http is not None:
            self.http.finish()
        if self.local_address is not None:
            if _OUTGOING.get(self.local_address) is self:
                del _OUTGOING[self.local_address]
            self.local_address = None
        if self.reset_timer is not None:
            self.reset_timer.cancel()
            self.reset_timer = None
        self.proxy.connections.discard(self)

    def _release(self) -> None:
        """Both sockets are gone: break the reference cycles so refcounting frees everything."""
        for link in (self.upstream, self.downstream):
            if link is not None:
                link.stages = []
        for endpoint in (self.client, self.server):
            endpoint.out = endpoint.inbound = None
        self.http = None
