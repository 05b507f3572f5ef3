"""``check --reference baseline``: the same checks run against the baseline give the reference figures.

The baseline runs every service of the stack, so the HTTP checks of a run can be sent to its copies
of the services instead of the slice's: their load steps' figures, and the peak memory of the
baseline's containers of the slice's services meanwhile, are what the slice's figures are compared
with. The checks' requests reach the baseline's services and stores (as any caller of the baseline
would): each run has its own ``${run}`` id, so what it writes does not collide.
"""

from __future__ import annotations

import time
from typing import Callable

from stacklet.checks.metrics import UsageSampler, container_metrics
from stacklet.checks.regressions import figures_of
from stacklet.checks.verdict import CheckResult, Figure
from stacklet.config.checkspec import CheckSpec
from stacklet.errors import SliceNotFound
from stacklet.labels import Label
from stacklet.runtime.engine import SliceEngine
from stacklet.runtime.status import SliceStatus

RunCheck = Callable[[SliceStatus, CheckSpec], CheckResult]


def baseline_reference(engine: SliceEngine, stack_name: str, checks: list[CheckSpec], changed: list[str],
                       local: list[str], run_check: RunCheck) -> tuple[str, list[Figure]]:
    """(what was compared with, its figures): ``checks`` (HTTP ones whose services the baseline serves) run
    by ``run_check`` against the baseline of ``stack_name``, which must serve every ``changed`` service."""
    try:
        status = engine.baseline_status(stack_name)
    except SliceNotFound:
        return f"no baseline of {stack_name} runs (nothing to compare; `stacklet baseline up` starts it)", []
    served = {s.name for s in status.services}
    missing = [name for name in changed if name not in served]
    if missing:
        return f"the baseline does not serve {', '.join(missing)} (nothing to compare)", []
    runnable = [c for c in checks if c.kind == "http" and set(c.target_services()) <= served]
    if not runnable:
        return "the baseline (no HTTP check to run there: nothing to compare)", []
    containers = {c.service: c for c in engine.driver.containers({Label.BASELINE: stack_name}) if c.service in local}
    clock = time.monotonic()
    with UsageSampler(engine.driver, [c.id for c in containers.values()]) as sampler:
        results = [run_check(status, check) for check in runnable]
    seconds = time.monotonic() - clock
    failed = [r.name for r in results if r.outcome == "failed"]
    metrics = container_metrics(containers, containers, sampler.samples, [])
    described = (f"the same {len(results)} check{'s' if len(results) != 1 else ''} on the baseline"
                 + (f" ({', '.join(failed)} failed there)" if failed else ""))
    return described, figures_of([], results, metrics, seconds)
