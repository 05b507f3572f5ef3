"""Start the containers of a created project in dependency order, Compose's way, and wait until all are ready.

Each container starts as soon as what it depends on has reached the condition it asks for:
``service_started`` (running), ``service_healthy`` (ready by its wait strategy),
``service_completed_successfully`` (exited 0), and the calls inferred from its environment
(``dev.stacklet.after``: ready). Link proxies count as started once their routes are set. Everything
that can start together starts in one ``docker start``. A seeded service is ready for its
dependents once its seeds are loaded (in worker threads, while other services start); a store is
seeded only after the jobs that prepare it (its one-shot dependents) completed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from stacklet.docker.models import ContainerInfo
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import BootError
from stacklet.labels import Label, SliceLabels, split_list
from stacklet.planning.graph import dependency_layers
from stacklet.runtime.readiness import (DEFAULT_TIMEOUT_S, POLL_S, HealthcheckOnDemand, Verdict, WaitStrategy,
                                        unhealthy_from_a_pause)
from stacklet.runtime.status import Event, EventSink

Condition = Literal["started", "ready", "completed"]
LOG_TAIL = 30

_CONDITIONS: dict[str, Condition] = {"service_started": "started", "service_healthy": "ready",
                                     "service_completed_successfully": "completed"}


def wait_conditions(services: dict[str, Any]) -> dict[str, dict[str, Condition]]:
    """For each Compose service of a rendered project: dependency → the condition it waits for."""
    conditions: dict[str, dict[str, Condition]] = {}
    for key, spec in services.items():
        labels = spec.get("labels") or {}
        waits: dict[str, Condition] = {}
        for dep, options in (spec.get("depends_on") or {}).items():
            if dep not in services:
                continue  # already running (a reconcile starts only part of the slice)
            dep_labels = services[dep].get("labels") or {}
            if dep_labels.get(Label.ROLE) == "linkproxy":
                waits[dep] = "ready"  # its routes must be set before anything connects through it
            else:
                waits[dep] = _CONDITIONS.get((options or {}).get("condition", "service_started"), "started")
        for dep in split_list(labels.get(Label.AFTER)):
            if dep in services:
                waits.setdefault(dep, "ready")
        conditions[key] = waits
    return conditions


@dataclass
class StartPlan:
    """What ``start_in_order`` needs to know, beyond the containers themselves."""

    services: dict[str, Any]
    """Compose service key → its rendered spec (only the part to start)"""
    strategy_of: Callable[[ContainerInfo], WaitStrategy]
    on_ready: Callable[[ContainerInfo], None] = lambda info: None
    """called once a container is ready, before dependents may start (link proxies get their routes)"""
    seed: Callable[[str, ContainerInfo], Any] | None = None
    """loads a service's seeds into its container (returns a SeedResult)"""
    seeds: dict[str, list[str]] = field(default_factory=dict)
    """stack service name → seed files, for the services to seed once ready"""
    timeout_s: int = DEFAULT_TIMEOUT_S
    deadline: float | None = None
    """monotonic time the whole start must finish by"""


def start_in_order(driver: EngineDriver, project: str, start: StartPlan, on_event: EventSink = lambda e: None) -> None:
    """Start every service of ``start`` once its dependencies meet their conditions; return when all are ready.

    A failed or timed-out service raises ``BootError`` naming it with its log tail.
    """
    services = start.services
    waits = wait_conditions(services)
    dependency_layers({s: set(w) for s, w in waits.items()})  # refuses cycles before anything starts
    found = driver.containers({Label.COMPOSE_PROJECT: project})
    ids = {c.compose_service: c.id for c in found if c.compose_service in services}
    missing = set(services) - set(ids)
    if missing:
        raise BootError(f"no container was created for {', '.join(sorted(missing))}",
                        hint="see `docker compose ps` of the project")
    names = {key: (spec.get("labels") or {}).get(Label.SERVICE, key) for key, spec in services.items()}
    preparers = _preparers(services)
    started: dict[str, float] = {}
    reached: dict[str, set[Condition]] = {s: set() for s in services}
    ready: set[str] = set()
    strategies: dict[str, WaitStrategy] = {}
    seeding: dict[str, Future] = {}
    to_seed: dict[str, ContainerInfo] = {}
    reported: dict[str, str] = {}

    def can_start(service: str) -> bool:
        # a store waiting for its jobs before seeding is ready for those jobs (and only for them)
        return all(condition in reached[dep] or (dep in to_seed and service in preparers.get(dep, ()))
                   for dep, condition in waits[service].items())

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="seed") as pool:
        try:
            while len(ready) < len(services):
                if start.deadline is not None and time.monotonic() > start.deadline:
                    waiting = ", ".join(sorted(names[s] for s in services if s not in ready))
                    raise BootError(f"the boot did not finish by its deadline (still waiting for {waiting})",
                                    hint="raise --timeout (each dependency layer of the slice gets that many seconds)")
                startable = sorted(s for s in services if s not in started and can_start(s))
                if startable:
                    for service in startable:
                        on_event(Event("starting", names[service]))
                    driver.start([ids[s] for s in startable])
                    started.update({s: time.monotonic() for s in startable})
                progressed = bool(startable)
                for service, future in list(seeding.items()):
                    if future.done():
                        result = future.result()  # a seed error ends the boot here
                        on_event(Event("seeded", names[service], f"{len(result.files)} files in {result.seconds:.1f}s"))
                        del seeding[service]
                        _mark_ready(service, reached, ready)
                        progressed = True
                for service, info in list(to_seed.items()):
                    if all(p in ready for p in preparers.get(service, ())):
                        del to_seed[service]
                        on_event(Event("seeding", names[service], ", ".join(start.seeds[names[service]])))
                        seeding[service] = pool.submit(start.seed, names[service], info)
                        progressed = True
                watched = [ids[s] for s in started if s not in ready and s not in seeding and s not in to_seed]
                for info in driver.inspect(watched) if watched else []:
                    service = info.compose_service
                    if info.state in ("running", "exited", "restarting", "dead"):
                        reached[service].add("started")
                    strategy = strategies.setdefault(service, start.strategy_of(info))
                    verdict = strategy.poll(info)
                    if verdict.ready:
                        start.on_ready(info)
                        _report_ready(info, strategy.description, on_event)
                        if start.seed is not None and names[service] in start.seeds:
                            to_seed[service] = info
                            reached[service].add("completed" if info.state == "exited" else "started")
                        else:
                            _mark_ready(service, reached, ready, completed=info.state == "exited")
                        progressed = True
                    elif verdict.failed:
                        raise failure(driver, info, verdict.detail)
                    else:
                        seen = verdict.detail or info.state
                        if reported.get(service) != seen:
                            reported[service] = seen
                            on_event(Event("waiting", names[service], seen))
                        if time.monotonic() - started[service] > start.timeout_s:
                            raise failure(driver, info, f"did not become ready within {start.timeout_s} s "
                                                        f"(waiting for: {seen})")
                if not progressed:
                    if not watched and not seeding and not to_seed and not startable:
                        blocked = sorted(names[s] for s in services if s not in started)
                        raise BootError(f"nothing can start: {', '.join(blocked)} wait for services that cannot "
                                        "reach their condition", hint="check depends_on of these services")
                    time.sleep(POLL_S)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # no seed still writes when the slice is torn down


def _mark_ready(service: str, reached: dict[str, set[Condition]], ready: set[str], completed: bool = False) -> None:
    reached[service] |= {"started", "ready"} | ({"completed"} if completed else set())
    ready.add(service)


def _preparers(services: dict[str, Any]) -> dict[str, list[str]]:
    """Store → the jobs that prepare it (``dev.stacklet.seed-after``, from the plan): its seeds load after they
    completed. Jobs not started here (a reconcile starts part of a slice) completed before."""
    return {key: [job for job in split_list((spec.get("labels") or {}).get(Label.SEED_AFTER)) if job in services]
            for key, spec in services.items()}


def _report_ready(info: ContainerInfo, how: str, on_event: EventSink) -> None:
    labels = SliceLabels.of(info.labels)
    if labels.is_linkproxy:
        return  # the link proxy reports its routes itself
    if info.state == "exited":
        on_event(Event("completed", info.service, "completed (exit 0)"))
    elif info.health:
        on_event(Event("healthy", info.service, "healthy"))
    else:
        on_event(Event("running", info.service, "started (no healthcheck)" if how == "running" else f"{how} answers"))


def failure(driver: EngineDriver, info: ContainerInfo, what: str) -> BootError:
    """A BootError naming the service, with its last health output and log tail."""
    logs = driver.container_logs(info.id, tail=LOG_TAIL)
    return BootError(f"service {info.service} {what}", service=info.service,
                     health=info.health_output or None, logs=logs,
                     hint=f"fix {info.service} and try again; --keep-on-failure keeps the slice to inspect it")


def settle_resumed(driver: EngineDriver, container_id: str, timeout_s: float) -> None:
    """Wait until Docker's own healthcheck no longer says ``unhealthy`` from failed checks of before a resumed
    container was paused (its command passed again when run on demand), so the one health rule
    (``readiness.health``) sees it as ready: one healthcheck interval at most. A ``starting``, or the unhealthy
    a pause itself set, needs no wait: the health rule confirms it by running the command
    (``readiness.confirm_unjudged``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        stale = [c for c in driver.inspect([container_id])
                 if c.state == "running" and c.health == "unhealthy" and not unhealthy_from_a_pause(c)]
        if not stale:
            return
        if time.monotonic() > deadline:
            raise failure(driver, stale[0], f"passed its healthcheck command but Docker still says unhealthy "
                                            f"after {timeout_s} s")
        time.sleep(POLL_S)


def wait_one(driver: EngineDriver, info: ContainerInfo, strategy: WaitStrategy, timeout_s: int,
             on_event: EventSink = lambda e: None, after: str = "") -> ContainerInfo:
    """Wait until one (re)started container is ready by ``strategy``; a failure or timeout is a BootError.
    A strategy for a resumed container also lets the settle wait out Docker's health from the pause."""
    resumed = isinstance(strategy, HealthcheckOnDemand) and strategy.resumed
    deadline = time.monotonic() + timeout_s
    reported = None
    while True:
        info = driver.inspect([info.id])[0]
        verdict: Verdict = strategy.poll(info)
        if verdict.ready:
            _report_ready(info, strategy.description, on_event)
            if resumed:
                settle_resumed(driver, info.id, timeout_s)
                return driver.inspect([info.id])[0]
            return info
        if verdict.failed:
            raise failure(driver, info, verdict.detail)
        if time.monotonic() > deadline:
            raise failure(driver, info, f"did not become ready within {timeout_s} s{after}")
        if reported != (verdict.detail or info.state):
            reported = verdict.detail or info.state
            on_event(Event("waiting", info.service, reported))
        time.sleep(POLL_S)
