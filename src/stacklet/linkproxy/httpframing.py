"""Incremental HTTP/1.x message framing: where each head and each message ends, nothing more.

The link proxy forwards bytes as they come and only needs to know the boundaries of requests
and responses (Content-Length, chunked bodies, HEAD, 1xx, 204/304, read-until-close) and a
few header values. Hand-written because the standard library has no incremental parser and
h11-style libraries buffer and copy every body byte; here bodies are skipped by count.
"""

from __future__ import annotations

import re
from typing import Iterator

MAX_HEAD_BYTES = 64 * 1024  # a head (or chunk trailers) larger than this is not HTTP we can follow
MAX_LINE_BYTES = 4096  # a chunk-size line
MAX_PATH_CHARS = 2048  # kept in a record
MAX_REQUEST_ID_CHARS = 256

HEAD, END = "head", "end"  # events of Framer.advance

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_BODILESS_STATUSES = (204, 304)

# states
_S_HEAD, _S_BODY, _S_SIZE, _S_DATA, _S_DATA_CRLF, _S_TRAILERS, _S_UNTIL_CLOSE, _S_END = range(8)


class ParseError(Exception):
    """The bytes are not HTTP/1.x this framer can follow."""


class Head:
    """The parts of a request or response head the proxy uses."""

    __slots__ = ("method", "path", "status", "version", "length", "chunked", "request_id", "close", "expect_continue")

    def __init__(self) -> None:
        self.method = ""
        self.path = ""
        self.status = 0
        self.version = b""
        self.length: int | None = None
        self.chunked = False
        self.request_id: str | None = None
        self.close = False
        self.expect_continue = False


def _header(lowered: bytes, raw: bytes, name: bytes) -> bytes | None:
    """The value of the first header ``name`` (b"\\r\\nname:", lower case), or None."""
    at = lowered.find(name)
    if at < 0:
        return None
    start = at + len(name)
    end = raw.find(b"\r\n", start)
    return raw[start : end if end >= 0 else len(raw)].strip()


def _parse_head(raw: bytes, request: bool) -> Head:
    """The head's first line and the few headers the proxy reads, found with byte searches
    (one pass of C code per header instead of a Python loop over every header line)."""
    line_end = raw.find(b"\r\n")
    first = raw if line_end < 0 else raw[:line_end]
    parts = first.split(b" ", 2)
    head = Head()
    if request:
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[0].isalpha():
            raise ParseError("request line")
        head.method = parts[0].decode("latin-1")
        head.path = parts[1].split(b"?", 1)[0][:MAX_PATH_CHARS].decode("latin-1")
        head.version = parts[2]
    else:
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
            raise ParseError("status line")
        head.status = int(parts[1])
        head.version = parts[0]
    lowered = raw.lower()
    # each `in` test is one C scan: _header (a Python call) runs only for headers present
    length = _header(lowered, raw, b"\r\ncontent-length:") if b"\r\ncontent-length:" in lowered else None
    if length is not None:
        if not length.isdigit() or len(length) > 19:
            raise ParseError("Content-Length")
        head.length = int(length)
    coding = _header(lowered, raw, b"\r\ntransfer-encoding:") if b"\r\ntransfer-encoding:" in lowered else None
    if coding is not None:
        if not coding.lower().endswith(b"chunked"):
            raise ParseError("Transfer-Encoding without chunked")
        head.chunked = True
    if request:
        if b"\r\nx-request-id:" in lowered:
            head.request_id = _header(lowered, raw, b"\r\nx-request-id:")[:MAX_REQUEST_ID_CHARS].decode("latin-1")
        if b"\r\nexpect:" in lowered:
            head.expect_continue = _header(lowered, raw, b"\r\nexpect:").lower() == b"100-continue"
        connection = _header(lowered, raw, b"\r\nconnection:").lower() if b"\r\nconnection:" in lowered else b""
        if head.version == b"HTTP/1.0":
            head.close = b"keep-alive" not in connection
        else:
            head.close = b"close" in connection
    return head


class Framer:
    """Follows one direction of an HTTP/1.x connection, message by message.

    ``advance(data, pos)`` consumes bytes from ``pos`` and returns ``(pos, event)``: HEAD when
    a head was parsed (``self.head``; the caller then calls ``expect_body``), END when a
    message is complete, None when ``data`` is used up. Head bytes split over reads are kept
    in ``buffer`` (``carried`` holds the part from earlier reads once the head completes).
    """

    __slots__ = ("request", "state", "remaining", "buffer", "head", "carried", "partial_from")

    def __init__(self, request: bool) -> None:
        self.request = request
        self.state = _S_HEAD
        self.remaining = 0
        self.buffer = bytearray()
        self.head: Head | None = None
        self.carried = b""
        self.partial_from = -1  # where in the current read an unfinished head starts

    def lone_head(self, data: bytes) -> tuple[Head, int] | None:
        """The head and its end, when the framer is between messages and ``data`` starts with a
        whole head; None otherwise (or when it does not parse: ``advance`` will say so).

        The framer does not move: the caller, having checked that ``data`` is exactly one
        message, handles it in one step (the common case: a kept-alive request or response
        in one read) or goes through ``advance``.
        """
        if self.state != _S_HEAD or self.buffer:
            return None
        end = data.find(b"\r\n\r\n")
        if end <= 0:
            return None
        try:
            return _parse_head(data[:end], self.request), end + 4
        except ParseError:
            return None

    def expect_body(self, length: int | None, chunked: bool, until_close: bool = False) -> None:
        """Set how the body of the message whose head was just parsed is framed."""
        if chunked:
            self.state = _S_SIZE
        elif length:
            self.state, self.remaining = _S_BODY, length
        elif until_close:
            self.state = _S_UNTIL_CLOSE
        else:
            self.state = _S_END

    def tunnel(self) -> None:
        """From here on the bytes are not HTTP (a 101 upgrade or a CONNECT tunnel)."""
        self.state = _S_UNTIL_CLOSE

    def events(self, data: bytes) -> Iterator[tuple[int, str]]:
        """``(pos, event)`` for each HEAD and END in ``data``, ``pos`` just after it."""
        pos = 0
        while True:
            pos, event = self.advance(data, pos)
            if event is None:
                return
            yield pos, event

    def advance(self, data: bytes, pos: int) -> tuple[int, str | None]:
        while True:
            state = self.state
            if state == _S_END:
                self.state = _S_HEAD
                return pos, END
            if pos >= len(data):
                return pos, None
            if state == _S_BODY:
                take = min(self.remaining, len(data) - pos)
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state = _S_END
            elif state == _S_HEAD:
                pos, done = self._head(data, pos)
                if done:
                    return pos, HEAD
            elif state == _S_UNTIL_CLOSE:
                return len(data), None
            elif state == _S_DATA:
                take = min(self.remaining, len(data) - pos)
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state, self.remaining = _S_DATA_CRLF, 2
            elif state == _S_DATA_CRLF:
                take = min(self.remaining, len(data) - pos)
                if data[pos : pos + take] != b"\r\n"[2 - self.remaining : 2 - self.remaining + take]:
                    raise ParseError("chunk end")
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state = _S_SIZE
            else:  # _S_SIZE or _S_TRAILERS: one line at a time
                pos, line = self._line(data, pos)
                if line is None:
                    return pos, None
                if state == _S_SIZE:
                    size = line.split(b";", 1)[0].strip()
                    if not _CHUNK_SIZE.fullmatch(size):
                        raise ParseError("chunk size")
                    self.remaining = int(size, 16)
                    self.state = _S_DATA if self.remaining else _S_TRAILERS
                elif not line:
                    self.state = _S_END

    def _head(self, data: bytes, pos: int) -> tuple[int, bool]:
        buffer = self.buffer
        if not buffer:
            while data.startswith(b"\r\n", pos):  # empty lines before a message are ignored
                pos += 2
            end = data.find(b"\r\n\r\n", pos)
            if end >= 0:
                self.carried = b""
                self.partial_from = -1
                self.head = _parse_head(data[pos:end], self.request)
                return end + 4, True
            self.partial_from = pos
        else:
            self.partial_from = 0
        start = max(len(buffer) - 3, 0)
        before = len(buffer)
        buffer += data[pos:]
        end = buffer.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise ParseError("head too large")
            return len(data), False
        self.carried = bytes(buffer[:before]) if before else b""
        raw = bytes(buffer[:end]).lstrip(b"\r\n")
        buffer.clear()
        self.partial_from = -1
        self.head = _parse_head(raw, self.request)
        return pos + end + 4 - before, True

    def _line(self, data: bytes, pos: int) -> tuple[int, bytes | None]:
        buffer = self.buffer
        if buffer.endswith(b"\r") and data.startswith(b"\n", pos):  # CRLF split between reads
            line = bytes(buffer[:-1])
            buffer.clear()
            return pos + 1, line
        end = data.find(b"\r\n", pos)
        if end < 0:
            self.buffer += data[pos:]
            if len(self.buffer) > MAX_LINE_BYTES:
                raise ParseError("line too long")
            return len(data), None
        if self.buffer:
            line = bytes(self.buffer) + data[pos:end]
            self.buffer.clear()
        else:
            line = data[pos:end]
        if self.state == _S_TRAILERS and len(line) > MAX_LINE_BYTES:
            raise ParseError("trailer too long")
        return end + 2, line


def response_has_body(request_method: str, status: int) -> bool:
    """False for answers to HEAD and for 1xx, 204 and 304 (RFC 9112, section 6.3)."""
    return request_method != "HEAD" and status >= 200 and status not in _BODILESS_STATUSES
