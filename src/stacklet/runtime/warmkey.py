"""The warm key: what a warm slice was booted from, so that ``up`` takes one only when it fits.

A warm slice fits an ``up`` when the stack, the changed services, the plan (radius, profiles,
forwarding, link proxy image), the seed and fault settings and every image except the changed
services' are the same. The changed services are left out on purpose: ``up`` rebuilds them on
the taken slice, as ``reload`` does. Built services that did not change are compared by their
build inputs (the files of their context and Dockerfile: path, size, modification time), images
that are not built by their id on the engine.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from stacklet.config.faultprofile import FaultProfile
from stacklet.config.stack import Stack
from stacklet.docker.protocol import EngineDriver
from stacklet.planning.plan import SlicePlan
from stacklet.runtime.seeds import seed_files

CONTEXT_FILES_MAX = 20_000
"""a build context with more files than this is compared by its top folder's listing only (stat-ing more costs
more than a cold boot saves)"""


class WarmKey(BaseModel):
    """Everything a slice was booted from that a later ``up`` must share to take it."""

    stack: str
    source: str = Field(description="the stack's file (stack.yaml, or the Compose file)")
    changed: list[str]
    plan: str = Field(description="digest of the plan (local and forwarded services, links, proxies, profiles)")
    seeds: str = Field(description="digest of the seed files applied, empty when not seeded")
    fault: str = Field("", description="the fault profile applied once ready, name and digest")
    fault_seed: int | None = None
    images: dict[str, str] = Field(default_factory=dict,
                                   description="local services other than the changed: image id or build digest")
    sources: dict[str, str] = Field(default_factory=dict,
                                    description="build digest of each changed service: not part of the key, it says "
                                                "which ones to rebuild when taken")

    def digest(self) -> str:
        """A short digest of the key (a label value: equal digests, equal keys); ``sources`` are left out."""
        return _digest(self.model_dump_json(exclude={"sources"}))[:24]

    def edited_since(self, warm: "WarmKey") -> list[str]:
        """The changed services whose build files differ from when ``warm`` was made (those to rebuild)."""
        return [s for s in self.changed if s not in self.sources or warm.sources.get(s) != self.sources[s]]

    def mismatch(self, warm: "WarmKey") -> str | None:
        """Why the warm slice booted from ``warm`` does not fit this key (the first difference); None when it fits."""
        if warm.stack != self.stack or warm.source != self.source:
            return f"it was warmed for stack {warm.stack} ({warm.source}), not {self.stack} ({self.source})"
        if warm.changed != self.changed:
            return f"it was warmed for a change of {', '.join(warm.changed)}, not of {', '.join(self.changed)}"
        if warm.seeds != self.seeds:
            return ("the seed files changed since it was warmed" if warm.seeds and self.seeds else
                    "it was warmed " + ("without" if not warm.seeds else "with") + " seeds (--no-seed differs)")
        if (warm.fault, warm.fault_seed) != (self.fault, self.fault_seed):
            return (f"it was warmed with fault profile {_profile(warm.fault)} (seed {warm.fault_seed}), not "
                    f"{_profile(self.fault)} (seed {self.fault_seed})")
        changed_images = sorted(s for s in set(warm.images) | set(self.images)
                                if warm.images.get(s) != self.images.get(s))
        if changed_images:
            return f"the image or build files of {', '.join(changed_images)} changed since it was warmed"
        if warm.plan != self.plan:
            return "its plan differs (radius, profiles, forwarding or link proxy image changed since it was warmed)"
        return None


def warm_key(plan: SlicePlan, stack: Stack, driver: EngineDriver, *, seed: bool = True,
             fault_profile: FaultProfile | None = None, fault_seed: int | None = None) -> WarmKey:
    """The key of booting ``plan`` with these settings, as things are now (files read, images looked up)."""
    changed = sorted(plan.changed)
    plan_text = plan.model_dump_json(exclude={"notes", "stack_options"})
    seeded = {s.name: seed_files(stack, s.name) for s in plan.local} if seed else {}
    images: dict[str, str] = {}
    sources: dict[str, str] = {}
    for service in plan.local:
        if service.name not in stack.compose.services:
            continue
        compose = stack.compose.services[service.name]
        if compose.build_context is not None:
            dockerfile = Path(compose.dockerfile.path) if compose.dockerfile else None
            built = "build:" + build_digest(Path(compose.build_context), dockerfile)
            (sources if service.name in changed else images)[service.name] = built
        elif compose.image and service.name not in changed:
            images[service.name] = driver.image_id(compose.image) or f"missing:{compose.image}"
    return WarmKey(stack=plan.stack, source=plan.source, changed=changed, plan=_digest(plan_text),
                   seeds=_digest(json.dumps({s: [_file_digest(f) for f in files] for s, files in seeded.items()}))
                   if seed else "",
                   fault=f"{fault_profile.name}:{_digest(fault_profile.model_dump_json())[:12]}" if fault_profile else "",
                   fault_seed=fault_seed, images=images, sources=sources)


def build_digest(context: Path, dockerfile: Path | None = None) -> str:
    """A digest of a build's inputs by path, size and modification time (no file is read)."""
    entries: list[str] = []
    count = 0
    for folder, dirs, files in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__", "node_modules"))
        for name in sorted(files):
            count += 1
            if count > CONTEXT_FILES_MAX:
                break
            entries.append(_stat_entry(Path(folder) / name, context))
    if dockerfile is not None and dockerfile.is_file() and not dockerfile.resolve().is_relative_to(context.resolve()):
        entries.append(_stat_entry(dockerfile, dockerfile.parent))
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if ignore.is_file():
            entries.append(_stat_entry(ignore, ignore.parent))
    return _digest("\n".join(entries))[:16]


def _stat_entry(path: Path, root: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return f"{path.relative_to(root)} gone"
    return f"{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns}"


def _file_digest(path: Path) -> str:
    return f"{path.name}:{_digest(path.read_bytes())[:16]}"


def _digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _profile(fault: str) -> str:
    return fault.split(":")[0] if fault else "none"
