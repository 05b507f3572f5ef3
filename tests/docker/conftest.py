"""Fixtures for tests against a real Docker engine.

Without an engine these tests fail under CI=true (they must run there) and are skipped elsewhere.
Under CI=true the engine is the CI machine's own: whatever an earlier, interrupted run left labelled by
stacklet is removed before the first test, so fixed slice names never meet a stale slice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from stacklet.docker.driver import Driver
from stacklet.runtime.engine import SliceEngine
from stacklet.errors import StackletError
from stacklet.config.stack import load_stack

REPO = Path(__file__).resolve().parents[2]
STACKLET = [sys.executable, "-m", "stacklet"]
TINY = REPO / "tests" / "docker" / "stacks" / "tiny"  # three tiny HTTP services in a chain


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/docker" in str(item.fspath):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def driver() -> Driver:
    driver = Driver()
    try:
        driver.engine_info()
    except StackletError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Docker tests must run in CI but no engine answers: {exc.message}")
        pytest.skip(f"no Docker engine: {exc.message}")
    if os.environ.get("CI") == "true":
        removed = sweep_stacklet_resources(driver)
        if any(removed.values()):
            print(f"\nremoved what an earlier run left on the engine: {removed}", file=sys.stderr)
    return driver


SWEPT_LABELS = ("dev.stacklet.slice", "dev.stacklet.baseline", "dev.stacklet.test")


def sweep_stacklet_resources(engine: Driver) -> dict[str, list[str]]:
    """Force-remove every container, network and volume carrying one of ``SWEPT_LABELS`` (only for CI,
    whose engine runs nothing else); returns what was removed."""
    found: dict[str, set[str]] = {"containers": set(), "networks": set(), "volumes": set()}
    for key in SWEPT_LABELS:
        found["containers"] |= {c.name for c in engine.containers({key: ""})}
        found["networks"] |= set(engine.networks({key: ""}))
        found["volumes"] |= set(engine.volumes({key: ""}))
    found["networks"] |= {n for n in engine.networks({"com.docker.compose.project": ""}) if n.startswith("stacklet-")}
    removed = {kind: sorted(names) for kind, names in found.items()}
    engine.remove(**removed)
    return removed


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stacklet-home")


@pytest.fixture(scope="session")
def engine(driver, workdir) -> SliceEngine:
    return SliceEngine(driver, workdir)


@pytest.fixture(scope="session")
def shop():
    return load_stack(REPO / "stacks" / "shop")


@pytest.fixture(scope="session")
def shop_baseline(engine, driver, shop):
    """The shop's local baseline: reused when it already runs, else started and removed at the end."""
    already_running = bool(driver.containers({"dev.stacklet.baseline": shop.name}))
    engine.baseline_up(shop)
    yield engine.baseline_status(shop.name)
    if not already_running:
        engine.baseline_down(shop.name)


def run_cli(*args: str, env: dict | None = None, check: bool = True, timeout: int = 600,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the stacklet CLI in a subprocess, as a user would."""
    result = subprocess.run([*STACKLET, *args], capture_output=True, text=True, timeout=timeout,
                            cwd=cwd or REPO, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"stacklet {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None,
         timeout: float = 30) -> tuple[int, dict]:
    """A JSON request; returns (status, body) for 2xx and error statuses alike."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def host_endpoint(status, service: str) -> str:
    """The 127.0.0.1:PORT of a service in a slice or baseline status."""
    svc = next(s for s in status.services if s.name == service)
    return svc.endpoints[0].host


def leftovers(driver: Driver, *slices: str) -> dict[str, list[str]]:
    """Containers, networks and volumes still labelled as belonging to one of ``slices``."""
    found: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": []}
    for name in slices:
        labels = {"dev.stacklet.slice": name}
        found["containers"] += [c.name for c in driver.containers(labels)]
        found["networks"] += driver.networks(labels)
        found["volumes"] += driver.volumes(labels)
    return found


NOTHING = {"containers": [], "networks": [], "volumes": []}


def copy_shop(root: Path) -> Path:
    """A copy of the shop (stack, seeds, fault profiles) under ``root``; returns its stack folder."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("stacks/shop", "seeds/shop", "faults"):
        shutil.copytree(REPO / part, root / part, ignore=ignore)
    return root / "stacks" / "shop"


@contextlib.contextmanager
def orders_slice(stack_dir: Path, name: str, env: dict, driver: Driver):
    """An `orders` slice of the stack in ``stack_dir`` (its status as JSON), removed afterwards, leaving nothing."""
    try:
        result = run_cli("up", "orders", "--stack", str(stack_dir), "--name", name, "--json", env=env)
        yield json.loads(result.stdout)["slice"]
    finally:
        run_cli("down", name, env=env, check=False)
        assert leftovers(driver, name) == NOTHING
