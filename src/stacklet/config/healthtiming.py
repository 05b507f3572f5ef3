"""How often Docker runs a service's healthcheck: interval and retries, from Compose's ``healthcheck:`` and the
image's ``HEALTHCHECK`` options, each key falling back to the image's and then to Docker's default (Docker's own
merge of a container's healthcheck over its image's).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

DOCKER_DEFAULT_INTERVAL_S = 30.0
DOCKER_DEFAULT_RETRIES = 3

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_s(value: Any) -> float | None:
    """Seconds in a Go duration (``1s``, ``1m30s``, ``500ms``: the form Compose and Docker write); None for none
    or a form that is not one. Hand-written: Go's duration grammar is one regular expression, and no kept
    library parses exactly it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1e9  # Compose's JSON may give nanoseconds
    text = str(value or "").strip()
    if not text or _GO_PART.sub("", text):
        return None
    return sum(float(number) * _GO_UNIT_S[unit] for number, unit in _GO_PART.findall(text)) or None


class HealthTiming(BaseModel):
    """The interval and retries one side (Compose or the image) declares; None where it says nothing."""

    interval_s: float | None = None
    retries: int | None = None

    @classmethod
    def from_compose(cls, healthcheck: dict[str, Any] | None) -> HealthTiming:
        """The timing Compose's ``healthcheck:`` declares (its normalised form)."""
        healthcheck = healthcheck or {}
        retries = healthcheck.get("retries")
        return cls(interval_s=go_duration_s(healthcheck.get("interval")),
                   retries=int(retries) if isinstance(retries, int) and retries > 0 else None)

    @classmethod
    def from_dockerfile_options(cls, rest: str) -> HealthTiming:
        """The timing a Dockerfile's ``HEALTHCHECK --interval=1s --retries=30 CMD ...`` declares."""
        options: dict[str, str] = {}
        for word in rest.split():  # the options come before CMD, each as --name=value
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            options[name.lower()] = value
        retries = options.get("retries", "")
        return cls(interval_s=go_duration_s(options.get("interval")),
                   retries=int(retries) if retries.isdigit() and int(retries) > 0 else None)

    def over(self, image: HealthTiming | None) -> HealthTiming:
        """This timing with what it leaves unsaid taken from ``image``, then from Docker's defaults."""
        image = image or HealthTiming()
        return HealthTiming(interval_s=self.interval_s or image.interval_s or DOCKER_DEFAULT_INTERVAL_S,
                            retries=self.retries or image.retries or DOCKER_DEFAULT_RETRIES)
