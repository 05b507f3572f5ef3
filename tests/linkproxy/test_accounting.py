"""The request ring of one proxy: bounded, read by sequence number, counted by status class."""

from __future__ import annotations

from stacklet.linkproxy.accounting import MAX_RECORDS, ProxyStats


def test_the_ring_keeps_the_last_records_and_says_when_some_were_dropped():
    stats = ProxyStats()
    for index in range(MAX_RECORDS + 50):
        stats.record(1.0, "GET", f"/{index}", 200 if index % 10 else 503, 1.5, None, None)
    assert len(stats.records) == MAX_RECORDS and stats.requests == MAX_RECORDS + 50
    oldest = stats.records[0][0]
    assert stats.truncated_after(oldest - 2) and not stats.truncated_after(oldest - 1)
    newest = stats.records_since(stats.seq - 2)
    assert [r["path"] for r in newest] == [f"/{MAX_RECORDS + 48}", f"/{MAX_RECORDS + 49}"]
    assert [r["seq"] for r in stats.records_since(0, limit=3)] == [oldest, oldest + 1, oldest + 2]
    assert stats.records_since(stats.seq) == []
    assert stats.status_classes[5] == (MAX_RECORDS + 50) // 10


def test_a_request_without_an_answer_counts_as_none():
    stats = ProxyStats()
    stats.record(1.0, "POST", "/x", None, None, "id-1", None)
    stats.record(1.0, "GET", "/y", 503, 0.1, None, "http_error_downstream")
    json = stats.to_json(0)
    assert (json["no_response"], json["faults"], json["responses"]["5xx"], json["requests"]) == (1, 1, 1, 2)
    assert stats.records_since(0)[0]["request_id"] == "id-1"
