"""SlicePlan: what runs locally, what is forwarded, and the link proxies between them (pure data).

``make_plan`` selects the slice; ``render`` (planning/render.py) turns a plan into a Compose project (a
dict) that the engine writes under ``.stacklet/slices/<name>/compose.yaml``. Neither does any I/O.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from stacklet import __version__
from stacklet.errors import PlanError, short_repr
from stacklet.config.stack import MAX_RADIUS, Stack
from stacklet.labels import AdvertisedBaseline, Label, baseline_project_name, decode_routes
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.healthchecks import effective_interval_s, healthcheck_source, relaxed_note
from stacklet.planning.selection import Selection
from stacklet.planning.traits import Traits, service_ports, traits_of

COMPOSE_FILE = "compose.yaml"  # the generated project of a slice or baseline, in its folder

ORIGIN_SUFFIX = ".origin"
BASELINE_SUFFIX = ".baseline"
PROXY_PREFIX = "stacklet-link-"
CONTROL_PORT = 8474
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
    healthcheck_interval_s: float | None = Field(
        None, description="how often Docker runs its healthcheck in the slice (stack.yaml healthchecks.min_interval "
                          "may slow a shorter one down); None without one, or when only its image knows")
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
                                  healthcheck=healthcheck_source(stack, name),
                                  healthcheck_interval_s=effective_interval_s(stack, name),
                                  depends_on=_dependencies(stack, name, sel),
                                  starts_after=_starts_after(stack, graph, name, sel),
                                  seed_after=seed_after(stack, graph, name, set(sel.local), traits) if decision else []))
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
    relaxed = relaxed_note(stack, list(sel.local))
    if relaxed:
        notes.append(relaxed)
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


def _dependencies(stack: Stack, name: str, sel: Selection) -> list[Dependency]:
    return [Dependency(service=dep, condition=opts.condition, required=opts.required, local=dep in sel.local)
            for dep, opts in stack.compose.services[name].depends_on.items()]


def _starts_after(stack: Stack, graph: ServiceGraph, name: str, sel: Selection) -> list[str]:
    """Local services ``name`` calls (weak edges too) that depends_on does not order, leaving out cycles."""
    declared = set(stack.compose.services[name].depends_on)
    return [dep for dep in graph.callees(name)
            if dep in sel.local and dep not in declared and name not in graph.strong_descendants(dep)]


def seed_after(stack: Stack, graph: ServiceGraph, name: str, local: set[str], traits: Traits) -> list[str]:
    """Jobs to complete before seeding ``name`` (in a slice or the baseline): stack.yaml ``seed_after``, else the
    ``local`` jobs depending on it."""
    declared = stack.service_meta(name).seed_after
    if declared is not None:
        return [job for job in declared if job in local]
    return sorted(job for job in traits.jobs if job in local and name in graph.strong_callees(job))


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
# Slice names


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


def stack_labels(stack: Stack) -> dict[str, str]:
    """Labels that let later commands load the stack of a slice again."""
    if stack.stack_file:
        return {Label.STACK_FILE: str(stack.stack_file)}
    return {Label.COMPOSE_FILES: ",".join(str(f) for f in stack.compose.files)}


def routes_of(labels: dict[str, str]) -> list[Route]:
    """The routes a link-proxy container serves, from its ``dev.stacklet.routes`` label."""
    return [Route.model_validate(r) for r in decode_routes(labels)]
