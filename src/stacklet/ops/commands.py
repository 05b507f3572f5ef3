"""The command layer: one function per stacklet command, each returning a result model.

The CLI renders these results as text or JSON, the MCP tools are derived from these functions
(their parameters and docstrings), and the TUI calls them. A function here never prints and never
exits: errors are ``StackletError``s, turned into exit codes by the front ends.

Parameters are annotated with their descriptions once, here; ``session`` and ``on_*`` callbacks
are supplied by the front end and are not part of a tool's arguments.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from stacklet import __version__
from stacklet.checks.run import run_checks
from stacklet.checks.signals import percentile
from stacklet.checks.verdict import Verdict, read_history
from stacklet.config.faultprofile import find_fault_profile, load_fault_profile, parse_toxic_arguments
from stacklet.config.stack import MAX_RADIUS, MAX_TIMEOUT_S, parse_duration, stack_reference
from stacklet.docker.remote import read_baseline, remote_baseline, require_answers
from stacklet.errors import ConfigError, LinkProxyError, PlanError, short_repr
from stacklet.ops import results as r
from stacklet.ops.doctor import run_checks as run_doctor_checks
from stacklet.ops.engines import choose_engine, slices_everywhere
from stacklet.ops.session import Session, changed, changed_with_notes, load, one_slice
from stacklet.ops.skill import render_skill
from stacklet.ops.warm import take_warm, warm
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import default_slice_name, make_plan, select_slice, validate_slice_name
from stacklet.runtime.faults import active_faults, add_fault, apply_profile, check_stack, clear_faults, link_targets
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S
from stacklet.runtime import snapshots
from stacklet.runtime.seeds import seed_plan
from stacklet.runtime.status import Event, EventSink

RECENT_REQUESTS = 200  # the p99 of `traffic` is of this many latest requests per link

Services = Annotated[list[str], Field(description="changed services (Compose service names), e.g. [\"orders\"]")]
Since = Annotated[str | None, Field(description="also the services whose files changed since this git ref, e.g. "
                                                "\"main\" (committed, uncommitted and untracked changes)")]
Radius = Annotated[int | None, Field(description="callers/callees distance to include (default: the stack's, "
                                                 "usually 1)", ge=0, le=MAX_RADIUS)]
StackRef = Annotated[str | None, Field(description="stack name under stacks/, folder, or stack.yaml path "
                                                   "(default: the only stack)")]
Files = Annotated[list[Path] | None, Field(description="Compose files (no stack.yaml needed)")]
EnvFiles = Annotated[list[Path] | None, Field(description="env files for Compose interpolation")]
SliceName = Annotated[str | None, Field(description="slice name, as returned by `up` in slice.name (default: the "
                                                    "only running slice)")]
Timeout = Annotated[int, Field(description="seconds each service may take to become ready", gt=0, le=MAX_TIMEOUT_S)]
Profiles = Annotated[list[str], Field(description="Compose profiles to enable, like `--profile` (default: "
                                                  "COMPOSE_PROFILES)")]
BaselineEngine = Annotated[str | None, Field(description="forward to the advertised baseline on this engine "
                                                         "(tcp://..., ssh://... or a context name; default: stack.yaml "
                                                         "baseline.engine)", max_length=500)]


# -- planning (no engine) ---------------------------------------------------------------------

def plan(session: Session, services: Services = [], since: Since = None, radius: Radius = None,
         stack: StackRef = None, files: Files = None, env_files: EnvFiles = None,
         profiles: Profiles = [], baseline_engine: BaselineEngine = None) -> r.PlanResult:
    """Show the slice a change would boot, without Docker (unless a baseline engine is read): `local` services
    (role changed/caller/callee/consumer/job/stateful, ports, reasons), `forwarded` services (baseline address,
    and the `engine` and `started` time of an advertised baseline), `links`, `edges` with their origins, link
    `proxies`, `seeds`, and `snapshots` (when an engine answers: each seeded store's snapshot key, `present`
    when it starts from it)."""
    the_stack = load(session, stack, files, env_files, services, profiles or None)
    result = _plan_result(the_stack, make_slice_plan(the_stack, services, since, radius, baseline_engine))
    result.snapshots = snapshots.preview(session.engine.driver, result, the_stack)
    return result


def make_slice_plan(stack, services: list[str], since: str | None, radius: int | None,
                    baseline_engine: str | None = None):
    """The slice plan for the services named and those changed since ``since`` (with a note naming changed files
    no service owns), with the options that select its stack from here (for the hints it prints); forwarded
    services go to the advertised baseline on ``baseline_engine`` (else stack.yaml ``baseline.engine``)."""
    names, notes = changed_with_notes(stack, services, since)
    engine = baseline_engine or stack.meta.baseline.engine
    the_plan = make_plan(stack, names, radius, baseline=remote_baseline(engine, stack.name) if engine else None)
    the_plan.stack_options = stack_reference(stack)
    the_plan.notes.extend(notes)
    return the_plan


def _plan_result(stack, the_plan) -> r.PlanResult:
    return r.PlanResult(**the_plan.model_dump(), seeds=seed_plan(stack, [s.name for s in the_plan.local]))


def why(session: Session, service: Annotated[str, Field(description="the service to explain")],
        changed_services: Annotated[list[str], Field(description="the changed services")] = [],
        since: Since = None, radius: Radius = None, stack: StackRef = None, files: Files = None,
        env_files: EnvFiles = None, profiles: Profiles = []) -> r.WhyResult:
    """Say why a service is local, forwarded, or not in the slice of a change, and which key, variable and file
    made each of its edges (`edges`; `weak` when only a shared env_file makes one)."""
    the_stack = load(session, stack, files, env_files, [service, *changed_services], profiles or None)
    graph = ServiceGraph.from_stack(the_stack)
    selection = select_slice(the_stack, changed(the_stack, changed_services, since), radius, graph)
    state = "local" if service in selection.local else "forwarded" if service in selection.forwarded else "absent"
    pairs = [*graph.graph.in_edges(service), *graph.graph.out_edges(service)] if service in graph.graph else []
    edges = [r.WhyEdge(source=a, target=b, weak=graph.is_weak(a, b), text=graph.edge_text(a, b),
                       origins=[o.model_dump(exclude_none=True) for o in graph.edge_sources(a, b)]) for a, b in pairs]
    return r.WhyResult(service=service, state=state, role=selection.local.get(service),
                       explanation=graph.explain(service, selection), edges=edges)


def graph(session: Session, format: Annotated[Literal["mermaid", "dot"], Field(description="output format")]
          = "mermaid", changed_services: Annotated[list[str], Field(description="mark the slice of these changed "
                                                                                "services")] = [],
          stack: StackRef = None, files: Files = None, env_files: EnvFiles = None,
          profiles: Profiles = []) -> r.GraphResult:
    """The service graph as Mermaid or Graphviz dot (the slice of a change marked, weak edges dashed)."""
    if format not in ("mermaid", "dot"):
        raise PlanError(f"unknown format {format!r}", hint="use --format mermaid or --format dot")
    the_stack = load(session, stack, files, env_files, changed_services, profiles or None)
    the_graph = ServiceGraph.from_stack(the_stack)
    selection = select_slice(the_stack, changed_services, None, the_graph) if changed_services else None
    text = the_graph.to_mermaid(selection) if format == "mermaid" else the_graph.to_dot(selection)
    return r.GraphResult(format=format, graph=text)


def skill(session: Session, stack: StackRef = None, files: Files = None,
          env_files: EnvFiles = None) -> r.SkillResult:
    """The stack's skill document (Markdown): services and what calls what, how to boot a slice and read the
    check verdict, fault profiles, seeds."""
    the_stack = load(session, stack, files, env_files)
    return r.SkillResult(stack=the_stack.name, skill=render_skill(the_stack))


def version(session: Session) -> r.VersionResult:
    """stacklet's version."""
    return r.VersionResult(version=__version__)


# -- slices -----------------------------------------------------------------------------------

def up(session: Session, services: Services = [], since: Since = None, radius: Radius = None,
       name: Annotated[str | None, Field(description="slice name (default: stack and services, e.g. "
                                                     "shop-orders)")] = None,
       keep_on_failure: Annotated[bool, Field(description="leave a failed slice running to inspect it")] = False,
       no_seed: Annotated[bool, Field(description="do not load seed data")] = False,
       no_snapshot: Annotated[bool, Field(description="prepare seeded stores from scratch (initdb, jobs, seeds) "
                                                      "instead of starting them from their snapshot")] = False,
       fault: Annotated[str | None, Field(description="fault profile (faults/NAME.yaml) to apply once ready")] = None,
       fault_seed: Annotated[int | None, Field(description="seed for repeatable fault randomness")] = None,
       timeout: Timeout = DEFAULT_TIMEOUT_S,
       ttl: Annotated[str | None, Field(description="expire after e.g. 30m, 2h, 1d, or never (default: the "
                                                    "stack's ttl)")] = None,
       stack: StackRef = None, files: Files = None, env_files: EnvFiles = None, profiles: Profiles = [],
       baseline_engine: BaselineEngine = None,
       engine: Annotated[str | None, Field(description="the engine to boot on: `auto` (the listed engine with the "
                                                       "fewest running slices, then the most free memory), a "
                                                       "listed engine, a URL or a context (default: the "
                                                       "one stacklet was started with)", max_length=500)] = None,
       on_plan: Callable[[r.PlanResult], None] = lambda plan: None,
       on_event: EventSink = lambda e: None) -> r.UpResult:
    """Boot the slice for a change (build from the working tree, start in dependency order, seed, apply faults)
    and return when it is ready; on a slice that runs, update only what changed (its age and expiry are kept).
    A failed boot names the failing service with its health output and logs, and removes the slice.
    `engine` and `placement` say where it runs and why."""
    session, placement = choose_engine(session, engine) if engine else (session, None)
    if placement:
        on_event(Event("placed", message=f"on {placement.engine}: {placement.reason}"))
    the_stack = load(session, stack, files, env_files, services, profiles or None)
    the_plan = make_slice_plan(the_stack, services, since, radius, baseline_engine)
    require_answers({f.name: (f.engine, f.address) for f in the_plan.forwarded if f.engine and f.address})
    slice_name = validate_slice_name(name or default_slice_name(the_plan))
    on_plan(_plan_result(the_stack, the_plan))
    profile = load_fault_profile(find_fault_profile(fault)) if fault else None
    ttl_s = _ttl(ttl, the_stack.meta.ttl)
    engine = session.engine
    if engine.driver.needs_advertise:
        raise ConfigError(f"the slice's ports would be published on the loopback of {engine.driver.endpoint}, "
                          "which nobody else reaches", key="--advertise",
                          hint="give the address this host reaches that engine's host on: `stacklet --host "
                               "ENGINE --advertise IP up ...`, or ENGINE=IP in STACKLET_ENGINES")
    engine.driver.engine_info()
    warm_take = None
    if not engine.exists(slice_name):
        taken, warm_take = take_warm(session, the_plan, the_stack, slice_name, seed=not no_seed,
                                     fault_profile=profile, fault_seed=fault_seed, ttl_s=ttl_s, timeout_s=timeout,
                                     on_event=on_event)
        if taken:
            return r.UpResult(plan=the_plan, slice=taken, warm=warm_take)
    status, reconciled = engine.converge(the_plan, the_stack, slice_name, keep_on_failure=keep_on_failure,
                                         seed=not no_seed, snapshots=not no_snapshot, fault_profile=profile, fault_seed=fault_seed,
                                         timeout_s=timeout, ttl_s=ttl_s, on_event=on_event)
    return r.UpResult(plan=the_plan, slice=status, reconcile=reconciled, engine=engine.driver.endpoint,
                      placement=placement, warm=warm_take)


def reload(session: Session, service: Annotated[str, Field(description="the service to rebuild and restart")],
           slice: SliceName = None, timeout: Timeout = DEFAULT_TIMEOUT_S,
           on_event: EventSink = lambda e: None) -> r.ReloadAnswer:
    """After editing a service's code: rebuild its image and recreate only its container in the running slice,
    returning once it is ready again. Faults on the links stay; a reloaded stateful service is seeded again."""
    return r.ReloadAnswer(reload=session.engine.reload(one_slice(session, slice), service, timeout, on_event))


def status(session: Session, slice: SliceName = None) -> r.StatusResult:
    """A slice's services: `healthy`, and per service `state`, `health`, `health_output`, `restarts`, `endpoints`
    (`address`: what works from where stacklet runs), `in_container`/`attached_as`."""
    return r.StatusResult(**session.engine.status(one_slice(session, slice)).model_dump(),
                          engine=session.engine.driver.endpoint)


def ls(session: Session) -> r.SliceList:
    """Every slice on every listed engine (STACKLET_ENGINES or the engines file; else the session's engine):
    `slices` (name, engine, stack, changed, age_s, expires, expires_in_s, expired, containers, running, healthy)
    and `engines` (engine, ok, slices, error: an engine that does not answer is reported, not fatal, unless none
    answers)."""
    slices, engines = slices_everywhere(session)
    return r.SliceList(slices=slices, engines=engines)


def logs(session: Session, service: Annotated[str | None, Field(description="one service (default: all of "
                                                                              "the slice)")] = None,
         slice: SliceName = None, tail: Annotated[int | None, Field(description="last N lines per service",
                                                                     gt=0)] = 200) -> r.LogLines:
    """Recent logs of a slice or of one of its services: `lines` of `{service, line}`."""
    return r.LogLines(lines=[{"service": s, "line": line} for s, line in follow_logs(session, service, slice, tail)],
                      engine=session.engine.driver.endpoint)


def follow_logs(session: Session, service: str | None = None, slice: str | None = None, tail: int | None = None,
                follow: bool = False) -> Iterator[tuple[str, str]]:
    """(service, line) pairs of a slice's logs, kept open with ``follow`` (for the CLI's ``logs --follow``)."""
    return session.engine.logs(one_slice(session, slice), service, follow=follow, tail=tail)


def down(session: Session, name: Annotated[str | None, Field(description="slice name (default: the only "
                                                                         "running slice)")] = None,
         all: Annotated[bool, Field(description="remove every slice on the engine")] = False,
         on_removed: Callable[[str], None] = lambda name: None) -> r.Removed:
    """Remove a slice (or all): containers, network, volumes, its folder (its images stay for other slices)."""
    engine = session.engine
    names = [s.name for s in engine.list()] if all else [one_slice(session, name)]
    for slice_name in names:
        engine.down(slice_name)
        on_removed(slice_name)
    return r.Removed(removed=names)


def gc(session: Session, names: Annotated[list[str], Field(description="only these slices (default: every "
                                                                        "slice)")] = [],
       dry_run: Annotated[bool, Field(description="say what would be removed, remove nothing")] = False
       ) -> r.GcResult:
    """Remove expired slices (`up --ttl`) and orphaned ones (their boot never finished, or no containers left),
    stale seeded snapshots (`snapshots`: not used by a container, and their key is no longer current or
    they were not used for 7 days) and stale images slices built (`images`: not used by a container, and
    not the image of their service's current sources)."""
    decisions = session.engine.gc(dry_run=dry_run, only=names or None)
    stale = [] if names else session.engine.gc_snapshots(dry_run=dry_run)
    images = [] if names else session.engine.gc_builds(dry_run=dry_run)
    return r.GcResult(dry_run=dry_run, removed=[d for d in decisions if d.remove],
                      kept=[d for d in decisions if not d.remove], snapshots=stale, images=images)


def seed(session: Session, service: Annotated[str | None, Field(description="one service (default: every "
                                                                             "seeded one)")] = None,
         slice: SliceName = None) -> r.SeedResults:
    """Load the seed files again (after editing them): the data becomes the new seeded state."""
    return r.SeedResults(results=session.engine.seed(one_slice(session, slice), service))


def reset(session: Session, service: Annotated[str | None, Field(description="one service (default: every "
                                                                              "seeded one)")] = None,
          slice: SliceName = None) -> r.SeedResults:
    """Put services back to their exact seeded state (fast: PostgreSQL template databases)."""
    return r.SeedResults(results=session.engine.seed(one_slice(session, slice), service, reset=True))


def restart(session: Session, service: Annotated[str, Field(description="the service or link proxy")],
            slice: SliceName = None, timeout: Timeout = DEFAULT_TIMEOUT_S) -> r.StatusResult:
    """Restart one service of a slice and wait until it is ready again (a link proxy gets its routes back)."""
    name = one_slice(session, slice)
    session.engine.restart(name, service, timeout)
    return status(session, name)


def check(session: Session, slice: SliceName = None,
          all: Annotated[bool, Field(description="run every check, not only those of the changed services")] = False,
          only: Annotated[list[str], Field(description="run just these checks, by name")] = [],
          reference: Annotated[Literal["previous", "baseline"] | None,
                               Field(description="name regressions of each link's and load step's p99 and error "
                                                 "rate and each container's peak memory against the previous "
                                                 "passing run (previous) or the same checks run against the "
                                                 "baseline first (baseline; their requests reach the baseline)")
                               ] = None,
          on_progress: Callable[[str], None] = lambda message: None) -> Verdict:
    """Run the stack's checks against a slice and return one verdict: `ok`, `verdict` (passed, failed,
    unhealthy), `failures` (kind, service, check, step, expected, actual, logs); `exit_code` 0 passed,
    1 checks failed, 2 slice not healthy."""
    return run_checks(session.engine, one_slice(session, slice), run_all=all, names=only or None,
                      on_progress=on_progress, reference=reference)


def traffic(session: Session, slice: SliceName = None) -> r.TrafficResult:
    """Every link's counters now, as its link proxy keeps them: `connections`, HTTP `requests`, `responses_5xx`,
    `no_response`, and the p99 of the latest requests; read twice for rates (`at` is when)."""
    name = one_slice(session, slice)
    result = r.TrafficResult(slice=name, at=time.time())
    for handle in session.engine.link_proxies(name):
        for route, upstream in sorted(handle.routes.items()):
            try:
                counted = handle.control.traffic(route)
                latest = handle.control.traffic(route, max(0, counted.last_seq - RECENT_REQUESTS)).requests
            except LinkProxyError as error:
                result.errors.append(error.message)
                continue
            durations = sorted(q.duration_ms for q in latest if q.duration_ms is not None)
            stats = counted.stats
            result.links.append(r.LinkCounters(
                link=route, target=route.split(":")[0], proxy=handle.name, upstream=upstream,
                connections=stats.connections_total, requests=stats.requests,
                responses_5xx=stats.responses.get("5xx", 0), no_response=stats.no_response,
                p99_ms=percentile(durations, 99), recent=len(durations)))
    return result


def check_history(session: Session, slice: SliceName = None) -> r.HistoryResult:
    """The previous verdicts of a slice."""
    name = one_slice(session, slice)
    return r.HistoryResult(slice=name, history=read_history(session.engine.workdir, name))


# -- faults -----------------------------------------------------------------------------------

def fault_apply(session: Session, profile: Annotated[str, Field(description="fault profile name "
                                                                             "(faults/NAME.yaml) or file")],
                slice: SliceName = None) -> r.FaultsResult:
    """Apply a fault profile to a running slice."""
    the_profile = load_fault_profile(find_fault_profile(profile))
    name = one_slice(session, slice)
    check_stack(the_profile, session.engine.status(name).stack)
    return r.FaultsResult(faults=apply_profile(session.engine.link_proxies(name), the_profile))


def fault_add(session: Session,
              target: Annotated[str, Field(description="the link target (a service name as its callers see it), "
                                                       "or @forwarded, @local, @all")],
              type: Annotated[str, Field(description="latency, bandwidth, slow_close, timeout, reset_peer, slicer, "
                                                     "limit_data, noop, or down")],
              settings: Annotated[list[str], Field(description="key=value: attributes (latency=300), stream, "
                                                               "toxicity, name")] = [],
              slice: SliceName = None) -> r.FaultsResult:
    """Add one fault to a link of a running slice, e.g. target orders-db, type latency, settings [latency=200]."""
    spec = parse_toxic_arguments(target, type, settings)
    return r.FaultsResult(faults=add_fault(session.engine.link_proxies(one_slice(session, slice)), spec))


def fault_clear(session: Session, target: Annotated[str | None, Field(description="one target or group "
                                                                                  "(default: all)")] = None,
                slice: SliceName = None) -> r.FaultsResult:
    """Remove faults (toxics and disabled links) from one target or from all."""
    return r.FaultsResult(faults=clear_faults(session.engine.link_proxies(one_slice(session, slice)), target))


def fault_ls(session: Session, slice: SliceName = None) -> r.FaultList:
    """The link targets of a slice (local or forwarded) and the faults in force on each."""
    handles = session.engine.link_proxies(one_slice(session, slice))
    return r.FaultList(targets=link_targets(handles), faults=active_faults(handles))


# -- baseline and engine ----------------------------------------------------------------------

def baseline_up(session: Session, stack: StackRef = None, files: Files = None, env_files: EnvFiles = None,
                timeout: Annotated[int, Field(description="seconds to wait until ready", gt=0, le=MAX_TIMEOUT_S)] = 600,
                advertise: Annotated[str | None, Field(description="an IP address of the engine's host to publish the "
                                                                   "services on for other hosts (default: 127.0.0.1 "
                                                                   "only)")] = None,
                on_event: EventSink = lambda e: None) -> r.BaselineResult:
    """Start the whole stack as the shared baseline (brought up to date when it runs); with `advertise`, slices on
    other engines can forward to it (`baseline: {engine: ...}` in their stack.yaml)."""
    the_stack = load(session, stack, files, env_files)
    address = _advertise_address(advertise) if advertise is not None else None
    session.engine.driver.engine_info()
    return r.BaselineResult(baseline=session.engine.baseline_up(the_stack, timeout, on_event=on_event,
                                                                advertise=address))


def baseline_down(session: Session, stack: StackRef = None, files: Files = None,
                  keep_images: Annotated[bool, Field(description="keep the images the baseline built")] = False
                  ) -> r.BaselineRemoved:
    """Stop and remove the shared baseline of a stack and the images it built (refused while slices use it)."""
    the_stack = load(session, stack, files)
    images = session.engine.baseline_down(the_stack.name, keep_images)
    return r.BaselineRemoved(removed=[the_stack.name], images=images)


def baseline_status(session: Session, stack: StackRef = None, files: Files = None) -> r.BaselineStatusResult:
    """The services of the shared baseline of a stack, and what it serves to other hosts (`served`: engine,
    started, advertise, services -> port -> advertised host:port)."""
    the_stack = load(session, stack, files)
    status = session.engine.baseline_status(the_stack.name)
    return r.BaselineStatusResult(**status.model_dump(), served=read_baseline(session.driver, the_stack.name),
                                  engine=session.driver.endpoint)


def doctor(session: Session) -> r.DoctorResult:
    """The prerequisites: engine, API version, Compose v2, images, free ports; `ok` when all are met."""
    return r.DoctorResult.of(run_doctor_checks(session.driver))


def _advertise_address(value: str) -> str:
    """``--advertise`` as an IP address (Docker publishes ports on addresses, not names)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ConfigError(f"--advertise must be an IP address of the engine's host, got {short_repr(value)}",
                          key="--advertise", hint="e.g. --advertise 10.250.0.2 (the address other hosts reach "
                                                  "the engine's host at)") from exc


def _ttl(value: str | None, default: int | None) -> int | None:
    """Seconds of ``--ttl``, else the stack's ``ttl:``; None means no expiry."""
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--ttl", hint=f"got {short_repr(value)}") from exc


TOOLS = [plan, why, graph, skill, up, reload, status, ls, logs, down, gc, seed, reset, restart, check, traffic,
         fault_apply, fault_add, fault_clear, fault_ls, baseline_up, baseline_down, baseline_status, doctor, warm]
"""The commands offered to agents as MCP tools (``logs --follow`` and ``tui`` are for people)."""
