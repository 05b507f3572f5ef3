"""Run a slice's checks and its runtime signals into one Verdict.

``select_checks`` (pure) decides which checks apply to a slice; ``CheckRun`` runs them against the
live slice (HTTP steps with ``requests``, commands on the host or in a container), watches the
containers, logs and link proxies while they run, and ``run_checks`` assembles the verdict.
"""

from __future__ import annotations

import json
import operator
import os
import re
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Literal


from stacklet.labels import Label, is_linkproxy
from stacklet.checks.distance import unanswered_links
from stacklet.config.checkspec import JSON_TYPES, CheckSpec, HttpStep, as_operators, parse_jsonpath, substitute
from stacklet.docker.models import ContainerInfo
from stacklet.runtime.engine import SliceEngine
from stacklet.errors import LinkProxyError, PlanError, StackletError
from stacklet.runtime.faults import LinkProxyHandle, active_faults
from stacklet.runtime.readiness import confirm_unjudged, health
from stacklet.runtime.workdir import ensure_workdir
from stacklet.checks.load import judge, run_load
from stacklet.checks.metrics import UsageSampler, container_metrics
from stacklet.checks.reference import baseline_reference
from stacklet.checks.regressions import figures, previous_passing, regressions
from stacklet.checks.evidence import Entry, entries, failing_service, of_request
from stacklet.checks.signals import (CheckWindow, ServiceLogs, Snapshot, container_signals, link_signals, link_traffic,
                                     log_signals, mark_unreached, routing, unreached)
from stacklet.planning.graph import ServiceGraph
from stacklet.config.stack import Stack
from stacklet.runtime.status import SliceStatus
from stacklet.checks.verdict import (CheckResult, Failure, Figure, LogLine, Routing, Signal, StepResult, Verdict,                                    conclude, previous_run, record, regressed)

if TYPE_CHECKING:
    import requests

REQUEST_ID_HEADER = "X-Request-Id"
LOGS_PER_FAILURE = 8
MAX_VALUE_CHARS = 1000  # of expected/actual in the verdict
UNHEALTHY_LOG_TAIL = 8
ProgressSink = Callable[[str], None]


def select_checks(checks: list[CheckSpec], changed: list[str], local: list[str], *, run_all: bool = False,
                  names: list[str] | None = None) -> list[tuple[CheckSpec, str | None]]:
    """The checks to report on, each with the reason it is skipped (None when it runs).

    By default a check applies when it is tagged with a changed service (or not tagged at all);
    ``run_all`` takes every check, ``names`` exactly those. A check that needs a service that does
    not run in the slice is skipped with the reason.
    """
    if names:
        unknown = [n for n in names if n not in {c.name for c in checks}]
        if unknown:
            raise PlanError(f"no check named {unknown[0]!r}",
                            hint=f"checks: {', '.join(c.name for c in checks) or 'none in stack.yaml'}")
        chosen = [c for c in checks if c.name in names]
    elif run_all:
        chosen = list(checks)
    else:
        chosen = [c for c in checks if not c.services or set(c.services) & set(changed)]
    selected = []
    for check in chosen:
        missing = [s for s in check.target_services() if s not in local]
        reason = f"needs {', '.join(missing)}, which this slice does not run" if missing else None
        selected.append((check, reason))
    return selected


def run_checks(engine: SliceEngine, name: str, *, run_all: bool = False, names: list[str] | None = None,
               on_progress: ProgressSink = lambda message: None, keep_history: bool = True,
               reference: Literal["previous", "baseline"] | None = None) -> Verdict:
    """Run the slice's relevant checks and collect runtime signals; record the verdict in its history.

    ``reference`` names regressions of each link's, load step's and container's figures against
    the slice's previous passing run (``previous``) or the same checks run against the baseline
    first (``baseline``).
    """
    stack = engine.stack_of(name)
    status = engine.status(name)
    local = [s.name for s in status.services]
    selected = select_checks(stack.checks, status.changed, local, run_all=run_all, names=names)
    before: list[Figure] | None = None
    described = None
    if reference == "baseline":
        on_progress("the same checks on the baseline (the reference)")
        described, before = baseline_reference(
            engine, stack.name, [c for c, reason in selected if not reason], status.changed, local,
            lambda where, check: CheckRun(engine, stack, where, on_progress)._run_check(check))
    run = CheckRun(engine, stack, status, on_progress)
    verdict = run.execute(selected)
    verdict.previous = previous_run(engine.workdir, name)
    verdict.regressed = regressed(verdict, verdict.previous)
    measured = figures(verdict)
    if reference == "previous":
        passing = previous_passing(engine.workdir, name)
        if passing:
            described, before = f"the previous passing run {passing.run_id} ({passing.started})", passing.figures
        else:
            described = "no previous passing run with traffic (nothing to compare)"
    if described is not None:
        verdict.reference = described
        verdict.reference_figures = before or []
        verdict.regressions = regressions(measured, before) if before else []
    if keep_history:
        record(ensure_workdir(engine.workdir), verdict, measured)
    return verdict


class CheckRun:
    """One run of checks against a live slice."""

    def __init__(self, engine: SliceEngine, stack: Stack, status: SliceStatus, on_progress: ProgressSink):
        self.engine = engine
        self.driver = engine.driver
        self.stack = stack
        self.status = status
        self.on_progress = on_progress
        self.run_id = secrets.token_hex(3)
        self.failures: list[Failure] = []
        self.expected_errors: set[str] = set()  # request ids of steps that asked for a 5xx
        self.proxies: list[LinkProxyHandle] | None = None
        self.windows: dict[int, tuple[float, float]] = {}  # id of a step's failure -> when the step ran (Unix s)

    # -- the run ----------------------------------------------------------------------------------

    def execute(self, selected: list[tuple[CheckSpec, str | None]]) -> Verdict:
        started = datetime.now(timezone.utc)
        clock = time.monotonic()
        fields = dict(slice=self.status.name, stack=self.status.stack, changed=self.status.changed,
                      run_id=self.run_id, started=started.strftime("%Y-%m-%dT%H:%M:%SZ"))
        skipped = [CheckResult(name=c.name, kind=c.kind, description=c.description, outcome="skipped", reason=r)
                   for c, r in selected if r]
        containers = self._containers()
        unanswered = unanswered_links(self.driver, [c for c in containers.values() if is_linkproxy(c.labels)])
        self.failures += [Failure(kind="baseline", service=u.service, message=u.message) for u in unanswered]
        unhealthy = self._unhealthy(containers)
        if unhealthy:
            not_run = [CheckResult(name=c.name, kind=c.kind, description=c.description, outcome="skipped",
                                   reason=r or "the slice is not healthy") for c, r in selected]
            verdict = conclude(fields, unhealthy + self.failures, not_run, healthy=False)
            return Verdict(**verdict, seconds=round(time.monotonic() - clock, 2), unanswered=unanswered)
        before = self._snapshot(containers)
        results = []
        windows = []
        with UsageSampler(self.driver, [c.id for c in containers.values()]) as usage:
            for check, reason in selected:
                if reason:
                    results.append(next(s for s in skipped if s.name == check.name))
                    continue
                self.on_progress(f"check {check.name}")
                start = time.time()
                results.append(self._run_check(check))
                windows.append(CheckWindow(check.name, start, time.time()))
        after = self._snapshot(since=before)
        until = datetime.now(timezone.utc)
        logs = self._logs_since(started - timedelta(seconds=1))
        events = self.driver.events({Label.SLICE: self.status.labelled_as}, started, until)
        evidence = self._attach_logs(logs)
        explained = self.expected_errors | {f.request_id for f in self.failures if f.request_id}
        signals = container_signals(before, after, events) + log_signals(logs, explained, evidence)
        local = {s.name for s in self.status.services}
        graph = ServiceGraph.from_stack(self.stack)
        callers = {route.split(":")[0]: sorted(set(graph.callers(route.split(":")[0])) & local)
                   for route in after.links}
        traffic = link_traffic(before, after, self._routes(), self._faults(), callers)
        signals += link_signals(traffic)
        changed = [name for name in self.status.changed if name in local]
        routed = routing(changed, results, windows, traffic, {link: t.requests for link, t in after.links.items()},
                         {name: callers.get(name) or sorted(set(graph.callers(name)) & local) for name in changed})
        mark_unreached(routed, results, {check.name: check.services for check, _ in selected})
        failures = self.failures + [_signal_failure(s) for s in signals] + _routing_failures(results, routed)
        verdict = conclude(fields, failures, results, healthy=True)
        metrics = container_metrics(before.containers, after.containers, usage.samples, events)
        return Verdict(**verdict, seconds=round(time.monotonic() - clock, 2), signals=signals, routing=routed,
                       metrics=metrics, unanswered=unanswered,
                       traffic=[t for t in traffic if t.connections or t.bytes_to_upstream or t.bytes_from_upstream
                                or t.connect_failures])

    def _run_check(self, check: CheckSpec) -> CheckResult:
        clock = time.monotonic()
        result = CheckResult(name=check.name, kind=check.kind, description=check.description, outcome="passed")
        if check.command:
            error = self._run_command(check)
            if error:
                result.outcome, result.reason = "failed", error.message
                self.failures.append(error)
        else:
            variables: dict[str, Any] = {"run": self.run_id, "slice": self.status.name}
            for index, step in enumerate(check.steps):
                start = time.time()
                step_result, failure = self._run_step(check, index, step, variables)
                result.steps.append(step_result)
                if failure:
                    self.windows[id(failure)] = (start, time.time())
                    result.outcome, result.reason = "failed", f"step {step.name}: {failure.message}"
                    self.failures.append(failure)
                    break
        result.seconds = round(time.monotonic() - clock, 3)
        return result

    # -- HTTP steps -------------------------------------------------------------------------------

    def _run_step(self, check: CheckSpec, index: int, step: HttpStep,
                  variables: dict[str, Any]) -> tuple[StepResult, Failure | None]:
        address = self._address(step.service, step.port)
        request_id = f"chk-{self.run_id}-{check.name}-{index + 1}"[:64]
        headers = {REQUEST_ID_HEADER: request_id, **substitute(step.headers, variables)}
        request_id = next((v for k, v in headers.items() if k.lower() == REQUEST_ID_HEADER.lower()), request_id)
        url = f"http://{address}{substitute(step.path, variables)}"
        result = StepResult(name=step.name, service=step.service, request=f"{step.method} {url}", passed=False,
                            request_id=request_id)
        if any(s >= 500 for s in step.expect.statuses()):
            self.expected_errors.add(request_id)

        def fail(message: str, expected: Any = None, actual: Any = None) -> tuple[StepResult, Failure]:
            result.error = message
            return result, Failure(kind="check", service=step.service, check=check.name, step=step.name,
                                   message=message, request_id=request_id,
                                   expected=None if expected is None else _clip(_show(expected)),
                                   actual=None if actual is None else _clip(_show(actual)))

        if step.load:
            return self._run_load(step, headers, variables, result, fail)
        import requests  # imported on first use: only `check` sends requests, every command imports this module
        body = substitute(step.json_, variables) if step.json_ is not None else None
        clock = time.monotonic()
        try:
            response = requests.request(step.method, url, json=body, headers=headers, timeout=step.timeout_s)
        except requests.RequestException as exc:
            return fail(f"{step.method} {step.path} to {step.service} failed: {type(exc).__name__}",
                        expected=f"a response within {step.timeout_s:g} s", actual=str(exc))
        result.ms = round((time.monotonic() - clock) * 1000, 1)
        result.status = response.status_code
        payload = _json(response)
        expect = step.expect
        if expect.statuses() and response.status_code not in expect.statuses():
            return fail(f"{step.method} {step.path} answered {response.status_code}",
                        expected=f"status {' or '.join(map(str, expect.statuses()))}",
                        actual=f"{response.status_code} {response.text if payload is None else _show(payload)}")
        for path, wanted in substitute(expect.json_, variables).items():
            problem = _check_json(payload, path, wanted)
            if problem:
                return fail(f"{path} {problem[0]}", expected=problem[1], actual=problem[2])
        for header, pattern in expect.headers.items():
            value = response.headers.get(header)
            if value is None or not re.search(substitute(pattern, variables), value):
                return fail(f"header {header} does not match", expected=pattern, actual=value)
        if expect.body_contains is not None and substitute(expect.body_contains, variables) not in response.text:
            return fail("the body lacks the expected text", expected=expect.body_contains, actual=response.text)
        if expect.max_ms is not None and result.ms > expect.max_ms:
            return fail(f"took {result.ms:.0f} ms", expected=f"at most {expect.max_ms} ms", actual=f"{result.ms:.0f} ms")
        for variable, path in step.capture.items():
            found = _find(payload, path)
            if not found:
                return fail(f"cannot capture {variable}: {path} is not in the response",
                            expected=f"a value at {path}", actual=response.text)
            variables[variable] = found[0]
        result.passed = True
        return result, None

    def _run_load(self, step: HttpStep, headers: dict[str, str], variables: dict[str, Any], result: StepResult,
                  fail: Callable[..., tuple[StepResult, Failure]]) -> tuple[StepResult, Failure | None]:
        """Send the step ``load.requests`` times (``${i}`` its number, request ids ``<id>-<i>``) and judge them."""
        import requests
        address = self._address(step.service, step.port)
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=step.load.concurrency))

        def send(number: int) -> tuple[int | None, float]:
            mine = {**variables, "i": number}
            clock = time.monotonic()
            try:
                response = session.request(
                    step.method, f"http://{address}{substitute(step.path, mine)}",
                    json=substitute(step.json_, mine) if step.json_ is not None else None,
                    headers={**headers, REQUEST_ID_HEADER: f"{result.request_id}-{number}"}, timeout=step.timeout_s)
            except requests.RequestException:
                return None, (time.monotonic() - clock) * 1000
            return response.status_code, round((time.monotonic() - clock) * 1000, 2)

        self.expected_errors.add(result.request_id)  # its errors are judged together, by load.expect
        with session:
            result.load = run_load(step.load, send, step.expect.statuses())
        result.ms = result.load.p50_ms
        problem = judge(result.load, step.load)
        if problem:
            return fail(f"{step.method} {step.path} under load: {problem[0]}", expected=problem[1], actual=problem[2])
        result.passed = True
        return result, None

    # -- commands ---------------------------------------------------------------------------------

    def _run_command(self, check: CheckSpec) -> Failure | None:
        command = check.command
        argv = command.run if isinstance(command.run, list) else ["sh", "-c", command.run]
        where = command.in_ or "host"
        try:
            if command.in_:
                container = self.status.service(command.in_).container
                done = self.driver.exec(container, argv, timeout_s=command.timeout_s)
                code, out, err = done.returncode, done.stdout, done.stderr
            else:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=command.timeout_s,
                                      env={**os.environ, **self._command_env()})
                code, out, err = proc.returncode, proc.stdout, proc.stderr
        except (subprocess.TimeoutExpired, StackletError) as exc:
            return Failure(kind="check", service=command.in_, check=check.name, step=where,
                           message=f"command did not finish within {command.timeout_s:g} s",
                           actual=str(getattr(exc, "message", exc)))
        tail = (err.strip() or out.strip())[-600:]
        problem = None
        if code != command.exit_code:
            problem = ("exited with a different code", f"exit code {command.exit_code}", f"exit code {code}: {tail}")
        elif command.stdout_contains is not None and command.stdout_contains not in out:
            problem = ("output lacks the expected text", command.stdout_contains, out.strip()[-600:])
        elif command.stdout_matches is not None and not re.search(command.stdout_matches, out):
            problem = ("output does not match", command.stdout_matches, out.strip()[-600:])
        if problem is None:
            return None
        return Failure(kind="check", service=command.in_, check=check.name, step=where,
                       message=f"`{_show(command.run)}` {problem[0]}", expected=problem[1], actual=problem[2],
                       logs=[LogLine(service=where, line=line) for line in tail.splitlines()[-LOGS_PER_FAILURE:]])

    def _command_env(self) -> dict[str, str]:
        """STACKLET_SLICE, and STACKLET_ADDR_<SERVICE> with the first address of every local service."""
        env = {"STACKLET_SLICE": self.status.name}
        for service in self.status.services:
            if service.endpoints:
                key = re.sub(r"[^A-Z0-9]", "_", service.name.upper())
                env[f"STACKLET_ADDR_{key}"] = _reachable(service.endpoints[0])
        return env

    # -- observing the slice ----------------------------------------------------------------------

    def _containers(self) -> dict[str, ContainerInfo]:
        return {c.service: c for c in self.driver.containers({Label.SLICE: self.status.labelled_as})}

    def _link_proxies(self) -> list[LinkProxyHandle]:
        """The slice's link proxies, looked up once per run (a check does not add or remove any)."""
        if self.proxies is None:
            self.proxies = self.engine.link_proxies(self.status.name)
        return self.proxies

    def _snapshot(self, containers: dict[str, ContainerInfo] | None = None, since: Snapshot | None = None) -> Snapshot:
        """Containers and link counters now; ``since`` a snapshot: with each link's requests after it."""
        snapshot = Snapshot(containers=self._containers() if containers is None else containers)
        for handle in self._link_proxies():
            for route in handle.routes:
                mark = since.links.get(route) if since else None
                try:
                    snapshot.links[route] = handle.control.traffic(route, mark.last_seq if mark else None)
                except LinkProxyError as exc:
                    snapshot.link_errors.append(exc.message)
        return snapshot

    def _routes(self) -> dict[str, tuple[str, str]]:
        return {route: (handle.name, upstream) for handle in self._link_proxies()
                for route, upstream in handle.routes.items()}

    def _faults(self) -> dict[str, list[str]]:
        faults: dict[str, list[str]] = {}
        for fault in active_faults(self._link_proxies()):
            faults.setdefault(fault.route, []).append(fault.type)
        return faults

    def _logs_since(self, since: datetime) -> list[ServiceLogs]:
        """Each service's log entries since ``since``: lines, tracebacks joined, with their times."""
        local = [s for s in self.status.services]
        with ThreadPoolExecutor(max_workers=8) as pool:
            texts = list(pool.map(lambda s: self.driver.container_logs(s.container, since=since, timestamps=True),
                                  local))
        logs = []
        for service, text in zip(local, texts):
            found = entries(service.name, text)
            logs.append(ServiceLogs(service=service.name, lines=[e.text for e in found], times=[e.time for e in found],
                                    settings=self.stack.service_meta(service.name).signals))
        return logs

    def _attach_logs(self, logs: list[ServiceLogs]) -> set[tuple[str, str]]:
        """Give each check failure the log entries of its request, and name the service that failed.

        The request's entries are those with its request id or, when no line carries it, the error
        and 5xx entries logged while its step ran (returned as (service, entry): they are the
        failure's evidence, not signals of their own). Error entries come first, those of the failing
        service before others; a failure found by id, or with no evidence, then gets the run's error
        lines. The failing service is the one whose error came first.
        """
        errors = {entry.service: re.compile(entry.settings.error_pattern) for entry in logs}
        statuses = {entry.service: re.compile(entry.settings.request_pattern) for entry in logs}
        flat = [Entry(service=e.service, text=text, time=e.times[i] if i < len(e.times) else None)
                for e in logs for i, text in enumerate(e.lines)]

        def is_error(entry: Entry) -> bool:
            return bool(errors[entry.service].search(entry.text))

        def is_server_error(entry: Entry) -> bool:
            match = statuses[entry.service].search(entry.text)
            return bool(match and match.group("status").startswith("5"))

        grouped: set[tuple[str, str]] = set()
        for failure in self.failures:
            evidence, by_id = of_request(flat, failure.request_id, self.windows.get(id(failure)), is_error,
                                         is_server_error)
            if failure.kind == "check":
                failure.service = failing_service(evidence, is_error, failure.service)
            mine = sorted(evidence, key=lambda e: (not is_error(e), e.service != failure.service, e.time or 0.0))
            picked = [LogLine(service=e.service, line=e.text) for e in mine]
            if by_id or not evidence:
                picked += [LogLine(service=e.service, line=e.text) for e in flat
                           if is_error(e) and not (failure.request_id and failure.request_id in e.text)]
            else:
                grouped |= {(e.service, e.text) for e in evidence}
            unique = {(log.service, log.line): log for log in reversed(picked)}  # the first of duplicates
            failure.logs = (failure.logs + list(reversed(unique.values())))[:LOGS_PER_FAILURE]
        return grouped

    def _unhealthy(self, containers: dict[str, ContainerInfo]) -> list[Failure]:
        failures = []
        for info in sorted(confirm_unjudged(self.driver, list(containers.values())), key=lambda c: c.service):
            service = info.service
            if health(info).ready:
                continue
            what = info.health if info.state == "running" else f"{info.state} (exit code {info.exit_code})"
            logs = self.driver.container_logs(info.id, tail=UNHEALTHY_LOG_TAIL).splitlines()
            failures.append(Failure(kind="unhealthy", service=service,
                                    message=f"{service} is {what}" + (f" after {info.restarts} restarts"
                                                                      if info.restarts else ""),
                                    actual=info.health_output.strip()[-300:] or None,
                                    logs=[LogLine(service=service, line=line) for line in logs]))
        return failures

    def _address(self, service: str, port: int | None) -> str:
        status = self.status.service(service)
        endpoints = [e for e in status.endpoints if port is None or e.port == port]
        if not endpoints:
            raise PlanError(f"service {service} publishes no port {port}" if port else f"{service} has no ports",
                            hint="set `port:` on the step to one of the service's ports")
        return _reachable(endpoints[0])


def _reachable(endpoint) -> str:
    """The address of an endpoint that works from where stacklet runs."""
    return getattr(endpoint, "address", None) or endpoint.host or endpoint.network


def _routing_failures(checks: list[CheckResult], routed: list[Routing]) -> list[Failure]:
    """One finding when checks passed but nothing of the run reached a changed service."""
    names = unreached(checks, routed)
    if not names:
        return []
    services = ", ".join(r.service for r in routed)
    return [Failure(kind="routing", service=routed[0].service if len(routed) == 1 else None,
                    message=f"{', '.join(names)} passed without reaching {services}: no request or connection "
                            f"reached the changed {'service' if len(routed) == 1 else 'services'} in the slice",
                    expected=f"requests to {services} (directly or through a link)", actual="none during the run")]


def _signal_failure(signal: Signal) -> Failure:
    return Failure(kind="signal", service=signal.service, signal=signal.kind, message=signal.detail,
                   logs=[LogLine(service=signal.service, line=line) for line in signal.lines])


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _find(payload: Any, path: str) -> list[Any]:
    if payload is None:
        return []
    return [match.value for match in parse_jsonpath(path).find(payload)]


def _check_json(payload: Any, path: str, wanted: Any) -> tuple[str, str, str] | None:
    """(problem, expected, actual) when ``path`` in ``payload`` does not meet ``wanted``; both name the path."""
    found = _find(payload, path)
    operators = as_operators(wanted) or {"eq": wanted}
    absent = f"no {path} in {_show(payload)}"
    if "exists" in operators:
        if bool(found) != bool(operators["exists"]):
            return (("exists" if found else "is missing"), f"{path} {'exists' if operators['exists'] else 'absent'}",
                    f"{path} = {_literal(found[0])}" if found else absent)
        if not operators["exists"]:
            return None
    if not found:
        expected = " and ".join(f"{path} = {_literal(v)}" if op == "eq" else f"{path} {op} {_literal(v)}"
                                for op, v in operators.items() if op != "exists")
        return ("is missing from the response", expected or f"{path} exists", absent)
    actual = found[0] if len(found) == 1 else found
    for op, value in operators.items():
        if op == "exists":
            continue
        if not _meets(op, actual, value):
            problem = f"is {_literal(actual)}" if op == "eq" else f"fails {op} {_literal(value)}"
            expected = f"{path} = {_literal(value)}" if op == "eq" else f"{path} {op} {_literal(value)}"
            return (problem, expected, f"{path} = {_literal(actual)}")
    return None


COMPARE = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
           "lte": operator.le, "contains": lambda actual, value: value in actual,
           "matches": lambda actual, value: re.search(str(value), str(actual)) is not None,
           "len": lambda actual, value: len(actual) == value,
           "type": lambda actual, value: isinstance(actual, JSON_TYPES[value])
           and not (value in ("number", "integer") and isinstance(actual, bool))}


def _meets(op: str, actual: Any, value: Any) -> bool:
    try:
        return bool(COMPARE[op](actual, value))
    except TypeError:
        return False


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Keep the verdict short: a long response body is cut, saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def _literal(value: Any) -> str:
    """A value as JSON, so that "1" and 1 read differently."""
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
