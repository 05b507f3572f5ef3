"""Slices of small stacks on real Docker: boot, JSON output, failures, Ctrl-C, other endpoints."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from stacklet.docker.driver import Driver
from stacklet.errors import BootError
from stacklet.labels import Label
from stacklet.planning.plan import make_plan
from stacklet.config.stack import load_stack

from .conftest import NOTHING, REPO, STACKLET, TINY, host_endpoint, http, leftovers, run_cli

BROKEN = REPO / "tests" / "docker" / "stacks" / "broken"


def test_tiny_slice_links_through_the_proxy(engine, driver):
    stack = load_stack(TINY)
    status = engine.up(make_plan(stack, ["api"]), stack, "t-tiny")
    try:
        assert {s.name: s.role for s in status.services} == {"api": "changed", "web": "caller", "store": "callee"}
        code, body = http("GET", f"http://{host_endpoint(status, 'web')}/")
        assert code == 200
        assert body["calls"]["http://api:9001/"]["calls"]["http://store:9002/"]["name"] == "store"
        # the names api and store belong to the link proxy, which forwards to the renamed containers
        proxy = status.proxies[0]
        assert proxy.role == "linkproxy" and proxy.endpoints[0].port == 8474
        from stacklet.docker.linkproxy_client import LinkProxyControl
        token = engine.driver.containers({Label.SLICE: status.name, Label.SERVICE: proxy.name})[0].labels[Label.TOKEN]
        control = LinkProxyControl(proxy.name, "127.0.0.1", int(proxy.endpoints[0].host.split(":")[1]), token)
        # the control API needs the slice's bearer token
        assert http("GET", f"http://{proxy.endpoints[0].host}/proxies")[0] == 401
        assert http("GET", f"http://{proxy.endpoints[0].host}/proxies",
                    headers={"Authorization": "Bearer wrong"})[0] == 401
        routes = control.proxies()
        assert {n: p["upstream"] for n, p in routes.items()} == {"api": "api.origin:9001", "store": "store.origin:9002"}
        # published ports are on loopback only
        for svc in status.services:
            for endpoint in svc.endpoints:
                assert endpoint.host.startswith("127.0.0.1:")
    finally:
        engine.down("t-tiny")
    assert leftovers(driver, "t-tiny") == NOTHING


def test_up_json_prints_one_document_and_down_cleans(driver, workdir):
    env = {"STACKLET_HOME": str(workdir)}
    result = run_cli("up", "web", "--stack", str(TINY), "--name", "t-json", "--json", env=env)
    try:
        document = json.loads(result.stdout)
        assert document["ok"] is True
        assert document["plan"]["changed"] == ["web"]
        assert {s["name"] for s in document["slice"]["services"]} == {"web", "api", "store"}
        status = json.loads(run_cli("status", "t-json", "--json", env=env).stdout)
        assert status["healthy"] is True
        text = run_cli("status", "t-json", env=env).stdout
        assert "web" in text and "127.0.0.1:" in text
    finally:
        run_cli("down", "t-json", env=env)
    assert leftovers(driver, "t-json") == NOTHING


def test_a_service_that_never_gets_healthy_stops_the_boot_and_leaves_nothing(engine, driver):
    stack = load_stack(BROKEN)
    with pytest.raises(BootError) as failure:
        engine.up(make_plan(stack, ["api"]), stack, "t-broken", timeout_s=60)
    error = failure.value
    assert error.service == "api"
    assert "unhealthy" in error.message
    assert "connection refused on 9999" in (error.health or "")
    assert error.logs is not None
    assert leftovers(driver, "t-broken") == NOTHING


def test_failure_in_the_cli_names_the_service_and_exits_2(driver, workdir):
    result = run_cli("up", "api", "--stack", str(BROKEN), "--name", "t-broken-cli", "--timeout", "60",
                     env={"STACKLET_HOME": str(workdir)}, check=False)
    assert result.returncode == 2
    assert "service api is unhealthy" in result.stderr
    assert "last health check: probe: connection refused on 9999" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert leftovers(driver, "t-broken-cli") == NOTHING


def test_keep_on_failure_keeps_the_slice(engine, driver):
    stack = load_stack(BROKEN)
    with pytest.raises(BootError):
        engine.up(make_plan(stack, ["api"]), stack, "t-kept", timeout_s=60, keep_on_failure=True)
    try:
        assert driver.containers({"dev.stacklet.slice": "t-kept"})
    finally:
        engine.down("t-kept")


def test_ctrl_c_mid_boot_cleans_up(driver, workdir):
    process = subprocess.Popen([*STACKLET, "up", "api", "--stack", str(BROKEN), "--name", "t-interrupt",
                                "--timeout", "120"], cwd=REPO, env={**os.environ, "STACKLET_HOME": str(workdir)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not driver.containers({"dev.stacklet.slice": "t-interrupt"}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert driver.containers({"dev.stacklet.slice": "t-interrupt"}), "the boot never created containers"
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "interrupted" in stderr or "error" in stderr
    assert leftovers(driver, "t-interrupt") == NOTHING


class TcpToUnixForwarder:
    """The engine's unix socket, also served on a loopback TCP port: a different Docker endpoint."""

    def __init__(self, socket_path: str = "/var/run/docker.sock"):
        self.socket_path = socket_path
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        async def handle(client_reader, client_writer):
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
            await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

        server = self.loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture()
def tcp_endpoint(driver):
    if not os.path.exists("/var/run/docker.sock"):
        pytest.fail("this test needs the engine's default unix socket to expose it on TCP")
    forwarder = TcpToUnixForwarder()
    yield f"tcp://127.0.0.1:{forwarder.port}"
    forwarder.close()


def test_docker_host_and_context_reach_another_endpoint(tcp_endpoint, workdir, driver):
    env = {"STACKLET_HOME": str(workdir), "DOCKER_HOST": tcp_endpoint}
    info = Driver(host=tcp_endpoint).engine_info()
    assert info.endpoint == tcp_endpoint
    doctor = json.loads(run_cli("doctor", "--json", env=env).stdout)
    assert next(c for c in doctor["checks"] if c["name"] == "engine")["detail"].endswith(tcp_endpoint)
    run_cli("up", "web", "--stack", str(TINY), "--name", "t-remote", env=env)
    try:
        context = f"stacklet-test-{os.getpid()}"
        subprocess.run(["docker", "context", "create", context, "--docker", f"host={tcp_endpoint}"],
                       check=True, capture_output=True)
        try:
            listing = run_cli("--context", context, "ls", "--json", env={"STACKLET_HOME": str(workdir)})
            assert "t-remote" in {s["name"] for s in json.loads(listing.stdout)["slices"]}
        finally:
            subprocess.run(["docker", "context", "rm", "-f", context], capture_output=True)
    finally:
        run_cli("down", "t-remote", env=env)
    assert leftovers(driver, "t-remote") == NOTHING


def test_doctor_reports_an_unreachable_engine_with_a_fix(workdir):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    result = run_cli("doctor", env={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}, check=False)
    assert result.returncode == 2
    assert "FAIL" in result.stdout and "engine" in result.stdout and "fix:" in result.stdout


def test_commands_on_an_unreachable_engine_fail_cleanly(workdir):
    result = run_cli("ls", env={"DOCKER_HOST": "tcp://127.0.0.1:9"}, check=False)
    assert result.returncode == 2
    assert "no Docker engine answers" in result.stderr and "Traceback" not in result.stderr


def test_restart_a_service_and_a_link_proxy_keeps_the_slice_working(engine, driver):
    stack = load_stack(TINY)
    status = engine.up(make_plan(stack, ["api"]), stack, "t-restart")
    try:
        before = {c.service: c.started_at for c in driver.containers({"dev.stacklet.slice": "t-restart"})}
        api = engine.restart("t-restart", "api")
        assert api.state == "running" and api.health == "healthy"
        proxy = engine.restart("t-restart", "stacklet-link-1")
        assert proxy.state == "running"
        after = {c.service: c.started_at for c in driver.containers({"dev.stacklet.slice": "t-restart"})}
        assert after["api"] != before["api"] and after["stacklet-link-1"] != before["stacklet-link-1"]
        assert after["web"] == before["web"]
        code, body = http("GET", f"http://{host_endpoint(status, 'web')}/")
        assert code == 200 and body["calls"]["http://api:9001/"]["calls"]["http://store:9002/"]["name"] == "store"
        with pytest.raises(Exception, match="no service 'nope'"):
            engine.restart("t-restart", "nope")
    finally:
        engine.down("t-restart")
    assert leftovers(driver, "t-restart") == NOTHING
