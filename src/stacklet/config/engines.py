"""The Docker engines a team uses: ``STACKLET_ENGINES`` or an engines file, each with its advertise address.

``STACKLET_ENGINES`` is a comma list of engines; each is ``default`` (DOCKER_HOST or the local
socket), a URL (``tcp://``, ``ssh://``, ``unix://``) or a Docker context name, optionally followed by
``=ADDRESS``, the address other hosts reach that engine's host on (its advertise address):

    STACKLET_ENGINES=default,tcp://10.250.0.2:2375=10.250.0.2,ssh://me@box

Without it, ``STACKLET_ENGINES_FILE`` (default ``$XDG_CONFIG_HOME/stacklet/engines.yaml``) is read:

    engines:
      - engine: tcp://10.250.0.2:2375
        advertise: 10.250.0.2
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stacklet.config.yamlload import load_yaml_file
from stacklet.errors import ConfigError

ENGINES_ENV = "STACKLET_ENGINES"
ENGINES_FILE_ENV = "STACKLET_ENGINES_FILE"
DEFAULT_ENGINE = "default"


class EngineSpec(BaseModel):
    """One engine: where it is, and the address its published ports are reached on from other hosts."""

    model_config = ConfigDict(extra="forbid")

    engine: str = Field(description="`default`, tcp://..., ssh://..., unix://... or a Docker context name",
                        min_length=1, max_length=500)
    advertise: str | None = Field(None, description="an IP address of the engine's host that other hosts reach")

    @field_validator("advertise")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)
        return value

    @property
    def host(self) -> str | None:
        """The URL to give the driver (None for the default engine and for contexts)."""
        return self.engine if "://" in self.engine else None

    @property
    def context(self) -> str | None:
        """The Docker context to give the driver (None for URLs and the default engine)."""
        return None if "://" in self.engine or self.engine == DEFAULT_ENGINE else self.engine


class EnginesFile(BaseModel):
    """The engines file."""

    model_config = ConfigDict(extra="forbid")

    engines: list[EngineSpec] = Field(default_factory=list, max_length=100)


def parse_engines(text: str) -> list[EngineSpec]:
    """The engines of a ``STACKLET_ENGINES`` value (``ENGINE[=ADVERTISE]``, comma separated)."""
    specs: list[EngineSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        engine, _, advertise = item.partition("=")
        try:
            spec = EngineSpec(engine=engine.strip(), advertise=advertise.strip() or None)
        except ValidationError as exc:
            raise ConfigError(f"cannot read engine {item!r}: {exc.errors()[0]['msg']}", key=ENGINES_ENV,
                              hint="ENGINE[=ADVERTISE-IP], comma separated, e.g. "
                                   "default,tcp://10.250.0.2:2375=10.250.0.2") from exc
        if spec.engine not in {s.engine for s in specs}:
            specs.append(spec)
    return specs


def engines_file() -> Path:
    """Where the engines file is looked for."""
    if os.environ.get(ENGINES_FILE_ENV):
        return Path(os.environ[ENGINES_FILE_ENV])
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "stacklet" / "engines.yaml"


def load_engines_file(path: Path) -> list[EngineSpec]:
    """The engines listed in an engines file."""
    data = load_yaml_file(path, ConfigError, expected="a mapping with `engines:`") or {}
    try:
        return EnginesFile.model_validate(data).engines
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(error["msg"], file=str(path), key=".".join(str(p) for p in error["loc"]),
                          hint="engines: a list of {engine: URL or context, advertise: IP}") from exc


def configured_engines() -> list[EngineSpec]:
    """The engines listed in ``STACKLET_ENGINES``, else in the engines file; none when neither exists."""
    if os.environ.get(ENGINES_ENV, "").strip():
        return parse_engines(os.environ[ENGINES_ENV])
    path = engines_file()
    return load_engines_file(path) if path.is_file() else []


def advertise_of(host: str | None, context: str | None, engines: list[EngineSpec]) -> str | None:
    """The advertise address configured for the engine named by ``host`` or ``context``."""
    name = host or context or DEFAULT_ENGINE
    return next((e.advertise for e in engines if e.engine == name), None)
