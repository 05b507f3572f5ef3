"""What a Dockerfile says about the service it builds: base image, command, ports, healthcheck.

Read without Docker (no build): the final stage's ``FROM`` (stage aliases followed back to an
image), ``CMD``/``ENTRYPOINT`` in exec or shell form, ``EXPOSE``, ``VOLUME`` and ``HEALTHCHECK``.
Hand-written because the few instructions needed do not justify a parser dependency
(dockerfile-parse covers them, but pulls its own quoting rules we would still have to adapt).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from pydantic import BaseModel, Field

from stacklet.config.healthtiming import HealthTiming

_ARG_USE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


class DockerfileFacts(BaseModel):
    """The instructions of a Dockerfile that stacklet plans with."""

    path: str
    base_image: str | None = Field(None, description="image of the final stage, stage aliases resolved")
    cmd: list[str] = Field(default_factory=list)
    entrypoint: list[str] = Field(default_factory=list)
    expose: list[int] = Field(default_factory=list)
    volumes: list[str] = Field(default_factory=list)
    has_healthcheck: bool = False
    healthcheck_timing: HealthTiming | None = Field(None, description="its HEALTHCHECK's --interval and --retries")


def read_dockerfile(context: Path, dockerfile: str | None = None, inline: str | None = None) -> DockerfileFacts | None:
    """Facts of the Dockerfile of a build (``dockerfile`` is relative to ``context``); None when unreadable."""
    if inline is not None:
        return parse_dockerfile(inline, "dockerfile_inline")
    path = (context / (dockerfile or "Dockerfile")) if not Path(dockerfile or "").is_absolute() else Path(dockerfile)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return parse_dockerfile(text, str(path))


def parse_dockerfile(text: str, path: str = "Dockerfile") -> DockerfileFacts:
    """Parse the Dockerfile ``text``; instructions of earlier stages are forgotten at each ``FROM``."""
    facts = DockerfileFacts(path=path)
    args: dict[str, str] = {}
    stages: dict[str, str | None] = {}
    for instruction, rest in _instructions(text):
        if instruction == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name.strip(), default.strip().strip('"'))
        elif instruction == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            image = _expand(words[0], args) if words else None
            image = stages.get(image.lower(), image) if image else None
            if len(words) >= 3 and words[1].lower() == "as":
                stages[words[2].lower()] = image
            facts = DockerfileFacts(path=path, base_image=image)
        elif instruction == "CMD":
            facts.cmd = _command(rest)
        elif instruction == "ENTRYPOINT":
            facts.entrypoint = _command(rest)
        elif instruction == "EXPOSE":
            facts.expose += [int(p.split("/")[0]) for p in _expand(rest, args).split()
                             if p.split("/")[0].isdigit() and not p.endswith("/udp")]
        elif instruction == "VOLUME":
            facts.volumes += _command(rest) if rest.lstrip().startswith("[") else rest.split()
        elif instruction == "HEALTHCHECK":
            facts.has_healthcheck = rest.strip().upper() != "NONE"
            facts.healthcheck_timing = HealthTiming.from_dockerfile_options(rest) if facts.has_healthcheck else None
    return facts


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        found.append((word.upper(), rest.strip()))
        current = ""
    return found


def _command(rest: str) -> list[str]:
    """CMD/ENTRYPOINT in exec form (a JSON list) or shell form (run by /bin/sh -c)."""
    if rest.lstrip().startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list):
                return [str(v) for v in value]
        except json.JSONDecodeError:
            pass
    try:
        return ["/bin/sh", "-c", *shlex.split(rest)]
    except ValueError:
        return ["/bin/sh", "-c", rest]


def _expand(value: str, args: dict[str, str]) -> str:
    return _ARG_USE.sub(lambda m: args.get(m.group(1) or m.group(3) or "") or (m.group(2) or ""), value)
