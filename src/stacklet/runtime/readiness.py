"""When a container counts as ready: one rule shared by boots, restarts, reloads and status."""

from __future__ import annotations

from stacklet.docker.driver import ContainerInfo
from stacklet.planning.plan import LABEL

DEFAULT_TIMEOUT_S = 180
POLL_S = 0.25
MAX_RESTARTS = 3


def readiness(info: ContainerInfo, one_shot: bool) -> str:
    """'ready', 'waiting', or what went wrong."""
    if info.state == "running":
        if info.health in (None, "healthy") or info.labels.get(f"{LABEL}.role") == "linkproxy":
            # a link proxy is ready when its control API answers, which the boot checks itself
            return "ready"
        if info.health == "unhealthy":
            return "is unhealthy"
        return "waiting"
    if info.state == "exited":
        if one_shot and info.exit_code == 0:
            return "ready"
        if info.oom_killed:
            return "was killed for using too much memory (OOM)"
        return f"exited with code {info.exit_code}"
    if info.state == "restarting":
        return "waiting" if info.restarts < MAX_RESTARTS else f"keeps restarting ({info.restarts} restarts)"
    if info.state == "dead":
        return "is dead"
    return "waiting"


def settled(info: ContainerInfo) -> bool:
    """Whether a container of a running slice is as it should be: ready, or a one-shot service
    (no healthcheck) that completed. A stopped service that has a healthcheck is not settled."""
    return readiness(info, one_shot=info.health is None) == "ready"
