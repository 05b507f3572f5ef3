"""How long a command takes, this version against a previous one, side by side in one run.

An agent calls `status`, `reset` and `check` many times per change, so a command's own cost (Python
imports, reading the stack, talking to the engine) is paid again and again. One forum `db` slice is
booted once (radius 0: the store and nothing else); then, alternating between the two versions so the
host's load hits both alike, each of these runs ``--repeats`` times:

- ``stacklet --help`` (imports only), ``stacklet ls --json``, ``stacklet status SLICE --json`` and
  ``stacklet reset db --slice SLICE --json``: wall time of the CLI process, as a user runs it;
- in one process (as the MCP server and the TUI run them): ``load_stack`` of the forum, and
  ``SliceEngine.seed(reset=True)``.

The previous version is a git revision (``--previous``, default: the commit before the engine API
and the cache of ``docker compose config``), exported to a temporary folder and run from there with
the same virtual environment.

    .venv/bin/python bench/command_latency.py [--repeats N] [--previous REV]

Results: bench/results/command_latency.json. The slice is ``bench-latency`` and is removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "command_latency.json"
SLICE = "bench-latency"
FORUM = REPO / "stacks" / "forum"
PREVIOUS = "54fbdd7"

IN_PROCESS = """
import json, os, statistics, sys, time
started = time.perf_counter()
from stacklet.config.stack import load_stack
from stacklet.docker.driver import Driver
from stacklet.runtime.engine import SliceEngine
imported = time.perf_counter() - started
load, reset = [], []
engine = SliceEngine(Driver(), os.environ["BENCH_WORKDIR"])
for _ in range(int(sys.argv[1])):
    clock = time.perf_counter(); load_stack(sys.argv[2]); load.append(time.perf_counter() - clock)
    clock = time.perf_counter(); engine.seed(sys.argv[3], "db", reset=True); reset.append(time.perf_counter() - clock)
print(json.dumps({"import_s": imported, "load_stack_s": load, "reset_s": reset}))
"""


def export(revision: str, folder: Path) -> Path:
    """The ``src`` tree of ``revision``, written under ``folder``; returns that ``src``."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "src"], cwd=REPO, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def cli_seconds(src: Path, args: list[str], workdir: Path) -> float:
    """Wall time of one CLI run with the package from ``src``; a failed run stops the bench."""
    env = {**os.environ, "PYTHONPATH": str(src), "STACKLET_HOME": str(workdir)}
    clock = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stacklet", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    seconds = time.perf_counter() - clock
    if done.returncode != 0:
        raise SystemExit(f"`stacklet {' '.join(args)}` failed with {src}:\n{done.stdout}\n{done.stderr}")
    return seconds


def in_process(src: Path, repeats: int, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), "BENCH_WORKDIR": str(workdir)}
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, str(repeats), str(FORUM), SLICE], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=600, check=True)
    return json.loads(done.stdout)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "runs": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--previous", default=PREVIOUS, help="git revision to compare with")
    options = parser.parse_args()
    commands = {"help": ["--help"], "ls": ["ls", "--json"], "status": ["status", SLICE, "--json"],
                "reset": ["reset", "db", "--slice", SLICE, "--json"]}
    with tempfile.TemporaryDirectory(prefix="stacklet-bench-") as scratch:
        scratch_path = Path(scratch)
        versions = {"previous": export(options.previous, scratch_path / "previous"), "current": REPO / "src"}
        workdir = scratch_path / "home"
        load_before = os.getloadavg()[0]
        cli_seconds(versions["current"], ["up", "db", "--stack", str(FORUM), "--radius", "0", "--name", SLICE,
                                          "--json"], workdir)
        try:
            for src in versions.values():  # warm both: compiled bytecode, the Compose cache of the current one
                for args in commands.values():
                    cli_seconds(src, args, workdir)
            times: dict[str, dict[str, list[float]]] = {v: {c: [] for c in commands} for v in versions}
            for _ in range(options.repeats):
                for name, args in commands.items():
                    for version, src in versions.items():
                        times[version][name].append(cli_seconds(src, args, workdir))
            inside = {version: in_process(src, options.repeats, workdir) for version, src in versions.items()}
        finally:
            cli_seconds(versions["current"], ["down", SLICE, "--json"], workdir)
        load_after = os.getloadavg()[0]
    result = {
        "bench": "command_latency", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(), "previous": options.previous,
        "load_1m_before": round(load_before, 2), "load_1m_after": round(load_after, 2),
        "cli_s": {version: {name: summary(values) for name, values in by_command.items()}
                  for version, by_command in times.items()},
        "in_process_s": {version: {"import": round(data["import_s"], 3), "load_stack": summary(data["load_stack_s"]),
                                   "reset": summary(data["reset_s"])} for version, data in inside.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'':>22} {'previous':>10} {'current':>10}   (medians, s; load {load_before:.1f} → {load_after:.1f})")
    for name in commands:
        print(f"{'stacklet ' + name:>22} {result['cli_s']['previous'][name]['median']:>10.3f} "
              f"{result['cli_s']['current'][name]['median']:>10.3f}")
    for name in ("load_stack", "reset"):
        print(f"{name + ' in process':>22} {result['in_process_s']['previous'][name]['median']:>10.3f} "
              f"{result['in_process_s']['current'][name]['median']:>10.3f}")


if __name__ == "__main__":
    main()
