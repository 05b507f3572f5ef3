"""stack.yaml's healthchecks.min_interval: which healthchecks it slows, the retries it scales, where it shows."""

from __future__ import annotations

import pytest

from stacklet.config.stack import StackFile
from stacklet.errors import StackFileError
from stacklet.config.stack import load_stack_file
from stacklet.planning.healthchecks import declared_timing, relaxed_timing
from stacklet.planning.plan import make_plan
from stacklet.planning.render import render, render_baseline

from ..conftest import compose_accepts, service

FAST = {"test": ["CMD", "true"], "interval": "1s", "timeout": "3s", "retries": 30, "start_period": "30s"}


def services() -> dict:
    return {
        "api": service("demo/api", environment={"DB_URL": "postgresql://u:p@db:5432/x", "CACHE": "redis://cache:6379"}, expose=[8000],
                       healthcheck=dict(FAST)),
        "db": service("postgres:16", expose=[5432], healthcheck={**FAST, "interval": "10s", "retries": 3}),
        "cache": service("redis:7", expose=[6379]),
    }


def test_a_shorter_interval_is_slowed_with_retries_scaled(make_stack):
    stack = make_stack(services(), meta={"healthchecks": {"min_interval": "5s"}})
    assert relaxed_timing(stack, "api").model_dump() == {"interval_s": 5.0, "retries": 6}  # 30 x 1s = 6 x 5s
    assert relaxed_timing(stack, "db") is None  # already every 10s
    assert relaxed_timing(stack, "cache") is None and declared_timing(stack, "cache") is None  # none at all


def test_without_the_key_everything_runs_as_declared(make_stack):
    stack = make_stack(services())
    plan = make_plan(stack, ["api"])
    assert {s.name: s.healthcheck_interval_s for s in plan.local} == {"api": 1.0, "db": 10.0, "cache": None}
    assert render(plan, stack, "s1")["services"]["api"]["healthcheck"] == FAST
    assert not any("healthchecks.min_interval" in note for note in plan.notes)


def test_the_slice_and_the_baseline_run_it_less_often(make_stack, tmp_path):
    stack = make_stack(services(), meta={"healthchecks": {"min_interval": "5s"}})
    plan = make_plan(stack, ["api"])
    assert {s.name: s.healthcheck_interval_s for s in plan.local} == {"api": 5.0, "db": 10.0, "cache": None}
    note = next(n for n in plan.notes if "healthchecks.min_interval" in n)
    assert "of api every 5s here, not every 1s" in note
    sliced = render(plan, stack, "s1")
    spec = {s.name: sliced["services"][s.compose_name] for s in plan.local}
    assert spec["api"]["healthcheck"] == {**FAST, "interval": "5s", "retries": 6}
    assert spec["db"]["healthcheck"]["interval"] == "10s"
    assert "healthcheck" not in spec["cache"]
    baseline = render_baseline(stack)
    assert baseline["services"]["api"]["healthcheck"] == {**FAST, "interval": "5s", "retries": 6}
    assert compose_accepts(sliced, tmp_path) is None and compose_accepts(baseline, tmp_path) is None


def test_an_image_healthcheck_gets_interval_and_retries_only(make_stack, tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text(
        "FROM debian:bookworm-slim\nEXPOSE 6379\nHEALTHCHECK --interval=1s --retries=20 CMD redis-cli ping\n")
    stack = make_stack({"cache": service(build={"context": str(tmp_path / "img")})},
                       meta={"healthchecks": {"min_interval": "4s"}})
    rendered = render_baseline(stack)["services"]["cache"]
    assert rendered["healthcheck"] == {"interval": "4s", "retries": 5}  # Docker takes the test from the image


@pytest.mark.parametrize(("value", "seconds"), [("5s", 5), ("1m", 60), (0, None), ("none", None)])
def test_the_key_takes_durations(value, seconds):
    assert StackFile.model_validate({"healthchecks": {"min_interval": value}}).healthchecks.min_interval == seconds


@pytest.mark.parametrize(("value", "words"), [("often", "5s, 10s or 1m"), (5, "5s, 10s or 1m"),
                                              ("2h", "at most 1h")])
def test_a_bad_value_names_the_file_and_the_key(tmp_path, value, words):
    path = tmp_path / "stack.yaml"
    path.write_text(f"healthchecks:\n  min_interval: {value}\n")
    with pytest.raises(StackFileError) as info:
        load_stack_file(path)
    assert info.value.key == "healthchecks.min_interval" and str(path) in info.value.message
    assert words in info.value.message


def test_an_interval_only_the_image_knows_is_left_as_it_is(make_stack, tmp_path):
    """A pulled image's own HEALTHCHECK (or a base image's) may check seldom: stacklet cannot know, so a floor
    never makes it check more often. A Dockerfile HEALTHCHECK without --interval is Docker's 30 s."""
    (tmp_path / "nohc").mkdir()
    (tmp_path / "nohc" / "Dockerfile").write_text("FROM some/base-with-a-healthcheck\nEXPOSE 80\n")
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "Dockerfile").write_text("FROM debian:bookworm-slim\nHEALTHCHECK CMD true\n")
    stack = make_stack({
        "pulled": service("valkey/valkey:8", healthcheck={"test": ["CMD-SHELL", "redis-cli ping"]}),
        "enabled": service("immich/server:1", healthcheck={"disable": False}),
        "built": service(build={"context": str(tmp_path / "nohc")}, healthcheck={"test": ["CMD", "true"]}),
        "default": service(build={"context": str(tmp_path / "default")}),
    }, meta={"healthchecks": {"min_interval": "1m"}})
    assert all(relaxed_timing(stack, name) is None for name in ("pulled", "enabled", "built"))
    assert render_baseline(stack)["services"]["pulled"]["healthcheck"] == {"test": ["CMD-SHELL", "redis-cli ping"]}
    assert make_plan(stack, ["pulled"]).local_service("pulled").healthcheck_interval_s is None
    assert relaxed_timing(stack, "default").model_dump() == {"interval_s": 60.0, "retries": 2}  # 3 x 30 s
