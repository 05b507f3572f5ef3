"""What a slice looks like to its users: boot events, statuses, summaries, and inner-loop results."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, model_validator

from stacklet.planning.reconcile import ServiceChange


@dataclass
class Event:
    """One step of a boot, for progress displays: ``kind`` is building/starting/waiting/ready/failed/..."""

    kind: str
    service: str | None = None
    message: str = ""
    at: float = field(default_factory=time.monotonic)


EventSink = Callable[[Event], None]


class Endpoint(BaseModel):
    port: int
    host: str | None = Field(None, description="127.0.0.1:PORT on the engine's host")
    network: str = Field(description="name:port inside the slice network")
    address: str | None = Field(None, description="what this process uses to reach it: `network` when its "
                                                  "container is attached to the slice network, else `host`")

    @model_validator(mode="after")
    def _default_address(self) -> "Endpoint":
        if self.address is None:
            self.address = self.host
        return self


class ServiceStatus(BaseModel):
    name: str
    role: str
    container: str
    state: str
    health: str | None = None
    health_output: str = ""
    restarts: int = 0
    endpoints: list[Endpoint] = Field(default_factory=list)
    snapshot: str | None = Field(None, description="a store: the key of the seeded snapshot it started from")
    satisfied_by: str | None = Field(None, description="a job not run: `snapshot:KEY` of the stores it prepares")


class SliceStatus(BaseModel):
    name: str
    stack: str
    project: str
    created: str | None = None
    expires: str | None = Field(None, description="UTC time the slice expires (`up --ttl`); None: never")
    changed: list[str] = Field(default_factory=list)
    compose_file: str | None = None
    healthy: bool
    services: list[ServiceStatus]
    proxies: list[ServiceStatus] = Field(default_factory=list)
    in_container: bool = Field(False, description="this process runs in a container on the slice's engine")
    attached_as: str | None = Field(None, description="that container's name once attached to the slice "
                                                      "network: endpoint addresses are then name:port")
    taken_from: str | None = Field(None, description="the warm slice this one was taken from: its containers, "
                                                     "network and project carry that name")

    @property
    def labelled_as(self) -> str:
        """The slice name on its containers' labels (a warm slice keeps the name it was booted under)."""
        return self.taken_from or self.name

    def service(self, name: str) -> ServiceStatus:
        """One service (or link proxy) of the slice by name."""
        return next(s for s in [*self.services, *self.proxies] if s.name == name)


class SliceSummary(BaseModel):
    name: str
    stack: str
    changed: list[str]
    created: str | None
    age_s: float | None
    containers: int
    running: int
    healthy: bool
    expires: str | None = Field(None, description="UTC time the slice expires (`up --ttl`); None: never")
    expires_in_s: float | None = Field(None, description="seconds until it expires, negative once expired")
    expired: bool = False
    engine: str | None = Field(None, description="the engine it runs on, when several are listed")
    warm: str | None = Field(None, description="a warm slice waiting in the pool: booting or paused (`stacklet warm`)")
    taken_from: str | None = Field(None, description="the warm slice this one was taken from")


class ReloadResult(BaseModel):
    """The outcome of ``SliceEngine.reload``: one service rebuilt, recreated and ready again."""

    slice: str
    service: str
    image_before: str
    image_after: str
    rebuilt: bool = Field(description="the image id changed")
    built: bool = Field(description="the service has a build, and it was run")
    seconds: float = Field(description="from the start of the reload until the service was ready")
    build_s: float = 0.0
    ready_s: float = Field(0.0, description="from the recreate until it was ready (and seeded)")
    seeded: list[str] = Field(default_factory=list, description="seed files applied again after the recreate")
    status: ServiceStatus

    def summary(self) -> str:
        """One line for people, e.g. ``reloaded orders in 4.2 s (image rebuilt)``."""
        what = ("recreated, no build" if not self.built else
                "image rebuilt" if self.rebuilt else "image unchanged, container recreated")
        seeded = f", seeded again from {len(self.seeded)} files" if self.seeded else ""
        return f"reloaded {self.service} in {self.seconds:.1f} s ({what}{seeded})"


class ReconcileResult(BaseModel):
    """The outcome of ``up`` on a slice that already runs: what happened to each service."""

    slice: str
    seconds: float
    changes: list[ServiceChange]
    seeded: list[str] = Field(default_factory=list, description="services seeded by this reconcile")
    faults_reset: list[str] = Field(default_factory=list,
                                    description="link proxies recreated: the faults they had are gone")
    status: SliceStatus

    def of(self, action: str) -> list[str]:
        """The services that got ``action``."""
        return [c.service for c in self.changes if c.action == action]
