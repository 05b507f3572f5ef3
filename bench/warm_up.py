"""`stacklet up orders` on the shop: cold (images built) vs taking a warm slice, side by side in one run.

Copies the shop (stack, seeds) into a temporary folder (the shop baseline must be up, or is started
and stopped here). Times, as a user runs them (CLI subprocesses, wall clock):

- cold: `stacklet up orders` with no warm slice (the images are built once before, not timed);
- warm: `stacklet warm orders`, then `stacklet up orders` taking the paused slice (unpause, rebuild of
  `orders` from the build cache, no recreate when nothing changed);
- warm after an edit (not with --quick): the same after one line of orders' source changed (the
  rebuild and the recreate of `orders`, as `reload` does).

Every row records the host's load and the containers running on the engine: rerun on a quiet host.
Writes bench/results/warm_up.json.

    .venv/bin/python bench/warm_up.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slice_vs_full import host_busy_cores, load_1m, others_running

from stacklet.runtime.warm import filling

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "warm_up.json"
PREFIX = "bench-warm"


def stacklet(env: dict, *args: str) -> tuple[dict, float]:
    """Run the CLI with --json; (its document, wall seconds)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "stacklet", *args, "--json"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=1800)
    seconds = round(time.monotonic() - started, 2)
    if done.returncode != 0:
        raise SystemExit(f"`stacklet {' '.join(args)}` exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout), seconds


def conditions() -> dict:
    return {"load_1m": load_1m(), "host_busy_cores": host_busy_cores(2.0),
            "containers_running": sum(others_running().values())}


def wait_for_refill(home: Path, timeout_s: float = 600) -> None:
    """Until no refill holds a pool lock (the background boot has finished)."""
    deadline = time.monotonic() + timeout_s
    while filling(home):
        if time.monotonic() > deadline:
            raise SystemExit("the refill did not finish in time")
        time.sleep(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, no edited round")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--timeout", default="180", help="`--timeout` of every boot (raise it on a busy host)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    root = Path(tempfile.mkdtemp(prefix="stacklet-wabench-remote-"))
    home = root / "home"
    for part in ("stacks/shop", "seeds/shop"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    stack = str(root / "stacks" / "shop")
    timeout = ["--timeout", args.timeout]
    env = {"STACKLET_HOME": str(home)}
    baseline_was_up = bool(subprocess.run(["docker", "ps", "-q", "--filter", "label=dev.stacklet.baseline=shop"],
                                          capture_output=True, text=True).stdout.strip())
    rows: list[dict] = []
    failure = None
    try:
        if not baseline_was_up:
            stacklet(env, "baseline", "up", "--stack", stack, "--timeout", "900")
        stacklet(env, "up", "orders", "--stack", stack, "--name", f"{PREFIX}-build", *timeout)  # images built, not timed
        stacklet(env, "down", f"{PREFIX}-build")
        for number in range(repeats):
            before = conditions()
            cold, cold_s = stacklet(env, "up", "orders", "--stack", stack, "--name", f"{PREFIX}-cold", *timeout)
            rows.append({"kind": "cold", "round": number, "wall_s": cold_s, **before,
                         "why_cold": (cold.get("warm") or {}).get("reason")})
            stacklet(env, "down", f"{PREFIX}-cold")
            stacklet(env, "warm", "orders", "--stack", stack, "--name", PREFIX, "--count", "1", *timeout)
            kinds = ["warm"] if args.quick else ["warm", "warm-after-edit"]
            for kind in kinds:
                if kind == "warm-after-edit":
                    wait_for_refill(home)
                    app = root / "stacks" / "shop" / "services" / "orders" / "app.py"
                    app.write_text(app.read_text() + f"\n# bench edit {number}\n")
                before = conditions()
                warm, warm_s = stacklet(env, "up", "orders", "--stack", stack, "--name", f"{PREFIX}-{kind}",
                                         *timeout)
                taken = warm.get("warm") or {}
                if not taken.get("taken"):
                    raise SystemExit(f"no warm slice was taken: {taken.get('reason')}")
                rows.append({"kind": kind, "round": number, "wall_s": warm_s, "inside_s": taken["seconds"],
                             "rebuilt": [r["service"] for r in taken.get("reloaded", [])],
                             "healthy": warm["slice"]["healthy"], **before})
                stacklet(env, "down", f"{PREFIX}-{kind}")
            wait_for_refill(home)
            stacklet(env, "warm", "orders", "--stack", stack, "--name", PREFIX, "--count", "0")
    except SystemExit as exc:  # a failed step is recorded with the load it failed under
        failure = {"error": str(exc.code)[:2000], "load_1m": load_1m()}
    finally:
        for name in ("build", "cold", "warm", "warm-after-edit"):
            subprocess.run([sys.executable, "-m", "stacklet", "down", f"{PREFIX}-{name}"], env={**os.environ, **env},
                           capture_output=True)
        subprocess.run([sys.executable, "-m", "stacklet", "warm", "orders", "--stack", stack, "--count", "0"],
                       env={**os.environ, **env}, capture_output=True)
        if not baseline_was_up:
            subprocess.run([sys.executable, "-m", "stacklet", "baseline", "down", "--stack", stack],
                           env={**os.environ, **env}, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    result = {"bench": "warm_up", "quick": args.quick, "cores": os.cpu_count(),
              "note": "wall_s: the CLI as a user runs it; inside_s: from the claim until the taken slice was ready. "
                      "Recorded with the host's load: rerun on a quiet host.",
              "rows": rows, "failure": failure, "load_1m_at_end": load_1m()}
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['kind']:>16}  {row['wall_s']:6.2f} s  (inside {row.get('inside_s', '-')})  "
              f"load {row['load_1m']}  busy cores {row['host_busy_cores']}  containers {row['containers_running']}")
    if failure:
        print(f"failed at load {failure['load_1m']}: {failure['error']}", file=sys.stderr)
    return 1 if failure else 0


if __name__ == "__main__":
    raise SystemExit(main())
