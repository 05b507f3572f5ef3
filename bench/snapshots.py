"""Faster than Compose: full stack vs a cold slice started from seeded snapshots, reset, concurrency.

In one run, side by side, with the host's load and what else runs recorded before and after each part:

1. forum: ``docker compose up -d --wait`` of the whole stack vs a cold slice of ``api`` (images built,
   snapshots present: a first, unmeasured slice keeps them);
2. shop: the same for ``orders`` (the shop baseline up), then ``reset`` of the seeded orders-db and redis;
3. shop: 4 cold ``orders`` slices booted at once (threads), each one's time vs one slice alone, and the
   cores the running containers keep busy by themselves (their healthchecks): the baseline alone, and
   the baseline with the 4 slices up and idle, and the CPU seconds one slice's boot costs the host (all of it,
   and the containers' part). Twice: with every healthcheck as compose.yaml declares it
   (every 1 s), then as the shop's stack.yaml runs them (``healthchecks.min_interval: 5s``), the baseline
   brought up again in each mode.

Every slice's boot events are kept as a timeline (seconds from the start of ``up``: building, snapshot
choice, creating, each start batch, each service ready), so the result says where the time goes.
Targets (issue 15): cold slice <= 0.5x full, reset <= 0.2 s, 4 concurrent within 2x one.

    .venv/bin/python bench/snapshots.py [--quick] [--only forum|shop|concurrent]

Results: bench/results/snapshots.json. Everything it starts is named ``bench-snap-*`` (slices, Compose
projects) and removed at the end; a shop baseline it started is stopped again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from stacklet.config.stack import HealthchecksConfig, Stack, load_stack
from stacklet.docker.driver import Driver
from stacklet.errors import SliceNotFound, StackletError
from stacklet.planning.plan import make_plan
from stacklet.runtime.engine import Event, SliceEngine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "snapshots.json"
UP_TIMEOUT_S = 600


def docker(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=UP_TIMEOUT_S + 60, check=check)


def conditions() -> dict[str, Any]:
    """The host's load and the containers running per Compose project (what else runs)."""
    projects: dict[str, int] = {}
    for project in docker("ps", "--format", '{{.Label "com.docker.compose.project"}}').stdout.splitlines():
        projects[project or "(none)"] = projects.get(project or "(none)", 0) + 1
    return {"load_1m": round(os.getloadavg()[0], 2), "running_containers": sum(projects.values()),
            "projects": projects}


def ticks() -> tuple[int, int]:
    """The host's CPU time so far, in clock ticks summed over its cores (/proc/stat): all, and idle + iowait."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def containers_cpu_s() -> float | None:
    """CPU seconds every Docker container has used so far (cgroup v1 cpuacct); None where it is not found."""
    usage = Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")
    return int(usage.read_text()) / 1e9 if usage.is_file() else None


def cpu_cost(action: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``action``; its result, and the CPU seconds the whole host and the containers spent meanwhile
    (everything else that runs is counted too: the idle baseline's part is its ``busy_cores`` x the time)."""
    (total0, idle0), containers0, t0 = ticks(), containers_cpu_s(), time.perf_counter()
    result = action()
    (total1, idle1), containers1, seconds = ticks(), containers_cpu_s(), time.perf_counter() - t0
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    return result, {"seconds": round(seconds, 2), "host_cpu_s": round(((total1 - total0) - (idle1 - idle0)) * tick_s, 2),
                    "containers_cpu_s": round(containers1 - containers0, 2) if containers0 is not None else None}


def busy_cores(seconds: float = 10.0) -> dict[str, Any]:
    """How many of the host's cores are busy over ``seconds`` (from /proc/stat), and how many containers run:
    with nothing booting, what the running containers' own healthchecks cost."""
    total0, idle0 = ticks()
    time.sleep(seconds)
    total1, idle1 = ticks()
    busy = 1 - (idle1 - idle0) / max(total1 - total0, 1)
    return {"busy_cores": round(busy * (os.cpu_count() or 1), 2), "seconds": seconds,
            "running_containers": conditions()["running_containers"]}


def full_stack(stack: Stack, project: str) -> dict[str, Any]:
    """``docker compose up -d --wait`` of the whole stack (images built first, not timed), then down."""
    base = ["compose", "-f", str(stack.compose.files[0]), "-p", project]
    docker(*base, "build", "-q")
    run: dict[str, Any] = {"before": conditions()}
    try:
        t0 = time.perf_counter()
        result = docker(*base, "up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S))
        run["ready_s"] = round(time.perf_counter() - t0, 2)
        run["ok"] = result.returncode == 0
        run["containers"] = len(docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}")
                                .stdout.split())
    finally:
        docker(*base, "down", "-v", "--remove-orphans", "-t", "3")
    return run


def slice_up(engine: SliceEngine, stack: Stack, changed: str, name: str) -> dict[str, Any]:
    """Boot one slice; its time to ready and the timeline of its boot events."""
    events: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def on_event(event: Event) -> None:
        events.append({"t": round(time.perf_counter() - t0, 2), "kind": event.kind,
                       "service": event.service, "message": event.message})
    run: dict[str, Any] = {"before": conditions()}
    status = engine.up(make_plan(stack, [changed]), stack, name, on_event=on_event, timeout_s=UP_TIMEOUT_S)
    run["ready_s"] = round(time.perf_counter() - t0, 2)
    run["healthy"] = status.healthy
    run["containers"] = len(status.services) + len(status.proxies)
    run["from_snapshot"] = {s.name: s.snapshot for s in status.services if s.snapshot}
    run["satisfied_jobs"] = {s.name: s.satisfied_by for s in status.services if s.satisfied_by}
    run["timeline"] = events
    return run


def prepared_cold_slice(engine: SliceEngine, stack: Stack, changed: str, prefix: str) -> dict[str, Any]:
    """A first slice builds the images and keeps the snapshots (timed too), then the measured cold slice."""
    first = slice_up(engine, stack, changed, f"{prefix}-prep")
    engine.down(f"{prefix}-prep")
    cold = slice_up(engine, stack, changed, f"{prefix}-cold")
    return {"first_boot": {k: first[k] for k in ("ready_s", "from_snapshot")}, "cold": cold}


def reset_times(engine: SliceEngine, name: str, services: list[str], repeats: int) -> dict[str, Any]:
    """Seconds per ``reset`` of each seeded store (the seeder's own time, docker exec included)."""
    times: dict[str, list[float]] = {s: [] for s in services}
    for _ in range(repeats):
        for service in services:
            t0 = time.perf_counter()
            engine.seed(name, service, reset=True)
            times[service].append(round(time.perf_counter() - t0, 3))
    return {s: {"median": statistics.median(v), "best": min(v), "all": v} for s, v in times.items()}


def concurrent(engine: SliceEngine, stack: Stack, changed: str, count: int) -> dict[str, Any]:
    """``count`` cold slices booted at once, each in its own thread."""
    runs: dict[str, Any] = {}

    def boot(index: int) -> None:
        name = f"bench-snap-c{index}"
        try:
            runs[name] = slice_up(engine, stack, changed, name)
        except StackletError as exc:
            runs[name] = {"error": exc.message}
    t0 = time.perf_counter()
    threads = [threading.Thread(target=boot, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = round(time.perf_counter() - t0, 2)
    idle = busy_cores()  # every slice up and idle: what their containers cost by themselves
    for name in runs:
        engine.down(name)
    return {"wall_s": wall, "idle_afterwards": idle, "ready_s": {n: r.get("ready_s") for n, r in runs.items()},
            "errors": {n: r["error"] for n, r in runs.items() if "error" in r},
            "timelines": {n: r.get("timeline") for n, r in runs.items()}}


def as_declared(stack: Stack) -> Stack:
    """``stack`` with its healthchecks run as compose.yaml declares them (no ``healthchecks.min_interval``)."""
    return stack.model_copy(update={"meta": stack.meta.model_copy(update={"healthchecks": HealthchecksConfig()})})


def concurrency_part(engine: SliceEngine, stack: Stack, count: int) -> dict[str, Any]:
    """The shop baseline brought up as ``stack`` says, then one slice alone and ``count`` at once."""
    engine.baseline_up(stack)
    baseline_idle = busy_cores()  # the shop baseline alone, nothing booting
    one, one_cpu = cpu_cost(lambda: slice_up(engine, stack, "orders", "bench-snap-one"))
    engine.down("bench-snap-one")
    many = concurrent(engine, stack, "orders", count)
    slowest = max((t for t in many["ready_s"].values() if t), default=None)
    print(f"concurrent, healthchecks every {stack.meta.healthchecks.min_interval or 'as declared'}: "
          f"one {one['ready_s']} s, {len(many['ready_s'])} at once {many['ready_s']}", flush=True)
    return {"min_interval_s": stack.meta.healthchecks.min_interval, "one_s": one["ready_s"], "one_cpu": one_cpu,
            "baseline_idle": baseline_idle, **many,
            "slowest_over_one": round(slowest / one["ready_s"], 2) if slowest else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat of reset, 2 concurrent slices instead of 4")
    parser.add_argument("--only", choices=("forum", "shop", "concurrent"), action="append")
    args = parser.parse_args()
    parts = args.only or ["forum", "shop", "concurrent"]
    os.environ.setdefault("STACKLET_HOME", str(REPO / ".stacklet" / "bench"))
    engine = SliceEngine(Driver())
    result: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    result.update({"benchmark": "snapshots", "recorded_at": datetime.datetime.now(datetime.timezone.utc)
                  .strftime("%Y-%m-%dT%H:%M:%SZ"), "quick": args.quick, "cores": os.cpu_count(),
                   "quiet_host": False, "note": "each part records the load before it ran"})
    started_baseline = False

    def save() -> None:  # after each part, so an interrupted run keeps what it measured
        result["after"] = conditions()
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleans up through the finally below
    try:
        if "forum" in parts:
            forum = load_stack(REPO / "stacks" / "forum")
            result["forum"] = {"full": full_stack(forum, "bench-snap-full-forum")}
            save()
            try:
                sliced = prepared_cold_slice(engine, forum, "api", "bench-snap-forum")
            except StackletError as exc:  # a slow host fails a boot: recorded, the other parts still run
                result["forum"]["error"] = exc.message
                sliced = {"cold": {"ready_s": None}}
            if sliced["cold"]["ready_s"]:
                engine.down("bench-snap-forum-cold")  # nothing of this part runs beside the next ones
            full = result["forum"]["full"]
            result["forum"].update(sliced, cold_over_full=round(sliced["cold"]["ready_s"] / full["ready_s"], 2)
                                   if sliced["cold"]["ready_s"] else None)
            save()
            print(f"forum: full {full['ready_s']} s, cold slice of api {sliced['cold']['ready_s']} s", flush=True)
        if "shop" in parts or "concurrent" in parts:
            shop = load_stack(REPO / "stacks" / "shop")
            try:
                engine.baseline_status(shop.name)
            except SliceNotFound:
                engine.baseline_up(shop)
                started_baseline = True
        if "shop" in parts:
            full = full_stack(shop, "bench-snap-full-shop")
            sliced = prepared_cold_slice(engine, shop, "orders", "bench-snap-shop")
            resets = reset_times(engine, "bench-snap-shop-cold", ["orders-db", "inventory-db", "redis"],
                                 1 if args.quick else 5)
            engine.down("bench-snap-shop-cold")
            result["shop"] = {"full": full, **sliced, "reset_s": resets,
                              "cold_over_full": round(sliced["cold"]["ready_s"] / full["ready_s"], 2)}
            save()
            print(f"shop: full {full['ready_s']} s, cold slice of orders {sliced['cold']['ready_s']} s, "
                  f"reset {json.dumps({s: r['median'] for s, r in resets.items()})}", flush=True)
        if "concurrent" in parts:
            count = 2 if args.quick else 4
            result["concurrent"] = {"before": conditions(),
                                    "healthchecks_as_declared": concurrency_part(engine, as_declared(shop), count)}
            save()
            result["concurrent"].update(between=conditions(),
                                        healthchecks_min_interval=concurrency_part(engine, shop, count))
    finally:
        for summary in engine.list():
            if summary.name.startswith("bench-snap-"):
                engine.down(summary.name)
        if started_baseline:
            engine.baseline_down("shop", keep_images=True)
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
