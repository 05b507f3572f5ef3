"""Rendering: a slice plan, or a whole stack as the shared baseline, as a Compose project (a dict).

The engine writes it under ``.stacklet/slices/<name>/compose.yaml``; nothing here does any I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from stacklet.config.compose import map_strings
from stacklet.config.stack import Stack
from stacklet.labels import (BASELINE_ROLE, LINKPROXY_ROLE, Label, baseline_project_name, encode_advertised,
                             encode_routes, slice_project_name)
from stacklet.planning.graph import ServiceGraph, acyclic_additions
from stacklet.planning.images import source_tag
from stacklet.planning.healthchecks import apply_relaxed, healthcheck_source
from stacklet.planning.plan import BASELINE_SUFFIX, CONTROL_PORT, LocalService, SlicePlan, seed_after
from stacklet.planning.traits import service_ports, traits_of

TOKEN_ENV = "LINKPROXY_TOKEN"  # the link proxy's bearer token for its control API (see stacklet.linkproxy)
TOXIPROXY_IMAGE_MARK = "toxiproxy"
PROTOCOL_PORTS = {5432: "postgres", 6379: "redis", 5672: "amqp", 3306: "mysql", 9200: "http", 80: "http",
                  8080: "http"}
"""Well-known ports and the protocol a readiness probe speaks on them (any other port: ``tcp``)."""


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
        apply_relaxed(stack, svc.name, spec)
        if spec.get("build"):
            spec["image"] = source_image(stack, svc.name)
            spec["build"] = _labelled_build(spec["build"], svc.name, stack)
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


def render_baseline(stack: Stack, labels: dict[str, str] | None = None, advertise: str | None = None,
                    ports_in_use: set[int] | frozenset[int] = frozenset()) -> dict[str, Any]:
    """The Compose project of the shared baseline: the whole stack, reachable as ``<svc>.baseline``.

    Ports are published on 127.0.0.1 only, unless ``advertise`` (an address of the engine's host) is
    given: then every TCP port is published there too (none of ``ports_in_use``), and each service records
    its advertised ``host:port`` in its labels, so slices on other engines can forward to it."""
    project = baseline_project_name(stack.name)
    common = {Label.BASELINE: stack.name, Label.STACK: stack.name, **(labels or {})}
    if advertise:
        common[Label.ADVERTISE] = advertise
    raw = _escaped(stack, stack.compose.raw)
    traits = traits_of(stack)
    graph = ServiceGraph.from_stack(stack)
    everything = set(stack.compose.services)
    advertised = advertise_layout(stack, advertise, ports_in_use) if advertise else {}
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
                          **readiness_labels(name in traits.jobs, healthcheck_source(stack, name), service_ports(stack, name),
                                             stack.service_meta(name).readiness)}
        apply_relaxed(stack, name, spec)
        jobs = seed_after(stack, graph, name, everything, traits) if name in traits.stateful else []
        if jobs:  # its seeds load once the jobs that prepare it (a migration) completed, as in a slice
            spec["labels"][Label.SEED_AFTER] = ",".join(jobs)
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


def source_image(stack: Stack, service: str) -> str | None:
    """The image a slice gives a built service of ``stack``, named by its sources (None: it has no build)."""
    build = _escaped(stack, stack.compose.services[service].raw).get("build")
    return source_tag(stack.name, service, build, stack.root) if build else None


def _labelled_build(build: dict[str, Any] | str, service: str, stack: Stack) -> dict[str, Any]:
    """A service's ``build`` with the labels ``gc`` reads from the image it makes: which service of which stack
    (image labels are not part of the source tag: they do not change what the image runs)."""
    build = {"context": build} if isinstance(build, str) else dict(build)
    build["labels"] = {**_labels(build.get("labels")), Label.BUILD_OF: f"{stack.name}/{service}",
                       Label.BUILD_SOURCE: str(stack.source or "")}
    return build


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
    return map_strings(value, lambda text: text.replace("$", "$$"))


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


def advertise_layout(stack: Stack, advertise: str, in_use: set[int] | frozenset[int] = frozenset()
                     ) -> dict[str, dict[int, str]]:
    """service -> container port -> ``advertise:host-port`` for a baseline published on ``advertise``.

    Fixed host ports (written into labels before the containers exist): a service keeps its own port
    when it is free, else the next free one above it, in the order of the services' names. ``in_use``:
    host ports the engine already publishes for others (another stack's baseline on the same team box)."""
    taken: set[int] = set(in_use)
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
