"""The agent loop on the shop: a one-line change to `orders`, `stacklet reload orders`, `stacklet check --json`.

Copies the shop (stack, seeds, fault profiles) into a temporary folder and boots the `orders`
slice of the copy once (the shop baseline must be up, or is started and stopped here). Then, for
N rounds, it changes one line of the copy's ``services/orders/app.py`` — odd rounds break the
response of POST /orders (``status`` renamed to ``state``), even rounds put it back — and times
``stacklet reload orders`` from its start to the verdict of ``stacklet check --json``, both run
as a user or an agent would (CLI subprocesses). For every broken round it also measures the size
of what an agent would have to read: the verdict (JSON and text) vs the raw logs of the slice
(``docker compose -p <project> logs``) for the same failure. Prints a table and writes
bench/results/loop.json.

    .venv/bin/python bench/loop.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stacklet.docker.driver import Driver
from stacklet.runtime.engine import SliceEngine
from stacklet.config.stack import load_stack

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "loop.json"
SLICE = "bench-loop"
GOOD = "    return 201, order\n"
BROKEN = '    return 201, {("state" if k == "status" else k): v for k, v in order.items()}\n'


def stacklet(env: dict, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI; (result, seconds)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "stacklet", *args], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=900)
    return result, time.monotonic() - started


def must(result: subprocess.CompletedProcess, *codes: int) -> subprocess.CompletedProcess:
    if result.returncode not in (codes or (0,)):
        raise SystemExit(f"`{' '.join(result.args[3:])}` exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def raw_logs_bytes(project: str) -> int:
    """Size of `docker compose -p PROJECT logs` (what one would read without a verdict)."""
    logs = subprocess.run(["docker", "compose", "-p", project, "logs", "--no-color"], capture_output=True,
                          timeout=120, check=True)
    return len(logs.stdout) + len(logs.stderr)


def one_round(env: dict, app: Path, number: int, project: str) -> dict:
    broken = number % 2 == 1
    text = app.read_text()
    old, new = (GOOD, BROKEN) if broken else (BROKEN, GOOD)
    assert text.count(old) == 1, f"round {number}: {old!r} is not in {app} once"
    app.write_text(text.replace(old, new))
    load = os.getloadavg()[0]
    reload_result, reload_s = stacklet(env, "reload", "orders", "--slice", SLICE, "--json")
    must(reload_result)
    check_result, check_s = stacklet(env, "check", SLICE, "--json")
    must(check_result, 0, 1)
    verdict = json.loads(check_result.stdout)
    row = {"round": number, "change": "break" if broken else "fix", "load_1m": round(load, 2),
           "reload_s": round(reload_s, 2), "check_s": round(check_s, 2), "total_s": round(reload_s + check_s, 2),
           "reload_inside_s": json.loads(reload_result.stdout)["reload"]["seconds"], "check_inside_s": verdict["seconds"],
           "verdict": verdict["verdict"], "exit_code": check_result.returncode}
    expected = "failed" if broken else "passed"
    if verdict["verdict"] != expected:
        raise SystemExit(f"round {number}: expected a {expected} verdict, got\n{check_result.stdout}")
    if broken:
        first = verdict["failures"][0]
        text_result, _ = stacklet(env, "check", SLICE)
        must(text_result, 1)
        row["failure"] = f"{first['service']} {first['check']} › {first['step']}: {first['message']}"
        row["verdict_json_bytes"] = len(check_result.stdout.encode())
        row["verdict_text_bytes"] = len(text_result.stdout.encode())
        row["verdict_text_lines"] = len(text_result.stdout.splitlines())
        row["raw_logs_bytes"] = raw_logs_bytes(project)
        if number == 1:
            row["verdict_text"] = text_result.stdout.splitlines()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds (odd ones break, even ones fix)")
    args = parser.parse_args()

    driver = Driver()
    shop = load_stack(REPO / "stacks" / "shop")
    started_baseline = not driver.containers({"dev.stacklet.baseline": shop.name})
    with tempfile.TemporaryDirectory(prefix="stacklet-loop-") as folder:
        root = Path(folder)
        for part in ("stacks/shop", "seeds/shop", "faults"):
            shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        env = {"STACKLET_HOME": str(root / "home")}
        engine = SliceEngine(driver, root / "home")
        if started_baseline:
            engine.baseline_up(shop)
        rows = []
        try:
            up, boot_s = stacklet(env, "up", "orders", "--stack", str(root / "stacks" / "shop"), "--name", SLICE,
                                  "--json")
            project = json.loads(must(up).stdout)["slice"]["project"]
            warm, _ = stacklet(env, "check", SLICE, "--json")
            if json.loads(must(warm).stdout)["verdict"] != "passed":
                raise SystemExit(f"the unchanged slice does not pass its checks:\n{warm.stdout}")
            app = root / "stacks" / "shop" / "services" / "orders" / "app.py"
            for number in range(1, args.rounds + 1):
                rows.append(one_round(env, app, number, project))
                row = rows[-1]
                print(f"round {number} {row['change']:<5} reload {row['reload_s']:5.1f}s  check {row['check_s']:5.1f}s"
                      f"  total {row['total_s']:5.1f}s  {row['verdict']}"
                      + (f"  verdict {row['verdict_text_bytes']} B text / {row['verdict_json_bytes']} B JSON"
                         f" vs raw logs {row['raw_logs_bytes']} B" if "raw_logs_bytes" in row else ""))
        finally:
            stacklet(env, "down", SLICE)
            if started_baseline:
                engine.baseline_down(shop.name)

    totals = [r["total_s"] for r in rows]
    broken = [r for r in rows if r["change"] == "break"]
    summary = {
        "total_s": {"median": round(statistics.median(totals), 2), "best": min(totals), "max": max(totals)},
        "reload_s_median": round(statistics.median(r["reload_s"] for r in rows), 2),
        "check_s_median": round(statistics.median(r["check_s"] for r in rows), 2),
        "verdict_text_bytes_median": statistics.median(r["verdict_text_bytes"] for r in broken),
        "verdict_json_bytes_median": statistics.median(r["verdict_json_bytes"] for r in broken),
        "raw_logs_bytes_median": statistics.median(r["raw_logs_bytes"] for r in broken),
    }
    summary["raw_logs_per_text_verdict"] = round(summary["raw_logs_bytes_median"] / summary["verdict_text_bytes_median"], 1)
    print(f"median reload→verdict {summary['total_s']['median']:.1f}s (reload {summary['reload_s_median']:.1f}s, "
          f"check {summary['check_s_median']:.1f}s); failure: verdict {summary['verdict_text_bytes_median']:.0f} B "
          f"text, {summary['verdict_json_bytes_median']:.0f} B JSON vs {summary['raw_logs_bytes_median']:.0f} B raw logs")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "loop",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "load_1m_start": rows[0]["load_1m"] if rows else None,
                    "docker": driver.engine_info().server_version},
        "method": "copy of the shop, orders slice booted once (CLI); per round one line of services/orders/app.py "
                  "changed (odd: POST /orders answers `state` instead of `status`; even: back), then "
                  "`stacklet reload orders --json` and `stacklet check --json` as subprocesses; total_s is "
                  "reload start to verdict received. Sizes for broken rounds: stdout of `stacklet check --json` "
                  "and of `stacklet check` vs `docker compose -p <project> logs --no-color` of the slice",
        "slice_boot_s": round(boot_s, 2),
        "rounds": rows,
        "summary": summary,
    }, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
