"""Slice lifetime: durations (stack.yaml `ttl:`, `up --ttl`), expiry texts, and gc's decisions on fake labels."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from stacklet.cli import display
from stacklet.cli.app import app
from stacklet.runtime.engine import SliceSummary
from stacklet.errors import StackFileError
from stacklet.planning.lifetime import (BOOT_MARGIN_S, GC_GRACE_S,
                               UNLABELLED_BOOT_S, GcDecision, SliceResources, boot_budget_s, classify, expiry,
                               expiry_text, span)
from stacklet.labels import Label, marker_volume, parse_utc, utc_text
from stacklet.config.stack import DURATION_FORMS, load_stack_file, parse_duration

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(**delta) -> str:
    """A label time relative to NOW (negative: in the past)."""
    return utc_text(NOW + timedelta(**delta))


# -- durations ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1d2h3m4s", 93784),
    ("2H", 7200), (" 1h 30m ", 5400), ("365d", 365 * 86400),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", [0, "0", "none", "never", "NEVER", "0s", "0h0m", None, False])
def test_no_expiry(value):
    assert parse_duration(value) is None


@pytest.mark.parametrize("value, message", [
    ("soon", DURATION_FORMS), ("30", DURATION_FORMS), ("1.5h", DURATION_FORMS), ("-5m", DURATION_FORMS),
    ("30m2h", DURATION_FORMS), ("", DURATION_FORMS), ("h", DURATION_FORMS), (True, DURATION_FORMS),
    (90, "a number needs a unit (for example 90s or 90m)"), ("366d", "at most 365d"),
])
def test_bad_durations_name_the_accepted_forms(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_duration(value)


def test_stack_yaml_ttl(tmp_path: Path):
    path = tmp_path / "stack.yaml"
    path.write_text("name: s\nttl: 4h\n")
    assert load_stack_file(path).ttl == 4 * 3600
    path.write_text("name: s\nttl: never\n")
    assert load_stack_file(path).ttl is None
    path.write_text("name: s\n")
    assert load_stack_file(path).ttl is None


@pytest.mark.parametrize("value", ["soon", "90", "2 hours"])
def test_bad_stack_yaml_ttl_names_file_key_and_forms(tmp_path: Path, value):
    path = tmp_path / "stack.yaml"
    path.write_text(f"name: s\nttl: {value}\n")
    with pytest.raises(StackFileError) as error:
        load_stack_file(path)
    assert error.value.file == str(path) and error.value.key == "ttl"
    assert str(path) in error.value.message and "ttl" in error.value.message
    assert "30m" in error.value.message and "never" in error.value.message


def test_example_stacks_set_a_ttl():
    root = Path(__file__).resolve().parents[3] / "stacks"
    assert load_stack_file(root / "shop" / "stack.yaml").ttl == 4 * 3600
    assert load_stack_file(root / "mesh40" / "stack.yaml").ttl == 4 * 3600


def test_up_refuses_a_bad_ttl_before_touching_docker(monkeypatch, compose_cli):
    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # no engine there: the error must come first
    result = CliRunner().invoke(app, ["up", "orders", "--stack", "shop", "--ttl", "soon", "--json"])
    assert result.exit_code == 3, result.output
    assert '"key": "--ttl"' in result.stdout and "30m" in result.stdout and "'soon'" in result.stdout


# -- times and texts ---------------------------------------------------------------------------

def test_utc_round_trip():
    assert utc_text(NOW) == "2025-05-01T12:00:00Z"
    assert parse_utc("2025-05-01T12:00:00Z") == NOW
    assert parse_utc(None) is None and parse_utc("not a time") is None


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (29 * 60 + 59, "29m"),
                                           (7199, "119m"), (7200, "2h00m"), (3 * 3600 + 5 * 60, "3h05m"),
                                           (3 * 86400 + 4 * 3600, "3d04h"), (-180, "3m")])
def test_span(seconds, text):
    assert span(seconds) == text


def test_expiry_texts():
    assert expiry_text(None) == "never"
    assert expiry_text(29 * 60 + 30) == "in 29m"
    assert expiry_text(-180) == "expired 3m ago"
    assert expiry_text(0) == "expired 0s ago"


def test_expiry_from_labels():
    assert expiry([{"x": "1"}], NOW) == (None, None, False)
    expires, left, expired = expiry([{}, {Label.EXPIRES: at(minutes=30)}], NOW)
    assert expires == "2025-05-01T12:30:00Z" and left == 1800 and not expired
    assert expiry([{Label.EXPIRES: at(minutes=-3)}], NOW)[1:] == (-180, True)


def test_boot_budget_grows_with_the_dependency_layers():
    assert boot_budget_s(5, 3) == 15 + BOOT_MARGIN_S
    assert boot_budget_s(180, 0) == 180 + BOOT_MARGIN_S
    assert marker_volume("shop-orders") == "stacklet-shop-orders-boot"


# -- gc decisions ------------------------------------------------------------------------------

def resources(name="s", *, containers=1, networks=1, volumes=0, booted=True, result="ready", expires=None,
              deadline=None, created=None) -> SliceResources:
    labels = {Label.SLICE: name, "dev.stacklet.stack": "shop"}
    if expires:
        labels[Label.EXPIRES] = expires
    if deadline:
        labels[Label.BOOT_DEADLINE] = deadline
    if created:
        labels["dev.stacklet.created"] = created
    found = SliceResources(name, containers=[dict(labels) for _ in range(containers)],
                           networks=[dict(labels) for _ in range(networks)],
                           volumes=[dict(labels) for _ in range(volumes)])
    if booted:
        found.volumes.append({Label.SLICE: name, "dev.stacklet.stack": "shop", Label.MARKER: "boot", Label.BOOTED: at(minutes=-50),
                              Label.BOOT_RESULT: result})
    return found


def decision(found: SliceResources) -> tuple[bool, str]:
    d = classify(found, NOW)
    assert d.slice == found.name and d.stack == "shop"
    return d.remove, d.reason


def test_a_booted_slice_without_ttl_is_kept():
    assert decision(resources(deadline=at(minutes=-55))) == (False, "no expiry")


def test_a_booted_slice_within_its_ttl_is_kept():
    assert decision(resources(expires=at(minutes=29, seconds=30), deadline=at(minutes=-55))) == \
        (False, "expires in 29m")


def test_an_expired_slice_is_removed():
    assert decision(resources(expires=at(minutes=-3), deadline=at(minutes=-60))) == (True, "expired 3m ago")


def test_an_expired_slice_that_was_kept_after_a_failure_is_removed():
    assert decision(resources(result="kept", expires=at(seconds=-1)))[0] is True
    assert decision(resources(result="kept", expires=at(hours=1))) == (False, "kept after a failed boot, expires in 60m")


def test_a_boot_that_never_finished_is_orphaned_once_its_deadline_passed():
    found = resources(booted=False, deadline=at(minutes=-2))
    assert decision(found) == (True, "orphaned: boot never finished (its deadline passed 2m ago)")


def test_a_slice_still_booting_is_never_removed():
    assert decision(resources(booted=False, deadline=at(seconds=40))) == (False, "booting (deadline in 40s)")
    # even when it has already expired (a TTL shorter than the boot)
    assert decision(resources(booted=False, deadline=at(seconds=40), expires=at(seconds=-5)))[0] is False
    # and before any container exists (Compose creates the network first)
    assert decision(resources(booted=False, containers=0, deadline=at(seconds=40)))[0] is False
    # gc leaves a grace period after the deadline, for the booting CLI to clean up itself
    assert decision(resources(booted=False, deadline=at(seconds=-(GC_GRACE_S - 1))))[0] is False
    assert decision(resources(booted=False, deadline=at(seconds=-(GC_GRACE_S + 1))))[0] is True


def test_networks_and_volumes_without_containers_are_orphaned():
    found = resources(containers=0, networks=1, volumes=2, deadline=at(minutes=-30))
    assert decision(found) == (True, "orphaned: no containers left (1 network(s), 3 volume(s))")
    only_marker = resources(containers=0, networks=0)
    assert decision(only_marker) == (True, "orphaned: no containers left (1 volume(s))")


def test_slices_of_an_older_stacklet_are_kept_unless_empty():
    assert decision(resources(booted=False)) == (False, "no expiry")
    assert decision(resources(booted=False, containers=0, created=at(minutes=-1)))[0] is False
    old = resources(booted=False, containers=0, created=at(seconds=-UNLABELLED_BOOT_S - 1))
    assert decision(old)[0] is True


def test_the_latest_deadline_counts():
    found = resources(booted=False, deadline=at(minutes=-10))
    found.networks[0][Label.BOOT_DEADLINE] = at(minutes=1)
    assert decision(found)[0] is False


# -- display -----------------------------------------------------------------------------------

def render(renderable) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_ls_shows_age_and_expiry():
    def summary(name, expires_in_s):
        return SliceSummary(name=name, stack="shop", changed=["orders"], created=at(minutes=-10), age_s=600,
                            containers=3, running=3, healthy=True, expires_in_s=expires_in_s,
                            expires=None if expires_in_s is None else at(seconds=expires_in_s),
                            expired=expires_in_s is not None and expires_in_s <= 0)
    text = render(display.slices_table([summary("a", 1790), summary("b", -180), summary("c", None)]))
    assert "expires" in text.splitlines()[0] and "age" in text.splitlines()[0]
    assert "in 29m" in text and "expired 3m ago" in text and "never" in text and "10m" in text


def test_gc_table():
    decisions = [GcDecision(slice="a", stack="shop", reason="expired 3m ago", remove=True),
                 GcDecision(slice="b", stack="shop", reason="no expiry", remove=False)]
    text = render(display.gc_table(decisions, dry_run=False))
    assert "removed  a" in text and "kept     b" in text and "1 removed, 1 kept" in text
    text = render(display.gc_table(decisions, dry_run=True))
    assert "would remove" in text and "dry run: nothing removed" in text
    assert "no slices" in render(display.gc_table([], dry_run=False))
