"""The service graph: the only networkx user.

Edge A→B when A calls or depends on B, from Compose ``depends_on`` and ``links``, stack.yaml
``calls:``, and ``<service>:<port>`` / ``//<service>`` references in environment values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx

from stacklet.config.compose import substitute_defaults
from stacklet.errors import PlanError
from stacklet.config.stack import Stack

ROLES = ("changed", "callee", "caller", "stateful")
_HOST_PORT = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z0-9][A-Za-z0-9_.-]*):(\d{1,5})\b")
_AFTER_SLASHES = re.compile(r"//(?:[^@/\s]*@)?([A-Za-z0-9][A-Za-z0-9_.-]*)(?=[:/?#]|$|\s)")
_HOST_KEY = re.compile(r"(HOST|HOSTNAME|ADDR|ADDRESS|SERVER|SERVERS|ENDPOINT|URL|URI)$", re.I)


@dataclass
class Selection:
    """Which services run locally (with their role) and which are forwarded, and why."""

    changed: list[str]
    radius: int
    local: dict[str, str] = field(default_factory=dict)          # name -> role
    reasons: dict[str, list[str]] = field(default_factory=dict)  # name -> why it is local/forwarded
    forwarded: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)   # (caller, callee) with caller local


class ServiceGraph:
    """A directed graph of services with the reasons for each edge."""

    def __init__(self, graph: nx.DiGraph):
        self.graph = graph

    @classmethod
    def from_stack(cls, stack: Stack) -> "ServiceGraph":
        """Build the graph from Compose and stack.yaml, inferring calls from environment values."""
        graph = nx.DiGraph()
        names = set(stack.compose.services)
        graph.add_nodes_from(names)
        for name, service in stack.compose.services.items():
            for dep in service.depends_on:
                _add_edge(graph, name, dep, "depends_on", names)
            for dep in service.links:
                _add_edge(graph, name, dep, "links", names)
            for dep in stack.service_meta(name).calls:
                _add_edge(graph, name, dep, "calls in stack.yaml", names)
            for key, value in service.environment.items():
                if value:
                    for dep, port in references(key, value, names, stack.compose.interpolated):
                        _add_edge(graph, name, dep, f"env {key}", names, port)
        return cls(graph)

    def callees(self, name: str) -> list[str]:
        return sorted(self.graph.successors(name))

    def callers(self, name: str) -> list[str]:
        return sorted(self.graph.predecessors(name))

    def edge_reasons(self, source: str, target: str) -> list[str]:
        return self.graph.edges[source, target]["reasons"]

    def ports_seen(self, name: str) -> set[int]:
        """Ports that callers use to reach ``name`` (from environment references)."""
        ports: set[int] = set()
        for _, _, data in self.graph.in_edges(name, data=True):
            ports |= data["ports"]
        return ports

    def select(self, changed: Iterable[str], radius: int, stateful: set[str]) -> Selection:
        """Select the slice: changed ∪ callers/callees within ``radius`` ∪ their stateful dependencies."""
        changed = list(dict.fromkeys(changed))
        unknown = [c for c in changed if c not in self.graph]
        if unknown:
            raise PlanError(f"unknown service(s): {', '.join(unknown)}",
                            hint=f"services are: {', '.join(sorted(self.graph))}")
        if not changed:
            raise PlanError("no changed service given", hint="name services, or use --since REF")
        sel = Selection(changed=changed, radius=radius)
        for name in changed:
            sel.local[name] = "changed"
            sel.reasons[name] = ["changed"]
        for role, neighbours in (("callee", self.graph.successors), ("caller", self.graph.predecessors)):
            for name in changed:
                for other, distance in _within(name, neighbours, radius).items():
                    if other not in sel.local:
                        sel.local[other] = role
                        sel.reasons[other] = []
                    if sel.local[other] == role:
                        verb = "called by" if role == "callee" else "calls"
                        sel.reasons[other].append(f"{role} at distance {distance}: {verb} {name}")
        pending = list(sel.local)
        while pending:
            name = pending.pop()
            for dep in sorted(self.graph.successors(name)):
                if dep in stateful and dep not in sel.local:
                    sel.local[dep] = "stateful"
                    sel.reasons[dep] = [f"stateful dependency of {name} (a slice never uses baseline data)"]
                    pending.append(dep)
        forwarded: dict[str, list[str]] = {}
        for name in sel.local:
            for dep in sorted(self.graph.successors(name)):
                sel.links.append((name, dep))
                if dep not in sel.local:
                    forwarded.setdefault(dep, []).append(f"dependency of local {name}")
        sel.forwarded = sorted(forwarded)
        sel.reasons.update(forwarded)
        return sel

    def explain(self, name: str, sel: Selection) -> str:
        """One paragraph saying why ``name`` is local, forwarded, or not in the slice."""
        if name not in self.graph:
            raise PlanError(f"unknown service {name!r}", hint=f"services are: {', '.join(sorted(self.graph))}")
        if name in sel.local:
            return f"{name} is local ({sel.local[name]}): " + "; ".join(sel.reasons[name])
        if name in sel.forwarded:
            return f"{name} is forwarded to the baseline: " + "; ".join(sel.reasons[name])
        nearest = _nearest_distance(self.graph, sel.changed, name)
        where = f"it is {nearest} hops from the changed services" if nearest else "it is not connected to them"
        return f"{name} is not in the slice: no local service calls it ({where}, radius {sel.radius})"

    def to_mermaid(self, sel: Selection | None = None) -> str:
        """The graph as a Mermaid flowchart; local, forwarded and changed services get classes."""
        ids = {name: f"n{i}" for i, name in enumerate(sorted(self.graph))}
        lines = ["flowchart LR"]
        for name in sorted(self.graph):
            lines.append(f'  {ids[name]}["{name}"]')
        for a, b in sorted(self.graph.edges):
            lines.append(f"  {ids[a]} --> {ids[b]}")
        if sel:
            lines += ["  classDef changed fill:#f96,stroke:#333", "  classDef local fill:#9cf,stroke:#333",
                      "  classDef forwarded fill:#eee,stroke:#999,stroke-dasharray: 4 2"]
            for name, role in sel.local.items():
                lines.append(f"  class {ids[name]} {'changed' if role == 'changed' else 'local'}")
            for name in sel.forwarded:
                lines.append(f"  class {ids[name]} forwarded")
        return "\n".join(lines) + "\n"

    def to_dot(self, sel: Selection | None = None) -> str:
        """The graph in Graphviz dot; local, forwarded and changed services are styled."""
        lines = ["digraph services {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
        for name in sorted(self.graph):
            style = ""
            if sel and name in sel.local:
                colour = "#ff9966" if sel.local[name] == "changed" else "#99ccff"
                style = f', style="rounded,filled", fillcolor="{colour}"'
            elif sel and name in sel.forwarded:
                style = ', style="rounded,dashed"'
            lines.append(f'  "{name}" [label="{name}"{style}];')
        for a, b in sorted(self.graph.edges):
            lines.append(f'  "{a}" -> "{b}";')
        lines.append("}")
        return "\n".join(lines) + "\n"


def references(key: str, value: str, names: set[str], interpolated: bool = True) -> list[tuple[str, int | None]]:
    """Services referenced by one environment value, with the port when one is given."""
    if not interpolated and "$" in value:
        value = substitute_defaults(value)
    found: list[tuple[str, int | None]] = []
    for host, port in _HOST_PORT.findall(value):
        if host in names:
            found.append((host, int(port)))
    for host in _AFTER_SLASHES.findall(value):
        if host in names and not any(h == host for h, _ in found):
            found.append((host, None))
    if not found and value in names and _HOST_KEY.search(key):
        found.append((value, None))
    return found


def dependency_layers(depends: dict[str, Iterable[str]]) -> list[list[str]]:
    """Group services into start layers: each layer only depends on earlier ones."""
    graph = nx.DiGraph()
    graph.add_nodes_from(depends)
    for name, deps in depends.items():
        graph.add_edges_from((dep, name) for dep in deps)
    try:
        return [sorted(layer) for layer in nx.topological_generations(graph)]
    except nx.NetworkXUnfeasible as exc:
        cycle = " → ".join(a for a, _ in nx.find_cycle(graph))
        raise PlanError(f"services depend on each other in a cycle: {cycle}",
                        hint="break the cycle in depends_on") from exc


def _add_edge(graph: nx.DiGraph, a: str, b: str, reason: str, names: set[str], port: int | None = None) -> None:
    if a == b or b not in names:
        return
    if not graph.has_edge(a, b):
        graph.add_edge(a, b, reasons=[], ports=set())
    data = graph.edges[a, b]
    if reason not in data["reasons"]:
        data["reasons"].append(reason)
    if port:
        data["ports"].add(port)


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


def _nearest_distance(graph: nx.DiGraph, sources: list[str], target: str) -> int | None:
    undirected = graph.to_undirected(as_view=True)
    lengths = [nx.shortest_path_length(undirected, s, target) for s in sources if nx.has_path(undirected, s, target)]
    return min(lengths) if lengths else None
