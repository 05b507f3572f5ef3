"""Seed and reset times per stateful service of the shop, side by side.

Boots the `orders` slice of the shop (the shop baseline must be up, or is started and stopped here),
then for each seeded service measures, several times: `seed` (load every seed file again, which is
what a reset would cost without a snapshot) and `reset` (restore the seeded state: PostgreSQL from
its template database, Redis by flushing and replaying). Prints a table and writes
bench/results/reset.json.

    .venv/bin/python bench/reset.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from stacklet.docker.driver import Driver
from stacklet.runtime.engine import SliceEngine
from stacklet.planning.plan import make_plan
from stacklet.config.stack import load_stack

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "reset.json"
SLICE = "bench-reset"


def measure(engine: SliceEngine, repeats: int) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {}
    for _ in range(repeats):
        for action, reset in (("seed", False), ("reset", True)):
            started = time.monotonic()
            results = engine.seed(SLICE, reset=reset)
            wall = time.monotonic() - started
            for result in results:
                times.setdefault(result.service, {"seed": [], "reset": []})[action].append(result.seconds)
            times.setdefault("(all services)", {"seed": [], "reset": []})[action].append(wall)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    driver = Driver()
    engine = SliceEngine(driver, REPO / ".stacklet")
    shop = load_stack(REPO / "stacks" / "shop")
    started_baseline = not driver.containers({"dev.stacklet.baseline": shop.name})
    if started_baseline:
        engine.baseline_up(shop)
    try:
        boot_started = time.monotonic()
        engine.up(make_plan(shop, ["orders"]), shop, SLICE)
        boot = time.monotonic() - boot_started
        try:
            times = measure(engine, args.repeats)
        finally:
            engine.down(SLICE)
    finally:
        if started_baseline:
            engine.baseline_down(shop.name)

    rows = {}
    print(f"{'service':<16} {'seed median':>12} {'reset median':>13} {'reset best':>11} {'reset max':>10}")
    for service, series in times.items():
        rows[service] = {
            "seed_s": {"median": round(statistics.median(series["seed"]), 3), "all": [round(t, 3) for t in series["seed"]]},
            "reset_s": {"median": round(statistics.median(series["reset"]), 3), "best": round(min(series["reset"]), 3),
                        "max": round(max(series["reset"]), 3), "all": [round(t, 3) for t in series["reset"]]},
        }
        print(f"{service:<16} {rows[service]['seed_s']['median']:>11.3f}s {rows[service]['reset_s']['median']:>12.3f}s "
              f"{rows[service]['reset_s']['best']:>10.3f}s {rows[service]['reset_s']['max']:>9.3f}s")
    print(f"(slice boot with seeding: {boot:.1f}s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "reset",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "load_1m_start": os.getloadavg()[0], "docker": driver.engine_info().server_version},
        "method": "engine.seed(slice, reset=False|True) on the orders slice of the shop; times per service from "
                  "the seeder (docker exec included), '(all services)' is the wall time of one call",
        "repeats": args.repeats,
        "slice_boot_s": round(boot, 2),
        "services": rows,
    }, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
