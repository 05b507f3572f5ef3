"""Seeded snapshots: a store's data once its jobs ran and its seeds loaded, kept as an image.

The first boot of a seeded store prepares it (initdb, the jobs that prepare it, its seeds) and then
keeps a snapshot; later boots start the store from it: no initdb, its jobs are not run (each is
labelled ``satisfied-by``), no seeding.

**Key** (``snapshot_key``): a hash of everything that made the data: the store's image id, the name
and content of each seed file, the image id of every job that prepares it, and the store's
configuration that shapes its data (environment, command, entrypoint, user, volume paths, its
``seed:`` settings). Any change makes a new key, so a new snapshot; ``gc`` removes the old one.

**Form**: the image ``stacklet-snapshot/<stack>-<service>:<key>``: the prepared container
committed (its own files), plus the content of each of its volumes added at the same path, owners
and modes kept.

**Restore**: a store started from its snapshot mounts no volume of its own where the snapshot holds
its data (``_data_in_layers``): it reads the data from the image's layers and writes to its own
layer, which copies a file on its first write only. With a volume there, Docker copied the whole
data into it at ``docker create`` first: 3.5-4.2 s for the shop's seeded PostgreSQL (78 MB, 1,900
files) under load 6-9, against 0.05 s without. A named volume another service of the slice mounts
too is kept (they share its data), and an image's own ``VOLUME`` still gets a volume filled with a
copy (Docker cannot be told otherwise), so such stores restore as before, only slower.

**Consistency**: the store flushes (``Seeder.flush``: CHECKPOINT, SAVE), then it is stopped the way
it asks to be (its stop signal: PostgreSQL shuts down cleanly), its files copied and committed, and
it is started again. A clean data directory matters for the layers: a PostgreSQL that finds a
crashed one (as a paused copy was) recovers and fsyncs every file of it at start, and in a layer
each such file is copied up first (7-8 s to ready, against 0.2-0.3 s from a clean one).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from stacklet.config.stack import Stack, load_source
from stacklet.docker.models import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import StackletError
from stacklet.labels import PREFIX, Label, parse_utc, utc_text
from stacklet.planning.plan import SlicePlan, make_plan
from stacklet.planning.render import render
from stacklet.runtime.seeds import seed_files, seed_plan

SNAPSHOT_REPOSITORY = "stacklet-snapshot"
SNAPSHOT_FORM = 2
"""Part of every key: snapshots of an earlier form (a paused, crash-consistent copy) are not reused."""
CONFIG_KEYS = ("environment", "command", "entrypoint", "user", "working_dir", "tmpfs")
"""The parts of a store's Compose spec that shape its prepared data (ports, labels, networks do not)."""


class SnapshotChoice(BaseModel):
    """What a boot does with one seeded store: start it from snapshot ``key``, or prepare it and keep one."""

    service: str = Field(description="the stack's name of the store")
    key: str
    image: str = Field(description="the snapshot image (present or to be made)")
    present: bool = Field(description="the snapshot exists: the store starts from it")
    jobs: list[str] = Field(default_factory=list, description="jobs that prepare it (not run when present)")

    @property
    def source(self) -> str:
        return f"snapshot:{self.key}"


def snapshot_tag(stack: str, service: str, key: str) -> str:
    """The image name of a store's snapshot."""
    name = re.sub(r"[^a-z0-9_.-]", "-", f"{stack}-{service}".lower()).strip("-.") or "store"
    return f"{SNAPSHOT_REPOSITORY}/{name}:{key}"


def store_config(spec: dict[str, Any], seed_config: Any = None) -> dict[str, Any]:
    """The part of a store's rendered spec (and of its ``seed:`` settings) that goes into its key."""
    volumes = sorted(str(v.get("target") if isinstance(v, dict) else str(v).split(":")[1 if ":" in str(v) else 0])
                     for v in spec.get("volumes") or [])
    seed = seed_config.model_dump(mode="json") if seed_config is not None else None
    return {**{k: spec.get(k) for k in CONFIG_KEYS}, "volumes": volumes, "seed": seed}


def snapshot_key(store_image: str, files: list[Path], job_images: dict[str, Any],
                 config: dict[str, Any]) -> str:
    """The key of a store's prepared data: image id, seed files (name and content), jobs' images and
    configuration (a job run with other environment or command may write other data), the store's config."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"image": store_image, "jobs": job_images, "config": config, "form": SNAPSHOT_FORM},
                             sort_keys=True, default=str).encode())
    for file in files:
        digest.update(f"\0{file.name}\0".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:16]


def choose(driver: EngineDriver, plan: SlicePlan, services: dict[str, Any], stack: Stack,
           seeded: list[str]) -> dict[str, SnapshotChoice]:
    """Compose key -> the snapshot choice of each seeded store of the slice (built images must exist).

    A store is snapshotted when it is stateful and has seed files; its images (and its jobs') are
    read from the engine, so this runs after the build. A store whose image cannot be found is left out.
    """
    compose = {svc.name: svc.compose_name for svc in plan.local}
    files = {name: seed_files(stack, name) for name in seeded}
    stores = [svc for svc in plan.local if svc.stateful and files.get(svc.name) and svc.compose_name in services]
    refs = {services[s.compose_name].get("image") for s in stores}
    refs |= {services[compose[j]].get("image") for s in stores for j in s.seed_after if compose.get(j) in services}
    ids = driver.image_ids(sorted(r for r in refs if r))
    choices: dict[str, SnapshotChoice] = {}
    for store in stores:
        spec = services[store.compose_name]
        jobs = [j for j in store.seed_after if compose.get(j) in services]
        image = ids.get(spec.get("image") or "")
        job_ids = {j: ids.get(services[compose[j]].get("image") or "") for j in jobs}
        if not image or not all(job_ids.values()):
            continue
        job_images = {j: {"image": job_ids[j], "config": store_config(services[compose[j]])} for j in jobs}
        key = snapshot_key(image, files[store.name], job_images,
                           store_config(spec, stack.service_meta(store.name).seed))
        choices[store.compose_name] = SnapshotChoice(service=store.name, key=key,
                                                     image=snapshot_tag(plan.stack, store.name, key),
                                                     present=False, jobs=jobs)
    present = driver.image_ids([c.image for c in choices.values()])
    return {k: c.model_copy(update={"present": c.image in present}) for k, c in choices.items()}


def preview(driver: EngineDriver, plan: SlicePlan, stack: Stack) -> dict[str, SnapshotChoice]:
    """Store -> its snapshot choice for ``plan``, as a boot would make it now (empty when snapshots are off,
    no engine answers, or its images are not built yet)."""
    files = seed_plan(stack, [s.name for s in plan.local])
    if not stack.meta.snapshots or not files:
        return {}
    try:
        choices = choose(driver, plan, render(plan, stack, "plan")["services"], stack, list(files))
    except StackletError:
        return {}
    return {c.service: c for c in choices.values()}


def restore(spec: dict[str, Any], choices: dict[str, SnapshotChoice], plan: SlicePlan) -> set[str]:
    """Point each store of the rendered project ``spec`` whose snapshot is present at it (no build), with its
    data in the image's layers (``_data_in_layers``), label it with the key, and label the jobs that prepare
    only restored stores as satisfied; returns the Compose keys of those jobs (not to start)."""
    services = spec["services"]
    compose = {svc.name: svc.compose_name for svc in plan.local}
    restored = {k: c for k, c in choices.items() if c.present}
    for key, choice in restored.items():
        services[key]["image"] = choice.image
        services[key].pop("build", None)
        services[key]["labels"][Label.SNAPSHOT] = choice.key
        _data_in_layers(spec, key)
    prepares: dict[str, list[str]] = {}
    for key, choice in choices.items():
        for job in choice.jobs:
            prepares.setdefault(compose[job], []).append(key)
    satisfied = set()
    for job, stores in prepares.items():
        if all(s in restored for s in stores):
            services[job]["labels"][Label.SATISFIED_BY] = ",".join(sorted(restored[s].source for s in stores))
            satisfied.add(job)
    return satisfied


def _data_in_layers(spec: dict[str, Any], key: str) -> None:
    """Drop the volumes of store ``key`` (its snapshot holds their data) unless another service mounts the same
    named volume; drop top-level volumes nothing mounts any more. Bind mounts and tmpfs stay."""
    services = spec["services"]

    def volume(mount: Any) -> bool:
        return isinstance(mount, dict) and mount.get("type") == "volume"
    shared = {m.get("source") for other, s in services.items() if other != key
              for m in s.get("volumes") or [] if volume(m) and m.get("source")}
    mounts = services[key].get("volumes") or []
    kept = [m for m in mounts if not volume(m) or m.get("source") in shared]
    if len(kept) == len(mounts):
        return
    services[key]["volumes"] = kept
    if not kept:
        del services[key]["volumes"]
    used = {m.get("source") for s in services.values() for m in s.get("volumes") or [] if volume(m)}
    spec["volumes"] = {n: v for n, v in (spec.get("volumes") or {}).items() if n in used}
    if not spec["volumes"]:
        del spec["volumes"]


def take(driver: EngineDriver, info: ContainerInfo, choice: SnapshotChoice, source: str) -> Callable[[], str]:
    """Capture the prepared data of a running store for its snapshot: stop it the way it asks to be, copy its
    volumes, commit its files, start it again (the caller waits until it is ready). Returns the rest of the
    work, which needs the store no more: building the snapshot image (returns its id), so a boot lets it run
    while it goes on. Another boot that made the same snapshot meanwhile wins (same key, same data)."""
    existing = driver.image_id(choice.image)
    if existing:
        return lambda: existing
    labels = {Label.SNAPSHOT: choice.key, Label.SNAPSHOT_OF: f"{info.labels.get(Label.STACK, '')}/{choice.service}",
              Label.SNAPSHOT_SOURCE: source}
    # a commit keeps the container's labels: those of the slice and of Compose are blanked (Docker cannot
    # drop a label), so a store started from the snapshot carries only the labels of its own slice
    blanked = {k: "" for k in info.labels if k.startswith((PREFIX + ".", "com.docker.compose."))}
    folder = Path(tempfile.mkdtemp(prefix="stacklet-snapshot-"))
    archives = []
    driver.stop([info.id])
    try:
        for index, path in enumerate(info.volume_paths):
            archive = folder / f"volume-{index}.tar"
            driver.copy_out(info.id, path, archive)
            archives.append((archive.name, str(Path(path).parent)))
        committed = driver.commit(info.id, {}, pause=False)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        driver.start([info.id])

    def build() -> str:
        lines = [f"FROM {committed}"] + [f"ADD {name} {parent.rstrip('/')}/" for name, parent in archives]
        # one LABEL instruction: the classic builder makes a layer per instruction
        lines.append("LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in {**blanked, **labels}.items()))
        (folder / "Dockerfile").write_text("\n".join(lines) + "\n")
        try:
            return driver.build_folder(folder, choice.image)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return build


class SnapshotStep:
    """The snapshot part of one boot: which stores start from a snapshot, and keeping the missing ones."""

    def __init__(self, driver: EngineDriver, choices: dict[str, SnapshotChoice], source: str):
        self.driver = driver
        self.choices = choices
        self.source = source
        self.builds: dict[str, Future] = {}
        self._builder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshot")

    @property
    def restored(self) -> dict[str, SnapshotChoice]:
        """Stack service name -> the choice of each store that starts from its snapshot."""
        return {c.service: c for c in self.choices.values() if c.present}

    def seed_and_keep(self, seed: Callable[[str, ContainerInfo], Any], flush: Callable[[str, ContainerInfo], None],
                      ready: Callable[[ContainerInfo], Any]) -> Callable[[str, ContainerInfo], Any]:
        """``seed`` followed, for a store without its snapshot yet, by ``flush``, taking it (before its
        dependents start, so nothing but its jobs and seeds wrote to it) and waiting until it is ``ready``
        again after its restart."""
        missing = {c.service: c for c in self.choices.values() if not c.present}

        def seeded(service: str, info: ContainerInfo) -> Any:
            result = seed(service, info)
            if service in missing:
                flush(service, info)
                self.builds[service] = self._builder.submit(take(self.driver, info, missing[service], self.source))
                ready(info)
            return result
        return seeded

    def finish(self) -> None:
        """Wait for the snapshot images still being built (they were built while the boot went on); the first
        failure raises."""
        try:
            for build in self.builds.values():
                build.result()
        finally:
            self._builder.shutdown(wait=True)

    def failures(self) -> list[str]:
        """Wait for the snapshot images still being built, for a boot that failed for another reason; what each
        build that failed said (so the boot's error reports it too)."""
        self._builder.shutdown(wait=True)
        keys = {c.service: c.key for c in self.choices.values()}
        return [f"the snapshot of {service} ({keys.get(service)}) was not kept: {build.exception()}"
                for service, build in self.builds.items() if build.exception() is not None]


# -- gc --------------------------------------------------------------------------------------------

UNUSED_DAYS = 7
"""A snapshot no boot started from for this long is removed even when its key is still current."""


class SnapshotGcDecision(BaseModel):
    """What gc does with one snapshot image, and why."""

    image: str
    store: str = Field(description="<stack>/<service>")
    key: str
    reason: str
    remove: bool


def current_key(driver: EngineDriver, stack: Stack, service: str) -> str | None:
    """The key a boot would use for ``service`` of ``stack`` now (None: not a seeded store, or not built)."""
    plan = make_plan(stack, [service])
    services = render(plan, stack, "gc")["services"]
    files = seed_plan(stack, [s.name for s in plan.local])
    choices = choose(driver, plan, services, stack, list(files))
    return next((c.key for c in choices.values() if c.service == service), None)


def collect(driver: EngineDriver, workdir: Path, now: datetime, dry_run: bool = False) -> list[SnapshotGcDecision]:
    """Decide on every snapshot image, and remove the stale ones (unless ``dry_run``).

    The rule: a snapshot a container still uses is kept. Otherwise it is removed when its key is not the
    current key of its store (its stack file is gone, the store is no longer a seeded store of it, or an
    image, seed file or config that made it changed), or when no boot started from it for ``UNUSED_DAYS``
    (its last use is recorded under the workdir's ``snapshots/`` at each boot that starts from it)."""
    used = {c.image for c in driver.containers({Label.SLICE: ""})} | {c.image for c in driver.containers(
        {Label.BASELINE: ""})}
    load = functools.cache(load_source)  # each stack file read once per gc
    decisions = []
    for image in driver.images({Label.SNAPSHOT_OF: ""}):
        store, key = image.labels.get(Label.SNAPSHOT_OF, "?/?"), image.labels.get(Label.SNAPSHOT, "")
        stack_name, _, service = store.partition("/")
        name = next(iter(image.tags), image.id)
        reason, remove = "in use by a container", False
        if image.id not in used:
            source = image.labels.get(Label.SNAPSHOT_SOURCE, "")
            stack = load(source)
            current = current_key(driver, stack, service) if stack and service in stack.services else None
            last = max(filter(None, [parse_utc(image.created[:19] + "Z"), last_use(workdir, key)]), default=None)
            if stack is None:
                reason, remove = f"its stack file {source or '?'} is gone", True
            elif current != key:
                reason, remove = (f"stale: {service} now has key {current}" if current else
                                  f"stale: {service} is not a built, seeded store of {stack_name} now"), True
            elif last and now - last > timedelta(days=UNUSED_DAYS):
                reason, remove = f"not used for {UNUSED_DAYS} days (last {utc_text(last)})", True
            else:
                reason = "current key"
        if remove and not dry_run:
            remove = driver.remove_image(name) or dry_run
        decisions.append(SnapshotGcDecision(image=name, store=store, key=key, reason=reason, remove=remove))
    return decisions


def record_use(workdir: Path, keys: list[str]) -> None:
    """Note that a boot started from these snapshots (gc's "unused for long" reads it)."""
    folder = workdir / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    for key in keys:
        (folder / key).write_text(utc_text(datetime.now(timezone.utc)))


def last_use(workdir: Path, key: str) -> datetime | None:
    """When a boot last started from snapshot ``key`` (None: never recorded here)."""
    marker = workdir / "snapshots" / key
    return parse_utc(marker.read_text().strip()) if marker.is_file() else None

