"""Seeded data and faults on a real `orders` slice of the shop."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from stacklet.errors import BootError
from stacklet.planning.plan import make_plan
from stacklet.config.stack import load_stack
from stacklet.config.faultprofile import load_fault_profile

from .conftest import NOTHING, REPO, host_endpoint, http, leftovers, run_cli

SLICE = "t-seeded"
ORDER = {"user_id": "u-1", "items": [{"sku": "SKU-0001", "qty": 1}]}


def psql(container: str, db: str, sql: str) -> str:
    return subprocess.run(["docker", "exec", container, "psql", "-X", "-U", "shop", "-d", db, "-tAc", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def container_of(status, service: str) -> str:
    return next(s.container for s in status.services if s.name == service)


def checksum(container: str, db: str, table: str) -> str:
    return psql(container, db, f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")


@pytest.fixture(scope="module")
def seeded(shop_baseline, engine, shop):
    status = engine.up(make_plan(shop, ["orders"]), shop, SLICE)
    yield status
    engine.down(SLICE)


def test_the_slice_is_seeded_with_the_edge_cases(seeded):
    inventory = container_of(seeded, "inventory-db")
    orders = container_of(seeded, "orders-db")
    assert int(psql(inventory, "inventory", "SELECT count(*) FROM stock")) >= 5000
    assert int(psql(inventory, "inventory", "SELECT count(*) FROM stock WHERE qty = 0")) > 0
    assert int(psql(orders, "orders", "SELECT count(*) FROM orders WHERE status = 'paid'")) >= 1
    redis = container_of(seeded, "redis")
    users = subprocess.run(["docker", "exec", redis, "redis-cli", "SCARD", "users:ids"],
                           capture_output=True, text=True, check=True).stdout
    assert int(users) >= 3000


REDIS_DIGEST = ("local keys = redis.call('KEYS', '*') table.sort(keys) local parts = {} "
                "for _, key in ipairs(keys) do parts[#parts + 1] = key .. redis.call('DUMP', key) end "
                "return {#keys, redis.sha1hex(table.concat(parts))}")


def redis_digest(container: str) -> str:
    return subprocess.run(["docker", "exec", container, "redis-cli", "EVAL", REDIS_DIGEST, "0"],
                          capture_output=True, text=True, check=True).stdout


def test_reset_restores_the_exact_seeded_state(seeded):
    orders = container_of(seeded, "orders-db")
    inventory = container_of(seeded, "inventory-db")
    redis = container_of(seeded, "redis")
    seeded_redis = redis_digest(redis)
    before = (checksum(orders, "orders", "orders"), checksum(inventory, "inventory", "stock"))
    code, body = http("POST", f"http://{host_endpoint(seeded, 'gateway')}/orders", ORDER)
    assert code == 201, body
    assert (checksum(orders, "orders", "orders"), checksum(inventory, "inventory", "stock")) != before

    result = json.loads(run_cli("reset", "--slice", SLICE, "--json").stdout)
    assert result["ok"] and {r["service"] for r in result["results"]} >= {"orders-db", "inventory-db", "redis"}
    assert (checksum(orders, "orders", "orders"), checksum(inventory, "inventory", "stock")) == before
    assert redis_digest(redis) == seeded_redis  # the pipelined replay gives exactly what the careful load gave
    # the services notice their pooled connections were closed by the reset and open new ones
    code, body = http("POST", f"http://{host_endpoint(seeded, 'gateway')}/orders", ORDER, timeout=60)
    assert code == 201, body
    run_cli("reset", "orders-db", "--slice", SLICE)
    assert checksum(orders, "orders", "orders") == before[0]
    code, body = http("POST", f"http://{host_endpoint(seeded, 'gateway')}/orders", ORDER, timeout=60)
    assert code == 201, body


def timed_order(status) -> tuple[int, float]:
    started = time.monotonic()
    code, _ = http("POST", f"http://{host_endpoint(status, 'gateway')}/orders", ORDER, timeout=60)
    return code, time.monotonic() - started


def test_slow_db_makes_orders_take_at_least_the_injected_latency(seeded):
    code, fast = timed_order(seeded)
    assert code == 201
    run_cli("fault", "apply", "slow-db", "--slice", SLICE)
    try:
        listed = json.loads(run_cli("fault", "ls", "--slice", SLICE, "--json").stdout)
        assert [f["name"] for f in listed["faults"]] == ["slow-db.latency_downstream"]
        profile = load_fault_profile(REPO / "faults" / "slow-db.yaml")
        least = (profile.toxics[0].attributes["latency"] - profile.toxics[0].attributes["jitter"]) / 1000
        code, slow = timed_order(seeded)
        assert code == 201
        assert slow >= least, f"order took {slow:.3f}s with slow-db, expected at least {least:.3f}s"
    finally:
        run_cli("fault", "clear", "--slice", SLICE)


def test_payments_down_fails_orders_cleanly_and_clear_recovers_without_restart(seeded, engine):
    before = {s.name: (s.state, s.restarts) for s in engine.status(SLICE).services}
    started = {c.name: c.started_at for c in engine.driver.containers({"dev.stacklet.slice": SLICE})}
    run_cli("fault", "apply", "payments-down", "--slice", SLICE)
    try:
        code, body = http("POST", f"http://{host_endpoint(seeded, 'gateway')}/orders", ORDER)
        assert code == 502 and body["service"] == "payments", body
        assert engine.status(SLICE).healthy
    finally:
        cleared = json.loads(run_cli("fault", "clear", "payments", "--slice", SLICE, "--json").stdout)
    assert [f["type"] for f in cleared["faults"]] == ["down"]
    code, body = http("POST", f"http://{host_endpoint(seeded, 'gateway')}/orders", ORDER)
    assert code == 201, body
    assert {s.name: (s.state, s.restarts) for s in engine.status(SLICE).services} == before
    assert {c.name: c.started_at for c in engine.driver.containers({"dev.stacklet.slice": SLICE})} == started


def test_faults_on_forwarded_links_slow_the_baseline_calls(seeded):
    url = f"http://{host_endpoint(seeded, 'gateway')}/products/SKU-0001"
    run_cli("fault", "apply", "slow-baseline", "--slice", SLICE)
    try:
        listed = json.loads(run_cli("fault", "ls", "--slice", SLICE, "--json").stdout)
        slowed = {f["target"] for f in listed["faults"]}
        assert slowed == {t for t, kind in listed["targets"].items() if kind == "forwarded"} == {"catalog", "users",
                                                                                                "fraud"}
        started = time.monotonic()
        code, _ = http("GET", url)
        assert code == 200 and time.monotonic() - started >= 0.1
    finally:
        run_cli("fault", "clear", "@forwarded", "--slice", SLICE)


@pytest.mark.parametrize("args, message", [
    (["fault", "add", "orders-db", "latency", "latency=-1"], "must be between 0 and"),
    (["fault", "add", "orders-db", "lag"], "unknown toxic type"),
    (["fault", "add", "notifications", "latency", "latency=10"], "no link to 'notifications'"),
    (["fault", "apply", "no-such-profile"], "no fault profile named"),
])
def test_bad_fault_requests_are_clear_errors_and_change_nothing(seeded, args, message):
    run_cli("fault", "add", "redis", "latency", "latency=5", "--slice", SLICE)
    try:
        before = run_cli("fault", "ls", "--slice", SLICE, "--json").stdout
        result = run_cli(*args, "--slice", SLICE, check=False)
        assert result.returncode == 3
        assert message in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
        assert run_cli("fault", "ls", "--slice", SLICE, "--json").stdout == before
    finally:
        run_cli("fault", "clear", "--slice", SLICE)


def test_a_profile_applied_at_boot_with_a_seed(shop_baseline, engine, driver, shop, workdir):
    env = {"STACKLET_HOME": str(workdir)}
    run_cli("up", "payments", "--stack", "shop", "--name", "t-boot-fault", "--fault", "flaky-payments",
            "--fault-seed", "7", "--no-seed", env=env)
    try:
        listed = json.loads(run_cli("fault", "ls", "--slice", "t-boot-fault", "--json", env=env).stdout)
        assert {(f["target"], f["type"], f["toxicity"]) for f in listed["faults"]} == {("payments", "reset_peer", 0.3)}
        proxy = next(c for c in driver.containers({"dev.stacklet.slice": "t-boot-fault"})
                     if c.labels.get("dev.stacklet.role") == "linkproxy")
        assert "--seed" in subprocess.run(["docker", "inspect", "-f", "{{json .Args}}", proxy.id],
                                          capture_output=True, text=True, check=True).stdout
    finally:
        run_cli("down", "t-boot-fault", env=env)
    assert leftovers(driver, "t-boot-fault") == NOTHING


def test_a_failing_seed_stops_the_boot_naming_file_and_line(engine, driver, shop, tmp_path):
    (tmp_path / "stacks" / "shopbad").mkdir(parents=True)
    (tmp_path / "stacks" / "shopbad" / "stack.yaml").write_text(
        f"name: shopbad\ncompose: {REPO / 'stacks' / 'shop' / 'compose.yaml'}\n"
        "services:\n  orders-db:\n    stateful: true\n    seed: {sql: {}}\n")
    seeds = tmp_path / "seeds" / "shopbad" / "orders-db"
    seeds.mkdir(parents=True)
    (seeds / "001-ok.sql").write_text("CREATE TABLE t (id int);\n")
    (seeds / "002-bad.sql").write_text("INSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('not a number');\n")
    stack = load_stack(tmp_path / "stacks" / "shopbad")
    with pytest.raises(BootError) as failure:
        engine.up(make_plan(stack, ["orders-db"], radius=0), stack, "t-bad-seed")
    error = failure.value
    assert error.service == "orders-db"
    assert "002-bad.sql" in error.message and "line 2" in error.message and "invalid input syntax" in error.message
    assert leftovers(driver, "t-bad-seed") == NOTHING
