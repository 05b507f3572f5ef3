"""Warm slices of a change of `web` in the tiny chain (web → api → store, each service built from its own
folder, nothing forwarded) on a real engine, in order: warm one, edit web, `up` takes it (with the edit
built in) and refills the pool in the background, two concurrent claims of the refilled slice (one
wins), `gc` removes expired warm slices, and nothing is left behind.

Three slices boot in this module (the warm one, the refill, one with a short TTL for gc).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from stacklet.config.stack import load_stack
from stacklet.labels import Label, claim_record_name
from stacklet.planning.plan import make_plan
from stacklet.runtime.engine import SliceEngine
from stacklet.runtime.warm import filling
from stacklet.runtime.warmkey import warm_key

from .conftest import NOTHING, REPO, http, leftovers, run_cli

BASE = "wm-web"
MINE = "wm-mine"
EDITED = "warm-edit-marker"
HEALTH = 'body = {"ok": True}'
TINY = REPO / "tests" / "docker" / "stacks" / "tiny"
# the healthchecks use bash's /dev/tcp: a few ms of CPU, where tiny's `python3 -c urllib...` costs ~50 ms (and
# times out on a busy host)


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory) -> Path:
    """A copy of tiny where each service has a build folder of its own (an edit to web leaves api's image) and a
    cheap healthcheck."""
    root = tmp_path_factory.mktemp("warm") / "tiny"
    shutil.copytree(TINY, root)
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        shutil.copytree(root / "app", root / name)
        service["build"] = {"context": name}
        port = service["environment"]["PORT"]
        service["healthcheck"] = {"test": ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"],
                                  "interval": "1s", "timeout": "5s", "retries": 60}
    (root / "compose.yaml").write_text(yaml.safe_dump(compose))
    return root


@pytest.fixture(scope="module")
def env(workdir) -> dict:
    return {"STACKLET_HOME": str(workdir)}


@pytest.fixture(scope="module")
def warm_engine(driver, workdir) -> SliceEngine:
    return SliceEngine(driver, workdir)


@pytest.fixture(scope="module", autouse=True)
def cleanup(warm_engine, driver, env):
    """Whatever the tests leave: taken slices, the pool; then check nothing of this module is on the engine."""
    yield
    for name in (MINE, "wm-race-a", "wm-race-b"):
        run_cli("down", name, env=env, check=False)
    warm_engine.warm.clear()
    names = [w.slice for w in warm_engine.warm.slices()]
    for name in names:
        warm_engine.down(name)
    assert not [c.name for c in driver.containers({Label.WARM_OF: ""}) if c.name.startswith("stacklet-claim-wm")
                or c.labels.get(Label.WARM_OF, "").startswith(BASE)]
    assert leftovers(driver, *names) == NOTHING


def pool_of(env: dict) -> list[dict]:
    return [s for s in json.loads(run_cli("ls", "--json", env=env).stdout)["slices"] if s.get("warm")]


def refill_done(workdir: Path, timeout_s: float = 240) -> None:
    """Wait until no refill holds a pool's lock (its boot finished or failed)."""
    deadline = time.monotonic() + timeout_s
    while filling(workdir):
        if time.monotonic() > deadline:
            pytest.fail(f"the refill still runs after {timeout_s} s")
        time.sleep(1)


def test_a_warm_slice_is_taken_with_the_edit_made_after_warming_and_refilled(stack_dir, env, workdir, driver):
    warmed = json.loads(run_cli("warm", "web", "--stack", str(stack_dir), "--name", BASE, "--json", env=env).stdout)
    assert len(warmed["booted"]) == 1 and [s["warm"] for s in warmed["pool"]] == ["paused"]
    first = warmed["booted"][0]
    assert all(c.state == "paused" for c in driver.containers({Label.SLICE: first}))

    app = stack_dir / "web" / "app.py"
    text = app.read_text()
    assert text.count(HEALTH) == 1
    app.write_text(text.replace(HEALTH, f'body = {{"ok": True, "edit": "{EDITED}"}}'))

    up = json.loads(run_cli("up", "web", "--stack", str(stack_dir), "--name", MINE, "--json", env=env).stdout)
    assert up["warm"]["taken"] == first and up["slice"]["name"] == MINE and up["slice"]["healthy"]
    assert [r["service"] for r in up["warm"]["reloaded"]] == ["web"], "only the edited service is rebuilt"
    web = next(s for s in up["slice"]["services"] if s["name"] == "web")
    status, body = http("GET", f"http://{web['endpoints'][0]['host']}/health")
    assert status == 200 and body.get("edit") == EDITED

    status_now = json.loads(run_cli("status", MINE, "--json", env=env).stdout)
    assert status_now["taken_from"] == first and status_now["healthy"]
    assert run_cli("logs", "web", "--slice", MINE, "--tail", "5", env=env).returncode == 0
    listed = {s["name"]: s for s in json.loads(run_cli("ls", "--json", env=env).stdout)["slices"]}
    assert listed[MINE]["taken_from"] == first and not listed[MINE]["warm"]

    refill_done(workdir)
    pool = pool_of(env)
    assert len(pool) == 1 and pool[0]["name"] != first and pool[0]["warm"] == "paused", pool
    # the refill releases its lock before its interpreter exits: give the exit a bounded moment under load
    deadline = time.monotonic() + 15
    while subprocess.run(["pgrep", "-f", f"stacklet warm web .*{stack_dir}"], capture_output=True).stdout:
        assert time.monotonic() < deadline, "the refill process is gone"
        time.sleep(0.5)


def test_two_concurrent_claims_of_one_warm_slice_one_wins(stack_dir, warm_engine, driver):
    stack = load_stack(stack_dir)
    key = warm_key(make_plan(stack, ["web"]), stack, driver)
    waiting = warm_engine.warm.waiting("tiny")
    assert len([w for w in waiting if w.key == key.digest()]) == 1, "the refilled slice fits"
    results: dict[str, object] = {}
    go = threading.Barrier(2)

    def take(name: str) -> None:
        go.wait()
        results[name] = warm_engine.warm.claim(key, name, ttl_s=1, waiting=waiting)

    threads = [threading.Thread(target=take, args=(name,)) for name in ("wm-race-a", "wm-race-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [name for name, claim in results.items() if claim.taken]
    assert len(winners) == 1, results
    loser = next(claim for claim in results.values() if not claim.taken)
    assert "taken by another" in loser.reason
    assert driver.inspect([claim_record_name(winners[0])]), "the winner's claim record names the slice"
    assert warm_engine.status(winners[0]).name == winners[0]


def test_gc_removes_expired_warm_slices(stack_dir, env, warm_engine):
    warmed = json.loads(run_cli("warm", "web", "--stack", str(stack_dir), "--name", BASE, "--ttl", "5s",
                                "--json", env=env).stdout)
    assert len(warmed["booted"]) == 1
    time.sleep(6)
    taken = {s["name"]: s["taken_from"] for s in json.loads(run_cli("ls", "--json", env=env).stdout)["slices"]
             if s["name"].startswith("wm-race-")}
    assert len(taken) == 1
    removed = {d["slice"] for d in json.loads(run_cli("gc", "--json", env=env).stdout)["removed"]}
    assert warmed["booted"][0] in removed, "the expired pool slice"
    assert set(taken.values()) <= removed, "the taken slice whose own TTL (1 s) passed"
    assert not pool_of(env)
    assert not [s for s in json.loads(run_cli("ls", "--json", env=env).stdout)["slices"]
                if s["name"].startswith("wm-race-")]
