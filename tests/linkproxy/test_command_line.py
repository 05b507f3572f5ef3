"""The command line: config at start, seed, flags, exit codes and log lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import requests

from .support import REPO, TcpServer, connect, echo_round_trip, recv_until_closed, wait_until


def test_config_file_creates_proxies_before_the_api_answers(start_server, echo_server, tmp_path):
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "db", "listen": "127.0.0.1:0", "upstream": echo_server.address}]))
    server = start_server("--config", str(config))
    proxies = server.request("GET", "/proxies").json()
    assert list(proxies) == ["db"] and proxies["db"]["enabled"] is True
    with connect(server.proxy_port("db")) as sock:
        echo_round_trip(sock)
    log = server.log()
    assert "proxy created name=db" in log and "started api=" in log


def test_config_json_with_an_unresolvable_upstream_still_starts(start_server, echo_server):
    config = [
        {"name": "later", "listen": "127.0.0.1:0", "upstream": "not-yet-there.invalid:5432"},
        {"name": "now", "listen": "127.0.0.1:0", "upstream": echo_server.address},
    ]
    server = start_server("--config-json", json.dumps(config))
    with connect(server.proxy_port("later")) as sock:
        sock.settimeout(10)
        try:
            assert recv_until_closed(sock) == b""  # the client is just closed
        except ConnectionResetError:
            pass
    with connect(server.proxy_port("now")) as sock:
        echo_round_trip(sock)
    assert wait_until(lambda: "dial failed proxy=later upstream=not-yet-there.invalid:5432" in server.log())


def test_config_with_a_busy_port_logs_and_keeps_serving(start_server, echo_server):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        server = start_server("--config-json", json.dumps([{"name": "x", "listen": busy, "upstream": echo_server.address}]))
        assert server.request("GET", "/proxies").json() == {}
        assert "address already in use" in server.log()


@pytest.mark.parametrize(
    ("config", "message"),
    [("not json", "config is not valid JSON"),
     ('[{"upstream": "a:1"}]', "missing required field: name at proxy 1"),
     ('{"name": "x"}', "expected a JSON array")],
)
def test_invalid_config_exits_2(start_server, config, message):
    server = start_server("--config-json", config, ready=False)
    assert server.process.wait(timeout=15) == 2
    assert message in server.log()


def test_api_port_in_use_exits_1(start_server):
    first = start_server()
    clash = subprocess.run(
        [sys.executable, "-m", "stacklet.linkproxy", "--port", str(first.port)],
        capture_output=True, text=True, timeout=15, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert clash.returncode == 1 and f"cannot listen on 127.0.0.1:{first.port}" in clash.stderr


def test_no_metrics_flag_removes_the_endpoint(start_server):
    server = start_server("--no-metrics")
    assert server.request("GET", "/metrics").status_code == 404


def test_sigterm_stops_cleanly(start_server):
    server = start_server()
    assert server.stop() == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/version", timeout=1)


def test_default_asyncio_loop_works_too(start_server, echo_server):
    server = start_server("--loop", "asyncio")
    assert "loop=asyncio" in server.log()
    server.create_proxy("e", echo_server.address)
    server.add_toxic("e", type="latency", attributes={"latency": 30})
    with connect(server.proxy_port("e")) as sock:
        assert echo_round_trip(sock) >= 0.030
        server.remove_toxic("e", "latency_downstream")
        echo_round_trip(sock)


def _shout_server() -> TcpServer:
    def shout(conn: socket.socket) -> None:
        request = recv_until_closed(conn)  # until the client's FIN
        try:
            conn.sendall(request.upper())
        except OSError:
            pass

    return TcpServer(shout)


def _shout_through(server) -> bytes:
    shouter = _shout_server()
    try:
        server.create_proxy("shout", shouter.address)
        with connect(server.proxy_port("shout")) as sock:
            sock.sendall(b"hello")
            sock.shutdown(socket.SHUT_WR)
            try:
                return recv_until_closed(sock)
            except ConnectionResetError:
                return b"<reset>"
    finally:
        shouter.close()


def test_half_close_flag_lets_the_response_through(start_server):
    assert _shout_through(start_server("--half-close")) == b"HELLO"


def test_without_half_close_a_fin_closes_both_sides_like_toxiproxy(server):
    assert _shout_through(server) in (b"", b"<reset>")


def _toxicity_pattern(server, echo_server, connections: int = 24) -> list[bool]:
    """Which of ``connections`` sequential connections rolled a 50%-toxicity toxic.

    The toxic is limit_data with 0 bytes: when it runs, the echo never comes back and the
    connection is closed, which tells the decision without measuring time.
    """
    server.create_proxy("coin", echo_server.address)
    server.add_toxic("coin", type="limit_data", toxicity=0.5, attributes={"bytes": 0})
    port = server.proxy_port("coin")
    pattern = []
    for _ in range(connections):
        with connect(port) as sock:
            sock.sendall(b"ping")
            try:
                reply = sock.recv(100)
            except ConnectionResetError:
                reply = b""
            assert reply in (b"", b"ping")
            pattern.append(reply == b"")
    return pattern


def test_seed_makes_toxicity_decisions_repeatable(start_server, echo_server):
    first = _toxicity_pattern(start_server("--seed", "42"), echo_server)
    second = _toxicity_pattern(start_server("--seed", "42"), echo_server)
    other = _toxicity_pattern(start_server("--seed", "7"), echo_server)
    assert first == second
    assert 0 < sum(first) < len(first)
    assert other != first
