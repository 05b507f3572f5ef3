"""The shared local baseline: a full copy of a stack that slices forward to.

A mixin of ``SliceEngine`` (it boots with the engine's boot steps); kept apart so each file stays short.
"""

from __future__ import annotations

from stacklet.errors import BootError, PlanError, SliceNotFound, StackletError
from stacklet.runtime.readiness import readiness
from stacklet.planning.plan import COMPOSE_FILE, LABEL, baseline_project_name, render_baseline
from stacklet.runtime.seeds import Seeder, seed_plan
from stacklet.config.stack import Stack
from stacklet.runtime.status import Endpoint, Event, EventSink, ServiceStatus, SliceStatus


class Baseline:
    """``baseline_up``, ``baseline_status`` and ``baseline_down`` of ``SliceEngine``."""

    def baseline_up(self, stack: Stack, timeout_s: int = 600, on_event: EventSink = lambda e: None) -> SliceStatus:
        """Start (or keep) the whole stack as the shared local baseline of ``stack``."""
        spec = render_baseline(stack)
        folder = self.workdir / "baselines" / stack.name
        compose_file = self._write(folder, spec)
        project = self.driver.project(compose_file, baseline_project_name(stack.name))
        if self.driver.containers({f"{LABEL}.baseline": stack.name}):
            on_event(Event("starting", message=f"baseline {stack.name} exists: bringing it up to date"))
            project.up_wait(timeout_s)
        else:
            seeds = seed_plan(stack, stack.services)
            try:
                self._boot(project, spec, None, timeout_s, on_event, Seeder(self.driver, stack), seeds)
            except (StackletError, KeyboardInterrupt) as exc:
                on_event(Event("teardown", message=f"removing the baseline of {stack.name}"))
                project.down(remove_images=False)
                if isinstance(exc, KeyboardInterrupt):
                    raise BootError(f"start of the {stack.name} baseline interrupted",
                                    hint="nothing was left running") from exc
                raise
        on_event(Event("ready", message=f"baseline {stack.name} is ready"))
        return self.baseline_status(stack.name)

    def baseline_status(self, stack_name: str) -> SliceStatus:
        containers = self.driver.containers({f"{LABEL}.baseline": stack_name})
        if not containers:
            raise SliceNotFound(f"no baseline of stack {stack_name!r} runs on {self.driver.endpoint}",
                                hint=f"`stacklet baseline up --stack {stack_name}` starts it")
        services = [ServiceStatus(name=c.service, role="baseline", container=c.name, state=c.state,
                                  health=c.health, health_output=c.health_output, restarts=c.restarts,
                                  endpoints=[Endpoint(port=p, host=f"127.0.0.1:{h}", network=f"{c.service}.baseline:{p}")
                                             for p, h in sorted(c.ports.items())])
                    for c in sorted(containers, key=lambda c: c.service)]
        return SliceStatus(name=f"baseline-{stack_name}", stack=stack_name, project=baseline_project_name(stack_name),
                           healthy=all(readiness(c, False) == "ready" for c in containers), services=services)

    def baseline_down(self, stack_name: str) -> None:
        labels = {f"{LABEL}.baseline": stack_name}
        if not self.driver.containers(labels):
            raise SliceNotFound(f"no baseline of stack {stack_name!r} runs", hint="nothing to stop")
        users = [s.name for s in self.list() if s.stack == stack_name]
        if users:
            raise PlanError(f"slices still use the baseline of {stack_name}: {', '.join(users)}",
                            hint="`stacklet down --all` first")
        compose_file = self.workdir / "baselines" / stack_name / COMPOSE_FILE
        project = self.driver.project(compose_file, baseline_project_name(stack_name))
        if compose_file.is_file():
            project.down(remove_images=False)
        self.driver.remove(containers=[c.id for c in self.driver.containers(labels)])
        self.driver.remove(networks=self.driver.networks(labels), volumes=self.driver.volumes(labels))
