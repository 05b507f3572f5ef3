"""Two real engines: the shop baseline on a second engine (a network namespace at 10.250.0.2, started
by scripts/teambox.sh), advertised on that address, an `orders` slice on the local engine that
forwards to it, and a slice on the second engine whose endpoints answer here; `ls` across both,
the verdict naming the baseline's host once its service stops, and once its whole engine stops. Needs root (network namespaces,
iptables); traffic goes only to 127.0.0.1 and 10.250.0.0/24."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stacklet.docker.driver import Driver
from stacklet.labels import Label
from stacklet.planning.plan import LINKPROXY_BUILD_CONTEXT, default_linkproxy_image

from .conftest import NOTHING, REPO, http, leftovers, run_cli, sweep_stacklet_resources

TEAMBOX_SCRIPT = REPO / "scripts" / "teambox.sh"
TEAM_ADDRESS = "10.250.0.2"
TEAM_ENGINE = f"tcp://{TEAM_ADDRESS}:2375"
SILENT_ENGINE = "tcp://10.250.0.77:2375"  # in the test namespace's subnet, where nothing listens
SLICE = "rm-remote-orders"
TEAM_SLICE = "rm-team-orders"
TEAM_PIDFILE = Path("/run/teambox.pid")  # scripts/teambox.sh keeps the second engine's pid here

pytestmark = pytest.mark.timeout(1800)  # the first test also builds the shop on the second engine


def teambox(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run scripts/teambox.sh with ``command`` (``up``, ``down``, ``status``, ``sshd-up DIR``, ...)."""
    return subprocess.run(["bash", str(TEAMBOX_SCRIPT), *command], capture_output=True, text=True, timeout=300,
                          check=check)


@pytest.fixture(scope="module")
def team_engine(driver) -> Driver:
    """The second engine: started for these tests (and stopped after them) unless it already runs."""
    if os.geteuid() != 0:
        message = "two-engine tests need root (network namespace, iptables)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    already_up = teambox("status", check=False).returncode == 0
    started = teambox("up", check=False)
    assert started.returncode == 0, f"scripts/teambox.sh up failed:\n{started.stdout}\n{started.stderr}"
    team = Driver(host=TEAM_ENGINE)
    if os.environ.get("CI") == "true":
        sweep_stacklet_resources(team)  # the second engine keeps its data between runs, as the first does
    copy_linkproxy_image(driver, team)
    yield team
    if not already_up:
        teambox("down")
        assert teambox("status", check=False).returncode == 1


@pytest.fixture(scope="module")
def team_baseline(team_engine) -> dict:
    """The shop baseline on the second engine, advertised on its address; removed at the end."""
    run_cli("--host", TEAM_ENGINE, "baseline", "up", "--stack", "shop", "--advertise", TEAM_ADDRESS, "--json",
            timeout=1800)
    yield json.loads(run_cli("--host", TEAM_ENGINE, "baseline", "status", "--stack", "shop", "--json").stdout)
    run_cli("--host", TEAM_ENGINE, "baseline", "down", "--stack", "shop", "--json")
    labels = {Label.BASELINE: "shop"}
    assert (team_engine.containers(labels), team_engine.networks(labels), team_engine.volumes(labels)) == (
        [], [], []), "the baseline left something on the second engine"


def copy_linkproxy_image(here: Driver, there: Driver) -> None:
    """The link proxy image, copied to the second engine as scripts/teambox.sh copies the base image (no
    registry; building it there would install its packages again)."""
    tag = default_linkproxy_image()
    if not there.image_exists(tag):
        if not here.image_exists(tag):
            here.build_image(LINKPROXY_BUILD_CONTEXT, tag)
        subprocess.run(f"docker save {tag} | docker -H {TEAM_ENGINE} load", shell=True, check=True, timeout=300,
                       capture_output=True)


@pytest.fixture(scope="module")
def local_slice(team_baseline, driver) -> dict:
    """An `orders` slice on the local engine forwarding to the second engine's baseline; removed at the end."""
    up = json.loads(run_cli("up", "orders", "--stack", "shop", "--baseline-engine", TEAM_ENGINE,
                            "--name", SLICE, "--timeout", "600", "--json", timeout=1200).stdout)
    yield up["slice"]
    run_cli("down", SLICE, "--json")
    assert leftovers(driver, SLICE) == NOTHING


@pytest.fixture(scope="module")
def team_slice(team_baseline, team_engine) -> dict:
    """An `orders` slice on the second engine, published on its advertise address; removed at the end."""
    up = json.loads(run_cli("--host", TEAM_ENGINE, "--advertise", TEAM_ADDRESS, "up", "orders", "--stack", "shop",
                            "--name", TEAM_SLICE, "--timeout", "600", "--json", timeout=1200).stdout)
    yield up
    run_cli("--host", TEAM_ENGINE, "down", TEAM_SLICE, "--json")
    assert leftovers(team_engine, TEAM_SLICE) == NOTHING, "the slice left something on the second engine"


def team_psql(container: str, db: str, sql: str) -> str:
    return subprocess.run(["docker", "-H", TEAM_ENGINE, "exec", container, "psql", "-U", "shop", "-d", db, "-tAc",
                           sql], capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def container_of(status: dict, service: str) -> str:
    return next(s["container"] for s in [*status["services"], *status.get("proxies", [])] if s["name"] == service)


def test_the_baseline_serves_on_the_advertised_address_and_says_so(team_baseline):
    served = team_baseline["served"]
    assert team_baseline["ok"] and team_baseline["healthy"]
    assert served["engine"] == TEAM_ENGINE and served["advertise"] == TEAM_ADDRESS and served["started"]
    assert set(served["services"]) == {s["name"] for s in team_baseline["services"]}
    for service, ports in served["services"].items():
        for address in ports.values():
            assert address.startswith(f"{TEAM_ADDRESS}:"), (service, address)
    # reachable from this host (another host, as far as the second engine is concerned)
    code, _ = http("GET", f"http://{served['services']['catalog']['8084']}/health", timeout=10)
    assert code == 200


def test_plan_names_the_baseline_each_forwarded_service_comes_from(team_baseline):
    plan = json.loads(run_cli("plan", "orders", "--stack", "shop", "--baseline-engine", TEAM_ENGINE,
                              "--json").stdout)
    forwarded = {f["name"]: f for f in plan["forwarded"]}
    assert set(forwarded) == {"catalog", "fraud", "users"}
    for name, service in forwarded.items():
        assert service["engine"] == TEAM_ENGINE and service["started"] == team_baseline["served"]["started"]
        assert service["baseline"] == "remote" and service["address"].startswith(f"{TEAM_ADDRESS}:"), name
    text = run_cli("plan", "orders", "--stack", "shop", "--baseline-engine", TEAM_ENGINE).stdout
    assert f"baseline on {TEAM_ENGINE}, started {team_baseline['served']['started']}" in " ".join(text.split())


def test_an_orders_slice_here_forwards_to_the_baseline_there(team_baseline, team_engine, local_slice):
    status = local_slice
    assert status["healthy"]
    rid = "rm-remote-rid-1"
    gateway = next(s for s in status["services"] if s["name"] == "gateway")["endpoints"][0]["host"]
    code, order = http("POST", f"http://{gateway}/orders",
                       {"user_id": "u-1", "items": [{"sku": "SKU-0002", "qty": 2}]}, {"X-Request-Id": rid})
    assert code == 201, order
    # the forwarded calls reached the second engine's catalog and users
    for forwarded in ("catalog", "users"):
        logs = team_engine.container_logs(container_of(team_baseline, forwarded))
        assert rid in logs, f"the team box's {forwarded} did not see {rid}"
    # the order is in the slice's own orders-db, not in the team box's
    assert team_psql(container_of(team_baseline, "orders-db"), "orders",
                     f"select count(*) from orders where id = '{order['id']}'") == "0"
    slice_db = container_of(status, "orders-db")
    assert subprocess.run(["docker", "exec", slice_db, "psql", "-U", "shop", "-d", "orders", "-tAc",
                           f"select count(*) from orders where id = '{order['id']}'"], capture_output=True,
                          text=True, check=True).stdout.strip() == "1"
    # the link proxies' control API refuses requests without the slice's token
    for proxy in status["proxies"]:
        assert http("GET", f"http://{proxy['endpoints'][0]['host']}/proxies")[0] == 401
    assert json.loads(run_cli("fault", "ls", "--slice", SLICE, "--json").stdout)["ok"]


def test_a_slice_on_the_team_box_answers_from_here(team_slice):
    status = team_slice["slice"]
    assert status["healthy"] and team_slice["engine"] == TEAM_ENGINE
    for service in [*status["services"], *status["proxies"]]:
        for endpoint in service["endpoints"]:
            assert endpoint["host"].startswith(f"{TEAM_ADDRESS}:"), (service["name"], endpoint)
    gateway = next(s for s in status["services"] if s["name"] == "gateway")["endpoints"][0]["host"]
    assert http("GET", f"http://{gateway}/health", timeout=10)[0] == 200
    code, order = http("POST", f"http://{gateway}/orders", {"user_id": "u-1", "items": [{"sku": "SKU-0002", "qty": 1}]},
                       {"X-Request-Id": "rm-team-rid-1"})
    assert code == 201, order
    # every command works from here against the slice there
    on_team = ("--host", TEAM_ENGINE, "--advertise", TEAM_ADDRESS)
    assert json.loads(run_cli(*on_team, "status", TEAM_SLICE, "--json").stdout)["healthy"]
    logs = json.loads(run_cli(*on_team, "logs", "orders", "--slice", TEAM_SLICE, "--json").stdout)["lines"]
    assert any("rm-team-rid-1" in line["line"] for line in logs)
    added = run_cli(*on_team, "fault", "add", "payments", "latency", "latency=50", "--slice", TEAM_SLICE,
                    "--json", check=False)
    assert added.returncode == 0, added.stdout + added.stderr
    assert json.loads(run_cli(*on_team, "fault", "clear", "--slice", TEAM_SLICE, "--json").stdout)["ok"]
    assert json.loads(run_cli(*on_team, "reset", "orders-db", "--slice", TEAM_SLICE, "--json").stdout)["ok"]
    # its control API, published beyond loopback, wants the slice's token
    proxy = status["proxies"][0]["endpoints"][0]["host"]
    assert http("GET", f"http://{proxy}/proxies")[0] == 401


def test_ls_lists_the_slices_of_both_engines_and_reports_a_silent_one(local_slice, team_slice):
    engines = {"STACKLET_ENGINES": f"default,{TEAM_ENGINE}={TEAM_ADDRESS},{SILENT_ENGINE}"}
    listing = json.loads(run_cli("ls", "--json", env=engines, timeout=120).stdout)
    where = {s["name"]: s["engine"] for s in listing["slices"]}
    assert where[SLICE] == "default" and where[TEAM_SLICE] == TEAM_ENGINE
    reports = {e["engine"]: e for e in listing["engines"]}
    assert reports["default"]["ok"] and reports[TEAM_ENGINE]["ok"] and not reports[SILENT_ENGINE]["ok"]
    assert SILENT_ENGINE in reports[SILENT_ENGINE]["error"]
    text = run_cli("ls", env=engines, timeout=120)
    assert TEAM_SLICE in text.stdout and TEAM_ENGINE in " ".join(text.stdout.split())
    assert f"engine {SILENT_ENGINE} does not answer" in " ".join(text.stderr.split())


def test_a_stopped_baseline_service_is_named_with_its_host(local_slice, team_baseline, team_engine):
    catalog = container_of(team_baseline, "catalog")
    subprocess.run(["docker", "-H", TEAM_ENGINE, "stop", "-t", "1", catalog], check=True, capture_output=True,
                   timeout=60)
    try:
        result = run_cli("check", SLICE, "--json", check=False, timeout=300)
        verdict = json.loads(result.stdout)
        assert result.returncode == 1 and verdict["verdict"] == "failed"
        assert [(u["service"], u["engine"], u["host"]) for u in verdict["unanswered"]] == [
            ("catalog", TEAM_ENGINE, TEAM_ADDRESS)]
        assert verdict["failures"][0]["kind"] == "baseline"
        text = " ".join(run_cli("check", SLICE, check=False, timeout=300).stdout.split())
        assert f"the baseline on {TEAM_ENGINE} (host {TEAM_ADDRESS}) does not answer" in text
        # and a new slice forwarding there fails fast, naming the engine and the service
        started = time.monotonic()
        up = run_cli("up", "orders", "--stack", "shop", "--baseline-engine", TEAM_ENGINE, "--name", "rm-remote-late",
                     "--json", check=False, timeout=120)
        error = json.loads(up.stdout)
        assert up.returncode == 2 and error["error"] == "EngineUnavailable", up.stdout
        assert TEAM_ENGINE in error["message"] and "catalog at" in error["message"]
        assert time.monotonic() - started < 60 and not driver_has_slice("rm-remote-late")
    finally:
        subprocess.run(["docker", "-H", TEAM_ENGINE, "start", catalog], check=True, capture_output=True, timeout=60)


def test_up_fails_fast_naming_an_engine_that_does_not_answer(team_engine):
    started = time.monotonic()
    result = run_cli("up", "orders", "--stack", "shop", "--baseline-engine", SILENT_ENGINE, "--name",
                     "rm-remote-silent", "--json", check=False, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    error = json.loads(result.stdout)
    assert not error["ok"] and error["error"] == "EngineUnavailable" and SILENT_ENGINE in error["message"]
    assert time.monotonic() - started < 60
    assert not driver_has_slice("rm-remote-silent")


def driver_has_slice(name: str) -> bool:
    return bool(Driver().containers({Label.SLICE: name}))


def test_the_team_box_engine_stopped_mid_run_is_named_in_the_verdict(local_slice, team_slice, team_baseline):
    """Last in this module: the whole second engine stops, its containers with it. The slice here names
    that engine and host in its verdict and `ls` reports the engine; then the engine is started again
    so that the fixtures remove what they made (its containers are left stopped by the restart)."""
    pid = int(TEAM_PIDFILE.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.5)
    assert not Path(f"/proc/{pid}").exists(), "the second engine did not stop"
    try:
        result = run_cli("check", SLICE, "--json", check=False, timeout=300)
        verdict = json.loads(result.stdout)
        assert result.returncode == 1 and verdict["verdict"] == "failed", result.stdout[-2000:]
        unanswered = verdict["unanswered"]
        assert "catalog" in {u["service"] for u in unanswered}
        assert {(u["engine"], u["host"]) for u in unanswered} == {(TEAM_ENGINE, TEAM_ADDRESS)}
        assert verdict["failures"][0]["kind"] == "baseline"
        engines = {"STACKLET_ENGINES": f"default,{TEAM_ENGINE}={TEAM_ADDRESS}"}
        listing = json.loads(run_cli("ls", "--json", env=engines, timeout=120).stdout)
        reports = {e["engine"]: e for e in listing["engines"]}
        assert reports["default"]["ok"] and not reports[TEAM_ENGINE]["ok"]
        assert SLICE in {s["name"] for s in listing["slices"]}
        status = run_cli("--host", TEAM_ENGINE, "status", TEAM_SLICE, "--json", check=False, timeout=120)
        assert status.returncode == 2 and json.loads(status.stdout)["error"] == "EngineUnavailable", status.stdout
    finally:
        started = teambox("up", check=False)
        assert started.returncode == 0, f"scripts/teambox.sh up failed:\n{started.stdout}\n{started.stderr}"
