"""Changed services from git: files changed since a ref, mapped to services by build context,
``paths:`` globs, the service definitions of the Compose files (old and new compared), the
env_files a service reads and its seed folder (``seeds/<stack>/<service>/``).
"""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path
from typing import Any


from stacklet.config.yamlload import load_yaml_text
from stacklet.errors import ComposeError, PlanError, short_repr
from stacklet.config.stack import Stack


MAX_REF_LENGTH = 256


def check_ref(ref: str) -> str:
    """A git ref as given to ``--since``, refused when git could read it as an option or it is not printable.

    Raises PlanError; the ref is then also passed after ``--end-of-options``, so this is the first of two locks.
    """
    if not ref or ref.startswith("-") or len(ref) > MAX_REF_LENGTH or not ref.isprintable() or any(c.isspace() for c in ref):
        raise PlanError(f"--since must name a git commit, branch or tag, got {short_repr(ref)}",
                        hint=f"e.g. --since HEAD~1 or --since main (no leading '-', no spaces, at most "
                             f"{MAX_REF_LENGTH} characters)")
    return ref


def changed_files(ref: str, cwd: Path) -> list[Path]:
    """Absolute paths of files changed between ``ref`` and the working tree (committed or not)."""
    check_ref(ref)
    try:
        top = _git(["rev-parse", "--show-toplevel"], cwd, check=True).stdout.strip()
        commit = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd)
        if commit.returncode != 0:
            raise PlanError(f"--since {ref}: no such commit, branch or tag in {top}",
                            hint="pass a commit, branch or tag that exists, e.g. --since HEAD~1 or --since main")
        diff = _git(["diff", "--name-only", "-z", "--end-of-options", commit.stdout.strip(), "--"], cwd)
        untracked = _git(["ls-files", "-z", "--others", "--exclude-standard"], Path(top))
    except FileNotFoundError as exc:
        raise PlanError("git is not installed, so --since cannot be used", hint="name the changed services") from exc
    except subprocess.CalledProcessError as exc:
        raise PlanError(f"{cwd} is not inside a git repository, so --since cannot be used",
                        hint="name the changed services instead") from exc
    if diff.returncode != 0:
        raise PlanError(f"git diff {ref} failed: {diff.stderr.strip()}",
                        hint="pass a commit, branch or tag that exists, e.g. --since HEAD~1 or --since main")
    names = diff.stdout.split("\0") + untracked.stdout.split("\0")
    return [Path(top) / name for name in dict.fromkeys(n for n in names if n)]


def _git(args: list[str], cwd: Path, *, check: bool = False) -> subprocess.CompletedProcess:
    """Run git with fixed options first; callers put user input only after ``--end-of-options``."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check,
                          stdin=subprocess.DEVNULL)


def services_for_files(stack: Stack, files: list[Path], ref: str | None = None) -> dict[str, list[str]]:
    """Map each service to the changed files that belong to it.

    A file belongs to a service when it is in its build context, matches its ``paths:`` globs, is
    an env_file it reads or a file of its seed folder, or is a Compose file whose definition of
    that service differs from the one at ``ref``.
    """
    hits: dict[str, list[str]] = {}
    compose_files = {f.resolve() for f in stack.compose.files}
    for file in files:
        relative = _relative(file, stack.root)
        shown = relative or str(file)
        owners = set()
        for name, service in stack.compose.services.items():
            context = service.build_context.resolve() if service.build_context else None
            if context is not None and file.resolve().is_relative_to(context):
                owners.add(name)
            if relative is not None and any(fnmatch.fnmatch(relative, g) for g in stack.service_meta(name).paths):
                owners.add(name)
        if relative is not None:
            owners |= set(stack.compose.env_file_users.get(relative, [])) & set(stack.compose.services)
        owners |= _seed_owner(stack, file)
        if ref is not None and file.resolve() in compose_files:
            owners |= edited_services(stack, file, ref)
        for name in sorted(owners):
            hits.setdefault(name, []).append(shown)
    return hits


def edited_services(stack: Stack, file: Path, ref: str) -> set[str]:
    """Services whose definition in Compose file ``file`` differs between ``ref`` and the working tree."""
    now = _services_in(file.read_text(errors="replace") if file.is_file() else "", file)
    shown = _git(["show", "--end-of-options", f"{check_ref(ref)}:./{file.name}"], file.parent)
    before = _services_in(shown.stdout, file) if shown.returncode == 0 else {}
    return {name for name in stack.compose.services if now.get(name) != before.get(name)}


def unmapped(files: list[Path], hits: dict[str, list[str]], stack: Stack) -> list[str]:
    """The changed files that no service owns."""
    owned = {f for found in hits.values() for f in found}
    return [shown for file in files if (shown := _relative(file, stack.root) or str(file)) not in owned]


def changed_services(stack: Stack, ref: str, cwd: Path | None = None) -> dict[str, list[str]]:
    """Services touched since ``ref``; a PlanError naming the files when none is."""
    return changes_since(stack, ref, cwd)[0]


def changes_since(stack: Stack, ref: str, cwd: Path | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """Services touched since ``ref`` with their files, and the changed files no service owns; a PlanError
    naming the files when no service is touched."""
    files = changed_files(ref, cwd or stack.root)
    hits = services_for_files(stack, files, ref)
    if not hits:
        names = unmapped(files, hits, stack)
        listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise PlanError(f"no service of {stack.name} is touched by the {len(files)} file(s) changed since {ref}"
                        + (f": {listed}" if listed else ""),
                        hint="a file maps to a service by its build context, `paths:` globs in stack.yaml, an "
                             "env_file it reads, its seed folder, or its definition in the Compose file; "
                             "name the changed services instead")
    return hits, unmapped(files, hits, stack)


def _seed_owner(stack: Stack, file: Path) -> set[str]:
    """The service whose seed folder (``seeds/<stack>/<service>/``) holds ``file``."""
    parts = file.resolve().parts
    for index in range(len(parts) - 3):
        if parts[index] == "seeds" and parts[index + 1] == stack.name and parts[index + 2] in stack.compose.services:
            return {parts[index + 2]}
    return set()


def _services_in(text: str, path: Path) -> dict[str, Any]:
    try:
        data = load_yaml_text(text, path, ComposeError) or {}
    except ComposeError:
        return {}
    return (data.get("services") or {}) if isinstance(data, dict) else {}


def _relative(file: Path, root: Path) -> str | None:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
