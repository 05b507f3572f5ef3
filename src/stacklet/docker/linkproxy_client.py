"""Control of link proxies through the real ``toxiproxy-python`` client.

That client talks to one server at a time through the class attributes ``APIConsumer.host``
and ``APIConsumer.port``. A slice may have several link proxies and the TUI or MCP server may
use several threads, so every use goes through ``LinkProxyControl``, which points the client at
its own proxy under a process-wide lock for the duration of each call. A slice's link proxies
require its bearer token (``Authorization: Bearer``); the client calls ``requests.get/post/delete``
of its module, so for each call that name points at a ``requests.Session`` carrying the header.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from pydantic import BaseModel
import toxiproxy.api
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from stacklet.errors import LinkProxyError

T = TypeVar("T")
_CLIENT_LOCK = threading.RLock()


class LinkProxyControl:
    """The control API of one link proxy, reached at ``host:port``."""

    def __init__(self, name: str, host: str, port: int, token: str | None = None):
        self.name = name
        self.host = host
        self.port = port
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, action: Callable[[Toxiproxy], T], what: str) -> T:
        """Run ``action`` with the toxiproxy client pointed at this proxy (and sending its token)."""
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
        try:
            return self.http.get(f"http://{self.host}:{self.port}/version", timeout=timeout_s).ok
        except requests.RequestException:
            return False

    def wait_ready(self, timeout_s: float = 30.0) -> str:
        """Wait until the control API answers; return the server's version."""
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

    def populate(self, routes: dict[str, tuple[str, str]]) -> None:
        """Create (or keep) one proxy per route: name -> (listen, upstream)."""
        wanted = [{"name": name, "listen": listen, "upstream": upstream}
                  for name, (listen, upstream) in routes.items()]
        self.call(lambda client: client.populate(wanted), "create its proxies")

    def proxies(self) -> dict[str, dict]:
        """The proxies of this link proxy as plain dicts (name, listen, upstream, enabled, toxics)."""
        def read(client: Toxiproxy) -> dict[str, dict]:
            return {name: {"name": name, "listen": p.listen, "upstream": p.upstream, "enabled": p.enabled,
                           "toxics": [{"name": t.name, "type": t.type, "stream": t.stream,
                                       "toxicity": t.toxicity, "attributes": t.attributes}
                                      for t in p.toxics().values()]}
                    for name, p in client.proxies().items()}
        return self.call(read, "list its proxies")

    def metrics(self) -> dict[str, "LinkCounters"]:
        """Live byte counters and dial failures per proxy (link), from the Prometheus endpoint."""
        try:
            response = self.http.get(f"http://{self.host}:{self.port}/metrics", timeout=5)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise LinkProxyError(f"link proxy {self.name} at {self.host}:{self.port} has no metrics: {exc}",
                                 hint="the official Toxiproxy image serves /metrics only with -enable-metrics") from exc
        return parse_metrics(response.text)


class LinkCounters(BaseModel):
    """Bytes through one link, per direction, and client connections whose upstream dial failed."""

    to_upstream: int = 0
    from_upstream: int = 0
    dial_failures: int = 0


_SAMPLE = re.compile(r'^(?P<metric>[a-z_]+)\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+-]+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[str, LinkCounters]:
    """Per-proxy counters from Toxiproxy-style Prometheus text (sent bytes, by direction)."""
    found: dict[str, LinkCounters] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group("labels")))
        proxy = labels.get("proxy")
        if not proxy:
            continue
        counters = found.setdefault(proxy, LinkCounters())
        value = int(float(match.group("value")))
        metric = match.group("metric")
        if metric == "toxiproxy_proxy_sent_bytes_total":
            if labels.get("direction") == "upstream":
                counters.to_upstream += value
            elif labels.get("direction") == "downstream":
                counters.from_upstream += value
        elif metric == "linkproxy_dial_failures_total":
            counters.dial_failures += value
    return found
