"""``gc`` of the images slices built (``stacklet-build/<stack>-<service>:<source hash>``).

Every source state of a service gets its own image, and ``down`` leaves them for the next slice of the
same sources, so they pile up as the sources change. The rule: an image a container uses (any slice,
warm or not, any baseline) is kept; otherwise it is removed when it is no longer the image of its
service's current sources (an edit made a new one), when its stack file is gone or no longer builds
that service, or when it carries no label saying whose it is (built by an earlier version of stacklet:
the next slice that needs it builds it again).
"""

from __future__ import annotations

import functools

from pydantic import BaseModel, Field

from stacklet.config.stack import load_source
from stacklet.docker.protocol import EngineDriver
from stacklet.labels import Label
from stacklet.planning.images import SOURCE_REPOSITORY
from stacklet.planning.render import source_image


class BuildGcDecision(BaseModel):
    """What gc does with one image a slice built, and why."""

    image: str
    service: str = Field(description="<stack>/<service> it was built for ('?' when it does not say)")
    reason: str
    remove: bool


def collect(driver: EngineDriver, dry_run: bool = False) -> list[BuildGcDecision]:
    """Decide on every image slices built, and remove the stale ones (unless ``dry_run``)."""
    built = driver.images({}, repository=SOURCE_REPOSITORY + "/*")
    if not built:
        return []
    used = {c.image for c in driver.containers()}
    load = functools.cache(load_source)  # each stack file read once per gc
    decisions = []
    for image in built:
        tag = next(t for t in image.tags if t.startswith(SOURCE_REPOSITORY + "/"))
        of = image.labels.get(Label.BUILD_OF, "")
        stack_name, _, service = of.partition("/")
        reason, remove = "in use by a container", False
        if image.id not in used:
            source = image.labels.get(Label.BUILD_SOURCE, "")
            stack = load(source)
            current = source_image(stack, service) if stack and service in stack.compose.services else None
            if not of:
                reason, remove = "built by an earlier version of stacklet (no label says whose it is)", True
            elif stack is None:
                reason, remove = f"its stack file {source or '?'} is gone", True
            elif current is None:
                reason, remove = f"{service} is no longer built by stack {stack_name}", True
            elif current != tag:
                reason, remove = f"stale: the sources of {service} changed (now {current.rsplit(':', 1)[1]})", True
            else:
                reason = "the image of the current sources"
        if remove and not dry_run:
            remove = driver.remove_image(tag)
            reason = reason if remove else f"{reason}; the engine kept it (another tag or a container uses it)"
        decisions.append(BuildGcDecision(image=tag, service=of or "?", reason=reason, remove=remove))
    return decisions
