"""Runtime signals of a slice while its checks run: crashes, restarts, health, error lines, 5xx, links.

``Snapshot`` is taken before and after the checks; the functions below it are pure and turn two
snapshots, the engine's events and the logs of the run into ``Signal``, ``LinkTraffic`` and
``Routing`` records.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from stacklet.config.checkspec import ServiceSignals
from stacklet.docker.models import ContainerEvent, ContainerInfo
from stacklet.docker.linkproxy_client import ProxyCounters, ProxyTraffic, RequestRecord
from stacklet.checks.verdict import CheckResult, LinkTraffic, Routing, RoutingSource, Signal

MAX_LINES = 3


@dataclass
class Snapshot:
    """The slice's containers and link counters at one moment (after the run: with the run's requests)."""

    containers: dict[str, ContainerInfo]  # by service
    links: dict[str, ProxyTraffic] = field(default_factory=dict)  # by link name
    link_errors: list[str] = field(default_factory=list)


@dataclass
class ServiceLogs:
    """The lines a service logged during the run, and how to read them."""

    service: str
    lines: list[str]  # entries: a line, or a whole traceback
    settings: ServiceSignals
    times: list[float | None] = field(default_factory=list)  # of each entry, Unix seconds, when known


def container_signals(before: Snapshot, after: Snapshot, events: list[ContainerEvent]) -> list[Signal]:
    """Exits, OOM kills, restarts and health changes of the slice's containers during the run."""
    signals: list[Signal] = []
    for service, now in sorted(after.containers.items()):
        then = before.containers.get(service)
        mine = [e for e in events if e.container == now.id or (e.service and e.service == service)]
        dies = [e for e in mine if e.action == "die"]
        ooms = [e for e in mine if e.action == "oom"]
        if ooms or (now.oom_killed and not (then and then.oom_killed)):
            signals.append(Signal(service=service, kind="oom", count=max(1, len(ooms)),
                                  detail="killed for using too much memory (OOM)"))
        if now.state != "running" and (then is None or then.state == "running"):
            signals.append(Signal(service=service, kind="exit", detail=f"{now.state}, exit code {now.exit_code}"))
        restarts = now.restarts - (then.restarts if then else 0)
        if restarts > 0 or (now.state == "running" and dies):
            count = max(restarts, len(dies))
            codes = ", ".join(str(e.exit_code) for e in dies if e.exit_code is not None)
            signals.append(Signal(service=service, kind="restart", count=count,
                                  detail=f"restarted {count}×" + (f" (exit codes {codes})" if codes else "")))
        unhealthy = [e for e in mine if e.action.startswith("health_status") and "unhealthy" in e.action]
        if now.health == "unhealthy" or unhealthy:
            detail = "unhealthy now" if now.health == "unhealthy" else f"was unhealthy {len(unhealthy)}× during the run"
            signals.append(Signal(service=service, kind="unhealthy", count=max(1, len(unhealthy)),
                                  detail=f"{detail}: {now.health_output.strip()[-160:]}".rstrip(": ")))
    return signals


def log_signals(logs: list[ServiceLogs], explained_request_ids: set[str],
                explained_lines: set[tuple[str, str]] = frozenset()) -> list[Signal]:
    """5xx responses and error-level lines in the services' logs.

    Lines that carry an explained request id are not signals: a step that expected an error
    status asked for it, and a failed step already reports the lines of its request; nor are
    ``explained_lines`` (service, line), the evidence of a failed step found by its time.
    """
    signals: list[Signal] = []
    for entry in logs:
        error = re.compile(entry.settings.error_pattern)
        request = re.compile(entry.settings.request_pattern)
        ignore = [re.compile(p) for p in entry.settings.ignore]
        server_errors: list[str] = []
        error_lines: list[str] = []
        for line in entry.lines:
            if (any(p.search(line) for p in ignore) or any(rid in line for rid in explained_request_ids)
                    or (entry.service, line) in explained_lines):
                continue
            match = request.search(line)
            if match and match.group("status").startswith("5"):
                server_errors.append(line)
            elif error.search(line):
                error_lines.append(line)
        if server_errors:
            signals.append(Signal(service=entry.service, kind="http_5xx", count=len(server_errors),
                                  detail=f"{len(server_errors)} response(s) with status 5xx",
                                  lines=server_errors[:MAX_LINES]))
        if error_lines:
            signals.append(Signal(service=entry.service, kind="error_log", count=len(error_lines),
                                  detail=f"{len(error_lines)} error-level log line(s)", lines=error_lines[:MAX_LINES]))
    return signals


def link_traffic(before: Snapshot, after: Snapshot, routes: dict[str, tuple[str, str]],
                 faults: dict[str, list[str]], callers: dict[str, list[str]] | None = None) -> list[LinkTraffic]:
    """Traffic per link during the run; ``routes`` maps link name -> (proxy, upstream), ``callers``
    a target to the slice's services that call it."""
    traffic = []
    for link, now in sorted(after.links.items()):
        then = before.links[link].stats if link in before.links else ProxyCounters()
        stats = now.stats
        proxy, upstream = routes.get(link, ("?", "?"))
        durations = sorted(r.duration_ms for r in now.requests if r.duration_ms is not None)
        traffic.append(LinkTraffic(
            link=link, target=link.split(":")[0], callers=(callers or {}).get(link.split(":")[0], []), proxy=proxy, upstream=upstream, protocol=now.protocol,
            connections=_grew(stats.connections_total, then.connections_total),
            connect_failures=_grew(stats.connect_failures, then.connect_failures),
            resets=_grew(stats.resets, then.resets),
            bytes_to_upstream=_grew(_sent(stats, "upstream"), _sent(then, "upstream")),
            bytes_from_upstream=_grew(_sent(stats, "downstream"), _sent(then, "downstream")),
            requests=_grew(stats.requests, then.requests),
            responses_5xx=_grew(stats.responses.get("5xx", 0), then.responses.get("5xx", 0)),
            no_response=_grew(stats.no_response, then.no_response),
            fault_responses=_grew(stats.faults, then.faults),
            p50_ms=percentile(durations, 50), p99_ms=percentile(durations, 99), faults=faults.get(link, [])))
    return traffic


def _grew(now: int, then: int) -> int:
    return max(0, now - then)


def _sent(stats: ProxyCounters, direction: str) -> int:
    counts = stats.bytes.get(direction)
    return counts.sent if counts else 0


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted values (no interpolation: a p99 is a duration that happened)."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)], 2)


def link_signals(traffic: list[LinkTraffic]) -> list[Signal]:
    """Links whose upstream could not be reached, unless a fault on that link explains it."""
    return [Signal(service=t.link, kind="link_errors", count=t.connect_failures,
                   detail=f"{t.connect_failures} connection(s) to {t.upstream} failed (through {t.proxy})")
            for t in traffic if t.connect_failures and not t.faults]


@dataclass
class CheckWindow:
    """When one check ran (Unix seconds): link requests that started in it are the check's."""

    name: str
    start: float
    end: float


def routing(changed: list[str], checks: list[CheckResult], windows: list[CheckWindow], traffic: list[LinkTraffic],
            records: dict[str, list[RequestRecord]], callers: dict[str, list[str]]) -> list[Routing]:
    """What each changed service received during the run and from whom; marks ``reached`` on each check.

    The check's own requests count when a step called the service directly (its container in the
    slice); callers' requests or connections count on the links that lead to it. A link request that
    started while a check ran is credited to that check too.
    """
    entries = []
    for service in changed:
        direct = [(c.name, s) for c in checks for s in c.steps
                  if s.service == service and (s.status is not None or (s.load and s.load.requests))]
        entry = Routing(service=service)
        if direct:
            sent = sum(s.load.requests if s.load else 1 for _, s in direct)
            entry.sources.append(RoutingSource(source="check", via="direct", requests=sent))
        for checked, _ in direct:
            _mark(checks, checked, service)
        for link in (t for t in traffic if t.target == service and (t.requests or t.connections)):
            entry.sources.append(RoutingSource(source=", ".join(callers.get(service, [])) or "callers", via=link.link,
                                               requests=link.requests, connections=link.connections))
            for record in records.get(link.link, []):
                for window in windows:
                    if window.start <= record.start <= window.end:
                        _mark(checks, window.name, service)
        entry.requests = sum(s.requests for s in entry.sources)
        entry.connections = sum(s.connections for s in entry.sources)
        entries.append(entry)
    return entries


def _mark(checks: list[CheckResult], name: str, service: str) -> None:
    for check in checks:
        if check.name == name and service not in check.reached:
            check.reached.append(service)


def unreached(checks: list[CheckResult], routed: list[Routing]) -> list[str]:
    """Passed HTTP checks, when the run as a whole reached none of the changed services (else none)."""
    if not routed or any(r.requests or r.connections for r in routed):
        return []
    return [c.name for c in checks if c.outcome == "passed" and c.kind == "http"]


def mark_unreached(routed: list[Routing], checks: list[CheckResult], tags: dict[str, list[str]]) -> None:
    """Name on each changed service the passed HTTP checks selected for it (tagged with it, or untagged) whose
    requests never reached it: a check that passed against something else (a forwarded copy, another service)."""
    for entry in routed:
        entry.unreached = [c.name for c in checks if c.outcome == "passed" and c.kind == "http"
                           and (not tags.get(c.name) or entry.service in tags[c.name])
                           and entry.service not in c.reached]
