"""The evidence of a failing request without request ids: entries, tracebacks, grouping by time."""

from __future__ import annotations

import re

from stacklet.checks.evidence import TRACEBACK_LINES, Entry, bounded, entries, failing_service, of_request, split_timestamp
from stacklet.checks.signals import ServiceLogs, log_signals
from stacklet.checks.verdict import Failure, Verdict, conclude, render_text
from stacklet.config.checkspec import ServiceSignals

from .test_checks import http_run

TRACEBACK = """2026-01-01T00:00:01.250000000Z 10.0.0.3 - "POST /orders HTTP/1.1" 500 -
2026-01-01T00:00:01.200000000Z ERROR placing an order failed
2026-01-01T00:00:01.200000001Z Traceback (most recent call last):
2026-01-01T00:00:01.200000002Z   File "/app/app.py", line 212, in place_order
2026-01-01T00:00:01.200000003Z     cur.execute(INSERT)
2026-01-01T00:00:01.200000004Z psycopg.errors.UndefinedColumn: column "total_cent" does not exist
2026-01-01T00:00:01.300000000Z GET /health 200"""


def test_docker_timestamps_are_read_and_removed():
    assert split_timestamp("2026-01-01T00:00:01.123456789Z hello") == (1767225601.123456, "hello")
    assert split_timestamp("2026-01-01T01:00:01+01:00 x") == (1767225601.0, "x")
    assert split_timestamp("no stamp") == (None, "no stamp")


def test_a_traceback_is_one_entry_with_its_exception_line():
    found = entries("orders", TRACEBACK)
    assert [e.text.split("\n")[0] for e in found] == [
        '10.0.0.3 - "POST /orders HTTP/1.1" 500 -', "ERROR placing an order failed",
        "Traceback (most recent call last):", "GET /health 200"]
    traceback = found[2].text.split("\n")
    assert len(traceback) == 4 and traceback[-1].startswith("psycopg.errors.UndefinedColumn: column")
    assert found[2].time == 1767225601.2


def test_a_long_traceback_keeps_head_and_tail_within_the_bound():
    lines = ["Traceback (most recent call last):"] + [f'  File "f{i}.py", line 1' for i in range(100)] + ["E: x"]
    text = bounded(lines)
    kept = text.split("\n")
    assert len(kept) == TRACEBACK_LINES and kept[0] == lines[0] and kept[-1] == "E: x"
    assert "lines left out" in kept[TRACEBACK_LINES // 2]
    assert bounded(lines[:3]) == "\n".join(lines[:3])


def is_error(entry: Entry) -> bool:
    return bool(re.search(ServiceSignals().error_pattern, entry.text))


def is_5xx(entry: Entry) -> bool:
    match = re.search(ServiceSignals().request_pattern, entry.text)
    return bool(match and match.group("status").startswith("5"))


def test_without_a_request_id_the_evidence_is_the_errors_logged_while_the_step_ran():
    logs = [*entries("orders", TRACEBACK),
            Entry(service="gateway", text="POST /orders 500", time=1767225601.4),
            Entry(service="gateway", text="ERROR much later", time=1767225650.0)]
    evidence, by_id = of_request(logs, "chk-1", (1767225601.0, 1767225601.35), is_error, is_5xx)
    assert not by_id and [e.service for e in evidence] == ["orders", "orders", "orders", "gateway"]
    assert failing_service(evidence, is_error, "gateway") == "orders"
    assert failing_service([e for e in evidence if e.service == "gateway"], is_error, "gateway") == "gateway"
    assert of_request(logs, None, None, is_error, is_5xx) == ([], False)


def test_a_request_id_wins_over_the_time_window():
    logs = [Entry(service="orders", text="rid=R1 POST /orders 201", time=5.0),
            Entry(service="orders", text="ERROR unrelated", time=1.0)]
    assert of_request(logs, "R1", (0.0, 10.0), is_error, is_5xx) == ([logs[0]], True)


def test_one_failing_request_is_one_finding_naming_the_service_that_failed():
    run = http_run("127.0.0.1:9")
    failure = Failure(kind="check", service="gateway", check="place-order", step="place",
                      message="POST /orders answered 500", request_id="chk-abc-place-order-1")
    run.failures = [failure]
    run.windows[id(failure)] = (1767225601.0, 1767225601.35)
    gateway = "\n".join(["2026-01-01T00:00:01.310000000Z ERROR orders answered 500",
                         '2026-01-01T00:00:01.320000000Z "POST /orders HTTP/1.1" 500 -'])
    logs = [ServiceLogs(service=name, lines=[e.text for e in found], times=[e.time for e in found],
                        settings=ServiceSignals())
            for name, text in (("orders", TRACEBACK), ("gateway", gateway))
            for found in [entries(name, text)]]
    grouped = run._attach_logs(logs)
    assert failure.service == "orders"
    assert [log.service for log in failure.logs] == ["orders", "orders", "gateway", "orders", "gateway"]
    assert failure.logs[1].line.endswith('psycopg.errors.UndefinedColumn: column "total_cent" does not exist')
    # the request's lines are its evidence, not four more signals
    assert log_signals(logs, set(), grouped) == []
    assert {s.kind for s in log_signals(logs, set())} == {"http_5xx", "error_log"}
    verdict = Verdict(**conclude(dict(slice="s", stack="shop", changed=["orders"], run_id="r",
                                      started="2026-01-01T00:00:00Z"), [failure], [], healthy=True), seconds=1.0)
    text = render_text(verdict).splitlines()
    assert "1. check [orders] place-order › place" in text
    assert "   |   psycopg.errors.UndefinedColumn: column \"total_cent\" does not exist" in text
