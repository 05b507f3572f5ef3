"""Faults of the distance: the forwarded links whose baseline does not answer, named with the baseline's host
(the probe runs in the link proxy's container; here the fake engine answers for it)."""

from __future__ import annotations

from stacklet.checks.distance import PROBE_SCRIPT, unanswered_links
from stacklet.checks.verdict import Failure, Verdict, render_text
from stacklet.docker.models import ContainerInfo, ExecResult
from stacklet.labels import Label, encode_routes
from stacklet.planning.plan import Route

ENGINE = "tcp://10.250.0.2:2375"


class ProbingDriver:
    """Answers the probe: the addresses listed in ``silent`` do not answer."""

    def __init__(self, silent: set[str]):
        self.silent = silent
        self.calls: list[list[str]] = []

    def exec(self, container_id, argv, stdin=None, timeout_s=300) -> ExecResult:
        self.calls.append(argv)
        return ExecResult(returncode=0, stdout="".join(f"{a}\n" for a in argv[3:] if a in self.silent), stderr="")


def proxy(routes: list[Route], engine: str | None = ENGINE) -> ContainerInfo:
    labels = {Label.SLICE: "rm-unit", Label.ROLE: "linkproxy", Label.SERVICE: "lp-1", Label.ROUTES: encode_routes(routes),
              **({Label.BASELINE_ENGINE: engine} if engine else {})}
    return ContainerInfo(id="p1", name="lp-1", labels=labels, state="running")


ROUTES = [Route(name="catalog", target="catalog", port=8084, upstream="10.250.0.2:8084"),
          Route(name="users", target="users", port=8085, upstream="10.250.0.2:8085"),
          Route(name="orders-db", target="orders-db", port=5432, upstream="orders-db.origin:5432")]


def test_only_remote_links_are_probed_and_the_silent_ones_named():
    driver = ProbingDriver({"10.250.0.2:8084"})
    found = unanswered_links(driver, [proxy(ROUTES)])
    assert driver.calls == [["python3", "-c", PROBE_SCRIPT, "10.250.0.2:8084", "10.250.0.2:8085"]]
    assert [(u.link, u.engine, u.host) for u in found] == [("catalog", ENGINE, "10.250.0.2")]
    assert found[0].message == ("link catalog forwards to 10.250.0.2:8084: the baseline on tcp://10.250.0.2:2375 "
                                "(host 10.250.0.2) does not answer")


def test_a_mapped_baseline_is_named_by_its_host():
    found = unanswered_links(ProbingDriver({"staging.example:443"}), [
        proxy([Route(name="catalog", target="catalog", port=8084, upstream="staging.example:443")], engine=None)])
    assert found[0].message.endswith("the baseline at staging.example does not answer")


def test_nothing_remote_nothing_probed():
    driver = ProbingDriver(set())
    assert unanswered_links(driver, [proxy(ROUTES[2:])]) == [] and driver.calls == []


def test_the_verdict_text_names_the_baseline_host_first():
    failure = Failure(kind="baseline", service="catalog", message="link catalog forwards to 10.250.0.2:8084: the "
                                                                  "baseline on tcp://10.250.0.2:2375 (host 10.250.0.2) "
                                                                  "does not answer")
    verdict = Verdict(ok=False, verdict="failed", exit_code=1, summary="1 failure", slice="rm-unit", stack="shop",
                      run_id="r", started="2026-01-01T00:00:00Z", seconds=1.0, failures=[failure])
    text = render_text(verdict)
    assert "1. baseline does not answer [catalog]" in text and "(host 10.250.0.2) does not answer" in text
