"""Is this process inside a container? Pure parsing of its hints, then the lookup on the engine.

``STACKLET_SELF_CONTAINER`` names the container explicitly (``none`` disables); otherwise the ids in
/proc/self/mountinfo and /proc/self/cgroup, then the hostname, are looked up on the engine.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from stacklet.errors import ConfigError

SELF_CONTAINER_ENV = "STACKLET_SELF_CONTAINER"
_CONTAINER_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
_MOUNT_ID = re.compile(r"containers/([0-9a-f]{64})/")
_CGROUP_ID = re.compile(r"(?:^|/)(?:docker-|libpod-|cri-containerd-)?([0-9a-f]{64})(?:\.scope)?$")
_SELF_CACHE: dict[tuple, "SelfContainer | None"] = {}


class SelfContainer(BaseModel):
    """The container this stacklet process runs in, as the engine knows it."""

    id: str
    name: str


class ContainerHints(BaseModel):
    """What the process sees of its own container: a marker file, ids, its hostname."""

    marked: bool = False
    ids: list[str] = Field(default_factory=list)
    hostname: str = ""

    def candidates(self) -> list[tuple[str, bool]]:
        """References to look up on the engine, most reliable first: (reference, is an id)."""
        found = [(i, True) for i in self.ids]
        if (self.marked or self.ids) and self.hostname:
            found.append((self.hostname, False))
        return found


def container_ids_from_mountinfo(text: str) -> list[str]:
    """Container ids in the mounts Docker (or Podman) makes for /etc/hostname, /etc/hosts, /etc/resolv.conf.

    Only those mount points count: a Docker host itself also shows other containers' mounts.
    """
    ids: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[4] in _CONTAINER_FILES:
            match = _MOUNT_ID.search(fields[3])
            if match and match.group(1) not in ids:
                ids.append(match.group(1))
    return ids


def container_ids_from_cgroup(text: str) -> list[str]:
    """Container ids at the end of the cgroup paths in /proc/self/cgroup (v1, or v2 without a namespace)."""
    ids: list[str] = []
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        match = _CGROUP_ID.search(path)
        if match and match.group(1) not in ids:
            ids.append(match.group(1))
    return ids


def read_container_hints(root: Path = Path("/")) -> ContainerHints:
    """Read this process's hints (marker files, /proc/self/mountinfo and cgroup, the hostname)."""
    def read(relative: str) -> str:
        try:
            return (root / relative).read_text(errors="replace")
        except OSError:
            return ""

    ids = container_ids_from_mountinfo(read("proc/self/mountinfo"))
    ids += [i for i in container_ids_from_cgroup(read("proc/self/cgroup")) if i not in ids]
    marked = (root / ".dockerenv").exists() or (root / "run/.containerenv").exists()
    return ContainerHints(marked=marked, ids=ids, hostname=socket.gethostname())


def find_self_container(inspect: Callable[[str], Any], endpoint: str, engine: tuple) -> SelfContainer | None:
    """The container this process runs in on an engine, or None (host mode); cached per process and ``engine``.

    ``inspect`` looks a container reference up on that engine (the engine's inspect record, or None when
    there is no such container); ``endpoint`` names the engine in errors.
    """
    override = os.environ.get(SELF_CONTAINER_ENV, "").strip()
    key = (*engine, override)
    if key not in _SELF_CACHE:
        _SELF_CACHE[key] = _find_self(inspect, endpoint, override)
    return _SELF_CACHE[key]


def _find_self(inspect: Callable[[str], Any], endpoint: str, override: str) -> SelfContainer | None:
    if override.lower() in ("none", "no", "0", "false"):
        return None
    if override:
        found = inspect(override)
        if found is None or str(found.state.status) != "running":
            raise ConfigError(f"names no running container on {endpoint}", key=f"{SELF_CONTAINER_ENV}={override}",
                              hint="set it to this container's id or name, or to `none` to use host addresses")
        return SelfContainer(id=found.id, name=found.name)
    hints = read_container_hints()
    for ref, by_id in hints.candidates():
        found = inspect(ref)
        if found is None or str(found.state.status) != "running":
            continue
        if (found.id.startswith(ref) if by_id else found.config.hostname == ref):
            return SelfContainer(id=found.id, name=found.name)
    return None
