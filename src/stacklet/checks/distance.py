"""Faults of the distance: forwarded links whose baseline on another host does not answer.

Each link proxy that forwards to an address outside the slice's engine (an advertised baseline,
or a mapped one) is asked, inside its own container, to open a TCP connection to each of those
addresses: the link's own view, from the slice's engine, whichever engine that is.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from stacklet.docker.models import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.labels import Label, split_list
from stacklet.planning.plan import is_remote_upstream, routes_of

CONNECT_TIMEOUT_S = 3
# Prints each host:port argument that refuses or does not accept a connection within the timeout.
PROBE_SCRIPT = ("import socket, sys\n"
                "for a in sys.argv[1:]:\n"
                "    h, _, p = a.rpartition(':')\n"
                "    try:\n"
                f"        socket.create_connection((h, int(p)), timeout={CONNECT_TIMEOUT_S}).close()\n"
                "    except OSError:\n"
                "        print(a)\n")


class UnansweredLink(BaseModel):
    """A forwarded link whose baseline does not answer."""

    link: str = Field(description="the link proxy's route: the forwarded service (and port)")
    service: str = Field(description="the forwarded service")
    upstream: str = Field(description="the baseline address the link forwards to")
    engine: str | None = Field(None, description="the engine of that baseline, when stacklet reads it from there")
    host: str = Field(description="the baseline's host")

    @property
    def message(self) -> str:
        where = f"the baseline on {self.engine} (host {self.host})" if self.engine else f"the baseline at {self.host}"
        return f"link {self.link} forwards to {self.upstream}: {where} does not answer"


def unanswered_links(driver: EngineDriver, proxies: list[ContainerInfo]) -> list[UnansweredLink]:
    """The forwarded links of these link proxies whose remote baseline address refuses or times out."""
    found: list[UnansweredLink] = []
    for info in proxies:
        remote = {r.name: r.upstream for r in routes_of(info.labels) if is_remote_upstream(r.upstream)}
        if not remote or info.state != "running":
            continue
        addresses = sorted(set(remote.values()))
        done = driver.exec(info.id, ["python3", "-c", PROBE_SCRIPT, *addresses],
                           timeout_s=CONNECT_TIMEOUT_S * len(addresses) + 10)
        silent = set(done.stdout.split()) if done.returncode == 0 else set()
        engines = split_list(info.labels.get(Label.BASELINE_ENGINE))
        for link, upstream in sorted(remote.items()):
            if upstream in silent:
                host = upstream.rpartition(":")[0]
                engine = next((e for e in engines if _host_of(e) == host), engines[0] if len(engines) == 1 else None)
                found.append(UnansweredLink(link=link, service=link.split(":")[0], upstream=upstream,
                                            engine=engine, host=host))
    return found


def _host_of(engine: str) -> str | None:
    return urlsplit(engine).hostname if "://" in engine else None
