"""stacklet's own folder (``.stacklet/`` or ``$STACKLET_HOME``): generated projects and check history.

It ignores itself for git, so a slice never shows up as a change of the project it was made from.
"""

from __future__ import annotations

from pathlib import Path

IGNORE_ALL = "# written by stacklet: nothing here belongs in git\n*\n"


def ensure_workdir(workdir: Path) -> Path:
    """Create ``workdir`` if needed, with a ``.gitignore`` that ignores everything in it."""
    workdir.mkdir(parents=True, exist_ok=True)
    ignore = workdir / ".gitignore"
    if not ignore.exists():
        ignore.write_text(IGNORE_ALL)
    return workdir
