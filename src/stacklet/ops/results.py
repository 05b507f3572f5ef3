"""The result models of the command layer: what every command answers, as one JSON envelope.

Every result is ``{"ok": true, ...}`` (lists live under a key, never bare); an error is
``{"ok": false, "error": ..., "message": ..., "hint": ...}`` (``error_envelope``). The CLI prints
them with ``--json``, the MCP tools return them, the TUI reads them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stacklet.checks.verdict import HistoryEntry
from stacklet.errors import StackletError
from stacklet.labels import AdvertisedBaseline
from stacklet.ops.doctor import Check
from stacklet.ops.engines import EngineReport
from stacklet.planning.placement import Placement
from stacklet.planning.lifetime import GcDecision
from stacklet.planning.plan import SlicePlan
from stacklet.runtime.faults import ActiveFault
from stacklet.runtime.seeds import SeedResult
from stacklet.runtime.build_images import BuildGcDecision
from stacklet.runtime.snapshots import SnapshotChoice, SnapshotGcDecision
from stacklet.runtime.status import ReconcileResult, ReloadResult, SliceStatus, SliceSummary


class Envelope(BaseModel):
    """The base of every command's answer."""

    ok: bool = True

    def document(self) -> dict[str, Any]:
        """The JSON document of this answer."""
        return self.model_dump(mode="json")


def error_envelope(error: StackletError) -> dict[str, Any]:
    """The JSON document of a failed command."""
    return {"ok": False, **error.to_dict()}


class PlanResult(Envelope, SlicePlan):
    """``plan``: the slice for a change, and the seed files of its local services."""

    seeds: dict[str, list[str]] = Field(default_factory=dict)
    snapshots: dict[str, SnapshotChoice] = Field(
        default_factory=dict, description="seeded store -> its snapshot key and whether it exists (`present`: it "
                                          "starts from it, its jobs do not run); empty when no engine answers")


class WhyEdge(BaseModel):
    """One edge of a service, with what made it (key, variable, file)."""

    source: str
    target: str
    weak: bool = Field(description="made only by a shared env_file: it pulls nothing into a slice by itself")
    text: str
    origins: list[dict[str, Any]] = Field(default_factory=list)


class WhyResult(Envelope):
    """``why``: where a service stands in the slice of a change, and why; its edges with their origins."""

    service: str
    state: str = Field(description="local, forwarded or absent")
    role: str | None = None
    explanation: str
    edges: list[WhyEdge] = Field(default_factory=list)


class GraphResult(Envelope):
    """``graph``: the service graph as Mermaid or Graphviz text."""

    format: str
    graph: str


class WarmTake(BaseModel):
    """How ``up`` used the warm pool: the warm slice it took (and what it rebuilt), or why it booted cold."""

    taken: str | None = Field(None, description="the warm slice taken (its containers carry this name)")
    reason: str = Field("", description="why no warm slice fit, when it booted cold")
    reloaded: list[ReloadResult] = Field(default_factory=list,
                                         description="changed services rebuilt since the slice was warmed")
    seconds: float = Field(0.0, description="from the claim until the taken slice was ready")
    refill: str | None = Field(None, description="the refill started in the background (its log file)")

    def line(self) -> str:
        """One line for people."""
        if not self.taken:
            return f"booted cold: {self.reason}"
        rebuilt = f", rebuilt {', '.join(r.service for r in self.reloaded)}" if self.reloaded else ""
        return f"took warm slice {self.taken} in {self.seconds:.1f} s{rebuilt}; the pool is refilled in the background"


class UpResult(Envelope):
    """``up``: the plan, the slice as it runs now, and what a reconcile changed (when it ran)."""

    plan: SlicePlan
    slice: SliceStatus
    reconcile: ReconcileResult | None = None
    engine: str | None = Field(None, description="the engine the slice runs on")
    placement: Placement | None = Field(None, description="why `--engine auto` chose that engine")
    warm: WarmTake | None = Field(None, description="how the warm pool was used (None when the slice already ran)")

    def document(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"reconcile"})
        if self.reconcile:
            data["reconcile"] = self.reconcile.model_dump(mode="json", exclude={"status"})
        return data


class ReloadAnswer(Envelope):
    """``reload``: one service rebuilt and ready again."""

    reload: ReloadResult


class StatusResult(Envelope, SliceStatus):
    """``status`` and ``baseline status``: the services of a slice or baseline."""

    engine: str | None = Field(None, description="the engine it runs on")


class BaselineStatusResult(StatusResult):
    """``baseline status``: its services, and what it serves to other hosts."""

    served: AdvertisedBaseline


class WarmResult(Envelope):
    """``warm``: the pool of one change, and what this call booted or removed."""

    key: str = Field(description="the pool's key: `up` takes a warm slice when its own key is the same")
    count: int
    booted: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    pool: list[SliceSummary] = Field(default_factory=list, description="the pool's slices (warm: booting or paused)")
    background: str | None = Field(None, description="the log file of a fill left running in the background")


class SliceList(Envelope):
    """``ls``: every slice on the engine."""

    slices: list[SliceSummary]
    engines: list[EngineReport] = Field(default_factory=list, description="each listed engine: answered or why not")


class Removed(Envelope):
    """``down`` and ``baseline down``: what was removed."""

    removed: list[str]


class BaselineRemoved(Removed):
    """``baseline down``: the baseline removed, and the images it built that were removed with it."""

    images: list[str] = Field(default_factory=list, description="ids of the images removed with it")


class GcResult(Envelope):
    """``gc``: the slices removed (or that would be, with ``dry_run``) and those kept, with reasons."""

    dry_run: bool
    removed: list[GcDecision]
    kept: list[GcDecision]
    snapshots: list[SnapshotGcDecision] = Field(default_factory=list,
                                                description="seeded snapshots removed (stale) or kept, with why")
    images: list[BuildGcDecision] = Field(default_factory=list,
                                          description="images slices built, removed (stale) or kept, with why")

    @property
    def decisions(self) -> list[GcDecision]:
        return [*self.removed, *self.kept]


class SeedResults(Envelope):
    """``seed`` and ``reset``: the seed files applied per service."""

    results: list[SeedResult]


class LogLines(Envelope):
    """``logs`` (without ``--follow``): the lines of a slice or of one service."""

    lines: list[dict[str, str]]
    engine: str | None = Field(None, description="the engine the slice runs on")


class FaultsResult(Envelope):
    """``fault apply|add|clear``: the faults applied or removed."""

    faults: list[ActiveFault]


class FaultList(Envelope):
    """``fault ls``: the link targets of a slice (local or forwarded) and the faults in force."""

    targets: dict[str, str]
    faults: list[ActiveFault]


class HistoryResult(Envelope):
    """``check --history``: the previous verdicts of a slice."""

    slice: str
    history: list[HistoryEntry]


class DoctorResult(Envelope):
    """``doctor``: each prerequisite, and whether all are met (``ok``; when not, an error envelope too)."""

    checks: list[Check]
    error: str | None = None
    message: str | None = None
    hint: str | None = None

    @classmethod
    def of(cls, checks: list[Check]) -> "DoctorResult":
        failed = [c for c in checks if not c.ok]
        if not failed:
            return cls(checks=checks)
        return cls(ok=False, checks=checks, error="PrerequisiteMissing",
                   message=f"{len(failed)} of {len(checks)} prerequisites are not met: "
                           + ", ".join(c.name for c in failed),
                   hint=next((c.fix for c in failed if c.fix), None) or "see the checks")

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=self.ok)


class BaselineResult(Envelope):
    """``baseline up``: the baseline as it runs now."""

    baseline: SliceStatus


class SkillResult(Envelope):
    """``skill``: the stack's skill document (Markdown)."""

    stack: str
    skill: str


class VersionResult(Envelope):
    """``version``."""

    version: str


class LinkCounters(BaseModel):
    """One link of a slice as its link proxy counts it now (since the proxy started)."""

    link: str = Field(description="the route: target, or target:port")
    target: str
    proxy: str
    upstream: str
    connections: int = 0
    requests: int = Field(0, description="HTTP requests")
    responses_5xx: int = 0
    no_response: int = 0
    p99_ms: float | None = Field(None, description="of the latest requests (up to `recent`)")
    recent: int = Field(0, description="how many of the latest requests the p99 is of")


class TrafficResult(Envelope):
    """The counters of every link of a slice at one moment (`at`, Unix seconds): rates are the
    difference of two readings."""

    slice: str
    at: float
    links: list[LinkCounters] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="link proxies that did not answer")
