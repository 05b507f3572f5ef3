"""A scripted HTTP/1.1 upstream on loopback for the HTTP accounting and HTTP toxic tests.

Written on raw sockets (not http.server) so the tests control framing exactly: pipelined
requests, chunked answers, 1xx, HEAD, 204/304. The path picks the answer:
``/status/NNN``, ``/chunked``, ``/continue`` (a 100 then a 200), ``/slow/MS``; anything else
is a 200 whose body names the method, the path and the request body's size.
"""

from __future__ import annotations

import socket
import time

from .support import TcpServer


def _read_head(conn: socket.socket, buffer: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


def _read_exactly(conn: socket.socket, buffer: bytearray, size: int) -> bytes:
    while len(buffer) < size:
        data = conn.recv(65536)
        if not data:
            raise ConnectionError("closed in a body")
        buffer += data
    body = bytes(buffer[:size])
    del buffer[:size]
    return body


def _read_line(conn: socket.socket, buffer: bytearray) -> bytes:
    while b"\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            raise ConnectionError("closed in a chunk")
        buffer += data
    line, _, rest = bytes(buffer).partition(b"\r\n")
    buffer[:] = rest
    return line


def _read_body(conn: socket.socket, buffer: bytearray, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(_read_line(conn, buffer).split(b";")[0], 16)
            if size == 0:
                while _read_line(conn, buffer):
                    pass
                return body
            body += _read_exactly(conn, buffer, size)
            _read_exactly(conn, buffer, 2)
    return _read_exactly(conn, buffer, int(headers.get("content-length", "0")))


def _answer(method: str, path: str, body: bytes) -> bytes:
    if path.startswith("/slow/"):
        time.sleep(int(path.rsplit("/", 1)[1]) / 1000)
    if path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        payload = b"" if status in (204, 304) else b"status %d" % status
    else:
        status, payload = 200, f"{method} {path} {len(body)}".encode()
    if path == "/chunked":
        half = len(payload) // 2
        chunks = [payload[:half], payload[half:]]
        encoded = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nTrailer: x\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"" if method == "HEAD" else encoded)
    head = b"HTTP/1.1 %d X\r\n" % status
    if path == "/continue":
        head = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + head
    if status in (204, 304):
        return head + b"\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(payload)
    return head + (b"" if method == "HEAD" else payload)


def http_handler(conn: socket.socket, seen: list[str] | None = None) -> None:
    """Serve requests on one connection until the client closes (or asks to); note each path."""
    buffer = bytearray()
    while True:
        head = _read_head(conn, buffer)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        body = _read_body(conn, buffer, headers)
        if seen is not None:
            seen.append(path)
        conn.sendall(_answer(method, path, body))
        if headers.get("connection", "").lower() == "close":
            return


class HttpUpstream(TcpServer):
    """The scripted HTTP server, listening on loopback; ``seen`` lists the paths it answered."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(lambda conn: http_handler(conn, self.seen))


class _FileSocket:
    """Lets http.client read several responses from one buffered file of a socket."""

    def __init__(self, file) -> None:
        self.file = file

    def makefile(self, *args, **kwargs):
        return _Unclosable(self.file)


class _Unclosable:
    """The socket's file, kept open when a response is done with it."""

    def __init__(self, file) -> None:
        self.file = file

    def __getattr__(self, name):
        return getattr(self.file, name)

    def close(self) -> None:
        pass


def read_responses(sock: socket.socket, methods: list[str]) -> list[tuple[int, bytes]]:
    """(status, body) of one response per request method, in order, from a raw socket."""
    import http.client

    file = sock.makefile("rb")
    answers = []
    for method in methods:
        response = http.client.HTTPResponse(_FileSocket(file), method=method)
        response.begin()  # skips 100 Continue; other 1xx answers are read past below
        while response.status < 200:
            response = http.client.HTTPResponse(_FileSocket(file), method=method)
            response.begin()
        answers.append((response.status, response.read()))
    return answers
