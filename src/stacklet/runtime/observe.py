"""The observed state of slices and baselines, read from their labels: status, list, logs, link proxies.

Nothing here changes what runs, except attaching this process's own container to a slice
network when stacklet runs inside a container (so the slice's names answer from here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from stacklet.config.stack import Stack, load_stack
from stacklet.docker.models import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.docker.linkproxy_client import LinkProxyControl
from stacklet.errors import BootError, SliceNotFound
from stacklet.labels import (Label, SliceLabels, baseline_project_name, is_linkproxy, parse_utc, slice_project_name,
                             split_list)
from stacklet.planning import lifetime
from stacklet.planning.plan import CONTROL_PORT, routes_of
from stacklet.runtime.faults import LinkProxyHandle
from stacklet.runtime.readiness import confirm_unjudged, healthy
from stacklet.runtime.status import Endpoint, ServiceStatus, SliceStatus, SliceSummary


@dataclass(frozen=True)
class Vantage:
    """This process's own container, attached to a slice network."""

    container: str
    network: str
    shared: bool = False  # also on another slice's network: service names may resolve there

    def address(self, info: ContainerInfo, port: int, owners: dict[str, ContainerInfo]) -> str:
        """``name:port`` in the slice network; the IP of the container owning that name when names are shared."""
        if not self.shared:
            return f"{info.service}:{port}"
        owner = owners.get(info.service, info)
        return f"{owner.addresses.get(self.network, info.service)}:{port}"


class SliceReader:
    """Reads slices and baselines on one engine from their labels."""

    def __init__(self, driver: EngineDriver):
        self.driver = driver

    # -- slices -----------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        """Whether any container of slice ``name`` is on the engine (then ``up`` reconciles it)."""
        return bool(self.driver.containers({Label.SLICE: name}))

    def containers_of(self, name: str) -> list[ContainerInfo]:
        """The containers of slice ``name``; SliceNotFound when it has none."""
        containers = self.driver.containers({Label.SLICE: name})
        if not containers:
            raise SliceNotFound(f"no slice named {name!r} on {self.driver.endpoint}",
                                hint="`stacklet ls` lists the slices")
        return containers

    def container_of(self, name: str, service: str) -> ContainerInfo:
        """The container of one service (or link proxy) of slice ``name``."""
        containers = self.containers_of(name)
        match = next((c for c in containers if c.service == service), None)
        if match is None:
            services = sorted({c.service for c in containers if not is_linkproxy(c.labels)})
            raise SliceNotFound(f"slice {name} has no service {service!r}", hint=f"its services: {', '.join(services)}")
        return match

    def status(self, name: str) -> SliceStatus:
        """The live state of slice ``name``, from its containers' labels."""
        containers = confirm_unjudged(self.driver, self.containers_of(name))
        first = SliceLabels.of(containers[0].labels)
        vantage = self.vantage(name)
        owners = {t: c for c in containers if is_linkproxy(c.labels)
                  for t in split_list(c.labels.get(Label.TARGETS))}
        services, proxies = [], []
        for info in sorted(containers, key=lambda c: c.service):
            status = _service_status(info, info.labels.get(Label.ROLE, "?"), lambda p: f"{info.service}:{p}",
                                     lambda p, i=info: vantage and vantage.address(i, p, owners), self.published)
            (proxies if status.role == "linkproxy" else services).append(status)
        return SliceStatus(
            in_container=self.driver.self_container() is not None, attached_as=vantage and vantage.container,
            name=name, stack=first.stack or "?", project=slice_project_name(name), created=first.created,
            expires=lifetime.first_label([c.labels for c in containers], Label.EXPIRES), changed=first.changed,
            compose_file=first.compose_file, healthy=healthy(containers), services=services, proxies=proxies)

    def list(self) -> list[SliceSummary]:
        """Every slice on the engine, found by labels, judged by the same health rule as ``status``."""
        by_slice: dict[str, list[ContainerInfo]] = {}
        for info in confirm_unjudged(self.driver, self.driver.containers({Label.SLICE: ""})):
            by_slice.setdefault(info.labels[Label.SLICE], []).append(info)
        now = datetime.now(timezone.utc)
        summaries = []
        for name, containers in sorted(by_slice.items()):
            labels = SliceLabels.of(containers[0].labels)
            created = parse_utc(labels.created)
            expires, expires_in_s, expired = lifetime.expiry([c.labels for c in containers], now)
            summaries.append(SliceSummary(
                name=name, stack=labels.stack or "?", changed=labels.changed, created=labels.created,
                age_s=(now - created).total_seconds() if created else None, containers=len(containers),
                running=sum(c.state == "running" for c in containers), healthy=healthy(containers),
                expires=expires, expires_in_s=expires_in_s, expired=expired))
        return summaries

    def logs(self, name: str, service: str | None = None, *, follow: bool = False,
             tail: int | None = None) -> Iterator[tuple[str, str]]:
        """(service, line) pairs of one service or of the whole slice."""
        containers = [self.container_of(name, service)] if service else self.containers_of(name)
        names = {c.id: c.service for c in containers}
        if follow:
            for cid, line in self.driver.follow_logs(list(names), tail=tail):
                yield names[cid], line
            return
        for cid, service_name in names.items():
            for line in self.driver.container_logs(cid, tail=tail).splitlines():
                yield service_name, line

    def stack_of(self, name: str, containers: list[ContainerInfo] | None = None) -> Stack:
        """Load again the stack a running slice was made from (its labels say where it lives); ``containers``
        of the slice when the caller has listed them already."""
        labels = SliceLabels.of((containers or self.containers_of(name))[0].labels)
        if labels.stack_file:
            return load_stack(labels.stack_file)
        if not labels.compose_files:
            raise SliceNotFound(f"slice {name} does not say which stack it was made from",
                                hint="it was started by another version of stacklet; recreate it")
        return load_stack(compose_files=[Path(f) for f in labels.compose_files])

    # -- link proxies -----------------------------------------------------------------------

    def link_proxies(self, name: str) -> list[LinkProxyHandle]:
        """The link proxies of slice ``name``, each with its control API and routes."""
        containers = [c for c in self.containers_of(name) if is_linkproxy(c.labels)]
        return [LinkProxyHandle(name=info.service, control=self.control(info),
                                routes={r.name: r.upstream for r in routes_of(info.labels)})
                for info in sorted(containers, key=lambda c: c.service)]

    def control(self, info: ContainerInfo) -> LinkProxyControl:
        """The control API of one link proxy container, at the address that works from here."""
        direct = self.direct_address(info, CONTROL_PORT)
        if direct:
            host, port = direct.rsplit(":", 1)
            return LinkProxyControl(info.service, host, int(port), info.labels.get(Label.TOKEN))
        published = self.published(info, CONTROL_PORT)
        if not published:
            raise BootError(f"link proxy {info.service} publishes no control port", service=info.service,
                            hint="the link proxy container may have exited; see its logs")
        host, port = published.rsplit(":", 1)
        return LinkProxyControl(info.service, host, int(port), info.labels.get(Label.TOKEN))

    def address_of(self, info: ContainerInfo, port: int) -> str | None:
        """``host:port`` that reaches ``port`` of a container from here (its network IP when attached,
        else its published port, as the client reaches it); None when neither exists."""
        return self.direct_address(info, port) or self.published(info, port)

    def published(self, info: ContainerInfo, port: int) -> str | None:
        """``host:port`` from which this client reaches ``port`` of a container as the engine published it
        (the engine's loopback here, its advertise address, or a local ssh forward); None when unpublished."""
        host_port = info.ports.get(port)
        return self.driver.reach(info.port_ips.get(port, ""), host_port) if host_port else None

    # -- baselines --------------------------------------------------------------------------

    def baseline_status(self, stack_name: str) -> SliceStatus:
        """The live state of the local baseline of ``stack_name``, by the same health rule as slices."""
        containers = confirm_unjudged(self.driver, self.driver.containers({Label.BASELINE: stack_name}))
        if not containers:
            raise SliceNotFound(f"no baseline of stack {stack_name!r} runs on {self.driver.endpoint}",
                                hint=f"`stacklet baseline up --stack {stack_name}` starts it")
        services = [_service_status(c, "baseline", lambda p, c=c: f"{c.service}.baseline:{p}", lambda p: None,
                                    self.published)
                    for c in sorted(containers, key=lambda c: c.service)]
        return SliceStatus(name=f"baseline-{stack_name}", stack=stack_name, project=baseline_project_name(stack_name),
                           healthy=healthy(containers), services=services)

    # -- from inside a container: attach to the slice network -------------------------------

    def vantage(self, name: str) -> Vantage | None:
        """Where this process stands towards slice ``name``: None on the host (or while the slice has no
        network); in a container, that container attached to the slice network (attached here when it is not)."""
        me = self.driver.self_container()
        if me is None:
            return None
        network = slice_project_name(name)
        mine = self.driver.inspect([me.id])
        joined = mine[0].networks if mine else []
        if network not in joined:
            if network not in self.driver.networks({Label.SLICE: name}):
                return None  # not a slice network (never a baseline's), or not created yet
            self.driver.connect(network, me.id)
        slice_prefix, baseline_prefix = slice_project_name(""), baseline_project_name("")
        others = [n for n in joined if n != network and n.startswith(slice_prefix) and not n.startswith(baseline_prefix)]
        return Vantage(container=me.name, network=network, shared=bool(others))

    def direct_address(self, info: ContainerInfo, port: int) -> str | None:
        """``IP:port`` of a slice container on its network when this process is attached to it, else None."""
        slice_name = info.labels.get(Label.SLICE)
        vantage = self.vantage(slice_name) if slice_name else None
        ip = info.addresses.get(vantage.network) if vantage else None
        if vantage and not ip:  # attached after ``info`` was read
            fresh = self.driver.inspect([info.id])
            ip = fresh[0].addresses.get(vantage.network) if fresh else None
        return f"{ip}:{port}" if ip else None


def _service_status(info: ContainerInfo, role: str, network_name, address, published) -> ServiceStatus:
    return ServiceStatus(name=info.service, role=role, container=info.name, state=info.state, health=info.health,
                         health_output=info.health_output, restarts=info.restarts,
                         snapshot=info.labels.get(Label.SNAPSHOT), satisfied_by=info.labels.get(Label.SATISFIED_BY),
                         endpoints=[Endpoint(port=p, host=published(info, p), network=network_name(p),
                                             address=address(p)) for p in sorted(info.ports)])
