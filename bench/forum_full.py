"""The forum stack booted whole: ``docker compose up -d --wait`` (images built), timed, with the load.

This is the "full" column of the forum's slice-vs-full comparison. Each round starts from nothing
(``down -v`` before and after), so Postgres runs initdb and RabbitMQ boots Erlang every time, as a
new slice's stores do. The broker's own start (``docker run`` to its AMQP port accepting) is timed
too, since it dominates. Everything runs as Compose project ``--project`` (default ``bench-forum``)
and is removed at the end, also on failure.

    .venv/bin/python bench/forum_full.py --rounds 2    # writes bench/results/forum_full.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORUM = ROOT / "stacks" / "forum"
RESULTS = ROOT / "bench" / "results" / "forum_full.json"
BROKER_IMAGE = "forum/rabbitmq:dev"
TIMEOUT_S = 300


def compose(project: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``docker compose -p project ARGS`` in the forum's folder."""
    return subprocess.run(["docker", "compose", "-p", project, *args], cwd=FORUM, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def full_up(project: str) -> dict:
    """One round: up -d --wait from nothing, timed; then down -v."""
    compose(project, "down", "-v")
    load = os.getloadavg()
    started = time.monotonic()
    result = compose(project, "up", "-d", "--wait", "--wait-timeout", str(TIMEOUT_S))
    seconds = time.monotonic() - started
    containers = compose(project, "ps", "-a", "--format", "{{.Service}}").stdout.split()
    compose(project, "down", "-v")
    if result.returncode != 0:
        raise SystemExit(f"docker compose up --wait failed: {result.stderr[-2000:]}")
    return {"seconds": round(seconds, 2), "containers": len(containers), "load_average_before": list(load)}


def broker_start(name: str) -> float:
    """Seconds from ``docker run`` of the broker image to its port 5672 accepting a connection."""
    started = time.monotonic()
    subprocess.run(["docker", "run", "-d", "--name", name, BROKER_IMAGE], check=True, capture_output=True)
    try:
        while time.monotonic() - started < TIMEOUT_S:
            probe = subprocess.run(["docker", "exec", name, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5672"],
                                   capture_output=True)
            if probe.returncode == 0:
                return round(time.monotonic() - started, 2)
            time.sleep(0.2)
        raise SystemExit(f"the broker did not listen within {TIMEOUT_S} s")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--project", default="bench-forum", help="Compose project name (and container prefix)")
    options = parser.parse_args()
    rounds = [full_up(options.project) for _ in range(options.rounds)]
    brokers = [broker_start(f"{options.project}-broker-start") for _ in range(options.rounds)]
    document = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_end": list(os.getloadavg())},
        "method": "docker compose up -d --wait of stacks/forum from nothing (images built, no volumes), "
                  "down -v between rounds; broker: docker run to port 5672 accepting",
        "full_up": rounds,
        "full_up_best_s": min(r["seconds"] for r in rounds),
        "broker_ready_s": brokers,
        "slice": "not measured here: the runtime does not yet honour depends_on conditions (issue 11)",
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
