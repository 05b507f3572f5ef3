"""``SliceEngine``: slices and baselines on one Docker engine, for the command layer and the front ends.

It composes the three parts of the runtime, each in its own module: ``SliceReader`` (what runs,
from labels), ``Converger`` (the one pipeline that makes what runs match a plan) and
``Teardown`` (removal and lifetime). No mixins: each method below hands over to one of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from stacklet.config.stack import Stack
from stacklet.config.faultprofile import FaultProfile
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import SliceNotFound, StackFileError
from stacklet.labels import is_linkproxy
from stacklet.planning.lifetime import GcDecision
from stacklet.planning.plan import SlicePlan
from stacklet.runtime.converge import BASELINE_TIMEOUT_S, Converger
from stacklet.runtime.faults import LinkProxyHandle
from stacklet.runtime.observe import SliceReader, Vantage
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S, MAX_RESTARTS
from stacklet.runtime import build_images, snapshots
from stacklet.runtime.build_images import BuildGcDecision
from stacklet.runtime.snapshots import SnapshotGcDecision
from stacklet.runtime.seeds import SeedResult, Seeder, seed_plan
from stacklet.runtime.status import (Endpoint, Event, EventSink, ReconcileResult, ReloadResult, ServiceStatus,
                                     SliceStatus, SliceSummary)
from stacklet.runtime.teardown import Teardown
from stacklet.runtime.warm import WarmPool

__all__ = ["SliceEngine", "Endpoint", "Event", "EventSink", "ReconcileResult", "ReloadResult", "ServiceStatus",
           "SliceStatus", "SliceSummary", "Vantage", "DEFAULT_TIMEOUT_S", "MAX_RESTARTS"]


def default_workdir() -> Path:
    """Where stacklet keeps generated projects and history: ``$STACKLET_HOME`` or ``./.stacklet``."""
    return Path(os.environ.get("STACKLET_HOME", Path.cwd() / ".stacklet"))


class SliceEngine:
    """Boots and inspects slices and baselines on one Docker endpoint."""

    def __init__(self, driver: EngineDriver, workdir: Path | None = None):
        self.driver = driver
        self.workdir = workdir or default_workdir()
        self.reader = SliceReader(driver)
        self.teardown = Teardown(driver, self.workdir, self.reader)
        self.converger = Converger(driver, self.workdir, self.reader, self.teardown)
        self.warm = WarmPool(driver, self.workdir, self.reader, self.converger, self.teardown)

    # -- converge ---------------------------------------------------------------------------

    def up(self, plan: SlicePlan, stack: Stack, name: str, *, keep_on_failure: bool = False, seed: bool = True,
           snapshots: bool = True, fault_profile: FaultProfile | None = None, fault_seed: int | None = None,
           timeout_s: int = DEFAULT_TIMEOUT_S, ttl_s: int | None = None,
           on_event: EventSink = lambda e: None) -> SliceStatus:
        """Boot slice ``name`` (or reconcile it when it runs); its status. See ``Converger.converge``."""
        return self.converge(plan, stack, name, keep_on_failure=keep_on_failure, seed=seed, snapshots=snapshots,
                             fault_profile=fault_profile, fault_seed=fault_seed, timeout_s=timeout_s,
                             ttl_s=ttl_s, on_event=on_event)[0]

    def converge(self, plan: SlicePlan, stack: Stack, name: str, **options) -> tuple[SliceStatus,
                                                                                   ReconcileResult | None]:
        """Boot slice ``name`` or reconcile it: its status, and what a reconcile did."""
        status, reconciled = self.converger.converge(plan, stack, self._slice(name), **options)
        return self._named(status, name), reconciled and reconciled.model_copy(
            update={"slice": name, "status": self._named(reconciled.status, name)})

    def reconcile(self, plan: SlicePlan, stack: Stack, name: str, *, seed: bool = True,
                  fault_profile: FaultProfile | None = None, fault_seed: int | None = None,
                  timeout_s: int = DEFAULT_TIMEOUT_S, on_event: EventSink = lambda e: None) -> ReconcileResult:
        """Bring the running slice ``name`` to ``plan``; see ``Converger.reconcile``."""
        result = self.converger.reconcile(plan, stack, self._slice(name), seed=seed, fault_profile=fault_profile,
                                          fault_seed=fault_seed, timeout_s=timeout_s, on_event=on_event)
        return result.model_copy(update={"slice": name, "status": self._named(result.status, name)})

    def reload(self, name: str, service: str, timeout_s: int = DEFAULT_TIMEOUT_S,
               on_event: EventSink = lambda e: None) -> ReloadResult:
        """Rebuild and recreate one service; see ``Converger.reload``."""
        return self.converger.reload(self._slice(name), service, timeout_s, on_event).model_copy(
            update={"slice": name})

    def restart(self, name: str, service: str, timeout_s: int = DEFAULT_TIMEOUT_S) -> ServiceStatus:
        """Restart one service and wait until it is ready again."""
        return self.converger.restart(self._slice(name), service, timeout_s)

    def baseline_up(self, stack: Stack, timeout_s: int = BASELINE_TIMEOUT_S,
                    on_event: EventSink = lambda e: None, advertise: str | None = None) -> SliceStatus:
        """Start (or bring up to date) the shared baseline of ``stack`` (published on ``advertise`` when given)."""
        return self.converger.baseline_up(stack, timeout_s, on_event, advertise)

    # -- observe ----------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        """Whether slice ``name`` has containers on the engine."""
        return self.reader.exists(self._slice(name))

    def status(self, name: str) -> SliceStatus:
        """The live state of slice ``name``."""
        return self._named(self.reader.status(self._slice(name)), name)

    def list(self) -> list[SliceSummary]:
        """Every slice on the engine (a taken warm slice under the name it was taken as, warm ones marked)."""
        return self.warm.annotate(self.reader.list())

    def logs(self, name: str, service: str | None = None, *, follow: bool = False,
             tail: int | None = None) -> Iterator[tuple[str, str]]:
        """(service, line) pairs of one service or of the whole slice."""
        return self.reader.logs(self._slice(name), service, follow=follow, tail=tail)

    def link_proxies(self, name: str) -> list[LinkProxyHandle]:
        """The link proxies of slice ``name`` with their control APIs and routes."""
        return self.reader.link_proxies(self._slice(name))

    def stack_of(self, name: str) -> Stack:
        """The stack a running slice was made from."""
        return self.reader.stack_of(self._slice(name))

    def baseline_status(self, stack_name: str) -> SliceStatus:
        """The live state of the local baseline of ``stack_name``."""
        return self.reader.baseline_status(stack_name)

    # -- data -------------------------------------------------------------------------------

    def seed(self, name: str, service: str | None = None, *, reset: bool = False) -> list[SeedResult]:
        """Re-apply (or with ``reset``, restore) the seeds of one service of a slice, or of all seeded ones."""
        name = self._slice(name)
        listed = self.reader.containers_of(name)
        stack = self.reader.stack_of(name, listed)
        containers = {c.service: c for c in listed if not is_linkproxy(c.labels)}
        if service and service not in containers:
            raise SliceNotFound(f"slice {name} has no service {service!r}",
                                hint=f"its services: {', '.join(sorted(containers))}")
        seeded = seed_plan(stack, [service] if service else sorted(containers))
        if service and service not in seeded:
            raise StackFileError(f"{service} has no seed files",
                                 hint=f"add files under seeds/{stack.name}/{service}/ and declare `seed:` in stack.yaml")
        seeder = Seeder(self.driver, stack, self.reader.address_of)
        return [(seeder.reset if reset else seeder.seed)(svc, containers[svc]) for svc in seeded]

    # -- remove -----------------------------------------------------------------------------

    def down(self, name: str) -> None:
        """Remove slice ``name``: containers, network, volumes and its folder (its images, named by their
        sources, stay for other slices)."""
        self.teardown.down(self._slice(name))

    def baseline_down(self, stack_name: str, keep_images: bool = False) -> list[str]:
        """Remove the local baseline of ``stack_name`` (refused while slices use it) and, unless
        ``keep_images``, the images it built; returns the ids of the images removed."""
        return self.teardown.baseline_down(stack_name, [s.name for s in self.list() if s.stack == stack_name],
                                           keep_images)

    def gc(self, *, dry_run: bool = False, now: datetime | None = None,
           only: list[str] | None = None) -> list[GcDecision]:
        """Remove expired and orphaned slices; see ``Teardown.gc``."""
        return self.teardown.gc(dry_run=dry_run, now=now, only=only and [self._slice(n) for n in only])

    def gc_snapshots(self, *, dry_run: bool = False, now: datetime | None = None) -> list[SnapshotGcDecision]:
        """Remove stale seeded snapshots; see ``snapshots.collect`` for the rule."""
        return snapshots.collect(self.driver, self.workdir, now or datetime.now(timezone.utc), dry_run)

    def gc_builds(self, *, dry_run: bool = False) -> list[BuildGcDecision]:
        """Remove images slices built that nothing uses and no current source state needs; see
        ``build_images.collect`` for the rule."""
        return build_images.collect(self.driver, dry_run)

    # -- warm slices: the name a user gave, and the slice's own ----------------------------

    def _slice(self, name: str) -> str:
        """The name on the labels of slice ``name`` (a taken warm slice keeps the one it was booted under)."""
        return self.warm.identity(name)

    @staticmethod
    def _named(status: SliceStatus, name: str) -> SliceStatus:
        """``status`` under the name the user knows it by."""
        return status if status.name == name else status.model_copy(update={"name": name, "taken_from": status.name})
