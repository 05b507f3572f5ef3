"""Which services a slice runs locally, with their role and why, and which it forwards (pure).

The rules, in order:

1. the changed services, and their callers/callees within the radius (strong edges only: an edge
   made only by a shared env_file is weak and extends nothing);
2. isolation: every stateful service a local service depends on runs locally with its own data
   (a slice never forwards to a store), even through a weak edge: the service may use that
   variable, and a local copy is the safe side (``edges.drop`` in stack.yaml removes the edge);
   a weak edge to a service that is not a store is not followed (it stays out, unreachable);
3. jobs: a one-shot job that prepares a local store (it depends on it) runs locally, role ``job``;
4. consumers: a service that consumes from a broker the slice runs locally (it calls the broker and
   listens on no port, or is declared ``consumer: true``) runs locally, role ``consumer``;
5. a service reached by a local one and not local is forwarded to the baseline; when it may write
   to stores of its own, the plan names them.

Rules 2-4 repeat until nothing more is added (a job or consumer brings its own stores).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stacklet.errors import PlanError
from stacklet.planning.traits import StatefulDecision, Traits

if TYPE_CHECKING:
    from stacklet.planning.graph import ServiceGraph


@dataclass
class Selection:
    """Which services run locally (with their role) and which are forwarded, and why."""

    changed: list[str]
    radius: int
    local: dict[str, str] = field(default_factory=dict)          # name -> role
    reasons: dict[str, list[str]] = field(default_factory=dict)  # name -> why it is local/forwarded
    forwarded: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)   # (caller, callee) with caller local
    writes: dict[str, list[str]] = field(default_factory=dict)   # forwarded -> stores of the baseline it may write
    weak_skipped: list[tuple[str, str]] = field(default_factory=list)  # weak edges to services left out
    notes: list[str] = field(default_factory=list)


def select(graph: "ServiceGraph", changed: Iterable[str], radius: int, traits: Traits | set[str]) -> Selection:
    """Select the slice for ``changed`` (see the module docstring for the rules)."""
    if isinstance(traits, set):  # a bare set of stateful names
        traits = Traits(stateful={n: StatefulDecision(True, "given", "stateful") for n in traits})
    changed = list(dict.fromkeys(changed))
    if (error := graph.unknown(changed)) is not None:
        raise error
    if not changed:
        raise PlanError("no changed service given", hint="name services, or use --since REF")
    sel = Selection(changed=changed, radius=radius)
    for name in changed:
        _add(sel, name, "changed", "changed")
    for role, neighbours in (("callee", graph.strong_callees), ("caller", graph.strong_callers)):
        for name in changed:
            for other, distance in _within(name, neighbours, radius).items():
                if other not in sel.local:
                    sel.local[other] = role
                    sel.reasons[other] = []
                if sel.local[other] == role:
                    verb = "called by" if role == "callee" else "calls"
                    sel.reasons[other].append(f"{role} at distance {distance}: {verb} {name}")
    _close(graph, sel, traits)
    for name in list(sel.local):
        if name in traits.jobs and sel.local[name] in ("callee", "caller"):
            sel.local[name] = "job"
            sel.reasons[name].append(traits.jobs[name])
    _forward(graph, sel, traits)
    return sel


def _close(graph: "ServiceGraph", sel: Selection, traits: Traits) -> None:
    """Add stores, the jobs that prepare them and the consumers of brokers, until nothing changes."""
    declined: set[tuple[str, str]] = set()
    grown = True
    while grown:
        grown = False
        for name in list(sel.local):
            for dep in sorted(graph.graph.successors(name)):
                if dep in traits.stateful and dep not in sel.local:
                    _add(sel, dep, "stateful", f"stateful dependency of {name} (a slice never uses baseline data)")
                    if graph.is_weak(name, dep):
                        origin = graph.edge_sources(name, dep)[0]
                        sel.reasons[dep].append(
                            f"reached only through shared env_file {origin.file} ({origin.variable}): local for "
                            f"isolation; drop the edge {name} → {dep} in stack.yaml if {name} does not use it")
                    grown = True
        for job, why in sorted(traits.jobs.items()):
            stores = [d for d in graph.strong_callees(job) if d in traits.stateful and d in sel.local]
            if job not in sel.local and stores:
                _add(sel, job, "job", f"prepares local {', '.join(stores)} (it depends on {stores[0]}): "
                                      f"it runs before {stores[0]} is seeded; {why}")
                grown = True
        for store in sorted(s for s in sel.local if s in traits.stateful):
            for caller in graph.strong_callers(store):
                if caller in sel.local or caller in traits.jobs:
                    continue
                declared = traits.consumers.get(caller)
                ports = graph.listens.get(caller, set())
                if declared is False or (declared is None and (store not in traits.brokers or ports)):
                    if store in traits.brokers and (caller, store) not in declined:
                        declined.add((caller, store))
                        why = ("declared consumer: false in stack.yaml" if declared is False else
                               f"it listens on {', '.join(map(str, sorted(ports)))}, so it is taken for a producer "
                               f"(declare services.{caller}.consumer: true if it consumes)")
                        sel.notes.append(f"{caller} also uses local broker {store} but is not in the slice: {why}")
                    continue
                what = "broker" if store in traits.brokers else "store"
                _add(sel, caller, "consumer", f"consumes from local {what} {store} (it calls {store} and "
                                              f"{'is declared a consumer' if declared else 'listens on no port'}): "
                                              "messages the slice produces are processed in the slice")
                grown = True


def _forward(graph: "ServiceGraph", sel: Selection, traits: Traits) -> None:
    """Links of local services; what they reach and is not local is forwarded (weak edges excepted)."""
    forwarded: dict[str, list[str]] = {}
    for name in sel.local:
        for dep in sorted(graph.graph.successors(name)):
            if dep not in sel.local and graph.is_weak(name, dep):
                sel.weak_skipped.append((name, dep))
                continue
            sel.links.append((name, dep))
            if dep not in sel.local:
                forwarded.setdefault(dep, []).append(f"dependency of local {name}")
    sel.forwarded = sorted(forwarded)
    sel.reasons.update(forwarded)
    for name in sel.forwarded:
        stores = sorted(d for d in graph.descendants(name) if d in traits.stateful)  # weak edges too: warn wide
        if stores:
            sel.writes[name] = stores
            sel.reasons[name].append(f"forwarded {name} may write to the baseline's {', '.join(stores)}")
    for source, target in sel.weak_skipped:
        sources = graph.edge_sources(source, target)
        sel.notes.append(f"{source} → {target} is weak (only {', '.join(s.variable or '' for s in sources)} of "
                         f"shared env_file {sources[0].file}): {target} is left out and unreachable from the slice; "
                         f"add `calls: [{target}]` under services.{source} in stack.yaml if {source} calls it")


def _add(sel: Selection, name: str, role: str, reason: str) -> None:
    sel.local[name] = role
    sel.reasons[name] = [reason]


def _within(start: str, neighbours, radius: int) -> dict[str, int]:
    """Nodes reachable from ``start`` in at most ``radius`` steps, with their distance; stops when none is left."""
    seen = {start: 0}
    frontier = [start]
    distance = 0
    while frontier and distance < radius:
        distance += 1
        nxt = []
        for node in frontier:
            for other in neighbours(node):
                if other not in seen:
                    seen[other] = distance
                    nxt.append(other)
        frontier = nxt
    seen.pop(start)
    return seen
