"""The one runtime pipeline: bring what runs (observed, from labels) to what a plan wants.

``up`` converges from nothing; ``reconcile`` from the slice that runs (Compose recreates only
what changed); ``reload`` and ``restart`` converge one service; ``baseline_up`` the whole stack.
Each goes through the same steps: prepare (baseline, seeds, fault profile, render, labels,
write), build, create, start in order (``startup``), seed, apply faults. A failure or Ctrl-C is
handled in one place, ``_guarded``: a new slice is torn down (or kept with --keep-on-failure),
a running one is left as it was.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import yaml

from stacklet.config.stack import Stack
from stacklet.config.faultprofile import FaultProfile
from stacklet.docker.models import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import BootError, ConfigError, DockerError, PlanError, SliceNotFound, StackletError
from stacklet.labels import (Label, SliceLabels, baseline_project_name, is_linkproxy, slice_project_name, utc_now_text,
                             utc_text)
from stacklet.planning.plan import (COMPOSE_FILE, default_linkproxy_image, LINKPROXY_BUILD_CONTEXT, Route, SlicePlan,
                                    routes_of, stack_labels)
from stacklet.planning.render import render, render_baseline
from stacklet.planning.images import is_source_tag, source_tag
from stacklet.planning.reconcile import ServiceChange, classify, keep_slice_labels, to_start
from stacklet.runtime.faults import apply_profile, check_profile
from stacklet.runtime.observe import SliceReader
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S, WaitStrategy, run_healthcheck, strategy_for
from stacklet.runtime import snapshots
from stacklet.runtime.seeds import Seeder, seed_plan, seeds_folder_near
from stacklet.runtime.snapshots import SnapshotStep
from stacklet.runtime.startup import StartPlan, start_in_order, wait_one
from stacklet.runtime.status import Event, EventSink, ReconcileResult, ReloadResult, ServiceStatus, SliceStatus
from stacklet.runtime.teardown import Teardown
from stacklet.runtime.workdir import ensure_workdir

OnFailure = Literal["teardown", "keep", "leave"]
BASELINE_TIMEOUT_S = 600


class Converger:
    """Boots, updates and restarts slices and baselines on one engine."""

    def __init__(self, driver: EngineDriver, workdir: Path, reader: SliceReader, teardown: Teardown):
        self.driver = driver
        self.workdir = workdir
        self.reader = reader
        self.teardown = teardown

    # -- a slice from nothing ---------------------------------------------------------------

    def converge(self, plan: SlicePlan, stack: Stack, name: str, *, keep_on_failure: bool = False,
                 seed: bool = True, snapshots: bool = True, fault_profile: FaultProfile | None = None, fault_seed: int | None = None,
                 timeout_s: int = DEFAULT_TIMEOUT_S, ttl_s: int | None = None,
                 on_event: EventSink = lambda e: None) -> tuple[SliceStatus, ReconcileResult | None]:
        """Make slice ``name`` run ``plan``: boot it from nothing, or reconcile it when it runs (the one place
        that decides). A reconcile keeps the slice's age and expiry, so ``keep_on_failure`` and ``ttl_s``
        apply to a new slice only. Returns the slice's status, and what the reconcile did."""
        if self.reader.exists(name):
            result = self.reconcile(plan, stack, name, seed=seed, fault_profile=fault_profile,
                                    fault_seed=fault_seed, timeout_s=timeout_s, on_event=on_event)
            return result.status, result
        return self.up(plan, stack, name, keep_on_failure=keep_on_failure, seed=seed, snapshots=snapshots,
                       fault_profile=fault_profile,
                       fault_seed=fault_seed, timeout_s=timeout_s, ttl_s=ttl_s, on_event=on_event), None

    def up(self, plan: SlicePlan, stack: Stack, name: str, *, keep_on_failure: bool = False, seed: bool = True,
           snapshots: bool = True, fault_profile: FaultProfile | None = None, fault_seed: int | None = None,
           timeout_s: int = DEFAULT_TIMEOUT_S, ttl_s: int | None = None,
           on_event: EventSink = lambda e: None) -> SliceStatus:
        """Boot the new slice ``name`` for ``plan`` and return when every local service is ready (and seeded).

        ``ttl_s`` labels it to expire that many seconds from now (`stacklet gc` removes it then).
        With ``snapshots`` (and stack.yaml ``snapshots:`` not false), seeded stores start from their snapshot.
        """
        now = datetime.now(timezone.utc)
        expiry = {Label.EXPIRES: utc_text(now + timedelta(seconds=ttl_s))} if ttl_s else {}
        compose_file = self.teardown.slice_folder(name) / COMPOSE_FILE
        spec, seeds = self._prepare(plan, stack, name, compose_file, seed, fault_profile, fault_seed,
                                    {Label.CREATED: utc_text(now), Label.TOKEN: secrets.token_urlsafe(24), **expiry})
        self.teardown.clear_boot_marker(name)
        project = self.driver.project(_write(compose_file, spec), slice_project_name(name))
        on_failure: OnFailure = "keep" if keep_on_failure else "teardown"
        with self._guarded(name, project, on_failure, on_event,
                           kept=lambda: self.teardown.mark_booted(name, plan.stack, "kept", expiry)):
            self._build(project, spec["services"], plan, on_event)
            snapshot = self._snapshot_step(plan, stack, spec, compose_file, seeds, snapshots and seed, on_event)
            deadline = self.teardown.set_boot_deadline(project, spec, timeout_s)
            on_event(Event("creating", message=f"{len(spec['services'])} containers"))
            project.create()
            self._start(project.name, spec["services"], stack, seeds, timeout_s, on_event, deadline=deadline,
                        snapshot=snapshot)
            self._apply_faults(name, fault_profile, on_event)
            self.teardown.mark_booted(name, plan.stack, "ready", expiry)
        status = self.reader.status(name)
        on_event(Event("ready", message=f"slice {name} is ready"))
        return status

    # -- a running slice to a new plan ------------------------------------------------------

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
        existing = self.reader.containers_of(name)
        old = existing[0].labels
        wanted = {Label.STACK: plan.stack, **stack_labels(stack)}
        if any(old.get(k) != v for k, v in wanted.items()):
            origin = old.get(Label.STACK_FILE) or old.get(Label.COMPOSE_FILES) or "an unknown file"
            being = "already runs" if any(c.state in ("running", "paused", "restarting") for c in existing) else (
                "exists, stopped (none of its containers runs)")
            raise PlanError(f"a slice named {name!r} {being}, made from stack {old.get(Label.STACK, '?')} "
                            f"({origin})", hint=f"pick another name with --name, or `stacklet down {name}` first")
        compose_file = Path(old.get(Label.COMPOSE_FILE) or self.teardown.slice_folder(name) / COMPOSE_FILE)
        spec, seeds = self._prepare(plan, stack, name, compose_file, seed, fault_profile, fault_seed,
                                    {Label.CREATED: utc_text(datetime.now(timezone.utc)),
                                     Label.TOKEN: old.get(Label.TOKEN) or secrets.token_urlsafe(24)})
        spec = keep_slice_labels(spec, old)
        project = self.driver.project(_write(compose_file, spec), slice_project_name(name))
        services = spec["services"]
        names = {c.compose_service: c.service for c in existing} | {
            k: v["labels"][Label.SERVICE] for k, v in services.items()}
        before = {c.compose_service: (c.id, c.image) for c in existing}
        with self._guarded(name, project, "leave", on_event):
            built = self._build(project, services, plan, on_event)
            self._keep_snapshots(plan, stack, spec, compose_file, existing, seeds)
            on_event(Event("creating", message="containers whose configuration or image changed"))
            project.create()
            current = self.driver.containers({Label.COMPOSE_PROJECT: project.name})
            orphans = [c for c in current if c.compose_service not in services]
            if orphans:
                on_event(Event("removing", message=", ".join(sorted(c.service for c in orphans))))
                self.driver.remove(containers=[c.id for c in orphans])
            after = {c.compose_service: (c.id, c.image, c.state == "running") for c in current
                     if c.compose_service in services}
            actions = classify(before, after, {k for k, v in services.items() if v.get("build")})
            fresh = {s for s, a in actions.items() if a in ("added", "rebuilt", "recreated")}
            startable = fresh | {s for s, a in actions.items() if a == "started"}
            seed_now = {svc: files for svc, files in seeds.items() if svc in {names[k] for k in fresh}}
            self._start(project.name, to_start(services, startable), stack, seed_now, timeout_s, on_event)
            self._apply_faults(name, fault_profile, on_event)
        proxies = {k for k, v in services.items() if is_linkproxy(v["labels"])}
        details = {"rebuilt": "image rebuilt", "recreated": "configuration changed", "started": "was not running",
                   "removed": "no longer in the plan"}

        def detail(service: str, action: str) -> str:
            if service in proxies and action in ("rebuilt", "recreated"):
                return "routes set again, its faults were reset"
            if action == "rebuilt" and service not in built:
                return "image of these sources built before, reused"
            return details.get(action, "")
        changes = [ServiceChange(service=names[k], action=a, detail=detail(k, a))
                   for k, a in sorted(actions.items(), key=lambda item: names[item[0]])]
        status = self.reader.status(name)
        on_event(Event("ready", message=f"slice {name} is up to date"))
        reset = sorted(names[k] for k in proxies if actions.get(k) in ("rebuilt", "recreated"))
        return ReconcileResult(slice=name, seconds=round(time.monotonic() - started, 2), changes=changes,
                               seeded=sorted(seed_now), faults_reset=reset, status=status)

    # -- one service ------------------------------------------------------------------------

    def reload(self, name: str, service: str, timeout_s: int = DEFAULT_TIMEOUT_S,
               on_event: EventSink = lambda e: None) -> ReloadResult:
        """Rebuild one service's image, recreate only its container, and return once it is ready again.

        Link proxies are not touched, so their routes and faults stay. A seeded stateful service
        comes back as a new, empty container, so it is seeded again. The image it replaced is removed
        when nothing else uses it.
        """
        started = time.monotonic()
        info = self.reader.container_of(name, service)
        if is_linkproxy(info.labels):
            raise PlanError(f"{service} is a link proxy of slice {name}: reload rebuilds services, and a new link "
                            "proxy would lose the faults on it", hint="reload the service behind it instead")
        stack = self.reader.stack_of(name) if _may_have_seeds(info.labels, service) else None
        seeds = seed_plan(stack, [service]) if stack else {}
        project, spec = self._project_of(name, info)
        key = info.compose_service
        built = bool(spec["services"][key].get("build"))
        build_s = 0.0
        if built and self._renamed_by_sources(spec, key, info, project.file):
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
        new = next(iter(self.driver.containers({Label.COMPOSE_PROJECT: project.name, Label.COMPOSE_SERVICE: key})), None)
        if new is None:
            raise BootError(f"no container was created for {service}", service=service,
                            hint=f"see `docker compose -f {project.file} ps`")
        new = wait_one(self.driver, new, self._strategy(new), timeout_s, on_event)
        seeded: list[str] = []
        if service in seeds:
            on_event(Event("seeding", service, ", ".join(seeds[service])))
            seeded = self._seeder(stack).seed(service, new).files
        if built and new.image != info.image:
            self.driver.remove_image_if_unused(info.image)
        done = time.monotonic()
        return ReloadResult(slice=name, service=service, image_before=info.image, image_after=new.image,
                            rebuilt=info.image != new.image, built=built, seconds=round(done - started, 2),
                            build_s=round(build_s, 2), ready_s=round(done - recreated, 2), seeded=seeded,
                            status=self.reader.status(name).service(service))

    def _renamed_by_sources(self, spec: dict, key: str, info: ContainerInfo, compose_file: Path) -> bool:
        """Name a reloaded service's image by its sources now (the project is written again when the name
        changed); whether it must be built (no image of that source state exists yet)."""
        service = spec["services"][key]
        if not is_source_tag(service.get("image")):
            return True
        tag = source_tag(info.labels.get(Label.STACK, ""), info.service, service["build"])
        if tag != service["image"]:
            service["image"] = tag
            _write(compose_file, spec)
        return not self.driver.image_ids([tag])

    def restart(self, name: str, service: str, timeout_s: int = DEFAULT_TIMEOUT_S) -> ServiceStatus:
        """Restart one service of a slice and wait until it is ready again; returns its new status.

        A restarted link proxy starts empty: it gets its routes again (its faults are gone).
        """
        info = self.reader.container_of(name, service)
        self.driver.restart([info.id])
        info = wait_one(self.driver, info, self._strategy(info), timeout_s, after=" after a restart")
        self._on_ready(info, lambda e: None, self.reader.stack_of(name) if is_linkproxy(info.labels) else None)
        return self.reader.status(name).service(service)

    # -- the whole stack as the local baseline ----------------------------------------------

    def baseline_up(self, stack: Stack, timeout_s: int = BASELINE_TIMEOUT_S,
                    on_event: EventSink = lambda e: None, advertise: str | None = None) -> SliceStatus:
        """Start (or bring up to date) the whole stack as the shared baseline of ``stack``, its ports
        published on ``advertise`` too when given (its start time kept when it already runs)."""
        running = self.driver.containers({Label.BASELINE: stack.name})
        started = next((c.labels[Label.STARTED] for c in running if c.labels.get(Label.STARTED)), utc_now_text())
        in_use = {port for c in self.driver.containers() if c.labels.get(Label.BASELINE) != stack.name
                  for port in c.ports.values()} if advertise else set()
        spec = render_baseline(stack, {Label.STARTED: started}, advertise, in_use)
        ensure_workdir(self.workdir)
        compose_file = _write(self.workdir / "baselines" / stack.name / COMPOSE_FILE, spec)
        project = self.driver.project(compose_file, baseline_project_name(stack.name))
        if running:
            on_event(Event("starting", message=f"baseline {stack.name} exists: bringing it up to date"))
            project.up_wait(timeout_s)
        else:
            seeds = seed_plan(stack, stack.services)
            with self._guarded(f"baseline of {stack.name}", project, "teardown", on_event,
                               remove=lambda: project.down(remove_images=False)):
                self._build(project, spec["services"], None, on_event)
                on_event(Event("creating", message=f"{len(spec['services'])} containers"))
                project.create()
                self._start(project.name, spec["services"], stack, seeds, timeout_s, on_event)
        on_event(Event("ready", message=f"baseline {stack.name} is ready"))
        return self.reader.baseline_status(stack.name)

    # -- the steps --------------------------------------------------------------------------

    def _prepare(self, plan: SlicePlan, stack: Stack, name: str, compose_file: Path, seed: bool,
                 fault_profile: FaultProfile | None, fault_seed: int | None,
                 labels: dict[str, str]) -> tuple[dict, dict[str, list[str]]]:
        """Check what the slice needs before anything changes, and render its Compose project."""
        if plan.boot_blockers:
            raise ConfigError("cannot boot: " + "; ".join(plan.boot_blockers), key="env_file",
                              file=stack.source,
                              hint="create the missing file (plan and why work without it)")
        ensure_workdir(self.workdir)
        self._check_baseline(plan)
        seeds = seed_plan(stack, [s.name for s in plan.local]) if seed else {}
        if fault_profile:
            check_profile(fault_profile, plan)
        spec = render(plan, stack, name, fault_seed=fault_seed, publish_ip=self.driver.publish_ip,
                      labels={Label.CHANGED: ",".join(plan.changed), **stack_labels(stack), **labels})
        for svc in spec["services"].values():
            svc["labels"][Label.COMPOSE_FILE] = str(compose_file)
        return spec, seeds

    def _check_baseline(self, plan: SlicePlan) -> None:
        if plan.uses_local_baseline and not self.driver.network_exists(plan.baseline_project):
            forwarded = ", ".join(f.name for f in plan.forwarded if f.baseline == "local")
            raise PlanError(f"the slice forwards {forwarded} to the local baseline of {plan.stack}, "
                            "which is not running",
                            hint=f"start it with `{_command('baseline up', plan.stack_options)}`, or map these "
                                 "services in stack.yaml baseline.addresses")

    def _build(self, project, services: dict, plan: SlicePlan | None, on_event: EventSink) -> list[str]:
        """Build the link proxy image when missing, then every service with a build; returns those built."""
        if plan and plan.linkproxy_image == default_linkproxy_image() and not self.driver.image_exists(
                plan.linkproxy_image):
            on_event(Event("building", message=f"link proxy image {plan.linkproxy_image}"))
            self.driver.build_image(LINKPROXY_BUILD_CONTEXT, plan.linkproxy_image)
        built = [s for s, v in services.items() if v.get("build")]
        present = self.driver.image_ids([services[s]["image"] for s in built if is_source_tag(services[s].get("image"))])
        to_build = [s for s in built if services[s].get("image") not in present]  # an image per source state
        service_names = {s: (services[s].get("labels") or {}).get(Label.SERVICE, s) for s in to_build}
        for service in to_build:
            on_event(Event("building", service_names[service]))
        project.build(to_build)
        for service in to_build:
            on_event(Event("built", service_names[service]))
        return to_build

    def _start(self, project: str, services: dict, stack: Stack, seeds: dict[str, list[str]], timeout_s: int,
               on_event: EventSink, deadline: float | None = None, snapshot: SnapshotStep | None = None) -> None:
        seeder = self._seeder(stack)
        seed = seeder.seed
        if snapshot:  # a store keeps its snapshot once seeded; one from a snapshot is not seeded, nor its jobs run
            seed = snapshot.seed_and_keep(seeder.seed, seeder.flush, lambda info: wait_one(
                self.driver, info, self._strategy(info), timeout_s, after=" after its snapshot was taken"))
            seeds = {s: files for s, files in seeds.items() if s not in snapshot.restored}
            services = {k: v for k, v in services.items() if Label.SATISFIED_BY not in v["labels"]}
        try:
            start_in_order(self.driver, project, StartPlan(
                services=services, strategy_of=self._strategy,
                on_ready=lambda info: self._on_ready(info, on_event, stack),
                seed=seed, seeds=seeds, timeout_s=timeout_s, deadline=deadline), on_event)
        except StackletError as exc:
            if snapshot and (lost := snapshot.failures()):
                exc.details = "\n".join([*filter(None, [exc.details]), *lost])
            raise
        if snapshot:
            snapshot.finish()

    def _snapshot_step(self, plan: SlicePlan, stack: Stack, spec: dict, compose_file: Path,
                       seeds: dict[str, list[str]], enabled: bool, on_event: EventSink) -> SnapshotStep | None:
        """Choose, for each seeded store, its snapshot (once its images are built): restored ones start from it
        (the project is written again), missing ones are kept after seeding. None when snapshots are off."""
        if not enabled or not stack.meta.snapshots or not seeds:
            return None
        services = spec["services"]
        choices = snapshots.choose(self.driver, plan, services, stack, list(seeds))
        for job in snapshots.restore(spec, choices, plan):
            on_event(Event("satisfied", services[job]["labels"][Label.SERVICE],
                           f"not run: {services[job]['labels'][Label.SATISFIED_BY]}"))
        for choice in choices.values():
            on_event(Event("snapshot", choice.service, f"from snapshot {choice.key}" if choice.present
                           else f"no snapshot {choice.key} yet: seeding, then keeping one"))
        _write(compose_file, spec)
        snapshots.record_use(self.workdir, [c.key for c in choices.values() if c.present])
        return snapshots.SnapshotStep(self.driver, choices, str(stack.source or ""))

    def _keep_snapshots(self, plan: SlicePlan, stack: Stack, spec: dict, compose_file: Path,
                        existing: list[ContainerInfo], seeds: dict[str, list[str]]) -> None:
        """A reconcile keeps each store on the snapshot it runs from while that snapshot's key is still current
        (and the jobs it satisfied not run); a changed key means changed data: the store is recreated and seeded."""
        running = {c.compose_service: c.labels[Label.SNAPSHOT] for c in existing if c.labels.get(Label.SNAPSHOT)}
        if not running or not seeds:
            return
        choices = snapshots.choose(self.driver, plan, spec["services"], stack, list(seeds))
        kept = {k: c for k, c in choices.items() if c.present and running.get(k) == c.key}
        if kept:
            snapshots.restore(spec, kept, plan)
            _write(compose_file, spec)

    def await_ready(self, name: str, timeout_s: int = DEFAULT_TIMEOUT_S,
                    on_event: EventSink = lambda e: None) -> None:
        """Wait until every running container of slice ``name`` is ready by its strategy (a resumed warm slice:
        Docker's health state may still be the one from before the pause)."""
        running = [info for info in self.reader.containers_of(name) if info.state == "running"]

        def wait(info: ContainerInfo) -> None:
            wait_one(self.driver, info, self._strategy(info, resumed=True), timeout_s, on_event,
                     after=" after it was resumed")
        if running:  # all at once: each waits on its own checks, none on another's
            with ThreadPoolExecutor(max_workers=len(running), thread_name_prefix="resume") as pool:
                for _ in pool.map(wait, running):  # the first failure is raised here
                    pass

    def _strategy(self, info: ContainerInfo, resumed: bool = False) -> WaitStrategy:
        return strategy_for(info, control_api=lambda i: self.reader.control(i).answers(),
                            address_of=self.reader.address_of,
                            run_check=functools.partial(run_healthcheck, self.driver), resumed=resumed)

    def _on_ready(self, info: ContainerInfo, on_event: EventSink, stack: Stack | None = None) -> None:
        """A link proxy that is ready gets its routes (before anything may connect through it)."""
        if is_linkproxy(info.labels):
            self._configure_proxy(info, routes_of(info.labels), on_event, stack)

    def _configure_proxy(self, info: ContainerInfo, routes: list[Route], on_event: EventSink,
                         stack: Stack | None) -> None:
        """Create the routes; a target with ``protocol:`` in stack.yaml gets it on each of its routes."""
        control = self.reader.control(info)
        protocols = {r.name: protocol for r in routes
                     if stack and (protocol := stack.service_meta(r.target).protocol)}
        control.populate({r.name: (f"0.0.0.0:{r.port}", r.upstream) for r in routes}, protocols)
        on_event(Event("linked", info.service, ", ".join(r.name for r in routes)))

    def _seeder(self, stack: Stack | None) -> Seeder:
        return Seeder(self.driver, stack, self.reader.address_of)

    def _apply_faults(self, name: str, fault_profile: FaultProfile | None, on_event: EventSink) -> None:
        if fault_profile:
            on_event(Event("faults", message=f"applying fault profile {fault_profile.name}"))
            apply_profile(self.reader.link_proxies(name), fault_profile)

    @contextlib.contextmanager
    def _guarded(self, name: str, project, on_failure: OnFailure, on_event: EventSink, *,
                 kept=lambda: None, remove=None) -> Iterator[None]:
        """The one place a failed or interrupted converge is handled.

        ``teardown`` removes what was started (``remove``, by default the slice ``name``); ``keep``
        leaves it running and says how to remove it; ``leave`` (a running slice) says it is as it was.
        The error keeps its own cause; an interrupt becomes a BootError caused by it.
        """
        try:
            yield
        except (StackletError, KeyboardInterrupt) as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            failure = BootError(f"{'update' if on_failure == 'leave' else 'boot'} of {_what(name)} interrupted") \
                if interrupted else exc
            if on_failure == "keep":
                failure.hint = f"{failure.hint or ''} (kept running: `stacklet down {name}` removes it)".strip()
                with contextlib.suppress(StackletError):
                    kept()  # without the marker, gc sees a boot that never finished
            elif on_failure == "leave":
                failure.hint = (f"{failure.hint or ''} (the slice was left as it is: fix it and `stacklet up` again, "
                                f"or `stacklet down {name}`)").strip()
            else:
                on_event(Event("teardown", message=f"removing {_what(name)}"))
                (remove or (lambda: self.teardown.remove_slice(name, project)))()
                if interrupted:
                    failure.hint = "nothing was left running"
            if interrupted:
                raise failure from exc
            raise

    def _project_of(self, name: str, info: ContainerInfo):
        """The generated Compose project of a running slice (handle and parsed file), from its labels."""
        labels = SliceLabels.of(info.labels)
        compose_file = Path(labels.compose_file or self.teardown.slice_folder(name) / COMPOSE_FILE)
        again = f"run the same `stacklet up ... --name {name}` again: it renders the slice anew"
        if not compose_file.is_file():
            raise SliceNotFound(f"the Compose project of slice {name} is gone: {compose_file}", hint=again)
        spec = yaml.safe_load(compose_file.read_text()) or {}
        if info.compose_service not in (spec.get("services") or {}):
            raise SliceNotFound(f"{info.service} is not in the Compose project of slice {name} ({compose_file})",
                                hint=again)
        return self.driver.project(compose_file, slice_project_name(name)), spec


def _command(command: str, stack_options: str) -> str:
    """A stacklet command with the options that select the plan's stack from where the plan was made."""
    return " ".join(part for part in ("stacklet", command, stack_options) if part)


def _what(name: str) -> str:
    return name if name.startswith("baseline of ") else f"slice {name}"


def _write(path: Path, spec: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _may_have_seeds(labels: dict[str, str], service: str) -> bool:
    """Whether a folder seeds/<stack>/<service>/ exists near the slice's stack (loading the stack costs time)."""
    read = SliceLabels.of(labels)
    source = read.stack_file or (read.compose_files[0] if read.compose_files else "")
    if not source:
        return True
    folder = seeds_folder_near(Path(source).resolve().parent, read.stack or "")
    return folder is not None and (folder / service).is_dir()
