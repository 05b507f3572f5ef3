"""Load a Compose project into a pydantic model, normalised by ``docker compose config``.

Compose itself resolves anchors, merge keys, ``extends``, ``env_file`` and every short syntax,
so stacklet reads the same model Compose would run. Profiles are all enabled so that planning
sees every service. Unset variables do not stop planning: the model is then read without
interpolation and the missing names are reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

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
    raw: dict[str, Any] = Field(default_factory=dict)


class ComposeProject(BaseModel):
    """A normalised Compose project."""

    files: list[Path]
    name: str
    services: dict[str, ComposeService]
    raw: dict[str, Any]
    interpolated: bool = True
    unset_variables: list[str] = Field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """Human-readable remarks about how the model was read."""
        if not self.unset_variables:
            return []
        names = ", ".join(self.unset_variables)
        how = "planned from the uninterpolated model" if not self.interpolated else "they default to blank"
        return [f"variables not set: {names} ({how}; set them or pass --env-file)"]


def compose_available() -> bool:
    """True when ``docker compose`` (v2) can be run."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True,
                              timeout=COMPOSE_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def load_compose(files: list[Path], *, env_files: list[Path] | None = None,
                 project_directory: Path | None = None) -> ComposeProject:
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
    # every value joined to its flag (--file=PATH), so no path is ever read as an option of its own
    base = ["docker", "compose", *(f"--file={file}" for file in files)]
    base += [f"--env-file={Path(env_file).resolve()}" for env_file in env_files or []]
    if project_directory:
        base.append(f"--project-directory={Path(project_directory).resolve()}")
    base += ["--profile", "*", "config", "--format", "json"]

    result = _run(base, files[0])
    unset = unset_variables(files, env_files or [], project_directory or files[0].parent)
    interpolated = True
    if result.returncode != 0 and (unset or _is_interpolation_failure(result.stderr)):
        result = _run(base + ["--no-interpolate"], files[0])
        interpolated = False
    if result.returncode != 0:
        raise _compose_failure(result.stderr, files)
    try:
        raw = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ComposeError(f"docker compose config printed invalid JSON ({exc})", file=str(files[0]),
                           hint="check `docker compose version` is v2") from exc
    except RecursionError:
        raise ComposeError(f"nests deeper than {MAX_DEPTH} levels", file=str(files[0]),
                           hint="flatten the document") from None
    check_nesting(raw, files[0], ComposeError)
    return parse_compose(raw, files, interpolated=interpolated, unset_variables=unset)


def parse_compose(raw: dict[str, Any], files: list[Path], *, interpolated: bool = True,
                  unset_variables: list[str] | None = None) -> ComposeProject:
    """Build a ComposeProject from the JSON form of ``docker compose config``."""
    services = {name: _parse_service(name, spec or {}) for name, spec in (raw.get("services") or {}).items()}
    for service in services.values():
        _check_ports(service, files[0])
    return ComposeProject(files=files, name=raw.get("name") or files[0].parent.name, services=services,
                          raw=raw, interpolated=interpolated, unset_variables=unset_variables or [])


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


def _parse_service(name: str, spec: dict[str, Any]) -> ComposeService:
    build = spec.get("build")
    context = build.get("context") if isinstance(build, dict) else build
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
        raw=spec,
    )


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
