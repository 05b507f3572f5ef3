"""The log buffer alone: bounded, filters, request ids, colours (no Textual)."""

from __future__ import annotations

import threading

from stacklet.tui.logbuffer import PALETTE, LogBuffer, LogView, colour_for, request_id


def test_the_buffer_keeps_only_the_newest_lines():
    buffer = LogBuffer(maxlen=100)
    buffer.extend((f"s{i % 3}", f"line {i}") for i in range(1_000))
    assert len(buffer) == 100
    assert buffer.total == 1_000
    assert [line.text for line in buffer.snapshot()][:2] == ["line 900", "line 901"]


def test_drain_returns_only_new_lines_and_caps_a_burst():
    buffer = LogBuffer(maxlen=10)
    buffer.extend([("a", "1"), ("a", "2")])
    assert [line.text for line in buffer.drain()] == ["1", "2"]
    assert buffer.drain() == []
    buffer.append("a", "3")
    assert [line.text for line in buffer.drain()] == ["3"]
    buffer.extend(("a", str(i)) for i in range(50))
    drained = buffer.drain()
    assert len(drained) == 10 and drained[-1].text == "49"


def test_views_by_service_text_and_request_id():
    buffer = LogBuffer()
    buffer.extend([("gateway", "rid=r1 GET /a 200"), ("orders", "rid=r1 POST /orders ERROR boom"),
                   ("orders", "rid=r2 GET /orders 200"), ("payments", "no id here")])
    assert [l.service for l in buffer.view(LogView(service="orders"))] == ["orders", "orders"]
    assert [l.text for l in buffer.view(LogView(text="error"))] == ["rid=r1 POST /orders ERROR boom"]
    assert [l.service for l in buffer.view(LogView(rid="r1"))] == ["gateway", "orders"]
    assert [l.text for l in buffer.view(LogView(), limit=1)] == ["no id here"]
    assert buffer.latest_request_id() == "r2"
    assert buffer.latest_request_id(LogView(service="gateway")) == "r1"
    assert LogView("orders", "x", "r1").describe() == "service orders · request r1 · filter 'x'"


def test_request_ids_and_colours():
    assert request_id("2025 gateway rid=ab-12.c GET /") == "ab-12.c"
    assert request_id("grid=1 no") is None
    assert colour_for("orders") == colour_for("orders") and colour_for("orders") in PALETTE


def test_appending_from_threads_while_draining_loses_nothing_counted():
    buffer = LogBuffer(maxlen=5_000)

    def produce(name: str) -> None:
        for i in range(20_000):
            buffer.append(name, f"{name} {i}")

    threads = [threading.Thread(target=produce, args=(f"s{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    drained = 0
    while any(t.is_alive() for t in threads):
        drained += len(buffer.drain())
    for t in threads:
        t.join()
    drained += len(buffer.drain())
    assert buffer.total == 60_000
    assert len(buffer) == 5_000
    assert drained <= 60_000
