"""An in-memory ``EngineDriver`` for unit tests of the runtime's decisions (no Docker).

A project's ``create`` reads the generated Compose file and makes one container per service, with
the labels Compose would put on it. What each container does once started is scripted per service:
a list of states it shows on successive inspections, the last one staying, e.g.
``["running:starting", "running:healthy"]``, ``["running"]`` or ``["running", "exited:1"]``.
Every start, removal and compose call is recorded in ``calls`` for the tests to read.
"""

from __future__ import annotations

import fnmatch
import itertools
import shlex
import threading
from datetime import datetime
from pathlib import Path

import yaml

from stacklet.docker.models import ContainerInfo, ContainerUsage, EngineInfo, ExecResult, ImageInfo
from stacklet.labels import Label

_ids = itertools.count(1)


class FakeProject:
    """A Compose project of the fake engine."""

    def __init__(self, driver: "FakeDriver", compose_file: Path, name: str):
        self.driver = driver
        self.file = compose_file
        self.name = name

    def build(self, services: list[str]) -> None:
        self.driver.calls.append(("build", tuple(services)))
        spec = yaml.safe_load(self.file.read_text()) if self.file.is_file() else {"services": {}}
        for service in services:
            if service in self.driver.broken_builds:
                from stacklet.errors import DockerError
                raise DockerError(f"docker failed to build {service}", details="build failed")
            tag = (spec["services"].get(service) or {}).get("image")
            if tag:
                build = (spec["services"].get(service) or {}).get("build")
                self.driver.add_image(tag, (build or {}).get("labels") if isinstance(build, dict) else None)

    def create(self) -> None:
        self.driver.calls.append(("create", self.name))
        spec = yaml.safe_load(self.file.read_text())
        for key, service in spec["services"].items():
            existing = [c for c in self.driver.all.values()
                        if c.labels.get(Label.COMPOSE_PROJECT) == self.name and c.compose_service == key]
            if existing:
                continue
            labels = {**(service.get("labels") or {}), Label.COMPOSE_PROJECT: self.name,
                      Label.COMPOSE_SERVICE: key}
            cid = f"c{next(_ids)}"
            health = "starting" if service.get("healthcheck") or key in self.driver.with_healthcheck else None
            ports = {int(p["target"]): 40000 + next(_ids) for p in service.get("ports") or []
                     if isinstance(p, dict) and p.get("protocol", "tcp") == "tcp"}
            image = self.driver.images_by_tag.get(service.get("image") or "", f"img-{key}")
            self.driver.all[cid] = ContainerInfo(id=cid, name=f"{self.name}-{key}-1", labels=labels, state="created",
                                                 health=health, image=image, ports=ports,
                                                 healthcheck=((service.get("healthcheck") or {}).get("test")
                                                              or ["CMD", "true"]) if health else [],
                                                 volume_paths=sorted(str(v).split(":")[-1] if isinstance(v, str)
                                                                     else v.get("target", "")
                                                                     for v in service.get("volumes") or []))
        for network in (spec.get("networks") or {}).values():
            if isinstance(network, dict) and network.get("name") and not network.get("external"):
                self.driver.nets[network["name"]] = dict(network.get("labels") or {})

    def recreate(self, services: list[str]) -> None:
        self.driver.calls.append(("recreate", tuple(services)))

    def up_wait(self, timeout_s: int) -> None:
        self.driver.calls.append(("up_wait", self.name))

    def down(self, remove_images: bool = True) -> None:
        self.driver.calls.append(("down", self.name))
        for cid in [c.id for c in self.driver.all.values() if c.labels.get(Label.COMPOSE_PROJECT) == self.name]:
            del self.driver.all[cid]
        self.driver.nets.pop(self.name, None)


class FakeDriver:
    """Containers, networks and volumes in memory; containers follow their service's script once started."""

    endpoint = "the fake engine"
    publish_ip = "127.0.0.1"

    def reach(self, host_ip: str, host_port: int) -> str:
        return f"127.0.0.1:{host_port}"

    def release(self, host_ports: list[int]) -> None:
        self.released = [*getattr(self, "released", []), *host_ports]

    def __init__(self, scripts: dict[str, list[str]] | None = None, *, with_healthcheck: set[str] = frozenset(),
                 broken_builds: set[str] = frozenset()):
        self.scripts = scripts or {}
        self.with_healthcheck = set(with_healthcheck)
        self.broken_builds = set(broken_builds)
        self.all: dict[str, ContainerInfo] = {}
        self.nets: dict[str, dict[str, str]] = {}
        self.vols: dict[str, dict[str, str]] = {}
        self.progress: dict[str, int] = {}
        self.calls: list[tuple] = []
        self.logs: dict[str, str] = {}
        self.memory: dict[str, int] = {}  # service -> bytes that `stats` reports
        self.images_by_tag: dict[str, str] = {}
        self.image_labels: dict[str, dict[str, str]] = {}
        self.execs: list[tuple[str, tuple[str, ...]]] = []
        self.lock = threading.Lock()

    # -- engine -----------------------------------------------------------------------------

    def engine_info(self) -> EngineInfo:
        return EngineInfo(endpoint=self.endpoint, server_version="0", api_version="0", os="fake", cpus=2,
                          memory_bytes=1 << 30)

    def image_exists(self, tag: str) -> bool:
        return True

    def build_image(self, context: Path, tag: str) -> None:
        self.calls.append(("build_image", tag))

    def remove_image_if_unused(self, image_id: str) -> bool:
        self.calls.append(("remove_image", image_id))
        return True

    def add_image(self, tag: str, labels: dict[str, str] | None = None) -> str:
        """An image under ``tag`` (test helper; what a build or a snapshot leaves)."""
        image_id = self.images_by_tag.setdefault(tag, f"sha256:{abs(hash(tag)):x}-{next(_ids)}")
        self.image_labels[image_id] = dict(labels or {})
        return image_id

    def image_id(self, ref: str) -> str | None:
        return self.images_by_tag.get(ref)

    def image_ids(self, refs: list[str]) -> dict[str, str]:
        return {r: self.images_by_tag[r] for r in refs if r in self.images_by_tag}

    def images(self, labels: dict[str, str], repository: str | None = None) -> list[ImageInfo]:
        tags: dict[str, list[str]] = {}
        for tag, image_id in self.images_by_tag.items():
            tags.setdefault(image_id, []).append(tag)
        return [ImageInfo(id=i, tags=t, labels=self.image_labels.get(i, {})) for i, t in tags.items()
                if _matches(self.image_labels.get(i, {}), labels)
                and (repository is None or any(fnmatch.fnmatch(tag.rpartition(":")[0], repository) for tag in t))]

    def remove_image(self, ref: str) -> bool:
        self.calls.append(("remove_image", ref))
        if any(c.image == self.images_by_tag.get(ref) for c in self.all.values()):
            return False
        return self.images_by_tag.pop(ref, None) is not None

    def tag_image(self, source: str, tag: str) -> None:
        self.images_by_tag[tag] = source

    def copy_out(self, container_id: str, path: str, archive: Path) -> None:
        self.calls.append(("copy_out", self.all[container_id].service, path))
        archive.write_bytes(b"")

    def commit(self, container_id: str, labels: dict[str, str], pause: bool = True) -> str:
        self.calls.append(("commit", self.all[container_id].service))
        image_id = f"sha256:commit-{next(_ids)}"
        self.image_labels[image_id] = dict(labels)
        return image_id

    def build_folder(self, folder: Path, tag: str) -> str:
        dockerfile = (folder / "Dockerfile").read_text()
        labels = dict(pair.split("=", 1) for line in dockerfile.splitlines() if line.startswith("LABEL ")
                      for pair in shlex.split(line.removeprefix("LABEL ")))  # key="value" pairs, as Docker reads them
        self.calls.append(("build_folder", tag))
        return self.add_image(tag, labels)

    # -- containers -------------------------------------------------------------------------

    def containers(self, labels: dict[str, str] | None = None) -> list[ContainerInfo]:
        return [self._advance(c.id, look=False) for c in self.all.values() if _matches(c.labels, labels)]

    def inspect(self, container_ids: list[str]) -> list[ContainerInfo]:
        found = [self._by_name_or_id(ref) for ref in container_ids]
        return [self._advance(c.id) for c in found if c is not None]

    def start(self, container_ids: list[str]) -> None:
        self.calls.append(("start", tuple(sorted(self.all[c].compose_service for c in container_ids))))
        for cid in container_ids:
            self.progress[cid] = 0
            self.all[cid] = self.all[cid].model_copy(update={"state": "running"})

    def stop(self, container_ids: list[str]) -> None:
        self.calls.append(("stop", tuple(sorted(self.all[c].compose_service for c in container_ids))))
        for cid in container_ids:
            self.progress.pop(cid, None)  # a stopped container shows "exited" until started again
            self.all[cid] = self.all[cid].model_copy(update={"state": "exited", "exit_code": 0})

    def restart(self, container_ids: list[str], timeout_s: int = 5) -> None:
        self.calls.append(("restart", tuple(self.all[c].compose_service for c in container_ids)))
        self.start(container_ids)

    def kill(self, service: str) -> None:
        """What `docker kill` does to a service's container (test helper)."""
        cid = next(c.id for c in self.all.values() if c.service == service)
        self.scripts[self.all[cid].compose_service] = ["exited:137"]
        self.progress[cid] = 0

    def _advance(self, cid: str, look: bool = True) -> ContainerInfo:
        info = self.all[cid]
        if cid not in self.progress:
            return info  # never started
        script = self.scripts.get(info.compose_service) or self.scripts.get(info.service) or ["running:healthy"]
        step = script[min(self.progress[cid], len(script) - 1)]
        if look:
            self.progress[cid] += 1
        state, _, detail = step.partition(":")
        update: dict = {"state": state}
        if state == "running" and info.health is not None:
            update["health"] = detail or "healthy"
        if state == "exited":
            update["exit_code"] = int(detail or 0)
        self.all[cid] = info.model_copy(update=update)
        return self.all[cid]

    def pause(self, container_ids: list[str]) -> None:
        self.calls.append(("pause", len(container_ids)))
        for cid in container_ids:
            self.progress.pop(cid, None)  # a paused container shows "paused" until unpaused
            self.all[cid] = self.all[cid].model_copy(update={"state": "paused"})

    def unpause(self, container_ids: list[str]) -> None:
        self.calls.append(("unpause", len(container_ids)))
        for cid in container_ids:
            self.progress[cid] = 0
            self.all[cid] = self.all[cid].model_copy(update={"state": "running"})

    def create_record(self, name: str, image: str, labels: dict[str, str]) -> str:
        if any(c.name == name for c in self.all.values()):
            from stacklet.errors import DockerError
            raise DockerError(f"docker failed to create container {name}", details="name already in use")
        cid = f"r{next(_ids)}"
        self.all[cid] = ContainerInfo(id=cid, name=name, labels=dict(labels), state="created", image=image)
        return cid

    def rename(self, container: str, new_name: str) -> bool:
        """Atomic like the engine's: the first caller wins, a gone source or a taken name loses."""
        with self.lock:
            found = self._by_name_or_id(container)
            if found is None or any(c.name == new_name for c in self.all.values()):
                return False
            self.all[found.id] = found.model_copy(update={"name": new_name})
            return True

    def _by_name_or_id(self, ref: str) -> ContainerInfo | None:
        return self.all.get(ref) or next((c for c in self.all.values() if c.name == ref), None)

    # -- networks and volumes ---------------------------------------------------------------

    def networks(self, labels: dict[str, str]) -> list[str]:
        return [n for n, l in self.nets.items() if _matches(l, labels)]

    def network_exists(self, name: str) -> bool:
        return name in self.nets

    def volumes(self, labels: dict[str, str]) -> list[str]:
        return [n for n, l in self.vols.items() if _matches(l, labels)]

    def labelled_networks(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        return {n: l for n, l in self.nets.items() if _matches(l, labels)}

    def labelled_volumes(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        return {n: l for n, l in self.vols.items() if _matches(l, labels)}

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        self.vols[name] = dict(labels)

    def remove(self, *, containers=(), networks=(), volumes=()) -> None:
        if containers:
            self.calls.append(("remove", tuple(sorted(self.all[c].compose_service for c in containers if c in self.all))))
        for cid in containers:
            self.all.pop(cid, None)
        for name in networks:
            self.nets.pop(name, None)
        for name in volumes:
            self.vols.pop(name, None)

    # -- logs, exec, attach -----------------------------------------------------------------

    def container_logs(self, container_id: str, tail: int | None = None, since: datetime | None = None,
                       timestamps: bool = False) -> str:
        info = self.all.get(container_id)
        return self.logs.get(info.service if info else "", "") if info else ""

    def events(self, labels, since, until):
        return []

    def stats(self, container_ids):
        return [ContainerUsage(container=cid, memory_bytes=self.memory.get(self.all[cid].service, 0), cpu_percent=0.0)
                for cid in container_ids if cid in self.all and self.all[cid].state == "running"]

    def follow_logs(self, container_ids, tail=None):
        return iter(())

    def exec(self, container_id, argv, stdin=None, timeout_s=300) -> ExecResult:
        self.execs.append((self.all[container_id].service if container_id in self.all else container_id,
                           tuple(argv)))
        return ExecResult(returncode=0, stdout="", stderr="")

    def self_container(self):
        return None

    def connect(self, network: str, container: str) -> None:
        pass

    def disconnect(self, network: str, container: str) -> None:
        pass

    def network_containers(self, network: str) -> list[str]:
        return []

    def project(self, compose_file: Path, project_name: str) -> FakeProject:
        return FakeProject(self, compose_file, project_name)

    # -- what happened ----------------------------------------------------------------------

    def started(self) -> list[tuple[str, ...]]:
        """The batches of services started, in order."""
        return [c[1] for c in self.calls if c[0] == "start"]


def _matches(have: dict[str, str], wanted: dict[str, str] | None) -> bool:
    return all(k in have and (not v or have[k] == v) for k, v in (wanted or {}).items())
