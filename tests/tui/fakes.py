"""A fake engine for the TUI tests: recorded status snapshots, log lines, link proxies in memory.

It has the public methods of ``SliceEngine`` the TUI uses and records every call that changes
something, so the tests can check what a key press did without Docker.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

from stacklet.runtime.engine import Endpoint, ServiceStatus, SliceStatus, SliceSummary
from stacklet.errors import EngineUnavailable, SliceNotFound, StackFileError
from stacklet.docker.linkproxy_client import ProxyCounters, ProxyTraffic, RequestRecord
from stacklet.runtime.faults import LinkProxyHandle
from stacklet.runtime.seeds import SeedResult

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
CREATED = "2025-05-01T11:56:30Z"  # 3 m 30 s before NOW
EXPIRES = "2025-05-01T12:29:30Z"  # in 29 m 30 s

LOGS = [
    ("orders-db", "database system is ready to accept connections"),
    ("gateway", "2025-05-01T11:59:58Z gateway rid=r-100 GET /products 200 12ms"),
    ("orders", "2025-05-01T11:59:58Z orders listening on 8081"),
    ("gateway", "2025-05-01T11:59:59Z gateway rid=r-101 POST /orders 201 48ms"),
    ("orders", "2025-05-01T11:59:59Z orders rid=r-101 POST /orders 201 40ms"),
    ("payments", "2025-05-01T11:59:59Z payments rid=r-101 POST /payments 200 9ms"),
    ("orders", "2025-05-01T12:00:00Z orders rid=r-102 GET /orders/7 500 3ms ERROR db timeout"),
    ("gateway", "2025-05-01T12:00:00Z gateway rid=r-102 GET /orders/7 502 5ms"),
]


def _svc(name: str, role: str, port: int | None, host_port: int | None, *, health: str | None = "healthy",
         output: str = "", restarts: int = 0, state: str = "running") -> ServiceStatus:
    endpoints = [Endpoint(port=port, host=f"127.0.0.1:{host_port}", network=f"{name}:{port}")] if port else []
    return ServiceStatus(name=name, role=role, container=f"stacklet-shop-orders-{name}-1", state=state, health=health,
                         health_output=output, restarts=restarts, endpoints=endpoints)


def shop_status() -> SliceStatus:
    return SliceStatus(
        name="shop-orders", stack="shop", project="stacklet-shop-orders", created=CREATED, expires=EXPIRES,
        changed=["orders"],
        healthy=False,
        services=[
            _svc("gateway", "caller", 8080, 40001),
            _svc("inventory", "callee", 8083, 40002),
            _svc("orders", "changed", 8081, 40003),
            _svc("orders-db", "callee", 5432, 40004, output="/var/run/postgresql:5432 - accepting connections"),
            _svc("payments", "callee", 8082, 40005, health="unhealthy", restarts=2,
                 output="curl: (7) Failed to connect to 127.0.0.1 port 8082: Connection refused"),
            _svc("redis", "callee", 6379, 40006),
        ],
        proxies=[_svc("stacklet-link-1", "linkproxy", 8474, 40010, health=None)])


ROUTES = {
    "stacklet-link-1": {"catalog:8084": "catalog.baseline:8084", "inventory:8083": "inventory.origin:8083",
                        "orders:8081": "orders.origin:8081", "orders-db:5432": "orders-db.origin:5432",
                        "payments:8082": "payments.origin:8082", "redis:6379": "redis.origin:6379",
                        "users:8085": "users.baseline:8085"},
}


class FakeToxic:
    def __init__(self, name, type, stream, toxicity, attributes):
        self.name, self.type, self.stream, self.toxicity, self.attributes = name, type, stream, toxicity, attributes


class FakeProxy:
    def __init__(self, name: str, upstream: str):
        self.name, self.upstream, self.listen, self.enabled = name, upstream, "0.0.0.0:" + name.split(":")[1], True
        self._toxics: dict[str, FakeToxic] = {}

    def toxics(self):
        return dict(self._toxics)

    def add_toxic(self, name, type, stream, toxicity, attributes):
        self._toxics[name] = FakeToxic(name, type, stream, toxicity, attributes)

    def destroy_toxic(self, name):
        del self._toxics[name]

    def disable(self):
        self.enabled = False

    def enable(self):
        self.enabled = True


class FakeClient:
    def __init__(self, proxies: dict[str, FakeProxy]):
        self._proxies = proxies

    def proxies(self):
        return self._proxies

    def get_proxy(self, name):
        return self._proxies.get(name)


class FakeControl:
    """Stands for LinkProxyControl: the real faults.py code runs against in-memory proxies."""

    def __init__(self, name: str, routes: dict[str, str]):
        self.name = name
        self.state = {route: FakeProxy(route, upstream) for route, upstream in routes.items()}
        self.records: dict[str, list[RequestRecord]] = {route: [] for route in routes}

    def serve(self, route: str, durations_ms: list[float], status: int = 200) -> None:
        """Count requests on ``route`` as the link proxy would record them."""
        for duration in durations_ms:
            seq = len(self.records[route]) + 1
            self.records[route].append(RequestRecord(seq=seq, start=0.0, method="GET", path="/", status=status,
                                                     duration_ms=duration))

    def traffic(self, proxy: str, since: int | None = None) -> ProxyTraffic:
        records = self.records[proxy]
        stats = ProxyCounters(requests=len(records),
                              responses={"5xx": sum(1 for r in records if r.status and r.status >= 500)})
        return ProxyTraffic(proxy=proxy, last_seq=len(records), stats=stats,
                            requests=[] if since is None else [r for r in records if r.seq > since])

    def call(self, action, what):
        return action(FakeClient(self.state))

    def proxies(self):
        return {name: {"name": name, "listen": p.listen, "upstream": p.upstream, "enabled": p.enabled,
                       "toxics": [{"name": t.name, "type": t.type, "stream": t.stream, "toxicity": t.toxicity,
                                   "attributes": t.attributes} for t in p._toxics.values()]}
                for name, p in self.state.items()}


class FakeDriver:
    endpoint = "the fake engine"

    def __init__(self, available: bool = True):
        self.available = available

    def engine_info(self):
        if not self.available:
            raise EngineUnavailable("no Docker engine answers at the default socket (unix:///var/run/docker.sock)",
                                    hint="start Docker (scripts/bootstrap.sh docker does it on Debian), or point "
                                         "DOCKER_HOST / --context at a running engine")
        return None



class FakeEngine:
    """The public methods of SliceEngine the TUI uses, on recorded data."""

    def __init__(self, *, status: SliceStatus | None = None, slices: list[SliceSummary] | None = None,
                 logs: list[tuple[str, str]] | None = None, available: bool = True, baseline_running: bool = False):
        self.driver = FakeDriver(available)
        self._status = status or shop_status()
        self._slices = slices if slices is not None else [
            SliceSummary(name="shop-orders", stack="shop", changed=["orders"], created=CREATED, age_s=210,
                         containers=7, running=7, healthy=False, expires=EXPIRES, expires_in_s=1770),
            SliceSummary(name="tiny-api", stack="tiny", changed=["api"], created="2025-05-01T09:00:00Z",
                         age_s=10800, containers=4, running=4, healthy=True, expires="2025-05-01T11:57:00Z",
                         expires_in_s=-180, expired=True),
            SliceSummary(name="tiny-web", stack="tiny", changed=["web"], created="2025-05-01T11:59:15Z",
                         age_s=45, containers=4, running=4, healthy=True)]
        self.log_lines = list(LOGS if logs is None else logs)
        self.controls = {name: FakeControl(name, routes) for name, routes in ROUTES.items()}
        self.seeded: list[tuple[str, str | None, bool]] = []
        self.restarted: list[tuple[str, str]] = []
        self.baseline_running = baseline_running
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _check(self, name: str) -> None:
        if name != self._status.name:
            raise SliceNotFound(f"no slice named {name!r} on the fake engine", hint="`stacklet ls` lists the slices")

    def list(self) -> list[SliceSummary]:
        return list(self._slices)

    def status(self, name: str) -> SliceStatus:
        self._check(name)
        return self._status.model_copy(deep=True)

    def link_proxies(self, name: str) -> list[LinkProxyHandle]:
        self._check(name)
        return [LinkProxyHandle(name=n, control=c, routes=dict(ROUTES[n])) for n, c in self.controls.items()]

    def logs(self, name: str, service: str | None = None, *, follow: bool = False, tail: int | None = None):
        self._check(name)
        for svc, line in self.log_lines:
            if service in (None, svc):
                yield svc, line

    def restart(self, name: str, service: str, timeout_s: int = 180) -> ServiceStatus:
        self._check(name)
        self.restarted.append((name, service))
        return self._status.service(service)

    def seed(self, name: str, service: str | None = None, *, reset: bool = False) -> list[SeedResult]:
        self._check(name)
        if service not in ("orders-db", "redis"):
            raise StackFileError(f"{service} has no seed files",
                                 hint="add files under seeds/shop/" + f"{service}/ and declare `seed:` in stack.yaml")
        self.seeded.append((name, service, reset))
        return [SeedResult(service=service, files=["01-schema.sql", "02-data.sql"], seconds=0.42,
                           action="reset" if reset else "seed")]

    def baseline_status(self, stack_name: str) -> SliceStatus:
        if not self.baseline_running:
            raise SliceNotFound(f"no baseline of stack {stack_name!r} runs", hint="start it")
        return SliceStatus(name=f"baseline-{stack_name}", stack=stack_name, project="p", healthy=True, services=[])


def faults_dir(tmp: Path) -> Path:
    """A faults/ folder with two shop profiles and one of another stack."""
    folder = tmp / "faults"
    folder.mkdir()
    (folder / "slow-db.yaml").write_text(
        "name: slow-db\ndescription: orders-db answers slowly.\nstack: shop\n"
        "toxics:\n  - target: orders-db\n    type: latency\n    attributes: {latency: 250, jitter: 100}\n")
    (folder / "payments-down.yaml").write_text(
        "name: payments-down\ndescription: the payments link is down.\nstack: shop\n"
        "toxics:\n  - target: payments\n    type: down\n")
    (folder / "other.yaml").write_text(
        "name: other\ndescription: for another stack.\nstack: tiny\ntoxics:\n  - target: api\n    type: down\n")
    return tmp
