"""Link proxy image: size, and time from `docker run` to the first answered API request.

    .venv/bin/python bench/linkproxy_image.py [--runs 5] [--tag stacklet/linkproxy:dev]

Builds the image from src/stacklet/linkproxy, then starts it ``--runs`` times with the API
published on a loopback port and polls it with a real HTTP request (a bare TCP connect is
not enough: Docker's port proxy accepts before the server listens). It also reports the part
after Docker started the container (the server's own start), and, for scale, times
`docker run --rm` of the base image running `true`. Results go to the "image" section
of bench/results/linkproxy.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = ROOT / "src" / "stacklet" / "linkproxy"
RESULTS = ROOT / "bench" / "results" / "linkproxy.json"
BASE_IMAGE = "debian:bookworm-slim"


def docker(*args: str, timeout: float = 120) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True).stdout.strip()


def api_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _docker_time(text: str) -> float:
    """Epoch seconds of Docker's RFC 3339 time with nanoseconds ("2026-01-01T00:00:00.123456789Z")."""
    main, _, fraction = text.rstrip("Z").partition(".")
    stamp = datetime.datetime.fromisoformat(main).replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp() + float(f"0.{fraction or 0}")


def time_to_api(tag: str, deadline_s: float = 30) -> tuple[float, float]:
    """Milliseconds from invoking `docker run -d` to the first 200 from /version, and from the
    container's start (as Docker records it) to that answer: the server's own start time."""
    name = f"stacklet-linkproxy-bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    try:
        docker("run", "-d", "--name", name, "-p", "127.0.0.1::8474", tag)
        port = int(docker("port", name, "8474/tcp").splitlines()[0].rsplit(":", 1)[1])
        deadline = time.monotonic() + deadline_s
        while not api_answers(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{tag} did not answer within {deadline_s} s")
            time.sleep(0.005)
        answered_at = time.time()
        total_ms = (time.perf_counter() - start) * 1000
        started_at = _docker_time(docker("inspect", "--format", "{{.State.StartedAt}}", name))
        return total_ms, (answered_at - started_at) * 1000
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def time_docker_run_true() -> float:
    start = time.perf_counter()
    docker("run", "--rm", BASE_IMAGE, "true")
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default="stacklet/linkproxy:dev")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    build_start = time.perf_counter()
    docker("build", "-q", "-t", args.tag, str(CONTEXT), timeout=900)
    build_s = time.perf_counter() - build_start
    size = int(docker("image", "inspect", "--format", "{{.Size}}", args.tag))
    base_size = int(docker("image", "inspect", "--format", "{{.Size}}", BASE_IMAGE))
    measured = [time_to_api(args.tag) for _ in range(args.runs)]
    starts = [round(total, 1) for total, _ in measured]
    in_container = [round(own, 1) for _, own in measured]
    baseline = [round(time_docker_run_true(), 1) for _ in range(args.runs)]
    image = {
        "tag": args.tag,
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "size_bytes": size,
        "size_mb": round(size / 1e6, 1),
        "base_image": BASE_IMAGE,
        "base_size_mb": round(base_size / 1e6, 1),
        "added_over_base_mb": round((size - base_size) / 1e6, 1),
        "build_seconds_cached_or_not": round(build_s, 1),
        "run_to_first_api_response_ms": {"runs": starts, "median": statistics.median(starts)},
        "container_start_to_first_api_response_ms": {
            "runs": in_container, "median": statistics.median(in_container),
            "note": "from Docker's State.StartedAt to the first 200 from /version (5 ms polling)",
        },
        "docker_run_rm_true_ms": {"runs": baseline, "median": statistics.median(baseline)},
    }
    print(json.dumps(image, indent=2))
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["image"] = image
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
