"""Per-proxy accounting, always on: connections, failures, resets and the last HTTP requests.

One :class:`ProxyStats` per proxy name, kept by :class:`metrics.Metrics` so the numbers
survive a retarget and are in ``/metrics``; the data path only increments integers and, on
HTTP links, appends one tuple per request to a bounded ring.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import deque
from itertools import count, islice

MAX_RECORDS = 10_000  # requests kept per proxy; older ones are dropped
MAX_RECORDS_PER_READ = 10_000

# Sequence numbers are unique across the server and only grow, so a reader's ``since`` stays
# right when a proxy is deleted and created again under the same name.
_next_seq = count(1).__next__

# A request record: (seq, start_monotonic_s, method, path, status|None, duration_ms|None, request_id|None, fault|None)

# Records keep monotonic start times (one clock read per request); they are shown as Unix time.
_UNIX_MINUS_MONOTONIC = time.time() - time.monotonic()


def _as_json(record: tuple) -> dict:
    seq, start, method, path, status, duration, request_id, fault = record
    return {"seq": seq, "start": round(start + _UNIX_MINUS_MONOTONIC, 6), "method": method, "path": path,
            "status": status, "duration_ms": None if duration is None else round(duration, 3),
            "request_id": request_id, "fault": fault}


class ProxyStats:
    """Counters of one proxy and the ring of its last MAX_RECORDS HTTP requests."""

    __slots__ = (
        "connections_total", "connect_failures", "resets", "http_connections",
        "requests", "status_classes", "no_response", "faults", "records", "seq", "fail_first_done",
        "evicted_upto", "byte_counters",
    )

    def __init__(self) -> None:
        self.connections_total = 0  # clients accepted
        self.connect_failures = 0  # upstream dials that failed (refused, timed out, loop, too many)
        self.resets = 0  # connections ended by a TCP reset, from a peer or a reset_peer toxic
        self.http_connections = 0  # connections parsed as HTTP/1.x
        self.requests = 0  # HTTP requests recorded (answered or not)
        self.status_classes = [0, 0, 0, 0, 0, 0]  # index = status // 100 (1..5); 0 unused
        self.no_response = 0  # requests whose connection ended before a response head
        self.faults = 0  # requests answered by an HTTP toxic instead of the upstream
        self.records: deque[tuple] = deque(maxlen=MAX_RECORDS)
        self.seq = 0  # sequence number of the last record (0: none yet)
        self.evicted_upto = 0  # sequence number of the newest record dropped from the ring
        self.fail_first_done: dict[str, int] = {}  # http_fail_first toxic name -> requests failed
        # id -> (direction, counter, received, sent at attach): the byte counters this proxy used
        self.byte_counters: dict[int, tuple] = {}

    def attach(self, direction: str, counter) -> None:
        """Count the bytes of ``counter`` (a shared, labelled ByteCounter) from now on."""
        self.byte_counters.setdefault(id(counter), (direction, counter, counter.received, counter.sent))

    def bytes_by_direction(self) -> dict[str, dict[str, int]]:
        """Bytes received from the source and sent to the sink per direction, since creation."""
        totals = {"upstream": {"received": 0, "sent": 0}, "downstream": {"received": 0, "sent": 0}}
        for direction, counter, received, sent in self.byte_counters.values():
            totals[direction]["received"] += counter.received - received
            totals[direction]["sent"] += counter.sent - sent
        return totals

    def record(self, start: float, method: str, path: str, status: int | None,
               duration_ms: float | None, request_id: str | None, fault: str | None) -> None:
        """Count one request and keep it in the ring (``start``: time.monotonic() of its head)."""
        self.seq = _next_seq()
        self.requests += 1
        if status is None:
            self.no_response += 1
        else:
            self.status_classes[min(max(status // 100, 1), 5)] += 1
        if fault is not None:
            self.faults += 1
        if len(self.records) == MAX_RECORDS:
            self.evicted_upto = self.records[0][0]
        self.records.append((self.seq, start, method, path, status, duration_ms, request_id, fault))

    def records_since(self, since: int, limit: int = MAX_RECORDS_PER_READ) -> list[dict]:
        """Records with a sequence number above ``since``, oldest first, at most ``limit``."""
        skip = bisect_right(self.records, since, key=lambda record: record[0])
        return [_as_json(record) for record in islice(self.records, skip, skip + limit)]

    def truncated_after(self, since: int) -> bool:
        """True when records newer than ``since`` were already dropped from the ring."""
        return self.evicted_upto > since

    def to_json(self, active_connections: int) -> dict:
        """The counters as a JSON object (the ``stats`` member of ``/proxies/{name}/requests``)."""
        classes = self.status_classes
        return {
            "connections_total": self.connections_total,
            "connections_active": active_connections,
            "connect_failures": self.connect_failures,
            "resets": self.resets,
            "bytes": self.bytes_by_direction(),
            "http_connections": self.http_connections,
            "requests": self.requests,
            "responses": {f"{n}xx": classes[n] for n in range(1, 6)},
            "no_response": self.no_response,
            "faults": self.faults,
        }
