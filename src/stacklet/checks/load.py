"""Load steps: one HTTP step sent many times at a concurrency, bounded in count and time.

``run_load`` drives any ``send(i) -> (status or None, ms)``; ``summarise`` and ``judge`` are pure,
so the figures and the expectations are tested without a server.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

from stacklet.checks.signals import percentile
from stacklet.checks.verdict import LoadResult
from stacklet.config.checkspec import LoadSpec

Send = Callable[[int], tuple[int | None, float]]


def run_load(spec: LoadSpec, send: Send, ok_statuses: list[int]) -> LoadResult:
    """Send ``spec.requests`` requests (numbered from 1), ``spec.concurrency`` at a time, until done or
    ``spec.duration_s`` has passed; an error is no answer, or a status outside ``ok_statuses``
    (any status below 500 when none is expected)."""
    clock = time.monotonic()
    deadline = clock + spec.duration_s if spec.duration_s else None
    answers: list[tuple[int | None, float]] = []
    with ThreadPoolExecutor(max_workers=spec.concurrency) as pool:
        pending: set[Future] = set()
        sent = 0
        while sent < spec.requests or pending:
            while sent < spec.requests and len(pending) < spec.concurrency and not (
                    deadline and time.monotonic() >= deadline):
                sent += 1
                pending.add(pool.submit(send, sent))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            answers += [future.result() for future in done]
            if deadline and time.monotonic() >= deadline:
                sent = spec.requests  # nothing more is sent; what is in flight is awaited
    return summarise(answers, ok_statuses, spec.concurrency, time.monotonic() - clock)


def summarise(answers: list[tuple[int | None, float]], ok_statuses: list[int], concurrency: int,
              seconds: float) -> LoadResult:
    """The figures of a load run from its (status or None, ms) answers."""
    errors = sum(1 for status, _ in answers if not _ok(status, ok_statuses))
    durations = sorted(ms for status, ms in answers if status is not None)
    statuses: dict[str, int] = {}
    for status, _ in answers:
        key = str(status) if status is not None else "no answer"
        statuses[key] = statuses.get(key, 0) + 1
    return LoadResult(requests=len(answers), concurrency=concurrency, seconds=round(seconds, 3),
                      errors=errors, error_rate=round(errors / len(answers), 4) if answers else 0.0,
                      requests_per_s=round(len(answers) / seconds, 1) if seconds > 0 else 0.0,
                      p50_ms=percentile(durations, 50), p99_ms=percentile(durations, 99),
                      max_ms=durations[-1] if durations else None, statuses=dict(sorted(statuses.items())))


def _ok(status: int | None, ok_statuses: list[int]) -> bool:
    if status is None:
        return False
    return status in ok_statuses if ok_statuses else status < 500


def judge(result: LoadResult, spec: LoadSpec) -> tuple[str, str, str] | None:
    """(problem, expected, actual) when the run misses an expectation of ``spec.expect``, else None."""
    expect = spec.expect
    if expect.error_rate is not None and result.error_rate > expect.error_rate:
        return (f"{result.error_rate:.1%} of {result.requests} requests failed",
                f"error rate at most {expect.error_rate:.1%}", f"{result.errors} errors: {result.statuses}")
    if expect.p99_ms is not None and (result.p99_ms is None or result.p99_ms > expect.p99_ms):
        actual = "no answers" if result.p99_ms is None else f"p99 {result.p99_ms:g} ms"
        return (f"p99 of {result.requests} requests is {actual.removeprefix('p99 ')}",
                f"p99 at most {expect.p99_ms:g} ms", f"{actual} (p50 {result.p50_ms} ms, max {result.max_ms} ms)")
    return None
