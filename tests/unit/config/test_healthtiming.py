"""Healthcheck timing: Go durations, Compose's and a Dockerfile's keys, Docker's merge and defaults."""

from __future__ import annotations

import pytest

from stacklet.config.dockerfile import parse_dockerfile
from stacklet.config.healthtiming import DOCKER_DEFAULT_INTERVAL_S, DOCKER_DEFAULT_RETRIES, HealthTiming, go_duration_s


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("1m30s", 90.0), ("500ms", 0.5), ("1.5s", 1.5), ("2h", 7200.0), (1_000_000_000, 1.0),
])
def test_go_durations(text, seconds):
    assert go_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "5", "five seconds", "5s junk", "0s", True])
def test_what_is_not_a_duration_is_none(text):
    assert go_duration_s(text) is None


def test_compose_keys_over_the_image_then_dockers_defaults():
    image = HealthTiming(interval_s=2.0, retries=10)
    assert HealthTiming.from_compose({"interval": "1s"}).over(image) == HealthTiming(interval_s=1.0, retries=10)
    assert HealthTiming.from_compose({"retries": 4}).over(image) == HealthTiming(interval_s=2.0, retries=4)
    assert HealthTiming.from_compose(None).over(None) == HealthTiming(interval_s=DOCKER_DEFAULT_INTERVAL_S,
                                                                      retries=DOCKER_DEFAULT_RETRIES)


def test_a_dockerfile_healthcheck_options_only_before_cmd():
    facts = parse_dockerfile("FROM x\nHEALTHCHECK --interval=1s --timeout=3s --retries=30 CMD check --retries=9\n")
    assert facts.has_healthcheck and facts.healthcheck_timing == HealthTiming(interval_s=1.0, retries=30)
    bare = parse_dockerfile("FROM x\nHEALTHCHECK CMD check --interval=9s\n")
    assert bare.healthcheck_timing == HealthTiming()
    assert parse_dockerfile("FROM x\nHEALTHCHECK NONE\n").healthcheck_timing is None
