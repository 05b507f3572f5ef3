"""Regressions against a reference run: figures from a verdict, compared, one line each."""

from __future__ import annotations

from stacklet.checks.load import summarise
from stacklet.checks.regressions import figures, previous_passing, regressions
from stacklet.checks.verdict import (CheckResult, Failure, Figure, LinkTraffic, StepResult, Verdict, conclude, record,
                                     render_text)

FIELDS = dict(slice="vd-s", stack="shop", changed=["orders"], run_id="r2", started="2026-01-01T00:01:00Z")


def figure(name: str, p99: float | None, error_rate: float = 0.0, rps: float = 20.0) -> Figure:
    return Figure(name=name, requests=100, requests_per_s=rps, p99_ms=p99, error_rate=error_rate)


def test_a_p99_that_grew_fifty_six_times_is_one_line():
    [found] = regressions([figure("orders → payments", 2140, 0.14)], [figure("orders → payments", 38)])
    assert found.line == "orders → payments: p99 38 ms → 2,140 ms (x56) under 20 req/s; 5xx 0% → 14%"
    assert (found.p99_ms_before, found.p99_ms_after, found.error_rate_after) == (38, 2140, 0.14)


def test_noise_and_new_figures_are_not_regressions():
    before = [figure("a → b", 2.0), figure("c › d [b]", 100.0, 0.01)]
    assert regressions([figure("a → b", 5.0), figure("c › d [b]", 150.0, 0.02), figure("new → x", 9000)],
                       before) == []
    [load] = regressions([figure("c › d [b]", 100.0, 0.2)], before)
    assert load.line == "c › d [b]: errors 1% → 20%"


def test_worst_slow_down_first():
    before = [figure("a → b", 10), figure("a → c", 10)]
    found = regressions([figure("a → b", 40), figure("a → c", 900)], before)
    assert [r.name for r in found] == ["a → c", "a → b"]


def verdict_with_traffic() -> Verdict:
    burst = StepResult(name="burst", service="orders", request="POST http://x/orders", passed=True,
                       load=summarise([(201, 12.0)] * 40, [201], 4, 2.0))
    checks = [CheckResult(name="load", kind="http", outcome="passed", steps=[burst])]
    traffic = [LinkTraffic(link="payments", target="payments", callers=["orders"], proxy="p", upstream="u",
                           requests=40, responses_5xx=4, p99_ms=38.0),
               LinkTraffic(link="orders-db", target="orders-db", proxy="p", upstream="u", connections=3)]
    return Verdict(**conclude(FIELDS, [], checks, healthy=True), seconds=4.0, traffic=traffic)


def test_figures_of_a_verdict_and_the_previous_passing_run(tmp_path):
    measured = figures(verdict_with_traffic())
    assert [(f.name, f.requests, f.requests_per_s, f.p99_ms, f.error_rate) for f in measured] == [
        ("orders → payments", 40, 10.0, 38.0, 0.1), ("load › burst [orders]", 40, 20.0, 12.0, 0.0)]
    assert previous_passing(tmp_path, "vd-s") is None
    record(tmp_path, verdict_with_traffic(), measured)
    broken = Failure(kind="check", check="x", step="s", message="answered 500")
    failed = Verdict(**conclude({**FIELDS, "run_id": "r3"}, [broken], [], healthy=True), seconds=1.0)
    assert failed.verdict == "failed"
    record(tmp_path, failed, [figure("orders → payments", 1)])
    assert previous_passing(tmp_path, "vd-s").run_id == "r2"


def test_the_text_names_the_reference_and_each_regression():
    verdict = verdict_with_traffic()
    verdict.reference = "the previous passing run r1 (2026-01-01T00:00:00Z)"
    verdict.regressions = regressions([figure("orders → payments", 2140)], [figure("orders → payments", 38)])
    lines = render_text(verdict).splitlines()
    assert "  against the previous passing run r1 (2026-01-01T00:00:00Z): 1 regression(s)" in lines
    assert "    orders → payments: p99 38 ms → 2,140 ms (x56) under 20 req/s" in lines
