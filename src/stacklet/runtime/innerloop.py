"""The inner loop on a running slice: reload one service, or reconcile the slice with a new plan.

A mixin of ``SliceEngine`` (it uses the engine's boot steps); kept apart so each file stays short.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from stacklet.docker.driver import ContainerInfo
from stacklet.errors import BootError, DockerError, PlanError, SliceNotFound, StackletError
from stacklet.runtime.faults import apply_profile, check_profile
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S
from stacklet.planning.plan import COMPOSE_FILE, LABEL, SlicePlan, render, slice_project_name, stack_labels
from stacklet.planning.reconcile import ServiceChange, classify, keep_slice_labels, to_start
from stacklet.runtime.seeds import Seeder, seed_plan, seeds_folder_near
from stacklet.config.stack import FaultProfile, Stack
from stacklet.runtime.status import Event, EventSink, ReconcileResult, ReloadResult


class InnerLoop:
    """``reload`` and ``reconcile`` of ``SliceEngine``."""

    def exists(self, name: str) -> bool:
        """Whether any container of slice ``name`` is on the engine (then ``up`` reconciles it)."""
        return bool(self.driver.containers({f"{LABEL}.slice": name}))

    def reload(self, name: str, service: str, timeout_s: int = DEFAULT_TIMEOUT_S,
               on_event: EventSink = lambda e: None) -> ReloadResult:
        """Rebuild one service's image, recreate only its container, and return once it is ready again.

        Link proxies are not touched, so their routes and faults stay. A seeded stateful service
        comes back as a new, empty container, so it is seeded again: its data returns to the seeded state.
        """
        started = time.monotonic()
        found = self.driver.containers({f"{LABEL}.slice": name, f"{LABEL}.service": service})
        if not found:
            containers = self._containers_of(name)
            services = sorted({c.service for c in containers if c.labels.get(f"{LABEL}.role") != "linkproxy"})
            raise SliceNotFound(f"slice {name} has no service {service!r}", hint=f"its services: {', '.join(services)}")
        info = found[0]
        if info.labels.get(f"{LABEL}.role") == "linkproxy":
            raise PlanError(f"{service} is a link proxy of slice {name}: reload rebuilds services, and a new link "
                            "proxy would lose the faults on it", hint="reload the service behind it instead")
        stack = self.stack_of(name) if _may_have_seeds(info.labels, service) else None
        seeds = seed_plan(stack, [service]) if stack else {}
        project, spec = self._project_of(name, info)
        key = info.compose_service
        built = bool(spec["services"][key].get("build"))
        build_s = 0.0
        if built:
            on_event(Event("building", service))
            try:
                project.build([key])
            except DockerError as exc:
                raise BootError(f"the image of {service} did not build", service=service, logs=exc.details,
                                hint=f"fix the build of {service} and reload again; its running container was "
                                     "left as it was") from exc
            build_s = time.monotonic() - started
            on_event(Event("built", service))
        recreated = time.monotonic()
        on_event(Event("starting", service, "recreating its container"))
        project.recreate([key])
        new = next(iter(self.driver.containers({"com.docker.compose.project": project.name,
                                                 "com.docker.compose.service": key})), None)
        if new is None:
            raise BootError(f"no container was created for {service}", service=service,
                            hint=f"see `docker compose -f {project.file} ps`")
        new = self._wait_ready(new, timeout_s, on_event)
        seeded: list[str] = []
        if service in seeds:
            on_event(Event("seeding", service, ", ".join(seeds[service])))
            seeded = Seeder(self.driver, stack, self._direct_address).seed(service, new).files
        done = time.monotonic()
        return ReloadResult(slice=name, service=service, image_before=info.image, image_after=new.image,
                            rebuilt=info.image != new.image, built=built, seconds=round(done - started, 2),
                            build_s=round(build_s, 2), ready_s=round(done - recreated, 2), seeded=seeded,
                            status=self.status(name).service(service))

    def _project_of(self, name: str, info: ContainerInfo):
        """The generated Compose project of a running slice (handle and parsed file), from its labels."""
        compose_file = Path(info.labels.get(f"{LABEL}.compose-file") or self.workdir / "slices" / name / COMPOSE_FILE)
        if not compose_file.is_file():
            raise SliceNotFound(f"the Compose project of slice {name} is gone: {compose_file}",
                                hint=f"run the same `stacklet up ... --name {name}` again: it renders the slice anew")
        spec = yaml.safe_load(compose_file.read_text()) or {}
        if info.compose_service not in (spec.get("services") or {}):
            raise SliceNotFound(f"{info.service} is not in the Compose project of slice {name} ({compose_file})",
                                hint=f"run the same `stacklet up ... --name {name}` again: it renders the slice anew")
        return self.driver.project(compose_file, slice_project_name(name)), spec

    def reconcile(self, plan: SlicePlan, stack: Stack, name: str, *, seed: bool = True,
                  fault_profile: FaultProfile | None = None, fault_seed: int | None = None,
                  timeout_s: int = DEFAULT_TIMEOUT_S, on_event: EventSink = lambda e: None) -> ReconcileResult:
        """Bring the running slice ``name`` to ``plan`` without starting over.

        Images of local built services are rebuilt; Compose recreates only the containers whose
        configuration or image changed; new and recreated services start in dependency order and the
        seeded ones among them are seeded (unchanged services keep their data); recreated link proxies
        get their routes again (their faults are gone); services no longer in the plan are removed.
        A failure leaves the slice as it is.
        """
        started = time.monotonic()
        existing = self._containers_of(name)
        old = existing[0].labels
        wanted = {f"{LABEL}.stack": plan.stack, **stack_labels(stack)}
        if any(old.get(k) != v for k, v in wanted.items()):
            origin = old.get(f"{LABEL}.stack-file") or old.get(f"{LABEL}.compose-files") or "an unknown file"
            raise PlanError(f"a slice named {name!r} already runs, made from stack {old.get(f'{LABEL}.stack', '?')} "
                            f"({origin})", hint=f"pick another name with --name, or `stacklet down {name}` first")
        self._check_baseline(plan)
        seeds = seed_plan(stack, [s.name for s in plan.local]) if seed else {}
        if fault_profile:
            check_profile(fault_profile, plan)
        compose_file = Path(old.get(f"{LABEL}.compose-file") or self.workdir / "slices" / name / COMPOSE_FILE)
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        spec = render(plan, stack, name, fault_seed=fault_seed,
                      labels={f"{LABEL}.created": created, f"{LABEL}.changed": ",".join(plan.changed), **wanted})
        for svc in spec["services"].values():
            svc["labels"][f"{LABEL}.compose-file"] = str(compose_file)
        spec = keep_slice_labels(spec, old)
        self._write(compose_file.parent, spec)
        project = self.driver.project(compose_file, slice_project_name(name))
        services = spec["services"]
        names = {c.compose_service: c.service for c in existing} | {
            k: v["labels"][f"{LABEL}.service"] for k, v in services.items()}
        before = {c.compose_service: (c.id, c.image) for c in existing}
        try:
            self._ensure_linkproxy_image(plan, on_event)
            to_build = [s for s, v in services.items() if v.get("build")]
            for service in to_build:
                on_event(Event("building", names[service]))
            project.build(to_build)
            on_event(Event("creating", message="containers whose configuration or image changed"))
            project.create()
            current = self.driver.containers({"com.docker.compose.project": project.name})
            orphans = [c for c in current if c.compose_service not in services]
            if orphans:
                on_event(Event("removing", message=", ".join(sorted(c.service for c in orphans))))
                self.driver.remove(containers=[c.id for c in orphans])
            after = {c.compose_service: (c.id, c.image, c.state == "running") for c in current
                     if c.compose_service in services}
            actions = classify(before, after, set(to_build))
            fresh = {s for s, a in actions.items() if a in ("added", "rebuilt", "recreated")}
            startable = fresh | {s for s, a in actions.items() if a == "started"}
            seed_now = {svc: files for svc, files in seeds.items() if svc in {names[k] for k in fresh}}
            self._start_in_order(project.name, to_start(services, startable), plan, timeout_s, on_event,
                                 Seeder(self.driver, stack, self._direct_address), seed_now)
            if fault_profile:
                on_event(Event("faults", message=f"applying fault profile {fault_profile.name}"))
                apply_profile(self.link_proxies(name), fault_profile)
        except (StackletError, KeyboardInterrupt) as exc:
            failure = exc if isinstance(exc, StackletError) else BootError(f"update of slice {name} interrupted")
            failure.hint = (f"{failure.hint or ''} (the slice was left as it is: fix it and `stacklet up` again, "
                            f"or `stacklet down {name}`)").strip()
            raise failure from exc
        proxies = {k for k, v in services.items() if v["labels"].get(f"{LABEL}.role") == "linkproxy"}
        details = {"rebuilt": "image rebuilt", "recreated": "configuration changed", "started": "was not running",
                   "removed": "no longer in the plan"}
        changes = [ServiceChange(service=names[k], action=a,
                                 detail=("routes set again, its faults were reset"
                                         if k in proxies and a in ("rebuilt", "recreated") else details.get(a, "")))
                   for k, a in sorted(actions.items(), key=lambda item: names[item[0]])]
        status = self.status(name)
        on_event(Event("ready", message=f"slice {name} is up to date"))
        reset = sorted(names[k] for k in proxies if actions.get(k) in ("rebuilt", "recreated"))
        return ReconcileResult(slice=name, seconds=round(time.monotonic() - started, 2), changes=changes,
                               seeded=sorted(seed_now), faults_reset=reset, status=status)


def _may_have_seeds(labels: dict[str, str], service: str) -> bool:
    """Whether a folder seeds/<stack>/<service>/ exists near the slice's stack (loading the stack costs time)."""
    source = labels.get(f"{LABEL}.stack-file") or labels.get(f"{LABEL}.compose-files", "").split(",")[0]
    if not source:
        return True
    folder = seeds_folder_near(Path(source).resolve().parent, labels.get(f"{LABEL}.stack", ""))
    return folder is not None and (folder / service).is_dir()
