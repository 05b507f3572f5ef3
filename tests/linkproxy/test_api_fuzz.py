"""A seeded fuzz of the API: hostile bodies and names never get a 500 (but for a port that cannot be
bound), never break the proxy list or /metrics, and never disturb the bytes of a live link."""

from __future__ import annotations

import json
import random
import threading
import time
from urllib.parse import quote

from .support import connect, echo_round_trip

ODD_TEXT = ["", "a", "a/b", "x" * 200, "sur\ud800", "nl\nx", "tab\t", "\x00", "é", "\u200b", "[[[", "..", "%2F", " "]
TYPES = ["latency", "bandwidth", "slicer", "timeout", "noop", "http_error", "http_fail_first", "http_latency", "LATENCY", ""]
SEED = 14
VALUES = [0, 1, -1, 2**63, 1.5, "1", None, True, [], {}, "x\ud800", 99, 600, 503, "/api"]


def _value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(5 if depth < 3 else 3)
    if kind == 0:
        return rng.choice(ODD_TEXT)
    if kind == 1:
        return rng.choice(VALUES)
    if kind == 2:
        return rng.choice([None, False, 0.5])
    if kind == 3:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(["name", "type", "status", "listen", "upstream"]): _value(rng, depth + 1)}


def _body(rng: random.Random, echo_address: str) -> dict:
    body = {
        "name": rng.choice(ODD_TEXT + ["fz1", "fz2", "fz/3"]),
        "listen": rng.choice(["127.0.0.1:0", "127.0.0.1:\u0663", "", "nonsense", "127.0.0.1:99999", _value(rng)]),
        "upstream": rng.choice([echo_address, "127.0.0.1:1", "a b:1", _value(rng)]),
        "type": rng.choice(TYPES),
        "stream": rng.choice(["upstream", "downstream", "UP", 1]),
        "toxicity": rng.choice([0, 0.5, 1, 2, "x"]),
        "attributes": {rng.choice(["latency", "status", "body", "path_prefix", "count", "rate", "zz"]): rng.choice(VALUES)
                       for _ in range(rng.randrange(3))},
        "protocol": rng.choice(["http", "tcp", "auto", "udp", 1]),
        "enabled": rng.choice([True, False, "yes"]),
    }
    return {key: value for key, value in body.items() if rng.random() < 0.7}


def test_hostile_api_calls_never_500_and_never_disturb_a_live_link(server, echo_server, echo_proxy):
    rng = random.Random(SEED)
    errors: list[str] = []
    stop = threading.Event()

    def keep_talking() -> None:  # a live link through "echo" the whole time: no byte lost or reordered
        with connect(echo_proxy) as sock:
            index = 0
            while not stop.is_set():
                try:
                    echo_round_trip(sock, b"%08d" % index)
                except (AssertionError, OSError) as exc:
                    errors.append(f"live link broke after {index} round trips: {exc!r}")
                    return
                index += 1

    talker = threading.Thread(target=keep_talking)
    talker.start()
    deadline = time.monotonic() + 20
    try:
        for _ in range(300):
            if time.monotonic() > deadline:
                break
            body = _body(rng, echo_server.address)
            target = rng.choice(["fz1", "fz2", "echo", "nope"])
            method, path = rng.choice([
                ("POST", "/proxies"), ("POST", "/populate"), ("PATCH", f"/proxies/{target}"),
                ("POST", f"/proxies/{target}/toxics"), ("PATCH", f"/proxies/{target}/toxics/http_error_downstream"),
                ("GET", f"/proxies/{target}/requests?since={rng.choice(['0', '-1', 'x', '99'])}"),
            ])
            if target == "echo" and ("toxics" in path and not str(body.get("type")).startswith("http_")
                                     or method == "PATCH" and "toxics" not in path):
                continue  # TCP toxics or a new address on the live link's proxy change its bytes, as documented
            payload = [body] if path == "/populate" else body
            data = json.dumps(payload).encode() if rng.random() < 0.9 else b"[" * 5000
            response = server.request(method, path, data=data)
            listen_failure = response.status_code == 500 and response.json()["error"].startswith("listen tcp")
            assert response.status_code < 500 or listen_failure, (method, path, payload, response.text)
            if rng.random() < 0.2:
                server.request("DELETE", f"/proxies/{rng.choice(['fz1', 'fz2'])}")
            if rng.random() < 0.1:
                server.request("DELETE", "/proxies/echo/toxics/" + rng.choice(["latency_downstream", "noop_downstream"]))
            assert server.request("GET", "/proxies").status_code == 200
            assert server.request("GET", "/metrics").status_code == 200
    finally:
        stop.set()
        talker.join(timeout=30)
    assert not errors, errors
    assert "Traceback" not in server.log()
    for name in server.request("GET", "/proxies").json():  # whatever was created can be addressed
        assert server.request("GET", f"/proxies/{quote(name, safe='')}").status_code == 200, name
