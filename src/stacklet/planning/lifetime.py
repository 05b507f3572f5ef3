"""Slice lifetime: expiry (TTL), boot deadlines, and what `stacklet gc` removes.

Pure functions on label dictionaries and times; the engine reads the labels and acts.

Labels (UTC times as ``YYYY-MM-DDTHH:MM:SSZ``, like ``dev.stacklet.created``):

- ``dev.stacklet.expires`` on every container, network and volume of a slice started with a TTL;
- ``dev.stacklet.boot-deadline`` on the same: the boot either finishes by then or gives up;
- a marker volume ``stacklet-<slice>-boot`` (``dev.stacklet.marker=boot``, ``dev.stacklet.booted``,
  ``dev.stacklet.boot``) created when a boot finishes (``ready``, or ``kept`` by --keep-on-failure).

A slice without the marker whose boot deadline has passed was started by a CLI that died (crashed,
killed): it is orphaned. So are networks and volumes of a slice that has no container at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from stacklet.labels import Label, parse_utc


BOOT_MARGIN_S = 15
"""Added to a boot's budget (timeout x dependency layers) for link proxies, seeds and teardown."""
GC_GRACE_S = 5
"""gc waits this long past a boot deadline, so a CLI giving up at its deadline can clean up itself."""
UNLABELLED_BOOT_S = 600
"""A slice without a boot deadline label (an older stacklet) that has no containers yet is left alone this long."""


def boot_budget_s(timeout_s: int, layers: int) -> int:
    """Seconds a boot may take after its images are built: each dependency layer gets the timeout."""
    return timeout_s * max(1, layers) + BOOT_MARGIN_S


def span(seconds: float, precise: bool = False) -> str:
    """A short duration: 45s, 29m, 2h05m, 3d04h; ``precise`` keeps one more unit: 3m 30s, 2h 05m."""
    seconds = int(abs(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if precise:
        if seconds < 7200:
            return f"{seconds // 60}m {seconds % 60:02d}s"
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def expiry_text(expires_in_s: float | None) -> str:
    """'in 29m', 'expired 3m ago', or 'never'."""
    if expires_in_s is None:
        return "never"
    if expires_in_s <= 0:
        return f"expired {span(expires_in_s)} ago"
    return f"in {span(expires_in_s)}"


def first_label(labels: list[dict[str, str]], key: str) -> str | None:
    """The value of ``key`` on the first resource that carries it."""
    return next((one[key] for one in labels if one.get(key)), None)


def expiry(labels: list[dict[str, str]], now: datetime) -> tuple[str | None, float | None, bool]:
    """(expires, seconds until then (negative once passed), expired) from a slice's labels."""
    expires = first_label(labels, Label.EXPIRES)
    moment = parse_utc(expires)
    if moment is None:
        return None, None, False
    left = (moment - now).total_seconds()
    return expires, left, left <= 0


class GcDecision(BaseModel):
    """What gc does with one slice, and why."""

    slice: str
    stack: str | None = None
    reason: str
    remove: bool


@dataclass
class SliceResources:
    """The labels of everything on the engine that belongs to one slice."""

    name: str
    containers: list[dict[str, str]] = field(default_factory=list)
    networks: list[dict[str, str]] = field(default_factory=list)
    volumes: list[dict[str, str]] = field(default_factory=list)

    @property
    def labels(self) -> list[dict[str, str]]:
        return [*self.containers, *self.networks, *[v for v in self.volumes if not v.get(Label.MARKER)]]

    @property
    def marker(self) -> dict[str, str] | None:
        return next((v for v in self.volumes if v.get(Label.MARKER) == "boot"), None)


def classify(found: SliceResources, now: datetime) -> GcDecision:
    """Remove an expired or orphaned slice; keep one that is booting or still has time."""
    labels = found.labels or found.volumes
    stack = first_label(labels, Label.STACK)

    def decide(remove: bool, reason: str) -> GcDecision:
        return GcDecision(slice=found.name, stack=stack, reason=reason, remove=remove)

    deadlines = [d for d in (parse_utc(one.get(Label.BOOT_DEADLINE)) for one in labels) if d]
    deadline = max(deadlines) if deadlines else None
    booted = found.marker is not None
    if not booted and deadline and (now - deadline).total_seconds() < GC_GRACE_S:
        return decide(False, f"booting (deadline in {span(max(0.0, (deadline - now).total_seconds()))})")
    created = parse_utc(first_label(labels, Label.CREATED))
    if not booted and not deadline and not found.containers and created and \
            (now - created).total_seconds() < UNLABELLED_BOOT_S:
        return decide(False, "may be booting (no boot deadline label; created "
                             f"{span((now - created).total_seconds())} ago)")
    _, left, expired = expiry(labels, now)
    if expired:
        return decide(True, expiry_text(left))
    if not found.containers:
        parts = [f"{len(found.networks)} network(s)" if found.networks else "",
                 f"{len(found.volumes)} volume(s)" if found.volumes else ""]
        return decide(True, f"orphaned: no containers left ({', '.join(p for p in parts if p)})")
    if not booted and deadline:
        late = span((now - deadline).total_seconds())
        return decide(True, f"orphaned: boot never finished (its deadline passed {late} ago)")
    lifetime = "no expiry" if left is None else f"expires {expiry_text(left)}"
    if booted and found.marker.get(Label.BOOT_RESULT) == "kept":
        return decide(False, f"kept after a failed boot, {lifetime}")
    return decide(False, lifetime)
