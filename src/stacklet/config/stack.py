"""The Stack: stack.yaml (stacklet metadata) plus its Compose project, loaded and validated."""

from __future__ import annotations

import difflib
import functools
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stacklet.config.checkspec import CheckSpec, Port, ServiceSignals, undefined_placeholders
from stacklet.config.compose import ComposeProject, load_compose
from stacklet.config.yamlload import load_yaml_file
from stacklet.errors import StackFileError, StackletError, short_repr

STACK_FILE = "stack.yaml"
STACKS_DIR = "stacks"
# A slice wider than this is the whole stack in all but absurd graphs; a bound keeps the walk and the errors short.
MAX_RADIUS = 100
_ADDRESS = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:(\d{1,5})$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqlSeed(_Strict):
    """``*.sql`` files run with psql inside the container (defaults from POSTGRES_DB / POSTGRES_USER)."""

    database: str | None = None
    user: str | None = None


class RedisSeed(_Strict):
    """``*.redis`` files: Redis commands, one per line, piped to redis-cli inside the container."""

    db: int = Field(default=0, ge=0)


class ShellSeed(_Strict):
    """``*.sh`` files executed inside the container."""

    shell: str = "sh"


class HttpSeed(_Strict):
    """``*.json`` fixtures POSTed to the service once it is healthy."""

    path: str = Field(pattern=r"^/")
    port: Port | None = None
    method: Literal["POST", "PUT", "PATCH"] = "POST"


class SeedConfig(_Strict):
    """Which kinds of seed files a service takes (files live in seeds/<stack>/<service>/)."""

    sql: SqlSeed | None = None
    redis: RedisSeed | None = None
    sh: ShellSeed | None = None
    json_: HttpSeed | None = Field(default=None, alias="json")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def kinds(self) -> list[str]:
        return [k for k, v in (("sql", self.sql), ("redis", self.redis), ("sh", self.sh), ("json", self.json_)) if v]


class ReadinessConfig(_Strict):
    """How stacklet probes a service that has no healthcheck (a healthcheck, where there is one, decides)."""

    protocol: Literal["postgres", "redis", "amqp", "mysql", "http", "tcp"] = Field(
        description="the greeting the probe expects on the port")
    port: int = Field(ge=1, le=65535, description="the container port to probe")


class ServiceMeta(_Strict):
    """Per-service metadata in stack.yaml ``services:``."""

    calls: list[str] = Field(default_factory=list, description="extra call edges")
    paths: list[str] = Field(default_factory=list, description="globs, relative to stack.yaml")
    stateful: bool | None = Field(default=None, description="override the guess")
    ports: list[Port] = Field(default_factory=list, description="ports the service listens on")
    seed: SeedConfig | None = Field(default=None, description="kinds of seed files it takes")
    seed_after: list[str] | None = Field(default=None, description="jobs that must complete before it is seeded "
                                                                   "(default: the one-shot jobs that depend on it)")
    job: bool | None = Field(default=None, description="a one-shot job (runs to completion); overrides the guess")
    readiness: ReadinessConfig | None = Field(default=None, description="the readiness probe, when it has no "
                                                                        "healthcheck (default: by its ports)")
    consumer: bool | None = Field(default=None, description="consumes from the stores it calls: runs in every "
                                                            "slice that runs one of them locally (false: never)")
    signals: ServiceSignals = Field(default_factory=ServiceSignals, description="how to read its logs in checks")
    protocol: Literal["auto", "http", "tcp"] | None = Field(
        default=None, description="what its link proxies follow: http records every request, tcp only counts "
                                  "connections and bytes (default auto: HTTP when the client speaks HTTP/1.x)")


class EdgeRef(_Strict):
    """One edge of the service graph, ``from`` → ``to``."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EdgesConfig(_Strict):
    """Corrections to the inferred service graph."""

    drop: list[EdgeRef] = Field(default_factory=list, description="edges stacklet must not follow")


ENGINE_SCHEMES = ("tcp", "ssh", "unix")
_CONTEXT_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$")  # Docker's own rule for context names


class BaselineConfig(_Strict):
    """Where forwarded services live: hand-written addresses, and/or the engine of an advertised baseline."""

    addresses: dict[str, str] = Field(default_factory=dict)
    engine: str | None = Field(None, description="the Docker engine (tcp://..., ssh://..., or a context name) whose "
                                                 "baseline, started with `baseline up --advertise`, slices forward to")

    @field_validator("engine")
    @classmethod
    def _engine_is_url_or_context(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme, sep, rest = value.partition("://")
        if sep and (scheme not in ENGINE_SCHEMES or not rest):
            raise ValueError(f"engine must be {', '.join(s + '://...' for s in ENGINE_SCHEMES)} or a Docker context "
                             f"name, got {short_repr(value)}")
        if not sep and not _CONTEXT_NAME.match(value):
            raise ValueError(f"engine must be a URL or a Docker context name, got {short_repr(value)}")
        return value

    @field_validator("addresses")
    @classmethod
    def _addresses_are_host_port(cls, value: dict[str, str]) -> dict[str, str]:
        for service, address in value.items():
            match = _ADDRESS.match(address)
            if not match or not 0 < int(match.group(1)) < 65536:
                raise ValueError(f"address of {service!r} must be host:port with a port 1-65535, got {short_repr(address)}")
        return value


class LinkProxyConfig(_Strict):
    """Which link proxy image runs on the links (default: stacklet's own)."""

    image: str | None = None


DURATION_FORMS = "a duration such as 90s, 30m, 2h, 1d or 1h30m, or 0, none or never for no expiry"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_DURATION_S = 365 * 86400
MAX_TIMEOUT_S = 86400  # a readiness wait (`--timeout`) longer than a day is a mistake, and overflows nothing


def parse_duration(value: Any) -> int | None:
    """Seconds in a duration like ``90s``, ``30m``, ``2h``, ``1d`` or ``1h30m``; None for 0/none/never.

    Raises ValueError naming the accepted forms; a bare number other than 0 needs a unit.
    """
    if value is None or value is False:
        return None
    if isinstance(value, bool):
        raise ValueError(f"must be {DURATION_FORMS}")
    if isinstance(value, int | float):
        if value == 0:
            return None
        raise ValueError(f"a number needs a unit (for example {value:g}s or {value:g}m): must be {DURATION_FORMS}")
    text = str(value).strip().lower().replace(" ", "")
    if text in ("0", "none", "never"):
        return None
    if re.search(r"\d{13}", text):  # more than ~30,000 years in seconds, and never turned into an int
        raise ValueError("must be at most 365d")
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"must be {DURATION_FORMS}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total > MAX_DURATION_S:
        raise ValueError("must be at most 365d")
    return total or None


MAX_HEALTHCHECK_INTERVAL_S = 3600


class HealthchecksConfig(_Strict):
    """How often Docker runs the healthchecks of slice and baseline containers (default: as declared)."""

    min_interval: int | None = Field(
        None, description="run each at most this often, retries scaled to keep the time to unhealthy; stacklet "
                          "probes readiness itself, so a short interval only costs CPU (None: as declared)")

    @field_validator("min_interval", mode="before")
    @classmethod
    def _interval_is_a_duration(cls, value: Any) -> int | None:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ValueError("must be a duration such as 5s, 10s or 1m (0 or none: the intervals as declared)") \
                from None
        if seconds is not None and seconds > MAX_HEALTHCHECK_INTERVAL_S:
            raise ValueError("must be at most 1h: Docker would report a failing service that late")
        return seconds


class StackFile(_Strict):
    """The schema of stack.yaml."""

    name: str | None = Field(default=None, description="default: the Compose project name (so adding a "
                                                        "stack.yaml never changes a stack's identity)")
    description: str = ""
    compose: list[str] = Field(default_factory=list, description="Compose files, like -f (default: the one "
                                                                 "Compose picks: compose.yaml, docker-compose.yml...)")
    radius: int = Field(default=1, ge=0, le=MAX_RADIUS)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    linkproxy: LinkProxyConfig = Field(default_factory=LinkProxyConfig)
    ttl: int | None = Field(default=None, description="default `up --ttl` in seconds (None: no expiry)")
    snapshots: bool = Field(default=True, description="start seeded stores from a snapshot of their prepared data "
                                                      "(false: initdb, jobs and seeds on every boot)")
    healthchecks: HealthchecksConfig = Field(default_factory=HealthchecksConfig)
    services: dict[str, ServiceMeta] = Field(default_factory=dict)
    edges: EdgesConfig = Field(default_factory=EdgesConfig)
    checks: list[CheckSpec] = Field(default_factory=list, description="validation steps `stacklet check` runs")

    @field_validator("checks")
    @classmethod
    def _unique_check_names(cls, value: list[CheckSpec]) -> list[CheckSpec]:
        seen: set[str] = set()
        for check in value:
            if check.name in seen:
                raise ValueError(f"two checks are named {short_repr(check.name)}")
            seen.add(check.name)
        return value

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl_is_a_duration(cls, value: Any) -> int | None:
        return parse_duration(value)

    @field_validator("compose", mode="before")
    @classmethod
    def _one_or_more_files(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
            raise ValueError("must be lower-case letters, digits, '-' or '_'")
        return value


class Stack(BaseModel):
    """A loaded stack: its metadata, its Compose project, and where both came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    meta: StackFile
    compose: ComposeProject
    root: Path
    stack_file: Path | None = None

    @property
    def name(self) -> str:
        """stack.yaml's ``name:``, else the Compose project name (the same with or without a stack.yaml)."""
        return self.meta.name or _label_safe(self.compose.name)

    @property
    def services(self) -> list[str]:
        return list(self.compose.services)

    def service_meta(self, name: str) -> ServiceMeta:
        return self.meta.services.get(name) or ServiceMeta()

    @property
    def checks(self) -> list[CheckSpec]:
        return self.meta.checks

    @property
    def source(self) -> str:
        """The file a user would edit: stack.yaml, or the Compose file when there is none."""
        return str(self.stack_file or self.compose.files[0])


def find_stack_file(ref: str | os.PathLike, start: Path | None = None) -> Path:
    """Resolve a stack reference: a stack.yaml path, a folder holding one, or a name under stacks/."""
    path = Path(ref)
    if _is_file(path):
        return path.resolve()
    if _is_dir(path) and _is_file(path / STACK_FILE):
        return (path / STACK_FILE).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STACKS_DIR / str(ref) / STACK_FILE
        if _is_file(candidate):
            return candidate
    known = ", ".join(list_stacks(start)) or "none found"
    raise StackFileError(f"no stack named {short_repr(str(ref))}", file=short_repr(str(ref))[1:-1],
                         hint=f"stacks here: {known}; or pass a stack.yaml path, or -f compose.yaml")


def _is_file(path: Path) -> bool:
    """``Path.is_file`` that answers False for names the OS refuses (too long, invalid) instead of raising."""
    try:
        return path.is_file()
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    """``Path.is_dir`` that answers False for names the OS refuses (too long, invalid) instead of raising."""
    try:
        return path.is_dir()
    except OSError:
        return False


def list_stacks(start: Path | None = None) -> list[str]:
    """Names of the stacks under the nearest stacks/ folder."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        stacks = folder / STACKS_DIR
        if stacks.is_dir():
            return sorted(p.parent.name for p in stacks.glob(f"*/{STACK_FILE}"))
    return []


def load_stack_file(path: Path) -> StackFile:
    """Read and validate stack.yaml; errors name the file, the key and a hint."""
    data = load_yaml_file(path, StackFileError, "a mapping with at least `name:` (see stacks/shop/stack.yaml)")
    try:
        return StackFile.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc, path) from exc


COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


def find_compose_file(folder: Path) -> Path | None:
    """The Compose file Compose itself would pick in ``folder`` (compose.yaml first), or None."""
    return next((folder / n for n in COMPOSE_FILE_NAMES if (folder / n).is_file()), None)


def load_stack(ref: str | os.PathLike | None = None, *, compose_files: list[Path] | None = None,
               env_files: list[Path] | None = None, profiles: list[str] | None = None,
               start: Path | None = None) -> Stack:
    """Load a stack by reference (name, folder or stack.yaml), from Compose files, or from the current folder.

    ``-f`` files and a stack.yaml go together: the stack.yaml next to the first file (or named by
    ``ref``) still applies, with the ``-f`` files instead of its ``compose:`` list. Without either,
    the current folder is used as Compose does: its stack.yaml, else its compose.yaml.
    """
    here = (start or Path.cwd()).resolve()
    path: Path | None = None
    if ref is not None and _is_dir(Path(ref)) and not _is_file(Path(ref) / STACK_FILE) and not compose_files:
        found = find_compose_file(Path(ref).resolve())
        compose_files = [found] if found else None
        ref = None if found else ref
    if ref is not None:
        path = find_stack_file(ref, here)
    elif compose_files:
        beside = Path(compose_files[0]).resolve().parent / STACK_FILE
        path = beside if beside.is_file() else None
    elif (here / STACK_FILE).is_file():
        path = here / STACK_FILE
    elif find_compose_file(here) is None:
        stacks = list_stacks(here)
        if len(stacks) != 1:
            raise StackFileError("no stack given", hint=f"no stack.yaml or compose.yaml in {here.name}/; pass "
                                 f"--stack NAME (stacks here: {', '.join(stacks) or 'none'}) or -f compose.yaml")
        path = find_stack_file(stacks[0], here)
    if path is None:
        files = [Path(f).resolve() for f in compose_files] if compose_files else [find_compose_file(here)]
        compose = load_compose(files, env_files=env_files, profiles=profiles)
        return Stack(meta=StackFile(), compose=compose, root=files[0].parent)
    meta = load_stack_file(path)
    default = find_compose_file(path.parent) or path.parent / COMPOSE_FILE_NAMES[0]
    files = ([Path(f).resolve() for f in compose_files] if compose_files
             else [path.parent / name for name in meta.compose] or [default])
    compose = load_compose(files, env_files=env_files, profiles=profiles)  # the project directory is the first file's, as in Compose
    stack = Stack(meta=meta, compose=compose, root=path.parent, stack_file=path)
    check_references(stack)
    return stack


def load_source(source: str) -> Stack | None:
    """The stack a label recorded its file of (a stack.yaml, or the first Compose file), or None when that file
    is gone or no longer loads (what ``gc`` needs to judge images made from it)."""
    if not source or not Path(source).exists():
        return None
    try:
        return load_stack(source) if source.endswith(("stack.yaml", "stack.yml")) else load_stack(
            compose_files=[Path(source)])
    except StackletError:
        return None


def stack_reference(stack: Stack, where: Path | None = None) -> str:
    """The options that select ``stack`` from ``where`` (the current folder): empty when none are needed."""
    here = (where or Path.cwd()).resolve()
    if stack.root.resolve() == here and (stack.stack_file or find_compose_file(here) == stack.compose.files[0]):
        if stack.stack_file or len(stack.compose.files) == 1:
            return ""
    if stack.stack_file is not None:
        try:
            if find_stack_file(stack.name, here) == stack.stack_file.resolve():
                return f"--stack {stack.name}"
        except StackFileError:
            pass
        return f"--stack {_relative_to(stack.stack_file, here)}"
    return " ".join(f"-f {_relative_to(f, here)}" for f in stack.compose.files)


def _relative_to(path: Path, here: Path) -> str:
    """``path`` as typed from ``here`` (relative when it is below or beside it)."""
    return os.path.relpath(path.resolve(), here)


def check_references(stack: Stack) -> None:
    """Every service named in stack.yaml must exist in the Compose project."""
    known = stack.compose.services
    for name, meta in stack.meta.services.items():
        if name not in known:
            if name in stack.compose.inactive_services:
                continue  # described for when its profile is active
            raise _unknown(stack, f"services.{name}", name)
        for callee in meta.calls:
            if callee not in known:
                raise _unknown(stack, f"services.{name}.calls", callee)
    for name in stack.meta.baseline.addresses:
        if name not in known:
            raise _unknown(stack, f"baseline.addresses.{name}", name)
    for name, meta in stack.meta.services.items():
        for job in meta.seed_after or []:
            if job not in known:
                raise _unknown(stack, f"services.{name}.seed_after", job)
    for index, edge in enumerate(stack.meta.edges.drop):
        for end, key in ((edge.source, "from"), (edge.target, "to")):
            if end not in known and end not in stack.compose.inactive_services:
                raise _unknown(stack, f"edges.drop.{index}.{key}", end)
    for index, check in enumerate(stack.meta.checks):
        for tag in check.services:
            if tag not in known:
                raise _unknown(stack, f"checks.{index}.services", tag)
        for step_index, step in enumerate(check.steps):
            if step.service not in known:
                raise _unknown(stack, f"checks.{index}.steps.{step_index}.service", step.service)
        if check.command and check.command.in_ and check.command.in_ not in known:
            raise _unknown(stack, f"checks.{index}.command.in", check.command.in_)
        for step, variable in undefined_placeholders(check):
            step_index = [s.name for s in check.steps].index(step)
            raise StackFileError(f"step {step!r} of check {check.name!r} uses ${{{variable}}}, "
                                 "which no earlier step captures", file=stack.source,
                                 key=f"checks.{index}.steps.{step_index}",
                                 hint="capture it in an earlier step (`capture: {NAME: $.path}`); "
                                      "built in: ${run}, ${slice}")


def _unknown(stack: Stack, key: str, name: str) -> StackFileError:
    close = difflib.get_close_matches(name, list(stack.compose.services), n=1)
    hint = stack.compose.profile_hint(name) or (
        f"did you mean {close[0]!r}?" if close else f"services are: {', '.join(stack.compose.services)}")
    return StackFileError(f"no service {name!r} in the Compose file", file=stack.source, key=key, hint=hint)


def _schema_error(exc: ValidationError, path: Path) -> StackFileError:
    first: dict[str, Any] = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(first["loc"])
        return StackFileError("unknown key", file=str(path), key=key,
                              hint=f"allowed keys here: {', '.join(allowed)}")
    if kind == "missing":
        return StackFileError("required key is missing", file=str(path), key=key,
                              hint="see stacks/shop/stack.yaml for an example")
    message = first["msg"].removeprefix("Value error, ")
    return StackFileError(message, file=str(path), key=key, hint=f"got {short_repr(first.get('input'))}")


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = StackFile
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            if model is StackFile:
                break
            continue
        nested = _model_in(field.annotation)
        if nested is not None:
            model = nested
        elif str(part) == "services":
            model = ServiceMeta
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``X``, ``list[X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _label_safe(name: str) -> str:
    safe = re.sub(r"[^a-z0-9_-]", "-", name.lower()).strip("-_")
    return safe or "stack"


# Images of well-known stateful services and the ports they listen on.
KNOWN_STATEFUL_IMAGES: dict[str, list[int]] = {
    "postgres": [5432], "postgis": [5432], "timescaledb": [5432], "pgvector": [5432], "pgbouncer": [6432],
    "mysql": [3306], "mariadb": [3306], "percona": [3306], "mongo": [27017], "redis": [6379],
    "valkey": [6379], "keydb": [6379], "dragonfly": [6379], "memcached": [11211], "rabbitmq": [5672],
    "kafka": [9092], "redpanda": [9092], "zookeeper": [2181], "elasticsearch": [9200], "opensearch": [9200],
    "clickhouse": [8123, 9000], "minio": [9000], "cassandra": [9042], "scylla": [9042], "etcd": [2379],
    "nats": [4222], "influxdb": [8086], "neo4j": [7687], "couchdb": [5984], "cockroach": [26257],
    "seaweedfs": [8333], "mssql": [1433], "oracle": [1521],
}
_NOT_STATEFUL_WORDS = ("exporter", "admin", "ui", "commander", "insight", "dashboard", "proxy", "cli", "express",
                       "web", "gui", "browser", "operator", "backup", "client")
_FAMILY_ALIASES = {"postgresql": "postgres", "mongodb": "mongo", "mysqld": "mysql", "rabbit": "rabbitmq",
                   "elastic": "elasticsearch", "cockroachdb": "cockroach", "memcache": "memcached"}


@functools.lru_cache(maxsize=4096)
def image_family(image: str | None) -> str | None:
    """The well-known stateful family an image belongs to (``postgres:15-alpine`` → ``postgres``)."""
    if not image:
        return None
    repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
    base = repo.rsplit("/", 1)[-1].lower()
    words = base.split("-")
    if any(word in words for word in _NOT_STATEFUL_WORDS):
        return None
    for word in words:
        if word in _FAMILY_ALIASES:
            return _FAMILY_ALIASES[word]
    for family in KNOWN_STATEFUL_IMAGES:
        if base == family or base.startswith(family + "-") or base.endswith("-" + family) or family in base.split("-"):
            return family
    return None
