"""What each service is, for planning: a store (stateful, with the rule that said so), a broker,
a one-shot job. Pure: reads the Stack (Compose model, Dockerfile facts, stack.yaml), no Docker.

Stateful rules, first match wins: ``declared`` (stack.yaml ``stateful:``), ``image`` (a well-known
image name), ``dockerfile-from`` (the Dockerfile's base image), ``command`` (the server it runs,
from Compose or the Dockerfile's CMD/ENTRYPOINT), ``port`` (a well-known store port it exposes),
``volume`` (a named volume on a data path). A slice runs every stateful service it reaches locally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from stacklet.config.stack import KNOWN_STATEFUL_IMAGES, Stack, image_family

# The server binaries of well-known stores, as a container's command names them.
SERVER_BINARIES: dict[str, str] = {
    "postgres": "postgres", "pg_ctl": "postgres", "mysqld": "mysql", "mariadbd": "mariadb", "mongod": "mongo",
    "redis-server": "redis", "valkey-server": "valkey", "keydb-server": "keydb", "memcached": "memcached",
    "rabbitmq-server": "rabbitmq", "kafka-server-start": "kafka", "kafka-server-start.sh": "kafka",
    "nats-server": "nats", "elasticsearch": "elasticsearch", "opensearch": "opensearch", "etcd": "etcd",
    "clickhouse-server": "clickhouse", "minio": "minio", "cassandra": "cassandra", "zookeeper-server-start.sh":
    "zookeeper", "influxd": "influxdb", "couchdb": "couchdb", "cockroach": "cockroach",
}
# Ports that only stores listen on (application ports such as 8080 or 9000 are left out).
STORE_PORTS: dict[int, str] = {
    5432: "postgres", 3306: "mysql", 6379: "redis", 5672: "rabbitmq", 9092: "kafka", 27017: "mongo",
    9200: "elasticsearch", 11211: "memcached", 4222: "nats", 9042: "cassandra", 26257: "cockroach",
    7687: "neo4j", 2379: "etcd", 5984: "couchdb", 1433: "mssql", 1521: "oracle", 2181: "zookeeper",
}
# Stores whose clients consume messages: their callers are consumers.
BROKER_FAMILIES = {"rabbitmq", "kafka", "redpanda", "nats", "activemq", "pulsar"}
_DATA_PATHS = ("/var/lib/", "/data", "/bitnami", "/usr/share/elasticsearch/data")
JOB_CONDITION = "service_completed_successfully"


@dataclass(frozen=True)
class StatefulDecision:
    """Whether a service is stateful, by which rule, and why in words."""

    stateful: bool
    rule: str
    reason: str
    family: str | None = None


@dataclass
class Traits:
    """The planning traits of every service of a stack."""

    stateful: dict[str, StatefulDecision] = field(default_factory=dict)  # only the stateful ones
    jobs: dict[str, str] = field(default_factory=dict)                   # name -> why it is a job
    brokers: set[str] = field(default_factory=set)
    consumers: dict[str, bool] = field(default_factory=dict)             # declared consumer: true/false

    def stateful_reasons(self) -> dict[str, str]:
        return {name: decision.reason for name, decision in self.stateful.items()}


def traits_of(stack: Stack) -> Traits:
    """Recognise stores, brokers and jobs among the stack's services."""
    traits = Traits()
    for name in stack.services:
        decision = stateful_decision(stack, name)
        if decision.stateful:
            traits.stateful[name] = decision
            if decision.family in BROKER_FAMILIES:
                traits.brokers.add(name)
        why = job_reason(stack, name)
        if why:
            traits.jobs[name] = why
        declared = stack.service_meta(name).consumer
        if declared is not None:
            traits.consumers[name] = declared
    return traits


def stateful_decision(stack: Stack, name: str) -> StatefulDecision:
    """Whether ``name`` is stateful and which rule decided it."""
    declared = stack.service_meta(name).stateful
    service = stack.compose.services[name]
    family = _family(stack, name)
    if declared is not None:
        verdict = "stateful" if declared else "not stateful"
        return StatefulDecision(declared, "declared", f"declared {verdict} in stack.yaml",
                                family if declared else None)
    if family_by := image_family(service.image):
        return StatefulDecision(True, "image", f"guessed from image {service.image} ({family_by})", family_by)
    facts = service.dockerfile
    if facts and (family_by := image_family(facts.base_image)):
        return StatefulDecision(True, "dockerfile-from", f"guessed from its Dockerfile: FROM {facts.base_image}",
                                family_by)
    if family_by := command_family(service.run_command):
        return StatefulDecision(True, "command", f"guessed from its command: it runs {family_by}'s "
                                f"server ({' '.join(service.run_command)[:60]})", family_by)
    for port in listening_ports(stack, name):
        if port in STORE_PORTS:
            return StatefulDecision(True, "port", f"guessed from its port {port} ({STORE_PORTS[port]}'s)",
                                    STORE_PORTS[port])
    for target in service.named_volume_targets:
        if target.startswith(_DATA_PATHS):
            return StatefulDecision(True, "volume", f"guessed from its named volume at {target}")
    return StatefulDecision(False, "none", "no rule recognises it as a store")


def stateful_reason(stack: Stack, name: str) -> str | None:
    """Why ``name`` is stateful, or None when it is not."""
    decision = stateful_decision(stack, name)
    return decision.reason if decision.stateful else None


def command_family(words: list[str]) -> str | None:
    """The store whose server a command runs (``redis-server --port 6379`` → ``redis``)."""
    for word in words[:4]:
        for part in word.split():
            family = SERVER_BINARIES.get(PurePosixPath(part).name)
            if family:
                return family
    return None


def listening_ports(stack: Stack, name: str) -> set[int]:
    """Ports a service declares it listens on: Compose expose/ports, stack.yaml, the Dockerfile's EXPOSE."""
    service = stack.compose.services[name]
    ports = set(service.expose) | set(service.port_targets) | set(stack.service_meta(name).ports)
    if service.dockerfile:
        ports |= set(service.dockerfile.expose)
    return ports


def service_ports(stack: Stack, name: str, seen: set[int] | None = None) -> list[int]:
    """Ports ``name`` listens on: stack.yaml, Compose expose/ports, callers' references, the Dockerfile's
    EXPOSE, else the default ports of its store family."""
    ports = listening_ports(stack, name) | (seen or set())
    if not ports:
        family = _family(stack, name)
        ports |= set(KNOWN_STATEFUL_IMAGES.get(family, [])) if family else set()
    return sorted(ports)


def job_reason(stack: Stack, name: str) -> str | None:
    """Why ``name`` is a one-shot job, or None: declared, waited for to complete, or ``restart: "no"`` + command."""
    declared = stack.service_meta(name).job
    if declared is not None:
        return f"declared job in stack.yaml (services.{name}.job)" if declared else None
    waiting = sorted(other for other, svc in stack.compose.services.items()
                     if (dep := svc.depends_on.get(name)) and dep.condition == JOB_CONDITION)
    if waiting:
        return f"a one-shot job: {', '.join(waiting)} wait for it to complete ({JOB_CONDITION})"
    service = stack.compose.services[name]
    if service.restart == "no" and service.command and not listening_ports(stack, name) and not service.has_healthcheck:
        return 'a one-shot job: restart: "no", a command and no port'
    return None


def _family(stack: Stack, name: str) -> str | None:
    service = stack.compose.services[name]
    return (image_family(service.image) or image_family(service.dockerfile.base_image if service.dockerfile else None)
            or command_family(service.run_command)
            or next((STORE_PORTS[p] for p in sorted(listening_ports(stack, name)) if p in STORE_PORTS), None))
