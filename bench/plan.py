"""Benchmark the planning layer on generated stacks of 50, 500 and 5,000 services.

Each stack is a layered service graph built in memory, shaped like the JSON of
`docker compose config`: four layers of HTTP services (each calls a few services of the next
layer through `http://svc-N:8000` environment values) over a layer of stateful stores (postgres
and redis images, reached through `postgresql://...@db-N:5432/...` / `redis://db-N:6379/0` and
`depends_on`). No Docker is involved.

For one changed service in the middle layer it times, per run:
    ServiceGraph.from_stack(stack)  →  make_plan(stack, [changed], graph=graph)  →  render(plan, stack, name)
and reports the best and the median of RUNS runs, per phase and in total.

It also times big, honest inputs read the way users give them, through stacklet's file readers
(the bounded YAML loader, the unset-variable scan, `docker compose config` when it is installed):
a stack.yaml naming 5,000 services, one with 10,000 checks, a 1 MB Compose file, and a plan of
5,000 services at the largest radius allowed. Each must take a few seconds at most.

    .venv/bin/python bench/plan.py            # prints a table, writes bench/results/plan.json
    .venv/bin/python bench/plan.py --profile 5000   # also prints a cProfile of one run
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stacklet.config.compose import compose_available, load_compose, parse_compose, unset_variables
from stacklet.config.stack import MAX_RADIUS, ServiceMeta, Stack, StackFile, check_references, load_stack_file
from stacklet.config.yamlload import load_yaml_file
from stacklet.errors import ComposeError
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import make_plan
from stacklet.planning.render import render

SIZES = (50, 500, 5000)
RUNS = 5
LAYERS = 4            # HTTP layers above the stores
STORE_SHARE = 0.1     # a tenth of the services are stateful stores
FAN_OUT = 3           # calls from each service into the next layer
SEED = 20260521
RESULTS = Path(__file__).parent / "results" / "plan.json"


def generate(size: int, seed: int = SEED) -> tuple[Stack, str, list[list[str]]]:
    """A layered stack of ``size`` services; returns it, the changed service and the layers."""
    rng = random.Random(seed + size)
    n_stores = max(2, int(size * STORE_SHARE))
    n_http = size - n_stores
    per_layer = [n_http // LAYERS + (1 if i < n_http % LAYERS else 0) for i in range(LAYERS)]
    layers: list[list[str]] = []
    index = 0
    for count in per_layer:
        layers.append([f"svc-{index + i}" for i in range(count)])
        index += count
    stores = [f"db-{i}" for i in range(n_stores)]
    root = Path("/bench") / f"layered-{size}"

    services: dict[str, Any] = {}
    for depth, layer in enumerate(layers):
        below = layers[depth + 1] if depth + 1 < LAYERS else []
        for name in layer:
            env = {"LOG_LEVEL": "info", "SERVICE_NAME": name, "TIMEOUT": "5s"}
            for i, callee in enumerate(rng.sample(below, min(FAN_OUT, len(below)))):
                env[f"UPSTREAM_{i}_URL"] = f"http://{callee}:8000/api"
            store = rng.choice(stores)
            if store.endswith(("0", "2", "4", "6", "8")):
                env["DATABASE_URL"] = f"postgresql://app:secret@{store}:5432/{name.replace('-', '_')}"
            else:
                env["CACHE_URL"] = f"redis://{store}:6379/0"
            services[name] = {
                "build": {"context": str(root / "services" / name), "dockerfile": "Dockerfile"},
                "image": f"bench/{name}:dev",
                "command": None,
                "entrypoint": None,
                "environment": env,
                "expose": ["8000"],
                "depends_on": {store: {"condition": "service_healthy", "required": True}},
                "healthcheck": {"test": ["CMD", "true"], "interval": "1s"},
                "networks": {"default": None},
            }
    for i, store in enumerate(stores):
        postgres = i % 2 == 0
        services[store] = {
            "image": "postgres:16" if postgres else "redis:7",
            "command": None,
            "entrypoint": None,
            "environment": {"POSTGRES_PASSWORD": "secret"} if postgres else {},
            "volumes": [{"type": "volume", "source": f"{store}-data",
                         "target": "/var/lib/postgresql/data" if postgres else "/data", "volume": {}}],
            "healthcheck": {"test": ["CMD", "true"], "interval": "1s"},
            "networks": {"default": None},
        }
    raw = {
        "name": f"layered-{size}",
        "services": services,
        "networks": {"default": {"name": f"layered-{size}_default", "ipam": {}}},
        "volumes": {f"{store}-data": {"name": f"layered-{size}_{store}-data"} for store in stores},
    }
    compose = parse_compose(raw, [root / "compose.yaml"])
    meta = StackFile(name=f"layered-{size}", services={s: ServiceMeta(stateful=True) for s in stores[:3]})
    stack = Stack(meta=meta, compose=compose, root=root, stack_file=root / "stack.yaml")
    middle = layers[LAYERS // 2]
    return stack, middle[len(middle) // 2], layers + [stores]


def run_once(stack: Stack, changed: str) -> tuple[dict[str, float], Any, dict]:
    """One timed run. Wall time per phase, plus the CPU time of the whole run (steadier on a busy host)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    graph = ServiceGraph.from_stack(stack)
    t1 = time.perf_counter()
    plan = make_plan(stack, [changed], graph=graph)
    t2 = time.perf_counter()
    project = render(plan, stack, "bench")
    t3 = time.perf_counter()
    c1 = time.process_time()
    return {"graph": t1 - t0, "plan": t2 - t1, "render": t3 - t2, "total": t3 - t0, "total_cpu": c1 - c0}, \
        plan, project


def bench(size: int, runs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    stack, changed, _ = generate(size)
    generate_s = time.perf_counter() - t0
    timings = []
    plan = project = None
    for _ in range(runs):
        timing, plan, project = run_once(stack, changed)
        timings.append(timing)
    phases = {}
    for phase in ("graph", "plan", "render", "total", "total_cpu"):
        values = [t[phase] for t in timings]
        phases[phase] = {"best_ms": round(min(values) * 1000, 3), "median_ms": round(statistics.median(values) * 1000, 3)}
    edges = ServiceGraph.from_stack(stack).graph.number_of_edges()
    return {
        "services": size,
        "edges": edges,
        "changed": changed,
        "local": len(plan.local),
        "forwarded": len(plan.forwarded),
        "proxies": len(plan.proxies),
        "rendered_services": len(project["services"]),
        "generate_and_parse_ms": round(generate_s * 1000, 3),
        "runs": runs,
        **phases,
    }


def _timed(action) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return round((time.perf_counter() - started) * 1000, 1), result


def bench_inputs(folder: Path) -> dict[str, Any]:
    """Big honest inputs through the real readers: each case's wall time in ms and what it produced."""
    stack, changed, layers = generate(5000)
    names = [name for layer in layers for name in layer]
    cases: dict[str, Any] = {}

    big_meta = folder / "services-5000.yaml"
    big_meta.write_text("name: big\nservices:\n" + "".join(
        f"  {name}:\n    calls: [{layers[-1][i % len(layers[-1])]}]\n    paths: ['services/{name}/**']\n"
        "    ports: [8000]\n" for i, name in enumerate(names)))
    ms, meta = _timed(lambda: load_stack_file(big_meta))
    with_meta = stack.model_copy(update={"meta": meta})
    plan_ms, plan = _timed(lambda: (check_references(with_meta), make_plan(with_meta, [changed]))[1])
    cases["stack_yaml_5000_services"] = {"bytes": big_meta.stat().st_size, "load_ms": ms, "plan_ms": plan_ms,
                                         "local": len(plan.local)}

    checks = folder / "checks-10000.yaml"
    services = ["svc-0", "svc-1", "svc-2"]
    checks.write_text("name: checks\nchecks:\n" + "".join(
        f"  - name: check-{i}\n    services: [{services[i % 3]}]\n    steps:\n"
        f"      - {{name: get, service: {services[i % 3]}, path: /items/{i}, expect: {{status: 200, json: "
        f"{{$.id: {i}}}}}}}\n" for i in range(10_000)))
    ms, meta = _timed(lambda: load_stack_file(checks))
    with_checks = stack.model_copy(update={"meta": meta})
    plan_ms, plan = _timed(lambda: (check_references(with_checks), make_plan(with_checks, ["svc-1"]))[1])
    cases["stack_yaml_10000_checks"] = {"bytes": checks.stat().st_size, "load_ms": ms, "plan_ms": plan_ms,
                                        "checks": len(meta.checks)}

    compose = folder / "compose.yaml"
    blocks = []
    for i in range(6000):
        blocks.append(f"  # service {i}: ${{NOT_A_VARIABLE:-in a comment}} " + "x" * 40 + "\n"
                      f"  svc-{i}:\n    image: ${{REGISTRY:-example}}/svc-{i}:${{TAG:-dev}}\n"
                      f"    environment:\n      NEXT_URL: http://svc-{(i + 1) % 6000}:8000\n"
                      f"      LEVEL: ${{LOG_LEVEL:-info}}\n    expose: ['8000']\n")
        if sum(len(b) for b in blocks) > 1_000_000:
            break
    compose.write_text("services:\n" + "".join(blocks))
    scan_ms, unset = _timed(lambda: unset_variables([compose], [], folder))
    yaml_ms, data = _timed(lambda: load_yaml_file(compose, ComposeError))
    entry: dict[str, Any] = {"bytes": compose.stat().st_size, "services": len(data["services"]),
                             "unset_variable_scan_ms": scan_ms, "yaml_load_ms": yaml_ms, "unset": unset}
    if compose_available():
        entry["docker_compose_config_and_parse_ms"], project = _timed(lambda: load_compose([compose]))
        meta = StackFile(name="compose-1mb")
        one_mb = Stack(meta=meta, compose=project, root=folder)
        entry["plan_ms"], plan = _timed(lambda: make_plan(one_mb, ["svc-10"]))
        entry["local"] = len(plan.local)
    cases["compose_1mb"] = entry

    ms, plan = _timed(lambda: make_plan(stack, [changed], MAX_RADIUS))
    cases["plan_5000_services_radius_max"] = {"radius": MAX_RADIUS, "plan_ms": ms, "local": len(plan.local)}
    return cases


def profile(size: int, top: int = 25) -> None:
    stack, changed, _ = generate(size)
    profiler = cProfile.Profile()
    profiler.enable()
    run_once(stack, changed)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--profile", type=int, metavar="SIZE", help="also print a cProfile of one run of SIZE")
    args = parser.parse_args(argv)

    results = [bench(size, args.runs) for size in args.sizes]
    phases = ("graph", "plan", "render", "total", "total_cpu")
    header = (f"{'services':>8} {'edges':>6} {'local':>5} {'fwd':>4} {'proxies':>7}  "
              + "".join(f" {name + ' ms':>18}" for name in phases))
    print(f"best / median of {args.runs} runs: ServiceGraph.from_stack + make_plan + render "
          "(one changed service in the middle layer); wall time, and CPU time of the whole run")
    print(header)
    for r in results:
        cells = "".join(f" {r[p]['best_ms']:>8.2f} / {r[p]['median_ms']:<7.2f}" for p in phases)
        print(f"{r['services']:>8} {r['edges']:>6} {r['local']:>5} {r['forwarded']:>4} {r['proxies']:>7}  {cells}")

    with tempfile.TemporaryDirectory(prefix="stacklet-bench-") as folder:
        inputs = bench_inputs(Path(folder))
    print("big inputs through the file readers (wall ms):")
    for case, numbers in inputs.items():
        print(f"  {case:32} " + ", ".join(f"{k}={v}" for k, v in numbers.items()))

    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "benchmark": "plan",
            "what": "ServiceGraph.from_stack + make_plan + render, one changed service in the middle layer",
            "shape": {"layers": LAYERS, "store_share": STORE_SHARE, "fan_out": FAN_OUT, "seed": SEED},
            "machine": {"python": platform.python_version(), "implementation": platform.python_implementation(),
                        "platform": platform.platform(), "cpus": os.cpu_count(),
                        "load_average_1m": round(os.getloadavg()[0], 2)},
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": results,
            "inputs": inputs,
        }
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.output}")
    if args.profile:
        profile(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
