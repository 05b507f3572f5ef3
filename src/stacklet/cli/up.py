"""`stacklet up` (with ``--watch``) and `stacklet reload`: boot or update a slice, rebuild one service."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from stacklet.cli import display
from stacklet.cli.app import (BaselineEngineOpt, EnvFileOpt, FileOpt, JsonOpt, ProfileOpt, RadiusOpt, SinceOpt,
                              SliceOpt, StackOpt, _emit, _emit_line, _run, _session, app, console, err_console)
from stacklet.config.stack import MAX_TIMEOUT_S
from stacklet.errors import PlanError, StackletError
from stacklet.ops import commands as ops
from stacklet.ops.engines import choose_engine
from stacklet.ops.results import error_envelope
from stacklet.ops.session import Session, load
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S


@app.command()
def up(services: Annotated[Optional[list[str]], typer.Argument(help="changed services")] = None,
       since: SinceOpt = None, radius: RadiusOpt = None,
       name: Annotated[Optional[str], typer.Option("--name", "-n", help="slice name")] = None,
       keep_on_failure: Annotated[bool, typer.Option("--keep-on-failure", help="leave a failed slice running")] = False,
       no_seed: Annotated[bool, typer.Option("--no-seed", help="do not load seed data")] = False,
       no_snapshot: Annotated[bool, typer.Option("--no-snapshot", help="prepare seeded stores from scratch "
                                                                       "(initdb, jobs, seeds), no snapshot")] = False,
       fault: Annotated[Optional[str], typer.Option("--fault", help="fault profile to apply once healthy")] = None,
       fault_seed: Annotated[Optional[int], typer.Option("--fault-seed", help="repeatable fault randomness")] = None,
       timeout: Annotated[int, typer.Option("--timeout", min=1, max=MAX_TIMEOUT_S,
                                            help="seconds each service may take to be healthy")] = DEFAULT_TIMEOUT_S,
       ttl: Annotated[Optional[str], typer.Option("--ttl", help="expire after e.g. 30m, 2h, 1d; `never` (default: "
                                                                 "stack.yaml ttl:); `stacklet gc` removes it then")] = None,
       watch: Annotated[bool, typer.Option("--watch", "-w", help="then reload services whose files change, "
                                                                 "until Ctrl-C (the slice keeps running)")] = False,
       stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None, compose_profile: ProfileOpt = None,
       baseline_engine: BaselineEngineOpt = None,
       engine: Annotated[Optional[str], typer.Option("--engine", help="boot on this engine: `auto` (the listed "
                                                     "engine with the fewest running slices, then the most free "
                                                     "memory), a listed engine, a URL or a context")] = None,
       as_json: JsonOpt = False) -> None:
    """Boot the slice for a change and print its endpoints; on a running slice, update only what changed."""
    session = _session()

    def action() -> None:
        arguments = dict(services=services or [], since=since, radius=radius, name=name,
                         keep_on_failure=keep_on_failure, no_seed=no_seed, no_snapshot=no_snapshot, fault=fault,
                         fault_seed=fault_seed,
                         timeout=timeout, ttl=ttl, stack=stack, files=file, env_files=env_file,
                         profiles=compose_profile or [], baseline_engine=baseline_engine, engine=engine)
        if as_json:
            result = ops.up(session, **arguments)
            _emit(result)
        else:
            def show(the_plan) -> None:
                console.print(display.plan_table(the_plan, the_plan.seeds))
                console.print()

            with display.Progress(console) as progress:
                result = ops.up(session, **arguments, on_plan=show, on_event=progress)
            console.print()
            if result.warm:
                console.print(result.warm.line(), highlight=False)
            if result.reconcile:
                console.print(display.changes_table(result.reconcile))
                console.print()
            console.print(display.endpoints_table(result.slice))
            if result.placement:
                console.print(f"\nplaced on {result.placement.engine}: {result.placement.reason}", highlight=False)
            console.print(f"\nslice [bold]{result.slice.name}[/] is up. `stacklet down {result.slice.name}` removes it.")
        if watch:  # on the engine the slice went to: the one --engine named, or the one it chose
            where = (result.placement.engine if result.placement else engine) if engine else None
            on = choose_engine(session, where)[0] if where else session
            the_stack = load(on, stack, file, env_file, services, compose_profile)
            _watch(on, the_stack, result.slice.name, [s.name for s in result.plan.local], timeout, as_json)
    _run(as_json, action)


def _watch(session: Session, stack, slice_name: str, services: list[str], timeout: int, as_json: bool) -> None:
    """Reload the slice's built services when their files change, one line per reload, until Ctrl-C."""
    from stacklet.runtime.watch import built_services, watch

    built = built_services(stack, services)
    if not built:
        raise PlanError(f"no service of slice {slice_name} has a build, so there is nothing to watch",
                        hint="--watch reloads services built from local files (Compose `build:`)")

    def say(text: str, data: dict) -> None:
        if as_json:
            _emit_line(data)
        else:
            console.print(text, highlight=False)
            sys.stdout.flush()

    def reloaded(result) -> None:
        say(result.summary(), {"ok": True, "reload": result.model_dump(mode="json")})

    def failed(service: str, error: StackletError) -> None:
        if as_json:
            say("", {**error_envelope(error), "service": service})
        else:
            err_console.print(display.error_text(error))
            console.print(f"reload of {service} failed; still watching", highlight=False)

    def ready(roots) -> None:
        say(f"watching {', '.join(built)} ({', '.join(map(str, roots))}); Ctrl-C stops watching",
            {"ok": True, "watching": built, "roots": [str(r) for r in roots]})

    try:
        watch(session.engine, slice_name, stack, built, on_reload=reloaded, on_error=failed, on_ready=ready,
              timeout_s=timeout, on_change=lambda targets: None if as_json else console.print(
                  f"[dim]changed: {', '.join(targets)}: reloading[/]"))
    except KeyboardInterrupt:
        say(f"stopped watching; slice {slice_name} is still running (`stacklet down {slice_name}` removes it)",
            {"ok": True, "stopped": True, "slice": slice_name, "running": True})


@app.command("reload")
def reload_service(service: Annotated[str, typer.Argument(help="the service to rebuild and restart")],
                   slice_name: SliceOpt = None,
                   timeout: Annotated[int, typer.Option("--timeout", min=1, max=MAX_TIMEOUT_S,
                                                        help="seconds it may take to be healthy")] = DEFAULT_TIMEOUT_S,
                   as_json: JsonOpt = False) -> None:
    """Rebuild one service of a running slice and recreate only it; returns once it is healthy again.

    Link proxies are left alone, so the faults on them stay. Exit 2 when it does not become healthy.
    """
    def action() -> None:
        result = ops.reload(_session(), service, slice_name, timeout)
        _emit(result) if as_json else console.print(result.reload.summary(), highlight=False)
    _run(as_json, action)
