"""Hostile input to the API: refused with a 400 naming the field, with nothing created or started.

After every refusal the proxy list and /metrics still answer, and a live link still passes data.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from .support import connect, echo_round_trip, free_port, recv_until_closed, wait_until

BAD_NAMES = ["sur\ud800", "a/b", "line\nbreak", "tab\there", "bell\x07", "del\x7f", "x" * 129, "zero\u200bwidth"]


@pytest.fixture
def still_sound(server, echo_server):
    """After the test: the list and /metrics answer, a live link passes data, nothing leaked."""
    yield
    assert server.request("GET", "/proxies").status_code == 200
    assert server.request("GET", "/metrics").status_code == 200
    server.create_proxy("canary", echo_server.address)
    with connect(server.proxy_port("canary")) as sock:
        echo_round_trip(sock, b"still alive")
    assert "Traceback" not in server.log() and "Unhandled exception" not in server.log()


def _error(response) -> str:
    body = response.json()
    assert body["status"] == response.status_code
    return body["error"]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_proxy_names_are_400_and_create_nothing(server, echo_server, still_sound, name):
    port = free_port()
    body = {"name": name, "upstream": echo_server.address, "listen": f"127.0.0.1:{port}"}
    for path, payload in (("/proxies", body), ("/populate", [body])):
        response = server.request("POST", path, json=payload)
        assert response.status_code == 400, response.text
        assert "'name'" in _error(response)
        assert server.request("GET", "/proxies").json() == {}
        assert _port_is_free(port)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_toxic_names_are_400_and_add_nothing(server, echo_proxy, still_sound, name):
    response = server.request("POST", "/proxies/echo/toxics", json={"name": name, "type": "latency"})
    assert response.status_code == 400, response.text
    assert "'name'" in _error(response)
    assert server.request("GET", "/proxies/echo/toxics").json() == []


@pytest.mark.parametrize("field", ["listen", "upstream"])
@pytest.mark.parametrize("value", ["127.0.0.1:\ud800", "a\nb:1", "host:1 extra", "h" * 300 + ":1"])
def test_bad_addresses_are_400(server, echo_server, still_sound, field, value):
    body = {"name": "addr", "upstream": echo_server.address, "listen": "127.0.0.1:0", field: value}
    response = server.request("POST", "/proxies", json=body)
    assert response.status_code == 400, response.text
    assert f"'{field}'" in _error(response)
    assert server.request("GET", "/proxies").json() == {}


def test_non_ascii_digits_are_not_a_port(server, echo_server, still_sound):
    response = server.request("POST", "/proxies", json={
        "name": "arabic", "upstream": echo_server.address, "listen": "127.0.0.1:\u0663"})
    assert response.status_code == 500 and "invalid port" in _error(response)
    assert server.request("GET", "/proxies").json() == {}
    server.create_proxy("arabic", "127.0.0.1:\u0663")
    with connect(server.proxy_port("arabic")) as sock:
        assert recv_until_closed(sock) == b""  # the upstream is not port 3: the dial fails
    assert wait_until(lambda: server.metric("linkproxy_dial_failures_total", proxy="arabic") == 1)


@pytest.mark.parametrize("path", ["/proxies", "/populate", "/proxies/echo", "/proxies/echo/toxics"])
def test_deep_nesting_is_400(server, echo_proxy, still_sound, path):
    for depth in (33, 100_000):
        response = server.request("POST", path, data=b"[" * depth + b"]" * depth)
        assert response.status_code == 400, response.text
        assert "nested deeper than 32 levels" in response.json()["error"]
    assert sorted(server.request("GET", "/proxies").json()) == ["echo"]


def test_nesting_inside_strings_is_not_counted(server, echo_proxy, still_sound):
    response = server.request("POST", "/proxies/echo/toxics", json={"name": "[" * 100, "type": "noop"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("head", [
    b"POST /proxies HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /proxies HTTP/1.1\r\nContent-Length: \xd9\xa3\r\n\r\n",
    b"POST /proxies HTTP/1.1\r\nContent-Length: \xc2\xb2\r\n\r\n",
    b"POST /proxies HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
    b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x10\r\n",
    b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n",
])
def test_bad_framing_gets_a_400_answer(server, still_sound, head):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head)
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 400 "), head


def test_a_proxy_cannot_dial_its_own_listen_address(server, echo_server, still_sound):
    port = free_port()
    for upstream in (f"127.0.0.1:{port}", f"localhost:{port}"):
        for listen in (f"127.0.0.1:{port}", f"0.0.0.0:{port}"):
            body = {"name": "self", "listen": listen, "upstream": upstream}
            response = server.request("POST", "/proxies", json=body)
            assert response.status_code == 400 and "'upstream'" in _error(response), response.text
            assert server.request("POST", "/populate", json=[body]).status_code == 400
            assert server.request("GET", "/proxies").json() == {}
            assert _port_is_free(port)
    listen = server.create_proxy("moved", echo_server.address)["listen"]
    response = server.request("PATCH", "/proxies/moved", json={"upstream": listen})
    assert response.status_code == 400 and "'upstream'" in _error(response)
    assert server.request("GET", "/proxies/moved").json()["upstream"] == echo_server.address


def _open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_loop_through_two_proxies_is_cut_at_a_few_hops(server, echo_server, still_sound):
    first = server.create_proxy("first", echo_server.address)["listen"]
    second = server.create_proxy("second", first)["listen"]
    assert server.request("PATCH", "/proxies/first", json={"upstream": second}).status_code == 200
    before = _open_descriptors(server.process.pid)
    started = time.monotonic()
    with connect(server.proxy_port("first")) as sock:
        sock.sendall(b"hello")
        assert recv_until_closed(sock) == b""
    assert time.monotonic() - started < 5
    assert wait_until(lambda: server.metric("linkproxy_connections", proxy="first") == 0
                      and server.metric("linkproxy_connections", proxy="second") == 0)
    failures = (server.metric("linkproxy_dial_failures_total", proxy="first")
                + server.metric("linkproxy_dial_failures_total", proxy="second"))
    assert failures == 1
    assert server.metric("linkproxy_connections_total", proxy="first") <= 6
    assert _open_descriptors(server.process.pid) <= before + 4
    assert "connection loop" in server.log()
