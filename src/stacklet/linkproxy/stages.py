"""What each toxic does to the bytes of one link (one direction of one connection).

A link with toxics is a chain of stages in toxic insertion order. A stage receives chunks
through ``push()`` and hands them, changed or delayed, to ``next``: the following stage or,
at the end, the link itself, which writes to the sink socket.

Everything runs on the event loop thread and stages wait with loop timers, never with
tasks, so editing a chain (add, update or remove a toxic) is one synchronous step: a stage
leaving the chain hands everything it holds to its successor before its predecessor is
rewired. That is why no byte is ever lost or reordered by a live toxic change.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from .toxics import Toxic

if TYPE_CHECKING:
    from .connection import Link

FIN = "fin"  # the source half-closed: pass a half-close on to the sink
CLOSE = "close"  # the source is gone, or a toxic closes the connection: close the sink

# libuv timers have a 1 ms resolution: work due within that much is done now, and the time
# it was due is kept, so rates and delays stay right on average.
TIMER_SLACK = 0.001


class Chunk:
    """One read from the source (``data``) with its read time, or an end marker (``end``)."""

    __slots__ = ("data", "ts", "end")

    def __init__(self, data: bytes | None, ts: float, end: str | None = None) -> None:
        self.data = data
        self.ts = ts
        self.end = end


class ChunkSink(Protocol):
    def push(self, chunk: Chunk) -> None: ...


class Stage:
    """One toxic on one link. The base class passes chunks through unchanged (noop).

    Toxicity is rolled when the stage starts and again on each update: when the roll
    fails the stage is a pass-through until the next update.
    """

    __slots__ = ("link", "loop", "toxic", "attrs", "rng", "next", "inbox", "timer", "active", "closed")

    def __init__(self, link: Link, toxic: Toxic, rng: random.Random, next_: ChunkSink) -> None:
        self.link = link
        self.loop = link.loop
        self.rng = rng
        self.next = next_
        self.inbox: deque[Chunk] = deque()
        self.timer = None
        self.closed = False
        self.toxic = toxic
        self.attrs = toxic.attributes
        self.active = rng.random() < toxic.toxicity

    # -- chunk flow ------------------------------------------------------------------

    def push(self, chunk: Chunk) -> None:
        """Take a chunk from the previous stage (or the link's reader)."""
        if self.closed:
            return
        if self.active:
            self.receive(chunk)
        else:
            self.next.push(chunk)

    def receive(self, chunk: Chunk) -> None:
        """Queue a chunk and move what is due (subclasses with other needs override)."""
        self.link.hold(chunk)
        self.inbox.append(chunk)
        if self.timer is None:
            self.pump()

    def pump(self) -> None:
        """Hand on every queued chunk that is due; set a timer for the first one that is not."""
        while self.inbox:
            self.next.push(self.take())

    def take(self) -> Chunk:
        chunk = self.inbox.popleft()
        self.link.release(chunk)
        return chunk

    def wake_at(self, when: float) -> None:
        self.timer = self.loop.call_at(when, self._wake)

    def _wake(self) -> None:
        self.timer = None
        if not self.closed:
            self.pump()

    # -- chain edits -----------------------------------------------------------------

    def begin(self) -> None:
        """Start what the toxic does from its start (timers); called once wired and on update."""

    def interrupt(self) -> None:
        """Stop waiting: hand on at once the chunk being worked on, forget schedules."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def drain(self) -> None:
        while self.inbox:
            self.next.push(self.take())

    def reconfigure(self, toxic: Toxic) -> None:
        """Apply an updated toxic: re-roll toxicity, keep state (e.g. limit_data's count)."""
        self.interrupt()
        self.toxic = toxic
        self.attrs = toxic.attributes
        self.active = self.rng.random() < toxic.toxicity
        if not self.active:
            self.drain()
            return
        self.begin()
        if self.inbox and self.timer is None:
            self.pump()

    def detach(self) -> None:
        """Leave the chain: hand on everything held, in order, before the chain is rewired."""
        self.interrupt()
        self.drain()
        self.closed = True

    def discard(self) -> None:
        """The link is over: stop timers, drop what is held."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.closed = True
        self.inbox.clear()


class Noop(Stage):
    """Pass-through."""

    __slots__ = ()

    def receive(self, chunk: Chunk) -> None:
        self.next.push(chunk)


class Latency(Stage):
    """Release each chunk at its read time + latency ± jitter; delays overlap, order is kept.

    Never early: read times and deadlines are ``time.monotonic()``, and a chunk leaves only
    once the clock has passed its deadline (a loop timer, rounded to 1 ms, only wakes the
    check). Stacked latencies add because each stage starts from the previous deadline.
    """

    __slots__ = ("due", "last")

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.due: float | None = None
        self.last = 0.0

    def pump(self) -> None:
        now = time.monotonic()
        inbox = self.inbox
        while inbox:
            head = inbox[0]
            if head.data is None:
                self.next.push(self.take())
                continue
            due = self.due
            if due is None:
                delay = self.attrs["latency"]
                jitter = self.attrs["jitter"]
                if jitter:
                    delay += self.rng.uniform(-jitter, jitter)
                due = head.ts + max(delay, 0) / 1000.0
                if due < self.last:
                    due = self.last
                self.due = due
            if due > now:
                self.timer = self.loop.call_later(max(due - now, TIMER_SLACK), self._wake)
                return
            self.due = None
            self.last = due
            chunk = self.take()
            chunk.ts = due  # stacked latencies add up
            self.next.push(chunk)

    def interrupt(self) -> None:
        super().interrupt()
        if self.due is not None:
            self.due = None
            if self.inbox:
                self.next.push(self.take())


class Bandwidth(Stage):
    """Pace bytes to ``rate`` KB/s (1 KB = 1000 B) in pieces of at most 100 ms."""

    __slots__ = ("clock", "due", "offset")

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.clock = 0.0  # when the simulated wire is free again
        self.due: float | None = None
        self.offset = 0  # bytes of the head chunk already sent

    def pump(self) -> None:
        now = self.loop.time()
        rate = self.attrs["rate"]
        bytes_per_second = rate * 1000.0
        piece_limit = rate * 100  # 100 ms worth of bytes
        inbox = self.inbox
        while inbox:
            head = inbox[0]
            data = head.data
            if data is None:
                self.next.push(self.take())
                continue
            size = min(len(data) - self.offset, piece_limit)
            if self.due is None:
                if self.clock < now:
                    self.clock = now
                self.due = self.clock + size / bytes_per_second
            if self.due > now + TIMER_SLACK:
                self.wake_at(self.due)
                return
            self.clock = self.due
            self.due = None
            if self.offset == 0 and size == len(data):
                self.next.push(self.take())
                continue
            piece = data[self.offset : self.offset + size]
            self.offset += size
            if self.offset >= len(data):
                self.offset = 0
                self.take()
            self.next.push(Chunk(piece, head.ts))

    def interrupt(self) -> None:
        super().interrupt()
        in_flight = self.due is not None or self.offset
        self.due = None
        if in_flight and self.inbox:
            head = self.take()
            rest = head.data[self.offset :] if head.data is not None else None
            self.offset = 0
            self.next.push(Chunk(rest, head.ts, head.end))


class Slicer(Stage):
    """Split each chunk into writes of about ``average_size`` bytes, ``delay`` µs apart."""

    __slots__ = ("cuts", "index", "ready_at")

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.cuts: list[int] | None = None
        self.index = 0
        self.ready_at = 0.0

    def cut_points(self, size: int) -> list[int]:
        """Offsets splitting ``size`` bytes in halves ± size_variation, down to average_size."""
        average = self.attrs["average_size"]
        variation = self.attrs["size_variation"]
        cuts = [0]
        pending = [(0, size)]
        while pending:
            start, end = pending.pop()
            if (end - start) - average <= variation:
                cuts.append(end)
                continue
            mid = start + (end - start) // 2
            if variation:
                mid += self.rng.randint(-variation, variation - 1)
            mid = min(max(mid, start + 1), end - 1)
            pending.append((mid, end))
            pending.append((start, mid))
        return cuts

    def pump(self) -> None:
        now = self.loop.time()
        delay = self.attrs["delay"] / 1_000_000
        inbox = self.inbox
        while inbox:
            if self.ready_at > now + TIMER_SLACK:
                self.wake_at(self.ready_at)
                return
            head = inbox[0]
            if head.data is None:
                self.next.push(self.take())
                continue
            if self.cuts is None:
                self.cuts = self.cut_points(len(head.data))
                self.index = 0
            start, end = self.cuts[self.index], self.cuts[self.index + 1]
            self.index += 1
            if self.index == len(self.cuts) - 1:
                self.cuts = None
                self.take()
            self.ready_at = max(self.ready_at, now) + delay if delay else 0.0
            self.next.push(Chunk(head.data[start:end], head.ts))

    def interrupt(self) -> None:
        super().interrupt()
        self.ready_at = 0.0
        if self.cuts is not None:
            start = self.cuts[self.index]
            self.cuts = None
            if self.inbox:
                head = self.take()
                self.next.push(Chunk(head.data[start:], head.ts))


class SlowClose(Stage):
    """Pass data; delay the end of the stream by ``delay`` ms."""

    __slots__ = ()

    def receive(self, chunk: Chunk) -> None:
        if chunk.data is not None:
            self.next.push(chunk)
            return
        self.inbox.append(chunk)
        self.pump()

    def pump(self) -> None:
        if self.inbox and self.timer is None:
            self.timer = self.loop.call_later(self.attrs["delay"] / 1000.0, self._release)

    def _release(self) -> None:
        self.timer = None
        self.drain()


class Timeout(Stage):
    """Drop all data; close the connection after ``timeout`` ms without data (0: never)."""

    __slots__ = ()

    def begin(self) -> None:
        self._restart_timer()

    def _restart_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.attrs["timeout"] > 0:
            self.timer = self.loop.call_later(self.attrs["timeout"] / 1000.0, self._expire)

    def receive(self, chunk: Chunk) -> None:
        if chunk.data is None:
            self.interrupt()
            self.next.push(chunk)
            return
        self._restart_timer()

    def _expire(self) -> None:
        self.timer = None
        self.closed = True
        self.next.push(Chunk(None, time.monotonic(), CLOSE))

    def detach(self) -> None:
        closes = self.active and not self.closed
        super().detach()
        if closes:  # like Toxiproxy: removing a timeout closes the connections it held
            self.next.push(Chunk(None, time.monotonic(), CLOSE))


class ResetPeer(Stage):
    """On the first data or end in this direction, wait ``timeout`` ms then reset (TCP RST)."""

    __slots__ = ("triggered",)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.triggered = False

    def receive(self, chunk: Chunk) -> None:
        if not self.triggered:
            self.triggered = True
            self.link.conn.reset_later(self.attrs["timeout"] / 1000.0)


class LimitData(Stage):
    """Forward at most ``bytes`` bytes in this direction, then close the connection."""

    __slots__ = ("sent",)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.sent = 0

    def receive(self, chunk: Chunk) -> None:
        data = chunk.data
        if data is None:
            self.next.push(chunk)
            return
        limit = self.attrs["bytes"]
        remaining = max(limit - self.sent, 0)
        if remaining < len(data):
            chunk = Chunk(data[:remaining], chunk.ts)
        if chunk.data:
            self.sent += len(chunk.data)
            self.next.push(chunk)
        if limit - self.sent <= 0 and not self.closed:
            self.closed = True
            self.next.push(Chunk(None, chunk.ts, CLOSE))


STAGE_TYPES: dict[str, type[Stage]] = {
    "noop": Noop,
    "latency": Latency,
    "bandwidth": Bandwidth,
    "slicer": Slicer,
    "slow_close": SlowClose,
    "timeout": Timeout,
    "reset_peer": ResetPeer,
    "limit_data": LimitData,
}


def make_stage(link: Link, toxic: Toxic, rng: random.Random, next_: ChunkSink) -> Stage:
    """A new stage running ``toxic`` on ``link`` (call ``begin()`` once it is wired)."""
    return STAGE_TYPES[toxic.type](link, toxic, rng, next_)
