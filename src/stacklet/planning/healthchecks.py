"""Healthchecks in slices and the baseline: where a service's comes from, how often Docker runs it as declared,
and how often it runs here once stack.yaml's ``healthchecks.min_interval`` slows it down.

stacklet probes readiness itself (runtime/readiness.py runs the healthcheck's command on demand while Docker
says ``starting``), so Docker's own interval decides only how soon a service that fails later turns
``unhealthy``, and what the checks cost: each run is a process in the container, about 80 ms of CPU in the
engine. A stack written for ``docker compose up --wait`` often checks every second; with several slices on one
host that alone fills the cores.
"""

from __future__ import annotations

import math
from typing import Any

from stacklet.config.healthtiming import DOCKER_DEFAULT_RETRIES, HealthTiming
from stacklet.config.stack import Stack


def healthcheck_source(stack: Stack, name: str) -> str:
    """Where the health of ``name`` comes from: Compose, its image's HEALTHCHECK (when known), or nowhere."""
    service = stack.compose.services[name]
    if service.has_healthcheck:
        return "compose"
    disabled = (service.raw.get("healthcheck") or {}).get("disable")
    return "image" if not disabled and service.dockerfile and service.dockerfile.has_healthcheck else "none"


def declared_timing(stack: Stack, name: str) -> HealthTiming | None:
    """How often Docker runs ``name``'s healthcheck as declared: Compose's keys over its Dockerfile's, then
    Docker's defaults (Docker's own merge); None without a healthcheck stacklet knows of. The interval is None
    when neither Compose nor a Dockerfile HEALTHCHECK stacklet reads gives it: then the image's own decides
    (a pulled image, or a base image's HEALTHCHECK), which stacklet cannot know."""
    if healthcheck_source(stack, name) == "none":
        return None
    service = stack.compose.services[name]
    declared = HealthTiming.from_compose(service.raw.get("healthcheck"))
    dockerfile = service.dockerfile if service.dockerfile and service.dockerfile.has_healthcheck else None
    if dockerfile is None and declared.interval_s is None:
        return declared
    return declared.over(dockerfile.healthcheck_timing if dockerfile else None)


def relaxed_timing(stack: Stack, name: str) -> HealthTiming | None:
    """The timing ``name``'s healthcheck runs with here when stack.yaml's ``healthchecks.min_interval`` slows it:
    that interval, with retries scaled so a failing service turns unhealthy after about as long as declared;
    None when it runs as declared (no floor, no healthcheck, one whose interval only its image knows, or one
    that already runs that seldom)."""
    floor = stack.meta.healthchecks.min_interval
    declared = declared_timing(stack, name)
    if not floor or declared is None or declared.interval_s is None or declared.interval_s >= floor:
        return None
    retries = max(1, math.ceil((declared.retries or DOCKER_DEFAULT_RETRIES) * declared.interval_s / floor))
    return HealthTiming(interval_s=float(floor), retries=retries)


def effective_interval_s(stack: Stack, name: str) -> float | None:
    """How often Docker runs ``name``'s healthcheck in a slice or the baseline; None without one, or when only its
    image knows."""
    timing = relaxed_timing(stack, name) or declared_timing(stack, name)
    return timing.interval_s if timing else None


def apply_relaxed(stack: Stack, name: str, spec: dict[str, Any]) -> None:
    """Write ``name``'s relaxed timing into its rendered Compose ``spec`` (the test stays Compose's or the
    image's: Docker takes what a container's healthcheck leaves out from its image)."""
    timing = relaxed_timing(stack, name)
    if timing:
        spec["healthcheck"] = {**(spec.get("healthcheck") or {}), "interval": f"{timing.interval_s:g}s",
                               "retries": timing.retries}


def relaxed_note(stack: Stack, names: list[str]) -> str | None:
    """The plan's note on which of ``names`` run their healthcheck less often than declared, and why."""
    slowed = {name: declared_timing(stack, name) for name in names if relaxed_timing(stack, name)}
    if not slowed:
        return None
    declared = sorted({f"{t.interval_s:g}s" for t in slowed.values() if t})
    return (f"Docker runs the healthchecks of {', '.join(sorted(slowed))} every "
            f"{stack.meta.healthchecks.min_interval}s here, not every {' or '.join(declared)} (stack.yaml "
            f"healthchecks.min_interval; retries scaled to keep the time to unhealthy); readiness is probed on "
            f"demand, so boots do not wait for it")
