"""The shop on real Docker: baseline, the `orders` slice, an order through the slice's gateway,
two slices at once, and a clean teardown."""

from __future__ import annotations

import json
import subprocess
import threading

from stacklet.planning.plan import make_plan

from .conftest import NOTHING, host_endpoint, http, leftovers, run_cli


def psql(container: str, db: str, sql: str) -> str:
    return subprocess.run(["docker", "exec", container, "psql", "-U", "shop", "-d", db, "-tAc", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def container_of(status, service: str) -> str:
    return next(s.container for s in [*status.services, *status.proxies] if s.name == service)


def test_orders_slice_runs_exactly_the_plan_and_places_an_order(shop_baseline, engine, driver, shop):
    plan = make_plan(shop, ["orders"])
    status = engine.up(plan, shop, "t-orders")
    try:
        assert status.healthy
        assert {s.name for s in status.services} == {"orders", "gateway", "orders-db", "payments", "inventory",
                                                    "redis", "inventory-db"}
        assert [p.name for p in status.proxies] == ["stacklet-link-1", "stacklet-link-2"]
        for svc in status.services:
            assert svc.endpoints and all(e.host.startswith("127.0.0.1:") for e in svc.endpoints)

        # stack.yaml's healthchecks.min_interval: compose.yaml says every 1 s x 30 retries, Docker runs the
        # same test every 5 s x 6 in the slice (a store from its snapshot too) and in the baseline
        for container in (container_of(status, "orders"), container_of(status, "redis"),
                          container_of(shop_baseline, "orders-db")):
            timing = json.loads(subprocess.run(["docker", "inspect", "-f", "{{json .Config.Healthcheck}}", container],
                                               capture_output=True, text=True, check=True).stdout)
            assert (timing["Interval"], timing["Retries"]) == (5_000_000_000, 6), timing
            assert timing["Test"][0] in ("CMD", "CMD-SHELL") and len(timing["Test"]) > 1

        rid = "t-orders-rid-1"
        code, order = http("POST", f"http://{host_endpoint(status, 'gateway')}/orders",
                           {"user_id": "u-1", "items": [{"sku": "SKU-0002", "qty": 2}]}, {"X-Request-Id": rid})
        assert code == 201, order
        assert order["status"] == "paid" and order["charge_id"]

        # the row is in the slice's own orders-db, not in the baseline's
        slice_db = container_of(status, "orders-db")
        assert psql(slice_db, "orders", f"select count(*) from orders where id = '{order['id']}'") == "1"
        baseline_db = container_of(shop_baseline, "orders-db")
        assert psql(baseline_db, "orders", f"select count(*) from orders where id = '{order['id']}'") == "0"

        # forwarded calls reached the baseline's catalog and users, with the request id
        for forwarded in ("catalog", "users"):
            logs = driver.container_logs(container_of(shop_baseline, forwarded))
            assert rid in logs, f"baseline {forwarded} did not see {rid}"
        # local calls stayed in the slice
        assert rid in driver.container_logs(container_of(status, "payments"))
        assert rid not in driver.container_logs(container_of(shop_baseline, "payments"))
    finally:
        engine.down("t-orders")
    assert leftovers(driver, "t-orders") == NOTHING


def test_two_slices_run_at_once_without_collisions(shop_baseline, engine, driver, shop):
    results: dict[str, object] = {}

    def boot(name: str, changed: str) -> None:
        try:
            results[name] = engine.up(make_plan(shop, [changed]), shop, name)
        except Exception as exc:  # reported below
            results[name] = exc

    threads = [threading.Thread(target=boot, args=("t-agent-a", "orders")),
               threading.Thread(target=boot, args=("t-agent-b", "payments"))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        a, b = results["t-agent-a"], results["t-agent-b"]
        assert not isinstance(a, Exception), a
        assert not isinstance(b, Exception), b
        assert a.healthy and b.healthy
        ports_a = {e.host for s in a.services for e in s.endpoints}
        ports_b = {e.host for s in b.services for e in s.endpoints}
        assert not ports_a & ports_b
        assert {s.name for s in b.services} >= {"payments", "orders", "redis", "orders-db"}

        # an order through each slice
        code, _ = http("POST", f"http://{host_endpoint(a, 'gateway')}/orders",
                       {"user_id": "u-2", "items": [{"sku": "SKU-0003", "qty": 1}]})
        assert code == 201
        listing = run_cli("ls", "--json")
        names = {s["name"] for s in json.loads(listing.stdout)["slices"]}
        assert {"t-agent-a", "t-agent-b"} <= names

        engine.down("t-agent-a")
        assert engine.status("t-agent-b").healthy, "removing one slice must not touch the other"
    finally:
        for name in ("t-agent-a", "t-agent-b"):
            if driver.containers({"dev.stacklet.slice": name}):
                engine.down(name)
    assert leftovers(driver, "t-agent-a", "t-agent-b") == NOTHING
