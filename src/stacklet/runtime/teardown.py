"""Removing what runs, in one place: a slice (on ``down``, ``gc`` or a failed boot) or a baseline,
and the lifetime labels that let ``gc`` tell a finished boot from an orphaned one."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from stacklet.docker.protocol import EngineDriver
from stacklet.errors import DockerError, PlanError, SliceNotFound
from stacklet.labels import Label, baseline_project_name, marker_volume, slice_project_name, utc_text
from stacklet.planning import lifetime
from stacklet.planning.graph import dependency_layers
from stacklet.planning.lifetime import GcDecision, SliceResources
from stacklet.planning.plan import COMPOSE_FILE
from stacklet.runtime.observe import SliceReader


def _built_services(compose_file: Path) -> set[str]:
    """The services of a generated project that are built from local files."""
    if not compose_file.is_file():
        return set()
    spec = yaml.safe_load(compose_file.read_text()) or {}
    return {name for name, service in (spec.get("services") or {}).items() if (service or {}).get("build")}


class Teardown:
    """Removes slices and baselines and keeps their lifetime markers."""

    def __init__(self, driver: EngineDriver, workdir: Path, reader: SliceReader):
        self.driver = driver
        self.workdir = workdir
        self.reader = reader

    def slice_folder(self, name: str) -> Path:
        """Where the generated Compose project of slice ``name`` lives."""
        return self.workdir / "slices" / name

    def project(self, name: str):
        """The Compose project handle of slice ``name``."""
        return self.driver.project(self.slice_folder(name) / COMPOSE_FILE, slice_project_name(name))

    def down(self, name: str) -> None:
        """Remove slice ``name``: containers, network, volumes and its folder (its images, named by their
        sources, stay for other slices)."""
        if not self.driver.containers({Label.SLICE: name}) and not self.driver.networks({Label.SLICE: name}):
            raise SliceNotFound(f"no slice named {name!r} on {self.driver.endpoint}",
                                hint="`stacklet ls` lists the slices")
        self.remove_slice(name)

    def remove_slice(self, name: str, project=None) -> None:
        """Remove everything labelled with slice ``name`` (whatever state it is in) and its folder."""
        project = project or self.project(name)
        self._detach_all(name)
        labels = {Label.SLICE: name}
        self.driver.release([port for c in self.driver.containers(labels) for port in c.ports.values()])
        if project.file.is_file():
            try:
                project.down(remove_images=False)  # images are named by their sources and shared by slices
            except DockerError:
                pass  # whatever Compose could not remove is removed by label below
        self.driver.remove(containers=[c.id for c in self.driver.containers(labels)
                                       + self.driver.containers({Label.WARM_OF: name})  # its warm record
                                       + self.driver.containers({Label.WARM_TAKEN: name})])  # and its taken marker
        self.driver.remove(networks=self.driver.networks(labels), volumes=self.driver.volumes(labels))
        if project.file.parent == self.slice_folder(name):
            shutil.rmtree(self.slice_folder(name), ignore_errors=True)

    def baseline_down(self, stack_name: str, users: list[str], keep_images: bool = False) -> list[str]:
        """Remove the local baseline of ``stack_name`` (refused while slices in ``users`` use it), and the
        images it built unless ``keep_images`` (an image something else still uses stays). Returns the
        ids of the images removed."""
        labels = {Label.BASELINE: stack_name}
        containers = self.driver.containers(labels)
        if not containers:
            raise SliceNotFound(f"no baseline of stack {stack_name!r} runs", hint="nothing to stop")
        if users:
            raise PlanError(f"slices still use the baseline of {stack_name}: {', '.join(users)}",
                            hint="`stacklet down --all` first")
        compose_file = self.workdir / "baselines" / stack_name / COMPOSE_FILE
        built = _built_services(compose_file)
        images = sorted({c.image for c in containers if c.compose_service in built and c.image})
        project = self.driver.project(compose_file, baseline_project_name(stack_name))
        if compose_file.is_file():
            project.down(remove_images=False)
        self.driver.remove(containers=[c.id for c in self.driver.containers(labels)])
        self.driver.remove(networks=self.driver.networks(labels), volumes=self.driver.volumes(labels))
        shutil.rmtree(compose_file.parent, ignore_errors=True)
        if keep_images:
            return []
        return [image for image in images if self.driver.remove_image_if_unused(image)]

    def _detach_all(self, name: str) -> None:
        """Disconnect every container that is not the slice's own (this process's last) from its network,
        so the network can be removed."""
        network = slice_project_name(name)
        attached = self.driver.network_containers(network)
        if not attached:
            return
        own = {c.id for c in self.driver.containers({Label.SLICE: name})}
        me = self.driver.self_container()
        for cid in sorted(set(attached) - own, key=lambda c: not (me and c == me.id)):
            self.driver.disconnect(network, cid)

    # -- lifetime: boot deadline, boot marker, gc -------------------------------------------

    def set_boot_deadline(self, project, spec: dict, timeout_s: int) -> float:
        """Label the slice with the time its boot must finish by (the file is written again); monotonic deadline."""
        depends = {s: set(v.get("depends_on") or {}) for s, v in spec["services"].items()}
        budget = lifetime.boot_budget_s(timeout_s, len(dependency_layers(depends)))
        label = {Label.BOOT_DEADLINE: utc_text(datetime.now(timezone.utc) + timedelta(seconds=budget))}
        for section in ("services", "networks", "volumes"):
            for item in (spec.get(section) or {}).values():
                if isinstance(item, dict) and Label.SLICE in (item.get("labels") or {}):
                    item["labels"].update(label)
        project.file.write_text(yaml.safe_dump(spec, sort_keys=False))
        return time.monotonic() + budget

    def mark_booted(self, name: str, stack_name: str, result: str, expiry: dict[str, str]) -> None:
        """Create the marker volume that says the boot of ``name`` finished (``ready`` or ``kept``)."""
        self.driver.create_volume(marker_volume(name), {
            Label.SLICE: name, Label.STACK: stack_name, Label.MARKER: "boot",
            Label.BOOTED: utc_text(datetime.now(timezone.utc)), Label.BOOT_RESULT: result, **expiry})

    def clear_boot_marker(self, name: str) -> None:
        """Remove a marker left by an earlier slice of the same name (a new boot must not look finished)."""
        stale = self.driver.labelled_volumes({Label.SLICE: name, Label.MARKER: "boot"})
        if stale:
            self.driver.remove(volumes=list(stale))

    def gc(self, *, dry_run: bool = False, now: datetime | None = None,
           only: list[str] | None = None) -> list[GcDecision]:
        """Remove expired and orphaned slices, found by their labels; returns the decision on every slice.

        A slice whose boot is still within its deadline is never removed. ``dry_run`` removes nothing;
        ``only`` limits gc to the slices of those names.
        """
        now = now or datetime.now(timezone.utc)
        found: dict[str, SliceResources] = {}

        def of(labels: dict[str, str]) -> SliceResources:
            return found.setdefault(labels[Label.SLICE], SliceResources(labels[Label.SLICE]))

        for info in self.driver.containers({Label.SLICE: ""}):
            of(info.labels).containers.append(info.labels)
        for labels in self.driver.labelled_networks({Label.SLICE: ""}).values():
            of(labels).networks.append(labels)
        for labels in self.driver.labelled_volumes({Label.SLICE: ""}).values():
            of(labels).volumes.append(labels)
        decisions = [lifetime.classify(resources, now) for name, resources in sorted(found.items())
                     if only is None or name in only]
        for decision in decisions:
            if decision.remove and not dry_run:
                self.remove_slice(decision.slice)
        return decisions
