"""A small HTTP/1.1 server on asyncio streams, enough for the Toxiproxy API.

Keep-alive (HTTP/1.1 default, HTTP/1.0 with ``Connection: keep-alive``), request bodies
with Content-Length or chunked transfer coding, ``Expect: 100-continue``, one request at
a time per connection. Responses always carry Content-Length (except 204).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from .validation import ascii_digits

log = logging.getLogger("stacklet.linkproxy")

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may wait for its next request
READ_TIMEOUT = 15.0  # seconds to receive a request's body once its head arrived
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")  # int(x, 16) alone accepts "-1", "0x1", " 1_0"


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: str
    version: str  # "HTTP/1.1"
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]


class ProtocolError(Exception):
    """A request that cannot be parsed: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_head(head: bytes) -> Request:
    text = head.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ProtocolError(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise ProtocolError(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if target.startswith("/"):
        path, _, query = target.partition("?")
    else:
        parsed = urlsplit(target)
        if not parsed.scheme:
            raise ProtocolError(400, "malformed request target")
        path, query = parsed.path or "/", parsed.query
    return Request(method, unquote(path), query, version, headers)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    length_text = headers.get("content-length")
    if length_text is None:
        return b""
    if not ascii_digits(length_text) or len(length_text) > 19:
        raise ProtocolError(400, "invalid Content-Length")
    length = int(length_text)
    if length > MAX_BODY_BYTES:
        raise ProtocolError(413, "request body too large")
    return await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise ProtocolError(400, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise ProtocolError(413, "request body too large")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError(400, "malformed chunk")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _http_date() -> str:
    """RFC 9110 date, without importing the email package at start."""
    t = time.gmtime()
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def _serialize(response: Response, keep_alive: bool, version: str, head_only: bool = False) -> bytes:
    status = response.status
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Date: {_http_date()}"]
    body = response.body
    if status == 204:
        body = b""
    else:
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in response.headers]
    if not keep_alive:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


async def _serve_connection(handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                return
            except asyncio.LimitOverrunError:
                writer.write(_serialize(Response(431, b"request head too large\n", "text/plain"), False, "HTTP/1.1"))
                return
            try:
                request = _parse_head(head)
                if request.headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                async with asyncio.timeout(READ_TIMEOUT):
                    request.body = await _read_body(reader, request.headers)
            except ProtocolError as exc:
                body = (exc.message + "\n").encode()
                writer.write(_serialize(Response(exc.status, body, "text/plain"), False, "HTTP/1.1"))
                return
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, TimeoutError):
                return
            keep_alive = _keep_alive(request)
            try:
                response = await handler(request)
            except Exception:
                log.exception("internal error handling %s %s", request.method, request.path)
                response = Response(500, b'{"error":"internal server error","status":500}\n')
            writer.write(_serialize(response, keep_alive, request.version, request.method == "HEAD"))
            await writer.drain()
            if not keep_alive:
                return
    except ConnectionError:
        pass
    except Exception as exc:  # a parser gap must cost one connection and one log line, not a traceback
        log.warning("dropped an API connection: %s: %s", type(exc).__name__, exc)
    finally:
        writer.close()


async def start_http_server(handler: Handler, host: str, port: int) -> asyncio.AbstractServer:
    """Listen on host:port and answer each request with ``await handler(request)``."""
    return await asyncio.start_server(
        partial(_serve_connection, handler), host, port, limit=MAX_HEAD_BYTES, reuse_address=True
    )
