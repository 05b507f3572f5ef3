"""The label schema: the only state a slice or a baseline keeps on the engine.

Every label key stacklet reads or writes is a constant of ``Label``; nothing else spells one.
``SliceLabels`` is the typed view of one container's labels; the project names of slices and
baselines, the route codec of link proxies and the UTC time format of time labels live here too.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pydantic import BaseModel, Field

PREFIX = "dev.stacklet"


class Label:
    """Label keys (``dev.stacklet.*``, and the Compose keys stacklet reads)."""

    SLICE = f"{PREFIX}.slice"
    """the slice a container, network or volume belongs to"""
    BASELINE = f"{PREFIX}.baseline"
    """the stack whose baseline a container belongs to"""
    STACK = f"{PREFIX}.stack"
    SERVICE = f"{PREFIX}.service"
    """the stack's name for the service (the Compose key may carry an ``.origin`` suffix)"""
    ROLE = f"{PREFIX}.role"
    """changed, caller, callee, stateful, linkproxy, baseline, ..."""
    CREATED = f"{PREFIX}.created"
    CHANGED = f"{PREFIX}.changed"
    """comma-separated changed services of the slice"""
    EXPIRES = f"{PREFIX}.expires"
    BOOT_DEADLINE = f"{PREFIX}.boot-deadline"
    MARKER = f"{PREFIX}.marker"
    BOOTED = f"{PREFIX}.booted"
    BOOT_RESULT = f"{PREFIX}.boot"
    COMPOSE_FILE = f"{PREFIX}.compose-file"
    """the generated Compose project of the slice"""
    STACK_FILE = f"{PREFIX}.stack-file"
    COMPOSE_FILES = f"{PREFIX}.compose-files"
    """comma-separated Compose files of a stack without stack.yaml"""
    TARGETS = f"{PREFIX}.targets"
    """comma-separated names a link proxy owns"""
    ROUTES = f"{PREFIX}.routes"
    """a link proxy's routes, JSON (see ``encode_routes``)"""
    ONE_SHOT = f"{PREFIX}.one-shot"
    """"true" on a service the slice runs to completion (a job): exited 0 is its ready state"""

    AFTER = f"{PREFIX}.after"
    """comma-separated services (Compose keys) this one calls beyond depends_on: it starts once they are ready"""
    SEED_AFTER = f"{PREFIX}.seed-after"
    """comma-separated jobs (Compose keys) that must complete before this store is seeded"""
    READINESS = f"{PREFIX}.readiness"
    """``protocol:port`` a readiness probe speaks to a service without a healthcheck"""

    ADVERTISE = f"{PREFIX}.advertise"
    """the address a baseline publishes its services on for other hosts (``baseline up --advertise``)"""
    ADVERTISED = f"{PREFIX}.advertised"
    """a baseline service's advertised addresses, JSON ``{"port": "host:port"}`` (see ``advertised_ports``)"""
    STARTED = f"{PREFIX}.started"
    """when a baseline was first started (UTC); kept when it is brought up to date"""
    BASELINE_ENGINE = f"{PREFIX}.baseline-engine"
    """the engine of the advertised baseline a slice forwards to (``baseline.engine`` / ``--baseline-engine``)"""
    TOKEN = f"{PREFIX}.token"
    """the bearer token a slice's link proxies require on their control API"""

    SNAPSHOT = f"{PREFIX}.snapshot"
    """on a store: the key of the seeded snapshot it started from; on a snapshot image: its key"""
    SNAPSHOT_OF = f"{PREFIX}.snapshot-of"
    """on a snapshot image: ``<stack>/<service>`` it holds the prepared data of"""
    SNAPSHOT_SOURCE = f"{PREFIX}.snapshot-source"
    """on a snapshot image: the stack file (or first Compose file) of its stack, for ``gc`` to recompute keys"""
    BUILD_OF = f"{PREFIX}.build-of"
    """on an image a slice built (``stacklet-build/...``): ``<stack>/<service>`` it was built for"""
    BUILD_SOURCE = f"{PREFIX}.build-source"
    """on an image a slice built: the stack file (or first Compose file) of its stack, for ``gc`` to recompute
    its service's current source tag"""
    SATISFIED_BY = f"{PREFIX}.satisfied-by"
    """on a job not run because every store it prepares came from a snapshot: ``snapshot:<key>``"""
    WARM_TAKEN = f"{PREFIX}.warm-taken"
    """on the marker container whose name reserves a warm slice for the one ``up`` that takes it: that slice"""
    WARM_OF = f"{PREFIX}.warm-of"
    """on a warm slice's record container: the slice (its label name) the record stands for"""
    WARM_KEY = f"{PREFIX}.warm-key"
    """on a warm record: the digest of what the slice was booted from (``runtime.warmkey``); a take must match it"""
    WARM_FINGERPRINT = f"{PREFIX}.warm-fingerprint"
    """on a warm record: that fingerprint in full, JSON (to say why a warm slice does not fit)"""
    WARM_COMMAND = f"{PREFIX}.warm-command"
    """on a warm record: the ``stacklet warm`` arguments that refill its pool, JSON"""
    LEASE = f"{PREFIX}.lease"
    """on a slice's lease volume: ``warm`` (its pool TTL) or the name a warm slice was taken as"""

    COMPOSE_PROJECT = "com.docker.compose.project"
    COMPOSE_SERVICE = "com.docker.compose.service"


LINKPROXY_ROLE = "linkproxy"
BASELINE_ROLE = "baseline"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class SliceLabels(BaseModel):
    """The typed view of one slice container's labels."""

    slice: str | None = None
    baseline: str | None = None
    stack: str | None = None
    service: str | None = None
    role: str | None = None
    created: str | None = None
    changed: list[str] = Field(default_factory=list)
    expires: str | None = None
    compose_file: str | None = None
    stack_file: str | None = None
    compose_files: list[str] = Field(default_factory=list)
    one_shot: bool = False
    snapshot: str | None = None
    satisfied_by: str | None = None

    @classmethod
    def of(cls, labels: dict[str, str]) -> "SliceLabels":
        """Read the labels of one container."""
        return cls(slice=labels.get(Label.SLICE), baseline=labels.get(Label.BASELINE),
                   stack=labels.get(Label.STACK), service=labels.get(Label.SERVICE), role=labels.get(Label.ROLE),
                   created=labels.get(Label.CREATED), changed=split_list(labels.get(Label.CHANGED)),
                   expires=labels.get(Label.EXPIRES), compose_file=labels.get(Label.COMPOSE_FILE),
                   stack_file=labels.get(Label.STACK_FILE), compose_files=split_list(labels.get(Label.COMPOSE_FILES)),
                   one_shot=labels.get(Label.ONE_SHOT) == "true", snapshot=labels.get(Label.SNAPSHOT),
                   satisfied_by=labels.get(Label.SATISFIED_BY))

    @property
    def is_linkproxy(self) -> bool:
        return self.role == LINKPROXY_ROLE


def split_list(value: str | None) -> list[str]:
    """A comma-separated label value as a list (empty items dropped)."""
    return [item for item in (value or "").split(",") if item]


def is_linkproxy(labels: dict[str, str]) -> bool:
    """Whether a container with these labels is a link proxy."""
    return labels.get(Label.ROLE) == LINKPROXY_ROLE


def slice_project_name(slice_name: str) -> str:
    """The Compose project name (and network name) of a slice."""
    return f"stacklet-{slice_name}"


def baseline_project_name(stack: str) -> str:
    """The Compose project name (and network name) of a stack's local baseline."""
    return f"stacklet-baseline-{stack}"


def marker_volume(slice_name: str) -> str:
    """The name of the volume that says a slice's boot finished."""
    return f"stacklet-{slice_name}-boot"


def warm_record_name(slice_name: str, booting: bool = False) -> str:
    """The container name of a warm slice's record while it boots, and once it waits paused in the pool."""
    return f"stacklet-warm-{slice_name}" + ("-booting" if booting else "")


def taken_marker_name(slice_name: str) -> str:
    """The container name that reserves warm slice ``slice_name`` for one taker: the engine creates a name once."""
    return f"stacklet-taken-{slice_name}"


def claim_record_name(name: str) -> str:
    """The container name of the record of a warm slice taken as ``name`` (the one place that name lives)."""
    return f"stacklet-claim-{name}"


def lease_volume(slice_name: str, taken: bool) -> str:
    """The volume whose labels carry a warm slice's expiry: the pool's TTL, then the TTL of the ``up`` that took it."""
    return f"stacklet-{slice_name}-lease" + ("" if taken else "-warm")


def encode_routes(routes: list[BaseModel]) -> str:
    """A link proxy's routes as its ``routes`` label."""
    return json.dumps([r.model_dump() for r in routes])


def decode_routes(labels: dict[str, str]) -> list[dict]:
    """The routes of a link proxy's labels, as dicts (the planner turns them into ``Route``)."""
    return json.loads(labels.get(Label.ROUTES) or "[]")


class AdvertisedBaseline(BaseModel):
    """What a baseline on some engine serves to other hosts, as read from its labels."""

    engine: str = Field(description="the engine the baseline runs on")
    stack: str
    started: str | None = Field(None, description="when the baseline was first started (UTC)")
    advertise: str | None = Field(None, description="the address its services are published on")
    services: dict[str, dict[int, str]] = Field(default_factory=dict,
                                                description="service -> container port -> advertised host:port")

    def addresses(self) -> dict[str, str]:
        """service -> the advertised ``host:port`` of its first port (the form of ``baseline.addresses``)."""
        return {name: ports[min(ports)] for name, ports in self.services.items() if ports}


def encode_advertised(ports: dict[int, str]) -> str:
    """A service's advertised addresses as its ``advertised`` label."""
    return json.dumps({str(port): address for port, address in sorted(ports.items())})


def advertised_ports(labels: dict[str, str]) -> dict[int, str]:
    """container port -> advertised ``host:port`` of one baseline container (empty when not advertised)."""
    try:
        raw = json.loads(labels.get(Label.ADVERTISED) or "{}")
        return {int(port): str(address) for port, address in raw.items()}
    except (ValueError, AttributeError):
        return {}


def utc_text(moment: datetime) -> str:
    """A UTC time as the labels write it."""
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def utc_now_text() -> str:
    """Now, as the labels write it."""
    return utc_text(datetime.now(timezone.utc))


def parse_utc(text: str | None) -> datetime | None:
    """A label's time, or None when it is missing or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
