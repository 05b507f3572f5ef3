"""Images tagged by their sources: a built service's image is named by what it is built from.

``source_tag`` hashes the build context's files (path, mode, content), the Dockerfile (also when
it lies outside the context), the build args and the target. Every slice, reload and baseline of the
same source state names the same image, so it is built once and reused (never rebuilt under a new
tag, no dangling images left behind), and a changed service gets a new tag.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

SOURCE_REPOSITORY = "stacklet-build"
SKIPPED_PARTS = {".git", "__pycache__", ".mypy_cache", ".pytest_cache", "node_modules", ".venv"}
"""Folders no build should depend on (hand-written instead of parsing .dockerignore: one rule, few names)."""


def source_tag(stack: str, service: str, build: dict[str, Any] | str, root: Path | None = None) -> str:
    """``stacklet-build/<stack>-<service>:<hash of its sources>`` for a Compose ``build`` section."""
    spec = {"context": build} if isinstance(build, str) else dict(build)
    context = Path(spec.get("context") or ".")
    if not context.is_absolute() and root is not None:
        context = root / context
    dockerfile = Path(spec.get("dockerfile") or "Dockerfile")
    dockerfile = dockerfile if dockerfile.is_absolute() else context / dockerfile
    digest = hashlib.sha256()
    digest.update(json.dumps({k: spec.get(k) for k in ("args", "target", "dockerfile_inline")},
                             sort_keys=True, default=str).encode())
    if dockerfile.is_file():
        digest.update(b"dockerfile\0" + dockerfile.read_bytes())
    if context.is_dir():
        for path in sorted(context.rglob("*")):
            if path.is_file() and not SKIPPED_PARTS & set(path.relative_to(context).parts):
                digest.update(f"{path.relative_to(context).as_posix()}\0{path.stat().st_mode & 0o111}\0".encode())
                digest.update(path.read_bytes())
    name = re.sub(r"[^a-z0-9_.-]", "-", f"{stack}-{service}".lower()).strip("-.") or "service"
    return f"{SOURCE_REPOSITORY}/{name}:{digest.hexdigest()[:16]}"


def is_source_tag(image: str | None) -> bool:
    """Whether an image reference was made by ``source_tag``."""
    return bool(image) and image.startswith(SOURCE_REPOSITORY + "/")
