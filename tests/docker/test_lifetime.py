"""Slice lifetime on real Docker: `up --ttl`, expiry in `ls`, and `gc` of expired and orphaned slices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

from stacklet.labels import Label, parse_utc
from stacklet.planning.lifetime import GC_GRACE_S
from stacklet.planning.plan import make_plan
from stacklet.config.stack import load_stack

from .conftest import NOTHING, REPO, STACKLET, TINY, leftovers, run_cli



OURS = ("ttl-expire", "ttl-keep", "ttl-orphan", "ttl-live")


def gc(env: dict, *extra: str) -> dict:
    """`stacklet gc --json` limited to this module's slices (so other slices on the engine are never
    touched): {slice: reason} of what it removed and of what it kept."""
    document = json.loads(run_cli("gc", *OURS, "--json", *extra, env=env).stdout)
    assert document["ok"] is True
    return {"removed": {d["slice"]: d["reason"] for d in document["removed"]},
            "kept": {d["slice"]: d["reason"] for d in document["kept"]}}


def listed(env: dict) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads(run_cli("ls", "--json", env=env).stdout)["slices"]}


def test_an_expired_slice_is_removed_by_gc_and_one_without_ttl_is_kept(driver, workdir):
    env = {"STACKLET_HOME": str(workdir)}
    names = ("ttl-expire", "ttl-keep")
    try:
        up = json.loads(run_cli("up", "store", "--stack", str(TINY), "--radius", "0", "--name", "ttl-expire",
                                "--ttl", "2s", "--json", env=env).stdout)
        created, expires = parse_utc(up["slice"]["created"]), parse_utc(up["slice"]["expires"])
        assert expires - created == timedelta(seconds=2)
        run_cli("up", "store", "--stack", str(TINY), "--radius", "0", "--name", "ttl-keep", "--json", env=env)

        slices = listed(env)
        assert slices["ttl-expire"]["expires"] == up["slice"]["expires"]
        assert slices["ttl-keep"]["expires"] is None and slices["ttl-keep"]["expires_in_s"] is None
        time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 1)
        slices = listed(env)
        assert slices["ttl-expire"]["expired"] is True and slices["ttl-expire"]["expires_in_s"] < 0
        assert slices["ttl-keep"]["expired"] is False
        text = run_cli("ls", env=env).stdout
        row = next(line for line in text.splitlines() if line.startswith("ttl-expire"))
        assert "expired" in row and " ago" in row

        preview = gc(env, "--dry-run")
        assert preview["removed"]["ttl-expire"].startswith("expired ")
        assert preview["kept"]["ttl-keep"] == "no expiry"
        assert leftovers(driver, "ttl-expire") != NOTHING, "--dry-run removed something"

        result = gc(env)
        assert result["removed"]["ttl-expire"].startswith("expired ") and "ttl-keep" in result["kept"]
        assert leftovers(driver, "ttl-expire") == NOTHING
        assert driver.containers({"dev.stacklet.slice": "ttl-keep"}), "gc removed a slice without a TTL"
    finally:
        for name in names:
            run_cli("down", name, env=env, check=False)
    assert leftovers(driver, *names) == NOTHING


def test_a_killed_up_leaves_an_orphan_that_gc_removes_after_its_boot_deadline(driver, engine, workdir):
    env = {**os.environ, "STACKLET_HOME": str(workdir)}
    names = ("ttl-orphan", "ttl-live")
    live = None
    try:
        killed = subprocess.Popen([*STACKLET, "up", "api", "--stack", str(TINY), "--name", "ttl-orphan",
                                   "--timeout", "5"], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: driver.containers({"dev.stacklet.slice": "ttl-orphan"}), "ttl-orphan to create containers")
        killed.send_signal(signal.SIGKILL)  # no cleanup at all: a crashed or killed CLI
        killed.wait(30)
        assert leftovers(driver, "ttl-orphan")["containers"], "the killed boot left nothing to collect"
        assert not driver.volumes({"dev.stacklet.slice": "ttl-orphan", "dev.stacklet.marker": "boot"}), \
            "the boot finished before it was killed"

        # before its deadline the half-started slice may still be booting: gc keeps it
        assert gc(env)["kept"]["ttl-orphan"].startswith("booting (deadline in ")

        # a slice booting right now is not touched either: its boot is held after its containers exist
        live = LiveBoot(engine, "ttl-live")
        assert live.paused.wait(180), f"the boot of ttl-live never started a service: {live.error}"
        assert gc(env)["kept"]["ttl-live"].startswith("booting (deadline in ")
        live.finish()
        assert live.error is None, f"the boot failed after gc ran: {live.error}"
        assert live.status.healthy

        labels = next(iter(driver.labelled_networks({"dev.stacklet.slice": "ttl-orphan"}).values()))
        deadline = parse_utc(labels[Label.BOOT_DEADLINE])
        time.sleep(max(0.0, (deadline - datetime.now(timezone.utc)).total_seconds()) + GC_GRACE_S + 1)
        result = gc(env)
        assert result["removed"]["ttl-orphan"].startswith("orphaned: boot never finished")
        assert result["kept"]["ttl-live"] == "no expiry"
        assert leftovers(driver, "ttl-orphan") == NOTHING
    finally:
        if live:
            live.finish()
        for name in names:
            run_cli("down", name, env={"STACKLET_HOME": str(workdir)}, check=False)
    assert leftovers(driver, *names) == NOTHING


class LiveBoot:
    """``engine.up`` of a one-service tiny slice in a thread, held at its first start until ``finish()``."""

    def __init__(self, engine, name: str):
        self.paused, self.gate = threading.Event(), threading.Event()
        self.status, self.error = None, None
        stack = load_stack(TINY)
        self.thread = threading.Thread(target=self._run, args=(engine, make_plan(stack, ["store"], 0), stack, name))
        self.thread.start()

    def _run(self, engine, plan, stack, name) -> None:
        def hold(event) -> None:
            if event.kind == "starting" and not self.paused.is_set():
                self.paused.set()
                self.gate.wait(300)
        try:
            self.status = engine.up(plan, stack, name, on_event=hold)
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.paused.set()

    def finish(self) -> None:
        self.gate.set()
        self.thread.join(300)


def _wait_for(condition, what: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
