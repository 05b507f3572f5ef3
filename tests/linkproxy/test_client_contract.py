"""Contract tests with the real toxiproxy-python 0.1.1 client."""

from __future__ import annotations

import socket

import pytest
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from .support import connect, echo_round_trip


def _port(proxy) -> int:
    return int(proxy.listen.rsplit(":", 1)[1])


def test_running_and_version(toxiproxy):
    assert toxiproxy.running()
    assert toxiproxy.version().startswith(b'{"version": "2.12.0')


def test_create_list_get_destroy(toxiproxy, echo_server):
    proxy = toxiproxy.create(upstream=echo_server.address, name="orders-db")
    assert proxy.name == "orders-db"
    assert proxy.upstream == echo_server.address
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and _port(proxy) > 0  # the real bound port

    with connect(_port(proxy)) as sock:
        echo_round_trip(sock, b"through the proxy")

    assert list(toxiproxy.proxies()) == ["orders-db"]
    assert toxiproxy.get_proxy("orders-db").listen == proxy.listen
    assert toxiproxy.get_proxy("nope") is None

    assert toxiproxy.destroy(proxy) is True
    assert toxiproxy.proxies() == {}


def test_create_twice_raises_proxy_exists(toxiproxy, echo_server):
    toxiproxy.create(upstream=echo_server.address, name="twice")
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=echo_server.address, name="twice")


def test_disable_enable_and_down(toxiproxy, echo_server):
    proxy = toxiproxy.create(upstream=echo_server.address, name="flaky")
    port = _port(proxy)
    proxy.disable()
    assert toxiproxy.get_proxy("flaky").enabled is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    proxy.enable()
    with connect(port) as sock:
        echo_round_trip(sock)
    with proxy.down():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    with connect(port) as sock:
        echo_round_trip(sock)


def test_add_list_get_and_destroy_toxics(toxiproxy, echo_server):
    proxy = toxiproxy.create(upstream=echo_server.address, name="cache")
    proxy.add_toxic(type="latency", attributes={"latency": 30})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="slow_up", toxicity=0.5, attributes={"rate": 100})

    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "slow_up"}
    latency = toxics["latency_downstream"]
    assert (latency.type, latency.stream, latency.toxicity) == ("latency", "downstream", 1)
    assert latency.attributes == {"latency": 30, "jitter": 0}
    slow = proxy.get_toxic("slow_up")
    assert (slow.stream, slow.toxicity, slow.attributes) == ("upstream", 0.5, {"rate": 100})
    assert proxy.get_toxic("missing") is None

    assert proxy.destroy_toxic("slow_up") is True
    assert list(proxy.toxics()) == ["latency_downstream"]


def test_client_errors_map_to_its_exceptions(toxiproxy, echo_server):
    proxy = toxiproxy.create(upstream=echo_server.address, name="api")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", attributes={"latency": -5})
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_type")
    proxy.add_toxic(type="noop")
    with pytest.raises(ProxyExists):  # the client maps every 409 to ProxyExists
        proxy.add_toxic(type="noop")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("missing")
    proxy.destroy()
    with pytest.raises(NotFound):
        proxy.toxics()


def test_reset_enables_proxies_and_removes_toxics(toxiproxy, echo_server):
    first = toxiproxy.create(upstream=echo_server.address, name="first")
    second = toxiproxy.create(upstream=echo_server.address, name="second")
    first.add_toxic(type="latency", attributes={"latency": 1000})
    second.disable()
    assert toxiproxy.reset() is True
    assert toxiproxy.get_proxy("second").enabled is True
    assert first.toxics() == {}
    with connect(_port(first)) as sock:
        assert echo_round_trip(sock) < 0.5


def test_populate_creates_keeps_and_replaces(toxiproxy, echo_server):
    created = toxiproxy.populate([
        {"name": "a", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
        {"name": "b", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
    ])
    assert sorted(p.name for p in created) == ["a", "b"]
    b = toxiproxy.get_proxy("b")
    # Same listen and upstream as the live proxy: the client keeps it.
    again = toxiproxy.populate([{"name": "b", "upstream": b.upstream, "listen": b.listen}])
    assert again == []
    assert toxiproxy.get_proxy("b").listen == b.listen
    # A different upstream: replaced.
    replaced = toxiproxy.populate([{"name": "b", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"}])
    assert [p.upstream for p in replaced] == ["127.0.0.1:9"]
    toxiproxy.destroy_all()
    assert toxiproxy.proxies() == {}
