"""The typed records the driver returns: containers, images, events, resource samples, the engine.

Docker's JSON is parsed into these small pydantic models at the driver's boundary, so the rest of
stacklet never sees python-on-whales objects.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from stacklet.labels import Label


class ContainerInfo(BaseModel):
    """What stacklet needs to know about one container."""

    id: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    state: str
    health: str | None = None
    health_output: str = ""
    exit_code: int | None = None
    restarts: int = 0
    oom_killed: bool = False
    started_at: str | None = None
    ports: dict[int, int] = Field(default_factory=dict, description="container port -> host port")
    port_ips: dict[int, str] = Field(default_factory=dict, description="container port -> the host address that "
                                                                       "port is published on")
    networks: list[str] = Field(default_factory=list)
    image: str = Field("", description="id of the image the container runs")
    addresses: dict[str, str] = Field(default_factory=dict, description="network -> IP address on it")
    volume_paths: list[str] = Field(default_factory=list, description="where volumes (named or anonymous) are "
                                                                      "mounted in the container")
    healthcheck: list[str] = Field(default_factory=list, description="the healthcheck's test (CMD or CMD-SHELL "
                                                                     "form), empty without one")
    failing_streak: int = Field(0, description="Docker's count of failed healthchecks in a row (0 with an "
                                               "unhealthy that a pause set, not a failed check)")

    @property
    def service(self) -> str:
        return self.labels.get(Label.SERVICE) or self.labels.get(Label.COMPOSE_SERVICE, self.name)

    @property
    def compose_service(self) -> str:
        return self.labels.get(Label.COMPOSE_SERVICE, self.name)


class ContainerEvent(BaseModel):
    """One event of a container, from the engine's event stream."""

    container: str
    service: str
    action: str
    exit_code: int | None = None
    time: datetime | None = None


class ContainerUsage(BaseModel):
    """One sample of a container's resource use (``docker stats``)."""

    container: str = Field(description="container id")
    memory_bytes: int
    cpu_percent: float = Field(description="of one core (200 on two busy cores), as docker stats reports it")


class ExecResult(BaseModel):
    """The outcome of a command run inside a container."""

    returncode: int
    stdout: str
    stderr: str


class ImageInfo(BaseModel):
    """One local image, as ``images`` lists it."""

    id: str
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    created: str = ""


class EngineInfo(BaseModel):
    """The engine's identity and versions."""

    endpoint: str
    server_version: str
    api_version: str
    os: str
    cpus: int
    memory_bytes: int



def info_from_inspect(c: dict) -> ContainerInfo:
    """A ContainerInfo from one element of ``docker container inspect``'s JSON."""
    state = c.get("State") or {}
    health = state.get("Health") or {}
    last = (health.get("Log") or [None])[-1] or {}
    settings = c.get("NetworkSettings") or {}
    ports: dict[int, int] = {}
    port_ips: dict[int, str] = {}
    for key, bindings in (settings.get("Ports") or {}).items():
        binding = next((b for b in bindings or [] if b.get("HostPort")), None)
        if binding:
            ports[int(key.split("/")[0])] = int(binding["HostPort"])
            port_ips[int(key.split("/")[0])] = str(binding.get("HostIp") or "")
    networks = settings.get("Networks") or {}
    return ContainerInfo(
        id=c["Id"], name=str(c.get("Name", "")).lstrip("/"), labels=dict((c.get("Config") or {}).get("Labels") or {}),
        state=str(state.get("Status", "unknown")), health=health.get("Status") or None,
        health_output=str(last.get("Output") or "").strip(), exit_code=state.get("ExitCode"),
        restarts=int(c.get("RestartCount") or 0), oom_killed=bool(state.get("OOMKilled")),
        started_at=state.get("StartedAt") or None, ports=ports, port_ips=port_ips, networks=list(networks),
        image=str(c.get("Image") or ""),
        addresses={name: n["IPAddress"] for name, n in networks.items() if (n or {}).get("IPAddress")},
        volume_paths=sorted(m["Destination"] for m in c.get("Mounts") or [] if m.get("Type") == "volume"),
        healthcheck=list(((c.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []),
        failing_streak=int(health.get("FailingStreak") or 0),
    )
