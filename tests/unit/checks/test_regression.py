"""checks/verdict.py: a run is a regression only when it has a failure the previous run did not have."""

from __future__ import annotations

from stacklet.checks.verdict import (CheckResult, Failure, PreviousRun, Verdict, conclude, new_failures,
                                     previous_run, read_history, record, regressed)

FIELDS = {"slice": "s1", "stack": "shop", "changed": ["orders"], "run_id": "r", "started": "2026-01-01T00:00:00Z"}


def run(*failures: Failure) -> Verdict:
    checks = [CheckResult(name="place-order", kind="http", outcome="failed" if failures else "passed")]
    return Verdict(**conclude(FIELDS, list(failures), checks, healthy=True), seconds=1.0)


def step(check: str = "place-order", name: str = "place") -> Failure:
    return Failure(kind="check", service="orders", check=check, step=name, message="POST /orders answered 500")


def signal(kind: str, service: str, count: int = 1) -> Failure:
    return Failure(kind="signal", signal=kind, service=service, message=f"{count} {kind}")


def test_the_same_failure_with_more_noise_is_not_a_regression(tmp_path):
    record(tmp_path, run())
    first = record(tmp_path, run(step(), signal("error_log", "orders", 2)))
    again = record(tmp_path, run(step(), signal("error_log", "orders", 9), signal("http_5xx", "gateway"),
                                 signal("link_errors", "orders-db")))
    assert first.grew and not again.grew
    assert not regressed(run(step(), signal("http_5xx", "orders")), previous_run(tmp_path, "s1"))


def test_fewer_noisy_signals_then_more_is_not_a_regression(tmp_path):
    record(tmp_path, run(step(), signal("error_log", "orders"), signal("error_log", "inventory")))
    assert not record(tmp_path, run(step())).grew
    assert not record(tmp_path, run(step(), signal("error_log", "orders"))).grew


def test_a_new_failing_step_or_a_crash_is_a_regression(tmp_path):
    record(tmp_path, run(step()))
    assert record(tmp_path, run(step(), step("refund", "refund"))).grew
    assert record(tmp_path, run(step(), step("refund", "refund"), signal("restart", "payments"))).grew
    previous = previous_run(tmp_path, "s1")
    assert previous is not None and "restart payments" in previous.failing
    assert not regressed(run(step("refund", "refund")), previous)  # fewer failures: an improvement


def test_new_failures_are_by_identity_not_by_count():
    assert new_failures(["a › b", "a › b", "restart x"], ["a › b", "restart x"]) == []
    assert new_failures(["a › b", "exit y"], ["a › b"]) == ["exit y"]
    assert new_failures(["error_log y", "http_5xx z"], []) == []


def test_no_previous_run_is_no_regression(tmp_path):
    assert previous_run(tmp_path, "s1") is None
    assert not regressed(run(step()), None)
    assert not record(tmp_path, run(step())).grew
    assert [e.failing for e in read_history(tmp_path, "s1")] == [["place-order › place"]]


def test_previous_run_from_an_old_history_line_without_failing(tmp_path):
    previous = PreviousRun(run_id="x", started="t", verdict="failed", failures=1)
    assert regressed(run(step()), previous)
