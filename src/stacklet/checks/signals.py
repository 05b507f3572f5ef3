"""Runtime signals of a slice while its checks run: crashes, restarts, health, error lines, 5xx, links.

``Snapshot`` is taken before and after the checks; the functions below it are pure and turn two
snapshots, the engine's events and the logs of the run into ``Signal`` and ``LinkStats`` records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stacklet.config.checkspec import ServiceSignals
from stacklet.docker.driver import ContainerEvent, ContainerInfo
from stacklet.docker.linkproxy_client import LinkCounters
from stacklet.checks.verdict import LinkStats, Signal

MAX_LINES = 3


@dataclass
class Snapshot:
    """The slice's containers and link counters at one moment."""

    containers: dict[str, ContainerInfo]  # by service
    links: dict[str, LinkCounters] = field(default_factory=dict)  # by link name
    link_errors: list[str] = field(default_factory=list)


@dataclass
class ServiceLogs:
    """The lines a service logged during the run, and how to read them."""

    service: str
    lines: list[str]
    settings: ServiceSignals


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


def log_signals(logs: list[ServiceLogs], explained_request_ids: set[str]) -> list[Signal]:
    """5xx responses and error-level lines in the services' logs.

    Lines that carry an explained request id are not signals: a step that expected an error
    status asked for it, and a failed step already reports the lines of its request.
    """
    signals: list[Signal] = []
    for entry in logs:
        error = re.compile(entry.settings.error_pattern)
        request = re.compile(entry.settings.request_pattern)
        ignore = [re.compile(p) for p in entry.settings.ignore]
        server_errors: list[str] = []
        error_lines: list[str] = []
        for line in entry.lines:
            if any(p.search(line) for p in ignore) or any(rid in line for rid in explained_request_ids):
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


def link_stats(before: Snapshot, after: Snapshot, routes: dict[str, tuple[str, str]],
               faults: dict[str, list[str]]) -> list[LinkStats]:
    """Traffic per link during the run; ``routes`` maps link name -> (proxy, upstream)."""
    stats = []
    for link, now in sorted(after.links.items()):
        then = before.links.get(link, LinkCounters())
        proxy, upstream = routes.get(link, ("?", "?"))
        stats.append(LinkStats(link=link, proxy=proxy, upstream=upstream,
                               bytes_to_upstream=max(0, now.to_upstream - then.to_upstream),
                               bytes_from_upstream=max(0, now.from_upstream - then.from_upstream),
                               dial_failures=max(0, now.dial_failures - then.dial_failures),
                               faults=faults.get(link, [])))
    return stats


def link_signals(stats: list[LinkStats]) -> list[Signal]:
    """Links whose upstream could not be reached, unless a fault on that link explains it."""
    return [Signal(service=s.link, kind="link_errors", count=s.dial_failures,
                   detail=f"{s.dial_failures} connection(s) to {s.upstream} failed (through {s.proxy})")
            for s in stats if s.dial_failures and not s.faults]
