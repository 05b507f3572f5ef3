"""What the TUI reads from and does to a slice (no Textual): the commands of ``stacklet.ops`` on the
TUI's engine, each turned into the sentence the user sees, plus what only the TUI shows (a snapshot of
the slice in one read, whether the baseline answers).

Every function here may block (Docker, link proxies, TCP probes): the screens call them from
thread workers only. Each action returns the sentence the user sees as a notification; failures
raise ``StackletError``, which the screens turn into an error notification (message and hint).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from stacklet.errors import SliceNotFound, StackletError
from stacklet.ops import commands as ops
from stacklet.ops.results import TrafficResult
from stacklet.ops.session import Session
from stacklet.runtime.engine import SliceEngine, SliceStatus, SliceSummary
from stacklet.runtime.faults import ActiveFault, active_faults, add_fault, apply_profile, check_stack, link_targets
from stacklet.checks.verdict import Verdict
from stacklet.config.faultprofile import FaultProfile, ToxicSpec, list_fault_profiles, load_fault_profile

PROBE_TIMEOUT_S = 0.3
BASELINE_CHECK_EVERY_S = 10.0
QUICK_LATENCY_MS = 500


@dataclass
class Route:
    link_proxy: str
    route: str
    upstream: str

    @property
    def target(self) -> str:
        return self.route.split(":")[0]


@dataclass
class LinkRate:
    """A link's traffic between two readings: requests per second, new 5xx answers, p99 of the latest requests."""

    requests_per_s: float | None = None
    errors: int = 0
    p99_ms: float | None = None


class TrafficMeter:
    """Reads every link's counters; each reading's rates are against the reading before it."""

    def __init__(self):
        self.last: TrafficResult | None = None

    def read(self, engine: SliceEngine, name: str) -> dict[str, LinkRate]:
        now = ops.traffic(Session.of(engine), name)
        rates = link_rates(self.last, now)
        self.last = now
        return rates


def link_rates(before: TrafficResult | None, now: TrafficResult) -> dict[str, LinkRate]:
    """Per link: requests per second and 5xx answers since ``before`` (none yet on the first reading), p99 now."""
    earlier = {link.link: link for link in before.links} if before else {}
    seconds = now.at - before.at if before else 0.0
    rates = {}
    for link in now.links:
        then = earlier.get(link.link)
        counted = then is not None and seconds > 0 and link.requests >= then.requests
        rates[link.link] = LinkRate(
            requests_per_s=round((link.requests - then.requests) / seconds, 1) if counted else None,
            errors=link.responses_5xx - then.responses_5xx if counted else 0, p99_ms=link.p99_ms)
    return rates


def target_rate(rates: dict[str, LinkRate], routes: list[str]) -> LinkRate | None:
    """The traffic of a target served on several routes (ports) together: summed, the worst p99."""
    mine = [rates[r] for r in routes if r in rates]
    if not mine:
        return None
    measured = [m.requests_per_s for m in mine if m.requests_per_s is not None]
    p99 = [m.p99_ms for m in mine if m.p99_ms is not None]
    return LinkRate(requests_per_s=round(sum(measured), 1) if measured else None,
                    errors=sum(m.errors for m in mine), p99_ms=max(p99) if p99 else None)


@dataclass
class SliceSnapshot:
    """Everything the slice screen shows, read in one go from a worker."""

    status: SliceStatus
    targets: dict[str, str] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    faults: list[ActiveFault] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    fault_error: str | None = None
    traffic: dict[str, LinkRate] = field(default_factory=dict)

    def traffic_to(self, target: str) -> LinkRate | None:
        """The traffic on the link(s) to ``target``; None when no link leads to it."""
        return target_rate(self.traffic, [r.route for r in self.routes if r.target == target])

    @property
    def forwarded(self) -> list[Route]:
        return [r for r in self.routes if self.targets.get(r.target) == "forwarded"]

    def faults_on(self, target: str) -> list[ActiveFault]:
        return [f for f in self.faults if f.target == target]


class BaselineProbe:
    """Whether the baseline answers for each forwarded address; cached for ``every_s`` seconds."""

    def __init__(self, every_s: float = BASELINE_CHECK_EVERY_S):
        self.every_s = every_s
        self._at = -1e9
        self._answers: dict[str, str] = {}

    def answers(self, engine: SliceEngine, stack: str, forwarded: list[Route]) -> dict[str, str]:
        if time.monotonic() - self._at < self.every_s and set(self._answers) >= {r.upstream for r in forwarded}:
            return self._answers
        self._answers = probe_baseline(engine, stack, [r.upstream for r in forwarded])
        self._at = time.monotonic()
        return self._answers


def probe_baseline(engine: SliceEngine, stack: str, upstreams: list[str]) -> dict[str, str]:
    """upstream → 'yes' / 'no' / 'unknown': a TCP connect to the local baseline's published port.

    Remote baseline addresses are not probed (only 127.0.0.1 is reached from here): 'unknown'.
    """
    if not upstreams:
        return {}
    try:
        published = {e.network: e.host for s in engine.baseline_status(stack).services for e in s.endpoints
                     if e.host}
    except SliceNotFound:
        published = None
    except StackletError:
        return {u: "unknown" for u in upstreams}
    answers = {}
    for upstream in upstreams:
        if ".baseline:" not in upstream:
            answers[upstream] = "unknown"
        elif published is None:
            answers[upstream] = "no (baseline not running)"
        elif upstream not in published:
            answers[upstream] = "no (not published)"
        else:
            answers[upstream] = "yes" if tcp_answers(published[upstream]) else "no"
    return answers


def tcp_answers(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def load_snapshot(engine: SliceEngine, name: str, probe: BaselineProbe | None = None,
                  meter: TrafficMeter | None = None) -> SliceSnapshot:
    """Status, link targets, routes, faults in force, traffic and baseline answers of slice ``name``."""
    snapshot = SliceSnapshot(status=ops.status(Session.of(engine), name))
    try:
        handles = engine.link_proxies(name)
        snapshot.targets = link_targets(handles)
        snapshot.routes = [Route(h.name, route, upstream) for h in handles for route, upstream in sorted(h.routes.items())]
        snapshot.faults = active_faults(handles)
        if meter is not None:
            snapshot.traffic = meter.read(engine, name)
    except StackletError as error:  # a link proxy that does not answer must not hide the services
        snapshot.fault_error = error.message
    if probe is not None:
        snapshot.answers = probe.answers(engine, snapshot.status.stack, snapshot.forwarded)
    return snapshot


# -- actions --------------------------------------------------------------------------------------

def list_slices(engine: SliceEngine) -> list[SliceSummary]:
    """The slices on the engine (``stacklet ls``)."""
    return ops.ls(Session.of(engine)).slices


def restart_service(engine: SliceEngine, name: str, service: str) -> str:
    """Restart one service of the slice and wait until it is ready again (a link proxy gets its routes back)."""
    restarted = ops.restart(Session.of(engine), service, name).service(service)
    return f"restarted {service}: {restarted.health or restarted.state}"


def reset_seed(engine: SliceEngine, name: str, service: str) -> str:
    """Put one service back to its seeded state (``stacklet reset``)."""
    results = ops.reset(Session.of(engine), service, name).results
    return "; ".join(f"reset {r.service}: {len(r.files)} files in {r.seconds:.2f}s" for r in results) or \
        f"{service} has nothing to reset"


def fault_profiles(stack: str | None, start: Path | None = None) -> list[FaultProfile]:
    """The profiles of the nearest faults/ folder that fit ``stack`` (unreadable ones are left out)."""
    profiles = []
    for path in list_fault_profiles(start):
        try:
            profile = load_fault_profile(path)
        except StackletError:
            continue
        if stack is None or profile.stack in (None, stack):
            profiles.append(profile)
    return profiles


def apply_fault_profile(engine: SliceEngine, name: str, profile: FaultProfile, stack: str) -> str:
    """Apply a loaded fault profile (``stacklet fault apply``)."""
    check_stack(profile, stack)
    applied = apply_profile(engine.link_proxies(name), profile)
    return f"applied {profile.name}: {len(applied)} fault(s)"


def add_quick_fault(engine: SliceEngine, name: str, target: str, kind: str) -> str:
    """A latency (``QUICK_LATENCY_MS``) or a down fault on the link to ``target``."""
    if kind == "latency":
        spec = ToxicSpec(target=target, type="latency", name="tui.latency", attributes={"latency": QUICK_LATENCY_MS})
    else:
        spec = ToxicSpec(target=target, type="down")
    applied = add_fault(engine.link_proxies(name), spec)
    what = f"latency {QUICK_LATENCY_MS} ms" if kind == "latency" else "down"
    return f"{what} on the link to {target} ({len(applied)} route(s))"


def clear_all_faults(engine: SliceEngine, name: str, target: str | None = None) -> str:
    """Clear the faults of one target or of all (``stacklet fault clear``)."""
    removed = ops.fault_clear(Session.of(engine), target, name).faults
    return f"cleared {len(removed)} fault(s)" + (f" on {target}" if target else "")


def run_slice_checks(engine: SliceEngine, name: str) -> Verdict:
    """Run the checks relevant to the slice's changes (``stacklet check``, recorded in its history)."""
    return ops.check(Session.of(engine), name)
