"""Proxies: named listeners that hand each accepted client to a :class:`Connection`.

Also the address helpers, worded like Go's net package so errors read like Toxiproxy's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Callable

from .accounting import ProxyStats
from .connection import DIAL_TIMEOUT, Connection
from .errors import ApiError, os_reason
from .metrics import ByteCounter
from .toxics import Toxic
from .validation import ascii_digits

if TYPE_CHECKING:
    import random

log = logging.getLogger("stacklet.linkproxy")

LISTEN_BACKLOG = 1024


def split_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` like Go's net.SplitHostPort; ValueError if malformed."""
    if address.startswith("["):
        close = address.find("]")
        if close < 0 or not address[close + 1 :].startswith(":"):
            raise ValueError(f"address {address}: missing port in address")
        host, port_text = address[1:close], address[close + 2 :]
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise ValueError(f"address {address}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {address}: too many colons in address")
    if not ascii_digits(port_text) or int(port_text) > 65535:
        raise ValueError(f"address {address}: invalid port")
    return host, int(port_text)


_ANY_HOST = {"", "0.0.0.0", "::"}
_LOCAL_NAMES = {"localhost", "::1", "0.0.0.0", "::", ""}


def _is_local(host: str) -> bool:
    return host.lower() in _LOCAL_NAMES or host.startswith("127.") or host.lower().endswith(".localhost")


def dials_itself(listen: str, upstream: str) -> bool:
    """True when ``upstream`` names the address ``listen`` binds: every client would loop.

    Catches the same host and port, and the same port on a local name when either side is a
    local or wildcard address. Loops through DNS names or other proxies are caught at dial
    time (see :mod:`connection`, MAX_HOPS).
    """
    try:
        listen_host, listen_port = split_host_port(listen) if listen else ("", 0)
        upstream_host, upstream_port = split_host_port(upstream)
    except ValueError:
        return False
    if listen_port == 0 or listen_port != upstream_port:
        return False
    if listen_host.lower() == upstream_host.lower():
        return True
    if listen_host in _ANY_HOST:
        return _is_local(upstream_host)
    return _is_local(listen_host) and _is_local(upstream_host)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def bind_listener(listen: str) -> socket.socket:
    """A listening, non-blocking socket for ``listen``; ApiError 500 (Go's wording) on failure."""
    try:
        host, port = split_host_port(listen) if listen else ("", 0)  # "" listens like Go: any address
    except ValueError as exc:
        raise ApiError(f"listen tcp {listen}: {exc}", 500) from None
    if host == "":
        candidates = [(socket.AF_INET6, ("::", port)), (socket.AF_INET, ("0.0.0.0", port))]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except OSError as exc:
            raise ApiError(f"listen tcp {listen}: lookup {host}: {os_reason(exc)}", 500) from None
        infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first, like Go
        candidates = [(info[0], info[4][:2]) for info in infos]
    error: OSError | None = None
    for family, address in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and host == "":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            error = error or exc
    assert error is not None
    raise ApiError(f"listen tcp {listen}: bind: {os_reason(error)}", 500)


class Proxy:
    """A named listener that forwards every accepted client to ``upstream``."""

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        counter_for: Callable[[str, str, str, str], ByteCounter],
        rng_for: Callable[[str, int, str, str], random.Random],
        half_close: bool = False,
        stats: ProxyStats | None = None,
    ) -> None:
        self.name = name
        self.stats = ProxyStats() if stats is None else stats
        self.protocol = "auto"  # "auto" (sniff the first bytes), "http" or "tcp"
        self.half_close = half_close
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self.http_toxics: list[Toxic] = []  # the HTTP toxics in toxics_in_order() order, read per request
        self.connections: set[Connection] = set()
        self.loop = asyncio.get_running_loop()
        self.dialing: dict[Connection, float] = {}  # connection -> dial deadline (loop time)
        self._dial_watch: asyncio.TimerHandle | None = None
        self._upstream_address: tuple[str, tuple[str, int]] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._accepted = 0
        self._counter_for = counter_for
        self._rng_for = rng_for
        self.counters: dict[str, ByteCounter] = {}  # made by start(), labelled with the bound address

    def _make_counters(self) -> dict[str, ByteCounter]:
        counters = {
            direction: self._counter_for(self.name, self.listen, self.upstream, direction)
            for direction in ("upstream", "downstream")
        }
        for direction, counter in counters.items():
            self.stats.attach(direction, counter)
        return counters

    def to_json(self) -> dict:
        """Toxiproxy's proxy shape; ``protocol`` is added only when set to http or tcp."""
        body = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.toxics_in_order()],
        }
        if self.protocol != "auto":
            body["protocol"] = self.protocol
        return body

    def toxics_in_order(self) -> list[Toxic]:
        """Upstream toxics in insertion order, then downstream ones (Toxiproxy's order)."""
        toxics = list(self.toxics.values())
        return [t for t in toxics if t.stream == "upstream"] + [t for t in toxics if t.stream == "downstream"]

    def upstream_address(self) -> tuple[str, int]:
        """``upstream`` split into host and port (parsed once per value); ValueError if malformed."""
        cached = self._upstream_address
        if cached is None or cached[0] != self.upstream:
            host, port = split_host_port(self.upstream)
            cached = self._upstream_address = (self.upstream, (host or "localhost", port))
        return cached[1]

    def next_connection_index(self) -> int:
        index = self._accepted
        self._accepted += 1
        return index

    def rng_for(self, connection_index: int, toxic: Toxic) -> random.Random:
        return self._rng_for(self.name, connection_index, toxic.stream, toxic.name)

    def watch_dial(self, connection: Connection) -> None:
        """Give up on the dial of ``connection`` after DIAL_TIMEOUT (one timer for all dials)."""
        self.dialing[connection] = self.loop.time() + DIAL_TIMEOUT
        if self._dial_watch is None:
            self._dial_watch = self.loop.call_later(1.0, self._check_dials)

    def _check_dials(self) -> None:
        self._dial_watch = None
        now = self.loop.time()
        for connection, deadline in list(self.dialing.items()):
            if deadline <= now and connection.dial_task is not None and connection.upstream is None:
                connection.dial_task.cancel()
        if self.dialing:
            self._dial_watch = self.loop.call_later(1.0, self._check_dials)

    def dial_failed(self, exc: BaseException) -> None:
        self.stats.connect_failures += 1
        reason = os_reason(exc) if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
        log.warning("dial failed proxy=%s upstream=%s error=%s", self.name, self.upstream, reason)

    # -- listener ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind ``listen`` and accept clients; ApiError 500 when the address cannot be bound."""
        if self.enabled:
            return
        sock = await bind_listener(self.listen)
        host, port = sock.getsockname()[:2]
        try:
            self._server = await self.loop.create_server(lambda: Connection(self).client, sock=sock)
        except OSError as exc:
            sock.close()
            raise ApiError(f"listen tcp {self.listen}: {os_reason(exc)}", 500) from None
        self.listen = join_host_port(host, port)
        self.enabled = True
        self.counters = self._make_counters()

    def retarget(self, listen: str, upstream: str) -> None:
        """Stop (closing connections) and take a new listen address and upstream."""
        self.stop()
        self.listen = listen
        self.upstream = upstream

    def stop(self) -> None:
        """Stop listening and close every connection."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self.connections):
            connection.close()

    # -- toxics ------------------------------------------------------------------------

    def _list_http_toxics(self) -> None:
        self.http_toxics = [toxic for toxic in self.toxics_in_order() if toxic.is_http]

    def add_toxic(self, toxic: Toxic) -> None:
        self.toxics[toxic.name] = toxic
        self.stats.fail_first_done.pop(toxic.name, None)  # a new http_fail_first counts from 0
        self._list_http_toxics()
        for connection in list(self.connections):
            connection.add_toxic(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        self.toxics[toxic.name] = toxic
        self._list_http_toxics()
        for connection in list(self.connections):
            connection.update_toxic(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        del self.toxics[toxic.name]
        self._list_http_toxics()
        for connection in list(self.connections):
            connection.remove_toxic(toxic)

    def link_counts(self) -> tuple[int, int]:
        """(fast, toxic) links among open connections."""
        fast = toxic = 0
        for connection in self.connections:
            for link in (connection.upstream, connection.downstream):
                if link is None or link.finished:
                    continue
                if link.fast:
                    fast += 1
                else:
                    toxic += 1
        return fast, toxic
