"""Load steps: bounded runs, their figures and their expectations (a fake sender, then a local server)."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from stacklet.checks.load import judge, run_load, summarise
from stacklet.checks.verdict import load_line
from stacklet.config.checkspec import CheckSpec, LoadSpec, undefined_placeholders

from .test_checks import http_run, local_api  # noqa: F401  (the fixture)


def test_summarise_counts_errors_and_percentiles():
    answers = [(201, 10.0)] * 97 + [(502, 30.0), (None, 5000.0), (201, 900.0)]
    result = summarise(answers, [201], concurrency=4, seconds=2.0)
    assert (result.requests, result.errors, result.error_rate, result.requests_per_s) == (100, 2, 0.02, 50.0)
    # durations of the 99 answers only: the 99th of 99 is the slowest
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (10.0, 900.0, 900.0)
    assert summarise([(200, 10.0)] * 98 + [(200, 30.0), (200, 900.0)], [], 4, 1.0).p99_ms == 30.0
    assert result.statuses == {"201": 98, "502": 1, "no answer": 1}
    assert summarise([(404, 1.0), (503, 1.0)], [], 1, 1.0).errors == 1  # no expected status: 5xx are errors


def test_judge_names_the_expectation_missed():
    spec = LoadSpec(requests=100, expect={"p99_ms": 200, "error_rate": 0.05})
    fast = summarise([(200, 10.0)] * 100, [], 4, 1.0)
    assert judge(fast, spec) is None
    slow = summarise([(200, 10.0)] * 95 + [(200, 8000.0)] * 5, [], 4, 1.0)
    problem, expected, actual = judge(slow, spec)
    assert problem == "p99 of 100 requests is 8000 ms" and expected == "p99 at most 200 ms"
    assert actual.startswith("p99 8000 ms (p50 10.0 ms")
    failing = summarise([(200, 1.0)] * 90 + [(502, 1.0)] * 10, [], 4, 1.0)
    assert judge(failing, spec)[0] == "10.0% of 100 requests failed"


def test_run_load_is_bounded_in_count_and_concurrency():
    in_flight, most, numbers = [0], [0], []
    lock = threading.Lock()

    def send(number: int):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            numbers.append(number)
        time.sleep(0.005)
        with lock:
            in_flight[0] -= 1
        return 200, 5.0

    result = run_load(LoadSpec(requests=40, concurrency=3), send, [])
    assert result.requests == 40 and sorted(numbers) == list(range(1, 41)) and most[0] == 3


def test_run_load_stops_sending_after_its_duration():
    def send(number: int):
        time.sleep(0.05)
        return 200, 50.0

    clock = time.monotonic()
    result = run_load(LoadSpec(requests=10_000, concurrency=2, duration_s=0.3), send, [])
    assert time.monotonic() - clock < 2 and 4 <= result.requests <= 20


def test_a_load_step_takes_only_status_expectations_and_knows_i():
    step = {"name": "burst", "service": "api", "path": "/orders/${i}", "load": {"requests": 5}}
    check = CheckSpec.model_validate({"name": "c", "steps": [step]})
    assert undefined_placeholders(check) == []
    with pytest.raises(ValidationError, match="with `load:` checks only `expect.status`"):
        CheckSpec.model_validate({"name": "c", "steps": [{**step, "capture": {"x": "$.id"}}]})
    with pytest.raises(ValidationError):
        LoadSpec(requests=10_001)
    with pytest.raises(ValidationError):
        LoadSpec(requests=10, concurrency=65)


def test_a_load_step_against_a_local_server(local_api):  # noqa: F811
    run = http_run(local_api)
    check = CheckSpec.model_validate({"name": "burst", "steps": [
        {"name": "place", "service": "api", "method": "POST", "path": "/orders", "json": {"key": "k-${run}-${i}"},
         "expect": {"status": 201}, "load": {"requests": 30, "concurrency": 4, "expect": {"error_rate": 0}}}]})
    result = run._run_check(check)
    assert result.outcome == "passed", result
    load = result.steps[0].load
    assert (load.requests, load.errors, load.statuses) == (30, 0, {"201": 30})
    line = load_line("burst", result.steps[0])
    assert line.startswith("  load burst › place [api]: 30 requests at 4 (") and line.endswith("errors 0.0%")
    strict = CheckSpec.model_validate({"name": "burst", "steps": [
        {"name": "place", "service": "api", "method": "POST", "path": "/orders", "json": {"key": "k"},
         "expect": {"status": 200}, "load": {"requests": 10, "expect": {"error_rate": 0.5}}}]})
    failed = run._run_check(strict)
    assert failed.outcome == "failed" and run.failures[-1].message.startswith("POST /orders under load: 100.0%")
