"""Per-link traffic and the routing proof of a check run: pure functions over link proxy answers."""

from __future__ import annotations

from stacklet.checks.load import summarise
from stacklet.checks.run import _routing_failures
from stacklet.checks.signals import (CheckWindow, Snapshot, link_signals, link_traffic, percentile, routing,
                                     unreached)
from stacklet.checks.verdict import (CheckResult, Routing, RoutingSource, StepResult, Verdict, conclude,
                                     render_text, routing_line)
from stacklet.docker.linkproxy_client import ProxyTraffic

# The documented answer of GET /proxies/{p}/requests (docs/linkproxy.md), as the link proxy sends it.
DOCUMENTED = {
    "proxy": "payments", "protocol": "auto", "last_seq": 10872, "next_since": 10872, "truncated": False,
    "requests": [
        {"seq": 10871, "start": 1795833012.733, "method": "POST", "path": "/charge", "status": 503,
         "duration_ms": 0.21, "request_id": "req-7", "fault": "http_error_downstream"},
        {"seq": 10872, "start": 1795833012.779, "method": "GET", "path": "/health", "status": 200,
         "duration_ms": 0.88, "request_id": None, "fault": None}],
    "stats": {"connections_total": 12, "connections_active": 1, "connect_failures": 0, "resets": 0,
              "bytes": {"upstream": {"received": 5180, "sent": 5180}, "downstream": {"received": 3850, "sent": 3850}},
              "http_connections": 12, "requests": 40,
              "responses": {"1xx": 0, "2xx": 31, "3xx": 0, "4xx": 2, "5xx": 7}, "no_response": 0, "faults": 5}}


def answer(**changes) -> ProxyTraffic:
    stats = {**DOCUMENTED["stats"], **changes.pop("stats", {})}
    return ProxyTraffic.model_validate({**DOCUMENTED, "requests": [], **changes, "stats": stats})


def test_the_documented_answer_parses():
    traffic = ProxyTraffic.model_validate(DOCUMENTED)
    assert traffic.last_seq == 10872 and traffic.stats.bytes["upstream"].sent == 5180
    assert [r.fault for r in traffic.requests] == ["http_error_downstream", None]


def test_percentile_is_nearest_rank():
    assert percentile([], 99) is None
    assert percentile([5.0], 50) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([1.0, 2.0, 900.0], 99) == 900.0


class TestLinkTraffic:
    def test_counts_are_the_growth_during_the_run(self):
        before = Snapshot(containers={}, links={"payments": answer()})
        after = Snapshot(containers={}, links={"payments": ProxyTraffic.model_validate({
            **DOCUMENTED, "stats": {**DOCUMENTED["stats"], "connections_total": 15, "requests": 43,
                                    "responses": {"2xx": 32, "5xx": 9}, "faults": 6,
                                    "bytes": {"upstream": {"sent": 5280}, "downstream": {"sent": 4050}}}})})
        [link] = link_traffic(before, after, {"payments": ("vd-link-1", "payments.origin:8000")},
                              {"payments": ["http_error"]})
        assert (link.target, link.proxy, link.upstream) == ("payments", "vd-link-1", "payments.origin:8000")
        assert (link.connections, link.requests, link.responses_5xx, link.fault_responses) == (3, 3, 2, 1)
        assert (link.bytes_to_upstream, link.bytes_from_upstream) == (100, 200)
        assert (link.p50_ms, link.p99_ms) == (0.21, 0.88) and link.faults == ["http_error"]

    def test_a_link_new_since_the_first_snapshot_counts_from_zero(self):
        after = Snapshot(containers={}, links={"db:5432": answer(protocol="tcp", stats={"connect_failures": 2})})
        [link] = link_traffic(Snapshot(containers={}), after, {}, {})
        assert (link.link, link.target, link.proxy, link.protocol) == ("db:5432", "db", "?", "tcp")
        assert link.connections == 12 and link.p99_ms is None
        [signal] = link_signals([link])
        assert signal.kind == "link_errors" and signal.count == 2

    def test_a_fault_on_the_link_explains_its_connect_failures(self):
        after = Snapshot(containers={}, links={"db:5432": answer(stats={"connect_failures": 2})})
        assert link_signals(link_traffic(Snapshot(containers={}), after, {}, {"db:5432": ["down"]})) == []


def step(service: str, status: int | None = 200) -> StepResult:
    return StepResult(name="s", service=service, request=f"GET http://{service}/", status=status, passed=True)


def link(target: str, requests: int = 0, connections: int = 0):
    from stacklet.checks.verdict import LinkTraffic
    return LinkTraffic(link=target, target=target, proxy="p", upstream=f"{target}.origin:80", requests=requests,
                       connections=connections)


class TestRouting:
    def test_direct_steps_and_caller_links_are_counted_by_source(self):
        burst = step("orders", None).model_copy(update={"load": summarise([(201, 5.0)] * 3, [], 1, 1.0)})
        checks = [CheckResult(name="place", kind="http", outcome="passed", steps=[step("orders"), step("orders")]),
                  CheckResult(name="burst", kind="http", outcome="passed", steps=[burst]),
                  CheckResult(name="via-gateway", kind="http", outcome="passed", steps=[step("gateway")])]
        records = {"orders": [ProxyTraffic.model_validate(DOCUMENTED).requests[0]]}
        windows = [CheckWindow("place", 0, 1), CheckWindow("via-gateway", 1795833012.0, 1795833013.0)]
        [entry] = routing(["orders"], checks, windows, [link("orders", requests=3, connections=1)], records,
                          {"orders": ["gateway"]})
        assert (entry.service, entry.requests, entry.connections) == ("orders", 8, 1)
        assert [(s.source, s.via, s.requests) for s in entry.sources] == [("check", "direct", 5),
                                                                           ("gateway", "orders", 3)]
        assert [c.reached for c in checks] == [["orders"], ["orders"], ["orders"]]
        assert unreached(checks, [entry]) == []

    def test_a_run_that_reached_no_changed_service_is_flagged(self):
        checks = [CheckResult(name="catalog-only", kind="http", outcome="passed", steps=[step("gateway")]),
                  CheckResult(name="cmd", kind="command", outcome="passed"),
                  CheckResult(name="broken", kind="http", outcome="failed", steps=[step("orders", None)])]
        routed = routing(["orders"], checks, [], [link("catalog", requests=4), link("orders")], {}, {})
        assert routed == [Routing(service="orders")]
        assert unreached(checks, routed) == ["catalog-only"]
        [finding] = _routing_failures(checks, routed)
        assert finding.kind == "routing" and finding.service == "orders"
        assert "catalog-only passed without reaching orders" in finding.message
        verdict = Verdict(**conclude(dict(slice="vd-s", stack="shop", changed=["orders"], run_id="r",
                                          started="2026-01-01T00:00:00Z"), [finding], checks, healthy=True),
                          seconds=1.0, routing=routed)
        assert verdict.verdict == "failed" and "no changed service reached" in verdict.summary
        text = render_text(verdict)
        assert "\n  routing: orders received nothing\n" in text and "1. routing [orders]" in text

    def test_nothing_is_flagged_without_a_changed_service_in_the_slice(self):
        assert unreached([CheckResult(name="a", kind="http", outcome="passed")], []) == []

    def test_routing_line_names_each_source(self):
        line = routing_line([Routing(service="orders", requests=3, sources=[
            RoutingSource(source="check", via="direct", requests=1),
            RoutingSource(source="gateway", via="orders", requests=2)]),
            Routing(service="orders-db", connections=4, sources=[
                RoutingSource(source="orders", via="orders-db", connections=4)])])
        assert line == ("  routing: orders received 3 requests (check 1 request, gateway 2 requests via orders); "
                        "orders-db received 4 connections (orders 4 connections via orders-db)")
