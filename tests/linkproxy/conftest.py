"""Fixtures of the link proxy tests: one server process for the session, echo servers on loopback."""

from __future__ import annotations

import pytest
from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy

from .http_upstream import HttpUpstream
from .support import LinkProxyProcess, TcpServer, echo_handler


@pytest.fixture(scope="session")
def linkproxy_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("linkproxy")


@pytest.fixture(scope="session")
def server_process(linkproxy_logs):
    process = LinkProxyProcess(log_dir=linkproxy_logs)
    yield process
    process.stop()


@pytest.fixture
def server(server_process):
    """The session's link proxy, with no proxy before and after the test."""
    server_process.clean()
    yield server_process
    server_process.clean()


@pytest.fixture
def start_server(linkproxy_logs):
    """Start extra link proxy processes with given arguments; all stopped after the test."""
    started = []

    def start(*args: str, ready: bool = True) -> LinkProxyProcess:
        process = LinkProxyProcess(*args, log_dir=linkproxy_logs, ready=ready)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def echo_server():
    server = TcpServer(echo_handler)
    yield server
    server.close()


@pytest.fixture
def echo_proxy(server, echo_server) -> int:
    """A proxy named "echo" in front of the echo server; returns its port."""
    server.create_proxy("echo", echo_server.address)
    return server.proxy_port("echo")


@pytest.fixture
def toxiproxy(server) -> Toxiproxy:
    """The toxiproxy-python client, pointed at the session's server."""
    saved = APIConsumer.host, APIConsumer.port
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", server.port)
    yield client
    APIConsumer.host, APIConsumer.port = saved


@pytest.fixture(scope="session")
def http_upstream():
    """A scripted HTTP/1.1 server on loopback (see http_upstream.py)."""
    upstream = HttpUpstream()
    yield upstream
    upstream.close()


@pytest.fixture
def web(server, http_upstream) -> str:
    """A proxy "web" in front of the HTTP upstream (protocol auto); returns its listen address."""
    http_upstream.seen.clear()
    return server.create_proxy("web", http_upstream.address)["listen"]
