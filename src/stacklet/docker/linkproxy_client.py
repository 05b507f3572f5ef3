"""Control of link proxies through the real ``toxiproxy-python`` client.

That client talks to one server at a time through the class attributes ``APIConsumer.host``
and ``APIConsumer.port``. A slice may have several link proxies and the TUI or MCP server may
use several threads, so every use goes through ``LinkProxyControl``, which points the client at
its own proxy under a process-wide lock for the duration of each call. A slice's link proxies
require its bearer token (``Authorization: Bearer``); the client calls ``requests.get/post/delete``
of its module, so for each call that name points at a ``requests.Session`` carrying the header.
What the client lacks (a proxy's ``protocol``, its traffic counters and request records) is raw HTTP
here, in one place, through the same session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, Field

from stacklet.errors import LinkProxyError

if TYPE_CHECKING:
    from toxiproxy import Toxiproxy

T = TypeVar("T")
_CLIENT_LOCK = threading.RLock()


class LinkProxyControl:
    """The control API of one link proxy, reached at ``host:port``."""

    def __init__(self, name: str, host: str, port: int, token: str | None = None):
        self.name = name
        self.host = host
        self.port = port
        import requests  # here and below imported on first use: most commands never call a link proxy
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, action: Callable[[Toxiproxy], T], what: str) -> T:
        """Run ``action`` with the toxiproxy client pointed at this proxy (and sending its token)."""
        import requests
        import toxiproxy.api
        from toxiproxy import Toxiproxy
        from toxiproxy.api import APIConsumer
        from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
        with _CLIENT_LOCK:
            saved = (APIConsumer.host, APIConsumer.port, toxiproxy.api.requests)
            APIConsumer.host, APIConsumer.port, toxiproxy.api.requests = self.host, self.port, self.http
            try:
                return action(Toxiproxy())
            except (InvalidToxic, NotFound, ProxyExists) as exc:
                detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
                raise LinkProxyError(f"link proxy {self.name} refused to {what}: {str(detail).strip()}",
                                     hint="see the message; `stacklet fault ls` shows what is in force") from exc
            except requests.RequestException as exc:
                raise LinkProxyError(f"link proxy {self.name} at {self.host}:{self.port} failed to {what}: {exc}",
                                     hint="check `stacklet status`; the link proxy container may have stopped") from exc
            finally:
                APIConsumer.host, APIConsumer.port, toxiproxy.api.requests = saved

    def answers(self, timeout_s: float = 0.3) -> bool:
        """Whether the control API answers now (one short request: toxiproxy-python's calls have no timeout)."""
        import requests
        try:
            return self.http.get(f"http://{self.host}:{self.port}/version", timeout=timeout_s).ok
        except requests.RequestException:
            return False

    def wait_ready(self, timeout_s: float = 30.0) -> str:
        """Wait until the control API answers; return the server's version."""
        import requests
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            try:
                response = self.http.get(f"http://{self.host}:{self.port}/version", timeout=1)
                if response.ok:
                    return response.text.strip()
                last = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.05)
        raise LinkProxyError(f"link proxy {self.name} did not answer on {self.host}:{self.port} within "
                             f"{timeout_s:.0f} s (last: {last})", hint="see `stacklet logs " + self.name + "`")

    def populate(self, routes: dict[str, tuple[str, str]], protocols: dict[str, str] | None = None) -> None:
        """Create (or keep) one proxy per route: name -> (listen, upstream); then set ``protocols`` by name."""
        wanted = [{"name": name, "listen": listen, "upstream": upstream}
                  for name, (listen, upstream) in routes.items()]
        self.call(lambda client: client.populate(wanted), "create its proxies")
        if protocols:
            self.set_protocols(protocols)

    def proxies(self) -> dict[str, dict]:
        """The proxies of this link proxy as plain dicts (name, listen, upstream, enabled, toxics)."""
        def read(client: Toxiproxy) -> dict[str, dict]:
            return {name: {"name": name, "listen": p.listen, "upstream": p.upstream, "enabled": p.enabled,
                           "toxics": [{"name": t.name, "type": t.type, "stream": t.stream,
                                       "toxicity": t.toxicity, "attributes": t.attributes}
                                      for t in p.toxics().values()]}
                    for name, p in client.proxies().items()}
        return self.call(read, "list its proxies")

    def set_protocols(self, protocols: dict[str, str]) -> None:
        """Set the ``protocol`` (auto, http, tcp) of proxies by name; toxiproxy-python has no such field."""
        for name, protocol in protocols.items():
            self._raw("PATCH", f"/proxies/{name}", f"set the protocol of {name}", json={"protocol": protocol})

    def traffic(self, proxy: str, since: int | None = None) -> "ProxyTraffic":
        """One proxy's counters, and its HTTP requests recorded after sequence number ``since``.

        ``since=None`` reads the counters and ``last_seq`` only (the mark to read from later).
        Raw HTTP: the request records are an endpoint of the link proxy that Toxiproxy lacks.
        """
        if since is None:
            return ProxyTraffic.model_validate(self._raw("GET", f"/proxies/{proxy}/requests",
                                                         f"count the traffic of {proxy}",
                                                         params={"since": 2**63 - 1, "limit": 1}))
        pages: list[ProxyTraffic] = []
        for _ in range(MAX_TRAFFIC_PAGES):
            page = ProxyTraffic.model_validate(self._raw("GET", f"/proxies/{proxy}/requests",
                                                         f"read the requests of {proxy}",
                                                         params={"since": since, "limit": TRAFFIC_PAGE}))
            pages.append(page)
            if len(page.requests) < TRAFFIC_PAGE:
                break
            since = page.next_since
        last = pages[-1]
        return last.model_copy(update={"truncated": pages[0].truncated or last.truncated,
                                       "requests": [r for page in pages for r in page.requests]})

    def _raw(self, method: str, path: str, what: str, **kwargs) -> dict:
        import requests
        try:
            response = self.http.request(method, f"http://{self.host}:{self.port}{path}", timeout=5, **kwargs)
        except requests.RequestException as exc:
            raise LinkProxyError(f"link proxy {self.name} at {self.host}:{self.port} failed to {what}: {exc}",
                                 hint="check `stacklet status`; the link proxy container may have stopped") from exc
        if not response.ok:
            raise LinkProxyError(f"link proxy {self.name} refused to {what}: HTTP {response.status_code} "
                                 f"{response.text.strip()[:200]}",
                                 hint="an older link proxy image lacks this endpoint: rebuild it (`stacklet up`)")
        return response.json()


MAX_TRAFFIC_PAGES = 10
TRAFFIC_PAGE = 10_000


class RequestRecord(BaseModel):
    """One HTTP request through a proxy: ``status`` None when the connection ended before the answer."""

    seq: int
    start: float = Field(description="Unix time, seconds")
    method: str
    path: str
    status: int | None = None
    duration_ms: float | None = None
    request_id: str | None = None
    fault: str | None = Field(None, description="the HTTP toxic that answered it, if one did")


class ByteCounts(BaseModel):
    received: int = 0
    sent: int = 0


class ProxyCounters(BaseModel):
    """A proxy's counters since it was created (``bytes.upstream`` is client → server)."""

    connections_total: int = 0
    connections_active: int = 0
    connect_failures: int = 0
    resets: int = 0
    bytes: dict[str, ByteCounts] = Field(default_factory=dict)
    http_connections: int = 0
    requests: int = 0
    responses: dict[str, int] = Field(default_factory=dict)
    no_response: int = 0
    faults: int = 0


class ProxyTraffic(BaseModel):
    """The answer of ``GET /proxies/{p}/requests``."""

    proxy: str
    protocol: str = "auto"
    last_seq: int = 0
    next_since: int = 0
    truncated: bool = False
    requests: list[RequestRecord] = Field(default_factory=list)
    stats: ProxyCounters = Field(default_factory=ProxyCounters)
