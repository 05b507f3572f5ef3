"""stacklet run from inside a container that has the Docker socket mounted, as a coding agent runs it.

The container (a plain Debian image with Python 3.11) gets the socket, the docker CLI and Compose
plugin, this repository at the same path as on the host (build contexts in the generated Compose
file are absolute) and the host's site-packages, read-only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from stacklet.planning.plan import make_plan
from stacklet.config.stack import load_stack

from .conftest import NOTHING, REPO, leftovers

IMAGE_DIR = Path(__file__).parent / "incontainer"
SLICE = "ic-orders"
TINY = REPO / "tests" / "docker" / "stacks" / "tiny"
SOCKET = "/var/run/docker.sock"
COMPOSE_PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins",
                       "/usr/lib/docker/cli-plugins")


def docker(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def compose_plugin() -> str:
    """The Compose v2 plugin binary of the host's docker CLI."""
    info = json.loads(docker("info", "--format", "{{json .ClientInfo.Plugins}}").stdout or "[]")
    paths = [p.get("Path") for p in info if p.get("Name") == "compose"]
    paths += [f"{d}/docker-compose" for d in COMPOSE_PLUGIN_DIRS]
    found = next((p for p in paths if p and Path(p).is_file()), None)
    assert found, "the docker compose v2 plugin is needed (scripts/bootstrap.sh installs it)"
    return found


@pytest.fixture(scope="session")
def agent_image(driver) -> str:
    """The test image, tagged by the hash of its Dockerfile; built once and reused."""
    digest = hashlib.sha256((IMAGE_DIR / "Dockerfile").read_bytes()).hexdigest()[:12]
    tag = f"stacklet-test/in-container:{digest}"
    if not driver.image_exists(tag):
        driver.build_image(IMAGE_DIR, tag)
    version = docker("run", "--rm", tag, "python3", "-c", "import sys; print(*sys.version_info[:2])").stdout.split()
    assert tuple(map(int, version)) == sys.version_info[:2], (
        f"the image's Python {'.'.join(version)} cannot load this venv's compiled wheels "
        f"(built for {sys.version_info.major}.{sys.version_info.minor})")
    return tag


@pytest.fixture
def agent(agent_image, tmp_path):
    """A running container like an agent's: the socket, the CLI, the repository at the same path."""
    site = sysconfig.get_paths()["purelib"]
    name = f"ic-agent-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "stacklet-home"
    home.mkdir()
    docker("run", "-d", "--name", name, "--label", "dev.stacklet.test=in-container",
           "-v", f"{SOCKET}:{SOCKET}", "-v", f"{REPO}:{REPO}", "-v", f"{home}:{home}", "-v", f"{site}:{site}:ro",
           "-v", f"{shutil.which('docker')}:/usr/local/bin/docker:ro",
           "-v", f"{compose_plugin()}:/usr/local/lib/docker/cli-plugins/docker-compose:ro",
           "-e", f"PYTHONPATH={site}:{REPO / 'src'}", "-e", f"STACKLET_HOME={home}", "-w", str(REPO),
           agent_image, "sleep", "900")
    yield name
    docker("rm", "-f", name, check=False)
    assert docker("ps", "-a", "-q", "--filter", f"name=^{name}$").stdout.strip() == ""


def inside(container: str, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, timeout=timeout)


def stacklet_json(container: str, *args: str, ok: tuple[int, ...] = (0,)) -> dict:
    result = inside(container, "python3", "-m", "stacklet", *args, "--json")
    assert result.returncode in ok, f"stacklet {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def get_inside(container: str, address: str, path: str) -> int:
    code = ("import sys, urllib.request; "
            f"print(urllib.request.urlopen('http://{address}{path}', timeout=10).status)")
    result = inside(container, "python3", "-c", code, timeout=60)
    assert result.returncode == 0, f"GET http://{address}{path} from inside failed: {result.stderr[-1500:]}"
    return int(result.stdout)


def endpoint(slice_json: dict, service: str) -> dict:
    return next(s for s in slice_json["services"] if s["name"] == service)["endpoints"][0]


def test_up_check_down_from_inside_a_container(shop_baseline, engine, driver, agent):
    network = f"stacklet-{SLICE}"
    try:
        slice_json = stacklet_json(agent, "up", "orders", "--stack", "shop", "--name", SLICE)["slice"]
        assert slice_json["in_container"] is True and slice_json["attached_as"] == agent
        for svc in slice_json["services"]:
            for e in svc["endpoints"]:
                assert e["address"] == e["network"] == f"{svc['name']}:{e['port']}"
                assert e["host"].startswith("127.0.0.1:")
        assert endpoint(slice_json, "orders")["address"] == "orders:8081"
        assert get_inside(agent, endpoint(slice_json, "gateway")["address"], "/health") == 200
        assert get_inside(agent, "orders:8081", "/health") == 200
        assert agent in driver.inspect([agent])[0].name and network in driver.inspect([agent])[0].networks
        assert not any(n.startswith("stacklet-baseline-") for n in driver.inspect([agent])[0].networks)

        # the host's view of the same slice: host addresses
        on_host = engine.status(SLICE)
        assert not on_host.in_container and on_host.attached_as is None
        assert on_host.service("orders").endpoints[0].address.startswith("127.0.0.1:")

        verdict = stacklet_json(agent, "check", SLICE, ok=(0, 1))
        assert "verdict" in verdict, verdict

        stacklet_json(agent, "down", SLICE)
        assert leftovers(driver, SLICE) == NOTHING
        assert network not in driver.inspect([agent])[0].networks
    finally:
        if driver.containers({"dev.stacklet.slice": SLICE}) or driver.networks({"dev.stacklet.slice": SLICE}):
            engine.down(SLICE)
    assert leftovers(driver, SLICE) == NOTHING


def test_a_slice_started_on_the_host_is_checked_from_a_container_and_removed_from_the_host(engine, driver, agent):
    stack = load_stack(TINY)
    engine.up(make_plan(stack, ["api"]), stack, "ic-tiny")
    try:
        status_json = stacklet_json(agent, "status", "ic-tiny")  # attaches the container
        assert status_json["in_container"] is True and status_json["attached_as"] == agent
        assert endpoint(status_json, "web")["address"] == "web:9000"
        assert get_inside(agent, "web:9000", "/") == 200
        assert "stacklet-ic-tiny" in driver.inspect([agent])[0].networks
    finally:
        engine.down("ic-tiny")  # from the host: the attached container does not keep the network alive
    assert leftovers(driver, "ic-tiny") == NOTHING
    assert "stacklet-ic-tiny" not in driver.inspect([agent])[0].networks
