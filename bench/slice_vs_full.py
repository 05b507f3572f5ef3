"""Slice vs full stack: time-to-ready, resident memory and idle CPU, side by side, in one run.

1. shop: ``docker compose up -d --wait`` of the whole stack (images already built) vs
   ``SliceEngine.up`` of the slice for ``orders`` with the shop baseline already up.
2. mesh40 (40 services, one image): the same comparison for ``orders`` (a domain-layer
   service), then 1 to 4 concurrent slices sharing one baseline, started one after another:
   time each took and memory each added.
3. plan time (ServiceGraph + make_plan + render) on generated layered graphs of 50, 500 and
   5,000 services, with the generator of bench/plan.py.

Memory is the working set of each container's cgroup (usage minus inactive file cache, the
figure ``docker stats`` shows), summed over the stack's or the slice's own containers (link
proxies included); RSS is reported next to it. Idle CPU is the CPU time the containers' cgroups
used over a few seconds once ready (mostly healthchecks). Each slice up is timed per phase by
wrapping the engine's and the driver's methods (no change to stacklet), so the table says where
the time goes.

    .venv/bin/python bench/slice_vs_full.py            # full run, writes bench/results/slice_vs_full.json
    .venv/bin/python bench/slice_vs_full.py --quick    # smoke run: one repeat, no concurrent series

Everything this script starts is removed again (try/finally, also on Ctrl-C and SIGTERM): full
stacks run as Compose projects ``bench-full-<stack>``, slices are named ``bench-...``. A baseline
that is already running is reused and left running; one this script starts is stopped at the end.
Only the Docker socket and 127.0.0.1-published ports are used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stacklet.planning.plan as plan_module
from stacklet.config.compose import parse_compose
from stacklet.docker.driver import Driver
from stacklet.runtime.engine import Event, SliceEngine
from stacklet.errors import BootError, LinkProxyError, PlanError, SliceNotFound, StackletError
from stacklet.planning.graph import ServiceGraph
from stacklet.labels import Label
from stacklet.planning.plan import LINKPROXY_BUILD_CONTEXT, make_plan
from stacklet.planning.render import render
from stacklet.config.stack import ServiceMeta, Stack, StackFile, load_stack

try:
    from stacklet.runtime.seeds import seed_plan
except ImportError:  # engines without seeds
    seed_plan = None

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "slice_vs_full.json"
WORKDIR = REPO / ".stacklet"
MIB = 1024 * 1024

SHOP_CHANGED = "orders"
FORUM_CHANGED = "api"             # forum: web → api → db (no healthcheck), migrate job, broker + worker, cache, search
MESH_CHANGED = "orders"          # mesh40 domain layer: bff-partner → orders → currency, flags, sms (+ 2 stores)
PLAN_SIZES = (50, 500, 5000)

DOCKER_TIMEOUT_S = 120           # any single docker CLI call
UP_TIMEOUT_S = 300               # compose up --wait and engine.up
LINKPROXY_WAIT_S = 30 * 60       # how long to keep retrying while the link proxy is being finished
LINKPROXY_PAUSE_S = 120
LINKPROXY_MAX_ATTEMPTS = 16


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# docker CLI helpers (bounded)


def docker(*args: str, timeout: float = DOCKER_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"`docker {' '.join(args)}` failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def container_ids(label: str) -> list[str]:
    """Full ids of the running containers carrying ``label`` (key=value)."""
    out = docker("ps", "-q", "--no-trunc", "--filter", f"label={label}").stdout
    return [line for line in out.split() if line]


def container_names(ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    out = docker("inspect", "--format", "{{.Id}} {{.Name}}", *ids).stdout
    return {i: n.lstrip("/") for i, n in (line.split(" ", 1) for line in out.splitlines() if " " in line)}


# ---------------------------------------------------------------------------------------------
# memory and CPU from the containers' cgroups


def _cgroup_dir(cid: str, controller: str) -> Path | None:
    for path in (Path("/sys/fs/cgroup") / controller / "docker" / cid,                  # v1, cgroupfs
                 Path("/sys/fs/cgroup") / controller / "system.slice" / f"docker-{cid}.scope",  # v1, systemd
                 Path("/sys/fs/cgroup/system.slice") / f"docker-{cid}.scope",            # v2, systemd
                 Path("/sys/fs/cgroup/docker") / cid):                                   # v2, cgroupfs
        if path.is_dir():
            return path
    return None


def _stat_file(path: Path) -> dict[str, int]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def cgroup_memory(cid: str) -> dict[str, int] | None:
    """usage, working set (usage - inactive_file, as docker stats), rss and cache, in bytes."""
    folder = _cgroup_dir(cid, "memory")
    if folder is None:
        return None
    try:
        if (folder / "memory.usage_in_bytes").is_file():                     # cgroup v1
            usage = int((folder / "memory.usage_in_bytes").read_text())
            stat = _stat_file(folder / "memory.stat")
            inactive = stat.get("total_inactive_file", 0)
            return {"usage": usage, "working_set": max(0, usage - inactive), "rss": stat.get("total_rss", 0),
                    "cache": stat.get("total_cache", 0)}
        usage = int((folder / "memory.current").read_text())                 # cgroup v2
        stat = _stat_file(folder / "memory.stat")
        return {"usage": usage, "working_set": max(0, usage - stat.get("inactive_file", 0)),
                "rss": stat.get("anon", 0), "cache": stat.get("file", 0)}
    except (OSError, ValueError):
        return None


def cgroup_cpu_ns(cid: str) -> int | None:
    folder = _cgroup_dir(cid, "cpuacct") or _cgroup_dir(cid, "cpu,cpuacct")
    try:
        if folder is not None and (folder / "cpuacct.usage").is_file():
            return int((folder / "cpuacct.usage").read_text())
        folder = _cgroup_dir(cid, "")
        if folder is not None and (folder / "cpu.stat").is_file():
            return _stat_file(folder / "cpu.stat")["usage_usec"] * 1000
    except (OSError, ValueError, KeyError):
        return None
    return None


_UNITS = {"b": 1, "kib": 1024, "mib": MIB, "gib": 1024 * MIB, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3}


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]+)\s*", text)
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()]) if match else 0


def docker_stats_memory(ids: list[str]) -> dict[str, int]:
    """MemUsage of ``docker stats --no-stream`` per container id (the cross-check)."""
    if not ids:
        return {}
    out = docker("stats", "--no-stream", "--no-trunc", "--format", "{{json .}}", *ids, check=False).stdout
    found = {}
    for line in out.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        found[row.get("Container") or row.get("ID")] = _parse_size(row.get("MemUsage", "0B").split("/")[0])
    return found


def measure_memory(label: str, settle_s: float, samples: int = 3) -> dict[str, Any]:
    """Working set of the containers carrying ``label``: median of a few samples after settling."""
    time.sleep(settle_s)
    ids = container_ids(label)
    names = container_names(ids)
    per_sample = []
    last: dict[str, dict[str, int]] = {}
    for i in range(samples):
        if i:
            time.sleep(1.0)
        now = {cid: m for cid in ids if (m := cgroup_memory(cid)) is not None}
        per_sample.append(now)
        last = now
    stats = docker_stats_memory(ids)
    source = "cgroup" if last and len(last) == len(ids) else "docker stats"
    if source == "cgroup":
        totals = [sum(m["working_set"] for m in sample.values()) for sample in per_sample]
        working_set = int(statistics.median(totals))
        rss = sum(m["rss"] for m in last.values())
        usage = sum(m["usage"] for m in last.values())
    else:
        working_set = sum(stats.values())
        rss = usage = None
    containers = {names.get(cid, cid[:12]): {"working_set": (last.get(cid) or {}).get("working_set", stats.get(cid)),
                                             "rss": (last.get(cid) or {}).get("rss"),
                                             "docker_stats": stats.get(cid)}
                  for cid in ids}
    return {"containers": len(ids), "source": source, "working_set_bytes": working_set, "rss_bytes": rss,
            "usage_bytes": usage, "docker_stats_bytes": sum(stats.values()) if stats else None,
            "samples_working_set_bytes": [sum(m["working_set"] for m in s.values()) for s in per_sample],
            "per_container": containers}


def _host_cpu_busy() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def measure_idle_cpu(labels: str | list[str], window_s: float) -> dict[str, Any]:
    """CPU (in cores) the containers' cgroups (carrying any of ``labels``) and the host used over ``window_s``."""
    ids = sorted({cid for label in ([labels] if isinstance(labels, str) else labels) for cid in container_ids(label)})
    before = {cid: cgroup_cpu_ns(cid) for cid in ids}
    host0 = _host_cpu_busy()
    t0 = time.perf_counter()
    time.sleep(window_s)
    after = {cid: cgroup_cpu_ns(cid) for cid in ids}
    host1 = _host_cpu_busy()
    elapsed = time.perf_counter() - t0
    used = [after[c] - before[c] for c in ids if before.get(c) is not None and after.get(c) is not None]
    ticks = os.sysconf("SC_CLK_TCK")
    return {"window_s": round(elapsed, 2),
            "containers_cores": round(sum(used) / 1e9 / elapsed, 3) if used else None,
            "host_cores": round((host1[0] - host0[0]) / ticks / elapsed, 3)}


# ---------------------------------------------------------------------------------------------
# host conditions


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


def others_running() -> dict[str, int]:
    """Running containers on the engine per Compose project (anything not started by this run)."""
    out = docker("ps", "--format", '{{.Label "com.docker.compose.project"}}').stdout
    counts: dict[str, int] = {}
    for project in out.splitlines():
        counts[project or "(none)"] = counts.get(project or "(none)", 0) + 1
    return counts


def host_busy_cores(window_s: float = 3.0) -> float:
    """Cores the whole host kept busy over ``window_s`` seconds (from /proc/stat)."""
    busy0, _ = _host_cpu_busy()
    t0 = time.perf_counter()
    time.sleep(window_s)
    busy1, _ = _host_cpu_busy()
    return round((busy1 - busy0) / os.sysconf("SC_CLK_TCK") / (time.perf_counter() - t0), 2)


def wait_for_quiet(max_busy: float, max_wait_s: float) -> dict[str, Any]:
    """Wait (bounded) until the host's other work keeps fewer than ``max_busy`` cores busy."""
    t0 = time.monotonic()
    busy = first = host_busy_cores()
    while max_busy > 0 and busy > max_busy and time.monotonic() - t0 < max_wait_s:
        time.sleep(7)
        busy = host_busy_cores()
    waited = round(time.monotonic() - t0, 1)
    quiet = max_busy <= 0 or busy <= max_busy
    if waited >= 5 or not quiet:
        log(f"waited {waited} s for a quieter host (busy cores {first} → {busy}, threshold {max_busy}"
            f"{'' if quiet else ', going on anyway'})")
    return {"host_busy_cores_before": busy, "load_1m": load_1m(), "waited_s": waited, "quiet": quiet}


def machine_info(driver: Driver) -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version(),
                            "kernel": platform.release(), "platform": platform.platform()}
    try:
        mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:"))
        info["memory_bytes"] = mem_kib * 1024
    except (OSError, StopIteration):
        pass
    version = docker("version", "--format", "{{json .}}", check=False).stdout
    try:
        v = json.loads(version)
        info["docker"] = {"client": v["Client"]["Version"], "server": v["Server"]["Version"],
                          "api": v["Server"]["ApiVersion"]}
    except (json.JSONDecodeError, KeyError, TypeError):
        info["docker"] = version.strip()
    details = docker("info", "--format", "{{json .}}", check=False).stdout
    try:
        d = json.loads(details)
        info["engine"] = {"cpus": d.get("NCPU"), "memory_bytes": d.get("MemTotal"), "os": d.get("OperatingSystem"),
                          "storage_driver": d.get("Driver"), "cgroup_version": d.get("CgroupVersion"),
                          "cgroup_driver": d.get("CgroupDriver")}
    except json.JSONDecodeError:
        pass
    info["compose"] = docker("compose", "version", "--short", check=False).stdout.strip()
    return info


# ---------------------------------------------------------------------------------------------
# where the time of a slice goes: wrap the engine's and the driver's methods (stacklet unchanged)


class Spans:
    """Timed calls, recorded in order; ``nested`` ones happen inside others (counted apart)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()

    def reset(self) -> None:
        self.items = []
        self.t0 = time.perf_counter()

    def wrap(self, obj: Any, attr: str, label: str, *, nested: bool = False,
             detail: Callable[..., Any] | None = None, after: Callable[[Any], Any] | None = None) -> None:
        fn = getattr(obj, attr, None)
        if fn is None:
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            ok = False
            try:
                result = fn(*args, **kwargs)
                ok = True
                return after(result) if after else result
            finally:
                item = {"what": label, "at_s": round(start - self.t0, 3),
                        "s": round(time.perf_counter() - start, 3), "nested": nested}
                if detail:
                    try:
                        item["detail"] = detail(*args, **kwargs)
                    except Exception:  # noqa: BLE001 - a detail is only a label
                        pass
                if not ok:
                    item["failed"] = True
                self.items.append(item)

        setattr(obj, attr, timed)

    def summary(self, total_s: float, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Top-level phases, each with the nested calls that happened inside it and the rest (waiting)."""
        items = self.items + seeding_spans(events)
        top = [i for i in items if not i["nested"]]
        phases: dict[str, dict[str, Any]] = {}
        for item in top:
            phase = phases.setdefault(item["what"], {"count": 0, "s": 0.0, "inside": {}})
            phase["count"] += 1
            phase["s"] = round(phase["s"] + item["s"], 3)
            end = item["at_s"] + item["s"]
            for inner in items:
                if inner["nested"] and item["at_s"] <= inner["at_s"] and inner["at_s"] + inner["s"] <= end + 0.002:
                    entry = phase["inside"].setdefault(inner["what"], {"count": 0, "s": 0.0})
                    entry["count"] += 1
                    entry["s"] = round(entry["s"] + inner["s"], 3)
        for phase in phases.values():
            phase["rest_s"] = round(phase["s"] - sum(v["s"] for v in phase["inside"].values()), 3)
        return {"phases": phases, "other_s": round(total_s - sum(p["s"] for p in phases.values()), 3)}


def seeding_spans(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seeding runs inside the start loop; its time comes from the seeding/seeded events."""
    spans, open_at = [], {}
    for event in events:
        if event["kind"] == "seeding":
            open_at[event["service"]] = event["t_s"]
        elif event["kind"] == "seeded" and event["service"] in open_at:
            at = open_at.pop(event["service"])
            spans.append({"what": "seeding", "at_s": at, "s": round(event["t_s"] - at, 3), "nested": True,
                          "detail": event["service"]})
    return spans


def timeline(events: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per service: when it was started, ready (healthy, running, or linked for a link proxy), seeded."""
    services: dict[str, dict[str, float]] = {}
    for event in events:
        if not event["service"]:
            continue
        entry = services.setdefault(event["service"], {})
        key = {"starting": "started", "healthy": "ready", "running": "ready", "linked": "ready",
               "seeded": "seeded"}.get(event["kind"])
        if key and key not in entry:
            entry[key] = event["t_s"]
    return {k: v for k, v in sorted(services.items(), key=lambda kv: kv[1].get("ready", 1e9)) if "started" in v}


def instrumented_engine(spans: Spans) -> SliceEngine:
    driver = Driver()
    for attr, label in (("containers", "docker ps"), ("inspect", "docker inspect"), ("image_exists", "image exists"),
                        ("network_exists", "network exists"), ("networks", "docker network ls"),
                        ("volumes", "docker volume ls"), ("remove", "docker rm")):
        spans.wrap(driver, attr, label, nested=True)
    spans.wrap(driver, "build_image", "build link proxy image")
    spans.wrap(driver, "start", "docker start", nested=True, detail=lambda ids: len(ids))

    def wrap_project(handle: Any) -> Any:
        spans.wrap(handle, "build", "compose build (local services)", detail=lambda services: len(services))
        spans.wrap(handle, "create", "compose create")
        spans.wrap(handle, "start", "compose up (one layer)", detail=lambda services: list(services))  # older engines
        spans.wrap(handle, "up_wait", "compose up --wait")
        spans.wrap(handle, "down", "compose down")
        return handle

    spans.wrap(driver, "project", "project handle", nested=True, after=wrap_project)
    engine = SliceEngine(driver, WORKDIR)
    spans.wrap(engine.converger, "_check_baseline", "check baseline")
    spans.wrap(engine.converger, "_start", "start in dependency order, wait until ready")
    spans.wrap(engine.converger, "_configure_proxy", "configure link proxy", nested=True)
    spans.wrap(engine, "_wait", "wait until ready (one layer)")                # older engines
    spans.wrap(engine, "_configure_proxies", "configure link proxies", nested=True)
    spans.wrap(engine, "status", "status (final)")
    return engine


# ---------------------------------------------------------------------------------------------
# link proxy: build once before timing; retry while a colleague finishes it


def refresh_linkproxy_tag() -> str:
    """Re-read the link proxy's content tag (its sources may have changed since import)."""
    plan_module.default_linkproxy_image.cache_clear()
    return plan_module.default_linkproxy_image()


def ensure_linkproxy_image(driver: Driver) -> dict[str, Any]:
    tag = refresh_linkproxy_tag()
    if driver.image_exists(tag):
        return {"image": tag, "built": False}
    log(f"building link proxy image {tag} (one-off, not counted in slice times)")
    t0 = time.perf_counter()
    driver.build_image(LINKPROXY_BUILD_CONTEXT, tag)
    return {"image": tag, "built": True, "build_s": round(time.perf_counter() - t0, 2)}


def linkproxy_related(exc: BaseException) -> bool:
    if isinstance(exc, LinkProxyError):
        return True
    if isinstance(exc, BootError) and (exc.service or "").startswith(plan_module.PROXY_PREFIX):
        return True
    text = " ".join(str(x) for x in (exc, getattr(exc, "hint", ""), getattr(exc, "details", ""),
                                     getattr(exc, "logs", ""))).lower()
    return "link proxy" in text or "linkproxy" in text or plan_module.PROXY_PREFIX in text


def error_record(exc: BaseException) -> dict[str, Any]:
    record = exc.to_dict() if isinstance(exc, StackletError) else {"error": type(exc).__name__, "message": str(exc)}
    for key in ("logs", "details"):
        if isinstance(record.get(key), str):
            record[key] = record[key][-3000:]
    return record


# ---------------------------------------------------------------------------------------------
# measurements


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.spans = Spans()
        self.engine = instrumented_engine(self.spans)
        self.driver = self.engine.driver
        self.live_slices: list[str] = []
        self.live_projects: list[tuple[Path, str]] = []
        self.started_baselines: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.linkproxy: dict[str, Any] = {}

    # -- full stack with docker compose ------------------------------------------------------

    def full_stack(self, stack: Stack, project: str) -> dict[str, Any]:
        compose = str(stack.compose.files[0])
        base = ["compose", "-f", compose, "-p", project]
        self._compose_down(base)  # leftovers of an interrupted run
        conditions = wait_for_quiet(self.args.max_busy, self.args.max_wait)
        self.live_projects.append((Path(compose), project))
        run: dict[str, Any] = {"project": project, "conditions": conditions}
        try:
            log(f"full {stack.name}: docker compose up -d --wait ({len(stack.services)} services)")
            t0 = time.perf_counter()
            result = docker(*base, "up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S),
                            timeout=UP_TIMEOUT_S + 60, check=False)
            run["ready_s"] = round(time.perf_counter() - t0, 2)
            if result.returncode != 0:
                raise RuntimeError(f"docker compose up --wait failed: {result.stderr.strip()[-2000:]}")
            label = f"com.docker.compose.project={project}"
            run["memory"] = measure_memory(label, self.args.settle)
            run["idle_cpu"] = measure_idle_cpu(label, self.args.cpu_window)
            log(f"full {stack.name}: ready in {run['ready_s']} s, "
                f"{run['memory']['working_set_bytes'] / MIB:.0f} MiB in {run['memory']['containers']} containers")
        finally:
            t0 = time.perf_counter()
            self._compose_down(base)
            run["down_s"] = round(time.perf_counter() - t0, 2)
            self.live_projects.remove((Path(compose), project))
        return run

    @staticmethod
    def _compose_down(base: list[str]) -> None:
        docker(*base, "down", "-v", "--remove-orphans", "-t", "3", timeout=UP_TIMEOUT_S, check=False)

    # -- baselines ---------------------------------------------------------------------------

    def ensure_baseline(self, stack: Stack) -> dict[str, Any]:
        try:
            status = self.engine.baseline_status(stack.name)
        except SliceNotFound:
            status = None
        if status is not None:
            deadline = time.monotonic() + 120
            while not status.healthy and time.monotonic() < deadline:
                time.sleep(2)
                status = self.engine.baseline_status(stack.name)
            if not status.healthy:
                raise RuntimeError(f"the running baseline of {stack.name} is not healthy; not touching it")
            log(f"baseline {stack.name}: reusing the running one ({len(status.services)} containers)")
            record: dict[str, Any] = {"reused": True}
        else:
            conditions = wait_for_quiet(self.args.max_busy, self.args.max_wait)
            log(f"baseline {stack.name}: starting it with engine.baseline_up")
            self.started_baselines.append(stack.name)
            self.spans.reset()
            t0 = time.perf_counter()
            self.engine.baseline_up(stack, timeout_s=UP_TIMEOUT_S * 2)
            record = {"reused": False, "baseline_up_s": round(time.perf_counter() - t0, 2), "conditions": conditions}
            log(f"baseline {stack.name}: up in {record['baseline_up_s']} s")
        label = f"{Label.BASELINE}={stack.name}"
        record["memory"] = measure_memory(label, self.args.settle if not record["reused"] else 0)
        record["idle_cpu"] = measure_idle_cpu(label, self.args.cpu_window)
        return record

    def stop_baselines(self) -> None:
        for name in list(self.started_baselines):
            try:
                self.engine.baseline_down(name)
                log(f"baseline {name}: stopped (this run started it)")
            except PlanError as exc:
                self.notes.append(f"baseline {name} was left running: {exc} ({exc.hint})")
                log(f"baseline {name}: NOT stopped: {exc}")
            except StackletError as exc:
                self.errors.append({"where": f"baseline_down {name}", **error_record(exc)})
            self.started_baselines.remove(name)

    # -- slices ------------------------------------------------------------------------------

    def slice_up(self, stack: Stack, changed: str, name: str) -> dict[str, Any]:
        """engine.up of one slice (left running; the caller removes it), timed per phase."""
        self._remove_slice(name, quiet=True)  # leftovers of an interrupted run
        deadline = time.monotonic() + self.args.linkproxy_wait
        attempts = []
        for attempt in range(1, LINKPROXY_MAX_ATTEMPTS + 1):
            if not self.linkproxy or attempt > 1:
                self.linkproxy = ensure_linkproxy_image(self.driver)
            conditions = wait_for_quiet(self.args.max_busy, self.args.max_wait) if attempt == 1 else {}
            t0 = time.perf_counter()
            plan = make_plan(stack, [changed])
            plan_s = time.perf_counter() - t0
            seeded = sorted(seed_plan(stack, [s.name for s in plan.local])) if seed_plan and self.args.seed else []
            events: list[dict[str, Any]] = []
            self.spans.reset()
            t1 = time.perf_counter()

            def on_event(event: Event, t1: float = t1) -> None:
                events.append({"t_s": round(time.perf_counter() - t1, 3), "kind": event.kind,
                               "service": event.service, "message": event.message[:120]})

            self.live_slices.append(name)
            log(f"slice {name}: engine.up ({changed} in {stack.name}, {len(plan.local)} local services, "
                f"{len(plan.proxies)} link proxies)")
            try:
                options = {} if self.args.seed else {"seed": False}
                status = self.engine.up(plan, stack, name, timeout_s=UP_TIMEOUT_S, on_event=on_event, **options)
            except StackletError as exc:
                self.live_slices.remove(name)
                self._remove_slice(name, quiet=True)
                attempts.append({"attempt": attempt, **error_record(exc)})
                if linkproxy_related(exc) and time.monotonic() + LINKPROXY_PAUSE_S < deadline:
                    log(f"slice {name}: failed because of the link proxy ({exc}); retrying in {LINKPROXY_PAUSE_S} s")
                    time.sleep(LINKPROXY_PAUSE_S)
                    continue
                raise
            up_s = time.perf_counter() - t1
            log(f"slice {name}: ready in {up_s:.2f} s")
            return {"name": name, "changed": changed, "plan_s": round(plan_s, 4), "up_s": round(up_s, 2),
                    "local": [s.name for s in plan.local], "forwarded": [f.name for f in plan.forwarded],
                    "link_proxies": [p.name for p in plan.proxies],
                    "containers": len(status.services) + len(status.proxies), "healthy": status.healthy,
                    "conditions": conditions, "failed_attempts": attempts,
                    "seeded": seeded, "breakdown": self.spans.summary(up_s, events), "timeline": timeline(events),
                    "spans": list(self.spans.items), "events": events}
        raise RuntimeError(f"slice {name}: gave up after {LINKPROXY_MAX_ATTEMPTS} attempts")

    def slice_memory(self, name: str, settle: float) -> dict[str, Any]:
        memory = measure_memory(f"{Label.SLICE}={name}", settle)
        proxies = set(container_ids(f"{Label.ROLE}=linkproxy"))
        names = container_names(list(proxies))
        proxy_names = set(names.values())
        memory["linkproxy_bytes"] = sum(v["working_set"] or 0 for k, v in memory["per_container"].items()
                                        if k in proxy_names)
        memory["services_bytes"] = memory["working_set_bytes"] - memory["linkproxy_bytes"]
        return memory

    def slice_down(self, name: str) -> float:
        t0 = time.perf_counter()
        self._remove_slice(name)
        return round(time.perf_counter() - t0, 2)

    def _remove_slice(self, name: str, quiet: bool = False) -> None:
        try:
            self.engine.down(name)
            if not quiet:
                log(f"slice {name}: removed")
        except SliceNotFound:
            pass
        finally:
            if name in self.live_slices:
                self.live_slices.remove(name)

    def single_slice(self, stack: Stack, changed: str, name: str) -> dict[str, Any]:
        run = self.slice_up(stack, changed, name)
        try:
            run["memory"] = self.slice_memory(name, self.args.settle)
            run["idle_cpu"] = measure_idle_cpu(f"{Label.SLICE}={name}", self.args.cpu_window)
            log(f"slice {name}: {run['memory']['working_set_bytes'] / MIB:.0f} MiB in "
                f"{run['memory']['containers']} containers")
        finally:
            run["down_s"] = self.slice_down(name)
        return run

    def concurrent_series(self, stack: Stack, changed: list[str], prefix: str) -> list[dict[str, Any]]:
        """Start len(changed) slices one after another on one baseline; memory each one adds."""
        series = []
        names = [f"{prefix}-{i + 1}" for i in range(len(changed))]
        baseline_label = f"{Label.BASELINE}={stack.name}"
        try:
            for i, (name, service) in enumerate(zip(names, changed)):
                before = sum(self._working_set(f"{Label.SLICE}={n}") for n in names[:i])
                run = self.slice_up(stack, service, name)
                run["memory"] = self.slice_memory(name, self.args.settle)
                running = names[: i + 1]
                all_slices = sum(self._working_set(f"{Label.SLICE}={n}") for n in running)
                run["concurrent"] = i + 1
                run["all_bench_slices_bytes"] = all_slices
                run["added_bytes"] = all_slices - before
                run["baseline_bytes"] = self._working_set(baseline_label)
                run["idle_cpu_all_slices"] = measure_idle_cpu([f"{Label.SLICE}={n}" for n in running],
                                                                self.args.cpu_window)
                series.append(run)
                log(f"series: {i + 1} slice(s) up; this one took {run['up_s']} s and added "
                    f"{run['added_bytes'] / MIB:.0f} MiB")
        finally:
            for run, name in zip(series + [{}] * len(names), names):
                if name in self.live_slices or self._exists(name):
                    down_s = self.slice_down(name)
                    if run:
                        run["down_s"] = down_s
        return series

    def _exists(self, name: str) -> bool:
        return bool(self.driver.containers({Label.SLICE: name}))

    @staticmethod
    def _working_set(label: str) -> int:
        return sum((cgroup_memory(cid) or {}).get("working_set", 0) for cid in container_ids(label))

    # -- cleanup of everything this run started ---------------------------------------------

    def cleanup(self) -> None:
        for name in list(self.live_slices):
            try:
                self.slice_down(name)
            except StackletError as exc:
                self.errors.append({"where": f"cleanup of slice {name}", **error_record(exc)})
        for compose, project in list(self.live_projects):
            self._compose_down(["compose", "-f", str(compose), "-p", project])
            self.live_projects.remove((compose, project))
        self.stop_baselines()


# ---------------------------------------------------------------------------------------------
# plan time on generated graphs


def load_generator() -> tuple[Callable[[int], tuple[Stack, str]], str]:
    """bench/plan.py's generator when it has one, else a layered generator of the same shape."""
    path = Path(__file__).parent / "plan.py"
    if path.is_file():
        try:
            spec = importlib.util.spec_from_file_location("bench_plan", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            generate = getattr(module, "generate", None)
            if callable(generate):
                return (lambda size: generate(size)[:2]), "bench/plan.py generate()"
        except Exception as exc:  # noqa: BLE001 - a colleague's file in progress; fall back
            log(f"could not use bench/plan.py ({type(exc).__name__}: {exc}); using the built-in generator")
    return layered_stack, "bench/slice_vs_full.py layered_stack()"


def layered_stack(size: int, layers: int = 4, fan_out: int = 3, seed: int = 7) -> tuple[Stack, str]:
    """Fallback: HTTP layers calling the next one by env URLs, over a tenth of stores."""
    rng = random.Random(seed + size)
    n_stores = max(2, size // 10)
    n_http = size - n_stores
    names = [f"svc-{i}" for i in range(n_http)]
    tiers = [names[i::layers] for i in range(layers)]
    stores = [f"db-{i}" for i in range(n_stores)]
    root = Path("/bench") / f"layered-{size}"
    services: dict[str, Any] = {}
    for depth, tier in enumerate(tiers):
        below = tiers[depth + 1] if depth + 1 < layers else []
        for name in tier:
            env = {f"UPSTREAM_{i}_URL": f"http://{c}:8000/" for i, c in enumerate(rng.sample(below, min(fan_out, len(below))))}
            store = rng.choice(stores)
            env["DATABASE_URL"] = f"postgresql://app:app@{store}:5432/app"
            services[name] = {"image": "bench/svc:dev", "environment": env, "expose": ["8000"],
                              "depends_on": {store: {"condition": "service_healthy", "required": True}},
                              "networks": {"default": None}}
    for store in stores:
        services[store] = {"image": "postgres:16", "networks": {"default": None},
                           "volumes": [{"type": "volume", "source": f"{store}-data", "target": "/var/lib/postgresql/data"}]}
    raw = {"name": f"layered-{size}", "services": services, "networks": {"default": {"name": f"layered-{size}_default"}},
           "volumes": {f"{s}-data": {"name": f"layered-{size}_{s}-data"} for s in stores}}
    compose = parse_compose(raw, [root / "compose.yaml"])
    stack = Stack(meta=StackFile(name=f"layered-{size}", services={s: ServiceMeta(stateful=True) for s in stores}),
                  compose=compose, root=root, stack_file=root / "stack.yaml")
    middle = tiers[layers // 2]
    return stack, middle[len(middle) // 2]


def plan_times(sizes: tuple[int, ...], runs: int) -> dict[str, Any]:
    generate, source = load_generator()
    results = []
    for size in sizes:
        t0 = time.perf_counter()
        stack, changed = generate(size)
        generate_s = time.perf_counter() - t0
        timings: dict[str, list[float]] = {"graph": [], "make_plan": [], "render": [], "total": [], "total_cpu": []}
        plan = project = graph = None
        for _ in range(runs if size < 5000 else max(1, runs - 2)):
            c0, w0 = time.process_time(), time.perf_counter()
            graph = ServiceGraph.from_stack(stack)
            w1 = time.perf_counter()
            plan = make_plan(stack, [changed], graph=graph)
            w2 = time.perf_counter()
            project = render(plan, stack, "bench-plan")
            w3 = time.perf_counter()
            for key, value in (("graph", w1 - w0), ("make_plan", w2 - w1), ("render", w3 - w2), ("total", w3 - w0),
                               ("total_cpu", time.process_time() - c0)):
                timings[key].append(value)
        results.append({
            "services": size, "edges": graph.graph.number_of_edges(), "changed": changed,
            "local": len(plan.local), "forwarded": len(plan.forwarded), "proxies": len(plan.proxies),
            "rendered_services": len(project["services"]), "generate_s": round(generate_s, 3),
            "runs": len(timings["total"]), "load_1m": load_1m(),
            **{f"{k}_ms": {"best": round(min(v) * 1000, 2), "median": round(statistics.median(v) * 1000, 2)}
               for k, v in timings.items()}})
        log(f"plan time: {size} services → {results[-1]['total_ms']['median']} ms (median)")
    return {"generator": source, "results": results}


# ---------------------------------------------------------------------------------------------
# the report


def _stat(values: list[float]) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": round(statistics.median(values), 2), "best": round(min(values), 2),
            "worst": round(max(values), 2), "n": len(values)}


def summarize(runs: list[dict[str, Any]], key: str = "ready_s") -> dict[str, Any]:
    return {"time_s": _stat([r.get(key) for r in runs]),
            "memory_mib": _stat([r["memory"]["working_set_bytes"] / MIB for r in runs if "memory" in r]),
            "rss_mib": _stat([(r["memory"]["rss_bytes"] or 0) / MIB for r in runs if "memory" in r]),
            "idle_cpu_cores": _stat([r["idle_cpu"]["containers_cores"] for r in runs if "idle_cpu" in r]),
            "containers": runs[-1]["memory"]["containers"] if runs and "memory" in runs[-1] else None}


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_comparison(title: str, section: dict[str, Any]) -> None:
    print(f"\n{title}")
    full, sl = section.get("full_summary"), section.get("slice_summary")
    print(f"  {'':38} {'containers':>10} {'ready s (median, runs)':>28} {'memory MiB':>11} {'rss MiB':>8} "
          f"{'idle CPU cores':>15}")
    for label, summary, runs, key in (("full stack: compose up -d --wait", full, section.get("full", []), "ready_s"),
                                      (f"slice {section.get('changed')}: engine.up (baseline up)", sl,
                                       section.get("slice", []), "up_s")):
        if not summary or not summary["time_s"]:
            print(f"  {label:38} (failed: see errors)")
            continue
        each = ", ".join(fmt(r.get(key), 1) for r in runs)
        print(f"  {label:38} {summary['containers'] or '-':>10} {fmt(summary['time_s']['median'], 2):>8} ({each})"
              f"{'':>{max(0, 18 - len(each))}} {fmt(summary['memory_mib']['median'] if summary['memory_mib'] else None):>11} "
              f"{fmt(summary['rss_mib']['median'] if summary['rss_mib'] else None):>8} "
              f"{fmt(summary['idle_cpu_cores']['median'] if summary['idle_cpu_cores'] else None, 3):>15}")
    if full and sl and full["time_s"] and sl["time_s"] and full["memory_mib"] and sl["memory_mib"]:
        print(f"  {'slice / full':38} {'':>10} {sl['time_s']['median'] / full['time_s']['median']:>8.2f}"
              f"{'':>20} {sl['memory_mib']['median'] / full['memory_mib']['median']:>11.2f}")
    busy = "; ".join(f"{what} " + ", ".join(fmt((r.get("conditions") or {}).get("host_busy_cores_before"), 2)
                                            for r in section.get(what, []))
                     for what in ("full", "slice") if section.get(what))
    if busy:
        print(f"  host cores busy with other work just before each run: {busy}")
    baseline = section.get("baseline")
    if baseline and "memory" in baseline:
        how = "reused (already running)" if baseline.get("reused") else f"started by this run in {baseline['baseline_up_s']} s"
        print(f"  baseline: {how}, {baseline['memory']['containers']} containers, "
              f"{baseline['memory']['working_set_bytes'] / MIB:.0f} MiB, idle CPU "
              f"{fmt(baseline['idle_cpu']['containers_cores'], 3)} cores in its containers")
        if not baseline.get("reused") and baseline.get("conditions"):
            print(f"  host cores busy: {fmt(baseline['conditions'].get('host_busy_cores_before'), 2)} before the baseline, "
                  f"{fmt(baseline['idle_cpu'].get('host_cores'), 2)} with it up and idle (healthchecks: the "
                  "containers' own share above, the rest is dockerd/containerd/runc and everything else)")
    runs = section.get("slice") or []
    if runs:
        last = runs[-1]
        mem = last.get("memory") or {}
        seeded = ", ".join(last.get("seeded") or []) or "none"
        print(f"  load_stack of the real stack (runs `docker compose config`): {section.get('load_stack_s')} s")
        print(f"  seeded services (engine.up seeds by default; the full stack is not seeded): {seeded}")
        if mem:
            print(f"  slice memory: services {mem['services_bytes'] / MIB:.0f} MiB + link proxies "
                  f"{mem['linkproxy_bytes'] / MIB:.0f} MiB; plan (in-process, stack already loaded) "
                  f"{last['plan_s'] * 1000:.0f} ms; down {last.get('down_s', '-')} s")
        print_breakdown(last)


def print_breakdown(run: dict[str, Any]) -> None:
    b = run["breakdown"]
    print(f"  where the slice's {run['up_s']:.2f} s go (last run):")
    for name, phase in b["phases"].items():
        inside = ", ".join(f"{k} {v['s']:.2f} s" + (f" x{v['count']}" if v["count"] > 1 else "")
                           for k, v in sorted(phase["inside"].items(), key=lambda kv: -kv[1]["s"]) if v["s"] >= 0.01)
        rest = "waiting for healthchecks (polling)" if "wait" in name else "the call itself"
        detail = f"  ({inside}; {rest} {phase['rest_s']:.2f} s)" if inside else ""
        print(f"    {phase['s']:6.2f} s  {name}{' x' + str(phase['count']) if phase['count'] > 1 else ''}{detail}")
    print(f"    {b['other_s']:6.2f} s  other (render, write files, ...)")
    line = ", ".join(f"{svc} {t['started']:.1f}→{t['ready']:.1f}" + (f" seeded {t['seeded']:.1f}" if "seeded" in t else "")
                     for svc, t in run["timeline"].items() if "ready" in t)
    print(f"    timeline (s since engine.up): {line}")


def print_series(series: list[dict[str, Any]]) -> None:
    print("\n  concurrent slices on one mesh40 baseline, started one after another:")
    print(f"  {'n':>3} {'slice':22} {'changed':10} {'containers':>10} {'up s':>7} {'added MiB':>10} "
          f"{'all slices MiB':>15} {'baseline MiB':>13} {'idle CPU (all slices)':>22} {'host busy before':>17}")
    for run in series:
        print(f"  {run['concurrent']:>3} {run['name']:22} {run['changed']:10} {run['containers']:>10} "
              f"{run['up_s']:>7.2f} {run['added_bytes'] / MIB:>10.1f} {run['all_bench_slices_bytes'] / MIB:>15.1f} "
              f"{run['baseline_bytes'] / MIB:>13.1f} {fmt(run['idle_cpu_all_slices']['containers_cores'], 3):>22} "
              f"{fmt(run['conditions'].get('host_busy_cores_before'), 2):>17}")


def print_plan(plan: dict[str, Any]) -> None:
    print(f"\n3. plan time on generated layered graphs ({plan['generator']}), ms best / median")
    print(f"  {'services':>8} {'edges':>6} {'local':>5} {'fwd':>4} {'graph':>16} {'make_plan':>16} {'render':>14} "
          f"{'total':>16} {'total CPU':>16}")
    for r in plan["results"]:
        cells = " ".join(f"{r[k]['best']:>7.1f} / {r[k]['median']:<6.1f}"
                         for k in ("graph_ms", "make_plan_ms", "render_ms", "total_ms", "total_cpu_ms"))
        print(f"  {r['services']:>8} {r['edges']:>6} {r['local']:>5} {r['forwarded']:>4} {cells}")


def print_report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    d = m.get("docker", {})
    print(f"\nslice vs full — {doc['recorded_at']}, {m.get('cores')} cores, "
          f"{m.get('memory_bytes', 0) / 1024 ** 3:.1f} GiB, Docker {d.get('server') if isinstance(d, dict) else d}"
          f" (API {d.get('api') if isinstance(d, dict) else '?'}), Compose {m.get('compose')}, "
          f"load 1m {doc['load_1m_start']} → {doc['load_1m_end']}{' (quick)' if doc['quick'] else ''}")
    if doc.get("others_running_at_start"):
        other = ", ".join(f"{k}: {v}" for k, v in doc["others_running_at_start"].items())
        print(f"other containers running on the engine at start: {other}")
    if doc.get("linkproxy"):
        lp = doc["linkproxy"]
        print(f"link proxy image {lp.get('image')}"
              + (f": built by this run in {lp['build_s']} s (not counted)" if lp.get("built") else ": already built"))
    if "shop" in doc:
        print_comparison("1. shop: full stack vs slice (memory = cgroup working set of the project's / slice's own "
                         "containers, link proxies included)", doc["shop"])
    if "forum" in doc:
        print_comparison("forum: full stack vs slice of api (migrate job, broker, worker, 4 stores)", doc["forum"])
    if "mesh40" in doc:
        print_comparison("2. mesh40: full stack vs slice", doc["mesh40"])
        if doc["mesh40"].get("series"):
            print_series(doc["mesh40"]["series"])
    if "plan" in doc:
        print_plan(doc["plan"])
    for note in doc.get("notes", []):
        print(f"note: {note}")
    for error in doc.get("errors", []):
        print(f"ERROR in {error.get('where')}: {error.get('error')}: {error.get('message')}")


# ---------------------------------------------------------------------------------------------


def compare(bench: Bench, stack_name: str, changed: str, repeats: int, series: list[str] | None) -> dict[str, Any]:
    stack = load_stack(REPO / "stacks" / stack_name)
    t0 = time.perf_counter()
    load_stack(REPO / "stacks" / stack_name)
    section: dict[str, Any] = {"changed": changed, "services": len(stack.services),
                               "load_stack_s": round(time.perf_counter() - t0, 3), "full": [], "slice": []}
    for i in range(repeats):
        try:
            section["full"].append(bench.full_stack(stack, f"bench-full-{stack_name}"))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            bench.errors.append({"where": f"{stack_name} full stack run {i + 1}", **error_record(exc)})
    if make_plan(stack, [changed]).uses_local_baseline:
        section["baseline"] = bench.ensure_baseline(stack)
    else:
        section["baseline"] = {"needed": False, "why": f"the slice of {changed} forwards nothing"}
    for i in range(repeats):
        try:
            section["slice"].append(bench.single_slice(stack, changed, f"bench-{stack_name}-{changed}"))
        except (StackletError, RuntimeError, subprocess.TimeoutExpired) as exc:
            bench.errors.append({"where": f"{stack_name} slice run {i + 1}", **error_record(exc)})
    if series:
        try:
            section["series"] = bench.concurrent_series(stack, series, f"bench-{stack_name}-c")
        except (StackletError, RuntimeError, subprocess.TimeoutExpired) as exc:
            bench.errors.append({"where": f"{stack_name} concurrent series", **error_record(exc)})
    section["full_summary"] = summarize(section["full"], "ready_s")
    section["slice_summary"] = summarize(section["slice"], "up_s")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, no concurrent series, fewer plan runs")
    parser.add_argument("--repeats", type=int, help="runs of each full/slice measurement (default 2, quick 1)")
    parser.add_argument("--series", default=",".join([MESH_CHANGED] * 4),
                        help="changed service of each concurrent mesh40 slice (default: orders ×4)")
    parser.add_argument("--only", choices=("shop", "forum", "mesh40", "plan"), action="append",
                        help="run only these parts")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after ready before memory")
    parser.add_argument("--cpu-window", type=float, default=5.0, help="seconds over which idle CPU is measured")
    parser.add_argument("--max-busy", type=float, default=None,
                        help="before each timed start, wait until other work keeps fewer cores busy than this "
                             "(default: 0.6 x cores; 0: never wait)")
    parser.add_argument("--max-wait", type=float, default=180, help="at most this long, per wait for a quiet host")
    parser.add_argument("--linkproxy-wait", type=float, default=LINKPROXY_WAIT_S,
                        help="keep retrying a slice that fails because of the link proxy for this long")
    parser.add_argument("--no-seed", dest="seed", action="store_false",
                        help="boot slices without their seed data (engine.up(seed=False))")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--report", type=Path, metavar="JSON", help="only print the table of a recorded run")
    args = parser.parse_args(argv)
    if args.report:
        print_report(json.loads(args.report.read_text()))
        return 0
    args.repeats = args.repeats or (1 if args.quick else 2)
    if args.max_busy is None:
        args.max_busy = 0.6 * (os.cpu_count() or 1)
    parts = set(args.only or ("shop", "forum", "mesh40", "plan"))

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)

    bench = Bench(args)
    doc: dict[str, Any] = {"benchmark": "slice_vs_full", "quick": args.quick,
                           "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "settings": {"repeats": args.repeats, "settle_s": args.settle, "cpu_window_s": args.cpu_window,
                                        "max_busy_cores": args.max_busy, "seed": args.seed, "series": args.series.split(",")},
                           "machine": machine_info(bench.driver), "load_1m_start": load_1m(),
                           "others_running_at_start": others_running()}
    try:
        if "plan" in parts:
            conditions = wait_for_quiet(args.max_busy, args.max_wait)
            doc["plan"] = {**plan_times(PLAN_SIZES, 3 if args.quick else 7), "conditions": conditions}
        if "shop" in parts:
            doc["shop"] = compare(bench, "shop", SHOP_CHANGED, args.repeats, None)
        if "forum" in parts:
            doc["forum"] = compare(bench, "forum", FORUM_CHANGED, args.repeats, None)
        if "mesh40" in parts:
            series = None if args.quick else [s for s in args.series.split(",") if s]
            doc["mesh40"] = compare(bench, "mesh40", MESH_CHANGED, args.repeats, series)
    except KeyboardInterrupt:
        bench.errors.append({"where": "run", "error": "interrupted"})
        log("interrupted: cleaning up")
    finally:
        bench.cleanup()
    doc["linkproxy"] = bench.linkproxy
    doc["load_1m_end"] = load_1m()
    doc["notes"] = bench.notes
    doc["errors"] = bench.errors
    print_report(doc)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"\nwrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
