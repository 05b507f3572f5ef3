"""Seed data: files in seeds/<stack>/<service>/, applied in name order once a service is healthy.

Kinds (declared per service in stack.yaml ``seed:``): ``*.sql`` run with psql inside the container,
``*.redis`` commands piped to redis-cli, ``*.sh`` run by a shell inside the container, ``*.json``
fixtures POSTed to the service. PostgreSQL seeds are applied to a template database
``<db>__seed``, and the live database is then created from it, so ``reset`` is one
``DROP ... WITH (FORCE)`` and ``CREATE DATABASE ... TEMPLATE`` (well under a second). Redis is reset
by flushing its database and replaying the commands.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from stacklet.docker.driver import Driver
from stacklet.docker.models import ContainerInfo
from stacklet.errors import BootError, StackFileError
from stacklet.config.stack import SeedConfig, Stack

SEEDS_DIR = "seeds"
KIND_OF_SUFFIX = {".sql": "sql", ".redis": "redis", ".sh": "sh", ".json": "json"}
TEMPLATE_SUFFIX = "__seed"
BASE_SUFFIX = "__base"
"""The live database as its preparing jobs left it; seeds load on a copy of it."""
EXEC_TIMEOUT_S = 300


class SeedResult(BaseModel):
    service: str
    files: list[str]
    seconds: float
    action: str


def seeds_folder(stack: Stack) -> Path | None:
    """seeds/<stack>/ in the nearest folder holding seeds/, from the stack's folder upwards."""
    return seeds_folder_near(stack.root, stack.name)


def seeds_folder_near(root: Path, stack_name: str) -> Path | None:
    """seeds/<stack_name>/ in the nearest folder holding seeds/, from ``root`` upwards (no stack loaded)."""
    for folder in (root, *root.parents):
        if (folder / SEEDS_DIR).is_dir():
            return folder / SEEDS_DIR / stack_name
    return None


def seed_files(stack: Stack, service: str) -> list[Path]:
    """The seed files of ``service`` in apply order; each kind must be declared in stack.yaml."""
    root = seeds_folder(stack)
    folder = root / service if root else None
    if folder is None or not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "README")))
    declared = (stack.service_meta(service).seed or SeedConfig()).kinds()
    for file in files:
        kind = KIND_OF_SUFFIX.get(file.suffix)
        if kind is None:
            raise StackFileError(f"seed file {file.name} has an unknown kind", file=str(file),
                                 hint=f"seed files end in {', '.join(KIND_OF_SUFFIX)}")
        if kind not in declared:
            raise StackFileError(f"{service} has {file.suffix} seed files but does not take {kind} seeds",
                                 file=stack.source, key=f"services.{service}.seed.{kind}",
                                 hint=f"declare `seed: {{{kind}: {{}}}}` under services.{service} in stack.yaml")
    return files


def seed_plan(stack: Stack, services: list[str]) -> dict[str, list[str]]:
    """Service → seed file names, for the services that have any."""
    return {s: [f.name for f in files] for s in services if (files := seed_files(stack, s))}


class Seeder:
    """Applies and resets the seeds of services in running containers."""

    def __init__(self, driver: Driver, stack: Stack,
                 direct: Callable[[ContainerInfo, int], str | None] = lambda info, port: None):
        self.driver = driver
        self.stack = stack
        self.direct = direct  # host:port that reaches a container port from here (its network, or as published)

    def seed(self, service: str, container: ContainerInfo) -> SeedResult:
        """Load the seed files (fresh), and make the service's data exactly the seeded state."""
        started = time.monotonic()
        files = seed_files(self.stack, service)
        config = self.stack.service_meta(service).seed or SeedConfig()
        has_sql = bool(config.sql) and any(f.suffix == ".sql" for f in files)
        if has_sql:
            database, user = self._postgres(service, config)
            base = self._keep_base(service, container, database, user)
            self._psql(service, container, user, "postgres",
                       f'DROP DATABASE IF EXISTS "{database}{TEMPLATE_SUFFIX}" WITH (FORCE)',
                       f'CREATE DATABASE "{database}{TEMPLATE_SUFFIX}" OWNER "{user}" TEMPLATE "{base}"')
        if config.redis:
            self._redis_cli(service, container, config, b"FLUSHDB\n", "FLUSHDB")
        for file in files:
            self._apply(service, container, config, file)
        if has_sql:
            self._restore_postgres(service, container, config)
        return SeedResult(service=service, files=[f.name for f in files], seconds=time.monotonic() - started,
                          action="seed")

    def reset(self, service: str, container: ContainerInfo) -> SeedResult:
        """Put the service's data back to its exact seeded state."""
        started = time.monotonic()
        files = seed_files(self.stack, service)
        config = self.stack.service_meta(service).seed or SeedConfig()
        if not files:
            raise StackFileError(f"{service} has no seed files to reset to",
                                 hint=f"add files under seeds/{self.stack.name}/{service}/")
        if config.json_ and any(f.suffix == ".json" for f in files):
            raise StackFileError(f"{service} is seeded over HTTP, which cannot be reset",
                                 hint="reset the database behind it instead")
        if config.sql and any(f.suffix == ".sql" for f in files):
            self._restore_postgres(service, container, config)
        redis_files = [f for f in files if f.suffix == ".redis"]
        if config.redis and redis_files:
            # the files were checked line by line when seeded: replay them in one pipelined batch
            commands = ["FLUSHDB"] + [line for f in redis_files for _, line in _redis_lines(f)]
            payload = b"".join(resp_command(split_redis_args(line)) for line in commands)
            result = self.driver.exec(container.id, ["redis-cli", "-n", str(config.redis.db), "--pipe"], payload,
                                      EXEC_TIMEOUT_S)
            if result.returncode != 0:
                raise BootError(f"reset of {service} failed: {_tail(result.stdout + result.stderr)}",
                                service=service, hint="`stacklet seed " + service + "` reloads and checks the files")
        for file in files:
            if file.suffix == ".sh":
                self._apply(service, container, config, file)
        return SeedResult(service=service, files=[f.name for f in files], seconds=time.monotonic() - started,
                          action="reset")

    def flush(self, service: str, container: ContainerInfo) -> None:
        """Make the seeded data durable in the container's files (before a snapshot copies them):
        a PostgreSQL ``CHECKPOINT``, a Redis ``SAVE``; other kinds write their files as they go."""
        config = self.stack.service_meta(service).seed or SeedConfig()
        if config.sql:
            _, user = self._postgres(service, config)
            self._psql(service, container, user, "postgres", "CHECKPOINT")
        if config.redis:
            self._redis_cli(service, container, config, b"SAVE\n", "SAVE")

    # -- kinds --------------------------------------------------------------------------------

    def _apply(self, service: str, container: ContainerInfo, config: SeedConfig, file: Path) -> None:
        kind = KIND_OF_SUFFIX[file.suffix]
        if kind == "sql":
            database, user = self._postgres(service, config)
            argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-U", user,
                    "-d", database + TEMPLATE_SUFFIX, "-f", "-"]
            result = self.driver.exec(container.id, argv, file.read_bytes(), EXEC_TIMEOUT_S)
            if result.returncode != 0:
                raise _seed_failure(service, file, _psql_error(result.stderr))
        elif kind == "redis":
            self._redis_file(service, container, config, file)
        elif kind == "sh":
            result = self.driver.exec(container.id, [config.sh.shell, "-s"], file.read_bytes(), EXEC_TIMEOUT_S)
            if result.returncode != 0:
                raise _seed_failure(service, file, f"exited with {result.returncode}: "
                                                   f"{_tail(result.stderr or result.stdout)}")
        else:
            self._post_fixtures(service, container, config, file)

    def _postgres(self, service: str, config: SeedConfig) -> tuple[str, str]:
        env = self.stack.compose.services[service].environment
        user = config.sql.user or env.get("POSTGRES_USER") or "postgres"
        return config.sql.database or env.get("POSTGRES_DB") or user, user

    def _keep_base(self, service: str, container: ContainerInfo, database: str, user: str) -> str:
        """The database seeds are loaded on top of: the live database as the jobs that prepare it left it
        (migrations), kept once as ``<db>__base`` so that seeding again starts from the same schema."""
        base = database + BASE_SUFFIX
        found = self._psql_rows(service, container, user,
                                f"SELECT datname FROM pg_database WHERE datname IN ('{database}', '{base}')")
        if base not in found:
            source = f' TEMPLATE "{database}"' if database in found else ""
            self._psql(service, container, user, "postgres",
                       f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' "
                       "AND pid <> pg_backend_pid()",
                       f'CREATE DATABASE "{base}" OWNER "{user}"{source}')
        return base

    def _psql_rows(self, service: str, container: ContainerInfo, user: str, query: str) -> list[str]:
        argv = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", "postgres", "-c", query]
        result = self.driver.exec(container.id, argv, None, EXEC_TIMEOUT_S)
        if result.returncode != 0:
            raise BootError(f"seeding {service} failed: {query}: {_psql_error(result.stderr)}", service=service,
                            hint="check that the database answers and the user may read pg_database")
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def _restore_postgres(self, service: str, container: ContainerInfo, config: SeedConfig) -> None:
        database, user = self._postgres(service, config)
        self._psql(service, container, user, "postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                   f'CREATE DATABASE "{database}" OWNER "{user}" TEMPLATE "{database}{TEMPLATE_SUFFIX}"')

    def _psql(self, service: str, container: ContainerInfo, user: str, database: str, *commands: str) -> None:
        argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database]
        for command in commands:
            argv += ["-c", command]
        result = self.driver.exec(container.id, argv, None, EXEC_TIMEOUT_S)
        if result.returncode != 0:
            raise BootError(f"seeding {service} failed: {'; '.join(commands)}: {_psql_error(result.stderr)}",
                            service=service, hint="check the database user has CREATEDB rights")

    def _redis_file(self, service: str, container: ContainerInfo, config: SeedConfig, file: Path) -> None:
        lines = _redis_lines(file)
        payload = "".join(line + "\n" for _, line in lines).encode()
        output = self._redis_cli(service, container, config, payload, file.name, file)
        replies = output.splitlines()
        for index, reply in enumerate(replies):
            if reply.startswith("(error)"):
                line_no = lines[min(index, len(lines) - 1)][0]
                raise _seed_failure(service, file, f"line {line_no}: {lines[min(index, len(lines) - 1)][1]!r}: "
                                                   f"{reply.removeprefix('(error) ')}")

    def _redis_cli(self, service: str, container: ContainerInfo, config: SeedConfig, payload: bytes, what: str,
                   file: Path | None = None) -> str:
        argv = ["redis-cli", "--no-raw", "-n", str(config.redis.db)]
        result = self.driver.exec(container.id, argv, payload, EXEC_TIMEOUT_S)
        if result.returncode != 0:
            detail = f"redis-cli exited with {result.returncode}: {_tail(result.stderr or result.stdout)}"
            if file:
                raise _seed_failure(service, file, detail)
            raise BootError(f"seeding {service} failed at {what}: {detail}", service=service)
        return result.stdout

    def _post_fixtures(self, service: str, container: ContainerInfo, config: SeedConfig, file: Path) -> None:
        http = config.json_
        port = http.port or next(iter(sorted(container.ports)), None)
        host_port = container.ports.get(port) if port else None
        if not host_port:
            raise _seed_failure(service, file, f"the service publishes no port {port or ''} to POST to",
                                hint=f"set services.{service}.seed.json.port in stack.yaml")
        try:
            document = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise _seed_failure(service, file, f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        items = document if isinstance(document, list) else [document]
        for index, item in enumerate(items):
            address = self.direct(container, port) or f"127.0.0.1:{host_port}"
            request = urllib.request.Request(f"http://{address}{http.path}", method=http.method,
                                             data=json.dumps(item).encode(),
                                             headers={"Content-Type": "application/json",
                                                      "X-Request-Id": f"seed-{file.stem}-{index}"})
            try:
                with urllib.request.urlopen(request, timeout=30):
                    pass
            except urllib.error.HTTPError as exc:
                body = exc.read().decode(errors="replace")
                raise _seed_failure(service, file, f"item {index}: {http.method} {http.path} answered {exc.code}: "
                                                   f"{_tail(body)}") from exc
            except OSError as exc:
                raise _seed_failure(service, file, f"item {index}: {http.method} {http.path} failed: {exc}") from exc


def _redis_lines(file: Path) -> list[tuple[int, str]]:
    """(line number, command) of a .redis file, without blank lines and # comments."""
    return [(n, line) for n, line in enumerate(file.read_text().splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def split_redis_args(line: str) -> list[bytes]:
    """Split a command line the way redis-cli does: "double" quotes with escapes, 'single' quotes."""
    args: list[bytes] = []
    i, n = 0, len(line)
    escapes = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a", '"': '"', "\\": "\\"}
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            break
        current = bytearray()
        if line[i] == '"':
            i += 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    nxt = line[i + 1]
                    if nxt == "x" and i + 3 < n:
                        current.append(int(line[i + 2:i + 4], 16))
                        i += 4
                        continue
                    current += escapes.get(nxt, nxt).encode()
                    i += 2
                    continue
                current += line[i].encode()
                i += 1
            i += 1
        elif line[i] == "'":
            i += 1
            while i < n and line[i] != "'":
                if line[i] == "\\" and i + 1 < n and line[i + 1] == "'":
                    i += 1
                current += line[i].encode()
                i += 1
            i += 1
        else:
            while i < n and not line[i].isspace():
                current += line[i].encode()
                i += 1
        args.append(bytes(current))
    return args


def resp_command(args: list[bytes]) -> bytes:
    """One command in the Redis protocol (what ``redis-cli --pipe`` sends)."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _seed_failure(service: str, file: Path, detail: str, hint: str | None = None) -> BootError:
    return BootError(f"seed {file.parent.name}/{file.name} of {service} failed: {detail}", service=service,
                     hint=hint or f"fix {file} (or boot with --no-seed)")


def _psql_error(stderr: str) -> str:
    """psql's error, with ``<stdin>:LINE`` turned into ``line LINE``."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    text = " ".join(lines[:3]) if lines else "psql failed without a message"
    return text.replace("psql:<stdin>:", "line ").replace("psql:-:", "line ")


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])
