"""Per-link accounting: connections, bytes, failures, resets, and every HTTP request with its answer.

Real sockets on loopback: a scripted HTTP upstream, the requests library with keep-alive,
raw pipelined requests; the proxy's own view is read from /metrics and /proxies/{p}/requests.
"""

from __future__ import annotations

import socket

import pytest
import requests

from .http_upstream import read_responses
from .support import connect, echo_round_trip, free_port, recv_exactly, recv_until_closed, wait_until


def test_tcp_links_count_connections_bytes_failures_and_resets(server, echo_proxy):
    for _ in range(3):
        with connect(echo_proxy) as sock:
            echo_round_trip(sock, b"x" * 1000)
    assert wait_until(lambda: server.requests_of("echo")["stats"]["connections_active"] == 0)
    stats = server.requests_of("echo")["stats"]
    assert stats["connections_total"] == 3
    assert stats["bytes"]["upstream"]["sent"] == 3000 and stats["bytes"]["downstream"]["sent"] == 3000
    assert stats["http_connections"] == 0 and stats["requests"] == 0
    server.add_toxic("echo", type="reset_peer", attributes={"timeout": 0})
    with connect(echo_proxy) as sock:
        sock.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            recv_until_closed(sock)
    assert wait_until(lambda: server.metric("linkproxy_resets_total", proxy="echo") == 1)
    closed_port = free_port()
    server.create_proxy("nowhere", f"127.0.0.1:{closed_port}")
    with connect(server.proxy_port("nowhere")) as sock:
        assert recv_until_closed(sock) == b""
    assert wait_until(lambda: server.requests_of("nowhere")["stats"]["connect_failures"] == 1)
    assert server.metric("linkproxy_connections_total", proxy="echo") == 4


def test_kept_alive_requests_are_recorded_in_order(server, web):
    session = requests.Session()
    statuses = []
    for index, path in enumerate(["/a", "/status/404", "/status/503", "/chunked?q=secret"]):
        response = session.get(f"http://{web}{path}", headers={"X-Request-Id": f"req-{index}"}, timeout=5)
        statuses.append(response.status_code)
    session.close()
    assert statuses == [200, 404, 503, 200]
    records = server.recorded("web", 4)
    assert [(r["method"], r["path"], r["status"], r["request_id"]) for r in records] == [
        ("GET", "/a", 200, "req-0"), ("GET", "/status/404", 404, "req-1"),
        ("GET", "/status/503", 503, "req-2"), ("GET", "/chunked", 200, "req-3")]
    assert [r["seq"] for r in records] == sorted({r["seq"] for r in records})
    assert all(0 < r["duration_ms"] < 5000 and r["fault"] is None and r["start"] > 1.7e9 for r in records)
    stats = server.requests_of("web")["stats"]
    assert (stats["connections_total"], stats["http_connections"], stats["requests"]) == (1, 1, 4)
    assert stats["responses"] == {"1xx": 0, "2xx": 2, "3xx": 0, "4xx": 1, "5xx": 1}
    assert server.metric("linkproxy_http_requests_total", proxy="web") == 4
    assert server.metric("linkproxy_http_responses_total", proxy="web", **{"class": "5xx"}) == 1
    assert server.metric("linkproxy_http_responses_total", proxy="web", **{"class": "4xx"}) == 1


def test_since_and_limit_read_only_what_is_new(server, web):
    session = requests.Session()
    for index in range(5):
        session.get(f"http://{web}/n{index}", timeout=5)
    seqs = [r["seq"] for r in server.recorded("web", 5)]
    page = server.requests_of("web", since=seqs[0], limit=2)
    assert [r["seq"] for r in page["requests"]] == seqs[1:3]
    assert (page["next_since"], page["last_seq"], page["truncated"]) == (seqs[2], seqs[4], False)
    rest = server.requests_of("web", since=page["next_since"])
    assert [r["path"] for r in rest["requests"]] == ["/n3", "/n4"] and rest["next_since"] == seqs[4]
    assert server.requests_of("web", since=seqs[4])["requests"] == []
    session.get(f"http://{web}/n5", timeout=5)
    assert [r["path"] for r in server.recorded("web", 6)][-1] == "/n5"
    session.close()
    for query in ({"since": "-1"}, {"since": "x"}, {"limit": "0"}, {"since": "\u0663"}):
        response = server.request("GET", "/proxies/web/requests", params=query)
        assert response.status_code == 400 and list(query)[0] in response.json()["error"]
    assert server.request("GET", "/proxies/nope/requests").status_code == 404


def test_pipelined_requests_with_every_kind_of_framing(server, web):
    pipeline = (
        b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"POST /chunked-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;e=1\r\ndefg\r\n0\r\n\r\n"
        b"HEAD /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /length HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /continue HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /last HTTP/1.1\r\nHost: x\r\nX-Request-Id: the-last\r\n\r\n"
    )
    methods = ["POST", "POST", "HEAD", "HEAD", "GET", "GET", "GET", "GET", "GET"]
    with connect(int(web.rsplit(":", 1)[1])) as sock:
        for index in range(0, len(pipeline), 7):  # in small pieces: heads and bodies split anywhere
            sock.sendall(pipeline[index : index + 7])
        answers = read_responses(sock, methods)
    assert [status for status, _ in answers] == [200, 200, 200, 200, 204, 304, 200, 200, 200]
    assert answers[0][1] == b"POST /post 5" and answers[1][1] == b"POST /chunked-body 7"
    assert answers[7][1] == b"GET /chunked 0" and answers[8][1] == b"GET /last 0"
    records = server.recorded("web", 9)
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("POST", "/post", 200), ("POST", "/chunked-body", 200), ("HEAD", "/chunked", 200),
        ("HEAD", "/length", 200), ("GET", "/status/204", 204), ("GET", "/status/304", 304),
        ("GET", "/continue", 200), ("GET", "/chunked", 200), ("GET", "/last", 200)]
    assert records[-1]["request_id"] == "the-last"
    assert server.requests_of("web")["stats"]["responses"]["1xx"] == 0  # informational answers are not requests


def test_protocol_tcp_turns_recording_off_and_http_forces_it(server, web, http_upstream, echo_server):
    tcp = server.create_proxy("plain", http_upstream.address, protocol="tcp")
    assert tcp["protocol"] == "tcp"
    requests.get(f"http://{tcp['listen']}/x", timeout=5)
    requests.get(f"http://{web}/y", timeout=5)
    server.recorded("web", 1)
    assert server.requests_of("plain")["stats"]["requests"] == 0
    assert server.request("PATCH", "/proxies/plain", json={"protocol": "http"}).json()["protocol"] == "http"
    requests.get(f"http://{tcp['listen']}/z", timeout=5)
    assert [r["path"] for r in server.recorded("plain", 1)] == ["/z"]
    response = server.request("POST", "/proxies", json={"name": "bad", "upstream": "a:1", "protocol": "udp"})
    assert response.status_code == 400 and "'protocol'" in response.json()["error"]


def test_non_http_and_server_first_links_are_plain_tcp(server, echo_proxy):
    with connect(echo_proxy) as sock:
        echo_round_trip(sock, b"\x00\x01binary, not a method")
        echo_round_trip(sock, b"GET / HTTP/1.1\r\n\r\n")  # too late: the first bytes decided
    with socket.create_server(("127.0.0.1", 0)) as greeter:
        server.create_proxy("greeter", f"127.0.0.1:{greeter.getsockname()[1]}")
        with connect(server.proxy_port("greeter")) as sock:
            peer, _ = greeter.accept()
            with peer:
                peer.sendall(b"220 hello\r\n")
                assert recv_exactly(sock, 11) == b"220 hello\r\n"
                sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
                assert recv_exactly(peer, 18) == b"GET / HTTP/1.1\r\n\r\n"
    assert server.requests_of("echo")["stats"]["http_connections"] == 0
    assert server.requests_of("greeter")["stats"]["http_connections"] == 0


def test_unparseable_http_falls_back_to_tcp_without_losing_a_byte(server, echo_server):
    listen = server.create_proxy("forced", echo_server.address, protocol="http")["listen"]
    payload = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 40 + b"\r\n\r\nmore"
    with connect(int(listen.rsplit(":", 1)[1])) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload  # the echo's "response" is not HTTP
        echo_round_trip(sock, b"and after")
    stats = server.requests_of("forced")["stats"]
    assert stats["http_connections"] == 1 and stats["requests"] == 0


def test_a_proxy_created_again_starts_afresh_and_seqs_keep_growing(server, web, http_upstream):
    requests.get(f"http://{web}/old", timeout=5)
    old_seq = server.recorded("web", 1)[0]["seq"]
    server.request("DELETE", "/proxies/web")
    listen = server.create_proxy("web", http_upstream.address)["listen"]
    assert server.requests_of("web")["requests"] == [] and server.requests_of("web")["stats"]["connections_total"] == 0
    requests.get(f"http://{listen}/new", timeout=5)
    assert [(r["path"], r["seq"] > old_seq) for r in server.requests_of("web", since=old_seq)["requests"]] == [("/new", True)]


def test_a_request_without_an_answer_is_recorded_as_such(server, web):
    with connect(int(web.rsplit(":", 1)[1])) as sock:
        sock.sendall(b"GET /slow/300 HTTP/1.1\r\nHost: x\r\n\r\n")
    records = server.recorded("web", 1)
    assert (records[0]["path"], records[0]["status"], records[0]["duration_ms"]) == ("/slow/300", None, None)
    assert server.requests_of("web")["stats"]["no_response"] == 1
