"""HTTP on a proxied connection: per-request records and the HTTP toxics.

A connection is HTTP when its proxy says ``protocol: http``, or, with ``auto``, when the
client speaks first and its first bytes are an HTTP/1.x method. Then the client endpoint
feeds a :class:`RequestTap` and the server endpoint a :class:`ResponseTap` instead of the
links; both follow the messages with :class:`httpframing.Framer` and pass the bytes on to
the links (and their TCP toxics) unchanged. Requests are recorded when their response head
arrives. HTTP toxics act here, per request: ``http_fail_first`` and ``http_error`` answer
in place of the upstream (the request never reaches it), ``http_latency`` holds a request
before it goes upstream. When the bytes stop parsing as HTTP, the connection falls back to
plain forwarding (and is no longer recorded); no byte is lost or reordered either way.
"""

from __future__ import annotations

import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING

from .httpframing import HEAD, Framer, ParseError, response_has_body
from .stages import CLOSE, TIMER_SLACK

if TYPE_CHECKING:
    import random

    from .connection import Connection, Link
    from .toxics import Toxic

METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"TRACE ", b"CONNECT ")
HOLD_HIGH = 1024 * 1024  # bytes held by http_latency before the client is paused
HOLD_LOW = 256 * 1024


def looks_like_http(data: bytes) -> bool | None:
    """True if ``data`` starts with an HTTP method and a space, False if not, None if too short."""
    for method in METHODS:
        if data.startswith(method):
            return True
        if len(data) < len(method) and method.startswith(data):
            return None
    return False


def forward(link: Link, data: bytes) -> None:
    """Hand bytes to a link the way its source endpoint would."""
    if link.fast:
        link.write(data)
        counter = link.counter
        counter.received += len(data)
        counter.sent += len(data)
    else:
        link.ingest(data)


class Exchange:
    """One request on the connection, until its response is complete."""

    __slots__ = ("method", "path", "request_id", "started", "answer", "fault", "close", "recorded")

    def __init__(self, method: str, path: str, request_id: str | None, close: bool) -> None:
        self.method = method
        self.path = path
        self.request_id = request_id
        self.started = time.monotonic()  # the record's Unix start time is derived from it
        self.answer: bytes | None = None  # the response of an HTTP toxic, sent in place of the upstream's
        self.fault: str | None = None
        self.close = close
        self.recorded = False


def fault_response(exchange: Exchange, toxic: Toxic) -> bytes:
    """The answer of an http_error / http_fail_first toxic."""
    status = toxic.attributes["status"]
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    body = (toxic.attributes.get("body") or f"{status} {reason}\n").encode()
    lines = [f"HTTP/1.1 {status} {reason}", f"X-Linkproxy-Toxic: {toxic.name}"]
    if status >= 200 and status not in (204, 304):
        lines += ["Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}"]
        if exchange.method == "HEAD":
            body = b""
    else:
        body = b""
    if exchange.close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpState:
    """What both taps of one connection share: the exchanges in flight and the toxics' dice."""

    __slots__ = ("conn", "stats", "exchanges", "request_tap", "response_tap", "rngs", "closing")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.stats = conn.proxy.stats
        self.exchanges: deque[Exchange] = deque()
        self.rngs: dict[str, random.Random] = {}
        self.closing = False
        self.request_tap = RequestTap(self)
        self.response_tap = ResponseTap(self)
        self.stats.http_connections += 1

    def install(self) -> None:
        conn = self.conn
        conn.http = self
        conn.client.out = self.request_tap
        conn.server.out = self.response_tap

    def rng(self, toxic: Toxic) -> random.Random:
        """The toxic's randomness on this connection (repeatable with ``--seed``)."""
        rng = self.rngs.get(toxic.name)
        if rng is None:
            rng = self.rngs[toxic.name] = self.conn.proxy.rng_for(self.conn.index, toxic)
        return rng

    def roll(self, toxic: Toxic) -> bool:
        """True when this request is hit: one roll per request against the toxic's toxicity."""
        return toxic.toxicity >= 1.0 or self.rng(toxic).random() < toxic.toxicity

    def decide(self, exchange: Exchange) -> float:
        """Apply the proxy's HTTP toxics to a new request: set its answer, or return its delay (s)."""
        delay = 0.0
        for toxic in self.conn.proxy.http_toxics:
            attrs = toxic.attributes
            prefix = attrs.get("path_prefix")
            if prefix and not exchange.path.startswith(prefix):
                continue
            if toxic.type == "http_latency":
                if self.roll(toxic):
                    jitter = attrs["jitter"]
                    offset = self.rng(toxic).uniform(-jitter, jitter) if jitter else 0
                    delay += max(attrs["latency"] + offset, 0) / 1000.0
                continue
            if toxic.type == "http_fail_first":
                done = self.stats.fail_first_done.get(toxic.name, 0)
                if done >= attrs["count"] or not self.roll(toxic):
                    continue
                self.stats.fail_first_done[toxic.name] = done + 1
            elif not self.roll(toxic):
                continue
            exchange.fault = toxic.name
            exchange.answer = fault_response(exchange, toxic)
            return 0.0
        return delay

    def answer_ready(self) -> None:
        """Send the toxics' answers that are next in line (nothing of the upstream's ahead)."""
        exchanges = self.exchanges
        while exchanges and exchanges[0].answer is not None and not self.closing:
            exchange = exchanges.popleft()
            self.record(exchange, int(exchange.answer[9:12]))
            downstream = self.conn.downstream
            forward(downstream, exchange.answer)
            if exchange.close:
                self.closing = True
                downstream.source_ended(CLOSE)

    def record(self, exchange: Exchange, status: int | None) -> None:
        if exchange.recorded:
            return
        exchange.recorded = True
        duration = None if status is None else (time.monotonic() - exchange.started) * 1000.0
        self.stats.record(exchange.started, exchange.method, exchange.path, status, duration,
                          exchange.request_id, exchange.fault)

    def fall_back(self) -> None:
        """Stop following HTTP: both taps pass bytes on as they are from now on."""
        self.request_tap.passthrough = True
        self.response_tap.passthrough = True
        answers = [e for e in self.exchanges if e.answer is not None]
        self.exchanges.clear()
        for exchange in answers:  # already promised to the client: best effort, in order
            self.record(exchange, int(exchange.answer[9:12]))
            forward(self.conn.downstream, exchange.answer)

    def finish(self) -> None:
        """The connection is gone: requests without a response are recorded as such."""
        self.request_tap.stop()
        for exchange in self.exchanges:
            self.record(exchange, None)
        self.exchanges.clear()


class RequestTap:
    """The client's bytes: split into requests, some answered by toxics, some held, the rest sent."""

    __slots__ = ("http", "framer", "passthrough", "dropping", "due", "held", "held_bytes", "timer", "paused", "end")
    fast = False

    def __init__(self, http: HttpState) -> None:
        self.http = http
        self.framer = Framer(request=True)
        self.passthrough = False
        self.dropping = False  # the current request is answered by a toxic: its bytes go nowhere
        self.due = 0.0  # monotonic time before which the current request may not go upstream
        self.held: deque[tuple[float, bytes | None]] = deque()  # (due, data or None for the end)
        self.held_bytes = 0
        self.timer = None
        self.paused = False
        self.end = CLOSE  # how the client ended, once held behind a request

    def ingest(self, data: bytes) -> None:
        if self.passthrough:
            self.send(data)
            return
        framer = self.framer
        http = self.http
        if not self.held and not http.conn.proxy.http_toxics:
            lone = framer.lone_head(data)
            if lone is not None:  # one whole request in one read: record it and pass it on
                head, end = lone
                if not head.chunked and (head.length or 0) == len(data) - end and head.method != "CONNECT":
                    http.exchanges.append(Exchange(head.method, head.path, head.request_id, head.close))
                    forward(http.conn.upstream, data)
                    return
        start = 0
        try:
            for pos, event in framer.events(data):
                if event is HEAD:
                    head = framer.head
                    exchange = Exchange(head.method, head.path, head.request_id, head.close or head.expect_continue)
                    http.exchanges.append(exchange)
                    delay = http.decide(exchange) if http.conn.proxy.http_toxics else 0.0
                    self.dropping = exchange.answer is not None
                    self.due = exchange.started + delay if delay else 0.0
                    if framer.carried and not self.dropping:
                        self.send(framer.carried)
                    framer.expect_body(head.length, head.chunked)
                    if head.method == "CONNECT":
                        framer.tunnel()
                    if self.dropping:
                        start = pos
                        if exchange.close:
                            framer.tunnel()  # nothing after it reaches the upstream
                        http.answer_ready()
                else:  # END of the request's body
                    if not self.dropping and pos > start:
                        self.send(data[start:pos])
                    start = pos
                    self.dropping = False
        except ParseError:
            http.fall_back()
            rest = bytes(framer.buffer) if framer.partial_from >= 0 else b""
            self.send(data[start:] if not rest else data[start : framer.partial_from] + rest)
            return
        end = framer.partial_from if framer.partial_from >= 0 else len(data)
        if not self.dropping and end > start:
            self.send(data[start:end])

    def send(self, data: bytes) -> None:
        """Towards the upstream link, behind whatever http_latency holds."""
        due = self.due
        if self.held or (due and due > time.monotonic()):
            self.held.append((due, data))
            self.held_bytes += len(data)
            if self.held_bytes > HOLD_HIGH and not self.paused:
                self.paused = True
                self.http.conn.client.transport.pause_reading()
            if self.timer is None:
                self._release()
            return
        forward(self.http.conn.upstream, data)

    def source_ended(self, end: str) -> None:
        if self.held:
            self.end = end
            self.held.append((self.due, None))
            return
        self.http.conn.upstream.source_ended(end)

    def _release(self) -> None:
        """Send the held bytes whose time has come; never before it (monotonic clock)."""
        self.timer = None
        now = time.monotonic()
        link = self.http.conn.upstream
        held = self.held
        while held:
            due, data = held[0]
            if due > now:
                self.timer = link.loop.call_later(max(due - now, TIMER_SLACK), self._release)
                return
            held.popleft()
            if data is None:
                link.source_ended(self.end)
                continue
            self.held_bytes -= len(data)
            forward(link, data)
        if self.paused and self.held_bytes < HOLD_LOW:
            self.paused = False
            transport = self.http.conn.client.transport
            if not transport.is_closing():
                transport.resume_reading()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.held.clear()


class ResponseTap:
    """The server's bytes: passed on at once; each response head completes a record."""

    __slots__ = ("http", "framer", "passthrough")
    fast = False

    def __init__(self, http: HttpState) -> None:
        self.http = http
        self.framer = Framer(request=False)
        self.passthrough = False

    def ingest(self, data: bytes) -> None:
        http = self.http
        downstream = http.conn.downstream
        if self.passthrough:
            forward(downstream, data)
            return
        framer = self.framer
        exchanges = http.exchanges
        if exchanges:
            lone = framer.lone_head(data)
            if lone is not None:  # one whole response in one read: record it and pass it on
                head, end = lone
                status, exchange = head.status, exchanges[0]
                if status >= 200 and status != 101 and exchange.method != "CONNECT" and (
                        head.length == len(data) - end and not head.chunked
                        if response_has_body(exchange.method, status) else end == len(data)):
                    http.record(exchanges.popleft(), status)
                    forward(downstream, data)
                    if exchanges and exchanges[0].answer is not None:
                        http.answer_ready()
                    return
        start = 0
        try:
            for pos, event in framer.events(data):
                if not exchanges:
                    raise ParseError("a response without a request")
                exchange = exchanges[0]
                if event is HEAD:
                    status = framer.head.status
                    if status < 200 and status != 101:
                        framer.expect_body(0, False)  # informational: the final response follows
                        exchanges.appendleft(_INFORMATIONAL)
                        continue
                    http.record(exchange, status)
                    if status == 101 or (exchange.method == "CONNECT" and status < 300):
                        framer.tunnel()
                        http.fall_back()
                        break
                    if response_has_body(exchange.method, status):
                        framer.expect_body(framer.head.length, framer.head.chunked, until_close=framer.head.length is None)
                    else:
                        framer.expect_body(0, False)
                else:  # END
                    exchanges.popleft()
                    if exchanges and exchanges[0].answer is not None:
                        forward(downstream, data[start:pos])
                        start = pos
                        http.answer_ready()
        except ParseError:
            http.fall_back()
        if len(data) > start:
            forward(downstream, data[start:] if start else data)

    def source_ended(self, end: str) -> None:
        self.http.conn.downstream.source_ended(end)


class Sniffer:
    """``protocol: auto``: the client's first bytes decide whether the connection is HTTP.

    A server that speaks first (a database greeting) makes it TCP at once; see :class:`ServerFirst`.
    """

    __slots__ = ("conn", "early")
    fast = False

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.early = b""

    def install(self) -> None:
        conn = self.conn
        conn.client.out = self
        conn.server.out = ServerFirst(self)

    def ingest(self, data: bytes) -> None:
        if self.early:
            data, self.early = self.early + data, b""
        verdict = looks_like_http(data)
        if verdict is None:
            self.early = data
            return
        if verdict:
            HttpState(self.conn).install()
        else:
            self.decide_tcp()
        self.conn.client.data_received(data)

    def decide_tcp(self) -> None:
        """Plain TCP from here on: the endpoints feed the links directly (the fast path)."""
        conn = self.conn
        if conn.client.out is not self:
            return
        conn.client.out = conn.upstream
        conn.server.out = conn.downstream
        if self.early:
            early, self.early = self.early, b""
            conn.client.data_received(early)

    def source_ended(self, end: str) -> None:
        self.decide_tcp()
        self.conn.client.out.source_ended(end)


class ServerFirst:
    """Stands in for the downstream link until the client spoke: server bytes first mean TCP."""

    __slots__ = ("sniffer",)
    fast = False

    def __init__(self, sniffer: Sniffer) -> None:
        self.sniffer = sniffer

    def ingest(self, data: bytes) -> None:
        self.sniffer.decide_tcp()
        self.sniffer.conn.server.data_received(data)

    def source_ended(self, end: str) -> None:
        self.sniffer.decide_tcp()
        self.sniffer.conn.server.out.source_ended(end)


# A placeholder exchange for a 1xx answer: its END pops it and leaves the real request in front.
_INFORMATIONAL = Exchange("", "", None, False)
_INFORMATIONAL.recorded = True
