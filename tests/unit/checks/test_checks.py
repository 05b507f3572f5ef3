"""The pure parts of `stacklet check`: the checks schema, selection, JSON expectations, signals,
the verdict (order, text, JUnit), history; and one HTTP check against a local server (no Docker)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
import yaml

from stacklet.checks.run import CheckRun, _check_json, select_checks
from stacklet.config.checkspec import CheckSpec, ServiceSignals, substitute, undefined_placeholders
from stacklet.docker.models import ContainerEvent, ContainerInfo
from stacklet.errors import PlanError, StackFileError
from stacklet.checks.signals import ServiceLogs, Snapshot, container_signals, log_signals
from stacklet.config.stack import load_stack
from stacklet.runtime.status import Endpoint, ServiceStatus, SliceStatus
from stacklet.checks.verdict import (CheckResult, Failure, LinkTraffic, LogLine, PreviousRun, StepResult, Verdict, conclude,
                              order_failures, read_history, record, render_history, render_text, to_junit)

COMPOSE = {"services": {"api": {"image": "demo/api", "expose": ["8080"]},
                        "db": {"image": "postgres:16", "expose": ["5432"]}}}


def load_with_checks(tmp_path: Path, checks: list, services: dict | None = None):
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(COMPOSE))
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump({"name": "demo", "services": services or {},
                                                         "checks": checks}, sort_keys=False))
    return load_stack(tmp_path)


def stack_error(tmp_path: Path, checks: list, services: dict | None = None) -> StackFileError:
    with pytest.raises(StackFileError) as caught:
        load_with_checks(tmp_path, checks, services)
    assert caught.value.file == str(tmp_path / "stack.yaml")
    return caught.value


def step(name: str = "get", **fields) -> dict:
    return {"name": name, "service": "api", **fields}


class TestCheckSpecValidation:
    @pytest.fixture(autouse=True)
    def _compose(self, compose_cli):
        """load_stack normalises compose.yaml with `docker compose config`."""

    def test_a_valid_file_loads(self, tmp_path):
        stack = load_with_checks(tmp_path, [
            {"name": "create", "services": ["api"], "steps": [
                step("post", method="POST", path="/items", json={"key": "k-${run}"},
                     expect={"status": 201, "json": {"$.id": {"type": "string"}}}, capture={"item": "$.id"}),
                step("read", path="/items/${item}", expect={"json": {"$.id": "${item}"}})]},
            {"name": "db-up", "command": {"in": "db", "run": ["pg_isready"]}}])
        assert [c.kind for c in stack.checks] == ["http", "command"]
        assert stack.checks[1].target_services() == ["db"]

    def test_unknown_service_in_a_step_names_the_key(self, tmp_path):
        error = stack_error(tmp_path, [{"name": "c", "steps": [step(), {"name": "two", "service": "apx"}]}])
        assert error.key == "checks.0.steps.1.service"
        assert "apx" in error.message and "did you mean 'api'" in error.hint

    def test_unknown_service_in_command_in(self, tmp_path):
        error = stack_error(tmp_path, [{"name": "c", "command": {"run": "true", "in": "dbb"}}])
        assert error.key == "checks.0.command.in"

    def test_placeholder_used_before_it_is_captured(self, tmp_path):
        error = stack_error(tmp_path, [{"name": "c", "steps": [step(path="/items/${item}"),
                                                               step("two", capture={"item": "$.id"})]}])
        assert error.key == "checks.0.steps.0"
        assert "${item}" in error.message and "capture" in error.hint

    def test_placeholder_in_body_contains_is_checked_too(self, tmp_path):
        error = stack_error(tmp_path, [{"name": "c", "steps": [step(expect={"body_contains": "${nope}"})]}])
        assert "${nope}" in error.message

    @pytest.mark.parametrize("path, words", [("$.[", "does not parse"), ("id", "must start with '$'")])
    def test_bad_jsonpath(self, tmp_path, path, words):
        error = stack_error(tmp_path, [{"name": "c", "steps": [step(expect={"json": {path: 1}})]}])
        assert error.key == "checks.0.steps.0.expect.json" and words in error.message

    def test_bad_capture_path(self, tmp_path):
        error = stack_error(tmp_path, [{"name": "c", "steps": [step(capture={"x": "id"})]}])
        assert error.key == "checks.0.steps.0.capture"

    def test_unknown_operator(self, tmp_path):
        error = stack_error(tmp_path, [{"name": "c", "steps": [step(expect={"json": {"$.n": {"gt": 1, "gtx": 2}}})]}])
        assert "unknown operator 'gtx'" in error.message

    @pytest.mark.parametrize("check", [
        {"name": "c", "steps": [step()], "command": {"run": "true"}},
        {"name": "c"}])
    def test_steps_or_command_exactly_one(self, tmp_path, check):
        error = stack_error(tmp_path, [check])
        assert error.key == "checks.0" and "either `steps:`" in error.message

    def test_duplicate_names(self, tmp_path):
        assert "two checks are named" in stack_error(tmp_path, [{"name": "c", "steps": [step()]},
                                                                {"name": "c", "steps": [step()]}]).message
        assert "two steps named" in stack_error(tmp_path, [{"name": "c", "steps": [step(), step()]}]).message

    def test_signals_request_pattern_needs_a_status_group(self, tmp_path):
        error = stack_error(tmp_path, [], services={"api": {"signals": {"request_pattern": "GET (\\d+)"}}})
        assert error.key == "services.api.signals.request_pattern" and "status" in error.message

    def test_signals_bad_regex(self, tmp_path):
        error = stack_error(tmp_path, [], services={"api": {"signals": {"ignore": ["("]}}})
        assert error.key == "services.api.signals.ignore"


def spec(name: str, services: list[str] | None = None, target: str = "api") -> CheckSpec:
    return CheckSpec.model_validate({"name": name, "services": services or [],
                                     "steps": [{"name": "s", "service": target}]})


class TestSelectChecks:
    CHECKS = [spec("orders", ["orders"]), spec("any"), spec("pay", ["payments"]),
              spec("needs-gw", ["orders"], target="gateway")]

    def test_by_changed_service_and_untagged(self):
        chosen = select_checks(self.CHECKS, ["orders"], ["api", "orders"])
        assert [(c.name, reason) for c, reason in chosen] == [
            ("orders", None), ("any", None), ("needs-gw", "needs gateway, which this slice does not run")]

    def test_all_and_names(self):
        assert len(select_checks(self.CHECKS, ["orders"], ["api"], run_all=True)) == 4
        assert [c.name for c, _ in select_checks(self.CHECKS, [], ["api"], names=["pay"])] == ["pay"]

    def test_unknown_name(self):
        with pytest.raises(PlanError, match="no check named 'nope'"):
            select_checks(self.CHECKS, [], [], names=["nope"])


class TestCheckJson:
    ORDER = {"id": "o-1", "status": "paid", "total": 2598, "items": [{"sku": "A"}, {"sku": "B"}], "note": None}

    @pytest.mark.parametrize("path, wanted", [
        ("$.status", "paid"), ("$.total", {"gt": 100, "lte": 2598}), ("$.status", {"ne": "new"}),
        ("$.status", {"matches": "^pa"}), ("$.items", {"len": 2}), ("$.items[*].sku", {"contains": "B"}),
        ("$.id", {"type": "string"}), ("$.total", {"type": "integer"}), ("$.note", {"type": "null"}),
        ("$.gone", {"exists": False}), ("$.id", {"exists": True}), ("$.items[1].sku", "B")])
    def test_met(self, path, wanted):
        assert _check_json(self.ORDER, path, wanted) is None

    def test_wrong_value_names_the_path(self):
        problem, expected, actual = _check_json(self.ORDER, "$.status", "shipped")
        assert problem == 'is "paid"'
        assert expected == '$.status = "shipped"' and actual == '$.status = "paid"'

    def test_missing_path_shows_the_payload(self):
        problem, expected, actual = _check_json({"state": "paid"}, "$.status", "paid")
        assert problem == "is missing from the response"
        assert expected == '$.status = "paid"' and actual == 'no $.status in {"state":"paid"}'

    def test_operator_failure(self):
        assert _check_json(self.ORDER, "$.total", {"lt": 10}) == ("fails lt 10", "$.total lt 10", "$.total = 2598")

    def test_type_does_not_take_booleans_for_numbers(self):
        assert _check_json({"n": True}, "$.n", {"type": "number"}) is not None

    def test_incomparable_types_fail_instead_of_raising(self):
        assert _check_json(self.ORDER, "$.status", {"gt": 3}) is not None

    def test_unexpected_presence(self):
        assert _check_json(self.ORDER, "$.id", {"exists": False})[2] == '$.id = "o-1"'

    def test_no_json_body(self):
        assert _check_json(None, "$.id", "o-1")[0] == "is missing from the response"


class TestSubstitute:
    def test_keeps_the_type_of_a_whole_placeholder(self):
        assert substitute({"n": "${n}", "s": "id-${n}", "l": ["${n}"]}, {"n": 3}) == {"n": 3, "s": "id-3", "l": [3]}

    def test_unknown_placeholders_stay(self):
        assert substitute("/x/${nope}", {}) == "/x/${nope}"

    def test_undefined_placeholders_in_order(self):
        check = CheckSpec.model_validate({"name": "c", "steps": [
            {"name": "a", "service": "s", "path": "/${run}/${x}", "capture": {"y": "$.y"}},
            {"name": "b", "service": "s", "path": "/${y}", "headers": {"H": "${z}"}}]})
        assert undefined_placeholders(check) == [("a", "x"), ("b", "z")]


def container(service: str, state: str = "running", **fields) -> ContainerInfo:
    return ContainerInfo(id=f"id-{service}", name=f"slice-{service}-1", state=state,
                         labels={"dev.stacklet.service": service}, **fields)


class TestContainerSignals:
    def test_a_quiet_run_has_none(self):
        before = Snapshot(containers={"api": container("api", health="healthy")})
        assert container_signals(before, before, []) == []

    def test_exit_oom_restart_and_unhealthy(self):
        before = Snapshot(containers={"api": container("api"), "db": container("db", health="healthy"),
                                      "worker": container("worker")})
        after = Snapshot(containers={
            "api": container("api", state="exited", exit_code=137, oom_killed=True),
            "db": container("db", health="unhealthy", health_output="pg_isready: no response\n"),
            "worker": container("worker", restarts=2)})
        events = [ContainerEvent(container="id-worker", service="worker", action="die", exit_code=1),
                  ContainerEvent(container="id-worker", service="worker", action="die", exit_code=1)]
        found = {(s.service, s.kind): s for s in container_signals(before, after, events)}
        assert set(found) == {("api", "oom"), ("api", "exit"), ("db", "unhealthy"), ("worker", "restart")}
        assert found["api", "exit"].detail == "exited, exit code 137"
        assert found["worker", "restart"].count == 2 and "exit codes 1, 1" in found["worker", "restart"].detail
        assert found["db", "unhealthy"].detail == "unhealthy now: pg_isready: no response"

    def test_health_flapping_during_the_run(self):
        snap = Snapshot(containers={"api": container("api", health="healthy")})
        events = [ContainerEvent(container="id-api", service="api", action="health_status: unhealthy")]
        [signal] = container_signals(snap, snap, events)
        assert signal.kind == "unhealthy" and "was unhealthy 1×" in signal.detail


class TestLogSignals:
    LINES = ["2026-01-01T00:00:00Z api rid=chk-1 POST /orders 500 3ms ERROR boom",
             "2026-01-01T00:00:00Z api rid=r-2 GET /orders/x 502 3ms ERROR payments unreachable",
             "2026-01-01T00:00:00Z api rid=r-3 GET /orders 200 1ms",
             "ERROR: relation does not exist",
             "Traceback (most recent call last):",
             "WARNING disk at 80%",
             "ERROR known noise"]

    def logs(self, **settings) -> list[ServiceLogs]:
        return [ServiceLogs(service="api", lines=self.LINES, settings=ServiceSignals(**settings))]

    def test_5xx_and_error_lines_except_explained_requests(self):
        found = {s.kind: s for s in log_signals(self.logs(), {"chk-1"})}
        assert found["http_5xx"].count == 1 and "r-2" in found["http_5xx"].lines[0]
        assert found["error_log"].count == 3
        assert found["error_log"].lines[0] == "ERROR: relation does not exist"

    def test_ignore_and_patterns_from_stack_yaml(self):
        found = {s.kind: s for s in log_signals(self.logs(ignore=["known noise", "Traceback"],
                                                          error_pattern=r"\bWARNING\b"), set())}
        assert found["http_5xx"].count == 2
        assert found["error_log"].lines == ["WARNING disk at 80%"]

    def test_at_most_three_lines_kept(self):
        logs = [ServiceLogs(service="api", lines=[f"ERROR {i}" for i in range(10)], settings=ServiceSignals())]
        [signal] = log_signals(logs, set())
        assert signal.count == 10 and len(signal.lines) == 3


def failure(kind: str, **fields) -> Failure:
    return Failure(kind=kind, message=fields.pop("message", f"a {kind}"), **fields)


def test_order_failures_blocking_first():
    ordered = order_failures([failure("signal", signal="error_log"), failure("check", check="b"),
                              failure("signal", signal="exit"), failure("unhealthy", service="db"),
                              failure("check", check="a"), failure("signal", signal="link_errors")])
    assert [(f.kind, f.check or f.signal or f.service) for f in ordered] == [
        ("unhealthy", "db"), ("check", "b"), ("check", "a"), ("signal", "exit"), ("signal", "error_log"),
        ("signal", "link_errors")]


FIELDS = dict(slice="s1", stack="shop", changed=["orders"], run_id="abc123", started="2026-01-01T00:00:00Z")


def failed_verdict() -> Verdict:
    long_body = json.dumps({"error": "UndefinedColumn: " + "x" * 500})
    step_failure = Failure(kind="check", service="orders", check="place-order", step="place",
                           message="POST /orders answered 500", expected="status 201", actual=f"500 {long_body}",
                           request_id="chk-abc123-place-order-1",
                           logs=[LogLine(service="orders", line=f"rid=chk-abc123-place-order-1 POST /orders 500 "
                                                                f"ERROR column {i}") for i in range(8)])
    signals = [failure("signal", signal="error_log", service="inventory", message="2 error-level log line(s)",
                       logs=[LogLine(service="inventory", line="ERROR a"), LogLine(service="inventory", line="ERROR b")]),
               failure("signal", signal="restart", service="payments", message="restarted 1×")]
    checks = [CheckResult(name="place-order", kind="http", outcome="failed", reason="step place: ...", seconds=0.2,
                          steps=[StepResult(name="place", service="orders", request="POST http://x/orders",
                                            status=500, passed=False)]),
              CheckResult(name="refund", kind="http", outcome="passed", seconds=0.1),
              CheckResult(name="gateway", kind="http", outcome="skipped", reason="needs gateway")]
    return Verdict(**conclude(FIELDS, [*signals, step_failure], checks, healthy=True), seconds=1.5,
                   traffic=[LinkTraffic(link="orders-db:5432", target="orders-db", proxy="link-1",
                                        upstream="orders-db.origin:5432", bytes_to_upstream=10)])


class TestVerdict:
    def test_conclude(self):
        verdict = failed_verdict()
        assert (verdict.verdict, verdict.exit_code, verdict.ok) == ("failed", 1, False)
        assert verdict.summary == "1 of 2 checks passed, 1 skipped, 2 signals"
        assert [f.kind for f in verdict.failures] == ["check", "signal", "signal"]
        assert verdict.failures[1].signal == "restart"

    def test_passed_and_unhealthy(self):
        passed = conclude(FIELDS, [], [CheckResult(name="a", kind="http", outcome="passed")], healthy=True)
        assert (passed["verdict"], passed["exit_code"], passed["summary"]) == ("passed", 0, "1 of 1 checks passed")
        sick = conclude(FIELDS, [failure("unhealthy", service="db")], [], healthy=False)
        assert (sick["verdict"], sick["exit_code"]) == ("unhealthy", 2)
        assert sick["summary"] == "1 service(s) not healthy; checks not run"

    def test_text_fits_in_40_lines_and_leads_with_the_failing_step(self):
        text = render_text(failed_verdict())
        lines = text.splitlines()
        assert len(lines) <= 40, text
        assert lines[0].startswith("FAILED  slice s1 (shop, changed: orders) · 1 of 2 checks passed")
        assert lines[2] == "1. check [orders] place-order › place"
        assert "   expected: status 201" in lines
        assert all(len(line) <= 220 for line in lines)
        assert text.index("place-order › place") < text.index("signal restart") < text.index("signal error_log")
        assert "   | orders: rid=chk-abc123-place-order-1 POST /orders 500 ERROR column 0" in lines
        assert "skipped: gateway (needs gateway)" in lines

    def test_junit_parses_one_case_per_check(self):
        suite = ElementTree.fromstring(to_junit(failed_verdict()).encode())
        cases = {c.get("name"): c for c in suite.iter("testcase")}
        assert list(cases) == ["slice health", "check place-order", "check refund", "check gateway",
                               "runtime signals"]
        assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "2", "1")
        assert cases["check place-order"].find("failure").get("message") == "POST /orders answered 500"
        assert "request id: chk-abc123-place-order-1" in cases["check place-order"].find("failure").text
        assert cases["check gateway"].find("skipped") is not None
        assert cases["slice health"].find("failure") is None

    def test_schema_version_and_json_round_trip(self):
        verdict = failed_verdict()
        again = Verdict.model_validate_json(verdict.model_dump_json())
        assert again == verdict and json.loads(verdict.model_dump_json())["schema_version"] == 1
        schema = Verdict.model_json_schema()
        assert {"failures", "traffic", "routing", "metrics", "reference", "reference_figures",
                "regressions"} <= set(schema["properties"])
        assert {"peak_memory_mib", "peak_cpu_percent", "restarts", "oom_kills"} <= set(
            schema["$defs"]["ContainerMetrics"]["properties"])


class TestHistory:
    def test_record_read_and_grew(self, tmp_path):
        passed = Verdict(**conclude(FIELDS, [], [CheckResult(name="a", kind="http", outcome="passed")], True),
                         seconds=1.0)
        assert read_history(tmp_path, "s1") == []
        first = record(tmp_path, passed)
        worse = record(tmp_path, failed_verdict())
        same = record(tmp_path, failed_verdict())
        assert (first.grew, worse.grew, same.grew) == (False, True, False)
        entries = read_history(tmp_path, "s1")
        assert [e.failures for e in entries] == [0, 3, 3]
        assert entries[1].failing == ["place-order › place", "restart payments", "error_log inventory"]
        table = render_history(entries)
        assert table.count("▲ new failures") == 1 and len(table.splitlines()) == 4

    def test_unreadable_lines_are_skipped(self, tmp_path):
        record(tmp_path, failed_verdict())
        with (tmp_path / "history" / "s1.jsonl").open("a") as handle:
            handle.write("not json\n")
        assert len(read_history(tmp_path, "s1")) == 1
        assert "no check runs recorded" in render_history([])

    def test_regression_note_in_the_text(self):
        verdict = failed_verdict()
        verdict.previous = PreviousRun(run_id="x", started="2026-01-01T00:00:00Z", verdict="failed", failures=1,
                                       failing=["restart payments"])
        verdict.regressed = True
        assert ("new since the previous run (1 failures at 2026-01-01T00:00:00Z): place-order › place"
                in render_text(verdict))


# -- one HTTP check against a local server (no Docker) -------------------------------------------

class _Shop(BaseHTTPRequestHandler):
    orders: dict[str, dict] = {}

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        order = {"id": f"o-{len(self.orders) + 1}", "status": "paid", "key": body["key"],
                 "rid": self.headers.get("X-Request-Id")}
        self.orders[order["id"]] = order
        self._send(201, order)

    def do_GET(self):
        order = self.orders.get(self.path.rsplit("/", 1)[-1])
        self._send(200 if order else 404, order or {"error": "unknown order"})

    def _send(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def http_run(address: str) -> CheckRun:
    status = SliceStatus(name="s1", stack="demo", project="p", healthy=True, changed=["api"], services=[
        ServiceStatus(name="api", role="changed", container="c", state="running",
                      endpoints=[Endpoint(port=8080, host=address, network="api:8080")])])
    return CheckRun(SimpleNamespace(driver=None), stack=None, status=status, on_progress=lambda message: None)


def http_check(expect_status: str) -> CheckSpec:
    return CheckSpec.model_validate({"name": "order", "steps": [
        {"name": "place", "service": "api", "method": "POST", "path": "/orders", "json": {"key": "k-${run}"},
         "expect": {"status": 201, "json": {"$.key": "k-${run}", "$.id": {"type": "string"}}},
         "capture": {"order_id": "$.id"}},
        {"name": "read", "service": "api", "path": "/orders/${order_id}",
         "expect": {"status": 200, "json": {"$.id": "${order_id}", "$.status": expect_status}}}]})


def test_an_http_check_against_a_local_server(local_api):
    run = http_run(local_api)
    result = run._run_check(http_check("paid"))
    assert result.outcome == "passed", result
    assert [(s.name, s.status, s.passed) for s in result.steps] == [("place", 201, True), ("read", 200, True)]
    placed = _Shop.orders[result.steps[1].request.rsplit("/", 1)[-1]]
    assert placed["key"] == f"k-{run.run_id}" and placed["rid"] == f"chk-{run.run_id}-order-1"


def test_a_failing_http_step_names_the_step_and_the_path(local_api):
    run = http_run(local_api)
    result = run._run_check(http_check("shipped"))
    assert result.outcome == "failed" and result.reason == 'step read: $.status is "paid"'
    [found] = run.failures
    assert (found.service, found.check, found.step) == ("api", "order", "read")
    assert (found.expected, found.actual) == ('$.status = "shipped"', '$.status = "paid"')
    assert found.request_id == f"chk-{run.run_id}-order-2"


def test_an_unreachable_service_is_a_failed_step():
    run = http_run("127.0.0.1:9")
    result = run._run_check(http_check("paid"))
    assert result.outcome == "failed"
    assert run.failures[0].step == "place" and "ConnectionError" in run.failures[0].message


def test_failure_logs_put_the_error_line_of_the_request_first():
    run = http_run("127.0.0.1:9")
    run.failures = [Failure(kind="check", service="orders", check="c", step="s", message="m", request_id="R1")]
    logs = [ServiceLogs(service="inventory", lines=["rid=R1 POST /reservations 201", "ERROR elsewhere"],
                        settings=ServiceSignals()),
            ServiceLogs(service="orders", lines=["rid=R1 POST /orders 500 ERROR boom", "rid=R2 GET /orders 200"],
                        settings=ServiceSignals()),
            ServiceLogs(service="payments", lines=["rid=R1 POST /charges 201", "rid=R1 POST /charges 201"],
                        settings=ServiceSignals())]
    run._attach_logs(logs)
    assert [(log.service, log.line) for log in run.failures[0].logs] == [
        ("orders", "rid=R1 POST /orders 500 ERROR boom"), ("inventory", "rid=R1 POST /reservations 201"),
        ("payments", "rid=R1 POST /charges 201"), ("inventory", "ERROR elsewhere")]


def test_a_long_response_body_is_cut_in_the_verdict(local_api):
    run = http_run(local_api)
    check = CheckSpec.model_validate({"name": "big", "steps": [
        {"name": "place", "service": "api", "method": "POST", "path": "/orders", "json": {"key": "x" * 5000},
         "expect": {"status": 200}}]})
    result = run._run_check(check)
    assert result.outcome == "failed"
    actual = run.failures[0].actual
    assert actual.startswith("201 {") and actual.endswith(" more characters)") and len(actual) < 1100
