"""Changed services from git: files changed since a ref, mapped by build context and ``paths:`` globs."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

from stacklet.errors import PlanError, short_repr
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


def services_for_files(stack: Stack, files: list[Path]) -> dict[str, list[str]]:
    """Map each service to the changed files that belong to it (build context or ``paths:`` globs)."""
    hits: dict[str, list[str]] = {}
    for name, service in stack.compose.services.items():
        context = service.build_context.resolve() if service.build_context else None
        globs = stack.service_meta(name).paths
        for file in files:
            relative = _relative(file, stack.root)
            in_context = context is not None and file.resolve().is_relative_to(context)
            in_globs = relative is not None and any(fnmatch.fnmatch(relative, g) for g in globs)
            if in_context or in_globs:
                hits.setdefault(name, []).append(str(relative or file))
    return hits


def changed_services(stack: Stack, ref: str, cwd: Path | None = None) -> dict[str, list[str]]:
    """Services touched since ``ref``; a PlanError when none is."""
    files = changed_files(ref, cwd or stack.root)
    hits = services_for_files(stack, files)
    if not hits:
        raise PlanError(f"no service of {stack.name} is touched by the {len(files)} file(s) changed since {ref}",
                        hint="name the changed services, or add `paths:` globs in stack.yaml")
    return hits


def _relative(file: Path, root: Path) -> str | None:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
