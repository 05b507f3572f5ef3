"""The size of a failing verdict (text and JSON) against the raw logs of the slice for the same failure.

An `orders` slice of a copy of the shop gets a load check (a burst of orders); an `http_error` fault
on payments (502 for 30 % of the charges) makes it fail. The same failure is read three ways:

- `stacklet check` (text) and `stacklet check --json`, as an agent would read them;
- the raw logs of every container of the slice written while the check ran (`docker logs --since`);
- the raw logs of the slice since it booted (`stacklet logs` without a tail), what one reads without
  stacklet's verdict.

Sizes are bytes, lines and an estimate of tokens (bytes / 4). The host's load and the other Compose
projects running are recorded with the result: this is not a quiet-host measurement.

    .venv/bin/python bench/verdict_size.py            # 100 orders, writes bench/results/verdict_size.json
    .venv/bin/python bench/verdict_size.py --quick    # 30 orders

Everything it starts is removed at the end (the slice `bench-verdict`); the shop baseline is
reused when it runs, else started and stopped again. Traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "verdict_size.json"
SLICE = "bench-verdict"
STACKLET = [sys.executable, "-m", "stacklet"]
LOAD_CHECK = """
  - name: orders-burst
    description: a burst of orders, every one expected to be placed
    services: [orders]
    steps:
      - name: burst
        service: orders
        method: POST
        path: /orders
        json: {user_id: u-1, items: [{sku: SKU-0002, qty: 1, price_cents: 100}], idempotency_key: "b-${run}-${i}"}
        expect: {status: 201}
        load: {requests: %(count)d, concurrency: 4, duration_s: 120, expect: {error_rate: 0.0}}
"""


def stacklet(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*STACKLET, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    if check and done.returncode != 0:
        raise SystemExit(f"stacklet {' '.join(args)} exited {done.returncode}: {done.stdout[-800:]}{done.stderr[-800:]}")
    return done


def size(text: str) -> dict:
    data = text.encode()
    return {"bytes": len(data), "lines": text.count("\n") + (1 if text and not text.endswith("\n") else 0),
            "tokens_estimate": len(data) // 4}


def run_logs_since(slice_name: str, since: str) -> str:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dev.stacklet.slice={slice_name}"],
                         capture_output=True, text=True, check=True).stdout.split()
    texts = []
    for cid in ids:
        done = subprocess.run(["docker", "logs", "--timestamps", "--since", since, cid], capture_output=True,
                              text=True)
        texts.append(done.stdout + done.stderr)
    return "".join(texts)


def host() -> dict:
    projects = subprocess.run(["docker", "ps", "--format", '{{.Label "com.docker.compose.project"}}'],
                              capture_output=True, text=True).stdout.split()
    counts: dict[str, int] = {}
    for project in projects:
        counts[project] = counts.get(project, 0) + 1
    return {"load_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count(), "containers_by_project": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 orders instead of 100")
    args = parser.parse_args()
    count = 30 if args.quick else 100
    root = Path(tempfile.mkdtemp(prefix="verdict-size-"))
    env = {"STACKLET_HOME": str(root / "home")}
    for part in ("stacks/shop", "seeds/shop", "faults"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    stack_dir = root / "stacks" / "shop"
    stack_file = stack_dir / "stack.yaml"
    stack_file.write_text(stack_file.read_text().rstrip("\n") + "\n" + LOAD_CHECK % {"count": count})
    baseline_was_up = bool(subprocess.run(["docker", "ps", "-q", "--filter", "label=dev.stacklet.baseline=shop"],
                                          capture_output=True, text=True).stdout.strip())
    result: dict = {"quick": args.quick, "orders_sent": count, "host_before": host(),
                    "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "python": platform.python_version()}
    try:
        if not baseline_was_up:
            stacklet("baseline", "up", "--stack", str(stack_dir), env=env)
        stacklet("up", "orders", "--stack", str(stack_dir), "--name", SLICE, env=env)
        stacklet("fault", "add", "payments", "http_error", "status=502", "toxicity=0.3", "--slice", SLICE, env=env)
        since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        as_json = stacklet("check", SLICE, "--only", "orders-burst", "--json", env=env, check=False).stdout
        text = stacklet("check", SLICE, "--only", "orders-burst", env=env, check=False).stdout
        run_logs = run_logs_since(SLICE, since)
        all_logs = stacklet("logs", "--slice", SLICE, "--tail", "1000000", env=env).stdout
        verdict = json.loads(as_json)
        assert verdict["verdict"] == "failed", "the fault did not fail the check"
        result.update({
            "verdict_text": size(text), "verdict_json": size(as_json),
            "raw_logs_during_the_checks": size(run_logs), "raw_logs_since_boot": size(all_logs),
            "failures": len(verdict["failures"]), "summary": verdict["summary"],
            "text_vs_run_logs": round(len(run_logs) / max(len(text), 1), 1),
            "json_vs_run_logs": round(len(run_logs) / max(len(as_json), 1), 2),
            "text": text})
    finally:
        stacklet("down", SLICE, env=env, check=False)
        if not baseline_was_up:
            stacklet("baseline", "down", "--stack", str(stack_dir), env=env, check=False)
        shutil.rmtree(root, ignore_errors=True)
    result["host_after"] = host()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "text"}, indent=2))


if __name__ == "__main__":
    main()
