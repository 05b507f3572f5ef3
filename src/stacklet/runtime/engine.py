"""A slice session: boot, status, logs, down, lifetime and the view from inside a container.

``SliceEngine.up`` renders the plan, builds what the slice builds, starts services as soon as what
they depend on is ready, waits for each to be healthy, configures the link proxies, and reports
endpoints. Any failure (or Ctrl-C) tears the slice down again unless asked to keep it. The labels
on containers, networks and volumes are the source of truth for ``ls``, ``status``, ``down`` and
``gc``. Reload and reconcile live in ``innerloop.py``, the shared baseline in ``baseline.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from stacklet.planning import lifetime
from stacklet.runtime.baseline import Baseline
from stacklet.docker.driver import ContainerInfo, Driver
from stacklet.errors import BootError, DockerError, PlanError, SliceNotFound, StackFileError, StackletError
from stacklet.runtime.faults import LinkProxyHandle, apply_profile, check_profile
from stacklet.planning.graph import dependency_layers
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S, MAX_RESTARTS, POLL_S, readiness, settled
from stacklet.runtime.innerloop import InnerLoop
from stacklet.planning.lifetime import BOOT_DEADLINE, EXPIRES, SLICE, GcDecision, SliceResources, utc_text
from stacklet.docker.linkproxy_client import LinkProxyControl
from stacklet.planning.plan import (COMPOSE_FILE, CONTROL_PORT, DEFAULT_LINKPROXY_IMAGE, LABEL, LINKPROXY_BUILD_CONTEXT,
                           Route, SlicePlan, baseline_project_name, render, routes_of, slice_project_name,
                           stack_labels)
from stacklet.runtime.seeds import SeedResult, Seeder, seed_plan
from stacklet.config.stack import FaultProfile, Stack, load_stack
from stacklet.runtime.status import (Endpoint, Event, EventSink, ReconcileResult, ReloadResult, ServiceStatus, SliceStatus,
                             SliceSummary)

__all__ = ["SliceEngine", "Endpoint", "Event", "EventSink", "ReconcileResult", "ReloadResult", "ServiceStatus",
           "SliceStatus", "SliceSummary", "Vantage", "stack_labels", "DEFAULT_TIMEOUT_S", "MAX_RESTARTS"]

LOG_TAIL = 30


class SliceEngine(InnerLoop, Baseline):
    """Boots and inspects slices on one Docker endpoint."""

    def __init__(self, driver: Driver, workdir: Path | None = None):
        self.driver = driver
        self.workdir = workdir or Path(os.environ.get("STACKLET_HOME", Path.cwd() / ".stacklet"))

    # -- boot ---------------------------------------------------------------------------------

    def up(self, plan: SlicePlan, stack: Stack, name: str, *, keep_on_failure: bool = False, seed: bool = True,
           fault_profile: FaultProfile | None = None, fault_seed: int | None = None,
           timeout_s: int = DEFAULT_TIMEOUT_S, ttl_s: int | None = None,
           on_event: EventSink = lambda e: None) -> SliceStatus:
        """Boot the slice ``name`` for ``plan`` and return when every local service is ready (and seeded).

        ``ttl_s`` labels it to expire that many seconds from now (`stacklet gc` removes it then).
        """
        if self.driver.containers({f"{LABEL}.slice": name}):
            # the slice already runs: reconcile it instead of starting over (see ``reconcile``)
            return self.reconcile(plan, stack, name, seed=seed, fault_profile=fault_profile, fault_seed=fault_seed,
                                  timeout_s=timeout_s, on_event=on_event).status
        self._check_baseline(plan)
        seeds = seed_plan(stack, [s.name for s in plan.local]) if seed else {}
        if fault_profile:
            check_profile(fault_profile, plan)
        now = datetime.now(timezone.utc)
        created = utc_text(now)
        expiry = {EXPIRES: utc_text(now + timedelta(seconds=ttl_s))} if ttl_s else {}
        spec = render(plan, stack, name, fault_seed=fault_seed,
                      labels={f"{LABEL}.created": created, f"{LABEL}.changed": ",".join(plan.changed),
                              **stack_labels(stack), **expiry})
        self._clear_boot_marker(name)
        folder = self.workdir / "slices" / name
        for svc in spec["services"].values():
            svc["labels"][f"{LABEL}.compose-file"] = str(folder / COMPOSE_FILE)
        compose_file = self._write(folder, spec)
        project = self.driver.project(compose_file, slice_project_name(name))
        try:
            self._boot(project, spec, plan, timeout_s, on_event, Seeder(self.driver, stack, self._direct_address),
                       seeds)
            if fault_profile:
                on_event(Event("faults", message=f"applying fault profile {fault_profile.name}"))
                apply_profile(self.link_proxies(name), fault_profile)
            self._mark_booted(name, plan.stack, "ready", expiry)
        except (StackletError, KeyboardInterrupt) as exc:
            failure = exc if isinstance(exc, StackletError) else BootError(
                f"boot of slice {name} interrupted",
                hint="nothing was left running" if not keep_on_failure else None)
            if keep_on_failure:
                failure.hint = f"{failure.hint or ''} (kept running: `stacklet down {name}` removes it)".strip()
                try:
                    self._mark_booted(name, plan.stack, "kept", expiry)
                except StackletError:
                    pass  # gc will see a boot that never finished
            else:
                on_event(Event("teardown", message=f"removing slice {name}"))
                self._remove(name, project)
            raise failure from exc
        status = self.status(name)
        on_event(Event("ready", message=f"slice {name} is ready"))
        return status

    def _boot(self, project, spec: dict, plan: SlicePlan | None, timeout_s: int, on_event: EventSink,
              seeder: Seeder, seeds: dict[str, list[str]]) -> None:
        services = spec["services"]
        if plan:
            self._ensure_linkproxy_image(plan, on_event)
        to_build = [s for s, v in services.items() if v.get("build")]
        for service in to_build:
            on_event(Event("building", services[service]["labels"][f"{LABEL}.service"]))
        project.build(to_build)
        for service in to_build:
            on_event(Event("built", services[service]["labels"][f"{LABEL}.service"]))
        deadline = self._set_boot_deadline(project, spec, timeout_s) if plan else None
        on_event(Event("creating", message=f"{len(services)} containers"))
        project.create()
        self._start_in_order(project.name, services, plan, timeout_s, on_event, seeder, seeds, deadline=deadline)

    def _start_in_order(self, project: str, services: dict, plan: SlicePlan | None, timeout_s: int,
                        on_event: EventSink, seeder: Seeder, seeds: dict[str, list[str]], *,
                        deadline: float | None = None) -> None:
        """Start each service as soon as everything it depends on is ready; wait until all are ready.

        ``deadline`` (monotonic) bounds the whole start: past it the boot fails.
        """
        depends = {s: set(v.get("depends_on") or {}) for s, v in services.items()}
        dependency_layers(depends)  # refuses cycles before anything starts
        completes = {d for v in services.values() for d, o in (v.get("depends_on") or {}).items()
                     if (o or {}).get("condition") == "service_completed_successfully"}
        ids = {c.compose_service: c.id for c in self.driver.containers({"com.docker.compose.project": project})}
        missing = set(services) - set(ids)
        if missing:
            raise BootError(f"no container was created for {', '.join(sorted(missing))}",
                            hint="see `docker compose ps` of the project")
        proxies = {p.name: p for p in plan.proxies} if plan else {}
        started: dict[str, float] = {}
        ready: set[str] = set()
        seeding: dict[str, tuple[str, Future]] = {}  # loaded in worker threads while other services start
        reported: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="seed") as pool:
            try:
                while len(ready) < len(services):
                    if deadline is not None and time.monotonic() > deadline:
                        waiting = ", ".join(sorted(s for s in services if s not in ready))
                        raise BootError(f"the boot did not finish by its deadline (still waiting for {waiting})",
                                        hint="raise --timeout (each dependency layer of the slice gets that many "
                                             "seconds)")
                    startable = sorted(s for s in services if s not in started and depends[s] <= ready)
                    if startable:
                        for service in startable:
                            on_event(Event("starting", services[service]["labels"][f"{LABEL}.service"]))
                        self.driver.start([ids[s] for s in startable])
                        started.update({s: time.monotonic() for s in startable})
                    progressed = bool(startable)
                    for service, (name, future) in list(seeding.items()):
                        if future.done():
                            result = future.result()  # a seed error ends the boot here
                            on_event(Event("seeded", name, f"{len(result.files)} files in {result.seconds:.1f}s"))
                            del seeding[service]
                            ready.add(service)
                            progressed = True
                    for info in self.driver.inspect([ids[s] for s in started if s not in ready and s not in seeding]):
                        service = info.compose_service
                        verdict = readiness(info, service in completes)
                        if verdict == "ready":
                            if service in proxies:
                                self._configure_proxy(info, proxies[service].routes, on_event)
                            else:
                                on_event(Event("healthy" if info.health else "running", info.service,
                                               "healthy" if info.health else "started (no healthcheck)"))
                            if info.service in seeds:
                                on_event(Event("seeding", info.service, ", ".join(seeds[info.service])))
                                seeding[service] = (info.service, pool.submit(seeder.seed, info.service, info))
                            else:
                                ready.add(service)
                            progressed = True
                        elif verdict != "waiting":
                            raise self._failure(info, verdict)
                        else:
                            if reported.get(service) != (info.health or info.state):
                                reported[service] = info.health or info.state
                                on_event(Event("waiting", info.service, info.health or info.state))
                            if time.monotonic() - started[service] > timeout_s:
                                raise self._failure(info, f"did not become healthy within {timeout_s} s")
                    if not progressed:
                        time.sleep(POLL_S)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # no seed still writes when the slice is torn down

    def _failure(self, info: ContainerInfo, what: str) -> BootError:
        logs = self.driver.container_logs(info.id, tail=LOG_TAIL)
        return BootError(f"service {info.service} {what}", service=info.service,
                         health=info.health_output or None, logs=logs,
                         hint=f"fix {info.service} and try again; --keep-on-failure keeps the slice to inspect it")

    def _ensure_linkproxy_image(self, plan: SlicePlan, on_event: EventSink) -> None:
        """Build stacklet's own link proxy image when the plan uses it and the engine lacks it."""
        if plan.linkproxy_image == DEFAULT_LINKPROXY_IMAGE and not self.driver.image_exists(plan.linkproxy_image):
            on_event(Event("building", message=f"link proxy image {plan.linkproxy_image}"))
            self.driver.build_image(LINKPROXY_BUILD_CONTEXT, plan.linkproxy_image)

    def _configure_proxy(self, info: ContainerInfo, routes: list[Route],
                         on_event: EventSink = lambda e: None) -> None:
        """Give a (new or restarted) link proxy its routes, once its control API answers."""
        control = self._control(info)
        control.wait_ready()
        control.populate({r.name: (f"0.0.0.0:{r.port}", r.upstream) for r in routes})
        on_event(Event("linked", info.service, ", ".join(r.name for r in routes)))

    def _wait_ready(self, info: ContainerInfo, timeout_s: int, on_event: EventSink = lambda e: None,
                    after: str = "") -> ContainerInfo:
        """Wait until one (re)started container is ready; a crash or a timeout is a BootError naming it."""
        deadline = time.monotonic() + timeout_s
        reported = None
        while True:
            info = self.driver.inspect([info.id])[0]
            verdict = readiness(info, False)
            if verdict == "ready":
                on_event(Event("healthy" if info.health else "running", info.service,
                               "healthy" if info.health else "started (no healthcheck)"))
                return info
            if verdict != "waiting":
                raise self._failure(info, verdict)
            if time.monotonic() > deadline:
                raise self._failure(info, f"did not become healthy within {timeout_s} s{after}")
            if reported != (info.health or info.state):
                reported = info.health or info.state
                on_event(Event("waiting", info.service, reported))
            time.sleep(POLL_S / 2)

    def _control(self, info: ContainerInfo) -> LinkProxyControl:
        direct = self._direct_address(info, CONTROL_PORT)
        if direct:
            host, port = direct.rsplit(":", 1)
            return LinkProxyControl(info.service, host, int(port))
        port = info.ports.get(CONTROL_PORT)
        if not port:
            raise BootError(f"link proxy {info.service} publishes no control port", service=info.service,
                            hint="the link proxy container may have exited; see its logs")
        return LinkProxyControl(info.service, "127.0.0.1", port)

    def _check_baseline(self, plan: SlicePlan) -> None:
        if plan.uses_local_baseline and not self.driver.network_exists(plan.baseline_project):
            forwarded = ", ".join(f.name for f in plan.forwarded if f.baseline == "local")
            raise PlanError(f"the slice forwards {forwarded} to the local baseline of {plan.stack}, "
                            "which is not running",
                            hint=f"start it with `stacklet baseline up --stack {plan.stack}`, or map these "
                                 "services in stack.yaml baseline.addresses")

    # -- running slices: link proxies, seeds ----------------------------------------------------

    def link_proxies(self, name: str) -> list[LinkProxyHandle]:
        """The link proxies of slice ``name``, each with its control API and routes."""
        containers = [c for c in self._containers_of(name) if c.labels.get(f"{LABEL}.role") == "linkproxy"]
        handles = []
        for info in sorted(containers, key=lambda c: c.service):
            routes = routes_of(info.labels)
            handles.append(LinkProxyHandle(name=info.service, control=self._control(info),
                                           routes={r.name: r.upstream for r in routes}))
        return handles

    def _containers_of(self, name: str) -> list[ContainerInfo]:
        """The containers of slice ``name``; SliceNotFound when it has none."""
        containers = self.driver.containers({f"{LABEL}.slice": name})
        if not containers:
            raise SliceNotFound(f"no slice named {name!r} on {self.driver.endpoint}",
                                hint="`stacklet ls` lists the slices")
        return containers

    def restart(self, name: str, service: str, timeout_s: int = DEFAULT_TIMEOUT_S) -> ServiceStatus:
        """Restart one service of a slice and wait until it is ready again; returns its new status."""
        matches = [c for c in self._containers_of(name) if c.service == service]
        if not matches:
            raise SliceNotFound(f"slice {name} has no service {service!r}",
                                hint=f"`stacklet status {name}` lists its services")
        info = matches[0]
        self.driver.restart([info.id])
        info = self._wait_ready(info, timeout_s, after=" after a restart")
        if info.labels.get(f"{LABEL}.role") == "linkproxy":
            # a restarted link proxy starts empty: give it its routes again (its faults are gone)
            self._configure_proxy(info, routes_of(info.labels))
        return self.status(name).service(service)

    def stack_of(self, name: str) -> Stack:
        """Load again the stack a running slice was made from (its labels say where it lives)."""
        containers = self._containers_of(name)
        labels = containers[0].labels
        if labels.get(f"{LABEL}.stack-file"):
            return load_stack(labels[f"{LABEL}.stack-file"])
        files = [Path(f) for f in labels.get(f"{LABEL}.compose-files", "").split(",") if f]
        if not files:
            raise SliceNotFound(f"slice {name} does not say which stack it was made from",
                                hint="it was started by another version of stacklet; recreate it")
        return load_stack(compose_files=files)

    def seed(self, name: str, service: str | None = None, *, reset: bool = False) -> list[SeedResult]:
        """Re-apply (or with ``reset``, restore) the seeds of one service of a slice, or of all seeded ones."""
        stack = self.stack_of(name)
        containers = {c.service: c for c in self._containers_of(name)
                      if c.labels.get(f"{LABEL}.role") != "linkproxy"}
        if service and service not in containers:
            raise SliceNotFound(f"slice {name} has no service {service!r}",
                                hint=f"its services: {', '.join(sorted(containers))}")
        seeded = seed_plan(stack, [service] if service else sorted(containers))
        if service and service not in seeded:
            raise StackFileError(f"{service} has no seed files",
                                 hint=f"add files under seeds/{stack.name}/{service}/ and declare `seed:` in stack.yaml")
        seeder = Seeder(self.driver, stack, self._direct_address)
        return [(seeder.reset if reset else seeder.seed)(svc, containers[svc]) for svc in seeded]

    # -- inspect ------------------------------------------------------------------------------

    def status(self, name: str) -> SliceStatus:
        """The live state of slice ``name``, from its containers' labels."""
        containers = self._containers_of(name)
        first = containers[0].labels
        vantage = self._vantage(name)
        owners = {t: c for c in containers if c.labels.get(f"{LABEL}.role") == "linkproxy"
                  for t in c.labels.get(f"{LABEL}.targets", "").split(",") if t}
        services, proxies = [], []
        for info in sorted(containers, key=lambda c: c.service):
            status = ServiceStatus(name=info.service, role=info.labels.get(f"{LABEL}.role", "?"),
                                   container=info.name, state=info.state, health=info.health,
                                   health_output=info.health_output, restarts=info.restarts,
                                   endpoints=[Endpoint(port=p, host=f"127.0.0.1:{h}", network=f"{info.service}:{p}",
                                                       address=vantage and vantage.address(info, p, owners))
                                              for p, h in sorted(info.ports.items())])
            (proxies if status.role == "linkproxy" else services).append(status)
        return SliceStatus(
            in_container=self.driver.self_container() is not None, attached_as=vantage and vantage.container,
            name=name, stack=first.get(f"{LABEL}.stack", "?"), project=slice_project_name(name),
            created=first.get(f"{LABEL}.created"), expires=lifetime.first_label([c.labels for c in containers], EXPIRES),
            changed=[c for c in first.get(f"{LABEL}.changed", "").split(",") if c],
            compose_file=first.get(f"{LABEL}.compose-file"),
            healthy=all(settled(c) for c in containers),
            services=services, proxies=proxies)

    def list(self) -> list[SliceSummary]:
        """Every slice on the engine, found by labels."""
        by_slice: dict[str, list[ContainerInfo]] = {}
        for info in self.driver.containers({f"{LABEL}.slice": ""}):
            by_slice.setdefault(info.labels[f"{LABEL}.slice"], []).append(info)
        now = datetime.now(timezone.utc)
        summaries = []
        for name, containers in sorted(by_slice.items()):
            labels = containers[0].labels
            created = labels.get(f"{LABEL}.created")
            age = (now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds() if created else None
            expires, expires_in_s, expired = lifetime.expiry([c.labels for c in containers], now)
            summaries.append(SliceSummary(
                name=name, stack=labels.get(f"{LABEL}.stack", "?"),
                changed=[c for c in labels.get(f"{LABEL}.changed", "").split(",") if c], created=created,
                age_s=age, containers=len(containers), running=sum(c.state == "running" for c in containers),
                healthy=all(readiness(c, False) == "ready" for c in containers if c.state != "exited"),
                expires=expires, expires_in_s=expires_in_s, expired=expired))
        return summaries

    def logs(self, name: str, service: str | None = None, *, follow: bool = False,
             tail: int | None = None) -> Iterator[tuple[str, str]]:
        """(service, line) pairs of one service or of the whole slice."""
        containers = self._containers_of(name)
        if service:
            containers = [c for c in containers if c.service == service]
            if not containers:
                raise SliceNotFound(f"slice {name} has no service {service!r}",
                                    hint="`stacklet status " + name + "` lists its services")
        names = {c.id: c.service for c in containers}
        if follow:
            for cid, line in self.driver.follow_logs(list(names), tail=tail):
                yield names[cid], line
            return
        for cid, service_name in names.items():
            for line in self.driver.container_logs(cid, tail=tail).splitlines():
                yield service_name, line

    # -- lifetime: boot deadline, boot marker, gc ---------------------------------------------

    def _set_boot_deadline(self, project, spec: dict, timeout_s: int) -> float:
        """Label the slice with the time its boot must finish by (the file is written again); monotonic deadline."""
        depends = {s: set(v.get("depends_on") or {}) for s, v in spec["services"].items()}
        budget = lifetime.boot_budget_s(timeout_s, len(dependency_layers(depends)))
        label = {BOOT_DEADLINE: utc_text(datetime.now(timezone.utc) + timedelta(seconds=budget))}
        for section in ("services", "networks", "volumes"):
            for item in (spec.get(section) or {}).values():
                if isinstance(item, dict) and SLICE in (item.get("labels") or {}):
                    item["labels"].update(label)
        project.file.write_text(yaml.safe_dump(spec, sort_keys=False))
        return time.monotonic() + budget

    def _mark_booted(self, name: str, stack_name: str, result: str, expiry: dict[str, str]) -> None:
        """Create the marker volume that says the boot of ``name`` finished (``ready`` or ``kept``)."""
        self.driver.create_volume(lifetime.marker_volume(name), {
            SLICE: name, f"{LABEL}.stack": stack_name, lifetime.MARKER: "boot",
            lifetime.BOOTED: utc_text(datetime.now(timezone.utc)), lifetime.BOOT_RESULT: result, **expiry})

    def _clear_boot_marker(self, name: str) -> None:
        """Remove a marker left by an earlier slice of the same name (a new boot must not look finished)."""
        stale = self.driver.labelled_volumes({SLICE: name, lifetime.MARKER: "boot"})
        if stale:
            self.driver.remove(volumes=list(stale))

    def gc(self, *, dry_run: bool = False, now: datetime | None = None,
           only: list[str] | None = None) -> list[GcDecision]:
        """Remove expired and orphaned slices, found by their labels; returns the decision on every slice.

        A slice whose boot is still within its deadline is never removed. ``dry_run`` removes nothing;
        ``only`` limits gc to the slices of those names.
        """
        now = now or datetime.now(timezone.utc)
        found: dict[str, SliceResources] = {}

        def of(labels: dict[str, str]) -> SliceResources:
            return found.setdefault(labels[SLICE], SliceResources(labels[SLICE]))

        for info in self.driver.containers({SLICE: ""}):
            of(info.labels).containers.append(info.labels)
        for labels in self.driver.labelled_networks({SLICE: ""}).values():
            of(labels).networks.append(labels)
        for labels in self.driver.labelled_volumes({SLICE: ""}).values():
            of(labels).volumes.append(labels)
        decisions = [lifetime.classify(resources, now) for name, resources in sorted(found.items())
                     if only is None or name in only]
        for decision in decisions:
            if decision.remove and not dry_run:
                compose_file = self.workdir / "slices" / decision.slice / COMPOSE_FILE
                self._remove(decision.slice, self.driver.project(compose_file, slice_project_name(decision.slice)))
        return decisions

    # -- from inside a container: attach to the slice network ---------------------------------

    def _vantage(self, name: str) -> Vantage | None:
        """Where this process stands towards slice ``name``: None on the host (or while the slice has no
        network); in a container, that container attached to the slice network (attached here when it is not)."""
        me = self.driver.self_container()
        if me is None:
            return None
        network = slice_project_name(name)
        mine = self.driver.inspect([me.id])
        joined = mine[0].networks if mine else []
        if network not in joined:
            if network not in self.driver.networks({f"{LABEL}.slice": name}):
                return None  # not a slice network (never a baseline's), or not created yet
            self.driver.connect(network, me.id)
        slice_prefix, baseline_prefix = slice_project_name(""), baseline_project_name("")
        others = [n for n in joined if n != network and n.startswith(slice_prefix) and not n.startswith(baseline_prefix)]
        return Vantage(container=me.name, network=network, shared=bool(others))

    def _direct_address(self, info: ContainerInfo, port: int) -> str | None:
        """``IP:port`` of a slice container on its network when this process is attached to it, else None."""
        slice_name = info.labels.get(f"{LABEL}.slice")
        vantage = self._vantage(slice_name) if slice_name else None
        ip = info.addresses.get(vantage.network) if vantage else None
        if vantage and not ip:  # attached after ``info`` was read
            fresh = self.driver.inspect([info.id])
            ip = fresh[0].addresses.get(vantage.network) if fresh else None
        return f"{ip}:{port}" if ip else None

    def _detach_all(self, name: str) -> None:
        """Disconnect every container that is not the slice's own (this process's first) from its network,
        so the network can be removed."""
        network = slice_project_name(name)
        attached = self.driver.network_containers(network)
        if not attached:
            return
        own = {c.id for c in self.driver.containers({f"{LABEL}.slice": name})}
        me = self.driver.self_container()
        for cid in sorted(set(attached) - own, key=lambda c: not (me and c == me.id)):
            self.driver.disconnect(network, cid)

    # -- teardown -----------------------------------------------------------------------------

    def down(self, name: str) -> None:
        """Remove slice ``name``: containers, network, volumes and the images it built."""
        if not self.driver.containers({f"{LABEL}.slice": name}) and not self.driver.networks({f"{LABEL}.slice": name}):
            raise SliceNotFound(f"no slice named {name!r} on {self.driver.endpoint}",
                                hint="`stacklet ls` lists the slices")
        compose_file = self.workdir / "slices" / name / COMPOSE_FILE
        self._remove(name, self.driver.project(compose_file, slice_project_name(name)))

    def _remove(self, name: str, project) -> None:
        self._detach_all(name)
        if project.file.is_file():
            try:
                project.down()
            except DockerError:
                pass
        labels = {f"{LABEL}.slice": name}
        self.driver.remove(containers=[c.id for c in self.driver.containers(labels)])
        self.driver.remove(networks=self.driver.networks(labels), volumes=self.driver.volumes(labels))

    @staticmethod
    def _write(folder: Path, spec: dict) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / COMPOSE_FILE
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path


@dataclass(frozen=True)
class Vantage:
    """This process's own container, attached to a slice network."""

    container: str
    network: str
    shared: bool = False  # also on another slice's network: service names may resolve there

    def address(self, info: ContainerInfo, port: int, owners: dict[str, ContainerInfo]) -> str:
        """``name:port`` in the slice network; the IP of the container owning that name when names are shared."""
        if not self.shared:
            return f"{info.service}:{port}"
        owner = owners.get(info.service, info)
        return f"{owner.addresses.get(self.network, info.service)}:{port}"


