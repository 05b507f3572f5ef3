"""A cache of what ``docker compose config`` printed, keyed by everything that output depends on.

Every command that reads a slice's stack (status, reset, fault, check, reload) normalises its Compose
files again, and ``docker compose config`` costs a fifth of a second or more per run. The key hashes:

- the command's inputs: Compose files, ``--env-file`` files, project directory, profiles;
- the bytes of every file Compose reads for it: the Compose files, the project's ``.env`` and the
  env files given, each service's ``env_file`` and ``label_file``, and the files its ``extends``
  names, followed through extended files;
- every environment variable whose name is a word of those files (``${X}``, but also a bare ``X`` in
  ``environment:`` or an env file, which Compose takes from the environment), and every
  ``COMPOSE_*`` and ``DOCKER_*`` variable;
- the docker CLI and its Compose plugin (path, size and modification time), so an upgrade misses.

A project whose files ``include:`` others is not cached: which files it reads is known only to Compose.
``STACKLET_COMPOSE_CACHE=0`` turns the cache off. Entries live in ``$XDG_CACHE_HOME/stacklet/compose``
(else ``~/.cache/stacklet/compose``); the oldest go beyond ``MAX_ENTRIES``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from stacklet.config.yamlload import load_yaml_file
from stacklet.errors import ComposeError

MAX_ENTRIES = 200
MAX_FOLLOWED_FILES = 200  # extends chains longer than this are not cached
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLUGIN_DIRS = ("~/.docker/cli-plugins", "/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


def cache_enabled() -> bool:
    """False when ``STACKLET_COMPOSE_CACHE`` is ``0``, ``false`` or ``no``."""
    return os.environ.get("STACKLET_COMPOSE_CACHE", "1").strip().lower() not in {"0", "false", "no", "off"}


def cache_folder() -> Path:
    """Where cached outputs live."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stacklet" / "compose"


def config_key(files: list[Path], env_files: list[Path], project_directory: Path, command: list[str]) -> str | None:
    """The cache key of one ``docker compose config`` run, or None when it cannot be cached."""
    if not cache_enabled():
        return None
    read = _files_read(files, env_files, project_directory)
    if read is None:
        return None
    digests = {str(path): _digest(path) for path in sorted(read)}
    words = set()
    for path in read:
        if path.is_file():
            words.update(_WORD.findall(path.read_text(errors="replace")))
    environment = {k: v for k, v in sorted(os.environ.items()) if k in words or k.startswith(("COMPOSE_", "DOCKER_"))}
    document = {"command": command, "files": digests, "environment": environment, "tools": _tools()}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def read_cached(key: str | None) -> dict[str, Any] | None:
    """The entry stored under ``key`` (``{"stdout": ..., "interpolated": ...}``), or None."""
    if key is None:
        return None
    try:
        entry = json.loads((cache_folder() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("stdout"), str) else None


def store(key: str | None, stdout: str, interpolated: bool) -> None:
    """Keep one successful output under ``key`` (written atomically; a cache that cannot be written is skipped)."""
    if key is None:
        return
    folder = cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as handle:
            json.dump({"stdout": stdout, "interpolated": interpolated}, handle)
        os.replace(handle.name, folder / f"{key}.json")
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        return


def _files_read(files: list[Path], env_files: list[Path], project_directory: Path) -> set[Path] | None:
    """Every file Compose reads for these inputs (existing or not), or None when one ``include:``s others."""
    read = {Path(f).resolve() for f in [*files, *env_files, project_directory / ".env"]}
    pending = [Path(f).resolve() for f in files]
    seen: set[Path] = set()
    while pending:
        file = pending.pop()
        if file in seen or not file.is_file():
            continue
        seen.add(file)
        if len(seen) > MAX_FOLLOWED_FILES:
            return None
        try:
            data = load_yaml_file(file, ComposeError)
        except ComposeError:
            continue  # Compose reports it; the key still covers the file's bytes
        if not isinstance(data, dict):
            continue
        if data.get("include"):
            return None
        for spec in (data.get("services") or {}).values():
            if not isinstance(spec, dict):
                continue
            for entry in _paths(spec.get("env_file")) + _paths(spec.get("label_file")):
                read |= {_resolved(entry, project_directory), _resolved(entry, file.parent)}
            extends = spec.get("extends")
            if isinstance(extends, dict) and extends.get("file"):
                extended = _resolved(str(extends["file"]), file.parent)
                read.add(extended)
                pending.append(extended)
    return read


def _paths(value: Any) -> list[str]:
    """The paths of an ``env_file``/``label_file`` value: a string, a list of strings or ``{path: ...}``."""
    items = [value] if isinstance(value, (str, dict)) else value if isinstance(value, list) else []
    return [str(item.get("path")) if isinstance(item, dict) else str(item) for item in items
            if isinstance(item, str) or (isinstance(item, dict) and item.get("path"))]


def _resolved(entry: str, folder: Path) -> Path:
    path = Path(os.path.expanduser(entry))
    return (path if path.is_absolute() else folder / path).resolve()


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None  # missing (or unreadable): Compose sees the same


def _tools() -> list[tuple[str, int, int]]:
    """Path, size and mtime of the docker CLI and of every Compose plugin it may load."""
    candidates = [shutil.which("docker") or ""]
    config = os.environ.get("DOCKER_CONFIG")
    folders = [*(([f"{config}/cli-plugins"]) if config else []), *_PLUGIN_DIRS]
    candidates += [os.path.join(os.path.expanduser(folder), "docker-compose") for folder in folders]
    found = []
    for candidate in candidates:
        try:
            stat = os.stat(candidate)
        except OSError:
            continue
        found.append((candidate, stat.st_size, stat.st_mtime_ns))
    return found
