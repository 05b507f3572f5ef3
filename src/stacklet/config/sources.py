"""What only the Compose source files tell: which env_file each variable came from, and which
env_files are missing.

``docker compose config`` merges ``env_file`` into ``environment`` and fails on a missing env_file,
so stacklet reads the source YAML as well: for provenance (an edge made by a variable of a shared
env_file is weak) and to plan a project whose env_file is not committed (it becomes a note).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stacklet.config.yamlload import load_yaml_file
from stacklet.errors import ComposeError


@dataclass
class SourceFacts:
    """Per service: variables that came from an env_file (not from ``environment``), and missing env_files."""

    env_from_files: dict[str, dict[str, str]] = field(default_factory=dict)  # service -> variable -> env file
    missing_env_files: dict[str, list[str]] = field(default_factory=dict)   # service -> paths not found
    env_file_users: dict[str, list[str]] = field(default_factory=dict)      # env file -> services using it
    missing_extends: dict[str, str] = field(default_factory=dict)           # service -> file it extends, missing


def read_sources(files: list[Path], project_directory: Path) -> SourceFacts:
    """Read the env_file entries of every service of ``files`` (later files add to earlier ones)."""
    facts = SourceFacts()
    explicit: dict[str, set[str]] = {}
    env_files: dict[str, list[tuple[str, bool]]] = {}
    for file in files:
        for name, spec in _services(file).items():
            explicit.setdefault(name, set()).update(_environment_keys(spec.get("environment")))
            env_files.setdefault(name, []).extend(_env_file_entries(spec.get("env_file")))
            base = _missing_extends(spec, file.parent)
            if base:
                facts.missing_extends[name] = _shown(base, project_directory)
    for name, entries in env_files.items():
        for entry, required in entries:
            path = Path(entry) if Path(entry).is_absolute() else project_directory / entry
            shown = _shown(path, project_directory)
            facts.env_file_users.setdefault(shown, [])
            if name not in facts.env_file_users[shown]:
                facts.env_file_users[shown].append(name)
            if not path.is_file():
                if required:
                    facts.missing_env_files.setdefault(name, []).append(shown)
                continue
            for variable in env_file_variables(path):
                if variable not in explicit.get(name, set()):
                    facts.env_from_files.setdefault(name, {})[variable] = shown
    return facts


def env_file_variables(path: Path) -> list[str]:
    """The names an env file defines (``KEY=value``, ``export KEY=value``; comments and blanks skipped)."""
    names = []
    for line in path.read_text(errors="replace").splitlines():
        name = line.strip().removeprefix("export ").split("=", 1)[0].strip()
        if name and not name.startswith("#"):
            names.append(name)
    return names


def without_missing_files(files: list[Path], project_directory: Path, folder: Path) -> list[Path]:
    """Copies of ``files`` (written in ``folder``) in which a missing env_file is marked ``required: false``
    and an ``extends`` of a missing file is removed (with a placeholder image when nothing else names one).

    Compose then normalises the project as if those files were empty; relative paths still resolve
    against ``project_directory``, which the caller passes to Compose.
    """
    copies = []
    for index, file in enumerate(files):
        try:
            data = load_yaml_file(file, ComposeError) or {}
        except ComposeError:
            copies.append(file)
            continue
        changed = False
        for name, spec in (data.get("services") or {}).items() if isinstance(data, dict) else []:
            if isinstance(spec, dict) and _missing_extends(spec, file.parent):
                spec.pop("extends")
                if not spec.get("image") and not spec.get("build"):
                    spec["image"] = f"{MISSING_BASE_IMAGE}/{name}"
                changed = True
            if not isinstance(spec, dict) or spec.get("env_file") is None:
                continue
            entries = []
            for entry, required in _env_file_entries(spec["env_file"]):
                path = Path(entry) if Path(entry).is_absolute() else project_directory / entry
                if not path.is_file() and required:
                    changed = True
                    entries.append({"path": str(path), "required": False})
                else:
                    entries.append({"path": str(path), "required": required})
            spec["env_file"] = entries
        if changed:
            copy = folder / f"{index}-{file.name}"
            copy.write_text(yaml.safe_dump(data, sort_keys=False))
            copies.append(copy)
        else:
            copies.append(file)
    return copies


def scratch_folder() -> tempfile.TemporaryDirectory:
    """A temporary folder for rewritten copies of Compose files."""
    return tempfile.TemporaryDirectory(prefix="stacklet-compose-")


MISSING_BASE_IMAGE = "stacklet-missing-extends"  # placeholder image of a service whose extended file is missing


def _missing_extends(spec: dict[str, Any], folder: Path) -> Path | None:
    """The file ``extends`` names when it does not exist, else None."""
    extends = spec.get("extends")
    if isinstance(extends, dict) and extends.get("file"):
        path = Path(str(extends["file"]))
        path = path if path.is_absolute() else folder / path
        return None if path.is_file() or "$" in str(path) else path
    return None


def _services(file: Path) -> dict[str, dict[str, Any]]:
    try:
        data = load_yaml_file(file, ComposeError) or {}
    except ComposeError:
        return {}
    services = data.get("services") if isinstance(data, dict) else None
    return {k: v for k, v in (services or {}).items() if isinstance(v, dict)}


def _environment_keys(value: Any) -> set[str]:
    if isinstance(value, list):
        return {str(item).split("=", 1)[0] for item in value}
    return set(value or {}) if isinstance(value, dict) else set()


def _env_file_entries(value: Any) -> list[tuple[str, bool]]:
    """``env_file`` as (path, required) pairs, from its string, list or long form."""
    items = [value] if isinstance(value, (str, dict)) else value or []
    entries = []
    for item in items:
        if isinstance(item, str):
            entries.append((item, True))
        elif isinstance(item, dict) and item.get("path"):
            entries.append((str(item["path"]), bool(item.get("required", True))))
    return entries


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
