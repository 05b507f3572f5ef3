"""Contract tests over raw HTTP for what toxiproxy-python does not cover.

Status codes, JSON shapes and error bodies follow Toxiproxy v2.12 (shared/toxiproxy-api.md).
"""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from .support import connect, echo_round_trip, recv_until_closed, wait_until

ALL_TOXICS = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 1},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 1, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


def test_version_body_is_toxiproxy_shaped(server):
    response = server.request("GET", "/version")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.text.startswith('{"version": "2.12.0') and response.text.endswith('"}\n')


def test_proxy_index_is_an_object_with_sorted_keys(server, echo_server):
    assert server.request("GET", "/proxies").text == "{}"
    for name in ("zeta", "alpha", "mid"):
        server.create_proxy(name, echo_server.address)
    response = server.request("GET", "/proxies")
    assert list(response.json()) == ["alpha", "mid", "zeta"]


def test_created_proxy_shape_and_resolved_listen(server, echo_server):
    response = server.request("POST", "/proxies", json={
        "name": "db", "upstream": echo_server.address, "listen": "127.0.0.1:0", "ignored": "key",
    })
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["listen"] != "127.0.0.1:0" and body["listen"].startswith("127.0.0.1:")
    assert (body["upstream"], body["enabled"], body["toxics"]) == (echo_server.address, True, [])
    assert server.request("GET", "/proxies/db").json() == body


def test_disabled_proxy_echoes_unresolved_listen(server):
    body = server.create_proxy("off", "127.0.0.1:9", listen="127.0.0.1:0", enabled=False)
    assert (body["listen"], body["enabled"]) == ("127.0.0.1:0", False)


def test_patch_disable_closes_listener_and_connections(server, echo_proxy):
    sock = connect(echo_proxy)
    echo_round_trip(sock)
    response = server.request("PATCH", "/proxies/echo", json={"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    sock.settimeout(2)
    assert recv_until_closed(sock) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", echo_proxy), timeout=2)
    response = server.request("POST", "/proxies/echo", json={"enabled": True})  # POST updates too
    assert response.status_code == 200 and response.json()["enabled"] is True
    with connect(echo_proxy) as sock:
        echo_round_trip(sock)


def test_patch_listen_and_upstream_restart_the_listener(server, echo_server, echo_proxy):
    sock = connect(echo_proxy)
    echo_round_trip(sock)
    response = server.request("PATCH", "/proxies/echo", json={"listen": "127.0.0.1:0"})
    body = response.json()
    assert response.status_code == 200 and body["enabled"] is True
    new_port = int(body["listen"].rsplit(":", 1)[1])
    sock.settimeout(2)
    assert recv_until_closed(sock) == b""  # changing listen closed the connection
    with connect(new_port) as sock:
        echo_round_trip(sock)
    response = server.request("PATCH", "/proxies/echo", json={"upstream": "127.0.0.1:9"})
    assert response.json()["upstream"] == "127.0.0.1:9"


def test_delete_proxy_closes_connections(server, echo_proxy):
    sock = connect(echo_proxy)
    echo_round_trip(sock)
    response = server.request("DELETE", "/proxies/echo")
    assert (response.status_code, response.content) == (204, b"")
    sock.settimeout(2)
    assert recv_until_closed(sock) == b""
    assert server.request("GET", "/proxies/echo").status_code == 404


@pytest.mark.parametrize("toxic_type", sorted(ALL_TOXICS))
def test_toxic_json_lists_every_attribute(server, echo_proxy, toxic_type):
    attributes = {k: v for k, v in ALL_TOXICS[toxic_type].items() if v}  # zeros left out on purpose
    response = server.request("POST", "/proxies/echo/toxics", json={"type": toxic_type, "attributes": attributes})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "attributes": ALL_TOXICS[toxic_type],
        "name": f"{toxic_type}_downstream",
        "type": toxic_type,
        "stream": "downstream",
        "toxicity": 1,
    }
    assert list(response.json()) == ["attributes", "name", "type", "stream", "toxicity"]
    assert server.request("GET", f"/proxies/echo/toxics/{toxic_type}_downstream").json() == response.json()


def test_toxics_listed_upstream_first_in_insertion_order(server, echo_proxy):
    server.add_toxic("echo", type="noop", name="d1")
    server.add_toxic("echo", type="noop", name="u1", stream="upstream")
    server.add_toxic("echo", type="noop", name="d2", stream="downstream")
    server.add_toxic("echo", type="noop", name="u2", stream="UPSTREAM")
    names = [t["name"] for t in server.request("GET", "/proxies/echo/toxics").json()]
    assert names == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in server.request("GET", "/proxies/echo").json()["toxics"]] == names


def test_toxic_names_are_unique_across_streams(server, echo_proxy):
    server.add_toxic("echo", type="noop", name="same", stream="upstream")
    response = server.request("POST", "/proxies/echo/toxics", json={"type": "latency", "name": "same"})
    assert response.status_code == 409
    assert response.text == '{"error":"toxic already exists","status":409}\n'


def test_toxic_update_merges_attributes_and_keeps_toxicity(server, echo_proxy):
    server.add_toxic("echo", type="latency", toxicity=0.25, attributes={"latency": 100, "jitter": 10})
    response = server.request("PATCH", "/proxies/echo/toxics/latency_downstream",
                              json={"attributes": {"jitter": 20}, "name": "renamed", "stream": "upstream"})
    assert response.status_code == 200
    assert response.json() == {
        "attributes": {"latency": 100, "jitter": 20},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.25,
    }
    response = server.request("POST", "/proxies/echo/toxics/latency_downstream", json={"toxicity": 1.0})
    assert response.json()["toxicity"] == 1 and response.json()["attributes"]["jitter"] == 20


def test_toxic_delete(server, echo_proxy):
    server.add_toxic("echo", type="noop")
    response = server.request("DELETE", "/proxies/echo/toxics/noop_downstream")
    assert (response.status_code, response.content) == (204, b"")
    assert server.request("GET", "/proxies/echo/toxics").json() == []


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/proxies/missing", 404, "proxy not found"),
        ("PATCH", "/proxies/missing", 404, "proxy not found"),
        ("DELETE", "/proxies/missing", 404, "proxy not found"),
        ("GET", "/proxies/missing/toxics", 404, "proxy not found"),
        ("POST", "/proxies/missing/toxics", 404, "proxy not found"),
        ("GET", "/proxies/echo/toxics/missing", 404, "toxic not found"),
        ("PATCH", "/proxies/echo/toxics/missing", 404, "toxic not found"),
        ("DELETE", "/proxies/echo/toxics/missing", 404, "toxic not found"),
    ],
)
def test_not_found_error_bodies(server, echo_proxy, method, path, status, message):
    response = server.request(method, path, json={})
    assert response.status_code == status
    assert response.text == json.dumps({"error": message, "status": status}, separators=(",", ":")) + "\n"


def test_browsers_get_403(server):
    response = server.request("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/", "/nope", "/proxies/", "/proxies/a/b", "/proxies/a/toxics/b/c"])
def test_unknown_paths_get_404(server, path):
    assert server.request("GET", path).status_code == 404


@pytest.mark.parametrize(("method", "path"), [("PUT", "/proxies"), ("DELETE", "/version"), ("GET", "/reset"),
                                              ("GET", "/populate"), ("PUT", "/proxies/x/toxics/y")])
def test_wrong_methods_get_405(server, method, path):
    assert server.request(method, path).status_code == 405


def test_reset_keeps_connections_open(server, echo_proxy):
    server.add_toxic("echo", type="latency", attributes={"latency": 500})
    server.request("PATCH", "/proxies/echo", json={"enabled": True})
    sock = connect(echo_proxy)
    response = server.request("POST", "/reset")
    assert (response.status_code, response.content) == (204, b"")
    assert echo_round_trip(sock) < 0.3  # still open, latency gone
    sock.close()


def test_populate_creates_keeps_and_replaces(server, echo_server):
    response = server.request("POST", "/populate", json=[
        {"name": "keep", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
        {"name": "swap", "upstream": echo_server.address, "listen": "127.0.0.1:0", "enabled": False},
    ])
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["keep", "swap"]
    assert [p["enabled"] for p in proxies] == [True, False]
    keep = proxies[0]
    server.add_toxic("keep", type="noop")
    keep_port = int(keep["listen"].rsplit(":", 1)[1])
    sock = connect(keep_port)

    response = server.request("POST", "/populate", json=[
        {"name": "keep", "upstream": keep["upstream"], "listen": keep["listen"], "enabled": False},
        {"name": "swap", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"},
    ])
    assert response.status_code == 201
    kept, swapped = response.json()["proxies"]
    # Same listen + upstream: untouched, toxics and connections included (enabled is not applied).
    assert kept["enabled"] is True and [t["name"] for t in kept["toxics"]] == ["noop_downstream"]
    echo_round_trip(sock)
    sock.close()
    assert (swapped["upstream"], swapped["enabled"]) == ("127.0.0.1:9", True)


def test_populate_validates_every_entry_first(server, echo_server):
    response = server.request("POST", "/populate", json=[
        {"name": "ok", "upstream": echo_server.address},
        {"upstream": echo_server.address},
    ])
    assert response.status_code == 400
    assert response.json() == {"error": "missing required field: name at proxy 2", "status": 400, "proxies": None}
    response = server.request("POST", "/populate", json=[{"name": "x"}])
    assert response.json()["error"] == "missing required field: upstream at proxy 1"
    assert server.request("GET", "/proxies").json() == {}


def test_populate_stops_at_a_listen_failure_and_returns_what_was_done(server, echo_server):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        response = server.request("POST", "/populate", json=[
            {"name": "first", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
            {"name": "second", "upstream": echo_server.address, "listen": busy},
            {"name": "third", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
        ])
    body = response.json()
    assert response.status_code == 500
    assert "address already in use" in body["error"] and body["status"] == 500
    assert [p["name"] for p in body["proxies"]] == ["first"]
    assert sorted(server.request("GET", "/proxies").json()) == ["first"]


def test_populate_needs_an_array(server):
    response = server.request("POST", "/populate", json={"name": "x", "upstream": "y"})
    assert response.status_code == 400 and response.json()["error"].startswith("bad request body")


def test_metrics_count_bytes_while_data_flows(server, echo_proxy):
    labels = {"proxy": "echo", "listener": f"127.0.0.1:{echo_proxy}"}
    gauge = {"proxy": "echo"}
    with connect(echo_proxy) as sock:
        sock.sendall(b"x" * 100_000)
        recv = b""
        while len(recv) < 100_000:
            recv += sock.recv(65536)
        # The connection is still open: Toxiproxy would still show nothing here.
        assert server.metric("toxiproxy_proxy_received_bytes_total", direction="upstream", **labels) == 100_000
        assert server.metric("toxiproxy_proxy_sent_bytes_total", direction="downstream", **labels) == 100_000
        assert server.metric("linkproxy_connections", **gauge) == 1
        assert server.metric("linkproxy_links", path="fast", **gauge) == 2
        server.add_toxic("echo", type="latency", attributes={"latency": 1})
        assert server.metric("linkproxy_links", path="toxic", **gauge) == 1
        echo_round_trip(sock)
        assert server.metric("toxiproxy_proxy_sent_bytes_total", direction="downstream", **labels) == 100_004
    response = server.request("GET", "/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE toxiproxy_proxy_received_bytes_total counter" in response.text


def test_keep_alive_and_chunked_bodies(server, echo_server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/version")
    first = conn.getresponse()
    assert first.status == 200 and first.read()
    body = json.dumps({"name": "chunky", "upstream": echo_server.address}).encode()
    conn.request("POST", "/proxies", body=iter([body[:10], body[10:]]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    second = conn.getresponse()  # same connection: keep-alive
    assert second.status == 201 and json.loads(second.read())["name"] == "chunky"
    conn.close()


def test_http_10_and_connection_close(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /version HTTP/1.0\r\n\r\n")
        reply = recv_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b'"}\n')


def test_connections_count_goes_back_to_zero(server, echo_proxy):
    with connect(echo_proxy) as sock:
        echo_round_trip(sock)
    assert wait_until(lambda: server.metric("linkproxy_connections", proxy="echo") == 0)
