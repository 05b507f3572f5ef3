"""Per-container metrics of a run, the reference of `--reference baseline`, and checks that reached nothing."""

from __future__ import annotations

from stacklet.checks.load import summarise
from stacklet.checks.metrics import MIB, UsageSampler, container_metrics
from stacklet.checks.reference import baseline_reference
from stacklet.checks.regressions import regressions
from stacklet.checks.signals import mark_unreached
from stacklet.checks.verdict import (CheckResult, ContainerMetrics, Figure, Routing, StepResult, Verdict,
                                     render_text)
from stacklet.config.checkspec import CheckSpec
from stacklet.docker.models import ContainerEvent, ContainerInfo, ContainerUsage
from stacklet.errors import SliceNotFound
from stacklet.runtime.status import ServiceStatus, SliceStatus

FIELDS = dict(slice="s", stack="shop", changed=["orders"], run_id="r1", started="2026-01-01T00:00:00Z")


def info(service: str, cid: str, restarts: int = 0, oom: bool = False) -> ContainerInfo:
    return ContainerInfo(id=cid, name=f"c-{service}", labels={"dev.stacklet.service": service}, state="running",
                         restarts=restarts, oom_killed=oom)


def test_peak_memory_and_cpu_over_the_samples_restarts_and_oom_kills_during_the_run():
    before = {"orders": info("orders", "o1"), "payments": info("payments", "p1", restarts=1)}
    after = {"orders": info("orders", "o1", oom=True), "payments": info("payments", "p1", restarts=3)}
    samples = [ContainerUsage(container="o1", memory_bytes=40 * MIB, cpu_percent=5.0),
               ContainerUsage(container="o1", memory_bytes=120 * MIB, cpu_percent=95.0),
               ContainerUsage(container="o1", memory_bytes=60 * MIB, cpu_percent=30.0)]
    events = [ContainerEvent(container="o1", service="orders", action="oom")]
    orders, payments = container_metrics(before, after, samples, events)
    assert (orders.service, orders.samples, orders.peak_memory_mib, orders.peak_cpu_percent,
            orders.mean_cpu_percent, orders.oom_kills) == ("orders", 3, 120.0, 95.0, 43.3, 1)
    assert (payments.restarts, payments.samples, payments.peak_memory_mib) == (2, 0, None)


def test_a_container_that_restarted_is_one_line_of_the_text():
    verdict = Verdict(**FIELDS, ok=True, verdict="passed", exit_code=0, summary="1 of 1 checks passed", seconds=1.0,
                      metrics=[ContainerMetrics(service="orders", container="c", samples=2, peak_memory_mib=61.2,
                                                peak_cpu_percent=80.5, restarts=1),
                               ContainerMetrics(service="payments", container="p", samples=2, peak_memory_mib=30)])
    lines = render_text(verdict).splitlines()
    assert "  orders: restarted 1×, peak memory 61 MiB, peak CPU 80.5%" in lines
    assert not any(line.startswith("  payments:") for line in lines)


def test_peak_memory_that_grew_by_half_and_32_mib_is_a_regression():
    before = [Figure(name="orders (container)", peak_memory_mib=60.0), Figure(name="redis (container)",
                                                                             peak_memory_mib=10.0)]
    [found] = regressions([Figure(name="orders (container)", peak_memory_mib=300.0),
                           Figure(name="redis (container)", peak_memory_mib=30.0)], before)
    assert found.line == "orders (container): peak memory 60 MiB → 300 MiB (x5.0)"
    assert (found.peak_memory_mib_before, found.peak_memory_mib_after) == (60.0, 300.0)


def test_the_sampler_samples_at_least_once():
    class Driver:
        def stats(self, ids):
            return [ContainerUsage(container=i, memory_bytes=MIB, cpu_percent=1.0) for i in ids]

    with UsageSampler(Driver(), ["a", "b"]) as sampler:
        pass
    assert {s.container for s in sampler.samples} == {"a", "b"}


def test_a_passed_check_selected_for_orders_that_never_reached_it_is_named():
    checks = [CheckResult(name="place", kind="http", outcome="passed", reached=["orders"]),
              CheckResult(name="products", kind="http", outcome="passed"),
              CheckResult(name="charge", kind="http", outcome="passed"),
              CheckResult(name="broken", kind="http", outcome="failed")]
    routed = [Routing(service="orders", requests=1)]
    mark_unreached(routed, checks, {"place": ["orders"], "products": [], "charge": ["payments"], "broken": []})
    assert routed[0].unreached == ["products"]


class BaselineEngine:
    """The engine calls of ``baseline_reference``: a baseline that serves orders (or none)."""

    def __init__(self, services: list[str] | None):
        self.services = services
        self.driver = self

    def baseline_status(self, stack):
        if self.services is None:
            raise SliceNotFound("no baseline")
        return SliceStatus(name="baseline-shop", stack=stack, project="p", healthy=True,
                           services=[ServiceStatus(name=s, role="baseline", container=s, state="running")
                                     for s in self.services])

    def containers(self, labels):
        return [info(s, f"id-{s}") for s in self.services]

    def stats(self, ids):
        return [ContainerUsage(container=i, memory_bytes=50 * MIB, cpu_percent=3.0) for i in ids]


LOAD_CHECK = CheckSpec.model_validate({"name": "load", "services": ["orders"], "steps": [
    {"name": "burst", "service": "orders", "method": "POST", "path": "/orders",
     "load": {"requests": 4, "concurrency": 2}}]})


def test_the_reference_is_the_same_checks_run_against_the_baseline():
    ran = []

    def run_check(status, check):
        ran.append((status.name, check.name))
        step = StepResult(name="burst", service="orders", request="POST", passed=True,
                          load=summarise([(201, 30.0)] * 4, [201], 2, 0.5))
        return CheckResult(name=check.name, kind="http", outcome="passed", steps=[step])

    described, found = baseline_reference(BaselineEngine(["orders", "payments"]), "shop", [LOAD_CHECK], ["orders"],
                                          ["orders"], run_check)
    assert ran == [("baseline-shop", "load")] and described == "the same 1 check on the baseline"
    by_name = {f.name: f for f in found}
    assert by_name["load › burst [orders]"].p99_ms == 30.0
    assert by_name["orders (container)"].peak_memory_mib == 50.0


def test_no_reference_without_a_baseline_that_serves_the_changed_service():
    never = lambda status, check: (_ for _ in ()).throw(AssertionError("ran"))  # noqa: E731
    assert baseline_reference(BaselineEngine(None), "shop", [LOAD_CHECK], ["orders"], [], never)[1] == []
    described, found = baseline_reference(BaselineEngine(["payments"]), "shop", [LOAD_CHECK], ["orders"], [], never)
    assert (described, found) == ("the baseline does not serve orders (nothing to compare)", [])
