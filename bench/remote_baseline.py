"""What the laptop pays: one `orders` slice with a remote baseline vs with a local baseline vs the full stack.

For each stack (shop, mesh40), side by side in one run, on the local engine:

1. full stack: ``docker compose up -d --wait`` (images built before the clock starts);
2. local baseline: the stack's baseline on the local engine, then ``stacklet up orders``; the
   laptop pays the slice *and* the baseline;
3. remote baseline: the baseline on a second engine (``--remote``, default the team box of
   scripts/teambox.sh at tcp://10.250.0.2:2375, advertised on 10.250.0.2), then ``stacklet up
   orders --baseline-engine ...`` on the local engine; the laptop pays the slice only.

Time-to-ready is the wall time of the command until it returns ready. Memory is the working set
of the containers' cgroups on the local engine (the measure of bench/slice_vs_full.py). The host's
load (1, 5, 15 min) and the other Compose projects running are recorded before each part: this
machine is shared, so the figures are as noisy as the load says.

    .venv/bin/python bench/remote_baseline.py [--quick] [--only shop|mesh40]

Needs the second engine up (``scripts/teambox.sh up``, root). Everything it starts is named
``bench-remote-*`` (slices, Compose projects) and removed at the end; a baseline that already ran on
either engine is reused and left running, one it started is stopped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "remote_baseline.json"
STACKLET = [sys.executable, "-m", "stacklet"]
CHANGED = "orders"
MIB = 1024 * 1024
TIMEOUT_S = 1500

_spec = importlib.util.spec_from_file_location("slice_vs_full", Path(__file__).parent / "slice_vs_full.py")
measures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(measures)  # its cgroup memory measure, docker helper and host conditions


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stacklet(*args: str, check: bool = True) -> tuple[float, dict[str, Any]]:
    """Run ``stacklet ... --json``: seconds taken and its JSON answer."""
    t0 = time.perf_counter()
    done = subprocess.run([*STACKLET, *args, "--json"], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
    seconds = round(time.perf_counter() - t0, 2)
    try:
        answer = json.loads(done.stdout or "{}")
    except ValueError:
        answer = {"ok": False, "message": done.stdout[-2000:]}
    if check and done.returncode != 0:
        raise RuntimeError(f"stacklet {' '.join(args)} failed ({done.returncode}): "
                           f"{answer.get('message') or done.stderr[-2000:]}")
    return seconds, answer


def conditions() -> dict[str, Any]:
    return {"load_average": [round(x, 2) for x in os.getloadavg()], "others_running": measures.others_running()}


def memory_mib(label: str, settle_s: float) -> dict[str, Any]:
    measured = measures.measure_memory(label, settle_s)
    return {"working_set_mib": round(measured["working_set_bytes"] / MIB, 1), "containers": measured["containers"],
            "source": measured["source"]}


class Run:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.started_baselines: list[tuple[str | None, str]] = []  # (engine, stack)
        self.slices: list[str] = []
        self.errors: list[dict[str, str]] = []

    def full(self, stack: str) -> dict[str, Any]:
        compose = str(REPO / "stacks" / stack / "compose.yaml")
        base = ["compose", "-f", compose, "-p", f"bench-remote-full-{stack}"]
        measures.docker(*base, "build", "-q", timeout=TIMEOUT_S)
        record: dict[str, Any] = {"conditions": conditions()}
        try:
            t0 = time.perf_counter()
            measures.docker(*base, "up", "-d", "--wait", "--wait-timeout", "600", timeout=TIMEOUT_S)
            record["ready_s"] = round(time.perf_counter() - t0, 2)
            record["memory"] = memory_mib(f"com.docker.compose.project=bench-remote-full-{stack}", self.args.settle)
        finally:
            measures.docker(*base, "down", "-v", "--remove-orphans", "-t", "3", timeout=600, check=False)
        log(f"{stack} full: {record['ready_s']} s, {record['memory']['working_set_mib']} MiB")
        return record

    def baseline(self, stack: str, engine: str | None) -> dict[str, Any]:
        where = ["--host", engine] if engine else []
        _, status = stacklet(*where, "baseline", "status", "--stack", stack, check=False)
        if status.get("ok"):  # someone's running baseline: used as it is, never stopped by this run
            return {"reused": True, "healthy": status.get("healthy")}
        self.started_baselines.append((engine, stack))
        seconds, _ = stacklet(*where, "baseline", "up", "--stack", stack,
                              *(["--advertise", self.args.remote_advertise] if engine else []))
        log(f"{stack} baseline on {engine or 'the local engine'}: up in {seconds} s")
        return {"reused": False, "baseline_up_s": seconds}

    def slice(self, stack: str, name: str, remote: bool) -> dict[str, Any]:
        self.slices.append(name)
        record: dict[str, Any] = {"conditions": conditions()}
        args = ["up", CHANGED, "--stack", stack, "--name", name,
                *(["--baseline-engine", self.args.remote] if remote else [])]
        record["ready_s"], answer = stacklet(*args)
        record["slice"] = memory_mib(f"dev.stacklet.slice={name}", self.args.settle)
        if not remote:
            record["local_baseline"] = memory_mib(f"dev.stacklet.baseline={stack}", 0)
        record["laptop_mib"] = round(record["slice"]["working_set_mib"]
                                     + (record.get("local_baseline") or {}).get("working_set_mib", 0), 1)
        record["forwarded"] = {f["name"]: f["address"] for f in answer["plan"]["forwarded"]}
        stacklet("down", name)
        self.slices.remove(name)
        log(f"{stack} slice ({'remote' if remote else 'local'} baseline): {record['ready_s']} s, "
            f"laptop pays {record['laptop_mib']} MiB")
        return record

    def compare(self, stack: str) -> dict[str, Any]:
        section: dict[str, Any] = {"changed": CHANGED}
        for part, action in (("full", lambda: self.full(stack)),
                             ("remote_baseline", lambda: {"baseline": self.baseline(stack, self.args.remote),
                                                          **self.slice(stack, f"bench-remote-remote-{stack}", True)}),
                             ("local_baseline", lambda: {"baseline": self.baseline(stack, None),
                                                         **self.slice(stack, f"bench-remote-local-{stack}", False)})):
            try:
                section[part] = action()
            except (RuntimeError, subprocess.TimeoutExpired, KeyError) as exc:
                self.errors.append({"where": f"{stack} {part}", "error": str(exc)[-2000:]})
                log(f"{stack} {part}: FAILED {exc}")
        return section

    def cleanup(self) -> None:
        for name in list(self.slices):
            stacklet("down", name, check=False)
        for engine, stack in self.started_baselines:
            stacklet(*(["--host", engine] if engine else []), "baseline", "down", "--stack", stack, check=False)


def print_table(doc: dict[str, Any]) -> None:
    print(f"\nload average at start {doc['load_average_start']}, at end {doc['load_average_end']}")
    print(f"{'stack':8} {'what runs on the laptop':34} {'ready s':>8} {'laptop MiB':>11}")
    for stack in ("shop", "mesh40"):
        section = doc.get(stack) or {}
        rows = (("full", "the full stack"), ("local_baseline", "orders slice + local baseline"),
                ("remote_baseline", "orders slice (baseline on team box)"))
        for key, what in rows:
            part = section.get(key)
            if not part:
                continue
            mib = part["memory"]["working_set_mib"] if key == "full" else part["laptop_mib"]
            print(f"{stack:8} {what:34} {part['ready_s']:>8} {mib:>11}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: a shorter settle before memory")
    parser.add_argument("--only", choices=("shop", "mesh40"), action="append")
    parser.add_argument("--remote", default="tcp://10.250.0.2:2375", help="the second engine")
    parser.add_argument("--remote-advertise", default="10.250.0.2", help="its advertise address")
    parser.add_argument("--settle", type=float, default=None, help="seconds after ready before memory (default 5)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.settle = args.settle if args.settle is not None else (2.0 if args.quick else 5.0)
    run = Run(args)
    doc: dict[str, Any] = {"benchmark": "remote_baseline", "quick": args.quick,
                           "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "remote": args.remote, "cores": os.cpu_count(),
                           "load_average_start": [round(x, 2) for x in os.getloadavg()],
                           "others_running_at_start": measures.others_running()}
    try:
        for stack in args.only or ("shop", "mesh40"):
            doc[stack] = run.compare(stack)
    except KeyboardInterrupt:
        run.errors.append({"where": "run", "error": "interrupted"})
    finally:
        run.cleanup()
    doc["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["errors"] = run.errors
    print_table(doc)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
