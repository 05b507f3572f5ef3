"""Faults on the links of a running slice, through the toxiproxy-python client.

A fault targets a link by the name its callers use (``orders-db``), or a group: ``@forwarded``,
``@local``, ``@all``. Every link proxy route of that target gets the toxic; ``down`` disables the
route instead (new connections are refused, open ones closed) until the fault is cleared. All
targets and values are checked before anything changes, and a failure half-way undoes what was
applied, so a bad request changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from stacklet.errors import LinkProxyError, PlanError, StackletError
from stacklet.docker.linkproxy_client import LinkProxyControl
from stacklet.planning.plan import SlicePlan
from stacklet.config.faultprofile import DOWN, FaultProfile, ToxicSpec

ORIGIN_MARK = ".origin:"


@dataclass
class LinkProxyHandle:
    """One link-proxy container of a slice: its control API and its routes (route name → upstream)."""

    name: str
    control: LinkProxyControl
    routes: dict[str, str] = field(default_factory=dict)

    def routes_of(self, target: str) -> list[str]:
        return [r for r in self.routes if r.split(":")[0] == target]


class ActiveFault(BaseModel):
    """A toxic (or a disabled link) in force on one route of a link target."""

    target: str
    route: str
    link_proxy: str
    kind: str
    name: str
    type: str
    stream: str | None = None
    toxicity: float | None = None
    attributes: dict[str, int | str] = {}


def link_targets(handles: list[LinkProxyHandle]) -> dict[str, str]:
    """Every link target of the slice with its kind (local or forwarded)."""
    targets: dict[str, str] = {}
    for handle in handles:
        for route, upstream in handle.routes.items():
            targets[route.split(":")[0]] = "local" if ORIGIN_MARK in upstream else "forwarded"
    return dict(sorted(targets.items()))


def resolve(target: str, kinds: dict[str, str]) -> list[str]:
    """The targets a spec names: one service, or the group @local / @forwarded / @all."""
    if target == "@all":
        return list(kinds)
    if target in ("@local", "@forwarded"):
        return [t for t, kind in kinds.items() if kind == target[1:]]
    if target not in kinds:
        known = ", ".join(kinds) or "none"
        raise PlanError(f"no link to {target!r} in this slice",
                        hint=f"link targets: {known}; or @forwarded, @local, @all")
    return [target]


def check_stack(profile: FaultProfile, stack: str) -> None:
    """A profile written for one stack is not applied to a slice of another."""
    if profile.stack and profile.stack != stack:
        raise PlanError(f"fault profile {profile.name} is for stack {profile.stack}, not {stack}",
                        hint="pick a profile of this stack (`stacklet fault ls` shows its link targets)")


def check_profile(profile: FaultProfile, plan: SlicePlan) -> None:
    """Refuse, before boot, a profile for another stack or whose targets the slice does not have."""
    check_stack(profile, plan.stack)
    kinds = {link.target: link.kind for link in plan.links if link.proxy}
    for spec in profile.toxics:
        resolve(spec.target, kinds)


def apply_profile(handles: list[LinkProxyHandle], profile: FaultProfile) -> list[ActiveFault]:
    """Apply every fault of ``profile``; toxic names are prefixed with the profile's name."""
    named = [spec.model_copy(update={"name": f"{profile.name}.{spec.toxic_name}"}) for spec in profile.toxics]
    return _apply(handles, named)


def add_fault(handles: list[LinkProxyHandle], spec: ToxicSpec) -> list[ActiveFault]:
    """Apply one fault (``stacklet fault add``)."""
    return _apply(handles, [spec])


def clear_faults(handles: list[LinkProxyHandle], target: str | None = None) -> list[ActiveFault]:
    """Remove toxics and re-enable links, for one target (or group) or for all; returns what was removed."""
    kinds = link_targets(handles)
    targets = set(resolve(target, kinds)) if target else set(kinds)
    removed = [f for f in active_faults(handles) if f.target in targets]
    for handle in handles:
        routes = [r for t in targets for r in handle.routes_of(t)]
        if routes:
            handle.control.call(lambda client: _clear_routes(client, routes), "clear faults")
    return removed


def active_faults(handles: list[LinkProxyHandle]) -> list[ActiveFault]:
    """The toxics and disabled links in force, per route."""
    faults: list[ActiveFault] = []
    kinds = link_targets(handles)
    for handle in handles:
        for route, proxy in handle.control.proxies().items():
            target = route.split(":")[0]
            if not proxy["enabled"]:
                faults.append(ActiveFault(target=target, route=route, link_proxy=handle.name, kind=kinds[target],
                                          name=DOWN, type=DOWN))
            for toxic in proxy["toxics"]:
                faults.append(ActiveFault(target=target, route=route, link_proxy=handle.name, kind=kinds[target],
                                          name=toxic["name"], type=toxic["type"], stream=toxic["stream"],
                                          toxicity=toxic["toxicity"], attributes=toxic["attributes"]))
    return faults


def _apply(handles: list[LinkProxyHandle], specs: list[ToxicSpec]) -> list[ActiveFault]:
    kinds = link_targets(handles)
    steps = [(handle, route, spec, target) for spec in specs for target in resolve(spec.target, kinds)
             for handle in handles for route in handle.routes_of(target)]
    existing = {(f.route, f.name) for f in active_faults(handles)}
    for handle, route, spec, _ in steps:
        if spec.type != DOWN and (route, spec.toxic_name) in existing:
            raise PlanError(f"{route} already has a toxic named {spec.toxic_name!r}",
                            hint="`stacklet fault clear` first, or give it another name with name=...")
    done: list[tuple[LinkProxyHandle, str, ToxicSpec]] = []
    try:
        for handle, route, spec, _ in steps:
            handle.control.call(lambda client: _apply_one(client, route, spec), f"add {spec.type} to {route}")
            done.append((handle, route, spec))
    except StackletError:
        for handle, route, spec in reversed(done):
            try:
                handle.control.call(lambda client: _undo_one(client, route, spec), f"undo {spec.type} on {route}")
            except LinkProxyError:
                pass
        raise
    return [ActiveFault(target=target, route=route, link_proxy=handle.name, kind=kinds[target],
                        name=spec.toxic_name if spec.type != DOWN else DOWN, type=spec.type,
                        stream=None if spec.type == DOWN else spec.stream,
                        toxicity=None if spec.type == DOWN else spec.toxicity, attributes=spec.attributes)
            for handle, route, spec, target in steps]


def _proxy(client, route: str):
    proxy = client.get_proxy(route)
    if proxy is None:
        raise LinkProxyError(f"the link proxy has no route {route!r}", hint="the slice may have been changed; "
                                                                          "see `stacklet status`")
    return proxy


def _apply_one(client, route: str, spec: ToxicSpec) -> None:
    proxy = _proxy(client, route)
    if spec.type == DOWN:
        proxy.disable()
    else:
        proxy.add_toxic(name=spec.toxic_name, type=spec.type, stream=spec.stream, toxicity=spec.toxicity,
                        attributes=spec.attributes)


def _undo_one(client, route: str, spec: ToxicSpec) -> None:
    proxy = _proxy(client, route)
    if spec.type == DOWN:
        proxy.enable()
    else:
        proxy.destroy_toxic(spec.toxic_name)


def _clear_routes(client, routes: list[str]) -> None:
    for route in routes:
        proxy = _proxy(client, route)
        for name in list(proxy.toxics()):
            proxy.destroy_toxic(name)
        if not proxy.enabled:
            proxy.enable()
