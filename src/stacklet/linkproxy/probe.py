"""Health probe: exit 0 when the link proxy's API answers ``GET /version`` with 200.

    python3 -m stacklet.linkproxy.probe [--host 127.0.0.1] [--port 8474] [--timeout 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys


def probe(host: str, port: int, timeout: float, token: str | None = None) -> bool:
    """True when GET /version on host:port returns status 200 within ``timeout`` seconds (sending the
    bearer token when given)."""
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET /version HTTP/1.1\r\nHost: {host}:{port}\r\n{authorization}Connection: close\r\n\r\n".encode()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            reply = b""
            while b"\r\n" not in reply:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
    except OSError:
        return False
    return reply.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m stacklet.linkproxy.probe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LINKPROXY_PORT", "8474")))
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    return 0 if probe(args.host, args.port, args.timeout, os.environ.get("LINKPROXY_TOKEN")) else 1


if __name__ == "__main__":
    sys.exit(main())
