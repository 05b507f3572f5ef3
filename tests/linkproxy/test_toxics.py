"""What each toxic does to real bytes, on loopback, through the proxy."""

from __future__ import annotations

import socket
import statistics
import threading
import time

import pytest

from .support import TcpServer, connect, echo_round_trip, eventually_within, recv_exactly, recv_until_closed


def test_latency_100ms(server, echo_proxy):
    server.add_toxic("echo", type="latency", attributes={"latency": 100})
    with connect(echo_proxy) as sock:
        eventually_within(lambda: statistics.median(echo_round_trip(sock) for _ in range(5)), 0.100, 0.120, attempts=8)


def test_latency_jitter_stays_within_bounds(server, echo_proxy):
    server.add_toxic("echo", type="latency", attributes={"latency": 100, "jitter": 40})
    spreads = []

    def second_slowest_of_10() -> float:
        samples = sorted(echo_round_trip(sock) for _ in range(10))
        assert samples[0] >= 0.058, samples  # never below latency - jitter (ms rounding aside)
        spreads.append(samples[-2] - samples[0])
        return samples[-2]  # one sample may have waited for a busy CPU

    with connect(echo_proxy) as sock:
        eventually_within(second_slowest_of_10, 0.058, 0.155)
    assert max(spreads) >= 0.010, spreads  # it does vary


def test_latencies_on_both_streams_add_up(server, echo_proxy):
    server.add_toxic("echo", type="latency", stream="upstream", attributes={"latency": 40})
    server.add_toxic("echo", type="latency", name="more", attributes={"latency": 30})
    server.add_toxic("echo", type="latency", name="again", attributes={"latency": 30})
    with connect(echo_proxy) as sock:
        eventually_within(lambda: min(echo_round_trip(sock) for _ in range(3)), 0.100, 0.125)


def test_stacked_latencies_never_end_early(server, echo_proxy):
    """Toxiproxy's contract is "at least": 40 + 30 + 30 ms is never under 100 ms, not even by 0.2 ms."""
    server.add_toxic("echo", type="latency", stream="upstream", attributes={"latency": 40})
    server.add_toxic("echo", type="latency", name="more", attributes={"latency": 30})
    server.add_toxic("echo", type="latency", name="again", attributes={"latency": 30})
    with connect(echo_proxy) as sock:
        samples = [echo_round_trip(sock, b"%d" % i) for i in range(30)]
    assert min(samples) >= 0.100, sorted(samples)[:5]


def test_small_latencies_are_not_rounded_away(server, echo_proxy):
    """1 ms on each stream is at least 2 ms, although loop timers have a 1 ms resolution."""
    server.add_toxic("echo", type="latency", stream="upstream", attributes={"latency": 1})
    server.add_toxic("echo", type="latency", attributes={"latency": 1})
    with connect(echo_proxy) as sock:
        samples = [echo_round_trip(sock, b"%d" % i) for i in range(30)]
    assert min(samples) >= 0.002, sorted(samples)[:5]


def test_latency_delays_overlap_instead_of_queueing(server, echo_proxy):
    server.add_toxic("echo", type="latency", attributes={"latency": 100})
    with connect(echo_proxy) as sock:
        start = time.perf_counter()
        for i in range(10):
            sock.sendall(b"%d;" % i)
            time.sleep(0.005)
        data = b""
        while data.count(b";") < 10:
            data += sock.recv(100)
        elapsed = time.perf_counter() - start
    assert data == b"".join(b"%d;" % i for i in range(10))
    assert elapsed < 0.6  # about 0.15 s; 10 chunks × 100 ms would be 1 s if delays queued


def test_bandwidth_480kb_at_1000kbps_takes_480ms(server):
    payload = bytes(range(256)) * 1875  # 480,000 bytes

    def send_on_connect(conn: socket.socket) -> None:
        conn.sendall(payload)
        recv_until_closed(conn)

    source = TcpServer(send_on_connect)
    try:
        server.create_proxy("source", source.address)
        server.add_toxic("source", type="bandwidth", attributes={"rate": 1000})
        port = server.proxy_port("source")

        def transfer() -> float:
            start = time.perf_counter()
            with connect(port, timeout=10) as sock:
                received = recv_exactly(sock, len(payload))
                elapsed = time.perf_counter() - start
            assert received == payload
            return elapsed

        eventually_within(transfer, 0.480 * 0.85, 0.480 * 1.15)
    finally:
        source.close()


def test_slicer_splits_writes(server, echo_proxy):
    server.add_toxic("echo", type="slicer", attributes={"average_size": 100, "size_variation": 20, "delay": 10_000})
    payload = bytes(range(256)) * 8  # 2048 bytes, one write
    with connect(echo_proxy) as sock:
        sock.sendall(payload)
        reads = []
        while sum(map(len, reads)) < len(payload):
            reads.append(sock.recv(65536))
    sizes = [len(r) for r in reads]
    assert b"".join(reads) == payload
    # Pieces of at most 120 bytes, 10 ms apart; a reader that was not scheduled in time may
    # get two at once, so look at the typical read.
    assert len(reads) >= 10 and statistics.median(sizes) <= 120, sizes


def test_timeout_drops_data_and_closes_after_the_timeout(server, echo_proxy):
    server.add_toxic("echo", type="timeout", attributes={"timeout": 300})

    def closed_after() -> float:
        with connect(echo_proxy) as sock:
            start = time.perf_counter()
            sock.sendall(b"hello?")
            assert recv_until_closed(sock) == b""
            return time.perf_counter() - start

    eventually_within(closed_after, 0.29, 0.45)


def test_timeout_zero_holds_the_connection_and_removal_closes_it(server, echo_proxy):
    server.add_toxic("echo", type="timeout", attributes={"timeout": 0})
    with connect(echo_proxy) as sock:
        sock.sendall(b"lost")
        sock.settimeout(0.4)
        with pytest.raises(socket.timeout):
            sock.recv(10)
        server.remove_toxic("echo", "timeout_downstream")
        sock.settimeout(2)
        assert recv_until_closed(sock) == b""


def test_slow_close_delays_the_close(server):
    def greet_and_close(conn: socket.socket) -> None:
        conn.sendall(b"bye")

    greeter = TcpServer(greet_and_close)
    try:
        server.create_proxy("greeter", greeter.address)
        server.add_toxic("greeter", type="slow_close", attributes={"delay": 300})

        def closed_after() -> float:
            with connect(server.proxy_port("greeter")) as sock:
                start = time.perf_counter()
                assert recv_exactly(sock, 3) == b"bye"
                assert time.perf_counter() - start < 0.25  # data is not delayed
                assert recv_until_closed(sock) == b""
                return time.perf_counter() - start

        eventually_within(closed_after, 0.29, 0.45)
    finally:
        greeter.close()


@pytest.mark.parametrize("timeout_ms", [0, 200])
def test_reset_peer_gives_the_client_econnreset(server, echo_proxy, timeout_ms):
    server.add_toxic("echo", type="reset_peer", attributes={"timeout": timeout_ms})

    def reset_after() -> float:
        with connect(echo_proxy) as sock:
            start = time.perf_counter()
            sock.sendall(b"knock knock")
            with pytest.raises(ConnectionResetError):
                sock.recv(100)
            return time.perf_counter() - start + 0.002  # timer rounding

    eventually_within(reset_after, timeout_ms / 1000, timeout_ms / 1000 + 0.1)


def test_reset_peer_added_to_an_open_connection_still_resets(server, echo_proxy):
    with connect(echo_proxy) as sock:
        echo_round_trip(sock)
        server.add_toxic("echo", type="reset_peer", attributes={"timeout": 0})
        sock.sendall(b"again")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_limit_data_truncates_exactly(server, echo_proxy):
    server.add_toxic("echo", type="limit_data", attributes={"bytes": 1000})
    with connect(echo_proxy) as sock:
        sock.sendall(bytes(5000))
        assert len(recv_until_closed(sock)) == 1000


def test_limit_data_upstream_truncates_what_the_server_gets(server):
    received = []
    done = threading.Event()

    def sink(conn: socket.socket) -> None:
        received.append(recv_until_closed(conn))
        done.set()

    sink_server = TcpServer(sink)
    try:
        server.create_proxy("sink", sink_server.address)
        server.add_toxic("sink", type="limit_data", stream="upstream", attributes={"bytes": 12345})
        with connect(server.proxy_port("sink")) as sock:
            sock.sendall(bytes(range(256)) * 100)
            assert done.wait(5)
        assert received == [(bytes(range(256)) * 100)[:12345]]
    finally:
        sink_server.close()


def test_noop_passes_through(server, echo_proxy):
    server.add_toxic("echo", type="noop", stream="upstream")
    server.add_toxic("echo", type="noop")
    with connect(echo_proxy) as sock:
        payload = bytes(range(256)) * 400
        threading.Thread(target=sock.sendall, args=(payload,)).start()
        assert recv_exactly(sock, len(payload)) == payload


def test_toxicity_zero_is_a_pass_through(server, echo_proxy):
    server.add_toxic("echo", type="latency", toxicity=0, attributes={"latency": 300})
    for _ in range(5):
        with connect(echo_proxy) as sock:
            assert echo_round_trip(sock) < 0.25


def test_toxics_apply_to_open_connections(server, echo_proxy):
    with connect(echo_proxy) as sock:
        eventually_within(lambda: echo_round_trip(sock), 0, 0.05)
        server.add_toxic("echo", type="latency", attributes={"latency": 150})
        eventually_within(lambda: echo_round_trip(sock), 0.150, 0.180)
        server.request("PATCH", "/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 60}})
        eventually_within(lambda: echo_round_trip(sock), 0.060, 0.090)
        server.remove_toxic("echo", "latency_downstream")
        eventually_within(lambda: echo_round_trip(sock), 0, 0.05)


def test_removing_latency_releases_held_data_at_once_in_order(server, echo_proxy):
    server.add_toxic("echo", type="latency", attributes={"latency": 2000})
    with connect(echo_proxy) as sock:
        for i in range(5):
            sock.sendall(b"<%d>" % i)
            time.sleep(0.01)
        time.sleep(0.1)
        start = time.perf_counter()
        server.remove_toxic("echo", "latency_downstream")
        data = recv_exactly(sock, 15)
        assert time.perf_counter() - start < 0.5
    assert data == b"<0><1><2><3><4>"


def test_unreachable_upstream_closes_the_client(server):
    server.create_proxy("nowhere", "127.0.0.1:1")
    with connect(server.proxy_port("nowhere")) as sock:
        sock.settimeout(5)
        try:
            assert recv_until_closed(sock) == b""
        except ConnectionResetError:
            pass
    assert server.metric("linkproxy_dial_failures_total", proxy="nowhere") == 1
    assert "dial failed proxy=nowhere upstream=127.0.0.1:1" in server.log()
