"""`stacklet check` end to end on a real `orders` slice of the shop.

The shop (stack, seeds, fault profiles) is copied into a temporary folder; only the copy is changed.
One slice serves every test, which run in order: the slice passes, then two deliberately broken
builds of `orders` (reloaded in place) fail with the service, step and error line, then command
checks and a bad check in stack.yaml, and last the stopped `orders` makes the slice unhealthy.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from .conftest import copy_shop, orders_slice, run_cli

SLICE = "ck-orders"
INSERT = 'cur.execute(f"INSERT INTO orders ({COLS}) VALUES'
BROKEN_INSERT = ('cur.execute(f"INSERT INTO orders (id, user_id, status, total_cent, charge_id, reservation_id, '
                 'items, idempotency_key, created_at) VALUES')
RETURN = "    return 201, order\n"
BROKEN_RETURN = '    return 201, {("state" if k == "status" else k): v for k, v in order.items()}\n'
COMMAND_CHECKS = """
  - name: orders-in-db
    description: the slice's orders-db answers a count of its orders
    command:
      in: orders-db
      run: [psql, -U, shop, -d, orders, -tAc, "select count(*) from orders"]
      stdout_matches: '^\\s*\\d+\\s*$'
  - name: orders-health-from-host
    description: the host reaches orders at the address stacklet exports
    command:
      run: curl -fsS "http://$STACKLET_ADDR_ORDERS/health"
      stdout_contains: '"ok"'
  - name: missing-table
    description: fails on purpose
    command:
      in: orders-db
      run: [psql, -U, shop, -d, orders, -tAc, "select count(*) from no_such_table"]
"""


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    return copy_shop(tmp_path_factory.mktemp("shop-check"))


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    return {"STACKLET_HOME": str(tmp_path_factory.mktemp("stacklet-home-check"))}


@pytest.fixture(scope="module")
def slice_up(shop_baseline, copy, env, driver):
    with orders_slice(copy, SLICE, env, driver) as status:
        yield status


def check(env: dict, *args: str) -> subprocess.CompletedProcess:
    return run_cli("check", SLICE, *args, env=env, check=False)


def check_json(env: dict, *args: str) -> tuple[int, dict]:
    result = check(env, "--json", *args)
    return result.returncode, json.loads(result.stdout)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def reload_orders(env: dict) -> None:
    run_cli("reload", "orders", "--slice", SLICE, "--json", env=env)


def test_the_orders_slice_passes(slice_up, env, tmp_path):
    code, verdict = check_json(env)
    assert code == 0, verdict
    assert verdict["verdict"] == "passed" and verdict["ok"] and verdict["schema_version"] == 1
    ran = {c["name"]: c["outcome"] for c in verdict["checks"]}
    assert ran == {"place-order": "passed", "idempotent-payment-retry": "passed",
                   "out-of-stock-rejection": "passed", "fraud-rejection": "passed"}
    assert verdict["failures"] == []
    assert verdict["traffic"] and all(link["connections"] or link["bytes_to_upstream"] for link in verdict["traffic"])
    assert {link["target"] for link in verdict["traffic"]} >= {"orders-db", "payments", "inventory"}
    [routing] = verdict["routing"]
    assert routing["service"] == "orders" and routing["requests"] >= 1

    junit = tmp_path / "reports" / "check.xml"
    text = check(env, "--junit", str(junit))
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.startswith("PASSED  slice ck-orders (shop, changed: orders)")
    assert "passed: place-order, idempotent-payment-retry, out-of-stock-rejection, fraud-rejection" in text.stdout
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "0"
    cases = [c.get("name") for c in suite.iter("testcase")]
    assert [c for c in cases if c.startswith("check ")] == [
        "check place-order", "check idempotent-payment-retry", "check out-of-stock-rejection",
        "check fraud-rejection"]

    history = check(env, "--history")
    assert history.returncode == 0
    assert len(history.stdout.strip().splitlines()) == 3  # header and two runs
    assert history.stdout.count("passed") == 2


def test_a_wrong_sql_column_names_orders_the_step_and_the_error_line(slice_up, copy, env):
    edit(copy / "services" / "orders" / "app.py", INSERT, BROKEN_INSERT)
    reload_orders(env)
    code, verdict = check_json(env)
    assert code == 1, verdict
    assert verdict["verdict"] == "failed" and verdict["regressed"] is True
    first = verdict["failures"][0]
    assert (first["kind"], first["service"], first["check"], first["step"]) == ("check", "orders", "place-order",
                                                                                "place")
    assert first["request_id"] and first["expected"] == "status 201"
    assert first["actual"].startswith("500 ")
    error = 'column "total_cent" of relation "orders" does not exist'
    assert 'UndefinedColumn: column \\"total_cent\\"' in first["actual"]  # the response body, as JSON
    mine = [log for log in first["logs"] if first["request_id"] in log["line"]]
    assert mine and mine[0]["service"] == "orders" and error in mine[0]["line"]
    assert first["logs"][0] == mine[0], "the lines of the failing request come first"
    assert {c["name"]: c["outcome"] for c in verdict["checks"]}["place-order"] == "failed"

    text = check(env)
    assert text.returncode == 1
    lines = text.stdout.rstrip("\n").splitlines()
    assert lines[0].startswith("FAILED  slice ck-orders")
    assert len(lines) <= 40, text.stdout
    assert "1. check [orders] place-order › place" in text.stdout
    assert any(line.lstrip().startswith("| orders:") and error in line for line in lines), text.stdout

    history = json.loads(check(env, "--history", "--json").stdout)["history"]
    assert [e["verdict"] for e in history] == ["passed", "passed", "failed", "failed"]
    assert history[2]["grew"] and not history[3]["grew"]
    assert history[2]["failing"][0] == "place-order › place"
    assert "▲ new failures" in check(env, "--history").stdout


def test_a_changed_response_field_names_the_json_path(slice_up, copy, env):
    edit(copy / "services" / "orders" / "app.py", BROKEN_INSERT, INSERT)
    edit(copy / "services" / "orders" / "app.py", RETURN, BROKEN_RETURN)
    reload_orders(env)
    code, verdict = check_json(env)
    assert code == 1, verdict
    first = verdict["failures"][0]
    assert (first["kind"], first["service"], first["check"], first["step"]) == ("check", "orders", "place-order",
                                                                                "place")
    assert "$.status" in first["message"]
    assert "$.status" in first["expected"] and "$.status" in first["actual"]
    assert '"state":"paid"' in first["actual"].replace(" ", "")
    text = check(env)
    assert text.returncode == 1 and len(text.stdout.splitlines()) <= 40
    assert "place-order › place" in text.stdout and "$.status" in text.stdout
    edit(copy / "services" / "orders" / "app.py", BROKEN_RETURN, RETURN)


def test_command_checks_on_the_host_and_in_a_container(slice_up, copy, env):
    stack_file = copy / "stack.yaml"
    original = stack_file.read_text()
    stack_file.write_text(original.rstrip("\n") + "\n" + COMMAND_CHECKS)
    try:
        code, verdict = check_json(env, "--only", "orders-in-db", "--only", "orders-health-from-host",
                                   "--only", "missing-table")
    finally:
        stack_file.write_text(original)
    assert code == 1, verdict
    outcome = {c["name"]: (c["kind"], c["outcome"]) for c in verdict["checks"]}
    assert outcome == {"orders-in-db": ("command", "passed"), "orders-health-from-host": ("command", "passed"),
                       "missing-table": ("command", "failed")}
    failure = verdict["failures"][0]
    assert (failure["kind"], failure["service"], failure["check"], failure["step"]) == (
        "check", "orders-db", "missing-table", "orders-db")
    assert failure["expected"] == "exit code 0"
    assert 'relation "no_such_table" does not exist' in failure["actual"]


def test_usage_and_configuration_errors_exit_3(slice_up, copy, env):
    missing = run_cli("check", "no-such-slice", env=env, check=False)
    assert missing.returncode == 3
    assert "no-such-slice" in missing.stderr

    stack_file = copy / "stack.yaml"
    original = stack_file.read_text()
    stack_file.write_text(original.rstrip("\n") + "\n  - name: typo\n    steps:\n"
                          "      - {name: get, service: ordrs, path: /orders}\n")
    try:
        result = check(env)
        code, error = check_json(env)
    finally:
        stack_file.write_text(original)
    assert result.returncode == 3 and code == 3
    flat = " ".join(result.stderr.split())
    assert str(stack_file) in flat.replace(" ", "") or str(stack_file) in flat
    assert error["file"] == str(stack_file) and error["key"] == "checks.5.steps.0.service"
    assert "did you mean 'orders'" in error["hint"]


def test_a_stopped_service_makes_the_slice_unhealthy(slice_up, env, driver):
    orders = next(s["container"] for s in slice_up["services"] if s["name"] == "orders")
    subprocess.run(["docker", "stop", "-t", "5", orders], check=True, capture_output=True)
    code, verdict = check_json(env)
    assert code == 2, verdict
    assert verdict["verdict"] == "unhealthy"
    assert [f["service"] for f in verdict["failures"] if f["kind"] == "unhealthy"] == ["orders"]
    assert all(c["outcome"] == "skipped" for c in verdict["checks"]) and "checks not run" in verdict["summary"]
    text = check(env)
    assert text.returncode == 2 and text.stdout.startswith("UNHEALTHY")
    assert "not healthy [orders]" in text.stdout
