"""The stacklet command line (Typer): the only place where errors become exit codes.

Every command prints text for people, or with ``--json`` one JSON document and nothing else.
Exit codes: 0 success, 2 the engine or the slice failed, 3 usage or configuration error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from rich.console import Console

try:  # Typer 0.2x carries its own copy of Click; older Typer uses Click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from stacklet import __version__
from stacklet.cli import display
from stacklet.planning.changes import changed_services
from stacklet.checks.run import run_checks as run_slice_checks
from stacklet.cli.doctor import run_checks
from stacklet.docker.driver import Driver
from stacklet.runtime.engine import SliceEngine
from stacklet.errors import (ConfigError, PlanError, StackFileError, StackletError, UnexpectedError, short_repr,
                             short_text)
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import SlicePlan, default_slice_name, make_plan, select_slice, validate_slice_name
from stacklet.runtime.faults import active_faults, add_fault, apply_profile, check_stack, clear_faults, link_targets
from stacklet.runtime.seeds import seed_plan
from stacklet.checks.verdict import Verdict, read_history, render_history, to_junit
from stacklet.checks.verdict import render_text as render_verdict
from stacklet.config.stack import (MAX_TIMEOUT_S, Stack, find_fault_profile, list_stacks, load_fault_profile,
                                   load_stack, parse_duration, parse_toxic_arguments)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Boot only the slice of a Docker Compose stack that a change touches.")
baseline_app = typer.Typer(no_args_is_help=True, help="The shared local baseline: a full copy of a stack.")
app.add_typer(baseline_app, name="baseline")
fault_app = typer.Typer(no_args_is_help=True, help="Faults on the links of a running slice (toxics).")
app.add_typer(fault_app, name="fault")

# Piped output is not cut to 80 columns: tables stay one row per line for scripts and agents.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


class Options:
    context: str | None = None
    host: str | None = None


StackOpt = Annotated[Optional[str], typer.Option("--stack", "-s", envvar="STACKLET_STACK",
                                                 help="stack name under stacks/, folder, or stack.yaml path")]
FileOpt = Annotated[Optional[list[Path]], typer.Option("--file", "-f", help="a Compose file (no stack.yaml needed)")]
EnvFileOpt = Annotated[Optional[list[Path]], typer.Option("--env-file", help="env file for Compose interpolation")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document and nothing else")]
SinceOpt = Annotated[Optional[str], typer.Option("--since", help="changed services from `git diff REF`")]
RadiusOpt = Annotated[Optional[int], typer.Option("--radius", "-r", help="callers/callees distance (default 1)")]
SliceOpt = Annotated[Optional[str], typer.Option("--slice", help="slice name (default: the only one)")]


@app.callback()
def main_options(
    context: Annotated[Optional[str], typer.Option("--context", "-c", help="docker context to use")] = None,
    host: Annotated[Optional[str], typer.Option("--host", "-H", help="Docker endpoint (default: DOCKER_HOST)")] = None,
) -> None:
    Options.context, Options.host = context, host


def _driver() -> Driver:
    return Driver(context=Options.context, host=Options.host)


def _engine() -> SliceEngine:
    return SliceEngine(_driver())


def _emit(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _report(error: StackletError, as_json: bool) -> None:
    if as_json:
        _emit({"ok": False, **error.to_dict()})
    else:
        err_console.print(display.error_text(error))


def _fail(error: StackletError, as_json: bool) -> None:
    _report(error, as_json)
    raise typer.Exit(error.exit_code)


def _load(stack: str | None, files: list[Path] | None, env_files: list[Path] | None,
          services: list[str] | None = None) -> Stack:
    """Load the stack; with several stacks and none named, pick the one holding all ``services``."""
    if stack or files:
        return load_stack(stack, compose_files=files, env_files=env_files)
    names = list_stacks()
    if len(names) > 1 and services:
        holding = [s for s in (load_stack(n, env_files=env_files) for n in names)
                   if set(services) <= set(s.services)]
        if len(holding) == 1:
            return holding[0]
    if len(names) == 1:
        return load_stack(names[0], env_files=env_files)
    raise StackFileError("no stack given", hint=f"pass --stack NAME (stacks here: {', '.join(names) or 'none'}), "
                         "set STACKLET_STACK, or use -f compose.yaml")


def _changed(stack: Stack, services: list[str], since: str | None) -> list[str]:
    """The services named, plus those touched since a git ref."""
    changed = list(services)
    if since:
        changed += [s for s in changed_services(stack, since) if s not in changed]
    return changed


def _plan(stack: Stack, services: list[str], since: str | None, radius: int | None) -> SlicePlan:
    return make_plan(stack, _changed(stack, services, since), radius)


def _one_slice(engine: SliceEngine, name: str | None) -> str:
    if name:
        return name
    slices = engine.list()
    if len(slices) == 1:
        return slices[0].name
    raise PlanError("no slice given" if slices else "no slice is running",
                    hint=f"name one of: {', '.join(s.name for s in slices)}" if slices
                    else "`stacklet up SERVICE` starts one")


def _ttl(value: str | None, stack: Stack) -> int | None:
    """Seconds of ``--ttl``, else the stack's ``ttl:``; None means no expiry."""
    if value is None:
        return stack.meta.ttl
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--ttl", hint=f"got {short_repr(value)}") from exc


def _run(as_json: bool, action) -> None:
    """Run a command's action; stacklet's errors and any other exception become one clear error and exit code."""
    try:
        action()
    except StackletError as error:
        _fail(error, as_json)
    except (typer.Exit, typer.Abort, ClickException):
        raise
    except Exception as exc:
        if os.environ.get("STACKLET_DEBUG"):
            raise
        _fail(UnexpectedError.wrap(exc), as_json)


@app.command()
def plan(services: Annotated[Optional[list[str]], typer.Argument(help="changed services")] = None,
         since: SinceOpt = None, radius: RadiusOpt = None, stack: StackOpt = None, file: FileOpt = None,
         env_file: EnvFileOpt = None, as_json: JsonOpt = False) -> None:
    """Show the slice for a change: local services with roles, forwarded services, links."""
    def action() -> None:
        the_stack = _load(stack, file, env_file, services)
        the_plan = _plan(the_stack, services or [], since, radius)
        seeds = seed_plan(the_stack, [s.name for s in the_plan.local])
        if as_json:
            _emit({**the_plan.model_dump(mode="json"), "seeds": seeds})
        else:
            console.print(display.plan_table(the_plan, seeds))
    _run(as_json, action)


@app.command()
def why(service: Annotated[str, typer.Argument(help="the service to explain")],
        changed: Annotated[Optional[list[str]], typer.Option("--changed", help="changed service (repeatable)")] = None,
        since: SinceOpt = None, radius: RadiusOpt = None, stack: StackOpt = None, file: FileOpt = None,
        env_file: EnvFileOpt = None, as_json: JsonOpt = False) -> None:
    """Say why SERVICE is local, forwarded, or not in the slice of a change."""
    def action() -> None:
        the_stack = _load(stack, file, env_file, [service, *(changed or [])])
        graph = ServiceGraph.from_stack(the_stack)
        selection = select_slice(the_stack, _changed(the_stack, changed or [], since), radius, graph)
        text = graph.explain(service, selection)
        if as_json:
            state = ("local" if service in selection.local else "forwarded" if service in selection.forwarded
                     else "absent")
            _emit({"service": service, "state": state, "role": selection.local.get(service), "explanation": text})
        else:
            console.print(text)
    _run(as_json, action)


@app.command()
def graph(fmt: Annotated[str, typer.Option("--format", help="mermaid or dot")] = "mermaid",
          changed: Annotated[Optional[list[str]], typer.Option("--changed", help="mark a slice (repeatable)")] = None,
          stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None, as_json: JsonOpt = False) -> None:
    """Export the service graph as Mermaid or Graphviz dot."""
    def action() -> None:
        if fmt not in ("mermaid", "dot"):
            raise PlanError(f"unknown format {fmt!r}", hint="use --format mermaid or --format dot")
        the_stack = _load(stack, file, env_file, changed)
        the_graph = ServiceGraph.from_stack(the_stack)
        selection = select_slice(the_stack, changed, None, the_graph) if changed else None
        text = the_graph.to_mermaid(selection) if fmt == "mermaid" else the_graph.to_dot(selection)
        if as_json:
            _emit({"ok": True, "format": fmt, "graph": text})
        else:
            sys.stdout.write(text)
    _run(as_json, action)


@app.command()
def up(services: Annotated[Optional[list[str]], typer.Argument(help="changed services")] = None,
       since: SinceOpt = None, radius: RadiusOpt = None,
       name: Annotated[Optional[str], typer.Option("--name", "-n", help="slice name")] = None,
       keep_on_failure: Annotated[bool, typer.Option("--keep-on-failure", help="leave a failed slice running")] = False,
       no_seed: Annotated[bool, typer.Option("--no-seed", help="do not load seed data")] = False,
       fault: Annotated[Optional[str], typer.Option("--fault", help="fault profile to apply once healthy")] = None,
       fault_seed: Annotated[Optional[int], typer.Option("--fault-seed", help="repeatable fault randomness")] = None,
       timeout: Annotated[int, typer.Option("--timeout", min=1, max=MAX_TIMEOUT_S, help="seconds each service may take to be healthy")] = 180,
       ttl: Annotated[Optional[str], typer.Option("--ttl", help="expire after e.g. 30m, 2h, 1d; `never` (default: "
                                                                 "stack.yaml ttl:); `stacklet gc` removes it then")] = None,
       watch: Annotated[bool, typer.Option("--watch", "-w", help="then reload services whose files change, "
                                                                 "until Ctrl-C (the slice keeps running)")] = False,
       stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None, as_json: JsonOpt = False) -> None:
    """Boot the slice for a change and print its endpoints; on a running slice, update only what changed."""
    def action() -> None:
        the_stack = _load(stack, file, env_file, services)
        the_plan = _plan(the_stack, services or [], since, radius)
        slice_name = validate_slice_name(name or default_slice_name(the_plan))
        profile = load_fault_profile(find_fault_profile(fault)) if fault else None
        ttl_s = _ttl(ttl, the_stack)
        engine = _engine()
        engine.driver.engine_info()
        options = dict(keep_on_failure=keep_on_failure, seed=not no_seed, fault_profile=profile,
                       fault_seed=fault_seed, timeout_s=timeout, ttl_s=ttl_s)
        reconciling = engine.exists(slice_name)  # a running slice is updated; its age and expiry are kept

        def boot(**events):
            if reconciling:
                kept = {k: v for k, v in options.items() if k not in ("keep_on_failure", "ttl_s")}
                result = engine.reconcile(the_plan, the_stack, slice_name, **kept, **events)
                return result.status, result
            return engine.up(the_plan, the_stack, slice_name, **options, **events), None

        if as_json:
            status, result = boot()
            _emit({"ok": True, "plan": the_plan.model_dump(mode="json"), "slice": status.model_dump(mode="json"),
                   **({"reconcile": result.model_dump(mode="json", exclude={"status"})} if result else {})})
        else:
            console.print(display.plan_table(the_plan, seed_plan(the_stack, [s.name for s in the_plan.local])))
            console.print()
            with display.Progress(console) as progress:
                status, result = boot(on_event=progress)
            console.print()
            if result:
                console.print(display.changes_table(result))
                console.print()
            console.print(display.endpoints_table(status))
            console.print(f"\nslice [bold]{slice_name}[/] is up. `stacklet down {slice_name}` removes it.")
        if watch:
            _watch(engine, the_stack, slice_name, [s.name for s in the_plan.local], timeout, as_json)
    _run(as_json, action)


def _watch(engine: SliceEngine, stack: Stack, slice_name: str, services: list[str], timeout: int,
           as_json: bool) -> None:
    """Reload the slice's built services when their files change, one line per reload, until Ctrl-C."""
    from stacklet.runtime.watch import built_services, watch

    built = built_services(stack, services)
    if not built:
        raise PlanError(f"no service of slice {slice_name} has a build, so there is nothing to watch",
                        hint="--watch reloads services built from local files (Compose `build:`)")

    def say(text: str, data: dict) -> None:
        if as_json:
            sys.stdout.write(json.dumps(data) + "\n")
        else:
            console.print(text, highlight=False)
        sys.stdout.flush()

    def reloaded(result) -> None:
        say(result.summary(), {"ok": True, "reload": result.model_dump(mode="json")})

    def failed(service: str, error: StackletError) -> None:
        if as_json:
            say("", {"ok": False, "service": service, **error.to_dict()})
        else:
            err_console.print(display.error_text(error))
            console.print(f"reload of {service} failed; still watching", highlight=False)

    def ready(roots) -> None:
        say(f"watching {', '.join(built)} ({', '.join(map(str, roots))}); Ctrl-C stops watching",
            {"watching": built, "roots": [str(r) for r in roots]})

    try:
        watch(engine, slice_name, stack, built, on_reload=reloaded, on_error=failed, on_ready=ready,
              timeout_s=timeout, on_change=lambda targets: None if as_json else console.print(
                  f"[dim]changed: {', '.join(targets)}: reloading[/]"))
    except KeyboardInterrupt:
        say(f"stopped watching; slice {slice_name} is still running (`stacklet down {slice_name}` removes it)",
            {"stopped": True, "slice": slice_name, "running": True})


@app.command("reload")
def reload_service(service: Annotated[str, typer.Argument(help="the service to rebuild and restart")],
                   slice_name: SliceOpt = None,
                   timeout: Annotated[int, typer.Option("--timeout", min=1, max=MAX_TIMEOUT_S, help="seconds it may take to be healthy")] = 180,
                   as_json: JsonOpt = False) -> None:
    """Rebuild one service of a running slice and recreate only it; returns once it is healthy again.

    Link proxies are left alone, so the faults on them stay. Exit 2 when it does not become healthy.
    """
    def action() -> None:
        engine = _engine()
        result = engine.reload(_one_slice(engine, slice_name), service, timeout)
        if as_json:
            _emit({"ok": True, "reload": result.model_dump(mode="json")})
        else:
            console.print(result.summary(), highlight=False)
    _run(as_json, action)


@app.command()
def down(name: Annotated[Optional[str], typer.Argument(help="slice name")] = None,
         all_slices: Annotated[bool, typer.Option("--all", help="remove every slice on the engine")] = False,
         as_json: JsonOpt = False) -> None:
    """Remove a slice (or all): containers, network, volumes and the images it built."""
    def action() -> None:
        engine = _engine()
        names = [s.name for s in engine.list()] if all_slices else [_one_slice(engine, name)]
        for slice_name in names:
            engine.down(slice_name)
            if not as_json:
                console.print(f"removed slice {slice_name}")
        if as_json:
            _emit({"ok": True, "removed": names})
        elif not names:
            console.print("no slices to remove")
    _run(as_json, action)


@app.command("ls")
def list_slices(as_json: JsonOpt = False) -> None:
    """List the slices on the engine (found by their labels)."""
    def action() -> None:
        slices = _engine().list()
        if as_json:
            _emit(slices)
        elif slices:
            console.print(display.slices_table(slices))
        else:
            console.print("no slices (start one with `stacklet up SERVICE`)")
    _run(as_json, action)


@app.command()
def gc(names: Annotated[Optional[list[str]], typer.Argument(help="only these slices (default: every slice)")] = None,
       dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be removed, remove nothing")] = False,
       as_json: JsonOpt = False) -> None:
    """Remove expired slices (`up --ttl`) and orphaned ones (their boot never finished, or no containers left)."""
    def action() -> None:
        decisions = _engine().gc(dry_run=dry_run, only=names)
        removed = [{"slice": d.slice, "stack": d.stack, "reason": d.reason} for d in decisions if d.remove]
        kept = [{"slice": d.slice, "stack": d.stack, "reason": d.reason} for d in decisions if not d.remove]
        if as_json:
            _emit({"ok": True, "dry_run": dry_run, "removed": removed, "kept": kept})
        else:
            console.print(display.gc_table(decisions, dry_run))
    _run(as_json, action)


@app.command()
def status(name: Annotated[Optional[str], typer.Argument(help="slice name")] = None, as_json: JsonOpt = False) -> None:
    """Show the services of a slice: state, health, endpoints."""
    def action() -> None:
        engine = _engine()
        result = engine.status(_one_slice(engine, name))
        if as_json:
            _emit(result)
        else:
            console.print(display.status_table(result))
    _run(as_json, action)


@app.command()
def logs(service: Annotated[Optional[str], typer.Argument(help="one service (default: all)")] = None,
         slice_name: SliceOpt = None,
         follow: Annotated[bool, typer.Option("--follow", "-F", help="keep following")] = False,
         tail: Annotated[Optional[int], typer.Option("--tail", help="last N lines per service")] = None,
         as_json: JsonOpt = False) -> None:
    """Print the logs of a slice, or of one of its services."""
    def action() -> None:
        engine = _engine()
        width = 0
        for svc, line in engine.logs(_one_slice(engine, slice_name), service, follow=follow, tail=tail):
            if as_json:
                sys.stdout.write(json.dumps({"service": svc, "line": line}) + "\n")
            else:
                width = max(width, len(svc))
                console.print(f"[cyan]{svc:<{width}}[/] | ", end="")
                console.out(line, highlight=False)
            sys.stdout.flush()
    try:
        _run(as_json, action)
    except KeyboardInterrupt:
        raise typer.Exit(0)


@app.command()
def seed(service: Annotated[Optional[str], typer.Argument(help="one service (default: every seeded one)")] = None,
         slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """Load the seed files again (after editing them): the data becomes the new seeded state."""
    _seed_command(service, slice_name, as_json, reset=False)


@app.command()
def reset(service: Annotated[Optional[str], typer.Argument(help="one service (default: every seeded one)")] = None,
          slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """Put services back to their exact seeded state (fast: PostgreSQL template databases)."""
    _seed_command(service, slice_name, as_json, reset=True)


def _seed_command(service: str | None, slice_name: str | None, as_json: bool, *, reset: bool) -> None:
    def action() -> None:
        engine = _engine()
        results = engine.seed(_one_slice(engine, slice_name), service, reset=reset)
        if as_json:
            _emit({"ok": True, "results": [r.model_dump() for r in results]})
            return
        for result in results:
            console.print(f"{'reset' if reset else 'seeded'} {result.service}: {len(result.files)} files "
                          f"in {result.seconds:.2f}s")
        if not results:
            console.print("no service of this slice has seed files")
    _run(as_json, action)


@app.command()
def check(name: Annotated[Optional[str], typer.Argument(help="slice name (default: the only one)")] = None,
          run_all: Annotated[bool, typer.Option("--all", help="every check, not only those of the changed services")] = False,
          only: Annotated[Optional[list[str]], typer.Option("--only", help="run just this check (repeatable)")] = None,
          junit: Annotated[Optional[Path], typer.Option("--junit", help="also write JUnit XML to this file")] = None,
          history: Annotated[bool, typer.Option("--history", help="show the previous verdicts instead")] = False,
          schema: Annotated[bool, typer.Option("--schema", help="print the JSON schema of the verdict")] = False,
          as_json: JsonOpt = False) -> None:
    """Run the slice's checks and print one verdict (exit 0 passed, 1 failed, 2 slice not healthy, 3 usage)."""
    if schema:
        _emit(Verdict.model_json_schema())
        return
    outcome: dict[str, int] = {}

    def action() -> None:
        engine = _engine()
        slice_name = _one_slice(engine, name)
        if history:
            entries = read_history(engine.workdir, slice_name)
            if as_json:
                _emit({"ok": True, "slice": slice_name, "history": [e.model_dump(mode="json") for e in entries]})
            else:
                console.print(render_history(entries), markup=False, highlight=False)
            return
        quiet = as_json or not err_console.is_terminal
        progress = (lambda message: None) if quiet else (lambda message: err_console.print(f"[dim]{message}[/]"))
        verdict = run_slice_checks(engine, slice_name, run_all=run_all, names=only, on_progress=progress)
        if junit:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(to_junit(verdict))
        if as_json:
            _emit(verdict)
        else:
            console.print(render_verdict(verdict), markup=False, highlight=False, soft_wrap=True)
        outcome["exit"] = verdict.exit_code
    _run(as_json, action)
    raise typer.Exit(outcome.get("exit", 0))


@fault_app.command("apply")
def fault_apply(profile: Annotated[str, typer.Argument(help="profile name (faults/NAME.yaml) or file")],
                slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """Apply a fault profile to a running slice."""
    def action() -> None:
        the_profile = load_fault_profile(find_fault_profile(profile))
        engine = _engine()
        name = _one_slice(engine, slice_name)
        check_stack(the_profile, engine.status(name).stack)
        applied = apply_profile(engine.link_proxies(name), the_profile)
        _report_faults(applied, as_json, f"applied {the_profile.name}")
    _run(as_json, action)


@fault_app.command("add")
def fault_add(target: Annotated[str, typer.Argument(help="link target (service name), or @forwarded/@local/@all")],
              toxic: Annotated[str, typer.Argument(help="latency, bandwidth, slow_close, timeout, reset_peer, "
                                                        "slicer, limit_data, noop, or down")],
              settings: Annotated[Optional[list[str]], typer.Argument(help="key=value: attributes, stream, "
                                                                           "toxicity, name")] = None,
              slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """Add one fault to a link of a running slice, e.g. `fault add orders-db latency latency=200 jitter=50`."""
    def action() -> None:
        spec = parse_toxic_arguments(target, toxic, settings or [])
        engine = _engine()
        applied = add_fault(engine.link_proxies(_one_slice(engine, slice_name)), spec)
        _report_faults(applied, as_json, "added")
    _run(as_json, action)


@fault_app.command("clear")
def fault_clear(target: Annotated[Optional[str], typer.Argument(help="one target or group (default: all)")] = None,
                slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """Remove faults (toxics and disabled links) from one target or from all."""
    def action() -> None:
        engine = _engine()
        removed = clear_faults(engine.link_proxies(_one_slice(engine, slice_name)), target)
        _report_faults(removed, as_json, "cleared")
    _run(as_json, action)


@fault_app.command("ls")
def fault_ls(slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """List the link targets of a slice and the faults in force on each."""
    def action() -> None:
        engine = _engine()
        handles = engine.link_proxies(_one_slice(engine, slice_name))
        faults = active_faults(handles)
        if as_json:
            _emit({"targets": link_targets(handles), "faults": [f.model_dump() for f in faults]})
        else:
            console.print(display.faults_table(link_targets(handles), faults))
    _run(as_json, action)


def _report_faults(faults: list, as_json: bool, verb: str) -> None:
    if as_json:
        _emit({"ok": True, "faults": [f.model_dump() for f in faults]})
        return
    console.print(f"{verb}: {len(faults)} fault(s)")
    for fault in faults:
        what = fault.type if fault.type == "down" else f"{fault.type} {fault.stream} {fault.attributes}"
        console.print(f"  {fault.route:<24} {fault.name:<36} {what}")


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Check the prerequisites: engine, API version, Compose v2, images, free ports."""
    checks = run_checks(_driver())
    ok = all(c.ok for c in checks)
    if as_json:
        _emit({"ok": ok, "checks": [c.model_dump() for c in checks]})
    else:
        for check in checks:
            mark = "[green]ok  [/]" if check.ok else "[bold red]FAIL[/]"
            console.print(f"{mark} {check.name:<32} {check.detail}")
            if not check.ok and check.fix:
                console.print(f"     [cyan]fix:[/] {check.fix}")
    if not ok:
        raise typer.Exit(2)


@baseline_app.command("up")
def baseline_up(stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
                timeout: Annotated[int, typer.Option("--timeout", min=1, max=MAX_TIMEOUT_S, help="seconds to wait for healthy")] = 600,
                as_json: JsonOpt = False) -> None:
    """Start the whole stack as the shared baseline (kept if already running)."""
    def action() -> None:
        the_stack = _load(stack, file, env_file)
        engine = _engine()
        engine.driver.engine_info()
        if as_json:
            _emit({"ok": True, "baseline": engine.baseline_up(the_stack, timeout).model_dump(mode="json")})
            return
        with display.Progress(console) as progress:
            result = engine.baseline_up(the_stack, timeout, on_event=progress)
        console.print(display.status_table(result))
    _run(as_json, action)


@baseline_app.command("down")
def baseline_down(stack: StackOpt = None, file: FileOpt = None, as_json: JsonOpt = False) -> None:
    """Stop and remove the shared baseline of a stack (refused while slices use it)."""
    def action() -> None:
        the_stack = _load(stack, file, None)
        _engine().baseline_down(the_stack.name)
        _emit({"ok": True, "removed": the_stack.name}) if as_json else console.print(
            f"removed the baseline of {the_stack.name}")
    _run(as_json, action)


@baseline_app.command("status")
def baseline_status(stack: StackOpt = None, file: FileOpt = None, as_json: JsonOpt = False) -> None:
    """Show the services of the shared baseline."""
    def action() -> None:
        the_stack = _load(stack, file, None)
        result = _engine().baseline_status(the_stack.name)
        _emit(result) if as_json else console.print(display.status_table(result))
    _run(as_json, action)


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print stacklet's version."""
    if as_json:
        _emit({"ok": True, "version": __version__})
    else:
        console.print(f"stacklet {__version__}")


@app.command()
def tui(name: Annotated[Optional[str], typer.Argument(help="slice name (default: pick one)")] = None) -> None:
    """Watch and steer a slice in the terminal: services, logs, faults (Textual)."""
    from stacklet.tui import run_tui  # Textual is imported only when the TUI runs

    run_tui(_engine(), name)


@app.command()
def skill(stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
          out: Annotated[Optional[Path], typer.Option("--out", "-o", help="write to FILE instead of stdout")] = None,
          as_json: JsonOpt = False) -> None:
    """Write the agent skill document of a stack (Markdown): services, slices, checks, faults, seeds."""
    from stacklet.agents.skill import render_skill

    def action() -> None:
        the_stack = _load(stack, file, env_file)
        text = render_skill(the_stack)
        if out is None:
            _emit({"ok": True, "stack": the_stack.name, "skill": text}) if as_json else sys.stdout.write(text)
            return
        try:
            out.write_text(text)
        except OSError as exc:
            raise StackFileError(f"cannot write: {exc.strerror}", file=str(out),
                                 hint="check that the folder exists and is writable") from exc
        if as_json:
            _emit({"ok": True, "stack": the_stack.name, "written": str(out), "lines": len(text.splitlines())})
        else:
            err_console.print(f"wrote {out} ({len(text.splitlines())} lines)")
    _run(as_json, action)


@app.command()
def mcp(stack: StackOpt = None) -> None:
    """Serve stacklet's commands as Model Context Protocol tools over stdio (for coding agents)."""
    from stacklet.agents.mcp_server import serve  # the MCP SDK is imported only when the server runs

    serve(stack, Options.context, Options.host)


def run_cli(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return its exit code; nothing escapes as a traceback.

    Usage errors (an unknown option, ``--radius abc``) exit 3 like every usage error, and under ``--json``
    print one document ``{"ok": false, "error": "usage", ...}``, which Click alone would not.
    """
    options = argv[:argv.index("--")] if "--" in argv else argv
    as_json = "--json" in options
    try:
        code = app(args=argv, prog_name="stacklet", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        return 0
    except UsageError as exc:
        hint = f"see `{exc.ctx.command_path} --help`" if exc.ctx else "see `stacklet --help`"
        if as_json:
            _emit({"ok": False, "error": "usage", "message": short_text(exc.format_message()), "hint": hint})
        else:
            err_console.print(f"{short_text(exc.format_message())}\n  hint: {hint}", markup=False, highlight=False)
        return 3
    except ClickException as exc:
        exc.show()
        return 3
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except StackletError as error:
        _report(error, as_json)
        return error.exit_code
    except Exception as exc:
        if os.environ.get("STACKLET_DEBUG"):
            raise
        _report(UnexpectedError.wrap(exc), as_json)
        return 3
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("COMPOSE_STATUS_STDOUT", "0")
    sys.exit(run_cli(sys.argv[1:]))
