"""SlicePlan: what runs locally, what is forwarded, and the link proxies between them (pure data).

``make_plan`` selects the slice; ``render`` turns a plan into a Compose project (a dict) that the
engine writes under ``.stacklet/slices/<name>/compose.yaml``. Neither does any I/O.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from stacklet import __version__
from stacklet.errors import PlanError, short_repr
from stacklet.config.stack import MAX_RADIUS, Stack
from stacklet.labels import (BASELINE_ROLE, LINKPROXY_ROLE, AdvertisedBaseline, Label, baseline_project_name, decode_routes,
                             encode_advertised, encode_routes, slice_project_name)
from stacklet.planning.images import source_tag
from stacklet.planning.graph import ServiceGraph, acyclic_additions
from stacklet.planning.selection import Selection
from stacklet.planning.traits import Traits, service_ports, traits_of

TOKEN_ENV = "LINKPROXY_TOKEN"  # the link proxy's bearer token for its control API (see stacklet.linkproxy)
COMPOSE_FILE = "compose.yaml"  # the generated project of a slice or baseline, in its folder

ORIGIN_SUFFIX = ".origin"
BASELINE_SUFFIX = ".baseline"
PROXY_PREFIX = "stacklet-link-"
CONTROL_PORT = 8474
TOXIPROXY_IMAGE_MARK = "toxiproxy"
PROTOCOL_PORTS = {5432: "postgres", 6379: "redis", 5672: "amqp", 3306: "mysql", 9200: "http", 80: "http",
                  8080: "http"}
"""Well-known ports and the protocol a readiness probe speaks on them (any other port: ``tcp``)."""
LINKPROXY_BUILD_CONTEXT = Path(__file__).parent.parent / "linkproxy"


@functools.cache
def default_linkproxy_image() -> str:
    """stacklet's link proxy image, tagged by the content of its sources so a change rebuilds it
    (read on first use, not at import)."""
    digest = hashlib.sha256()
    for path in sorted(LINKPROXY_BUILD_CONTEXT.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(LINKPROXY_BUILD_CONTEXT).as_posix().encode())
            digest.update(path.read_bytes())
    return f"stacklet/linkproxy:{__version__}-{digest.hexdigest()[:10]}"



ROLE_ORDER = ("changed", "caller", "callee", "consumer", "job", "stateful")


class Dependency(BaseModel):
    """One Compose ``depends_on`` entry of a local service, for the runtime to honour."""

    service: str
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = "service_started"
    required: bool = True
    local: bool = Field(description="the dependency runs in the slice (else it is forwarded or absent)")


class LocalService(BaseModel):
    """A service that runs in the slice."""

    name: str
    role: Literal["changed", "callee", "caller", "stateful", "job", "consumer"]
    reasons: list[str]
    ports: list[int]
    udp_ports: list[int] = Field(default_factory=list, description="published, but not proxied (TCP only)")
    stateful: bool = False
    stateful_rule: str | None = Field(None, description="the rule that recognised it as stateful")
    job: bool = Field(False, description="a one-shot job: ready once it exited 0")
    healthcheck: Literal["compose", "image", "none"] = Field(
        "none", description="what decides its health: Compose's healthcheck, its image's (per its Dockerfile), or "
                            "none (then readiness must be probed: ports, protocol)")
    behind_proxy: bool = False
    depends_on: list[Dependency] = Field(default_factory=list, description="its Compose depends_on conditions")
    starts_after: list[str] = Field(default_factory=list,
                                    description="local services it calls (edges not in depends_on, cycles excepted): "
                                                "start it once they are ready")
    seed_after: list[str] = Field(default_factory=list,
                                  description="stateful only: local jobs that must complete before it is seeded")

    @property
    def compose_name(self) -> str:
        """Its service key in the generated project (renamed when a link proxy owns its name)."""
        return self.name + ORIGIN_SUFFIX if self.behind_proxy else self.name


class ForwardedService(BaseModel):
    """A dependency of a local service that is reached through the baseline."""

    name: str
    reasons: list[str]
    ports: list[int]
    address: str | None = Field(None, description="baseline host:port, None when there is none yet")
    baseline: Literal["remote", "local", "none"] = "none"
    writes_to: list[str] = Field(default_factory=list, description="stores of the baseline it may write to")
    engine: str | None = Field(None, description="the engine of the advertised baseline it comes from")
    started: str | None = Field(None, description="when that baseline was started (UTC): its version, in effect")
    port_addresses: dict[int, str] = Field(default_factory=dict,
                                           description="container port -> advertised host:port on that engine")


class PlanEdge(BaseModel):
    """An edge of the service graph between services of the plan, with where it comes from."""

    source: str
    target: str
    weak: bool
    followed: bool = Field(description="weak edges to services outside the slice are not followed")
    origins: list[dict[str, Any]]


class Route(BaseModel):
    """One listener of a link proxy: ``target:port`` inside the slice → ``upstream``."""

    name: str = Field(description="the proxy's name in the Toxiproxy API: the target, plus :port if it has several")
    target: str
    port: int
    upstream: str


class LinkProxy(BaseModel):
    """One link-proxy container owning the DNS names of several targets (no two sharing a port)."""

    name: str
    targets: list[str]
    routes: list[Route]


class Link(BaseModel):
    """A call from a local service to a dependency."""

    source: str
    target: str
    kind: Literal["local", "forwarded"]
    proxy: str | None = Field(None, description="link proxy carrying it; None when no port is known")


class SlicePlan(BaseModel):
    """Everything needed to boot a slice, without any Docker state."""

    stack: str
    source: str
    changed: list[str]
    radius: int
    local: list[LocalService]
    forwarded: list[ForwardedService]
    links: list[Link]
    proxies: list[LinkProxy]
    linkproxy_image: str = Field(default_factory=lambda: default_linkproxy_image())
    baseline_project: str
    edges: list[PlanEdge] = Field(default_factory=list)
    active_profiles: list[str] = Field(default_factory=list)
    inactive_services: dict[str, list[str]] = Field(default_factory=dict, description="absent: profile not active")
    boot_blockers: list[str] = Field(default_factory=list, description="why `up` must refuse (a missing env_file)")
    stack_options: str = Field("", description="the options that select this stack from where the plan was made "
                                               "(for hints such as `stacklet baseline up {stack_options}`)")
    notes: list[str] = Field(default_factory=list)

    def local_service(self, name: str) -> LocalService | None:
        return next((s for s in self.local if s.name == name), None)

    @property
    def uses_local_baseline(self) -> bool:
        return any(f.baseline in ("local", "none") for f in self.forwarded if f.ports)


def make_plan(stack: Stack, changed: list[str], radius: int | None = None,
              graph: ServiceGraph | None = None, baseline: AdvertisedBaseline | None = None) -> SlicePlan:
    """Select the slice for ``changed`` and lay out its link proxies; forwarded services go to ``baseline``
    (an advertised baseline on another engine, as read from it) unless stack.yaml gives their address."""
    graph = graph or ServiceGraph.from_stack(stack)
    traits = traits_of(stack)
    sel = select_slice(stack, changed, radius, graph, traits)
    radius = sel.radius
    ports = {name: service_ports(stack, name, graph.ports_seen(name))
             for name in (*sel.local, *sel.forwarded)}
    targets = sorted({target for _, target in sel.links if ports[target]})
    proxies = _pack(targets, ports)
    proxy_of = {t: p.name for p in proxies for t in p.targets}
    notes = [*stack.compose.notes, *sel.notes]

    local = []
    for name, role in sel.local.items():
        reasons = list(sel.reasons[name])
        decision = traits.stateful.get(name)
        if decision:
            reasons.append(decision.reason)
        local.append(LocalService(name=name, role=role, reasons=reasons, ports=ports[name],
                                  udp_ports=stack.compose.services[name].udp_ports,
                                  stateful=decision is not None, stateful_rule=decision.rule if decision else None,
                                  job=name in traits.jobs, behind_proxy=name in proxy_of,
                                  healthcheck=_healthcheck(stack, name),
                                  depends_on=_dependencies(stack, name, sel),
                                  starts_after=_starts_after(stack, graph, name, sel),
                                  seed_after=_seed_after(stack, graph, name, sel, traits) if decision else []))
    forwarded = [_forwarded(stack, name, sel, ports[name], notes, baseline) for name in sel.forwarded]
    for service in forwarded:
        service.writes_to = sel.writes.get(service.name, [])
        if service.writes_to:
            notes.append(f"forwarded {service.name} writes to the baseline's {', '.join(service.writes_to)}: calls "
                         f"through it change shared data (name {service.name} or widen --radius to run it locally)")
    addresses = {f.name: f for f in forwarded}
    for proxy in proxies:
        for route in proxy.routes:
            route.upstream = _upstream(route, sel, addresses)
    links = [Link(source=a, target=b, kind="local" if b in sel.local else "forwarded", proxy=proxy_of.get(b))
             for a, b in sel.links]
    called = {b for a, b in sel.links if set(graph.edge_reasons(a, b)) - {"depends_on", "links"}}
    for target in sorted(called - set(proxy_of)):
        kind = "local, so it is reached directly" if target in sel.local else "forwarded, so it is unreachable"
        notes.append(f"no port is known for {target} ({kind}, without faults): "
                     f"add `ports: [...]` under services.{target} in stack.yaml")
    if graph.dropped:
        notes.append("edges dropped by stack.yaml: " + ", ".join(f"{a} → {b}" for a, b in graph.dropped))
    return SlicePlan(stack=stack.name, source=stack.source, changed=sel.changed, radius=radius,
                     local=sorted(local, key=lambda s: (ROLE_ORDER.index(s.role), s.name)),
                     forwarded=forwarded, links=links, proxies=proxies,
                     linkproxy_image=stack.meta.linkproxy.image or default_linkproxy_image(),
                     baseline_project=baseline_project_name(stack.name), edges=_edges(graph, sel),
                     active_profiles=stack.compose.active_profiles,
                     inactive_services=stack.compose.inactive_services,
                     boot_blockers=stack.compose.boot_blockers, notes=notes)


def select_slice(stack: Stack, changed: list[str], radius: int | None, graph: ServiceGraph,
                 traits: Traits | None = None) -> Selection:
    """The graph selection of a slice (services and reasons), before ports and proxies."""
    radius = stack.meta.radius if radius is None else radius
    if not 0 <= radius <= MAX_RADIUS:
        raise PlanError(f"radius must be between 0 and {MAX_RADIUS}, got {short_repr(radius)}",
                        hint="use --radius 1 for direct neighbours")
    return graph.select(changed, radius, traits or traits_of(stack))


def _healthcheck(stack: Stack, name: str) -> str:
    """Where the health of ``name`` comes from: Compose, its image's HEALTHCHECK (when known), or nowhere."""
    service = stack.compose.services[name]
    if service.has_healthcheck:
        return "compose"
    disabled = (service.raw.get("healthcheck") or {}).get("disable")
    return "image" if not disabled and service.dockerfile and service.dockerfile.has_healthcheck else "none"


def _dependencies(stack: Stack, name: str, sel: Selection) -> list[Dependency]:
    return [Dependency(service=dep, condition=opts.condition, required=opts.required, local=dep in sel.local)
            for dep, opts in stack.compose.services[name].depends_on.items()]


def _starts_after(stack: Stack, graph: ServiceGraph, name: str, sel: Selection) -> list[str]:
    """Local services ``name`` calls (weak edges too) that depends_on does not order, leaving out cycles."""
    declared = set(stack.compose.services[name].depends_on)
    return [dep for dep in graph.callees(name)
            if dep in sel.local and dep not in declared and name not in graph.strong_descendants(dep)]


def _seed_after(stack: Stack, graph: ServiceGraph, name: str, sel: Selection, traits: Traits) -> list[str]:
    """Jobs to complete before seeding ``name``: stack.yaml ``seed_after``, else the local jobs depending on it."""
    declared = stack.service_meta(name).seed_after
    if declared is not None:
        return [job for job in declared if job in sel.local]
    return sorted(job for job in traits.jobs if job in sel.local and name in graph.strong_callees(job))


def _edges(graph: ServiceGraph, sel: Selection) -> list[PlanEdge]:
    """The graph's edges out of local services, with their origins."""
    skipped = set(sel.weak_skipped)
    return [PlanEdge(source=a, target=b, weak=graph.is_weak(a, b), followed=(a, b) not in skipped,
                     origins=[s.model_dump(exclude_none=True) for s in graph.edge_sources(a, b)])
            for a in sorted(sel.local) for b in sorted(graph.graph.successors(a))]


def _pack(targets: list[str], ports: dict[str, list[int]]) -> list[LinkProxy]:
    """First-fit packing: one proxy unless two targets share a port."""
    proxies: list[LinkProxy] = []
    used: list[set[int]] = []
    for target in targets:
        wanted = set(ports[target])
        for proxy, taken in zip(proxies, used):
            if not wanted & taken:
                break
        else:
            proxy = LinkProxy(name=f"{PROXY_PREFIX}{len(proxies) + 1}", targets=[], routes=[])
            proxies.append(proxy)
            used.append(set())
            taken = used[-1]
        proxy.targets.append(target)
        taken |= wanted
        proxy.routes += [Route(name=target if len(ports[target]) == 1 else f"{target}:{p}", target=target, port=p,
                               upstream="") for p in ports[target]]
    return proxies


def _forwarded(stack: Stack, name: str, sel: Selection, ports: list[int], notes: list[str],
               baseline: AdvertisedBaseline | None) -> ForwardedService:
    address = stack.meta.baseline.addresses.get(name)
    if address:
        return ForwardedService(name=name, reasons=sel.reasons[name], ports=ports, address=address,
                                baseline="remote")
    advertised = baseline.services.get(name) if baseline else None
    if advertised:
        return ForwardedService(name=name, reasons=sel.reasons[name], ports=ports, baseline="remote",
                                address=advertised[min(advertised)], port_addresses=advertised,
                                engine=baseline.engine, started=baseline.started)
    if baseline and ports:
        notes.append(f"{name} is forwarded but the baseline on {baseline.engine} does not advertise it")
    if stack.stack_file is not None and ports:
        return ForwardedService(name=name, reasons=sel.reasons[name], ports=ports,
                                address=f"{name}{BASELINE_SUFFIX}:{ports[0]}", baseline="local")
    notes.append(f"{name} is forwarded but has no baseline address yet: add baseline.addresses.{name} "
                 "(host:port) in a stack.yaml, or start a local baseline with `stacklet baseline up`")
    return ForwardedService(name=name, reasons=sel.reasons[name], ports=ports)


def is_remote_upstream(upstream: str) -> bool:
    """Whether a link proxy's upstream is outside the slice's engine (an advertised or a mapped baseline
    address), not a local container or the local baseline."""
    host = upstream.rpartition(":")[0]
    return bool(host) and not host.endswith((ORIGIN_SUFFIX, BASELINE_SUFFIX))


def _upstream(route: Route, sel: Selection, forwarded: dict[str, ForwardedService]) -> str:
    if route.target in sel.local:
        return f"{route.target}{ORIGIN_SUFFIX}:{route.port}"
    service = forwarded[route.target]
    if route.port in service.port_addresses:
        return service.port_addresses[route.port]
    if service.baseline == "remote":
        host, _, port = service.address.rpartition(":")
        return f"{host}:{port if len(service.ports) == 1 else route.port}"
    return f"{route.target}{BASELINE_SUFFIX}:{route.port}"


# ---------------------------------------------------------------------------------------------
# Rendering


def validate_slice_name(name: str) -> str:
    """Slice names become Compose project names: lower-case letters, digits, '-' and '_'."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,47}", name):
        raise PlanError(f"invalid slice name {short_repr(name)}",
                        hint="use lower-case letters, digits, '-' or '_' (at most 48 characters)")
    return name


def default_slice_name(plan: SlicePlan) -> str:
    """``<stack>-<changed services>``, shortened to a valid name."""
    base = "-".join([plan.stack, *plan.changed])
    return re.sub(r"[^a-z0-9_-]", "-", base.lower())[:48].strip("-_") or plan.stack


def render(plan: SlicePlan, stack: Stack, slice_name: str, labels: dict[str, str] | None = None,
           fault_seed: int | None = None, publish_ip: str = "127.0.0.1") -> dict[str, Any]:
    """The Compose project of a slice: local services, renamed origins, link proxies, one network; ports
    published on ``publish_ip`` of the engine's host (its loopback unless an advertise address is given)."""
    project = slice_project_name(slice_name)
    common = {Label.SLICE: slice_name, Label.STACK: plan.stack, **(labels or {})}
    engines = sorted({f.engine for f in plan.forwarded if f.engine})
    if engines:
        common[Label.BASELINE_ENGINE] = ",".join(engines)
    raw = stack.compose.raw
    declared = set(raw.get("volumes") or {})
    services: dict[str, Any] = {}
    volumes_used: set[str] = set()
    proxy_of = {t: p.name for p in plan.proxies for t in p.targets}

    for svc in plan.local:
        spec = _local_service_spec(_escaped(stack, stack.compose.services[svc.name].raw), svc, plan, proxy_of,
                                   publish_ip)
        if spec.get("build"):
            spec["image"] = source_tag(plan.stack, svc.name, spec["build"], stack.root)
        spec["labels"] = {**_labels(spec.get("labels")), **common, Label.SERVICE: svc.name,
                          Label.ROLE: svc.role, **readiness_labels(svc.job, svc.healthcheck, svc.ports,
                                             stack.service_meta(svc.name).readiness)}
        volumes_used |= {v["source"] for v in spec.get("volumes", [])
                         if isinstance(v, dict) and v.get("type") == "volume" and v.get("source") in declared}
        services[svc.compose_name] = spec

    needs_baseline = False
    for proxy in plan.proxies:
        networks: dict[str, Any] = {"default": {"aliases": proxy.targets}}
        if any(r.upstream.split(":")[0].endswith(BASELINE_SUFFIX) for r in proxy.routes):
            networks["baseline"] = {}
            needs_baseline = True
        services[proxy.name] = {
            "image": plan.linkproxy_image,
            "command": _proxy_command(plan.linkproxy_image, fault_seed),
            "networks": networks,
            "ports": [_loopback_port(CONTROL_PORT, host_ip=publish_ip)],
            "labels": {**common, Label.SERVICE: proxy.name, Label.ROLE: LINKPROXY_ROLE,
                       Label.TARGETS: ",".join(proxy.targets),
                       Label.ROUTES: encode_routes(proxy.routes)},
        }
        if common.get(Label.TOKEN):  # the control API answers only requests that carry the slice's token
            services[proxy.name]["environment"] = {TOKEN_ENV: common[Label.TOKEN]}

    _order_inferred_calls(services, plan)
    project_spec: dict[str, Any] = {
        "name": project,
        "services": services,
        "networks": {"default": {"name": project, "labels": dict(common)}},
    }
    if needs_baseline:
        project_spec["networks"]["baseline"] = {"name": plan.baseline_project, "external": True}
    if volumes_used:
        project_spec["volumes"] = {
            name: {k: v for k, v in (raw.get("volumes", {}).get(name) or {}).items()
                   if k not in ("name", "external")} | {"labels": dict(common)}
            for name in sorted(volumes_used)
        }
    for section in ("secrets", "configs"):
        if raw.get(section):
            project_spec[section] = copy.deepcopy(raw[section])
    return project_spec


def render_baseline(stack: Stack, labels: dict[str, str] | None = None, advertise: str | None = None) -> dict[str, Any]:
    """The Compose project of the shared baseline: the whole stack, reachable as ``<svc>.baseline``.

    Ports are published on 127.0.0.1 only, unless ``advertise`` (an address of the engine's host) is
    given: then every TCP port is published there too, and each service records its advertised
    ``host:port`` in its labels, so slices on other engines can forward to it."""
    project = baseline_project_name(stack.name)
    common = {Label.BASELINE: stack.name, Label.STACK: stack.name, **(labels or {})}
    if advertise:
        common[Label.ADVERTISE] = advertise
    raw = _escaped(stack, stack.compose.raw)
    traits = traits_of(stack)
    advertised = advertise_layout(stack, advertise) if advertise else {}
    services = {}
    for name, spec in raw.get("services", {}).items():
        spec.pop("container_name", None)
        spec.pop("profiles", None)
        if spec.get("network_mode"):
            spec.pop("ports", None)
        else:
            service = stack.compose.services[name]
            spec["ports"] = ([_loopback_port(p) for p in service_ports(stack, name)]
                             + [_loopback_port(p, "udp") for p in service.udp_ports]
                             + [_advertised_port(p, address) for p, address in advertised.get(name, {}).items()])
            networks = spec.get("networks") or {"default": None}
            networks["stacklet_baseline"] = {"aliases": [name + BASELINE_SUFFIX]}
            spec["networks"] = networks
        spec["labels"] = {**_labels(spec.get("labels")), **common, Label.SERVICE: name,
                          Label.ROLE: BASELINE_ROLE,
                          **({Label.ADVERTISED: encode_advertised(advertised[name])} if advertised.get(name) else {}),
                          **readiness_labels(name in traits.jobs, _healthcheck(stack, name), service_ports(stack, name),
                                             stack.service_meta(name).readiness)}
        services[name] = spec
    raw["name"] = project
    raw["services"] = services
    networks = raw.get("networks") or {}
    for net in networks.values():
        if isinstance(net, dict) and not net.get("external"):
            net.pop("name", None)
            net["labels"] = {**_labels(net.get("labels")), **common}
    networks.setdefault("default", {"labels": dict(common)})
    networks["stacklet_baseline"] = {"name": project, "labels": dict(common)}
    raw["networks"] = networks
    for vol in (raw.get("volumes") or {}).values():
        if isinstance(vol, dict) and not vol.get("external"):
            vol.pop("name", None)
            vol["labels"] = {**_labels(vol.get("labels")), **common}
    return raw


def _local_service_spec(raw: dict[str, Any], svc: LocalService, plan: SlicePlan,
                        proxy_of: dict[str, str], publish_ip: str = "127.0.0.1") -> dict[str, Any]:
    spec = dict(raw)
    for key in ("container_name", "profiles", "links", "network_mode", "networks", "ports", "hostname"):
        spec.pop(key, None)
    if spec.get("build"):
        spec.pop("image", None)  # render names it by its sources
    network_mode = _network_mode(raw.get("network_mode"), plan)
    if network_mode:
        spec["network_mode"] = network_mode
    else:
        aliases = sorted({a for net in (raw.get("networks") or {}).values() if isinstance(net, dict)
                          for a in net.get("aliases") or []})
        spec["networks"] = {"default": {"aliases": aliases} if aliases else None}
        spec["ports"] = ([_loopback_port(p, host_ip=publish_ip) for p in svc.ports]
                         + [_loopback_port(p, "udp", publish_ip) for p in svc.udp_ports])
    depends: dict[str, Any] = {}
    for dep, options in (raw.get("depends_on") or {}).items():
        target = plan.local_service(dep)
        if dep in proxy_of:
            depends[proxy_of[dep]] = {"condition": "service_started", "required": True}
        if target is not None:
            depends[target.compose_name] = options
    for link in plan.links:
        if link.source == svc.name and link.proxy:
            depends.setdefault(link.proxy, {"condition": "service_started", "required": True})
    spec["depends_on"] = depends
    if not depends:
        spec.pop("depends_on")
    return spec


def _order_inferred_calls(services: dict[str, Any], plan: SlicePlan) -> None:
    """Label each local service with the local services it calls but does not ``depends_on`` (the plan's
    ``starts_after``): it starts once they are ready. A call that would close a cycle is left out. Label each
    store with the jobs that must complete before it is seeded (``seed_after``)."""
    declared = {key: set(spec.get("depends_on") or {}) for key, spec in services.items()}
    compose = {svc.name: svc.compose_name for svc in plan.local}
    calls = [(svc.compose_name, compose[dep]) for svc in plan.local for dep in svc.starts_after if dep in compose]
    after: dict[str, list[str]] = {}
    for service, dependency in acyclic_additions(declared, calls):
        after.setdefault(service, []).append(dependency)
    for service, dependencies in after.items():
        services[service]["labels"][Label.AFTER] = ",".join(sorted(dependencies))
    for svc in plan.local:
        if svc.seed_after:
            services[svc.compose_name]["labels"][Label.SEED_AFTER] = ",".join(
                sorted(compose[job] for job in svc.seed_after if job in compose))


def _escaped(stack: Stack, value: Any) -> Any:
    """A deep copy in which ``$`` is escaped again, so Compose does not interpolate resolved values twice.

    An uninterpolated model is kept as it is: Compose interpolates it when the project starts.
    """
    if not stack.compose.interpolated:
        return copy.deepcopy(value)
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escaped(stack, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(stack, v) for v in value]
    return value


def _proxy_command(image: str, fault_seed: int | None = None) -> list[str]:
    if TOXIPROXY_IMAGE_MARK in image:
        return ["-host=0.0.0.0", f"-port={CONTROL_PORT}", *([f"-seed={fault_seed}"] if fault_seed is not None else [])]
    return ["--host", "0.0.0.0", "--port", str(CONTROL_PORT),
            *(["--seed", str(fault_seed)] if fault_seed is not None else [])]


def _loopback_port(target: int, protocol: str = "tcp", host_ip: str = "127.0.0.1") -> dict[str, Any]:
    """A port published on a free host port of ``host_ip`` (the engine's loopback by default)."""
    return {"target": target, "host_ip": host_ip, "published": "", "protocol": protocol, "mode": "ingress"}


def _advertised_port(target: int, address: str) -> dict[str, Any]:
    host, _, published = address.rpartition(":")
    return {"target": target, "host_ip": host, "published": published, "protocol": "tcp", "mode": "ingress"}


def advertise_layout(stack: Stack, advertise: str) -> dict[str, dict[int, str]]:
    """service -> container port -> ``advertise:host-port`` for a baseline published on ``advertise``.

    Fixed host ports (written into labels before the containers exist): a service keeps its own port
    when it is free, else the next free one above it, in the order of the services' names."""
    taken: set[int] = set()
    result: dict[str, dict[int, str]] = {}
    for name in sorted(stack.compose.services):
        if stack.compose.raw.get("services", {}).get(name, {}).get("network_mode"):
            continue
        for port in service_ports(stack, name):
            published = port
            while published in taken:
                published += 1
            taken.add(published)
            result.setdefault(name, {})[port] = f"{advertise}:{published}"
    return result


def _network_mode(mode: str | None, plan: SlicePlan) -> str | None:
    """Keep ``host`` and ``service:X`` (X local, under its name in the slice); other modes join the slice network."""
    if mode == "host":
        return mode
    if mode and mode.startswith("service:"):
        other = plan.local_service(mode.split(":", 1)[1])
        return f"service:{other.compose_name}" if other else None
    return None


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {k: str(v) for k, v in value.items()}
    if isinstance(value, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in value)
    return {}


def stack_labels(stack: Stack) -> dict[str, str]:
    """Labels that let later commands load the stack of a slice again."""
    if stack.stack_file:
        return {Label.STACK_FILE: str(stack.stack_file)}
    return {Label.COMPOSE_FILES: ",".join(str(f) for f in stack.compose.files)}


def readiness_labels(job: bool, healthcheck: str, ports: list[int], declared: Any = None) -> dict[str, str]:
    """How the runtime tells that a service is ready: a one-shot job (ready once it exited 0), and for a
    service with no healthcheck at all the ``protocol:port`` to probe: stack.yaml's ``readiness:``, else its
    first well-known port, else its first port."""
    labels = {Label.ONE_SHOT: "true" if job else "false"}
    if not job and declared is not None:
        labels[Label.READINESS] = f"{declared.protocol}:{declared.port}"
    elif not job and healthcheck == "none" and ports:
        known = [p for p in ports if p in PROTOCOL_PORTS]
        port = known[0] if known else ports[0]
        labels[Label.READINESS] = f"{PROTOCOL_PORTS.get(port, 'tcp')}:{port}"
    return labels


def routes_of(labels: dict[str, str]) -> list[Route]:
    """The routes a link-proxy container serves, from its ``dev.stacklet.routes`` label."""
    return [Route.model_validate(r) for r in decode_routes(labels)]
