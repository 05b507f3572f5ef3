"""Per-link traffic, the routing proof, metrics and regressions in the verdict, on a real `orders` slice.

The shop is copied into a temporary folder, where `orders` is changed: placing an order runs a slow
query (``pg_sleep``). The copy gets four extra checks: an order placed through the gateway (so
`orders` is reached through its link), a check that only reads products through the gateway (it
never reaches `orders`), a bounded burst of orders sent while an `http_error` fault answers a share
of the calls from orders to payments, and a load check on orders' latency. The slice is booted once
for the module; the baseline (the unchanged shop) is the reference of `--reference baseline`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stacklet.checks.verdict import Verdict, render_text

from .conftest import copy_shop, http, orders_slice, run_cli

SLICE = "ev-orders"
ORDERS_SENT = 40
SLOW_QUERY_S = 3.0  # the change: every order placed waits this long in orders-db
LOAD_P99_MS = 2500  # what the load check allows: well above the unchanged shop's p99, below the slow query
LOAD_SENT = 16

EXTRA_CHECKS = """
  - name: order-via-gateway
    description: an order placed and read back through the gateway
    services: [orders]
    steps:
      - name: place
        service: gateway
        method: POST
        path: /orders
        json: {user_id: u-1, items: [{sku: SKU-0003, qty: 1}], idempotency_key: "vd-${run}-gw"}
        expect: {status: 201}
        capture: {order_id: $.id}
      - name: read-back
        service: gateway
        path: /orders/${order_id}
        expect: {status: 200}
  - name: products-only
    description: reads the catalog through the gateway, never reaching orders
    services: [orders]
    steps:
      - name: list
        service: gateway
        path: /products
        expect: {status: 200}
  - name: orders-under-a-payments-fault
    description: a bounded burst of orders, every one expected to be placed
    services: [orders]
    steps:
      - name: burst
        service: orders
        method: POST
        path: /orders
        json: {user_id: u-1, items: [{sku: SKU-0003, qty: 1, price_cents: 1299}], idempotency_key: "vd-${run}-${i}"}
        expect: {status: 201}
        load: {requests: %(count)d, concurrency: 4, duration_s: 120, expect: {error_rate: 0.0}}
  - name: orders-latency
    description: orders placed four at a time each answer within the allowed p99
    services: [orders]
    steps:
      - name: burst
        service: orders
        method: POST
        path: /orders
        json: {user_id: u-1, items: [{sku: SKU-0004, qty: 1, price_cents: 1299}], idempotency_key: "vd-${run}-l${i}"}
        expect: {status: 201}
        load: {requests: %(load)d, concurrency: 4, duration_s: 60, expect: {p99_ms: %(p99)d}}
"""
ORDERS_INSERT = "        with db() as cur:\n            cur.execute(f\"INSERT INTO orders"
SLOWER_INSERT = (f"        with db() as cur:\n            cur.execute(\"SELECT pg_sleep({SLOW_QUERY_S})\")  # a slow query\n"
                 "            cur.execute(f\"INSERT INTO orders")


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    stack_dir = copy_shop(tmp_path_factory.mktemp("vd-shop"))
    stack_file = stack_dir / "stack.yaml"
    extra = EXTRA_CHECKS % {"count": ORDERS_SENT, "load": LOAD_SENT, "p99": LOAD_P99_MS}
    stack_file.write_text(stack_file.read_text().rstrip("\n") + "\n" + extra)
    orders = stack_dir / "services" / "orders" / "app.py"
    source = orders.read_text()
    assert source.count(ORDERS_INSERT) == 1, "the shop's orders no longer inserts orders as this test expects"
    orders.write_text(source.replace(ORDERS_INSERT, SLOWER_INSERT))
    return stack_dir


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    return {"STACKLET_HOME": str(tmp_path_factory.mktemp("vd-stacklet-home"))}


@pytest.fixture(scope="module")
def slice_up(shop_baseline, copy, env, driver):
    warm_up_orders(shop_baseline)
    with orders_slice(copy, SLICE, env, driver) as status:
        yield status


def warm_up_orders(baseline) -> None:
    """A few orders on a baseline that may have just started, so that its first, cold requests (connection
    pools, first queries) are not what `--reference baseline` measures."""
    orders = next(s for s in baseline.services if s.name == "orders")
    for index in range(10):
        status, _ = http("POST", f"http://{orders.endpoints[0].host}/orders",
                         {"user_id": "u-1", "items": [{"sku": "SKU-0003", "qty": 1, "price_cents": 1299}],
                          "idempotency_key": f"warm-up-{index}-{os.getpid()}"})
        assert status == 201, status


def check_json(env: dict, *only: str, options: tuple[str, ...] = ()) -> tuple[int, dict]:
    args = [arg for name in only for arg in ("--only", name)]
    result = run_cli("check", SLICE, "--json", *args, *options, env=env, check=False)
    return result.returncode, json.loads(result.stdout)


def links_of(verdict: dict) -> dict[str, dict]:
    return {link["link"]: link for link in verdict["traffic"]}


def test_link_counts_agree_with_the_requests_the_check_sent(slice_up, env):
    code, verdict = check_json(env, "order-via-gateway")
    assert code == 0 and verdict["verdict"] == "passed", verdict["failures"]
    links = links_of(verdict)
    # two steps through the gateway: each becomes exactly one request on the gateway's link to orders
    assert links["orders"]["requests"] == 2 and links["orders"]["responses_5xx"] == 0
    assert links["orders"]["p50_ms"] is not None and links["orders"]["p99_ms"] >= links["orders"]["p50_ms"]
    # placing one order charges once (orders -> payments) and prices one item (gateway -> catalog, forwarded)
    assert links["payments"]["requests"] == 1 and links["catalog"]["requests"] == 1
    assert links["orders-db"]["bytes_to_upstream"] > 0
    [routing] = verdict["routing"]
    assert routing["service"] == "orders" and routing["requests"] == 2
    assert [(s["source"], s["via"], s["requests"]) for s in routing["sources"]] == [("gateway", "orders", 2)]
    assert verdict["checks"][0]["reached"] == ["orders"]


def test_a_check_that_never_reaches_orders_is_flagged(slice_up, env):
    code, verdict = check_json(env, "products-only")
    assert code == 1 and verdict["verdict"] == "failed"
    [finding] = verdict["failures"]
    assert (finding["kind"], finding["service"]) == ("routing", "orders")
    assert "products-only passed without reaching orders" in finding["message"]
    assert links_of(verdict)["catalog"]["requests"] == 1 and "orders" not in links_of(verdict)
    text = run_cli("check", SLICE, "--only", "products-only", env=env, check=False).stdout
    assert verdict["routing"][0]["unreached"] == ["products-only"]
    assert "  routing: orders received nothing, not from products-only" in text.splitlines()


def test_an_http_error_fault_on_payments_is_seen_in_the_link_counts_and_fails_a_load_step(slice_up, env):
    run_cli("fault", "add", "payments", "http_error", "status=502", "toxicity=0.5", "--slice", SLICE, env=env)
    try:
        code, verdict = check_json(env, "orders-under-a-payments-fault")
    finally:
        run_cli("fault", "clear", "--slice", SLICE, env=env)
    assert code == 1 and verdict["verdict"] == "failed"
    [step] = verdict["checks"][0]["steps"]
    load = step["load"]
    assert load["requests"] == ORDERS_SENT and set(load["statuses"]) <= {"201", "502"}, load
    payments = links_of(verdict)["payments"]
    assert payments["faults"] == ["http_error"] and payments["requests"] == ORDERS_SENT
    # about half, and exactly the orders that answered 502: each failed charge fails its order
    assert 8 <= payments["fault_responses"] <= 32
    assert payments["responses_5xx"] == payments["fault_responses"] == load["statuses"].get("502", 0)
    assert load["errors"] == payments["fault_responses"]
    first = verdict["failures"][0]
    assert (first["kind"], first["check"], first["step"]) == ("check", "orders-under-a-payments-fault", "burst")
    assert first["message"].startswith("POST /orders under load: ") and first["expected"] == "error rate at most 0.0%"
    [routing] = verdict["routing"]
    assert [(s["source"], s["via"], s["requests"]) for s in routing["sources"]] == [("check", "direct", ORDERS_SENT)]


def test_a_slow_query_passes_the_functional_checks_but_fails_the_load_check_against_the_baseline(slice_up, env):
    code, verdict = check_json(env, "place-order", "orders-latency", options=("--reference", "baseline"))
    assert code == 1 and verdict["verdict"] == "failed"
    outcomes = {check["name"]: check["outcome"] for check in verdict["checks"]}
    assert outcomes == {"place-order": "passed", "orders-latency": "failed"}, verdict["failures"]
    # the failure names orders and the metric that degraded, with the log lines of its slow requests
    first = verdict["failures"][0]
    assert (first["kind"], first["service"], first["check"]) == ("check", "orders", "orders-latency")
    assert first["expected"] == f"p99 at most {LOAD_P99_MS} ms" and first["actual"].startswith("p99 ")
    assert any(log["service"] == "orders" and "POST /orders 201" in log["line"] for log in first["logs"]), first
    # the reference: the same checks on the baseline's orders, which has no slow query
    # (on a loaded host the baseline may miss the p99 too: only the comparison matters here)
    assert verdict["reference"].startswith("the same 2 checks on the baseline")
    load = "orders-latency › burst [orders]"
    regression = next((r for r in verdict["regressions"] if r["name"] == load), None)
    assert regression, (verdict["regressions"], verdict.get("reference_figures"), verdict.get("figures"))
    assert regression["p99_ms_before"] * 2 <= regression["p99_ms_after"] and SLOW_QUERY_S * 1000 <= regression[
        "p99_ms_after"]
    assert regression["line"].startswith(f"{load}: p99 {regression['p99_ms_before']:,.0f} ms → "
                                         f"{regression['p99_ms_after']:,.0f} ms (x")
    assert " under " in regression["line"] and "req/s" in regression["line"]
    # metrics: every container of the slice was sampled while the checks ran, and none restarted
    metrics = {m["service"]: m for m in verdict["metrics"]}
    assert metrics["orders"]["samples"] >= 1 and metrics["orders"]["peak_memory_mib"] > 0
    assert all(m["restarts"] == 0 and m["oom_kills"] == 0 for m in metrics.values())
    # the text form names the same regression and the failing load step under orders
    text = render_text(Verdict.model_validate(verdict))
    assert f"    {regression['line']}" in text.splitlines(), text
    assert "1. check [orders] orders-latency › burst" in text.splitlines(), text
