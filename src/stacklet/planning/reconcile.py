"""The pure steps of a reconcile, and what it did to each service.

A reconcile (``stacklet up`` on a slice that already runs) renders the slice again, lets Compose
recreate only the containers whose configuration or image changed, and starts what is new. The
functions here decide, without Docker, which labels must stay as they were (so an unchanged
container is not recreated because of a timestamp), what happened to each service, and which part
of the project still has to be started.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel

from stacklet.labels import Label


Action = Literal["unchanged", "rebuilt", "recreated", "added", "removed", "started"]
SLICE_LABELS_KEPT = (Label.CREATED, Label.EXPIRES, Label.BOOT_DEADLINE)
"""The slice's age and lifetime: a reconcile keeps them, so it neither resets the age nor recreates
every container because a timestamp moved."""


class ServiceChange(BaseModel):
    """What a reconcile did to one service or link proxy of the slice."""

    service: str
    action: Action
    detail: str = ""


def keep_slice_labels(spec: dict[str, Any], old: dict[str, str]) -> dict[str, Any]:
    """The rendered project with the labels of the running slice kept where they must not change.

    ``old`` is the label set of one of the slice's containers. Every service, network and volume of
    the slice keeps the slice's lifetime labels (``SLICE_LABELS_KEPT``); networks and volumes keep
    every slice-level label as it was, since Compose would otherwise want to recreate them (and
    every container on them).
    """
    spec = copy.deepcopy(spec)
    kept = {k: old[k] for k in SLICE_LABELS_KEPT if k in old}
    for section in ("services", "networks", "volumes"):
        for entry in (spec.get(section) or {}).values():
            if not isinstance(entry, dict) or not isinstance(entry.get("labels"), dict):
                continue
            labels = {**entry["labels"], **kept}
            if section != "services":
                labels = {k: old.get(k, v) for k, v in labels.items()}
            entry["labels"] = labels
    return spec


def classify(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str, bool]],
             buildable: set[str]) -> dict[str, Action]:
    """What happened to each Compose service: ``before``/``after`` map it to (container id, image id[, running]).

    Same container: unchanged (or ``started`` when it was not running); new container: ``rebuilt``
    when the image of a service with a build changed (built now, or reused from the same sources), else
    ``recreated``; no container before: ``added``; gone: ``removed``.
    """
    actions: dict[str, Action] = {}
    for service, (cid, image, running) in after.items():
        if service not in before:
            actions[service] = "added"
        elif before[service][0] == cid:
            actions[service] = "unchanged" if running else "started"
        elif service in buildable and before[service][1] != image:
            actions[service] = "rebuilt"
        else:
            actions[service] = "recreated"
    for service in before:
        if service not in after:
            actions[service] = "removed"
    return actions


def to_start(services: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The part of a rendered project that must be started: ``names``, with ``depends_on`` cut to them.

    Dependencies outside ``names`` are already running and ready, so they do not hold anything back.
    """
    part = {}
    for name in sorted(names & set(services)):
        spec = dict(services[name])
        depends = {d: o for d, o in (spec.get("depends_on") or {}).items() if d in names}
        if depends:
            spec["depends_on"] = depends
        else:
            spec.pop("depends_on", None)
        part[name] = spec
    return part
