"""Regressions against a reference run: the figures of each link and load step, compared.

``figures`` reads them from a verdict; ``regressions`` compares two runs' figures and names what
got worse in one line each: ``orders → payments: p99 38 ms → 2,140 ms (x56) under 20 req/s``.
A container's peak memory is compared too. Pure functions; the reference is the slice's previous
passing run (``--reference previous``, from the history) or the same checks run against the
baseline (``--reference baseline``, see ``checks.reference``).
"""

from __future__ import annotations

from pathlib import Path

from stacklet.checks.verdict import (CheckResult, ContainerMetrics, Figure, HistoryEntry, LinkTraffic, Regression,
                                     Verdict, read_history)

SLOWER = 2.0  # p99 at least doubled ...
SLOWER_BY_MS = 20.0  # ... and by at least this much (a 1 ms → 3 ms change is noise)
MORE_ERRORS = 0.05  # error rate grew by at least 5 points
MORE_MEMORY = 1.5  # peak memory grew by half ...
MORE_MEMORY_BY_MIB = 32.0  # ... and by at least this much


def figures(verdict: Verdict) -> list[Figure]:
    """Each link that carried HTTP requests, each load step and each container's peak memory, of a run."""
    return figures_of(verdict.traffic, verdict.checks, verdict.metrics, verdict.seconds)


def figures_of(traffic: list[LinkTraffic], checks: list[CheckResult], metrics: list[ContainerMetrics],
               seconds: float) -> list[Figure]:
    """The comparable figures of a run's links, load steps and containers."""
    seconds = max(seconds, 0.001)
    found = [Figure(name=f"{', '.join(link.callers) or link.proxy} → {link.target}", requests=link.requests,
                    requests_per_s=round(link.requests / seconds, 1), p99_ms=link.p99_ms,
                    error_rate=round(link.responses_5xx / link.requests, 4))
             for link in traffic if link.requests]
    found += [Figure(name=f"{check.name} › {step.name} [{step.service}]", requests=step.load.requests,
                     requests_per_s=step.load.requests_per_s, p99_ms=step.load.p99_ms,
                     error_rate=step.load.error_rate)
              for check in checks for step in check.steps if step.load]
    found += [Figure(name=f"{m.service} (container)", peak_memory_mib=m.peak_memory_mib)
              for m in metrics if m.peak_memory_mib is not None]
    return found


def previous_passing(workdir: Path, slice_name: str) -> HistoryEntry | None:
    """The slice's latest passing run that recorded figures."""
    return next((e for e in reversed(read_history(workdir, slice_name)) if e.verdict == "passed" and e.figures), None)


def regressions(now: list[Figure], before: list[Figure]) -> list[Regression]:
    """Figures present in both runs whose p99 at least doubled (by 20 ms or more) or error rate grew
    by 5 points or more; the worst slow-down first."""
    reference = {figure.name: figure for figure in before}
    found = []
    for figure in now:
        then = reference.get(figure.name)
        if then is None:
            continue
        slower = (figure.p99_ms is not None and then.p99_ms is not None and figure.p99_ms >= SLOWER * then.p99_ms
                  and figure.p99_ms - then.p99_ms >= SLOWER_BY_MS)
        failing = figure.error_rate - then.error_rate >= MORE_ERRORS
        heavier = (figure.peak_memory_mib is not None and then.peak_memory_mib is not None
                   and figure.peak_memory_mib >= MORE_MEMORY * then.peak_memory_mib
                   and figure.peak_memory_mib - then.peak_memory_mib >= MORE_MEMORY_BY_MIB)
        if slower or failing or heavier:
            found.append(Regression(name=figure.name, p99_ms_before=then.p99_ms, p99_ms_after=figure.p99_ms,
                                    error_rate_before=then.error_rate, error_rate_after=figure.error_rate,
                                    peak_memory_mib_before=then.peak_memory_mib,
                                    peak_memory_mib_after=figure.peak_memory_mib,
                                    line=_line(figure, then, slower, failing, heavier)))
    return sorted(found, key=lambda r: -((r.p99_ms_after or 0) / max(r.p99_ms_before or 1, 0.001)))


def _line(now: Figure, then: Figure, slower: bool, failing: bool, heavier: bool = False) -> str:
    parts = []
    if heavier:
        parts.append(f"peak memory {then.peak_memory_mib:,.0f} MiB → {now.peak_memory_mib:,.0f} MiB "
                     f"(x{now.peak_memory_mib / max(then.peak_memory_mib, 0.001):.1f})")
    if slower:
        parts.append(f"p99 {_ms(then.p99_ms)} → {_ms(now.p99_ms)} (x{now.p99_ms / max(then.p99_ms, 0.001):.0f}) "
                     f"under {now.requests_per_s:g} req/s")
    if failing:
        parts.append(f"{'5xx' if ' → ' in now.name else 'errors'} {then.error_rate:.0%} → {now.error_rate:.0%}")
    return f"{now.name}: " + "; ".join(parts)


def _ms(value: float) -> str:
    return f"{value:,.0f} ms"
