"""Warm slices: slices booted ahead of time and paused, taken by a later ``up`` whose key matches.

A warm slice is an ordinary slice under a name of its own (``<base>-w<hex>``: labels never change
on a container, so that name stays its identity). Three small objects on the engine say where it is:

- its **lease volume** carries its expiry: the pool's TTL while it waits (``lease=warm``), then the
  TTL of the ``up`` that took it (a volume is replaced, so ``gc`` and ``ls`` read the right one);
- its **record**, a container that is created and never started, named ``stacklet-warm-<slice>``
  once the slice is booted and paused, with the warm key and the command that refills the pool;
- taking it renames the record to ``stacklet-claim-<name>``. The engine renames one container at a
  time and a name exists once, so of two ``up``s racing for one warm slice exactly one succeeds,
  and the record's name is from then on the one place that maps the user's name to the slice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field

from stacklet.config.faultprofile import FaultProfile
from stacklet.config.stack import Stack
from stacklet.docker.models import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import BootError, DockerError, StackletError, short_text
from stacklet.labels import (Label, claim_record_name, lease_volume, slice_project_name, split_list,
                             taken_marker_name, utc_now_text, utc_text, warm_record_name)
from stacklet.planning import lifetime
from stacklet.planning.plan import SlicePlan
from stacklet.runtime.converge import Converger
from stacklet.runtime.observe import SliceReader
from stacklet.runtime.status import EventSink, Event, ReloadResult, SliceSummary
from stacklet.runtime.teardown import Teardown
from stacklet.runtime.warmkey import WarmKey
from stacklet.runtime.workdir import ensure_workdir

WarmState = Literal["booting", "paused", "taken"]
CLAIM_PREFIX = claim_record_name("")
PAUSE_ATTEMPTS = 8
PAUSE_RETRY_S = 1.0


class WarmSlice(BaseModel):
    """One warm slice as its record (or, while it boots, its lease) shows it."""

    slice: str
    state: WarmState
    stack: str | None = None
    changed: list[str] = []
    key: str | None = None
    record: str | None = None
    taken_as: str | None = None
    created: str | None = None
    fingerprint: WarmKey | None = None
    command: dict = {}


class Claim(BaseModel):
    """The outcome of trying to take a warm slice: the slice taken, or why none fit."""

    taken: str | None = None
    reason: str = ""
    command: dict = Field(default_factory=dict, description="the `stacklet warm` arguments that refill its pool")
    edited: list[str] = Field(default_factory=list, description="changed services whose files differ from when "
                                                                "the slice was warmed: to rebuild")


class WarmPool:
    """Keeps, takes and lists warm slices on one engine."""

    def __init__(self, driver: EngineDriver, workdir: Path, reader: SliceReader, converger: Converger,
                 teardown: Teardown):
        self.driver = driver
        self.workdir = workdir
        self.reader = reader
        self.converger = converger
        self.teardown = teardown

    # -- names ------------------------------------------------------------------------------

    def identity(self, name: str) -> str:
        """The slice (its label name) behind ``name``: the warm slice taken as ``name``, else ``name`` itself."""
        found = self.driver.inspect([claim_record_name(name)])
        return (found[0].labels.get(Label.WARM_OF) if found else None) or name

    # -- what is there ----------------------------------------------------------------------

    def slices(self) -> list[WarmSlice]:
        """Every warm slice: booting (a warm lease, no record yet), paused in the pool, or taken."""
        found = {w.slice: w for w in map(_from_record, self.driver.containers({Label.WARM_OF: ""}))}
        for volume, labels in self.driver.labelled_volumes({Label.LEASE: "warm"}).items():
            name = labels.get(Label.SLICE)
            if name and name not in found:
                found[name] = WarmSlice(slice=name, state="booting", stack=labels.get(Label.STACK),
                                        changed=split_list(labels.get(Label.CHANGED)), key=labels.get(Label.WARM_KEY),
                                        created=labels.get(Label.CREATED))
        return sorted(found.values(), key=lambda w: (w.created or "", w.slice))

    def pool(self, key: str) -> list[WarmSlice]:
        """The warm slices of one key that are not taken (booting or paused)."""
        return [w for w in self.slices() if w.key == key and w.state != "taken"]

    def annotate(self, summaries: list[SliceSummary], now: datetime | None = None) -> list[SliceSummary]:
        """``ls`` rows with the warm state, a taken slice under the name it was taken as, expiry from leases."""
        now = now or datetime.now(timezone.utc)
        warm = {w.slice: w for w in self.slices()}
        leases = {labels[Label.SLICE]: labels for labels in self.driver.labelled_volumes({Label.LEASE: ""}).values()
                  if labels.get(Label.SLICE)}
        rows = []
        for summary in summaries:
            one = warm.get(summary.name)
            update: dict = {}
            if one and one.state == "taken":
                update = {"name": one.taken_as, "taken_from": one.slice}
            elif one:
                update = {"warm": one.state if one.state != "paused" else
                          "partly paused" if summary.running else "paused"}
            if summary.name in leases:
                expires, expires_in_s, expired = lifetime.expiry([leases[summary.name]], now)
                update |= {"expires": expires, "expires_in_s": expires_in_s, "expired": expired}
            rows.append(summary.model_copy(update=update))
        return rows

    # -- fill -------------------------------------------------------------------------------

    def fill(self, plan: SlicePlan, stack: Stack, key: WarmKey, count: int, *, base: str, ttl_s: int,
             command: dict, seed: bool = True, fault_profile: FaultProfile | None = None,
             fault_seed: int | None = None, timeout_s: int, on_event: EventSink = lambda e: None) -> list[str]:
        """Boot and pause warm slices of ``key`` until ``count`` wait in the pool; returns those booted.

        One filler per key at a time (a file lock): a second one returns at once, the first recounts
        after every boot (a take meanwhile is refilled too). A boot that fails removes its slice.
        """
        booted: list[str] = []
        with _filler_lock(self.workdir, key.digest()) as mine:
            if not mine:
                on_event(Event("warm", message="another process is filling this pool"))
                return booted
            while len(self.pool(key.digest())) < count:
                booted.append(self._boot_one(plan, stack, key, base=base, ttl_s=ttl_s, command=command, seed=seed,
                                             fault_profile=fault_profile, fault_seed=fault_seed,
                                             timeout_s=timeout_s, on_event=on_event))
        return booted

    def _boot_one(self, plan: SlicePlan, stack: Stack, key: WarmKey, *, base: str, ttl_s: int, command: dict,
                  seed: bool, fault_profile: FaultProfile | None, fault_seed: int | None, timeout_s: int,
                  on_event: EventSink) -> str:
        name = f"{base[:40].rstrip('-_')}-w{secrets.token_hex(3)}"
        now = datetime.now(timezone.utc)
        common = {Label.STACK: plan.stack, Label.CHANGED: ",".join(plan.changed), Label.WARM_KEY: key.digest(),
                  Label.CREATED: utc_text(now)}  # the record must not carry the slice label: it is no service
        self.driver.create_volume(lease_volume(name, taken=False), {
            **common, Label.SLICE: name, Label.LEASE: "warm", Label.EXPIRES: utc_text(now + timedelta(seconds=ttl_s))})
        try:
            on_event(Event("warm", message=f"booting warm slice {name}"))
            self.converger.up(plan, stack, name, seed=seed, fault_profile=fault_profile, fault_seed=fault_seed,
                              timeout_s=timeout_s, on_event=on_event)
            self._pause(name, on_event)
            self.driver.create_record(warm_record_name(name), plan.linkproxy_image, {
                **common, Label.WARM_OF: name, Label.WARM_FINGERPRINT: key.model_dump_json(),
                Label.WARM_COMMAND: json.dumps(command)})
        except BaseException:
            with contextlib.suppress(StackletError):
                self.teardown.remove_slice(name)
            raise
        on_event(Event("warm", message=f"warm slice {name} is paused in the pool"))
        return name

    def _pause(self, name: str, on_event: EventSink) -> None:
        """Pause every running container of slice ``name``. The freezer may fail on a busy host ("unable to
        freeze": a process that does not stop in time) and succeed a moment later, so each is tried again; one
        that never freezes is left running (``ls`` then says "partly paused") rather than losing the slice."""
        failed: list[str] = []
        for attempt in range(PAUSE_ATTEMPTS):
            if attempt:
                time.sleep(PAUSE_RETRY_S)
            failed = []
            for info in self.reader.containers_of(name):
                if info.state != "running":
                    continue
                try:
                    self.driver.pause([info.id])
                except DockerError:
                    failed.append(info.service)
            if not failed:
                return
        on_event(Event("warm", message=f"the engine could not pause {', '.join(sorted(failed))}: left running"))

    def clear(self, key: str | None = None) -> list[str]:
        """Remove the untaken warm slices of ``key`` (all keys when None); returns their names."""
        removed = []
        for one in self.slices():
            if one.state != "taken" and (key is None or one.key == key):
                self.teardown.remove_slice(one.slice)
                removed.append(one.slice)
        return removed

    # -- take -------------------------------------------------------------------------------

    def waiting(self, stack: str) -> list[WarmSlice]:
        """The warm slices of ``stack`` paused in the pool (the cheap look before a key is computed)."""
        return [w for w in self.slices() if w.state == "paused" and w.stack == stack]

    def claim(self, key: WarmKey, name: str, ttl_s: int | None, waiting: list[WarmSlice] | None = None) -> Claim:
        """Take a paused warm slice of ``key`` (among ``waiting``, by default all) as ``name``: rename its record
        (one caller wins), resume it, give it the lease of ``ttl_s``. Says why when none fits."""
        waiting = self.waiting(key.stack) if waiting is None else waiting
        fits = [w for w in waiting if w.key == key.digest()]
        if not fits:
            return Claim(reason=_why_none_fits(key, waiting))
        for one in fits:
            # two renames of one container can both succeed (the engine looks the name up before it locks), so
            # the claim is the creation of a container name, which the engine grants once
            if self._reserve(one) and self.driver.rename(warm_record_name(one.slice), claim_record_name(name)):
                break
        else:
            return Claim(reason=f"the {len(fits)} warm slice(s) that fit were taken by another `up` meanwhile")
        try:
            self._resume(one, name, ttl_s)
        except StackletError as exc:
            with contextlib.suppress(StackletError):
                self.teardown.remove_slice(one.slice)
            detail = f"{exc.message}: {short_text(exc.details)}" if exc.details else exc.message
            return Claim(reason=f"warm slice {one.slice} did not resume ({detail}); it was removed")
        return Claim(taken=one.slice, command=one.command,
                     edited=key.edited_since(one.fingerprint) if one.fingerprint else list(key.changed))

    def _reserve(self, one: WarmSlice) -> bool:
        """Create the marker that reserves ``one`` for this caller; False when another caller holds it."""
        try:
            record = self.driver.inspect([one.record])
            if not record:
                return False  # taken and removed meanwhile
            self.driver.create_record(taken_marker_name(one.slice), record[0].image, {Label.WARM_TAKEN: one.slice})
        except DockerError:
            return False  # the name exists: taken by another `up`, or its record is gone
        return True

    def _resume(self, one: WarmSlice, name: str, ttl_s: int | None) -> None:
        self.driver.unpause([c.id for c in self.reader.containers_of(one.slice) if c.state == "paused"])
        now = datetime.now(timezone.utc)
        expiry = {Label.EXPIRES: utc_text(now + timedelta(seconds=ttl_s))} if ttl_s else {}
        self.driver.create_volume(lease_volume(one.slice, taken=True), {
            Label.SLICE: one.slice, Label.STACK: one.stack or "", Label.LEASE: name, Label.CREATED: utc_now_text(),
            **expiry})
        self.driver.remove(volumes=[lease_volume(one.slice, taken=False)])

    def refresh(self, slice_name: str, services: list[str], timeout_s: int,
                on_event: EventSink = lambda e: None) -> list[ReloadResult]:
        """Rebuild the changed ``services`` of a taken slice; recreate (as ``reload`` does) those whose image
        differs from the one they run (their files changed since the slice was warmed)."""
        containers = {c.service: c for c in self.reader.containers_of(slice_name)}
        targets = [containers[s] for s in services if s in containers]
        compose_file = Path(targets[0].labels.get(Label.COMPOSE_FILE, "")) if targets else None
        if compose_file is None or not compose_file.is_file():
            return []
        spec = (yaml.safe_load(compose_file.read_text()) or {}).get("services") or {}
        built = [t for t in targets if (spec.get(t.compose_service) or {}).get("build")]
        if not built:
            return []
        project = self.driver.project(compose_file, slice_project_name(slice_name))
        for info in built:
            on_event(Event("building", info.service))
        try:
            project.build([info.compose_service for info in built])
        except DockerError as exc:
            names = ", ".join(info.service for info in built)
            raise BootError(f"the image of {names} did not build", logs=exc.details,
                            hint="fix the build and `stacklet reload SERVICE`; the slice runs the code it was "
                                 "warmed with") from exc
        stale = [info.service for info in built
                 if self.driver.image_id((spec.get(info.compose_service) or {}).get("image")
                                         or f"{project.name}-{info.compose_service}") != info.image]
        return [self.converger.reload(slice_name, service, timeout_s, on_event) for service in stale]


def _from_record(info: ContainerInfo) -> WarmSlice:
    labels = info.labels
    state: WarmState = "taken" if info.name.startswith(CLAIM_PREFIX) else "paused"
    fingerprint = None
    with contextlib.suppress(ValueError):
        fingerprint = WarmKey.model_validate_json(labels.get(Label.WARM_FINGERPRINT) or "")
    command: dict = {}
    with contextlib.suppress(ValueError):
        command = json.loads(labels.get(Label.WARM_COMMAND) or "{}")
    return WarmSlice(slice=labels[Label.WARM_OF], state=state, stack=labels.get(Label.STACK),
                     changed=split_list(labels.get(Label.CHANGED)), key=labels.get(Label.WARM_KEY), record=info.id,
                     taken_as=info.name.removeprefix(CLAIM_PREFIX) if state == "taken" else None,
                     created=labels.get(Label.CREATED), fingerprint=fingerprint, command=command)


def no_pool_reason(stack: str, changed: list[str]) -> str:
    """Why ``up`` boots cold when no warm slice of the stack waits."""
    return f"no warm slice of stack {stack} is waiting (`stacklet warm {' '.join(changed)}` keeps some)"


def _why_none_fits(key: WarmKey, waiting: list[WarmSlice]) -> str:
    """The sentence ``up`` prints when it boots cold: the difference to the closest warm slice."""
    same_stack = [w for w in waiting if w.fingerprint and w.fingerprint.stack == key.stack]
    if not same_stack:
        return no_pool_reason(key.stack, key.changed)
    same_change = [w for w in same_stack if w.fingerprint.changed == key.changed] or same_stack
    return f"warm slice {same_change[0].slice} does not fit: {key.mismatch(same_change[0].fingerprint)}"


def filling(workdir: Path) -> bool:
    """Whether a process fills a pool of this work folder now (holds one of the pool locks)."""
    for lock in (workdir / "warm").glob("*.lock"):
        with _filler_lock(workdir, lock.stem) as free:
            if not free:
                return True
    return False


@contextlib.contextmanager
def _filler_lock(workdir: Path, key: str) -> Iterator[bool]:
    """An exclusive, non-blocking lock per pool key; yields whether this process holds it (released on exit,
    also when the process dies)."""
    ensure_workdir(workdir)
    path = workdir / "warm" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
