"""Text renderings of plans, statuses and boot progress (Rich), for the CLI."""

from __future__ import annotations

from typing import Any

import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stacklet.runtime.engine import Event, ReconcileResult, SliceStatus, SliceSummary
from stacklet.errors import StackletError
from stacklet.planning.lifetime import GcDecision, expiry_text, span
from stacklet.planning.plan import SlicePlan

ROLE_STYLE = {"changed": "bold yellow", "caller": "cyan", "callee": "green", "stateful": "magenta",
              "job": "blue", "consumer": "green", "linkproxy": "dim", "baseline": "blue"}
STATE_STYLE = {"healthy": "green", "running": "green", "ready": "green", "waiting": "yellow",
               "starting": "yellow", "building": "yellow", "failed": "bold red", "unhealthy": "red"}


def plan_table(plan: SlicePlan, seeds: dict[str, list[str]] | None = None,
               snapshots: dict[str, Any] | None = None) -> Group:
    """The plan as tables: local services, forwarded services, link proxies, notes; the seeds column says when a
    store starts from its snapshot (``snapshots``: service -> its SnapshotChoice)."""
    title = Text.assemble(("slice of ", ""), (plan.stack, "bold"), (" for ", ""),
                          (", ".join(plan.changed), "bold yellow"), (f" (radius {plan.radius})", "dim"))
    local = Table(title="local", title_justify="left", box=None, pad_edge=False)
    for column in ("service", "role", "ports", "seeds", "why"):
        local.add_column(column)
    for svc in plan.local:
        seeded = (seeds or {}).get(svc.name, [])
        choice = (snapshots or {}).get(svc.name)
        data = f"{len(seeded)} files" if seeded else "-"
        if choice is not None:
            data = f"snapshot {choice.key}" if choice.present else f"{data}, then snapshot {choice.key}"
        local.add_row(svc.name, Text(svc.role, ROLE_STYLE[svc.role]), ",".join(map(str, svc.ports)) or "-",
                      data, "; ".join(svc.reasons))
    parts = [title, Text(""), local]
    if plan.forwarded:
        forwarded = Table(title="forwarded", title_justify="left", box=None, pad_edge=False)
        for column in ("service", "baseline address", "why"):
            forwarded.add_column(column)
        for svc in plan.forwarded:
            where = {"local": f"{svc.address} (local baseline)", "remote": f"{svc.address} (remote)",
                     "none": "no baseline address yet"}[svc.baseline]
            if svc.engine:
                where = f"{svc.address} (baseline on {svc.engine}, started {svc.started or 'at an unknown time'})"
            forwarded.add_row(svc.name, where, "; ".join(svc.reasons))
        parts += [Text(""), forwarded]
    if plan.proxies:
        proxies = Table(title="links (through link proxies)", title_justify="left", box=None, pad_edge=False)
        for column in ("proxy", "name:port", "upstream", "callers"):
            proxies.add_column(column)
        for proxy in plan.proxies:
            for route in proxy.routes:
                callers = sorted({link.source for link in plan.links if link.target == route.target})
                proxies.add_row(proxy.name, f"{route.target}:{route.port}", route.upstream, ", ".join(callers))
        parts += [Text(""), proxies]
    for note in plan.notes:
        parts.append(Text(f"note: {note}", "yellow"))
    return Group(*parts)


def status_table(status: SliceStatus) -> Group:
    """A slice's services with state, health and endpoints."""
    head = Text.assemble((status.name, "bold"), f"  stack {status.stack}  ",
                         ("healthy" if status.healthy else "NOT healthy", "green" if status.healthy else "bold red"))
    table = Table(box=None, pad_edge=False)
    for column in ("service", "role", "state", "health", "host", "in network", "data"):
        table.add_column(column)
    for svc in [*status.services, *status.proxies]:
        state = Text(svc.state, STATE_STYLE.get(svc.state, ""))
        health = Text(svc.health or "-", STATE_STYLE.get(svc.health or "", ""))
        data = (f"snapshot {svc.snapshot}" if svc.snapshot else
                f"not run: satisfied by {svc.satisfied_by}" if svc.satisfied_by else "")
        table.add_row(svc.name, Text(svc.role, ROLE_STYLE.get(svc.role, "")), state, health,
                      " ".join(e.host or "" for e in svc.endpoints) or "-",
                      " ".join(e.network for e in svc.endpoints) or "-", Text(data, "dim"))
    return Group(head, table)


def endpoints_table(status: SliceStatus) -> Table:
    """Where to reach each local service from here (host port, or in-network name from an attached container)."""
    attached = status.attached_as is not None
    where = (f"from container {status.attached_as} on the slice network" if attached else
             "from this container: host ports are not reachable here" if status.in_container else "from this host")
    table = Table(title=f"endpoints of {status.name} ({where})", title_justify="left", box=None, pad_edge=False)
    for column in ("service", "address", "host" if attached else "in network"):
        table.add_column(column)
    for svc in status.services:
        for endpoint in svc.endpoints:
            table.add_row(svc.name, endpoint.address or "-", (endpoint.host or "-") if attached else endpoint.network)
    return table


def slices_table(slices: list[SliceSummary], engines: int = 1) -> Table:
    """The slices on the engines: engine (when several are listed), stack, changed services, age, expiry, containers, health."""
    table = Table(box=None, pad_edge=False)
    engines = engines > 1 or len({s.engine for s in slices}) > 1
    for column in ("slice", *(["engine"] if engines else []), "stack", "changed", "age", "expires", "containers",
                   "health"):
        table.add_column(column)
    for s in slices:
        expires = Text(expiry_text(s.expires_in_s), "bold red" if s.expired else "dim" if s.expires is None else "")
        table.add_row(s.name, *([s.engine or "-"] if engines else []), s.stack, ",".join(s.changed),
                      ("?" if s.age_s is None else span(s.age_s)), expires, f"{s.running}/{s.containers} running",
                      Text(f"warm ({s.warm})", "cyan") if s.warm else
                      Text("healthy" if s.healthy else "not healthy", "green" if s.healthy else "red"))
    return table


def gc_table(decisions: list[GcDecision], dry_run: bool) -> Group | Text:
    """What `stacklet gc` removed (or would remove) and kept, with the reason for each slice."""
    if not decisions:
        return Text("no slices on this engine")
    table = Table(box=None, pad_edge=False)
    for column in ("", "slice", "stack", "why"):
        table.add_column(column)
    verb = "would remove" if dry_run else "removed"
    for d in sorted(decisions, key=lambda d: not d.remove):
        table.add_row(Text(verb if d.remove else "kept", "bold yellow" if d.remove else "green"), d.slice,
                      d.stack or "?", d.reason)
    removed = sum(d.remove for d in decisions)
    summary = (f"{removed} to remove, {len(decisions) - removed} kept (dry run: nothing removed)" if dry_run
               else f"{removed} removed, {len(decisions) - removed} kept")
    return Group(table, Text(summary, "dim"))


def snapshot_gc_table(decisions: list, dry_run: bool) -> Table:
    """What `stacklet gc` did with each seeded snapshot, and why."""
    return _image_gc_table("snapshots", ("store", "key"), [(d, d.store, d.key) for d in decisions], dry_run)


def build_gc_table(decisions: list, dry_run: bool) -> Table:
    """What `stacklet gc` did with each image slices built, and why."""
    return _image_gc_table("built images", ("service", "image"), [(d, d.service, d.image) for d in decisions],
                           dry_run)


def _image_gc_table(title: str, columns: tuple[str, str], rows: list[tuple], dry_run: bool) -> Table:
    table = Table(box=None, pad_edge=False, title=title, title_justify="left")
    for column in ("", *columns, "why"):
        table.add_column(column)
    verb = "would remove" if dry_run else "removed"
    for d, first, second in sorted(rows, key=lambda row: not row[0].remove):
        table.add_row(Text(verb if d.remove else "kept", "bold yellow" if d.remove else "green"), first, second,
                      d.reason)
    return table


def faults_table(targets: dict[str, str], faults: list) -> Table:
    """Each link target with its kind and the faults in force on it."""
    table = Table(box=None, pad_edge=False)
    for column in ("target", "kind", "route", "fault", "type", "stream", "toxicity", "attributes"):
        table.add_column(column)
    for target, kind in targets.items():
        mine = [f for f in faults if f.target == target]
        if not mine:
            table.add_row(target, kind, "", Text("none", "dim"))
        for fault in mine:
            attributes = " ".join(f"{k}={v}" for k, v in fault.attributes.items())
            table.add_row(target, kind, fault.route, Text(fault.name, "bold red" if fault.type == "down" else "yellow"),
                          fault.type, fault.stream or "", "" if fault.toxicity is None else f"{fault.toxicity:g}",
                          attributes)
    return table


ACTION_STYLE = {"unchanged": "dim", "rebuilt": "yellow", "recreated": "yellow", "added": "green",
                "removed": "red", "started": "cyan"}


def changes_table(result: ReconcileResult) -> Table:
    """What a reconcile (`up` on a running slice) did to each service."""
    table = Table(title=f"updated slice {result.slice} in {result.seconds:.1f} s", title_justify="left", box=None,
                  pad_edge=False)
    for column in ("service", "action", "detail"):
        table.add_column(column)
    for change in result.changes:
        table.add_row(change.service, Text(change.action, ACTION_STYLE.get(change.action, "")), change.detail)
    return table


def error_text(error: StackletError) -> Text:
    text = Text.assemble(("error: ", "bold red"), error.message)
    if getattr(error, "health", None):
        text.append(f"\n  last health check: {error.health}")
    if getattr(error, "logs", None):
        text.append("\n  last log lines:\n" + "\n".join("    " + ln for ln in error.logs.rstrip().splitlines()))
    if error.details:
        text.append("\n  details:\n" + "\n".join("    " + ln for ln in error.details.rstrip().splitlines()))
    if error.hint:
        text.append(f"\n  hint: {error.hint}", "cyan")
    return text


class Progress:
    """Boot progress: a live per-service table on a terminal, plain timestamped lines otherwise."""

    def __init__(self, console: Console):
        self.console = console
        self.started = time.monotonic()
        self.rows: dict[str, tuple[str, str]] = {}
        self.live: Live | None = None
        self.footer = ""

    def __enter__(self) -> "Progress":
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        elapsed = event.at - self.started
        if event.service:
            self.rows[event.service] = (event.kind, event.message)
        else:
            self.footer = event.message
        if self.live:
            self.live.update(self._table())
        else:
            who = f"{event.service}: " if event.service else ""
            print(f"[{elapsed:6.1f}s] {who}{event.kind}{' - ' + event.message if event.message else ''}",
                  file=sys.stdout, flush=True)

    def _table(self) -> Group:
        table = Table(box=None, pad_edge=False)
        table.add_column("service")
        table.add_column("state")
        table.add_column("")
        for service, (kind, message) in self.rows.items():
            table.add_row(service, Text(kind, STATE_STYLE.get(kind, "")), Text(message, "dim"))
        elapsed = time.monotonic() - self.started
        return Group(table, Text(f"{elapsed:5.1f}s {self.footer}", "dim"))

