"""What the link proxy tests drive: the server in a subprocess, TCP servers and clients on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import requests

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class LinkProxyProcess:
    """``python -m stacklet.linkproxy`` on a free port, stopped with SIGTERM."""

    def __init__(self, *args: str, log_dir: Path, ready: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = log_dir / f"linkproxy-{self.port}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stacklet.linkproxy", "--port", str(self.port), *args],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        self.session = requests.Session()
        if ready:
            self.wait_ready()

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"link proxy exited {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/version", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.02)
        raise RuntimeError(f"link proxy API not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode

    # -- API ---------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url + path, **kwargs)

    def create_proxy(self, name: str, upstream: str, listen: str = f"{LOOPBACK}:0", **fields) -> dict:
        response = self.request("POST", "/proxies", json={"name": name, "upstream": upstream, "listen": listen, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def proxy_port(self, name: str) -> int:
        return int(self.request("GET", f"/proxies/{name}").json()["listen"].rsplit(":", 1)[1])

    def add_toxic(self, proxy: str, **toxic) -> dict:
        response = self.request("POST", f"/proxies/{proxy}/toxics", json=toxic)
        assert response.status_code == 200, response.text
        return response.json()

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        response = self.request("DELETE", f"/proxies/{proxy}/toxics/{toxic}")
        assert response.status_code == 204, response.text

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of /metrics whose labels include ``labels``."""
        text = self.request("GET", "/metrics").text
        for line in text.splitlines():
            match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
            if not match or match.group(1) != name:
                continue
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2)))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(match.group(3))
        raise KeyError(f"no sample {name} {labels} in /metrics:\n{text}")

    def requests_of(self, proxy: str, **query) -> dict:
        """GET /proxies/{proxy}/requests: the proxy's counters and HTTP request records."""
        response = self.request("GET", f"/proxies/{proxy}/requests", params=query)
        assert response.status_code == 200, response.text
        return response.json()

    def recorded(self, proxy: str, count: int) -> list[dict]:
        """The proxy's request records, once there are at least ``count`` (the records come in
        when each response head has passed the proxy, a moment after the client has it)."""
        assert wait_until(lambda: len(self.requests_of(proxy)["requests"]) >= count), self.requests_of(proxy)
        return self.requests_of(proxy)["requests"]

    def clean(self) -> None:
        """Delete every proxy (between tests)."""
        for name in self.request("GET", "/proxies").json():
            self.request("DELETE", f"/proxies/{name}")


class TcpServer:
    """A threaded TCP server on loopback: ``handler(conn)`` runs in a thread per connection."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.listener = socket.create_server((LOOPBACK, 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.address = f"{LOOPBACK}:{self.port}"
        self.accepted = 0
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.handler(conn)
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self.listener.close()


def echo_handler(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def recv_until_closed(sock: socket.socket, limit: int = 1 << 24) -> bytes:
    data = bytearray()
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def echo_round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds to send ``payload`` and read it back."""
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - start


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def eventually_within(measure: Callable[[], float], low: float, high: float, attempts: int = 5) -> float:
    """Run a timing measurement until it lands in [low, high].

    On a shared machine a measurement only ever comes out slower than the truth (the process
    was not scheduled), never faster: a value below ``low`` fails at once, a value above
    ``high`` is measured again, up to ``attempts`` times.
    """
    values = []
    for _ in range(attempts):
        value = measure()
        values.append(value)
        if value < low:
            raise AssertionError(f"{value:.4f} s is below {low} s: faster than the toxic allows ({values})")
        if value <= high:
            return value
    raise AssertionError(f"every attempt above {high} s: {values}")
