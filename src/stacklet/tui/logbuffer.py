"""The log buffer of the TUI: bounded, thread-safe, filterable. Pure Python (no Textual).

A producer thread appends ``(service, line)`` pairs as fast as the services log; the UI drains
what is new every 100 ms and asks for views (one service or all, a text filter, one request id).
Memory is bounded: only the last ``maxlen`` lines are kept, and a burst of more lines than that
between two drains is cut to the newest ``maxlen``.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import deque
from dataclasses import dataclass

MAX_LINES = 5_000
REQUEST_ID = re.compile(r"\brid=([A-Za-z0-9_.:-]+)")
PALETTE = ("cyan", "green", "yellow", "magenta", "blue", "bright_cyan", "bright_green", "bright_magenta",
           "bright_yellow", "bright_blue", "red", "bright_red")


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    service: str
    text: str

    @property
    def request_id(self) -> str | None:
        return request_id(self.text)


@dataclass(frozen=True)
class LogView:
    """What the log pane shows: one service (or all), a case-insensitive filter, one request id."""

    service: str | None = None
    text: str = ""
    rid: str | None = None

    def matches(self, line: LogLine) -> bool:
        if self.service is not None and line.service != self.service:
            return False
        if self.rid is not None and request_id(line.text) != self.rid:
            return False
        return not self.text or self.text.lower() in line.text.lower()

    def describe(self) -> str:
        parts = [f"service {self.service}" if self.service else "all services"]
        if self.rid:
            parts.append(f"request {self.rid}")
        if self.text:
            parts.append(f"filter {self.text!r}")
        return " · ".join(parts)


def request_id(text: str) -> str | None:
    """The request id a line carries (``rid=<id>``, as the shop logs it), or None."""
    found = REQUEST_ID.search(text)
    return found.group(1) if found else None


def colour_for(service: str) -> str:
    """A stable colour per service name (same colour in every run)."""
    return PALETTE[zlib.crc32(service.encode()) % len(PALETTE)]


class LogBuffer:
    """The last ``maxlen`` log lines of a slice; ``append`` may be called from any thread."""

    def __init__(self, maxlen: int = MAX_LINES):
        self.maxlen = maxlen
        self._lines: deque[LogLine] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._seq = 0
        self._drained = 0
        self.services: set[str] = set()

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def total(self) -> int:
        """How many lines were ever appended (kept or not)."""
        return self._seq

    def append(self, service: str, text: str) -> None:
        with self._lock:
            self._seq += 1
            self._lines.append(LogLine(self._seq, service, text))
            self.services.add(service)

    def extend(self, pairs) -> None:
        for service, text in pairs:
            self.append(service, text)

    def drain(self) -> list[LogLine]:
        """The lines appended since the last drain that are still in the buffer, oldest first."""
        with self._lock:
            new = self._seq - self._drained
            self._drained = self._seq
            if new <= 0:
                return []
            if new >= len(self._lines):
                return list(self._lines)
            return [self._lines[i] for i in range(len(self._lines) - new, len(self._lines))]

    def service_names(self) -> list[str]:
        with self._lock:
            return sorted(self.services)

    def snapshot(self) -> list[LogLine]:
        with self._lock:
            return list(self._lines)

    def view(self, view: LogView, limit: int | None = None) -> list[LogLine]:
        """The lines ``view`` shows, oldest first (the newest ``limit`` of them when given)."""
        lines = [line for line in self.snapshot() if view.matches(line)]
        return lines[-limit:] if limit else lines

    def latest_request_id(self, view: LogView | None = None) -> str | None:
        """The most recent request id in the lines of ``view`` (or of every service)."""
        scope = LogView(service=view.service) if view else LogView()
        for line in reversed(self.snapshot()):
            if scope.matches(line):
                rid = request_id(line.text)
                if rid:
                    return rid
        return None
