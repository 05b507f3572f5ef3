"""Fault profiles, `fault add` arguments, link-target groups and seed-file discovery (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklet.errors import PlanError, StackFileError
from stacklet.runtime.faults import LinkProxyHandle, check_profile, link_targets, resolve
from stacklet.planning.plan import make_plan
from stacklet.runtime.seeds import resp_command, seed_files, seed_plan, split_redis_args
from stacklet.config.stack import ServiceMeta, SeedConfig
from stacklet.config.faultprofile import (TOXIC_ATTRIBUTES, FaultProfile, find_fault_profile, list_fault_profiles,
                                         load_fault_profile, parse_toxic_arguments)

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("path", sorted((REPO / "faults").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_profile_is_valid_and_fits_the_orders_slice(path, shop):
    profile = load_fault_profile(path)
    assert profile.description and profile.stack == "shop"
    check_profile(profile, make_plan(shop, ["orders"]))


def test_the_shop_ships_the_documented_profiles():
    assert {p.stem for p in list_fault_profiles(REPO)} >= {
        "slow-db", "flaky-payments", "payments-down", "slow-baseline", "bandwidth-crunch"}
    assert find_fault_profile("slow-db", REPO) == REPO / "faults" / "slow-db.yaml"


def test_unknown_profile_names_the_file_and_lists_the_known_ones():
    with pytest.raises(StackFileError) as info:
        find_fault_profile("no-such-profile", REPO)
    assert "faults/no-such-profile.yaml" in str(info.value)
    assert "slow-db" in info.value.hint


def test_every_toxic_lists_all_its_attributes_with_defaults():
    spec = parse_toxic_arguments("orders-db", "slicer", ["average_size=64"])
    assert spec.attributes == {"average_size": 64, "size_variation": 0, "delay": 0}
    assert spec.toxic_name == "slicer_downstream"
    assert set(TOXIC_ATTRIBUTES) == {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                                     "limit_data", "noop", "http_error", "http_fail_first", "http_latency"}


def test_http_faults_are_validated_by_the_link_proxys_own_schema():
    spec = parse_toxic_arguments("payments", "http_error", ["status=503", "path_prefix=/charges", "toxicity=0.3"])
    assert spec.attributes == {"status": 503, "body": "", "path_prefix": "/charges"} and spec.toxicity == 0.3
    assert parse_toxic_arguments("payments", "http_fail_first", ["count=2", "status=502"]).attributes == \
        {"count": 2, "status": 502}
    with pytest.raises(StackFileError, match="between 100 and 599"):
        parse_toxic_arguments("payments", "http_error", ["status=42"])
    with pytest.raises(StackFileError, match="must be > 0"):
        parse_toxic_arguments("payments", "bandwidth", ["rate=0"])


def test_fault_add_arguments_set_stream_toxicity_and_name():
    spec = parse_toxic_arguments("payments", "reset_peer", ["stream=upstream", "toxicity=0.3", "name=flaky",
                                                            "timeout=10"])
    assert (spec.stream, spec.toxicity, spec.toxic_name, spec.attributes) == ("upstream", 0.3, "flaky",
                                                                               {"timeout": 10})


@pytest.mark.parametrize("toxic, pairs, words", [
    ("latency", ["latency=-1"], ["latency", "between 0 and"]),
    ("bandwidth", ["rate=0"], ["rate", "must be > 0"]),
    ("slicer", ["average_size=0"], ["average_size"]),
    ("slicer", ["average_size=10", "size_variation=20"], ["size_variation", "average_size"]),
    ("latency", ["colour=3"], ["colour", "latency, jitter"]),
    ("latency", ["toxicity=1.5"], ["toxicity"]),
    ("latency", ["stream=sideways"], ["stream"]),
    ("latency", ["latency=fast"], ["latency", "whole number"]),
    ("latency", ["latency"], ["key=value"]),
    ("lag", [], ["unknown toxic type", "latency"]),
])
def test_bad_fault_add_arguments_are_clear_errors(toxic, pairs, words):
    with pytest.raises(StackFileError) as info:
        parse_toxic_arguments("orders-db", toxic, pairs)
    text = f"{info.value} {info.value.hint}"
    for word in words:
        assert word in text


@pytest.mark.parametrize("body, key", [
    ("toxics: []\n", "toxics"),
    ("toxics:\n  - target: orders-db\n    type: latency\n    attributes: {latency: -3}\n", "toxics.0"),
    ("toxics:\n  - target: orders-db\n    type: latency\n    colour: red\n", "toxics.0.colour"),
    ("toxics:\n  - type: latency\n", "toxics.0.target"),
    ("toxics:\n  - target: x\n    type: latency\n    attributes: {latency: 1.5}\n", "toxics.0.attributes"),
    ("toxic: []\n", "toxic"),
])
def test_bad_profiles_name_the_file_and_the_key(tmp_path, body, key):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(StackFileError) as info:
        load_fault_profile(path)
    assert str(path) in str(info.value)
    assert info.value.key.startswith(key)


def test_profile_for_another_stack_or_a_missing_target_is_refused(shop):
    plan = make_plan(shop, ["orders"])
    with pytest.raises(PlanError, match="for stack other"):
        check_profile(FaultProfile.model_validate(
            {"name": "x", "stack": "other", "toxics": [{"target": "orders-db", "type": "noop"}]}), plan)
    with pytest.raises(PlanError) as info:
        check_profile(FaultProfile.model_validate(
            {"name": "x", "toxics": [{"target": "notifications", "type": "noop"}]}), plan)
    assert "notifications" in str(info.value) and "orders-db" in info.value.hint


def test_groups_resolve_to_local_and_forwarded_targets():
    handle = LinkProxyHandle(name="stacklet-link-1", control=None, routes={
        "orders-db": "orders-db.origin:5432", "catalog": "catalog.baseline:8084", "api:80": "api.origin:80",
        "api:443": "api.origin:443"})
    kinds = link_targets([handle])
    assert kinds == {"api": "local", "catalog": "forwarded", "orders-db": "local"}
    assert resolve("@forwarded", kinds) == ["catalog"]
    assert resolve("@local", kinds) == ["api", "orders-db"]
    assert resolve("@all", kinds) == ["api", "catalog", "orders-db"]
    assert handle.routes_of("api") == ["api:80", "api:443"]
    with pytest.raises(PlanError):
        resolve("users", kinds)


def make_seeded_stack(tmp_path, shop, files: dict[str, str], seed: dict | None):
    (tmp_path / "stacks" / "shop").mkdir(parents=True)
    for name, text in files.items():
        path = tmp_path / "seeds" / "shop" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    meta = shop.meta.model_copy(update={"services": {
        "orders-db": ServiceMeta(stateful=True, seed=SeedConfig.model_validate(seed) if seed else None)}})
    return shop.model_copy(update={"meta": meta, "root": tmp_path / "stacks" / "shop"})


def test_seed_files_come_in_name_order(tmp_path, shop):
    stack = make_seeded_stack(tmp_path, shop, {"orders-db/002-rows.sql": "", "orders-db/001-schema.sql": "",
                                               "orders-db/README.md": ""}, {"sql": {}})
    assert [f.name for f in seed_files(stack, "orders-db")] == ["001-schema.sql", "002-rows.sql"]
    assert seed_plan(stack, ["orders-db", "orders"]) == {"orders-db": ["001-schema.sql", "002-rows.sql"]}


def test_a_seed_kind_the_service_does_not_take_names_the_key(tmp_path, shop):
    stack = make_seeded_stack(tmp_path, shop, {"orders-db/001.redis": "SET a 1\n"}, {"sql": {}})
    with pytest.raises(StackFileError) as info:
        seed_files(stack, "orders-db")
    assert info.value.key == "services.orders-db.seed.redis"
    assert "seed: {redis: {}}" in info.value.hint


def test_an_unknown_seed_file_kind_is_an_error(tmp_path, shop):
    stack = make_seeded_stack(tmp_path, shop, {"orders-db/001.csv": "a,b\n"}, {"sql": {}})
    with pytest.raises(StackFileError, match="unknown kind"):
        seed_files(stack, "orders-db")


@pytest.mark.parametrize("line, args", [
    ('SET k v', [b"SET", b"k", b"v"]),
    ('HSET users:u-1 name "Ada \\"L\\" é" email \'a@b\'', [b"HSET", b"users:u-1", b"name", 'Ada "L" é'.encode(),
                                                       b"email", b"a@b"]),
    ('SET k "a\\nb\\x41"', [b"SET", b"k", b"a\nbA"]),
    ("SET k 'it\\'s'", [b"SET", b"k", b"it's"]),
    ('SET   spaced    "two words"  ', [b"SET", b"spaced", b"two words"]),
])
def test_redis_lines_split_like_redis_cli(line, args):
    assert split_redis_args(line) == args
    assert resp_command(args).startswith(b"*%d\r\n" % len(args))


def test_every_shipped_redis_seed_line_parses():
    for file in sorted((REPO / "seeds" / "shop" / "redis").glob("*.redis")):
        for number, line in enumerate(file.read_text().splitlines(), 1):
            if line.strip() and not line.startswith("#"):
                assert split_redis_args(line), f"{file.name}:{number}"
