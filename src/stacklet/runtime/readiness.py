"""When a container counts as ready: small wait strategies, and the one health rule.

A boot waits on each container with the strategy that fits it (testcontainers' wait strategies
are the model: one object, one ``poll``):

- ``HealthcheckPassing``: the image or Compose file has a healthcheck; Docker's status decides;
- ``HealthcheckOnDemand``: the same, but while Docker still says starting, stacklet runs the
  healthcheck's own command in the container, every 0.2 s at first and less often while it fails
  (ready as soon as the service is);
- ``ProtocolAnswers``: no healthcheck, but a port whose protocol stacklet knows (Postgres, Redis,
  AMQP, HTTP, or any TCP port): the port answers the protocol's greeting, probed every 0.1 s;
- ``Running``: no healthcheck and no port to probe: running is ready;
- ``Completed``: a one-shot job (Compose ``service_completed_successfully``): exit 0 is ready,
  any other exit fails the boot;
- ``ControlApiAnswers``: a link proxy, ready when its control API answers.

``health`` is the one rule every command uses on a settled slice or baseline (``up``, ``status``,
``ls``, ``check``, ``baseline status``, the TUI): running and not unhealthy, or a one-shot job that
exited 0; a container Docker has not judged yet (``starting``, or the unhealthy a pause set) is first
confirmed by running its healthcheck command (``confirm_unjudged``). Strategies answer ``Verdict``s,
never sentences to compare.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from stacklet.docker.models import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import DockerError
from stacklet.labels import Label, SliceLabels

DEFAULT_TIMEOUT_S = 180
"""Seconds each service may take to become ready (``--timeout``)."""
POLL_S = 0.1
"""How often a boot looks at the containers it waits for."""
MAX_RESTARTS = 3
PROBE_TIMEOUT_S = 0.5

State = Literal["ready", "waiting", "failed"]


@dataclass(frozen=True)
class Verdict:
    """What one poll found: ready, still waiting (with what it waits on), or failed (with why)."""

    state: State
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def failed(self) -> bool:
        return self.state == "failed"


READY = Verdict("ready")


class WaitStrategy(Protocol):
    """Decides from one look at a container whether it is ready."""

    description: str

    def poll(self, info: ContainerInfo) -> Verdict:
        """Ready, waiting or failed, for the container as ``info`` shows it now."""


def _exited(info: ContainerInfo) -> Verdict:
    """Why an exited container failed."""
    if info.oom_killed:
        return Verdict("failed", "was killed for using too much memory (OOM)")
    return Verdict("failed", f"exited with code {info.exit_code}")


def _not_running(info: ContainerInfo) -> Verdict:
    """The verdict on a container that is not running (for a long-running service)."""
    if info.state == "exited":
        return _exited(info)
    if info.state == "restarting":
        if info.restarts < MAX_RESTARTS:
            return Verdict("waiting", "restarting")
        return Verdict("failed", f"keeps restarting ({info.restarts} restarts)")
    if info.state == "dead":
        return Verdict("failed", "is dead")
    return Verdict("waiting", info.state)


@dataclass(frozen=True)
class Running:
    """No healthcheck and nothing to probe: a running container is ready."""

    description: str = "running"

    def poll(self, info: ContainerInfo) -> Verdict:
        return READY if info.state == "running" else _not_running(info)


@dataclass(frozen=True)
class HealthcheckPassing:
    """Docker's healthcheck status decides (Compose's own rule for ``service_healthy``)."""

    description: str = "healthcheck"

    def poll(self, info: ContainerInfo) -> Verdict:
        if info.state != "running":
            return _not_running(info)
        if info.health in (None, "healthy"):
            return READY
        if info.health == "unhealthy":
            return Verdict("failed", "is unhealthy")
        return Verdict("waiting", info.health)


ON_DEMAND_INTERVAL_S = 0.2
"""How soon stacklet runs a starting service's healthcheck command itself again (Docker's own interval is often
1 s+); the wait grows by ``ON_DEMAND_BACKOFF`` after each run that fails, up to ``ON_DEMAND_MAX_INTERVAL_S``."""
ON_DEMAND_BACKOFF = 1.5
ON_DEMAND_MAX_INTERVAL_S = 1.0
"""Each run is a process in the container: a slow starter checked every 0.2 s, in four slices booting at once,
kept the 2 cores of the machine they were measured on busy with checks instead of the services."""
ON_DEMAND_TIMEOUT_S = 2.0


def healthcheck_command(info: ContainerInfo) -> list[str]:
    """The argv of a container's healthcheck test (``CMD`` or ``CMD-SHELL`` form); empty without one."""
    test = info.healthcheck
    if test[:1] == ["CMD"]:
        return test[1:]
    if test[:1] == ["CMD-SHELL"] and len(test) > 1:
        return ["/bin/sh", "-c", test[1]]
    return []


_CHECK_RUNNER: ThreadPoolExecutor | None = None


def _check_runner() -> ThreadPoolExecutor:
    """The threads that run healthcheck commands, so a boot's poll loop never waits on a ``docker exec``."""
    global _CHECK_RUNNER
    if _CHECK_RUNNER is None:
        _CHECK_RUNNER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthcheck")
    return _CHECK_RUNNER


@dataclass
class HealthcheckOnDemand:
    """Docker's healthcheck decides, but while Docker still says ``starting`` stacklet runs the healthcheck's
    own command (``run``: in the container, exit 0) in a worker thread, first every ``ON_DEMAND_INTERVAL_S``
    and less often while it keeps failing: a service is ready for its dependents as soon as it is, not at
    Docker's next tick. Unhealthy and exited stay Docker's verdicts, except an unhealthy that a pause set
    (``unhealthy_from_a_pause``), and any unhealthy of a ``resumed`` container: those are judged again by
    its command."""

    run: Callable[[ContainerInfo, list[str]], bool]
    description: str = "healthcheck"
    resumed: bool = False
    last_run: float = float("-inf")
    interval: float = ON_DEMAND_INTERVAL_S
    pending: Future | None = None

    def poll(self, info: ContainerInfo) -> Verdict:
        verdict = HealthcheckPassing().poll(info)
        if info.state == "running" and (unhealthy_from_a_pause(info) or self.resumed and info.health == "unhealthy"):
            verdict = Verdict("waiting", "unhealthy from before it was resumed")
        command = healthcheck_command(info)
        if verdict.state != "waiting" or info.state != "running" or not command:
            return verdict
        if self.pending is not None and self.pending.done():
            passed = self.pending.exception() is None and self.pending.result()
            self.pending = None
            if passed:
                return READY
            self.interval = min(self.interval * ON_DEMAND_BACKOFF, ON_DEMAND_MAX_INTERVAL_S)
        if self.pending is None and time.monotonic() - self.last_run >= self.interval:
            self.last_run = time.monotonic()
            self.pending = _check_runner().submit(self.run, info, command)
        return verdict


@dataclass(frozen=True)
class Completed:
    """A one-shot job: exit 0 is ready, another exit code fails."""

    description: str = "completed"

    def poll(self, info: ContainerInfo) -> Verdict:
        if info.state == "exited":
            return READY if info.exit_code == 0 else _exited(info)
        return Verdict("waiting", info.state) if info.state == "running" else _not_running(info)


@dataclass(frozen=True)
class ControlApiAnswers:
    """A link proxy: ready once its control API answers (``answers`` asks it once)."""

    answers: Callable[[ContainerInfo], bool]
    description: str = "control API"

    def poll(self, info: ContainerInfo) -> Verdict:
        if info.state != "running":
            return _not_running(info)
        return READY if self.answers(info) else Verdict("waiting", "control API not answering yet")


@dataclass(frozen=True)
class ProtocolAnswers:
    """No healthcheck: ready once ``port`` answers ``protocol``'s greeting at the address ``address_of`` gives."""

    protocol: str
    port: int
    address_of: Callable[[ContainerInfo, int], str | None]
    description: str = "port"

    def poll(self, info: ContainerInfo) -> Verdict:
        if info.state != "running":
            return _not_running(info)
        address = self.address_of(info, self.port)
        if address is None:
            return READY  # the port is not reachable from here (not published): running is all we can see
        host, port = address.rsplit(":", 1)
        if probe(self.protocol, host, int(port)):
            return READY
        return Verdict("waiting", f"{self.protocol} on port {self.port} not answering yet")


# -- protocol probes ---------------------------------------------------------------------------
# Hand-written: each is one greeting of a few bytes; client libraries would pull in four drivers.



def probe(protocol: str, host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``host:port`` answers ``protocol``'s greeting now."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(timeout_s)
            return _GREETINGS[protocol](conn)
    except OSError:
        return False


def _postgres(conn: socket.socket) -> bool:
    # SSLRequest: a listening server answers 'S' or 'N' (a starting one closes or refuses)
    conn.sendall(struct.pack("!ii", 8, 80877103))
    return conn.recv(1) in (b"S", b"N")


def _redis(conn: socket.socket) -> bool:
    conn.sendall(b"PING\r\n")
    answer = conn.recv(64)
    # "-LOADING" while the dataset loads is not ready; "-NOAUTH" means it listens and answers
    return answer.startswith(b"+PONG") or answer.startswith(b"-NOAUTH")


def _amqp(conn: socket.socket) -> bool:
    conn.sendall(b"AMQP\x00\x00\x09\x01")
    answer = conn.recv(8)
    return answer[:1] == b"\x01" or answer.startswith(b"AMQP")  # Connection.Start frame, or its version


def _mysql(conn: socket.socket) -> bool:
    header = conn.recv(5)  # the server speaks first: a handshake packet (protocol 10), or an error packet
    return len(header) == 5 and header[4] == 10


def _http(conn: socket.socket) -> bool:
    conn.sendall(b"GET / HTTP/1.0\r\nHost: stacklet-readiness\r\n\r\n")
    return conn.recv(8).startswith(b"HTTP/")


def _tcp(conn: socket.socket) -> bool:
    # accepted; a port published by Docker accepts even with nobody behind it, so wait for the peer
    # to speak or to keep the connection open for a moment
    conn.settimeout(0.05)
    try:
        return conn.recv(1) != b""
    except socket.timeout:
        return True


_GREETINGS = {"postgres": _postgres, "redis": _redis, "amqp": _amqp, "mysql": _mysql, "http": _http, "tcp": _tcp}


def probe_label(protocol: str, port: int) -> str:
    """The ``readiness`` label value the planner writes: ``protocol:port``."""
    return f"{protocol}:{port}"


def strategy_for(info: ContainerInfo, *, one_shot: bool = False,
                 control_api: Callable[[ContainerInfo], bool] | None = None,
                 address_of: Callable[[ContainerInfo, int], str | None] | None = None,
                 run_check: Callable[[ContainerInfo, list[str]], bool] | None = None,
                 resumed: bool = False) -> WaitStrategy:
    """The wait strategy for one container of a slice or baseline, from its labels and healthcheck.

    ``one_shot`` also marks jobs other services wait for with ``service_completed_successfully``;
    ``run_check`` runs a healthcheck's command in the container (then it is run on demand); ``resumed``
    marks a container just unpaused, whose Docker health may be stale.
    """
    labels = SliceLabels.of(info.labels)
    if labels.is_linkproxy and control_api is not None:
        return ControlApiAnswers(control_api)
    if one_shot or labels.one_shot:
        return Completed()
    if info.health is not None:
        return HealthcheckOnDemand(run_check, resumed=resumed) if run_check is not None else HealthcheckPassing()
    readiness = info.labels.get(Label.READINESS, "")
    if readiness and address_of is not None:
        protocol, _, port = readiness.partition(":")
        if protocol in _GREETINGS and port.isdigit():
            return ProtocolAnswers(protocol, int(port), address_of)
    return Running()


def health(info: ContainerInfo) -> Verdict:
    """The one health rule for a container of a slice or baseline that is up (not booting).

    Ready: running and not unhealthy (a healthcheck still starting counts as waiting), or a
    one-shot job that exited 0 (or was never run because its stores came from a snapshot). Anything else (exited, killed, dead, restarting, unhealthy) is not.
    A link proxy is judged by running alone: its routes were set once its control API answered.
    """
    labels = SliceLabels.of(info.labels)
    if labels.one_shot and labels.satisfied_by and info.state == "created":
        return READY  # never run: the stores it prepares started from their snapshot
    if labels.one_shot:
        return Completed().poll(info)
    if labels.is_linkproxy:
        return Running().poll(info)
    return HealthcheckPassing().poll(info)


STARTING_BUT_PASSED = "passed its healthcheck command when stacklet ran it (Docker's own first check is still due)"
PAUSED_BUT_PASSED = ("passed its healthcheck command when stacklet ran it (Docker's unhealthy came from a pause, "
                     "not from a failed check)")


def run_healthcheck(driver: EngineDriver, info: ContainerInfo, command: list[str]) -> bool:
    """Run a container's healthcheck command in it now; whether it passed (a slow one did not)."""
    try:
        return driver.exec(info.id, command, None, ON_DEMAND_TIMEOUT_S).returncode == 0
    except DockerError:
        return False


def unhealthy_from_a_pause(info: ContainerInfo) -> bool:
    """Docker calls a container unhealthy when it is paused, without a failed check (no failing streak), and
    keeps saying so after it is resumed until its next check: that verdict is not the service's."""
    return info.health == "unhealthy" and info.failing_streak == 0


def confirm_unjudged(driver: EngineDriver, containers: list[ContainerInfo]) -> list[ContainerInfo]:
    """The containers as the health rule should see them: one that runs but that Docker has not judged since it
    started (``starting``) or was resumed (an unhealthy a pause set) gets its healthcheck's own command run now
    (all of them at once); one that passes is healthy, as it will be at Docker's next tick. So a boot, or the
    take of a warm slice, need not wait for that tick before it is ready."""
    unjudged = [c for c in containers if c.state == "running" and healthcheck_command(c)
                and (c.health == "starting" or unhealthy_from_a_pause(c)) and not SliceLabels.of(c.labels).is_linkproxy]
    if not unjudged:
        return containers
    passed = dict(zip((c.id for c in unjudged), _check_runner().map(
        lambda c: run_healthcheck(driver, c, healthcheck_command(c)), unjudged)))
    return [c.model_copy(update={"health": "healthy",
                                 "health_output": STARTING_BUT_PASSED if c.health == "starting" else PAUSED_BUT_PASSED})
            if passed.get(c.id) else c for c in containers]


def healthy(containers: list[ContainerInfo]) -> bool:
    """Whether every container of a slice or baseline is ready by ``health``."""
    return all(health(c).ready for c in containers)
