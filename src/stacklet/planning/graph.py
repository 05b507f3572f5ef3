"""The service graph: the only networkx user.

Edge A→B when A calls or depends on B, from Compose ``depends_on`` and ``links``, stack.yaml
``calls:``, and ``<service>:<port>`` / ``//<service>`` references in environment values. Each edge
keeps where it came from (kind, key, variable, file). An edge made only by variables of an env_file
that several services share is *weak*: everyone using that file sees every address in it, so it
says nothing about who calls whom. stack.yaml ``edges.drop`` removes edges.

networkx is imported in the functions that use it: commands that only read a slice (status, reset,
fault, logs) skip its import, a fifth of a second of every command's start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from stacklet.config.compose import substitute_defaults
from stacklet.errors import PlanError, StackFileError
from stacklet.config.stack import Stack
from stacklet.planning.traits import listening_ports

if TYPE_CHECKING:
    import networkx as nx
    from stacklet.planning.selection import Selection
    from stacklet.planning.traits import Traits

ROLES = ("changed", "callee", "caller", "stateful", "job", "consumer")
_HOST_PORT = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z0-9][A-Za-z0-9_.-]*):(\d{1,5})\b")
_AFTER_SLASHES = re.compile(r"//(?:[^@/\s]*@)?([A-Za-z0-9][A-Za-z0-9_.-]*)(?=[:/?#]|$|\s)")
_HOST_KEY = re.compile(r"(HOST|HOSTNAME|ADDR|ADDRESS|SERVER|SERVERS|ENDPOINT|URL|URI)$", re.I)


class EdgeSource(BaseModel):
    """Where one edge comes from: ``kind`` (depends_on, links, calls, env), the key, variable and file."""

    kind: str
    key: str
    variable: str | None = None
    file: str | None = None
    weak: bool = False

    @property
    def reason(self) -> str:
        """The short form shown in lists: ``depends_on``, ``links``, ``calls in stack.yaml``, ``env VAR``."""
        return {"calls": "calls in stack.yaml", "env": f"env {self.variable}"}.get(self.kind, self.kind)


class ServiceGraph:
    """A directed graph of services with the reasons for each edge."""

    def __init__(self, graph: nx.DiGraph, inactive: dict[str, list[str]] | None = None,
                 dropped: list[tuple[str, str]] | None = None):
        self.graph = graph
        self.inactive = inactive or {}   # services of inactive profiles -> their profiles
        self.dropped = dropped or []     # edges removed by stack.yaml edges.drop
        self.listens: dict[str, set[int]] = {}  # service -> ports it declares it listens on

    @classmethod
    def from_stack(cls, stack: Stack) -> "ServiceGraph":
        """Build the graph from Compose and stack.yaml, inferring calls from environment values."""
        import networkx as nx
        graph = nx.DiGraph()
        names = set(stack.compose.services)
        graph.add_nodes_from(names)
        compose_file = stack.compose.files[0].name
        shared = stack.compose.shared_env_files()
        for name, service in stack.compose.services.items():
            for dep in service.depends_on:
                _add_edge(graph, name, dep, EdgeSource(kind="depends_on", key=f"services.{name}.depends_on.{dep}",
                                                       file=compose_file), names)
            for dep in service.links:
                _add_edge(graph, name, dep, EdgeSource(kind="links", key=f"services.{name}.links",
                                                       file=compose_file), names)
            for dep in stack.service_meta(name).calls:
                _add_edge(graph, name, dep, EdgeSource(kind="calls", key=f"services.{name}.calls",
                                                       file=Path(stack.source).name), names)
            for key, value in service.environment.items():
                if not value:
                    continue
                env_file = service.env_from_files.get(key)
                source = EdgeSource(kind="env", variable=key, file=env_file or compose_file, weak=env_file in shared,
                                    key=f"services.{name}.env_file" if env_file else f"services.{name}.environment.{key}")
                for dep, port in references(key, value, names, stack.compose.interpolated):
                    _add_edge(graph, name, dep, source, names, port)
        dropped = []
        for index, edge in enumerate(stack.meta.edges.drop):
            if not {edge.source, edge.target} <= names:
                continue  # a service of an inactive profile: nothing to drop in this graph
            if not graph.has_edge(edge.source, edge.target):
                raise StackFileError(f"there is no edge {edge.source} → {edge.target} to drop", file=stack.source,
                                     key=f"edges.drop.{index}",
                                     hint=f"edges of {edge.source}: "
                                          f"{', '.join(sorted(graph.successors(edge.source))) or 'none'}")
            graph.remove_edge(edge.source, edge.target)
            dropped.append((edge.source, edge.target))
        made = cls(graph, dict(stack.compose.inactive_services), dropped)
        made.listens = {name: listening_ports(stack, name) for name in names}
        return made

    def edge_sources(self, source: str, target: str) -> list[EdgeSource]:
        """Where the edge ``source`` → ``target`` comes from."""
        return self.graph.edges[source, target]["sources"]

    def is_weak(self, source: str, target: str) -> bool:
        """True when the edge comes only from a shared env_file."""
        return all(s.weak for s in self.edge_sources(source, target))

    def strong_callees(self, name: str) -> list[str]:
        return sorted(b for b in self.graph.successors(name) if not self.is_weak(name, b))

    def strong_callers(self, name: str) -> list[str]:
        return sorted(a for a in self.graph.predecessors(name) if not self.is_weak(a, name))

    def strong_descendants(self, name: str) -> set[str]:
        """Every service reachable from ``name`` through strong edges."""
        import networkx as nx
        view = nx.subgraph_view(self.graph, filter_edge=lambda a, b: not self.is_weak(a, b))
        return nx.descendants(view, name)

    def descendants(self, name: str) -> set[str]:
        """Every service reachable from ``name``, weak edges included."""
        import networkx as nx
        return nx.descendants(self.graph, name)

    def unknown(self, names: Iterable[str]) -> PlanError | None:
        """An error naming the services that are not in the graph (and the profile that has them), or None."""
        unknown = [n for n in names if n not in self.graph]
        if not unknown:
            return None
        profiled = [f"{n} is in profile {', '.join(self.inactive[n])}" for n in unknown if n in self.inactive]
        hint = (("; ".join(profiled) + f": pass --profile {self.inactive[unknown[0]][0]}") if profiled
                else f"services are: {', '.join(sorted(self.graph))}")
        return PlanError(f"unknown service(s): {', '.join(unknown)}", hint=hint)

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

    def select(self, changed: Iterable[str], radius: int, traits: "Traits | set[str]") -> "Selection":
        """Select the slice (see planning.selection.select)."""
        from stacklet.planning.selection import select
        return select(self, changed, radius, traits)

    def explain(self, name: str, sel: Selection) -> str:
        """One paragraph saying why ``name`` is local, forwarded, or not in the slice."""
        if (error := self.unknown([name])) is not None:
            raise error
        if name in sel.local:
            return f"{name} is local ({sel.local[name]}): " + "; ".join(sel.reasons[name])
        if name in sel.forwarded:
            return f"{name} is forwarded to the baseline: " + "; ".join(sel.reasons[name])
        weak = [(a, b) for a, b in sel.weak_skipped if b == name]
        if weak:
            how = "; ".join(f"{a} → {name} comes only from shared env_file {s.file} ({s.variable})"
                            for a, _ in weak for s in self.edge_sources(a, name)[:1])
            return (f"{name} is not in the slice: {how}, a weak edge that pulls nothing in; the slice cannot "
                    f"reach {name} (add `calls: [{name}]` under services.{weak[0][0]} in stack.yaml if it does)")
        nearest = _nearest_distance(self.graph, sel.changed, name)
        where = f"it is {nearest} hops from the changed services" if nearest else "it is not connected to them"
        return f"{name} is not in the slice: no local service calls it ({where}, radius {sel.radius})"

    def edge_text(self, source: str, target: str) -> str:
        """One line per origin of an edge: kind, key, variable and file; weak edges say so."""
        parts = []
        for s in self.edge_sources(source, target):
            named = s.variable and not s.key.endswith(f".{s.variable}")
            where = s.key + (f" ({s.variable} in {s.file})" if named else f" in {s.file}" if s.file else "")
            parts.append(where + (" [weak: shared env_file]" if s.weak else ""))
        return f"{source} → {target}: " + "; ".join(parts)

    def to_mermaid(self, sel: Selection | None = None) -> str:
        """The graph as a Mermaid flowchart; local, forwarded and changed services get classes."""
        ids = {name: f"n{i}" for i, name in enumerate(sorted(self.graph))}
        lines = ["flowchart LR"]
        for name in sorted(self.graph):
            lines.append(f'  {ids[name]}["{name}"]')
        for a, b in sorted(self.graph.edges):
            lines.append(f"  {ids[a]} -.->|weak| {ids[b]}" if self.is_weak(a, b) else f"  {ids[a]} --> {ids[b]}")
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
            lines.append(f'  "{a}" -> "{b}" [style=dashed, label="weak"];' if self.is_weak(a, b) else f'  "{a}" -> "{b}";')
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
    import networkx as nx
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


def acyclic_additions(depends: dict[str, Iterable[str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(service, dependency)`` pairs of ``extra`` that can be added to ``depends`` without a cycle,
    in order (an inferred start order never overrides or breaks the declared one)."""
    import networkx as nx
    graph = nx.DiGraph()
    graph.add_nodes_from(depends)
    for name, deps in depends.items():
        graph.add_edges_from((dep, name) for dep in deps)
    kept = []
    for service, dependency in extra:
        if service == dependency or graph.has_edge(dependency, service):
            continue
        if graph.has_node(service) and graph.has_node(dependency) and nx.has_path(graph, service, dependency):
            continue
        graph.add_edge(dependency, service)
        kept.append((service, dependency))
    return kept


def _add_edge(graph: nx.DiGraph, a: str, b: str, source: EdgeSource, names: set[str],
              port: int | None = None) -> None:
    if a == b or b not in names:
        return
    if not graph.has_edge(a, b):
        graph.add_edge(a, b, reasons=[], sources=[], ports=set())
    data = graph.edges[a, b]
    if source.reason not in data["reasons"]:
        data["reasons"].append(source.reason)
        data["sources"].append(source)
    if port:
        data["ports"].add(port)


def _nearest_distance(graph: nx.DiGraph, sources: list[str], target: str) -> int | None:
    import networkx as nx
    undirected = graph.to_undirected(as_view=True)
    lengths = [nx.shortest_path_length(undirected, s, target) for s in sources if nx.has_path(undirected, s, target)]
    return min(lengths) if lengths else None
