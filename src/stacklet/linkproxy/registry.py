"""The set of proxies and every operation of the API on it, in Toxiproxy's semantics.

Operations take decoded JSON bodies and return model objects or raise :class:`ApiError`;
the HTTP layer (:mod:`api`) only routes and serialises.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from .errors import PROXY_EXISTS, PROXY_NOT_FOUND, TOXIC_NOT_FOUND, ApiError, bad_request, missing_field
from .metrics import Metrics, ProxyGauges
from .proxy import Proxy, dials_itself
from .toxics import Toxic, new_toxic, optional_bool, optional_string, updated_toxic
from .validation import check_address, check_name

PROTOCOLS = ("auto", "http", "tcp")

log = logging.getLogger("stacklet.linkproxy")


class ProxyFields:
    """The proxy fields of a request body, type-checked; None where absent or null."""

    def __init__(self, body: Any, where: str = "") -> None:
        self.where = where
        if not isinstance(body, dict):
            kind = "array" if isinstance(body, list) else type(body).__name__
            raise bad_request(f"expected a JSON object{where}, got {kind}")
        try:
            self.name = optional_string(body, "name")
            self.listen = optional_string(body, "listen")
            self.upstream = optional_string(body, "upstream")
            self.enabled = optional_bool(body, "enabled")
            self.protocol = optional_string(body, "protocol")
        except ApiError as exc:
            raise ApiError(exc.message + where, exc.status) from None
        if self.name:
            check_name("name", self.name, where)
        if self.listen:
            check_address("listen", self.listen, where)
        if self.upstream:
            check_address("upstream", self.upstream, where)
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise bad_request(f"field 'protocol' must be one of auto, http, tcp{where}")

    def refuse_loop(self, listen: str, upstream: str) -> None:
        """A 400 when the proxy would dial its own listen address."""
        if dials_itself(listen, upstream):
            raise bad_request(f"field 'upstream' is the proxy's own listen address {listen}{self.where}")


class Registry:
    """Every proxy of the server, by name; one lock serialises changes to the set."""

    def __init__(self, seed: int | None = None, half_close: bool = False) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.metrics = Metrics()
        self.seed = seed
        self.half_close = half_close
        self._lock = asyncio.Lock()

    def rng(self, proxy: str, connection_index: int, stream: str, toxic: str) -> random.Random:
        """Randomness for one toxic on one link: repeatable when the server has a seed."""
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}/{proxy}/{connection_index}/{stream}/{toxic}")

    def _new_proxy(self, fields: ProxyFields) -> Proxy:
        proxy = Proxy(fields.name, fields.listen or "", fields.upstream, self.metrics.counter, self.rng,
                      self.half_close, self.metrics.new_stats(fields.name))
        proxy.protocol = fields.protocol or "auto"
        return proxy

    @staticmethod
    async def _start(proxy: Proxy) -> None:
        """Start listening; a port 0 that happened to bind the upstream's port is a 400, unbound."""
        await proxy.start()
        if dials_itself(proxy.listen, proxy.upstream):
            proxy.stop()
            raise bad_request(f"field 'upstream' is the proxy's own listen address {proxy.listen}")

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    def sorted_proxies(self) -> list[Proxy]:
        return [self.proxies[name] for name in sorted(self.proxies)]

    # -- proxies -----------------------------------------------------------------------

    async def create(self, body: Any) -> Proxy:
        """POST /proxies: 400 on bad fields, 409 if the name exists, 500 if listen fails."""
        fields = ProxyFields(body)
        if not fields.name:
            raise missing_field("name")
        if not fields.upstream:
            raise missing_field("upstream")
        async with self._lock:
            if fields.name in self.proxies:
                raise PROXY_EXISTS
            fields.refuse_loop(fields.listen or "", fields.upstream)
            proxy = self._new_proxy(fields)
            if fields.enabled is not False:
                await self._start(proxy)
            self.proxies[proxy.name] = proxy
        log.info("proxy created name=%s listen=%s upstream=%s enabled=%s",
                 proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
        return proxy

    async def populate(self, body: Any) -> tuple[list[Proxy] | None, ApiError | None]:
        """POST /populate: validate every entry, then create, keep or replace each in order.

        Returns the proxies done and the error that stopped the run, if any (None for the
        list when nothing was applied).
        """
        if not isinstance(body, list):
            kind = "object" if isinstance(body, dict) else type(body).__name__
            return None, bad_request(f"expected a JSON array of proxies, got {kind}")
        entries = []
        for number, entry in enumerate(body, start=1):
            try:
                fields = ProxyFields(entry, f" at proxy {number}")
            except ApiError as exc:
                return None, exc
            if not fields.name:
                return None, missing_field(f"name at proxy {number}")
            if not fields.upstream:
                return None, missing_field(f"upstream at proxy {number}")
            try:
                fields.refuse_loop(fields.listen or "", fields.upstream)
            except ApiError as exc:
                return None, exc
            entries.append(fields)
        done: list[Proxy] = []
        async with self._lock:
            for fields in entries:
                listen = fields.listen or ""
                existing = self.proxies.get(fields.name)
                if existing is not None:
                    if existing.listen == listen and existing.upstream == fields.upstream:
                        if fields.protocol is not None:
                            existing.protocol = fields.protocol  # applies to new connections
                        done.append(existing)
                        continue
                    existing.stop()
                proxy = self._new_proxy(fields)
                if fields.enabled is not False:
                    try:
                        await self._start(proxy)
                    except ApiError as exc:
                        return done, exc
                self.proxies[proxy.name] = proxy
                done.append(proxy)
                log.info("proxy %s name=%s listen=%s upstream=%s enabled=%s",
                         "replaced" if existing else "created",
                         proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
        return done, None

    async def update(self, name: str, body: Any) -> Proxy:
        """PATCH /proxies/{name}: change listen/upstream (restarts) and enabled."""
        proxy = self.get(name)
        fields = ProxyFields(body)
        async with self._lock:
            listen = proxy.listen if fields.listen is None else fields.listen
            upstream = proxy.upstream if fields.upstream is None else fields.upstream
            enabled = proxy.enabled if fields.enabled is None else fields.enabled
            fields.refuse_loop(listen, upstream)
            if fields.protocol is not None:
                proxy.protocol = fields.protocol  # applies to connections accepted from now on
            if listen != proxy.listen or upstream != proxy.upstream:
                proxy.retarget(listen, upstream)
            if enabled and not proxy.enabled:
                await self._start(proxy)
            elif not enabled:
                proxy.stop()
        log.info("proxy updated name=%s listen=%s upstream=%s enabled=%s",
                 proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
        return proxy

    async def delete(self, name: str) -> None:
        """DELETE /proxies/{name}: stop listening, close connections, forget it."""
        async with self._lock:
            proxy = self.get(name)
            proxy.stop()
            del self.proxies[name]
        log.info("proxy deleted name=%s", name)

    async def reset(self) -> None:
        """POST /reset: enable every proxy and remove every toxic; connections stay open."""
        async with self._lock:
            for proxy in self.sorted_proxies():
                await proxy.start()
                for toxic in proxy.toxics_in_order():
                    proxy.remove_toxic(toxic)
        log.info("reset proxies=%d", len(self.proxies))

    async def close_all(self) -> None:
        async with self._lock:
            for proxy in self.proxies.values():
                proxy.stop()

    # -- toxics ------------------------------------------------------------------------

    def add_toxic(self, proxy_name: str, body: Any) -> Toxic:
        proxy = self.get(proxy_name)
        toxic = new_toxic(body, lambda name: name in proxy.toxics)
        proxy.add_toxic(toxic)
        log.info("toxic added proxy=%s name=%s type=%s stream=%s toxicity=%s attributes=%s",
                 proxy.name, toxic.name, toxic.type, toxic.stream, toxic.toxicity, dict(toxic.attributes))
        return toxic

    def get_toxic(self, proxy_name: str, toxic_name: str) -> Toxic:
        toxic = self.get(proxy_name).toxics.get(toxic_name)
        if toxic is None:
            raise TOXIC_NOT_FOUND
        return toxic

    def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> Toxic:
        proxy = self.get(proxy_name)
        current = proxy.toxics.get(toxic_name)
        if current is None:
            raise TOXIC_NOT_FOUND
        toxic = updated_toxic(current, body)
        proxy.update_toxic(toxic)
        log.info("toxic updated proxy=%s name=%s toxicity=%s attributes=%s",
                 proxy.name, toxic.name, toxic.toxicity, dict(toxic.attributes))
        return toxic

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        proxy = self.get(proxy_name)
        toxic = proxy.toxics.get(toxic_name)
        if toxic is None:
            raise TOXIC_NOT_FOUND
        proxy.remove_toxic(toxic)
        log.info("toxic removed proxy=%s name=%s", proxy.name, toxic_name)

    # -- metrics -----------------------------------------------------------------------

    def render_metrics(self) -> str:
        gauges = []
        for proxy in self.proxies.values():
            fast, toxic = proxy.link_counts()
            gauges.append(ProxyGauges(proxy.name, len(proxy.connections), fast, toxic))
        return self.metrics.render(gauges)
