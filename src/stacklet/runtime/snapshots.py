"""Seeded snapshots: a store's data once its jobs ran and its seeds loaded, kept as an image.

The first boot of a seeded store prepares it (initdb, the jobs that prepare it, its seeds) and then
keeps a snapshot; later boots start the store from it: no initdb, its jobs are not run (each is
labelled ``satisfied-by``), no seeding.

**Key** (``snapshot_key``): a hash of everything that made the data: the store's image id, the name
and content of each seed file, the image id of every job that prepares it, and the store's
configuration that shapes its data (environment, command, entrypoint, user, volume paths, its
``seed:`` settings). Any change makes a new key, so a new snapshot; ``gc`` removes the old one.

**Form**: the image ``stacklet-snapshot/<stack>-<service>:<key>``: the prepared container
committed (its own files: images without a ``VOLUME``), plus the content of each of its volumes
added at the same path, owners and modes kept. A container created from it copies that content
into its new, empty volumes (Docker does so for named volumes and for an image's ``VOLUME``s), so
nothing runs before the store starts. An image rather than a snapshot volume: restoring a volume
needs a helper container per boot (measured 1.40 s vs 1.55 s to a ready PostgreSQL under load 5,
the same within noise), while an image restores within ``docker create`` and needs no change to
the rendered project beyond its ``image:``.

**Consistency**: the store flushes first (``Seeder.flush``: CHECKPOINT, SAVE), then it is paused
while its files are copied and committed.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from stacklet.docker.driver import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import DockerError
from stacklet.labels import Label
from stacklet.planning.plan import SlicePlan

SNAPSHOT_REPOSITORY = "stacklet-snapshot"
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


def snapshot_key(store_image: str, seed_files: list[Path], job_images: dict[str, str],
                 config: dict[str, Any]) -> str:
    """The key of a store's prepared data: image id, seed files (name and content), jobs' images, config."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"image": store_image, "jobs": job_images, "config": config}, sort_keys=True,
                             default=str).encode())
    for file in seed_files:
        digest.update(f"\0{file.name}\0".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:16]


def choose(driver: EngineDriver, plan: SlicePlan, services: dict[str, Any],
           seed_files: dict[str, list[Path]], seed_configs: dict[str, Any]) -> dict[str, SnapshotChoice]:
    """Compose key -> the snapshot choice of each seeded store of the slice (built images must exist).

    A store is snapshotted when it is stateful and has seed files; its images (and its jobs') are
    read from the engine, so this runs after the build. A store whose image cannot be found is left out.
    """
    compose = {svc.name: svc.compose_name for svc in plan.local}
    stores = [svc for svc in plan.local if svc.stateful and seed_files.get(svc.name)
              and svc.compose_name in services]
    refs = {services[s.compose_name].get("image") for s in stores}
    refs |= {services[compose[j]].get("image") for s in stores for j in s.seed_after if compose.get(j) in services}
    ids = driver.image_ids(sorted(r for r in refs if r))
    choices: dict[str, SnapshotChoice] = {}
    for store in stores:
        spec = services[store.compose_name]
        jobs = [j for j in store.seed_after if compose.get(j) in services]
        image = ids.get(spec.get("image") or "")
        job_images = {j: ids.get(services[compose[j]].get("image") or "") for j in jobs}
        if not image or not all(job_images.values()):
            continue
        key = snapshot_key(image, seed_files[store.name], job_images, store_config(spec, seed_configs.get(store.name)))
        choices[store.compose_name] = SnapshotChoice(service=store.name, key=key,
                                                     image=snapshot_tag(plan.stack, store.name, key),
                                                     present=False, jobs=jobs)
    present = driver.image_ids([c.image for c in choices.values()])
    return {k: c.model_copy(update={"present": c.image in present}) for k, c in choices.items()}


def restore(services: dict[str, Any], choices: dict[str, SnapshotChoice], plan: SlicePlan) -> set[str]:
    """Point each store whose snapshot is present at it (no build), label it with the key, and label the jobs
    that prepare only restored stores as satisfied; returns the Compose keys of those jobs (not to start)."""
    compose = {svc.name: svc.compose_name for svc in plan.local}
    restored = {k: c for k, c in choices.items() if c.present}
    for key, choice in restored.items():
        services[key]["image"] = choice.image
        services[key].pop("build", None)
        services[key]["labels"][Label.SNAPSHOT] = choice.key
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


def take(driver: EngineDriver, info: ContainerInfo, choice: SnapshotChoice, source: str) -> str:
    """Keep the prepared data of a running store as its snapshot image; returns the image id.

    The store is paused while its volumes are copied and its files committed. Another boot that made
    the same snapshot meanwhile wins (same key, same data)."""
    existing = driver.image_id(choice.image)
    if existing:
        return existing
    labels = {Label.SNAPSHOT: choice.key, Label.SNAPSHOT_OF: f"{info.labels.get(Label.STACK, '')}/{choice.service}",
              Label.SNAPSHOT_SOURCE: source}
    with tempfile.TemporaryDirectory(prefix="stacklet-snapshot-") as folder:
        paused = _pause(driver, info.id)
        try:
            archives = []
            for index, path in enumerate(info.volume_paths):
                archive = Path(folder) / f"volume-{index}.tar"
                driver.copy_out(info.id, path, archive)
                archives.append((archive.name, str(Path(path).parent)))
            committed = driver.commit(info.id, labels if not archives else {}, pause=False)
        finally:
            if paused:
                driver.unpause(info.id)
        if not archives:
            driver.tag_image(committed, choice.image)
            return committed
        lines = [f"FROM {committed}"] + [f"ADD {name} {parent.rstrip('/')}/" for name, parent in archives]
        lines += [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
        (Path(folder) / "Dockerfile").write_text("\n".join(lines) + "\n")
        return driver.build_folder(Path(folder), choice.image)


def _pause(driver: EngineDriver, container_id: str) -> bool:
    """Pause a store while it is copied; an engine that cannot freeze (no cgroup freezer, or a freeze that
    times out under load) copies it running: its data was flushed and nothing but its boot writes to it yet."""
    try:
        driver.pause(container_id)
    except DockerError:
        return False
    return True


class SnapshotStep:
    """The snapshot part of one boot: which stores start from a snapshot, and keeping the missing ones."""

    def __init__(self, driver: EngineDriver, choices: dict[str, SnapshotChoice], source: str):
        self.driver = driver
        self.choices = choices
        self.source = source
        self.taken: dict[str, str] = {}

    @property
    def restored(self) -> dict[str, SnapshotChoice]:
        """Stack service name -> the choice of each store that starts from its snapshot."""
        return {c.service: c for c in self.choices.values() if c.present}

    def seed_and_keep(self, seed: Callable[[str, ContainerInfo], Any],
                      flush: Callable[[str, ContainerInfo], None]) -> Callable[[str, ContainerInfo], Any]:
        """``seed`` followed, for a store without its snapshot yet, by ``flush`` and taking it (before its
        dependents start, so nothing but its jobs and seeds wrote to it)."""
        missing = {c.service: c for c in self.choices.values() if not c.present}

        def seeded(service: str, info: ContainerInfo) -> Any:
            result = seed(service, info)
            if service in missing:
                flush(service, info)
                self.taken[service] = take(self.driver, info, missing[service], self.source)
            return result
        return seeded
