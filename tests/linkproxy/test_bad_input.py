"""Bad input gets the documented status and a message naming the field; the server keeps serving.

Toxiproxy v2.12 crashes on some of these (negative rate, average_size=0, size_variation >
average_size) or stalls (rate=0): here every one is a 400.
"""

from __future__ import annotations

import socket

import pytest

from .support import connect, echo_round_trip


@pytest.fixture
def still_serving(server, echo_server):
    """After the test, a working proxy still passes data and the API still answers."""
    yield
    server.create_proxy("canary", echo_server.address)
    with connect(server.proxy_port("canary")) as sock:
        echo_round_trip(sock, b"still alive")
    assert server.process.poll() is None


def _error(response) -> str:
    body = response.json()
    assert body["status"] == response.status_code
    return body["error"]


@pytest.mark.parametrize(
    ("toxic", "field"),
    [
        ({"type": "latency", "attributes": {"latency": -1}}, "latency"),
        ({"type": "latency", "attributes": {"jitter": -5}}, "jitter"),
        ({"type": "bandwidth", "attributes": {"rate": -1}}, "rate"),
        ({"type": "bandwidth", "attributes": {"rate": 0}}, "rate"),
        ({"type": "bandwidth"}, "rate"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, "average_size"),
        ({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 11}}, "size_variation"),
        ({"type": "slicer", "attributes": {"average_size": 10, "size_variation": -1}}, "size_variation"),
        ({"type": "slicer", "attributes": {"average_size": 10, "delay": -1}}, "delay"),
        ({"type": "slow_close", "attributes": {"delay": -1}}, "delay"),
        ({"type": "timeout", "attributes": {"timeout": -1}}, "timeout"),
        ({"type": "reset_peer", "attributes": {"timeout": -1}}, "timeout"),
        ({"type": "limit_data", "attributes": {"bytes": -1}}, "bytes"),
        ({"type": "latency", "toxicity": 1.5}, "toxicity"),
        ({"type": "latency", "toxicity": -0.1}, "toxicity"),
        ({"type": "latency", "attributes": {"latency": 10, "latnecy": 5}}, "latnecy"),
        ({"type": "noop", "attributes": {"anything": 1}}, "anything"),
        ({"type": "latency", "attributes": {"latency": "100"}}, "latency"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, "latency"),
        ({"type": "latency", "attributes": {"latency": True}}, "latency"),
        ({"type": "latency", "attributes": {"latency": 2**64}}, "latency"),
        ({"type": "latency", "attributes": [100]}, "attributes"),
        ({"type": "latency", "toxicity": "1"}, "toxicity"),
        ({"type": "latency", "name": 5}, "name"),
        ({"type": ["latency"]}, "type"),
        ({"type": "latency", "stream": 1}, "stream"),
    ],
)
def test_invalid_toxics_are_400_naming_the_field(server, echo_proxy, still_serving, toxic, field):
    response = server.request("POST", "/proxies/echo/toxics", json=toxic)
    assert response.status_code == 400, response.text
    message = _error(response)
    assert message.startswith("bad request body: ") and field in message
    assert server.request("GET", "/proxies/echo/toxics").json() == []


def test_invalid_update_is_400_and_keeps_the_toxic(server, echo_proxy, still_serving):
    server.add_toxic("echo", type="slicer", attributes={"average_size": 10, "size_variation": 5})
    for body in ({"attributes": {"average_size": 2}}, {"toxicity": 2}, {"attributes": {"delay": "x"}}, [1]):
        response = server.request("PATCH", "/proxies/echo/toxics/slicer_downstream", json=body)
        assert response.status_code == 400, body
    toxic = server.request("GET", "/proxies/echo/toxics/slicer_downstream").json()
    assert toxic["attributes"] == {"average_size": 10, "size_variation": 5, "delay": 0}


def test_toxiproxy_messages_for_stream_and_type(server, echo_proxy, still_serving):
    for stream in ("sideways", ""):
        response = server.request("POST", "/proxies/echo/toxics", json={"type": "latency", "stream": stream})
        assert response.status_code == 400
        assert _error(response) == "stream was invalid, can be either upstream or downstream"
    for toxic_type in ("Latency", "", "corrupt"):
        response = server.request("POST", "/proxies/echo/toxics", json={"type": toxic_type})
        assert (response.status_code, _error(response)) == (400, "invalid toxic type")


@pytest.mark.parametrize(
    ("path", "method"),
    [("/proxies", "POST"), ("/proxies/echo", "PATCH"), ("/proxies/echo/toxics", "POST"),
     ("/proxies/echo/toxics/noop_downstream", "PATCH")],
)
@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"NaN"])
def test_malformed_bodies_are_400(server, echo_proxy, still_serving, path, method, body):
    server.add_toxic("echo", type="noop")
    response = server.request(method, path, data=body)
    assert response.status_code == 400
    assert _error(response).startswith("bad request body: ")


def test_malformed_populate_is_400_with_null_proxies(server, still_serving):
    response = server.request("POST", "/populate", data=b"[{")
    assert response.status_code == 400
    assert response.json()["proxies"] is None and response.json()["error"].startswith("bad request body")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": "127.0.0.1:9"}, "missing required field: name"),
        ({"name": "", "upstream": "127.0.0.1:9"}, "missing required field: name"),
        ({"name": "x"}, "missing required field: upstream"),
        ({"name": "x", "upstream": 9}, "bad request body: field 'upstream' must be a string, got number"),
        ({"name": "x", "upstream": "a:1", "enabled": "yes"}, "bad request body: field 'enabled' must be a boolean, got string"),
        ([{"name": "x"}], "bad request body: expected a JSON object, got array"),
    ],
)
def test_invalid_proxies_are_400(server, still_serving, body, message):
    response = server.request("POST", "/proxies", json=body)
    assert (response.status_code, _error(response)) == (400, message)


def test_duplicate_proxy_is_409(server, echo_server, still_serving):
    server.create_proxy("dup", echo_server.address)
    response = server.request("POST", "/proxies", json={"name": "dup", "upstream": echo_server.address})
    assert (response.status_code, _error(response)) == (409, "proxy already exists")


def test_listen_failures_are_500_with_the_os_error(server, echo_server, still_serving):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        response = server.request("POST", "/proxies", json={
            "name": "busy", "upstream": echo_server.address, "listen": f"127.0.0.1:{port}"})
        assert response.status_code == 500
        assert _error(response) == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
        server.create_proxy("movable", echo_server.address)
        response = server.request("PATCH", "/proxies/movable", json={"listen": f"127.0.0.1:{port}"})
        assert response.status_code == 500 and "address already in use" in _error(response)
    assert server.request("GET", "/proxies/movable").json()["enabled"] is False
    response = server.request("POST", "/proxies", json={"name": "bad", "upstream": "x:1", "listen": "nonsense"})
    assert (response.status_code, _error(response)) == (500, "listen tcp nonsense: address nonsense: missing port in address")
    assert sorted(server.request("GET", "/proxies").json()) == ["movable"]


def test_unknown_names_are_404(server, echo_proxy, still_serving):
    assert _error(server.request("POST", "/proxies/nope/toxics", json={"type": "zzz"})) == "proxy not found"
    assert _error(server.request("DELETE", "/proxies/echo/toxics/nope")) == "toxic not found"
    assert _error(server.request("PATCH", "/proxies/echo/toxics/nope", data=b"{bad")) == "toxic not found"


def test_garbage_http_does_not_hurt_the_server(server, still_serving):
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 50 + b"\r\n\r\n",
                    b"GET\r\n\r\n", b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
                    b"POST /proxies HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(garbage)
            reply = sock.recv(200)
            assert reply.startswith(b"HTTP/1.1 4"), reply
