"""The control API's bearer token (``--token`` / $LINKPROXY_TOKEN), with the real toxiproxy-python
client through stacklet's adapter."""

from __future__ import annotations

import os

import requests

from stacklet.docker.linkproxy_client import LinkProxyControl
from stacklet.linkproxy.probe import probe

TOKEN = "rm-Zr9v2Qk3"


def _started(start_server, *args: str, token: str = TOKEN, env: dict | None = None) -> LinkProxyControl:
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        process = start_server(*args, ready=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    control = LinkProxyControl("lp", "127.0.0.1", process.port, token)
    control.wait_ready(timeout_s=15)
    return control


def test_requests_without_the_token_get_401(start_server, echo_server):
    control = _started(start_server, "--token", TOKEN)
    url = f"http://127.0.0.1:{control.port}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        for method, path in (("GET", "/version"), ("GET", "/proxies"), ("POST", "/reset"), ("GET", "/metrics")):
            response = requests.request(method, url + path, headers=headers, timeout=5)
            assert response.status_code == 401, (method, path, headers)
            assert response.json() == {"error": "missing or wrong bearer token", "status": 401}
    assert not LinkProxyControl("lp", "127.0.0.1", control.port).answers(timeout_s=2)


def test_the_adapter_sends_the_token_through_the_toxiproxy_client(start_server, echo_server):
    control = _started(start_server, "--token", TOKEN)
    control.populate({"orders-db": ("127.0.0.1:0", echo_server.address)})
    assert control.proxies()["orders-db"]["upstream"] == echo_server.address
    assert control.traffic("orders-db").proxy == "orders-db"  # raw HTTP of the adapter carries the token too
    response = requests.get(f"http://127.0.0.1:{control.port}/proxies",
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert response.status_code == 200 and "orders-db" in response.json()


def test_the_token_comes_from_the_environment_and_the_probe_sends_it(start_server):
    control = _started(start_server, env={"LINKPROXY_TOKEN": TOKEN})
    assert requests.get(f"http://127.0.0.1:{control.port}/version", timeout=5).status_code == 401
    assert probe("127.0.0.1", control.port, 2, TOKEN)
    assert not probe("127.0.0.1", control.port, 2)


def test_without_a_token_the_api_is_open_and_a_token_sent_anyway_is_harmless(start_server):
    control = _started(start_server, token="unused")
    assert requests.get(f"http://127.0.0.1:{control.port}/proxies", timeout=5).status_code == 200
    assert control.proxies() == {}
