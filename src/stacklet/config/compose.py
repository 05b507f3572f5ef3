"""Load a Compose project into a pydantic model, normalised by ``docker compose config``.

Compose itself resolves anchors, merge keys, ``extends``, ``env_file`` and every short syntax,
so stacklet reads the same model Compose would run. Only the active profiles run and plan, as in
Compose (``--profile``, else ``COMPOSE_PROFILES``); the services of the other profiles are kept
aside so that errors can name the profile to enable. Unset variables and missing env_files do not
stop planning: they become notes (a missing env_file still stops ``up``, see ``boot_blockers``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from stacklet.config.dockerfile import DockerfileFacts, read_dockerfile
from stacklet.config.compose_cache import config_key, read_cached, store
from stacklet.config.sources import SourceFacts, read_sources, scratch_folder, without_missing_files
from stacklet.config.yamlload import MAX_DEPTH, check_nesting, load_yaml_file, scalar_texts
from stacklet.errors import ComposeError, short_repr

COMPOSE_TIMEOUT_S = 60
_MISSING_FILE = re.compile(r"(?:open|stat) ([^:]+): no such file or directory")
_ENV_FILE = re.compile(r"env file (\S+) not found")
_INTERPOLATION_FAILURE = (
    "error while interpolating",
    "invalid spec",
    "required variable",
    "invalid interpolation format",
    "failed to cast to expected type",
    "empty section between colons",
    "invalid reference format",
    "invalid port",
)
# A default may hold ``$X`` or one level of ``${...}`` but stops at any other '$': an unclosed ``${X:-``
# then costs a scan to the next '$', not to the end of the text (which made the scan quadratic).
_VARIABLE_USE = re.compile(r"\$\{(\w+)((?::?[-?+])(?:[^}$]|\$\{[^}$]*\}|\$(?!\{))*)?\}|\$(\w+)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?+]([^}]*))?\}|\$(\w+)")


class DependsOn(BaseModel):
    """One ``depends_on`` entry (Compose long form)."""

    condition: str = "service_started"
    required: bool = True
    restart: bool = False


class ComposeService(BaseModel):
    """The parts of a Compose service stacklet plans with; ``raw`` keeps everything for rendering."""

    name: str
    image: str | None = None
    build_context: Path | None = None
    depends_on: dict[str, DependsOn] = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list)
    environment: dict[str, str | None] = Field(default_factory=dict)
    expose: list[int] = Field(default_factory=list)
    port_targets: list[int] = Field(default_factory=list)
    udp_ports: list[int] = Field(default_factory=list)
    named_volume_targets: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)
    has_healthcheck: bool = False
    network_mode: str | None = None
    command: list[str] = Field(default_factory=list)
    entrypoint: list[str] = Field(default_factory=list)
    restart: str | None = None
    dockerfile: DockerfileFacts | None = Field(None, description="what its Dockerfile says, when it is built")
    env_from_files: dict[str, str] = Field(default_factory=dict, description="variable -> the env_file it came from")
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def built(self) -> bool:
        return self.build_context is not None

    @property
    def run_command(self) -> list[str]:
        """What the container runs: Compose's entrypoint/command, else the Dockerfile's."""
        entrypoint = self.entrypoint or (self.dockerfile.entrypoint if self.dockerfile else [])
        command = self.command or (self.dockerfile.cmd if self.dockerfile and not self.entrypoint else [])
        return [*entrypoint, *command]


class ComposeProject(BaseModel):
    """A normalised Compose project."""

    files: list[Path]
    name: str
    services: dict[str, ComposeService]
    raw: dict[str, Any]
    interpolated: bool = True
    unset_variables: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list, description="every profile the files declare")
    active_profiles: list[str] = Field(default_factory=list)
    inactive_services: dict[str, list[str]] = Field(default_factory=dict, description="service -> its profiles")
    missing_env_files: dict[str, list[str]] = Field(default_factory=dict, description="service -> env_files not found")
    env_file_users: dict[str, list[str]] = Field(default_factory=dict, description="env_file -> services using it")
    missing_extends: dict[str, str] = Field(default_factory=dict, description="service -> extended file not found")

    @property
    def notes(self) -> list[str]:
        """Human-readable remarks about how the model was read."""
        notes = []
        if self.unset_variables:
            names = ", ".join(self.unset_variables)
            how = "planned from the uninterpolated model" if not self.interpolated else "they default to blank"
            notes.append(f"variables not set: {names} ({how}; set them or pass --env-file)")
        for path, services in sorted(_invert(self.missing_env_files).items()):
            notes.append(f"env_file {path} of {', '.join(services)} is missing: planned without its variables "
                         "(`up` refuses until it exists)")
        for path, services in sorted(_invert({k: [v] for k, v in self.missing_extends.items()}).items()):
            notes.append(f"{', '.join(services)} extend {path}, which is missing: planned from their own keys "
                         "only (`up` refuses until it exists)")
        return notes

    @property
    def boot_blockers(self) -> list[str]:
        """Why this project cannot be booted as it is (a missing env_file); empty when it can."""
        return ([f"env_file {path} (services.{services[0]}.env_file) does not exist"
                 for path, services in sorted(_invert(self.missing_env_files).items())]
                + [f"{path} (services.{name}.extends) does not exist" for name, path in sorted(self.missing_extends.items())])

    def shared_env_files(self) -> set[str]:
        """env_files used by two services or more: their variables make weak edges."""
        return {path for path, users in self.env_file_users.items() if len(users) >= 2}

    def profile_hint(self, name: str) -> str | None:
        """How to enable ``name`` when it is in an inactive profile."""
        profiles = self.inactive_services.get(name)
        return f"{name} is in profile {', '.join(profiles)}: pass --profile {profiles[0]}" if profiles else None


def compose_available() -> bool:
    """True when ``docker compose`` (v2) can be run."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True,
                              timeout=COMPOSE_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def active_profiles(given: list[str] | None = None) -> list[str]:
    """The profiles to enable: those given (``--profile``), else ``COMPOSE_PROFILES``, as Compose does."""
    if given:
        return list(dict.fromkeys(p for item in given for p in item.split(",") if p))
    return [p for p in os.environ.get("COMPOSE_PROFILES", "").split(",") if p.strip()]


def load_compose(files: list[Path], *, env_files: list[Path] | None = None,
                 project_directory: Path | None = None, profiles: list[str] | None = None) -> ComposeProject:
    """Normalise ``files`` with ``docker compose config --format json`` and parse the result."""
    files = [Path(f).resolve() for f in files]
    for file in files:
        if not file.is_file():
            raise ComposeError("file not found", file=str(file),
                               hint="check the path given with -f or `compose:` in stack.yaml")
    for env_file in env_files or []:
        if not Path(env_file).is_file():
            raise ComposeError("env file not found", file=str(env_file), hint="check --env-file")
    if shutil.which("docker") is None:
        raise ComposeError(
            "cannot normalise the Compose file: the `docker` CLI is not installed",
            file=str(files[0]),
            hint="run scripts/bootstrap.sh, or install Docker with the Compose v2 plugin",
        )
    directory = Path(project_directory or files[0].parent).resolve()
    sources = read_sources(files, directory)
    unset = unset_variables(files, env_files or [], directory)
    env_paths = [Path(env_file).resolve() for env_file in env_files or []]
    key = config_key(files, env_paths, directory, ["--profile", "*", "config", "--format", "json"])
    cached = read_cached(key)
    if cached is not None:
        stdout, interpolated = cached["stdout"], bool(cached.get("interpolated", True))
    else:
        stdout, interpolated = _normalise(files, env_paths, directory, sources, unset)
        store(key, stdout, interpolated)
    try:
        raw = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise ComposeError(f"docker compose config printed invalid JSON ({exc})", file=str(files[0]),
                           hint="check `docker compose version` is v2") from exc
    except RecursionError:
        raise ComposeError(f"nests deeper than {MAX_DEPTH} levels", file=str(files[0]),
                           hint="flatten the document") from None
    check_nesting(raw, files[0], ComposeError)
    if interpolated:  # Compose prints a `$` of a value as `$$` (its input form); the model holds the values
        raw = map_strings(raw, lambda text: text.replace("$$", "$"))
    project = parse_compose(raw, files, interpolated=interpolated, unset_variables=unset,
                            profiles=active_profiles(profiles), env_from_files=sources.env_from_files)
    project.missing_env_files = sources.missing_env_files
    project.missing_extends = {k: v for k, v in sources.missing_extends.items() if k in project.services}
    project.env_file_users = {path: [s for s in users if s in project.services]
                              for path, users in sources.env_file_users.items()}
    return project


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """A copy of a JSON-like ``value`` with ``change`` applied to every string in it (not to mapping keys)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, change) for v in value]
    return value


def _normalise(files: list[Path], env_files: list[Path], directory: Path, sources: SourceFacts,
               unset: list[str]) -> tuple[str, bool]:
    """Run ``docker compose config`` (again without interpolation when variables are missing): its JSON
    output and whether it was interpolated; ComposeError when it fails."""
    with scratch_folder() as scratch:
        missing = sources.missing_env_files or sources.missing_extends
        given = without_missing_files(files, directory, Path(scratch)) if missing else files
        # every value joined to its flag (--file=PATH), so no path is ever read as an option of its own
        base = ["docker", "compose", *(f"--file={file}" for file in given)]
        base += [f"--env-file={env_file}" for env_file in env_files]
        base += [f"--project-directory={directory}", "--profile", "*", "config", "--format", "json"]
        if given != files and not _names_project(files):
            base[2:2] = [f"--project-name={_label_name(directory.name)}"]

        result = _run(base, files[0])
        interpolated = True
        if result.returncode != 0 and (unset or _is_interpolation_failure(result.stderr)):
            result = _run(base + ["--no-interpolate"], files[0])
            interpolated = False
    if result.returncode != 0:
        raise _compose_failure(result.stderr, files)
    return result.stdout, interpolated


def parse_compose(raw: dict[str, Any], files: list[Path], *, interpolated: bool = True,
                  unset_variables: list[str] | None = None, profiles: list[str] | None = None,
                  env_from_files: dict[str, dict[str, str]] | None = None) -> ComposeProject:
    """Build a ComposeProject from the JSON form of ``docker compose config`` (every profile enabled).

    Only services without profiles, or with one of ``profiles`` active (``*``: all), are kept, in
    the model and in ``raw``; the others are listed in ``inactive_services``.
    """
    active = set(profiles or [])
    raw = dict(raw)
    every = raw.get("services") or {}
    declared = sorted({p for spec in every.values() for p in (spec or {}).get("profiles") or []})
    inactive = {name: list(spec.get("profiles")) for name, spec in every.items()
                if (spec or {}).get("profiles") and "*" not in active and not active & set(spec["profiles"])}
    raw["services"] = {name: spec for name, spec in every.items() if name not in inactive}
    for name, spec in raw["services"].items():
        _drop_inactive_dependencies(name, spec or {}, inactive, files[0])
    services = {name: _parse_service(name, spec or {}, (env_from_files or {}).get(name, {}))
                for name, spec in raw["services"].items()}
    for service in services.values():
        _check_ports(service, files[0])
    return ComposeProject(files=files, name=raw.get("name") or files[0].parent.name, services=services,
                          raw=raw, interpolated=interpolated, unset_variables=unset_variables or [],
                          profiles=declared, active_profiles=sorted(active), inactive_services=inactive)


def _drop_inactive_dependencies(name: str, spec: dict[str, Any], inactive: dict[str, list[str]], file: Path) -> None:
    """A dependency on a service of an inactive profile: dropped when optional, an error when required."""
    depends = spec.get("depends_on")
    if not isinstance(depends, dict):
        return
    for dep in [d for d in depends if d in inactive]:
        if (depends[dep] or {}).get("required", True):
            raise ComposeError(f"{name} depends on {dep}, which is in inactive profile {', '.join(inactive[dep])}",
                               file=str(file), key=f"services.{name}.depends_on.{dep}",
                               hint=f"pass --profile {inactive[dep][0]} (or set COMPOSE_PROFILES), "
                                    "or mark the dependency `required: false`")
        spec["depends_on"] = {d: o for d, o in depends.items() if d != dep}
        depends = spec["depends_on"]


def _invert(mapping: dict[str, list[str]]) -> dict[str, list[str]]:
    inverted: dict[str, list[str]] = {}
    for key, values in mapping.items():
        for value in values:
            inverted.setdefault(value, []).append(key)
    return inverted


def _names_project(files: list[Path]) -> bool:
    """True when a file sets the top-level ``name:`` (then Compose keeps it whatever the file's path)."""
    for file in files:
        try:
            data = load_yaml_file(file, ComposeError) or {}
        except ComposeError:
            continue
        if isinstance(data, dict) and data.get("name"):
            return True
    return False


def _label_name(name: str) -> str:
    """A folder name as Compose makes it a project name (lower case, letters, digits, '-' and '_')."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()) or "default"


def unset_variables(files: list[Path], env_files: list[Path], project_directory: Path) -> list[str]:
    """Variables the files use without a default that neither the environment nor an env file sets."""
    defined = set(os.environ)
    for env_file in [*env_files, project_directory / ".env"]:
        if Path(env_file).is_file():
            for line in Path(env_file).read_text(errors="replace").splitlines():
                name = line.strip().removeprefix("export ").split("=", 1)[0].strip()
                if name and not name.startswith("#"):
                    defined.add(name)
    used: set[str] = set()
    for file in files:
        for value in scalar_texts(file.read_text(errors="replace")):  # values only: comments are not read
            for match in _VARIABLE_USE.finditer(value.replace("$$", "")):
                name = match.group(1) or match.group(3)
                if match.group(2) is None or match.group(2).startswith(("?", ":?")):
                    used.add(name)
    return sorted(used - defined)


def substitute_defaults(value: str) -> str:
    """Replace ``${VAR:-default}`` by its default (or blank) in an uninterpolated value."""
    return _VARIABLE.sub(lambda m: os.environ.get(m.group(1) or m.group(3) or "", m.group(2) or ""), value)


def _run(cmd: list[str], file: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=COMPOSE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ComposeError(f"`docker compose config` did not finish within {COMPOSE_TIMEOUT_S} s",
                           file=str(file), hint="check the file for huge includes") from exc


def _is_interpolation_failure(stderr: str) -> bool:
    text = stderr.lower()
    return any(marker in text for marker in _INTERPOLATION_FAILURE)


def _compose_failure(stderr: str, files: list[Path]) -> ComposeError:
    lines = [ln for ln in stderr.strip().splitlines() if "level=warning" not in ln]
    message = lines[-1] if lines else stderr.strip() or "unknown error"
    file = str(files[0])
    env = _ENV_FILE.search(message)
    if env:
        return ComposeError(f"env file {env.group(1)} not found", file=file,
                            key=_key_naming(files, Path(env.group(1)).name) or "env_file",
                            hint="create that file or remove the env_file entry")
    missing = _MISSING_FILE.search(message)
    if missing:
        return ComposeError(f"references a file that does not exist: {missing.group(1)}", file=file,
                            key=_key_naming(files, Path(missing.group(1)).name),
                            hint="add the missing file next to the Compose file, or fix the path")
    return ComposeError(f"docker compose config failed: {message}", file=file,
                        hint="run `docker compose -f FILE config` to see the full error")


def _key_naming(files: list[Path], basename: str) -> str | None:
    """Which Compose key (include, extends, env_file) names a missing file."""
    for file in files:
        try:
            data = load_yaml_file(file, ComposeError) or {}
        except ComposeError:
            continue
        if not isinstance(data, dict):
            continue
        for entry in data.get("include") or []:
            paths = entry if isinstance(entry, str) else (entry or {}).get("path", [])
            if any(Path(p).name == basename for p in ([paths] if isinstance(paths, str) else paths)):
                return "include"
        for name, service in (data.get("services") or {}).items():
            extends = (service or {}).get("extends") if isinstance(service, dict) else None
            if isinstance(extends, dict) and Path(str(extends.get("file", ""))).name == basename:
                return f"services.{name}.extends"
            env_files = (service or {}).get("env_file") if isinstance(service, dict) else None
            env_files = [env_files] if isinstance(env_files, (str, dict)) else env_files or []
            if any(Path(e if isinstance(e, str) else e.get("path", "")).name == basename for e in env_files):
                return f"services.{name}.env_file"
    return None


def _parse_service(name: str, spec: dict[str, Any], env_from_files: dict[str, str] | None = None) -> ComposeService:
    build = spec.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    dockerfile = None
    if context and "$" not in str(context):
        options = build if isinstance(build, dict) else {}
        dockerfile = read_dockerfile(Path(context), options.get("dockerfile"), options.get("dockerfile_inline"))
    environment = _environment(spec.get("environment"))
    depends = spec.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {d: {} for d in depends}
    expose = [int(str(p).split("/")[0].split("-")[0]) for p in spec.get("expose") or []
              if _is_number(p) and not str(p).endswith("/udp")]
    udp = [int(str(p).split("/")[0].split("-")[0]) for p in spec.get("expose") or []
           if _is_number(p) and str(p).endswith("/udp")]
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict) and _is_number(p.get("target"))]
    targets = [int(p["target"]) for p in ports if p.get("protocol", "tcp") == "tcp"]
    udp += [int(p["target"]) for p in ports if p.get("protocol") == "udp"]
    named = [v.get("target", "") for v in spec.get("volumes") or []
             if isinstance(v, dict) and v.get("type") == "volume" and v.get("source")
             and "$" not in str(v.get("source"))]
    return ComposeService(
        name=name,
        image=spec.get("image"),
        build_context=Path(context) if context else None,
        depends_on={d: DependsOn(**{k: v for k, v in (opts or {}).items() if k in DependsOn.model_fields})
                    for d, opts in depends.items()},
        links=[link.split(":")[0] for link in spec.get("links") or []],
        environment=environment,
        expose=expose,
        port_targets=targets,
        udp_ports=sorted(set(udp)),
        named_volume_targets=named,
        profiles=list(spec.get("profiles") or []),
        has_healthcheck=bool(spec.get("healthcheck")) and not (spec.get("healthcheck") or {}).get("disable"),
        network_mode=spec.get("network_mode"),
        command=_words(spec.get("command")),
        entrypoint=_words(spec.get("entrypoint")),
        restart=spec.get("restart"),
        dockerfile=dockerfile,
        env_from_files={k: v for k, v in (env_from_files or {}).items() if k in environment},
        raw=spec,
    )


def _words(value: Any) -> list[str]:
    """A Compose command or entrypoint (list, or string in shell form) as a list of words."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return ["/bin/sh", "-c", value] if isinstance(value, str) and value else []


def _check_ports(service: ComposeService, file: Path) -> None:
    """Compose checks published ports but not ``expose:``; a port outside 1-65535 would fail only at boot."""
    for key, ports in (("expose", service.expose), ("ports", service.port_targets), ("expose", service.udp_ports)):
        bad = next((port for port in ports if not 1 <= port <= 65535), None)
        if bad is not None:
            raise ComposeError(f"port {short_repr(bad)} is outside 1-65535", file=str(file),
                               key=f"services.{service.name}.{key}", hint="a TCP or UDP port is 1-65535")


def _environment(value: Any) -> dict[str, str | None]:
    """Compose environment in map or list form (``KEY=value`` or bare ``KEY``) as a dict."""
    if isinstance(value, list):
        pairs = (str(item).split("=", 1) for item in value)
        return {p[0]: (p[1] if len(p) == 2 else None) for p in pairs}
    return {k: (None if v is None else str(v)) for k, v in (value or {}).items()}


def _is_number(value: Any) -> bool:
    return str(value).split("/")[0].split("-")[0].isdigit()
