"""The verdict of a check run: its models (the documented JSON), text and JUnit forms, and history.

Failures are ordered by what blocks most: the slice not being healthy, then failed checks, then
runtime signals (crashes before log noise). The text form is meant to fit in about 40 lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

from pydantic import BaseModel, Field

from stacklet.checks.distance import UnansweredLink

SCHEMA_VERSION = 1
EXIT_CODES = {"passed": 0, "failed": 1, "unhealthy": 2}
SIGNAL_ORDER = ("exit", "oom", "restart", "unhealthy", "http_5xx", "error_log", "link_errors")
TEXT_FAILURES = 6
TEXT_REGRESSIONS = 3
TEXT_LOG_LINES = 5
TEXT_LOG_WIDTH = 200
TRUNCATE = 160


class LogLine(BaseModel):
    service: str
    line: str


class Failure(BaseModel):
    """One thing that went wrong, with the evidence an agent needs to fix it."""

    kind: Literal["unhealthy", "baseline", "check", "signal", "routing"] = Field(
        description="baseline: a forwarded link whose baseline on another host does not answer; "
                    "routing: checks passed without reaching any changed service")
    service: str | None = Field(None, description="the service that failed: for a check, the one whose error "
                                                  "came first in its request's logs (else the one the step called)")
    check: str | None = None
    step: str | None = None
    signal: str | None = Field(None, description=f"for kind=signal: one of {', '.join(SIGNAL_ORDER)}")
    message: str = Field(description="one line: what went wrong")
    expected: str | None = None
    actual: str | None = None
    request_id: str | None = Field(None, description="X-Request-Id of the failing request")
    logs: list[LogLine] = Field(default_factory=list, description="entries of the failing request first (a "
                                                                  "traceback is one entry, its lines joined by \\n)")


class LoadResult(BaseModel):
    """What a load step's requests achieved together."""

    requests: int = Field(description="requests answered or failed (fewer than asked when duration_s ran out)")
    concurrency: int
    seconds: float
    errors: int = Field(description="no answer, or a status the step did not expect (default: 5xx)")
    error_rate: float
    requests_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    statuses: dict[str, int] = Field(default_factory=dict, description="status (or `no answer`) -> count")


class StepResult(BaseModel):
    name: str
    service: str
    request: str = Field(description="METHOD URL as sent")
    status: int | None = None
    ms: float | None = None
    passed: bool
    request_id: str | None = None
    error: str | None = None
    load: LoadResult | None = Field(None, description="for a `load:` step: the figures of all its requests")


class CheckResult(BaseModel):
    name: str
    kind: Literal["http", "command"]
    description: str = ""
    outcome: Literal["passed", "failed", "skipped"]
    reason: str | None = Field(None, description="why it failed or was skipped")
    seconds: float = 0.0
    steps: list[StepResult] = Field(default_factory=list)
    reached: list[str] = Field(default_factory=list, description="changed services its requests reached "
                                                                 "(directly or through a link)")


class Signal(BaseModel):
    """A runtime signal seen on one service (or link) while the checks ran."""

    service: str
    kind: str = Field(description=", ".join(SIGNAL_ORDER))
    count: int = 1
    detail: str
    lines: list[str] = Field(default_factory=list)


class LinkTraffic(BaseModel):
    """Traffic through one link (a name:port served by a link proxy) during the run."""

    link: str
    target: str = Field(description="the service the link leads to")
    callers: list[str] = Field(default_factory=list, description="the slice's services that call it")
    proxy: str
    upstream: str
    protocol: str = Field("auto", description="auto, http or tcp: what the link proxy follows as HTTP")
    connections: int = 0
    connect_failures: int = Field(0, description="client connections whose upstream could not be reached")
    resets: int = 0
    bytes_to_upstream: int = 0
    bytes_from_upstream: int = 0
    requests: int = Field(0, description="HTTP requests (on connections followed as HTTP)")
    responses_5xx: int = 0
    no_response: int = Field(0, description="requests whose connection ended before the answer")
    fault_responses: int = Field(0, description="requests answered by an HTTP fault, not the upstream")
    p50_ms: float | None = Field(None, description="median request duration (head to head)")
    p99_ms: float | None = None
    faults: list[str] = Field(default_factory=list, description="fault types in force on the link")


class RoutingSource(BaseModel):
    """Who reached a changed service, and how."""

    source: str = Field(description="`check` (the check's own requests), or the calling service(s)")
    via: str = Field(description="`direct` (the service's own port in the slice) or the link")
    requests: int = 0
    connections: int = 0


class Routing(BaseModel):
    """How much of the run reached one changed service (its copy in the slice)."""

    service: str
    requests: int = 0
    connections: int = 0
    sources: list[RoutingSource] = Field(default_factory=list)
    unreached: list[str] = Field(default_factory=list, description="checks selected for this service that passed "
                                                                   "without any of their requests reaching it")

class ContainerMetrics(BaseModel):
    """One container's resource use while the checks ran (sampled with `docker stats`)."""

    service: str
    container: str
    samples: int = Field(0, description="`docker stats` samples taken during the run (about one a second)")
    peak_memory_mib: float | None = Field(None, description="the highest memory use sampled, MiB")
    peak_cpu_percent: float | None = Field(None, description="the highest CPU sampled, % of one core")
    mean_cpu_percent: float | None = Field(None, description="CPU averaged over the samples, % of one core")
    restarts: int = Field(0, description="restarts during the run")
    oom_kills: int = Field(0, description="kills for using too much memory during the run")


class Figure(BaseModel):
    """The comparable figures of one link or load step in a run (kept in the slice's history)."""

    name: str = Field(description="`caller → target` for a link, `check › step [service]` for a load step, "
                                  "`service (container)` for a container")
    requests: int = 0
    requests_per_s: float = 0.0
    p99_ms: float | None = None
    error_rate: float = Field(0.0, description="5xx (a link) or errors (a load step) per request")
    peak_memory_mib: float | None = Field(None, description="a container's peak memory")


class Regression(BaseModel):
    """A figure that got worse than in the reference run."""

    name: str
    p99_ms_before: float | None = None
    p99_ms_after: float | None = None
    error_rate_before: float
    error_rate_after: float
    peak_memory_mib_before: float | None = None
    peak_memory_mib_after: float | None = None
    line: str = Field(description="one line, e.g. `orders → payments: p99 38 ms → 2,140 ms (x56) under 20 req/s`")


class PreviousRun(BaseModel):
    run_id: str
    started: str
    verdict: str
    failures: int
    failing: list[str] = Field(default_factory=list, description="check › step, or signal service")


class Verdict(BaseModel):
    """The one answer of `stacklet check`."""

    schema_version: int = SCHEMA_VERSION
    ok: bool
    verdict: Literal["passed", "failed", "unhealthy"]
    exit_code: int
    summary: str
    slice: str
    stack: str
    changed: list[str] = Field(default_factory=list)
    run_id: str
    started: str
    seconds: float
    checks: list[CheckResult] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    signals: list[Signal] = Field(default_factory=list)
    traffic: list[LinkTraffic] = Field(default_factory=list, description="every link that carried traffic")
    routing: list[Routing] = Field(default_factory=list, description="per changed service running in the slice")
    metrics: list[ContainerMetrics] = Field(default_factory=list, description="per container of the slice")
    reference: str | None = Field(None, description="what `regressions` compare with: the previous passing run "
                                                    "(`--reference previous`, by run id and start) or the same "
                                                    "checks run against the baseline (`--reference baseline`)")
    reference_figures: list[Figure] = Field(default_factory=list, description="the reference's figures")
    regressions: list[Regression] = Field(default_factory=list, description="links and load steps whose p99 at "
                                                                            "least doubled or error rate grew, "
                                                                            "containers whose peak memory grew")
    previous: PreviousRun | None = None
    regressed: bool = Field(False, description="a failure the previous run of this slice did not have (by check "
                                               "and step, or signal and service; log noise aside)")
    unanswered: list[UnansweredLink] = Field(default_factory=list, description="forwarded links whose baseline on "
                                                                               "another host does not answer")


def order_failures(failures: list[Failure]) -> list[Failure]:
    """Unhealthy first, then failed checks (in run order), then signals by severity."""
    kinds = {"unhealthy": 0, "baseline": 1, "check": 2, "routing": 3, "signal": 4}
    rank = {name: i for i, name in enumerate(SIGNAL_ORDER)}
    return sorted(failures, key=lambda f: (kinds[f.kind], rank.get(f.signal or "", 0) if f.kind == "signal" else 0))


def conclude(verdict_fields: dict, failures: list[Failure], checks: list[CheckResult], healthy: bool) -> dict:
    """The verdict, exit code and summary line for a run's findings."""
    failures = order_failures(failures)
    outcome = "unhealthy" if not healthy else "failed" if failures else "passed"
    ran = [c for c in checks if c.outcome != "skipped"]
    passed = sum(c.outcome == "passed" for c in ran)
    signals = sum(f.kind == "signal" for f in failures)
    parts = [f"{passed} of {len(ran)} checks passed" if ran else "no checks ran (runtime signals only)"]
    if skipped := len(checks) - len(ran):
        parts.append(f"{skipped} skipped")
    if any(f.kind == "routing" for f in failures):
        parts.append("no changed service reached")
    if signals:
        parts.append(f"{signals} signal{'s' if signals != 1 else ''}")
    if not healthy:
        parts = [f"{sum(f.kind == 'unhealthy' for f in failures)} service(s) not healthy; checks not run"]
    return {**verdict_fields, "ok": outcome == "passed", "verdict": outcome, "exit_code": EXIT_CODES[outcome],
            "summary": ", ".join(parts), "failures": failures, "checks": checks}


def _cut(text: str | None, limit: int = TRUNCATE) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(verdict: Verdict) -> str:
    """The verdict for people and agents: short, most blocking first."""
    head = {"passed": "PASSED", "failed": "FAILED", "unhealthy": "UNHEALTHY"}[verdict.verdict]
    lines = [f"{head}  slice {verdict.slice} ({verdict.stack}, changed: {', '.join(verdict.changed) or '-'}) · "
             f"{verdict.summary} · {verdict.seconds:.1f} s"]
    if verdict.routing:
        lines.append(routing_line(verdict.routing))
    lines += [load_line(check.name, step) for check in verdict.checks for step in check.steps if step.load]
    if verdict.reference:
        lines.append(f"  against {verdict.reference}: " + ("no regressions" if not verdict.regressions else
                                                         f"{len(verdict.regressions)} regression(s)"))
        lines += [f"    {_cut(regression.line, 160)}" for regression in verdict.regressions[:TEXT_REGRESSIONS]]
    lines += [metrics_line(m) for m in verdict.metrics if m.restarts or m.oom_kills]
    if verdict.regressed and verdict.previous:
        new = new_failures([_failing_name(f) for f in verdict.failures], verdict.previous.failing)
        lines.append(f"  new since the previous run ({verdict.previous.failures} failures at "
                     f"{verdict.previous.started}): {_cut(', '.join(new), 100)}")
    for number, failure in enumerate(verdict.failures[:TEXT_FAILURES], start=1):
        lines.append("")
        where = " › ".join(p for p in (failure.check, failure.step) if p)
        label = {"unhealthy": "not healthy", "baseline": "baseline does not answer", "check": "check",
                 "routing": "routing",
                 "signal": f"signal {failure.signal}"}[failure.kind]
        service = f"[{failure.service}] " if failure.service else ""
        lines.append(f"{number}. {label} {service}{where}".rstrip())
        lines.append(f"   {_cut(failure.message)}")
        if failure.expected is not None or failure.actual is not None:
            lines.append(f"   expected: {_cut(failure.expected, 120)}")
            lines.append(f"   actual:   {_cut(failure.actual, 120)}")
        if failure.request_id:
            lines.append(f"   request id: {failure.request_id}")
        for log in failure.logs[:TEXT_LOG_LINES]:
            first, *rest = log.line.split("\n")  # a traceback is one entry, shown whole
            lines.append(f"   | {log.service}: {_cut(first, TEXT_LOG_WIDTH)}")
            lines += [f"   |   {_cut(more, TEXT_LOG_WIDTH)}" for more in rest]
    if len(verdict.failures) > TEXT_FAILURES:
        lines.append(f"\n… {len(verdict.failures) - TEXT_FAILURES} more failures (`stacklet check --json` has all)")
    passed = [c.name for c in verdict.checks if c.outcome == "passed"]
    skipped = [f"{c.name} ({c.reason})" for c in verdict.checks if c.outcome == "skipped"]
    if passed or skipped:
        lines.append("")
    if passed:
        lines.append(_cut("passed: " + ", ".join(passed), 200))
    if skipped:
        lines.append(_cut("skipped: " + "; ".join(skipped), 200))
    return "\n".join(lines)


def routing_line(routing: list[Routing]) -> str:
    """One line: what each changed service received during the run, and from whom."""
    parts = []
    for entry in routing:
        sources = ", ".join(f"{s.source} {_count(s)}" + ("" if s.via == "direct" else f" via {s.via}")
                            for s in entry.sources)
        parts.append(f"{entry.service} received {_count(entry)}" + (f" ({sources})" if sources else "")
                     + (f", not from {', '.join(entry.unreached)}" if entry.unreached else ""))
    return "  " + _cut("routing: " + "; ".join(parts), 200)


def metrics_line(metrics: ContainerMetrics) -> str:
    """One line of a container that restarted or was OOM-killed during the run."""
    parts = [f"restarted {metrics.restarts}×" if metrics.restarts else "",
             f"OOM-killed {metrics.oom_kills}×" if metrics.oom_kills else "",
             f"peak memory {metrics.peak_memory_mib:,.0f} MiB" if metrics.peak_memory_mib is not None else "",
             f"peak CPU {metrics.peak_cpu_percent:g}%" if metrics.peak_cpu_percent is not None else ""]
    return f"  {metrics.service}: " + ", ".join(p for p in parts if p)


def load_line(check: str, step: StepResult) -> str:
    """One line of a load step's figures."""
    load = step.load
    return (f"  load {check} › {step.name} [{step.service}]: {load.requests} requests at {load.concurrency} "
            f"({load.requests_per_s:g}/s), p50 {load.p50_ms} ms, p99 {load.p99_ms} ms, errors {load.error_rate:.1%}")


def _count(counted: Routing | RoutingSource) -> str:
    if not (counted.requests or counted.connections):
        return "nothing"
    if counted.requests:
        return f"{counted.requests} request{'s' if counted.requests != 1 else ''}"
    return f"{counted.connections} connection{'s' if counted.connections != 1 else ''}"


def to_junit(verdict: Verdict) -> str:
    """JUnit XML: one test case per check, plus slice health and the runtime signals."""
    suite = ElementTree.Element("testsuite", name=f"stacklet {verdict.slice}", timestamp=verdict.started,
                                time=f"{verdict.seconds:.3f}")
    cases = 0
    failures = 0

    def case(name: str, seconds: float = 0.0, failure: str | None = None, detail: str = "",
             skipped: str | None = None) -> None:
        nonlocal cases, failures
        cases += 1
        element = ElementTree.SubElement(suite, "testcase", classname=f"stacklet.{verdict.stack}", name=name,
                                         time=f"{seconds:.3f}")
        if failure is not None:
            failures += 1
            ElementTree.SubElement(element, "failure", message=failure).text = detail
        elif skipped is not None:
            ElementTree.SubElement(element, "skipped", message=skipped)

    unhealthy = [f for f in verdict.failures if f.kind == "unhealthy"]
    case("slice health", failure="; ".join(f.message for f in unhealthy) if unhealthy else None,
         detail="\n".join(_failure_detail(f) for f in unhealthy))
    for check in verdict.checks:
        mine = [f for f in verdict.failures if f.kind == "check" and f.check == check.name]
        case(f"check {check.name}", check.seconds,
             failure=mine[0].message if check.outcome == "failed" and mine else
             (check.reason if check.outcome == "failed" else None),
             detail="\n\n".join(_failure_detail(f) for f in mine),
             skipped=check.reason if check.outcome == "skipped" else None)
    routing = [f for f in verdict.failures if f.kind == "routing"]
    if verdict.routing:
        case("routing to the changed services", failure=routing[0].message if routing else None,
             detail="\n\n".join(_failure_detail(f) for f in routing))
    signals = [f for f in verdict.failures if f.kind == "signal"]
    case("runtime signals", failure=f"{len(signals)} signal(s)" if signals else None,
         detail="\n\n".join(_failure_detail(f) for f in signals))
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("skipped", str(sum(c.outcome == "skipped" for c in verdict.checks)))
    ElementTree.indent(suite)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _failure_detail(failure: Failure) -> str:
    lines = [failure.message]
    if failure.expected is not None or failure.actual is not None:
        lines += [f"expected: {failure.expected}", f"actual: {failure.actual}"]
    if failure.request_id:
        lines.append(f"request id: {failure.request_id}")
    lines += [f"{log.service}: {log.line}" for log in failure.logs]
    return "\n".join(lines)


# -- history --------------------------------------------------------------------------------------

class HistoryEntry(BaseModel):
    """One past run of a slice's checks, as kept in its history file."""

    run_id: str
    started: str
    verdict: str
    exit_code: int
    seconds: float
    failures: int
    passed: int
    ran: int
    failing: list[str] = Field(default_factory=list, description="check › step, or signal service")
    figures: list[Figure] = Field(default_factory=list, description="per link and load step, to compare with")
    grew: bool = Field(False, description="a failure the run before it did not have")


def history_file(workdir: Path, slice_name: str) -> Path:
    return workdir / "history" / f"{slice_name}.jsonl"


def read_history(workdir: Path, slice_name: str) -> list[HistoryEntry]:
    """The slice's past verdicts, oldest first; unreadable lines are skipped."""
    path = history_file(workdir, slice_name)
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(HistoryEntry.model_validate_json(line))
        except ValueError:
            continue
    return entries


def record(workdir: Path, verdict: Verdict, figures: list[Figure] | None = None) -> HistoryEntry:
    """Append the verdict (and its ``figures``) to the slice's history and return its entry."""
    previous = read_history(workdir, verdict.slice)
    entry = HistoryEntry(
        run_id=verdict.run_id, started=verdict.started, verdict=verdict.verdict, exit_code=verdict.exit_code,
        seconds=verdict.seconds, failures=len(verdict.failures),
        passed=sum(c.outcome == "passed" for c in verdict.checks),
        ran=sum(c.outcome != "skipped" for c in verdict.checks),
        failing=[_failing_name(f) for f in verdict.failures], figures=figures or [],
        grew=bool(previous) and bool(new_failures([_failing_name(f) for f in verdict.failures], previous[-1].failing)))
    path = history_file(workdir, verdict.slice)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(entry.model_dump(mode="json")) + "\n")
    return entry


def previous_run(workdir: Path, slice_name: str) -> PreviousRun | None:
    entries = read_history(workdir, slice_name)
    if not entries:
        return None
    last = entries[-1]
    return PreviousRun(run_id=last.run_id, started=last.started, verdict=last.verdict, failures=last.failures,
                       failing=last.failing)


# Signals that follow from a failure already named (a failing request logs an error and answers 5xx, a link
# counts the reset): how many of them a run sees depends on timing, so they never make a run a regression.
NOISY_SIGNALS = ("http_5xx", "error_log", "link_errors")


def new_failures(failing: list[str], before: list[str]) -> list[str]:
    """Failures (as ``_failing_name`` spells them) that ``before`` did not have, noisy signals aside.

    Failures are compared by identity (check and step, signal and service, unhealthy service), never by
    count: the same failure repeated is not a regression, whatever the noise around it.
    """
    earlier = set(before)
    return sorted({name for name in failing if name not in earlier and not _is_noise(name)})


def _is_noise(failing_name: str) -> bool:
    return "›" not in failing_name and failing_name.split(" ", 1)[0] in NOISY_SIGNALS


def regressed(verdict: Verdict, previous: PreviousRun | None) -> bool:
    """True when ``verdict`` has a failure the previous run did not have."""
    return previous is not None and bool(new_failures([_failing_name(f) for f in verdict.failures], previous.failing))


def _failing_name(failure: Failure) -> str:
    if failure.kind == "check":
        return " › ".join(p for p in (failure.check, failure.step) if p)
    if failure.kind == "signal":
        return f"{failure.signal} {failure.service}"
    if failure.kind == "routing":
        return f"routing {failure.service}"
    return f"unhealthy {failure.service}"


def render_history(entries: list[HistoryEntry]) -> str:
    """A table of past runs, newest last; runs with a failure the run before did not have are flagged."""
    if not entries:
        return "no check runs recorded for this slice yet (`stacklet check` runs them)"
    lines = [f"{'started':20}  {'verdict':9}  {'checks':>7}  {'failures':>8}  {'seconds':>7}  failing"]
    for entry in entries:
        flag = "  ▲ new failures" if entry.grew else ""
        lines.append(f"{entry.started:20}  {entry.verdict:9}  {entry.passed:>3}/{entry.ran:<3}  {entry.failures:>8}  "
                     f"{entry.seconds:>7.1f}  {_cut(', '.join(entry.failing), 70) or '-'}{flag}")
    return "\n".join(lines)
