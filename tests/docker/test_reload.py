"""The inner loop on a real `orders` slice: reload keeps faults, `up` twice reconciles, `up --watch` reloads.

The shop is copied (stack, seeds) into a temporary folder and only the copy is changed. The tests
share one slice and run in order: reload, then reconcile, then watch.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .conftest import NOTHING, REPO, STACKLET, http, leftovers, run_cli

SLICE = "rl-orders"
HEALTH = 'return 200, {"status": "ok"}'


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shop-copy")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "stacks" / "shop", root / "stacks" / "shop", ignore=ignore)
    shutil.copytree(REPO / "seeds" / "shop", root / "seeds" / "shop", ignore=ignore)
    return root / "stacks" / "shop"


@pytest.fixture(scope="module")
def env(workdir) -> dict:
    return {"STACKLET_HOME": str(workdir)}


@pytest.fixture(scope="module")
def slice_up(shop_baseline, copy, env, driver):
    result = run_cli("up", "orders", "--stack", str(copy), "--name", SLICE, "--json", env=env)
    yield json.loads(result.stdout)["slice"]
    run_cli("down", SLICE, env=env, check=False)
    assert leftovers(driver, SLICE) == NOTHING


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def endpoint(status: dict, service: str) -> str:
    return next(s for s in status["services"] if s["name"] == service)["endpoints"][0]["host"]


def container_ids(driver) -> dict[str, str]:
    return {c.service: c.id for c in driver.containers({"dev.stacklet.slice": SLICE})}


def test_reload_rebuilds_only_orders_and_keeps_the_fault_on_its_link(slice_up, copy, env, driver):
    run_cli("fault", "add", "orders-db", "latency", "latency=200", "--slice", SLICE, env=env)
    before = container_ids(driver)
    app = copy / "services" / "orders" / "app.py"
    edit(app, HEALTH, 'return 200, {"status": "ok", "build": "reloaded"}')

    result = run_cli("reload", "orders", "--slice", SLICE, "--json", env=env)
    reload = json.loads(result.stdout)["reload"]
    assert reload["service"] == "orders" and reload["built"] and reload["rebuilt"]
    assert reload["image_after"] != reload["image_before"]
    print(f"reload of a one-line change to orders: {reload['seconds']:.1f} s "
          f"(build {reload['build_s']:.1f} s, ready {reload['ready_s']:.1f} s)")

    # the new code answers (orders got a new container, so a new host port)
    started = time.monotonic()
    code, body = http("GET", f"http://{reload['status']['endpoints'][0]['host']}/health")
    elapsed = time.monotonic() - started
    assert code == 200 and body == {"status": "ok", "build": "reloaded"}
    # ... through the link proxy, whose toxic is still there: /health queries orders-db
    assert elapsed >= 0.2, f"/health took {elapsed:.3f} s, the 200 ms latency on orders-db is gone"
    faults = json.loads(run_cli("fault", "ls", "--slice", SLICE, "--json", env=env).stdout)["faults"]
    assert [(f["route"], f["type"], f["attributes"]["latency"]) for f in faults] == [("orders-db", "latency", 200)]
    # nothing else was recreated
    after = container_ids(driver)
    assert {s for s in before if before[s] != after[s]} == {"orders"}

    # a broken change: the container crashes, exit 2 naming the service, with its log tail
    edit(app, 'return 200, {"status": "ok", "build": "reloaded"}', 'return 200, {"status": "ok"  # broken')
    broken = run_cli("reload", "orders", "--slice", SLICE, "--timeout", "60", env=env, check=False)
    assert broken.returncode == 2, broken.stderr
    assert "service orders exited with code 1" in broken.stderr
    assert "SyntaxError" in broken.stderr
    assert "Traceback" in broken.stderr or "line" in broken.stderr

    # fixed again: the slice is healthy
    edit(app, 'return 200, {"status": "ok"  # broken', HEALTH)
    fixed = run_cli("reload", "orders", "--slice", SLICE, env=env)
    assert fixed.stdout.startswith("reloaded orders in ") and "(image rebuilt)" in fixed.stdout


def test_up_again_reconciles_only_what_changed(slice_up, copy, env):
    created = json.loads(run_cli("status", SLICE, "--json", env=env).stdout)["created"]
    started = time.monotonic()
    first = json.loads(run_cli("up", "orders", "--stack", str(copy), "--name", SLICE, "--json", env=env).stdout)
    seconds = time.monotonic() - started
    actions = {c["service"]: c["action"] for c in first["reconcile"]["changes"]}
    assert set(actions.values()) == {"unchanged"}, actions
    assert len(actions) == 9  # 7 services, 2 link proxies
    assert first["slice"]["created"] == created and first["slice"]["healthy"]
    assert first["reconcile"]["seeded"] == [] and first["reconcile"]["faults_reset"] == []
    print(f"second `up` of an unchanged slice: {seconds:.1f} s")
    # the link proxies were kept, so the fault from the previous test is still in force
    faults = json.loads(run_cli("fault", "ls", "--slice", SLICE, "--json", env=env).stdout)["faults"]
    assert [f["route"] for f in faults] == ["orders-db"]

    payments = copy / "services" / "payments" / "app.py"
    payments.write_text(payments.read_text() + "\n# a change\n")
    second = json.loads(run_cli("up", "orders", "--stack", str(copy), "--name", SLICE, "--json", env=env).stdout)
    actions = {c["service"]: c["action"] for c in second["reconcile"]["changes"]}
    assert {s for s, a in actions.items() if a != "unchanged"} == {"payments"}
    assert actions["payments"] == "rebuilt"
    assert second["slice"]["healthy"] and second["slice"]["created"] == created

    # the text form says what happened per service
    text = run_cli("up", "orders", "--stack", str(copy), "--name", SLICE, env=env).stdout
    assert f"updated slice {SLICE}" in text and "unchanged" in text

    # a slice of another stack with the same name is refused
    other = run_cli("up", "api", "--stack", str(REPO / "tests" / "docker" / "stacks" / "tiny"), "--name", SLICE,
                    env=env, check=False)
    assert other.returncode == 3
    assert "already runs, made from stack shop" in other.stderr and "--name" in other.stderr


def test_up_watch_reloads_a_changed_service_until_ctrl_c(slice_up, copy, env, driver):
    # --engine names where the slice runs; the watch follows it there (here: this engine, listed as `default`)
    process = subprocess.Popen([*STACKLET, "up", "orders", "--stack", str(copy), "--name", SLICE, "--watch",
                                "--engine", "default"],
                               cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    seen: list[str] = []

    def wait_for(text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, f"stacklet exited: {''.join(seen)}{process.stderr.read()}"
                continue
            seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n{''.join(seen)}")

    try:
        wait_for("watching ", 180)
        edit(copy / "services" / "orders" / "app.py", HEALTH, 'return 200, {"status": "ok", "build": "watched"}')
        line = wait_for("reloaded orders in ", 180)
        assert "(image rebuilt)" in line
        status = json.loads(run_cli("status", SLICE, "--json", env=env).stdout)
        code, body = http("GET", f"http://{endpoint(status, 'orders')}/health")
        assert body == {"status": "ok", "build": "watched"}
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        err = process.stderr.read()
        reader.join(timeout=10)  # the reader thread owns stdout: take what it read after the last wait_for
    while not lines.empty():
        seen.append(lines.get())
    assert process.returncode == 0, err
    assert f"stopped watching; slice {SLICE} is still running" in "".join(seen)
    assert json.loads(run_cli("status", SLICE, "--json", env=env).stdout)["healthy"]
