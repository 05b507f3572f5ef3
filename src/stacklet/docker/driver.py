"""The Docker driver: the only module that uses python-on-whales.

Docker's JSON is parsed into small pydantic models (docker/models.py) at this boundary, so the rest of
stacklet never sees python-on-whales objects. The endpoint follows the docker CLI: ``DOCKER_HOST``,
``DOCKER_CONTEXT`` or an explicit ``--context``. On an engine reached through its unix socket, the
calls a boot repeats (list, inspect, exec without stdin) go to the engine's API (docker/engine_api.py).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from stacklet.docker import whales
from stacklet.docker.compose_project import ComposeProjectHandle
from stacklet.docker.engine_api import EngineApi, local_socket
from stacklet.docker.engines import SshForwards, reach_address, remote_tcp_host
from stacklet.docker.errors import (ENGINE_HINT, docker_error, docker_output, engine_hint, is_already_done,
                                    is_missing)
from stacklet.docker.models import (ContainerEvent, ContainerInfo, ContainerUsage, EngineInfo, ExecResult, ImageInfo,
                                    info_from_inspect)
from stacklet.docker.selfcontainer import SelfContainer, find_self_container
from stacklet.labels import Label
from stacklet.errors import DockerError, EngineUnavailable


class Driver:
    """A Docker endpoint, and Compose projects on it."""

    def __init__(self, context: str | None = None, host: str | None = None, advertise: str | None = None):
        self.context = context
        self.host = host
        self.advertise = advertise
        socket_path = local_socket(context, host)
        self.api = EngineApi(socket_path) if socket_path else None
        self.forwards = SshForwards(host) if host and host.startswith("ssh://") else None

    @functools.cached_property
    def client(self):
        """The python-on-whales client of this endpoint, made on first use (see docker/whales.py)."""
        return whales.DockerClient(context=self.context, host=self.host)

    # -- where the client reaches what the engine publishes ---------------------------------

    @property
    def publish_ip(self) -> str:
        """The host address slices publish their ports on: the advertise address, else the engine's loopback."""
        return self.advertise or "127.0.0.1"

    @property
    def needs_advertise(self) -> bool:
        """Whether ports published on this engine's loopback are out of the client's reach with no way in:
        a ``tcp://`` engine on another host and no advertise address (``ssh://`` engines get local forwards)."""
        return not self.advertise and remote_tcp_host(self.host) is not None

    def reach(self, host_ip: str, host_port: int) -> str:
        """``host:port`` from which this client reaches a port the engine published on ``host_ip``."""
        return reach_address(host_ip, host_port, self.advertise, self.forwards)

    def release(self, host_ports: list[int]) -> None:
        """Close the local forwards of these published ports, and of ports no container publishes any more
        (ssh engines; nothing otherwise)."""
        if self.forwards:
            self.forwards.close(host_ports, lambda: {port for c in self.containers() for port in c.ports.values()})

    @property
    def endpoint(self) -> str:
        return self.host or (f"context {self.context}" if self.context else os.environ.get(
            "DOCKER_HOST", "the default socket (unix:///var/run/docker.sock)"))

    # -- engine -----------------------------------------------------------------------------

    def engine_info(self) -> EngineInfo:
        """Ask the engine who it is; raise EngineUnavailable when it does not answer."""
        try:
            version = self.client.version()
            info = self.client.info()
        except whales.DockerException as exc:
            details = docker_output(exc)
            raise EngineUnavailable(f"no Docker engine answers at {self.endpoint}",
                                    hint=engine_hint(details), details=details) from exc
        except FileNotFoundError as exc:
            raise EngineUnavailable("the docker CLI is not installed", hint=ENGINE_HINT) from exc
        server = version.server
        return EngineInfo(endpoint=self.endpoint, server_version=str(server.version),
                          api_version=str(server.api_version), os=str(info.operating_system),
                          cpus=int(info.n_cpu or 0), memory_bytes=int(info.mem_total or 0))

    def memory_in_use(self) -> int:
        """Bytes of memory the engine's running containers use now (one ``docker stats`` sample)."""
        stats = self._call(lambda: self.client.container.stats(all=False), "read container stats")
        return sum(int(s.memory_used or 0) for s in stats)

    def compose_version(self) -> str | None:
        """The Compose v2 plugin version, or None when it is missing."""
        try:
            return str(self.client.compose.version()).strip()
        except whales.DockerException:
            return None

    def image_exists(self, tag: str) -> bool:
        return self._call(lambda: self.client.image.exists(tag), f"inspect image {tag}")

    def build_image(self, context: Path, tag: str) -> None:
        """Build ``context`` (holding a Dockerfile) as ``tag``."""
        self._call(lambda: self.client.legacy_build(context, tags=[tag]), f"build image {tag} from {context}")

    def image_id(self, ref: str) -> str | None:
        """The id of a local image (tag or id), or None when there is none."""
        done = self._docker(["image", "inspect", "--format", "{{.Id}}", ref], f"inspect image {ref}", check=False)
        return done.stdout.decode().strip() or None if done.returncode == 0 else None

    def image_ids(self, refs: list[str]) -> dict[str, str]:
        """ref -> image id for the refs that exist locally, in one ``docker image inspect``."""
        if not refs:
            return {}
        done = self._docker(["image", "inspect", "--format", "{{json .RepoTags}} {{.Id}}", *dict.fromkeys(refs)],
                            "inspect images", check=False)
        found: dict[str, str] = {}
        for line in done.stdout.decode().splitlines():
            tags, _, image_id = line.rpartition(" ")
            for ref in refs:
                if ref in json.loads(tags or "[]") or ref == image_id:
                    found[ref] = image_id
        return found

    def images(self, labels: dict[str, str], repository: str | None = None) -> list[ImageInfo]:
        """Local images carrying all ``labels`` (an empty value matches any value), and tagged in ``repository``
        (a pattern such as ``stacklet-build/*``) when given."""
        filters = [arg for key, value in _label_filters(labels) for arg in ("--filter", f"{key}={value}")]
        filters += ["--filter", f"reference={repository}"] if repository else []
        ids = self._docker(["image", "ls", "-q", "--no-trunc", *filters], "list images").stdout.decode().split()
        if not ids:
            return []
        found = json.loads(self._docker(["image", "inspect", *dict.fromkeys(ids)], "inspect images").stdout or b"[]")
        return [ImageInfo(id=i["Id"], tags=i.get("RepoTags") or [], labels=(i.get("Config") or {}).get("Labels") or {},
                          created=i.get("Created", "")) for i in found]

    def remove_image(self, ref: str) -> bool:
        """Remove an image by tag or id (not forced: one a container uses stays); False when it stayed."""
        try:
            self.client.image.remove(ref, prune=True)
        except whales.DockerException:
            return False
        return True

    def tag_image(self, source: str, tag: str) -> None:
        """Give image ``source`` the tag ``tag`` too."""
        self._call(lambda: self.client.image.tag(source, tag), f"tag image {source} as {tag}")

    def copy_out(self, container_id: str, path: str, archive: Path) -> None:
        """Write ``path`` of a container (with owners and modes) as a tar archive to ``archive``."""
        with archive.open("wb") as out:
            command = ["docker", *self._endpoint_flags(), "container", "cp", f"{container_id}:{path}", "-"]
            done = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, timeout=600)
        if done.returncode != 0:
            raise docker_error(f"copy {path} out of container {container_id[:12]}", done.stderr.decode(),
                               self.endpoint)

    def commit(self, container_id: str, labels: dict[str, str], pause: bool = True) -> str:
        """An image of the container's filesystem (volumes excluded) with ``labels``; returns its id.

        The CLI directly: python-on-whales' commit takes no ``--change`` (labels)."""
        changes = [arg for key, value in labels.items() for arg in ("--change", f"LABEL {key}={json.dumps(value)}")]
        done = self._docker(["container", "commit", f"--pause={str(pause).lower()}", *changes, container_id],
                            f"commit container {container_id[:12]}")
        return done.stdout.decode().strip()

    def build_folder(self, folder: Path, tag: str) -> str:
        """Build ``folder`` (a Dockerfile and what it adds) as ``tag`` with the classic builder; returns the id."""
        self._docker(["build", "-q", "-t", tag, str(folder)], f"build image {tag}")
        return self.image_id(tag) or tag

    def _docker(self, args: list[str], what: str, check: bool = True,
                timeout_s: float = 600) -> subprocess.CompletedProcess:
        """Run one docker CLI command: for what python-on-whales lacks (commit --change, cp to a file, build
        without BuildKit) or does one object at a time (it inspects each image with its own process)."""
        try:
            done = subprocess.run(["docker", *self._endpoint_flags(), *args], capture_output=True, timeout=timeout_s,
                                  env={**os.environ, "DOCKER_BUILDKIT": "0"} if args[0] == "build" else None)
        except FileNotFoundError as exc:
            raise EngineUnavailable("the docker CLI is not installed", hint=ENGINE_HINT) from exc
        except subprocess.TimeoutExpired as exc:
            raise DockerError(f"docker did not {what} within {timeout_s:.0f} s", hint=ENGINE_HINT) from exc
        if check and done.returncode != 0:
            raise docker_error(what, done.stderr.decode(errors="replace"), self.endpoint)
        return done

    # -- containers, networks, volumes by label -------------------------------------------

    def containers(self, labels: dict[str, str] | None = None) -> list[ContainerInfo]:
        """Containers (running or not) carrying all ``labels``."""
        filters = _label_filters(labels)
        if self.api:
            return self.inspect(self.api.container_ids([value for _, value in filters]))
        found = self._call(lambda: self.client.container.list(all=True, filters=filters), "list containers")
        # one `docker inspect` for all of them (reading each listed object would inspect it on its own)
        return self.inspect([c.id for c in found])

    def inspect(self, container_ids: list[str]) -> list[ContainerInfo]:
        """Fresh state of the given containers (missing ones are left out), in one ``docker inspect``.

        python-on-whales inspects each container on its own (twice), which costs a process per
        container; a slice's status reads every container, so they are read in one call here.
        """
        if not container_ids:
            return []
        if self.api:
            return [info_from_inspect(c) for c in map(self.api.inspect, container_ids) if c is not None]
        command = ["docker", *self._endpoint_flags(), "container", "inspect", *container_ids]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except FileNotFoundError as exc:
            raise EngineUnavailable("the docker CLI is not installed", hint=ENGINE_HINT) from exc
        except subprocess.TimeoutExpired as exc:
            raise DockerError("docker inspect did not answer within 60 s", hint=ENGINE_HINT) from exc
        try:
            found = json.loads(done.stdout or "[]")  # printed for the containers that exist, even on exit 1
        except ValueError:
            found = None
        if done.returncode != 0 and not found:
            if is_missing(done.stderr):
                return []
            raise docker_error("inspect containers", done.stderr, self.endpoint, hint=ENGINE_HINT)
        return [info_from_inspect(c) for c in found or []]

    def stats(self, container_ids: list[str]) -> list[ContainerUsage]:
        """One sample of the memory and CPU use of running containers (stopped or missing ones are left out)."""
        if not container_ids:
            return []
        try:
            found = self.client.container.stats(container_ids)
        except whales.NoSuchContainer:
            return []
        except whales.DockerException as exc:
            if is_missing(docker_output(exc)):
                return []
            raise docker_error("read container stats", docker_output(exc), self.endpoint, hint=ENGINE_HINT) from exc
        wanted = set(container_ids)
        return [ContainerUsage(container=next((c for c in wanted if c.startswith(s.container_id)), s.container_id),
                               memory_bytes=int(s.memory_used), cpu_percent=float(s.cpu_percentage))
                for s in found]

    def restart(self, container_ids: list[str], timeout_s: int = 5) -> None:
        """Restart containers (SIGTERM, then SIGKILL after ``timeout_s``)."""
        if container_ids:
            self._call(lambda: self.client.container.restart(container_ids, time=timeout_s), "restart containers")

    def stop(self, container_ids: list[str]) -> None:
        """Stop containers the way each asks to be stopped (its stop signal, then SIGKILL after its grace period)."""
        if container_ids:
            self._call(lambda: self.client.container.stop(container_ids), "stop containers")

    def start(self, container_ids: list[str]) -> None:
        """Start created containers, in parallel (the docker CLI would start a list one after another)."""
        def start_one(cid: str) -> None:
            if self.api:
                self.api.act(cid, "start")
            else:
                self._call(lambda: self.client.container.start(cid), f"start container {cid[:12]}")
        self._each(container_ids, start_one)

    def pause(self, container_ids: list[str]) -> None:
        """Freeze containers (``docker pause``: no CPU until unpaused, memory kept)."""
        if self.api:
            self._each(container_ids, lambda cid: self.api.act(cid, "pause"))
        elif container_ids:
            self._call(lambda: self.client.container.pause(container_ids), "pause containers")

    def unpause(self, container_ids: list[str]) -> None:
        """Resume paused containers."""
        if self.api:
            self._each(container_ids, lambda cid: self.api.act(cid, "unpause"))
        elif container_ids:
            self._call(lambda: self.client.container.unpause(container_ids), "unpause containers")

    @staticmethod
    def _each(container_ids: list[str], action) -> None:
        """Run ``action`` on every container at once (the engine handles them in parallel); the first error raises."""
        if len(container_ids) == 1:
            action(container_ids[0])
        elif container_ids:
            with ThreadPoolExecutor(max_workers=min(8, len(container_ids))) as pool:
                for _ in pool.map(action, container_ids):
                    pass

    def create_record(self, name: str, image: str, labels: dict[str, str]) -> str:
        """Create (never start) a container ``name`` whose labels and name record state; its id."""
        created = self._call(lambda: self.client.container.create(image, name=name, labels=labels,
                                                                  entrypoint="true", networks=["none"]),
                             f"create container {name}")
        return created.id

    def rename(self, container: str, new_name: str) -> bool:
        """Rename a container; False when another caller got there first (it is gone, or ``new_name`` is
        taken). The engine does one rename at a time, so this is an atomic claim."""
        try:
            self.client.container.rename(container, new_name)
        except whales.DockerException as exc:
            details = docker_output(exc)
            if is_missing(details) or "already in use" in details.lower() or "conflict" in details.lower():
                return False
            raise docker_error(f"rename container {container}", details, self.endpoint) from exc
        return True

    def networks(self, labels: dict[str, str]) -> list[str]:
        return list(self.labelled_networks(labels))

    def network_exists(self, name: str) -> bool:
        return self._call(lambda: self.client.network.exists(name), f"inspect network {name}")

    def volumes(self, labels: dict[str, str]) -> list[str]:
        return list(self.labelled_volumes(labels))

    def labelled_networks(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        """Networks carrying all ``labels``: name -> every label of the network."""
        filters = _label_filters(labels)
        if self.api:
            return self.api.labelled("networks", [value for _, value in filters])
        return {n.name: dict(n.labels or {})
                for n in self._call(lambda: self.client.network.list(filters=filters), "list networks")}

    def labelled_volumes(self, labels: dict[str, str]) -> dict[str, dict[str, str]]:
        """Volumes carrying all ``labels``: name -> every label of the volume."""
        filters = _label_filters(labels)
        if self.api:
            return self.api.labelled("volumes", [value for _, value in filters])
        return {v.name: dict(v.labels or {})
                for v in self._call(lambda: self.client.volume.list(filters=filters), "list volumes")}

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        """Create an empty named volume with ``labels`` (stacklet uses one as a marker)."""
        self._call(lambda: self.client.volume.create(name, labels=labels), f"create volume {name}")

    def remove(self, *, containers: list[str] = (), networks: list[str] = (), volumes: list[str] = ()) -> None:
        """Force-remove containers, then networks and volumes (used to clean up by label)."""
        if containers:
            self._call(lambda: self.client.container.remove(list(containers), force=True, volumes=True),
                       "remove containers")
        if networks:
            self._call(lambda: self.client.network.remove(list(networks)), "remove networks")
        if volumes:
            self._call(lambda: self.client.volume.remove(list(volumes)), "remove volumes")

    def remove_image_if_unused(self, image_id: str) -> bool:
        """Remove an image that no container and no other tag uses (an image a reload replaced); False if kept."""
        try:
            self.client.image.remove(image_id, prune=True)
        except whales.DockerException:
            return False  # still used by a container, or tagged elsewhere: it stays
        return True

    def container_logs(self, container_id: str, tail: int | None = None, since: datetime | None = None,
                       timestamps: bool = False) -> str:
        """A container's logs; ``timestamps`` prefixes each line with Docker's RFC 3339 time and a space."""
        try:
            return self.client.container.logs(container_id, tail=tail, since=since, timestamps=timestamps)
        except whales.DockerException as exc:
            return f"(logs unavailable: {docker_output(exc)})"

    def events(self, labels: dict[str, str], since: datetime, until: datetime) -> list[ContainerEvent]:
        """Container events (die, oom, restart, health_status, ...) of labelled containers in a time window."""
        filters = {"type": "container", **{"label": f"{k}={v}" if v else k for k, v in labels.items()}}
        events = self._call(lambda: list(self.client.system.events(since=since, until=until, filters=filters)),
                            "read events")
        return [ContainerEvent(container=e.actor.id if e.actor else "", action=str(e.action or ""),
                               service=_attribute(e, Label.SERVICE) or "",
                               exit_code=int(_attribute(e, "exitCode") or 0) if e.action == "die" else None,
                               time=e.time)
                for e in events]

    def follow_logs(self, container_ids: list[str], tail: int | None = None) -> Iterator[tuple[str, str]]:
        """Yield (container id, line) from several containers, interleaved, until they stop."""
        import queue
        import threading

        lines: queue.Queue = queue.Queue(maxsize=10_000)
        done = object()

        def pump(cid: str) -> None:
            try:
                for _, chunk in self.client.container.logs(cid, follow=True, stream=True, tail=tail):
                    for line in chunk.decode(errors="replace").splitlines():
                        lines.put((cid, line))
            except whales.DockerException:
                pass
            finally:
                lines.put(done)

        for cid in container_ids:
            threading.Thread(target=pump, args=(cid,), daemon=True).start()
        open_streams = len(container_ids)
        while open_streams:
            item = lines.get()
            if item is done:
                open_streams -= 1
            else:
                yield item

    def exec(self, container_id: str, argv: list[str], stdin: bytes | None = None,
             timeout_s: float = 300) -> ExecResult:
        """Run ``argv`` inside a container, feeding ``stdin``; never raises on a non-zero exit."""
        if self.api and stdin is None:
            returncode, stdout, stderr = self.api.exec(container_id, argv, timeout_s)
            return ExecResult(returncode=returncode, stdout=stdout, stderr=stderr)
        command = ["docker", *self._endpoint_flags(), "exec", *(["-i"] if stdin is not None else []),
                   container_id, *argv]
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise DockerError(f"`{' '.join(argv[:3])}` in {container_id[:12]} did not finish within {timeout_s:.0f} s",
                              hint="check the container is healthy") from exc
        return ExecResult(returncode=done.returncode, stdout=done.stdout.decode(errors="replace"),
                          stderr=done.stderr.decode(errors="replace"))

    def _endpoint_flags(self) -> list[str]:
        return (["--context", self.context] if self.context else []) + (["--host", self.host] if self.host else [])

    # -- the container this process runs in ------------------------------------------------

    def self_container(self) -> SelfContainer | None:
        """The container this process runs in on this engine, or None (host mode); cached per process.

        ``STACKLET_SELF_CONTAINER`` names it explicitly (``none`` disables); otherwise the ids in
        /proc/self/mountinfo and /proc/self/cgroup, then the hostname, are looked up on the engine.
        """
        return find_self_container(self._inspect_one, self.endpoint,
                                   (self.context, self.host or os.environ.get("DOCKER_HOST")))

    def connect(self, network: str, container: str) -> None:
        """Connect ``container`` to ``network``; already connected is fine."""
        try:
            self.client.network.connect(network, container)
        except whales.DockerException as exc:
            if not is_already_done(docker_output(exc)):
                raise docker_error(f"connect container {container} to network {network}", docker_output(exc), self.endpoint,
                                   hint="check `docker network inspect " + network + "`") from exc

    def disconnect(self, network: str, container: str) -> None:
        """Disconnect ``container`` from ``network``; not connected (or gone) is fine."""
        try:
            self.client.network.disconnect(network, container, force=True)
        except whales.DockerException as exc:
            if not is_missing(docker_output(exc)):
                raise docker_error(f"disconnect container {container} from network {network}", docker_output(exc),
                                   self.endpoint, hint="`docker network disconnect -f` it by hand") from exc

    def network_containers(self, network: str) -> list[str]:
        """Ids of the containers attached to ``network`` (none when it does not exist)."""
        try:
            return list((self.client.network.inspect(network).containers or {}).keys())
        except whales.DockerException:
            return []

    # -- compose projects ---------------------------------------------------------------------

    def project(self, compose_file: Path, project_name: str) -> ComposeProjectHandle:
        return ComposeProjectHandle(self, compose_file, project_name)

    def _call(self, action, what: str) -> Any:
        try:
            return action()
        except whales.DockerException as exc:
            raise docker_error(what, docker_output(exc), self.endpoint) from exc
        except FileNotFoundError as exc:
            raise EngineUnavailable("the docker CLI is not installed", hint=ENGINE_HINT) from exc

    def _inspect_one(self, container_id: str):
        try:
            return self.client.container.inspect(container_id)
        except whales.NoSuchContainer:
            return None


def _attribute(event, key: str) -> str | None:
    return (event.actor.attributes or {}).get(key) if event.actor else None


def _label_filters(labels: dict[str, str] | None) -> list[tuple[str, str]]:
    """Docker filters for labels; an empty value matches any value of that key."""
    return [("label", f"{k}={v}" if v else k) for k, v in (labels or {}).items()]
