"""HTTP toxics on real requests: http_error, http_fail_first, http_latency, through toxiproxy-python too."""

from __future__ import annotations

import time

import pytest
import requests

from .http_upstream import read_responses
from .support import connect, recv_until_closed


def _port(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def test_http_error_through_toxiproxy_python_answers_a_share_of_requests(server, web, toxiproxy, http_upstream):
    proxy = toxiproxy.get_proxy("web")
    proxy.add_toxic(type="http_error", attributes={"status": 503}, toxicity=0.3)
    listed = proxy.toxics()["http_error_downstream"]
    assert (listed.type, listed.stream, listed.toxicity) == ("http_error", "downstream", 0.3)
    assert listed.attributes == {"status": 503, "body": "", "path_prefix": ""}
    session = requests.Session()
    statuses = [session.get(f"http://{web}/item/{i}", timeout=5).status_code for i in range(200)]
    session.close()
    failed = statuses.count(503)
    assert set(statuses) == {200, 503} and 25 <= failed <= 95, failed  # 60 expected; ±5 standard deviations
    assert len(http_upstream.seen) == 200 - failed  # a failed request never reached the upstream
    records = server.recorded("web", 200)
    assert sum(r["fault"] == "http_error_downstream" for r in records) == failed
    assert server.requests_of("web")["stats"]["faults"] == failed
    assert server.metric("linkproxy_http_faults_total", proxy="web") == failed
    proxy.destroy_toxic("http_error_downstream")
    assert requests.get(f"http://{web}/after", timeout=5).status_code == 200


def test_http_error_by_path_prefix_with_a_body_keeps_pipelined_answers_in_order(server, web, http_upstream):
    server.add_toxic("web", type="http_error", name="api-down",
                     attributes={"status": 502, "body": "api is down\n", "path_prefix": "/api/"})
    pipeline = (b"GET /slow/100 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"qty\": 12}"
                b"HEAD /api/orders HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /shop HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
                b"GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n")
    with connect(_port(web)) as sock:
        sock.sendall(pipeline)
        answers = read_responses(sock, ["GET", "POST", "HEAD", "POST", "GET"])
    assert answers == [(200, b"GET /slow/100 0"), (502, b"api is down\n"), (502, b""),
                       (200, b"POST /shop 2"), (502, b"api is down\n")]
    assert http_upstream.seen == ["/slow/100", "/shop"]
    records = server.recorded("web", 5)
    assert [(r["path"], r["status"], r["fault"]) for r in records] == [
        ("/slow/100", 200, None), ("/api/orders", 502, "api-down"), ("/api/orders", 502, "api-down"),
        ("/shop", 200, None), ("/api/x", 502, "api-down")]


def test_http_fail_first_fails_the_first_requests_of_the_proxy_across_connections(server, web, http_upstream):
    server.add_toxic("web", type="http_fail_first", attributes={"count": 3, "status": 500})
    statuses = [requests.get(f"http://{web}/n{i}", timeout=5).status_code for i in range(6)]  # a connection each
    assert statuses == [500, 500, 500, 200, 200, 200]
    assert http_upstream.seen == ["/n3", "/n4", "/n5"]
    response = requests.get(f"http://{web}/n6", timeout=5)
    assert response.status_code == 200
    server.request("PATCH", "/proxies/web/toxics/http_fail_first_downstream", json={"attributes": {"count": 4}})
    assert requests.get(f"http://{web}/n7", timeout=5).status_code == 500  # one more, counted on


def test_a_failed_request_that_asks_to_close_closes(server, web, http_upstream):
    server.add_toxic("web", type="http_error", attributes={"status": 503})
    for head in (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n",
                 b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"):
        with connect(_port(web)) as sock:
            sock.sendall(head)
            reply = recv_until_closed(sock)
        assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b"Connection: close\r\n" in reply
    assert http_upstream.seen == []


def test_http_latency_delays_each_request_by_path(server, web):
    server.add_toxic("web", type="http_latency", attributes={"latency": 150, "path_prefix": "/slow-lane"})
    session = requests.Session()
    session.get(f"http://{web}/warm-up", timeout=5)
    started = time.perf_counter()
    session.get(f"http://{web}/fast", timeout=5)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    session.get(f"http://{web}/slow-lane/1", timeout=5)
    slow = time.perf_counter() - started
    session.close()
    assert slow >= 0.150 and fast < 0.150, (fast, slow)
    pipeline = b"".join(b"GET /slow-lane/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
    with connect(_port(web)) as sock:
        started = time.perf_counter()
        sock.sendall(pipeline)
        assert [status for status, _ in read_responses(sock, ["GET"] * 5)] == [200] * 5
        elapsed = time.perf_counter() - started
    assert 0.150 <= elapsed < 0.6, elapsed  # per request and overlapping, not 5 × 150 ms
    durations = [r["duration_ms"] for r in server.recorded("web", 8) if r["path"].startswith("/slow-lane")]
    assert len(durations) == 6 and min(durations) >= 150


def test_http_toxics_leave_plain_tcp_links_alone(server, echo_server, http_upstream):
    listen = server.create_proxy("plain", http_upstream.address, protocol="tcp")["listen"]
    server.add_toxic("plain", type="http_error", attributes={"status": 503})
    assert requests.get(f"http://{listen}/x", timeout=5).status_code == 200
    assert server.request("GET", "/proxies/plain")
    toxic = server.request("GET", "/proxies/plain/toxics/http_error_downstream").json()
    assert toxic == {"attributes": {"status": 503, "body": "", "path_prefix": ""}, "name": "http_error_downstream",
                     "type": "http_error", "stream": "downstream", "toxicity": 1}


@pytest.mark.parametrize(
    ("toxic", "field"),
    [
        ({"type": "http_error"}, "status"),
        ({"type": "http_error", "attributes": {"status": 99}}, "status"),
        ({"type": "http_error", "attributes": {"status": 600}}, "status"),
        ({"type": "http_error", "attributes": {"status": "503"}}, "status"),
        ({"type": "http_error", "attributes": {"status": 503, "body": 5}}, "body"),
        ({"type": "http_error", "attributes": {"status": 503, "body": "x\ud800"}}, "body"),
        ({"type": "http_error", "attributes": {"status": 503, "body": "x" * 70_000}}, "body"),
        ({"type": "http_error", "attributes": {"status": 503, "path_prefix": "api"}}, "path_prefix"),
        ({"type": "http_error", "attributes": {"status": 503, "path_prefix": "/a\nb"}}, "path_prefix"),
        ({"type": "http_error", "attributes": {"status": 503, "latency": 1}}, "latency"),
        ({"type": "http_fail_first", "attributes": {"count": -1, "status": 500}}, "count"),
        ({"type": "http_fail_first", "attributes": {"count": 2}}, "status"),
        ({"type": "http_latency", "attributes": {"latency": -1}}, "latency"),
        ({"type": "http_latency", "attributes": {"jitter": -1}}, "jitter"),
        ({"type": "http_latency", "attributes": {"path_prefix": 1}}, "path_prefix"),
        ({"type": "http_latency", "toxicity": 2}, "toxicity"),
    ],
)
def test_invalid_http_toxics_are_400_naming_the_attribute(server, web, toxic, field):
    response = server.request("POST", "/proxies/web/toxics", json=toxic)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    assert server.request("GET", "/proxies/web/toxics").json() == []
    assert requests.get(f"http://{web}/still-fine", timeout=5).status_code == 200
