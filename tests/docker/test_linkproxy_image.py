"""The link proxy image: built from its own directory, started with a config, driven with toxiproxy-python."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
CONTEXT = REPO / "src" / "stacklet" / "linkproxy"
TAG = "stacklet/linkproxy:test"


def _require_docker() -> None:
    problem = None
    if shutil.which("docker") is None:
        problem = "no docker CLI"
    elif subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        problem = "the Docker engine does not answer"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Docker tests must run in CI: {problem}")
        pytest.skip(problem)


def _docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:2])} failed:\n{result.stderr}")
    return result.stdout.strip()


def _published(container: str, port: int) -> int:
    return int(_docker("port", container, f"{port}/tcp").splitlines()[0].rsplit(":", 1)[1])


def _http_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def _wait_for_api(port: int, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if _http_get(port, "/version").startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the link proxy API did not answer on port {port} within {deadline_s} s")


def test_image_builds_starts_with_a_config_and_speaks_the_api():
    _require_docker()
    _docker("build", "-t", TAG, str(CONTEXT), timeout=900)
    name = f"stacklet-linkproxy-test-{uuid.uuid4().hex[:8]}"
    # A proxy in front of the server's own API: an upstream that exists inside the container.
    config = [{"name": "api_loop", "listen": "0.0.0.0:9000", "upstream": "127.0.0.1:8474"}]
    _docker("run", "-d", "--name", name, "-p", "127.0.0.1::8474", "-p", "127.0.0.1::9000",
            TAG, "--config-json", json.dumps(config))
    saved = APIConsumer.host, APIConsumer.port
    try:
        api_port = _published(name, 8474)
        proxy_port = _published(name, 9000)
        _wait_for_api(api_port)

        client = Toxiproxy()
        client.update_api_consumer("127.0.0.1", api_port)
        assert client.running()
        proxy = client.get_proxy("api_loop")
        assert proxy is not None and proxy.enabled and proxy.listen == "0.0.0.0:9000"

        assert _http_get(proxy_port, "/version").startswith(b"HTTP/1.1 200")  # bytes flow through it
        proxy.add_toxic(type="latency", attributes={"latency": 200})
        start = time.perf_counter()
        assert _http_get(proxy_port, "/version").startswith(b"HTTP/1.1 200")
        assert time.perf_counter() - start >= 0.2
        assert list(proxy.toxics()) == ["latency_downstream"]
        client.reset()
        assert proxy.toxics() == {}

        created = client.create(upstream="127.0.0.1:8474", name="second", listen="0.0.0.0:9001")
        assert created.listen == "0.0.0.0:9001"
        assert sorted(client.proxies()) == ["api_loop", "second"]

        probe = subprocess.run(["docker", "exec", name, "python3", "-m", "stacklet.linkproxy.probe"],
                               capture_output=True, timeout=30)
        assert probe.returncode == 0
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=30).stderr
        assert "started api=0.0.0.0:8474" in logs and "proxy created name=api_loop" in logs

        stop_start = time.perf_counter()
        _docker("stop", "-t", "10", name)
        assert time.perf_counter() - stop_start < 8  # SIGTERM is handled, no 10 s kill wait
    finally:
        APIConsumer.host, APIConsumer.port = saved
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
