"""The log evidence of one failing request, with or without request ids in the logs.

Logs are read with Docker's timestamps and cut into entries: one line, or one whole Python
traceback (bounded). A failing step's evidence is the entries that carry its request id or, when
no log line does, the error and 5xx entries logged while the step ran. The service that failed is
the one whose error came first (callees fail before their callers log the answer). Pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

TRACEBACK_LINES = 40  # a traceback longer than this keeps its head and its tail
WINDOW_SLACK_S = 0.5  # containers flush their logs a little after they answer
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d) ")
_TRACEBACK_START = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)?(:|$)")


@dataclass
class Entry:
    """One log entry of a service: a line, or a whole traceback (lines joined by newlines)."""

    service: str
    text: str
    time: float | None = None  # Unix seconds, from Docker's timestamp


def split_timestamp(line: str) -> tuple[float | None, str]:
    """Docker's ``--timestamps`` prefix as Unix seconds, and the line without it."""
    match = _TIMESTAMP.match(line)
    if not match:
        return None, line
    fraction = (match.group(2) or ".0")[:7]  # datetime takes microseconds, Docker writes nanoseconds
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}{fraction}{zone}").timestamp(), line[match.end():]


def entries(service: str, text: str) -> list[Entry]:
    """A service's log text as entries: each Python traceback joined into one, bounded."""
    found: list[Entry] = []
    block: list[str] | None = None
    for raw in text.splitlines():
        when, line = split_timestamp(raw)
        if block is not None and (line[:1].isspace() or (len(block) > 1 and block[-1][:1].isspace()
                                                          and _EXCEPTION_LINE.match(line))):
            block.append(line)
            continue
        if block is not None:
            found[-1].text = bounded(block)
            block = None
        found.append(Entry(service=service, text=line, time=when))
        if _TRACEBACK_START in line:
            block = [line]
    if block is not None:
        found[-1].text = bounded(block)
    return found


def bounded(lines: list[str], limit: int = TRACEBACK_LINES) -> str:
    """The lines joined; beyond ``limit`` its head and tail, saying how many were left out."""
    if len(lines) <= limit:
        return "\n".join(lines)
    head, tail = lines[: limit // 2], lines[-(limit // 2 - 1):]
    return "\n".join([*head, f"… ({len(lines) - len(head) - len(tail)} lines left out)", *tail])


def of_request(logs: list[Entry], request_id: str | None, window: tuple[float, float] | None,
               is_error, is_server_error) -> tuple[list[Entry], bool]:
    """The entries of one failing request, and whether they were found by its request id.

    By request id when any entry carries it; otherwise the error and 5xx entries logged within
    ``window`` (seconds, widened by a little slack). ``is_error(entry)`` and ``is_server_error(entry)``
    read an entry with its service's settings.
    """
    if request_id:
        tagged = [e for e in logs if request_id in e.text]
        if tagged:
            return tagged, True
    if window is None:
        return [], False
    start, end = window[0] - WINDOW_SLACK_S, window[1] + WINDOW_SLACK_S
    return [e for e in logs if e.time is not None and start <= e.time <= end
            and (is_error(e) or is_server_error(e))], False


def failing_service(evidence: list[Entry], is_error, default: str | None) -> str | None:
    """The service whose error-level entry came first; ``default`` when no entry is an error."""
    errors = [e for e in evidence if is_error(e)]
    if not errors:
        return default
    timed = [e for e in errors if e.time is not None]
    return min(timed, key=lambda e: e.time).service if timed else errors[0].service
