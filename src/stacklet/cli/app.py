"""The stacklet command line (Typer): the only place where errors become exit codes.

Every command prints text for people, or with ``--json`` one JSON document and nothing else.
Exit codes: 0 success, 2 the engine or the slice failed, 3 usage or configuration error.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from rich.console import Console

try:  # Typer 0.2x carries its own copy of Click; older Typer uses Click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from stacklet.checks.verdict import Verdict, render_history, to_junit
from stacklet.checks.verdict import render_text as render_verdict
from stacklet.cli import display
from stacklet.config.stack import MAX_TIMEOUT_S
from stacklet.errors import ConfigError, PlanError, StackFileError, StackletError, UnexpectedError, short_text
from stacklet.ops import commands as ops
from stacklet.ops.results import Envelope, error_envelope
from stacklet.ops.session import Session, load
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S

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
    advertise: str | None = None


StackOpt = Annotated[Optional[str], typer.Option("--stack", "-s", envvar="STACKLET_STACK",
                                                 help="stack name under stacks/, folder, or stack.yaml path")]
FileOpt = Annotated[Optional[list[Path]], typer.Option("--file", "-f", help="a Compose file (no stack.yaml needed)")]
EnvFileOpt = Annotated[Optional[list[Path]], typer.Option("--env-file", help="env file for Compose interpolation")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document and nothing else")]
SinceOpt = Annotated[Optional[str], typer.Option("--since", help="changed services from `git diff REF`")]
RadiusOpt = Annotated[Optional[int], typer.Option("--radius", "-r", help="callers/callees distance (default 1)")]
SliceOpt = Annotated[Optional[str], typer.Option("--slice", help="slice name (default: the only one)")]
ProfileOpt = Annotated[Optional[list[str]], typer.Option("--profile", help="enable a Compose profile (repeatable; "
                                                                        "default: COMPOSE_PROFILES)")]
BaselineEngineOpt = Annotated[Optional[str], typer.Option(
    "--baseline-engine", help="forward to the advertised baseline on this engine: tcp://..., ssh://... or a "
                              "context (default: stack.yaml baseline.engine)")]


@app.callback()
def main_options(
    context: Annotated[Optional[str], typer.Option("--context", "-c", help="docker context to use")] = None,
    host: Annotated[Optional[str], typer.Option("--host", "-H", help="Docker endpoint (default: DOCKER_HOST)")] = None,
    advertise: Annotated[Optional[str], typer.Option("--advertise", help="publish slices on this address of the "
                                                     "engine's host, which this host reaches (default: as listed in "
                                                     "STACKLET_ENGINES or the engines file; else loopback)")] = None,
) -> None:
    Options.context, Options.host, Options.advertise = context, host, advertise


def _session() -> Session:
    return Session(context=Options.context, host=Options.host, advertise=Options.advertise)


def _emit(data: Any) -> None:
    """Print one JSON document: a result's envelope, or a plain dict (errors, schemas)."""
    if isinstance(data, Envelope):
        data = data.document()
    elif isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _emit_line(data: dict) -> None:
    """One JSON object on one line (streams: `logs --follow`, `up --watch`)."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _report(error: StackletError, as_json: bool) -> None:
    if as_json:
        _emit(error_envelope(error))
    else:
        err_console.print(display.error_text(error))


def _fail(error: StackletError, as_json: bool) -> None:
    _report(error, as_json)
    raise typer.Exit(error.exit_code)


def _run(as_json: bool, action) -> None:
    """Run a command's action; stacklet's errors and any other exception become one clear error and exit code."""
    try:
        action()
    except StackletError as error:
        _fail(error, as_json)
    except (typer.Exit, typer.Abort, ClickException, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("STACKLET_DEBUG"):
            raise
        _fail(UnexpectedError.wrap(exc), as_json)


@app.command()
def plan(services: Annotated[Optional[list[str]], typer.Argument(help="changed services")] = None,
         since: SinceOpt = None, radius: RadiusOpt = None, stack: StackOpt = None, file: FileOpt = None,
         env_file: EnvFileOpt = None, compose_profile: ProfileOpt = None, baseline_engine: BaselineEngineOpt = None,
         as_json: JsonOpt = False) -> None:
    """Show the slice for a change: local services with roles, forwarded services, links."""
    def action() -> None:
        result = ops.plan(_session(), services or [], since, radius, stack, file, env_file, compose_profile or [],
                          baseline_engine)
        _emit(result) if as_json else console.print(display.plan_table(result, result.seeds, result.snapshots))
    _run(as_json, action)


@app.command()
def why(service: Annotated[str, typer.Argument(help="the service to explain")],
        changed: Annotated[Optional[list[str]], typer.Option("--changed", help="changed service (repeatable)")] = None,
        since: SinceOpt = None, radius: RadiusOpt = None, stack: StackOpt = None, file: FileOpt = None,
        env_file: EnvFileOpt = None, compose_profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Say why SERVICE is local, forwarded, or not in the slice of a change, and what made each of its edges."""
    def action() -> None:
        result = ops.why(_session(), service, changed or [], since, radius, stack, file, env_file,
                         compose_profile or [])
        if as_json:
            _emit(result)
            return
        console.print(result.explanation, markup=False, highlight=False)
        for edge in result.edges:
            console.print("  " + edge.text, markup=False, highlight=False)
    _run(as_json, action)


@app.command()
def graph(fmt: Annotated[str, typer.Option("--format", help="mermaid or dot")] = "mermaid",
          changed: Annotated[Optional[list[str]], typer.Option("--changed", help="mark a slice (repeatable)")] = None,
          stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
          compose_profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Export the service graph as Mermaid or Graphviz dot."""
    def action() -> None:
        result = ops.graph(_session(), fmt, changed or [], stack, file, env_file, compose_profile or [])
        _emit(result) if as_json else sys.stdout.write(result.graph)
    _run(as_json, action)


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
        if watch and engine:
            raise ConfigError("--watch follows the engine given with --host/--context", key="--engine",
                              hint="use `stacklet --host ENGINE up --watch ...` instead of --engine")
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
        if watch:
            the_stack = load(session, stack, file, env_file, services, compose_profile)
            _watch(session, the_stack, result.slice.name, [s.name for s in result.plan.local], timeout, as_json)
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


@app.command()
def down(name: Annotated[Optional[str], typer.Argument(help="slice name")] = None,
         all_slices: Annotated[bool, typer.Option("--all", help="remove every slice on the engine")] = False,
         as_json: JsonOpt = False) -> None:
    """Remove a slice (or all): containers, network, volumes (its images stay for other slices)."""
    def action() -> None:
        said = (lambda removed: None) if as_json else (lambda removed: console.print(f"removed slice {removed}"))
        result = ops.down(_session(), name, all_slices, on_removed=said)
        if as_json:
            _emit(result)
        elif not result.removed:
            console.print("no slices to remove")
    _run(as_json, action)


@app.command("ls")
def list_slices(as_json: JsonOpt = False) -> None:
    """List the slices on the engine (found by their labels)."""
    def action() -> None:
        result = ops.ls(_session())
        if as_json:
            _emit(result)
        else:
            console.print(display.slices_table(result.slices, len(result.engines)) if result.slices else
                          "no slices (start one with `stacklet up SERVICE`)")
            for report in (e for e in result.engines if not e.ok):
                err_console.print(f"engine {report.engine} does not answer: {report.error}", highlight=False)
    _run(as_json, action)


@app.command()
def gc(names: Annotated[Optional[list[str]], typer.Argument(help="only these slices (default: every slice)")] = None,
       dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be removed, remove nothing")] = False,
       as_json: JsonOpt = False) -> None:
    """Remove expired slices (`up --ttl`) and orphaned ones (their boot never finished, or no containers left)."""
    def action() -> None:
        result = ops.gc(_session(), names or [], dry_run)
        if as_json:
            _emit(result)
        else:
            console.print(display.gc_table(result.decisions, dry_run))
            if result.snapshots:
                console.print(display.snapshot_gc_table(result.snapshots, dry_run))
    _run(as_json, action)


@app.command()
def status(name: Annotated[Optional[str], typer.Argument(help="slice name")] = None, as_json: JsonOpt = False) -> None:
    """Show the services of a slice: state, health, endpoints."""
    def action() -> None:
        result = ops.status(_session(), name)
        _emit(result) if as_json else console.print(display.status_table(result))
    _run(as_json, action)


@app.command()
def logs(service: Annotated[Optional[str], typer.Argument(help="one service (default: all)")] = None,
         slice_name: SliceOpt = None,
         follow: Annotated[bool, typer.Option("--follow", "-F", help="keep following")] = False,
         tail: Annotated[Optional[int], typer.Option("--tail", help="last N lines per service")] = None,
         as_json: JsonOpt = False) -> None:
    """Print the logs of a slice, or of one of its services (with --json: one document, or with --follow one
    JSON object per line)."""
    def action() -> None:
        session = _session()
        if as_json and not follow:
            _emit(ops.logs(session, service, slice_name, tail))
            return
        width = 0
        for svc, line in ops.follow_logs(session, service, slice_name, tail, follow):
            if as_json:
                _emit_line({"ok": True, "service": svc, "line": line})
                continue
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
    _seed_command(ops.seed, service, slice_name, as_json, "seeded")


@app.command()
def reset(service: Annotated[Optional[str], typer.Argument(help="one service (default: every seeded one)")] = None,
          slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """Put services back to their exact seeded state (fast: PostgreSQL template databases)."""
    _seed_command(ops.reset, service, slice_name, as_json, "reset")


def _seed_command(command, service: str | None, slice_name: str | None, as_json: bool, verb: str) -> None:
    def action() -> None:
        result = command(_session(), service, slice_name)
        if as_json:
            _emit(result)
            return
        for one in result.results:
            console.print(f"{verb} {one.service}: {len(one.files)} files in {one.seconds:.2f}s")
        if not result.results:
            console.print("no service of this slice has seed files")
    _run(as_json, action)


class ReferenceChoice(str, Enum):
    """What `check --reference` compares with."""

    previous = "previous"
    baseline = "baseline"


@app.command()
def check(name: Annotated[Optional[str], typer.Argument(help="slice name (default: the only one)")] = None,
          run_all: Annotated[bool, typer.Option("--all", help="every check, not only those of the changed services")] = False,
          only: Annotated[Optional[list[str]], typer.Option("--only", help="run just this check (repeatable)")] = None,
          junit: Annotated[Optional[Path], typer.Option("--junit", help="also write JUnit XML to this file")] = None,
          history: Annotated[bool, typer.Option("--history", help="show the previous verdicts instead")] = False,
          schema: Annotated[bool, typer.Option("--schema", help="print the JSON schema of the verdict")] = False,
          reference: Annotated[Optional[ReferenceChoice], typer.Option(
              "--reference", help="name regressions of p99, error rate and peak memory against the previous "
                                  "passing run, or the same checks run against the baseline first")] = None,
          as_json: JsonOpt = False) -> None:
    """Run the slice's checks and print one verdict (exit 0 passed, 1 failed, 2 slice not healthy, 3 usage)."""
    if schema:
        _emit(Verdict.model_json_schema())
        return
    outcome: dict[str, int] = {}

    def action() -> None:
        session = _session()
        if history:
            result = ops.check_history(session, name)
            _emit(result) if as_json else console.print(render_history(result.history), markup=False,
                                                        highlight=False)
            return
        quiet = as_json or not err_console.is_terminal
        progress = (lambda message: None) if quiet else (lambda message: err_console.print(f"[dim]{message}[/]"))
        verdict = ops.check(session, name, run_all, only or [], reference=reference.value if reference else None,
                            on_progress=progress)
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
        result = ops.fault_apply(_session(), profile, slice_name)
        _report_faults(result, as_json, f"applied {Path(profile).stem}")
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
        _report_faults(ops.fault_add(_session(), target, toxic, settings or [], slice_name), as_json, "added")
    _run(as_json, action)


@fault_app.command("clear")
def fault_clear(target: Annotated[Optional[str], typer.Argument(help="one target or group (default: all)")] = None,
                slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """Remove faults (toxics and disabled links) from one target or from all."""
    def action() -> None:
        _report_faults(ops.fault_clear(_session(), target, slice_name), as_json, "cleared")
    _run(as_json, action)


@fault_app.command("ls")
def fault_ls(slice_name: SliceOpt = None, as_json: JsonOpt = False) -> None:
    """List the link targets of a slice and the faults in force on each."""
    def action() -> None:
        result = ops.fault_ls(_session(), slice_name)
        _emit(result) if as_json else console.print(display.faults_table(result.targets, result.faults))
    _run(as_json, action)


def _report_faults(result, as_json: bool, verb: str) -> None:
    if as_json:
        _emit(result)
        return
    console.print(f"{verb}: {len(result.faults)} fault(s)")
    for fault in result.faults:
        what = fault.type if fault.type == "down" else f"{fault.type} {fault.stream} {fault.attributes}"
        console.print(f"  {fault.route:<24} {fault.name:<36} {what}")


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Check the prerequisites: engine, API version, Compose v2, images, free ports."""
    result = ops.doctor(_session())
    if as_json:
        _emit(result)
    else:
        for one in result.checks:
            mark = "[green]ok  [/]" if one.ok else "[bold red]FAIL[/]"
            console.print(f"{mark} {one.name:<32} {one.detail}")
            if not one.ok and one.fix:
                console.print(f"     [cyan]fix:[/] {one.fix}")
    if not result.ok:
        raise typer.Exit(2)


@baseline_app.command("up")
def baseline_up(stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
                timeout: Annotated[int, typer.Option("--timeout", min=1, max=MAX_TIMEOUT_S,
                                                     help="seconds to wait for healthy")] = 600,
                advertise: Annotated[Optional[str], typer.Option(
                    "--advertise", help="publish the services on this IP of the engine's host too, for slices on "
                                        "other engines (default: 127.0.0.1 only)")] = None,
                as_json: JsonOpt = False) -> None:
    """Start the whole stack as the shared baseline (kept if already running)."""
    def action() -> None:
        if as_json:
            _emit(ops.baseline_up(_session(), stack, file, env_file, timeout, advertise))
            return
        with display.Progress(console) as progress:
            result = ops.baseline_up(_session(), stack, file, env_file, timeout, advertise, on_event=progress)
        console.print(display.status_table(result.baseline))
    _run(as_json, action)


@baseline_app.command("down")
def baseline_down(stack: StackOpt = None, file: FileOpt = None,
                  keep_images: Annotated[bool, typer.Option("--keep-images", help="keep the images it built")] = False,
                  as_json: JsonOpt = False) -> None:
    """Stop and remove the shared baseline of a stack and the images it built (refused while slices use it)."""
    def action() -> None:
        result = ops.baseline_down(_session(), stack, file, keep_images)
        images = f" and {len(result.images)} image(s) it built" if result.images else ""
        _emit(result) if as_json else console.print(f"removed the baseline of {result.removed[0]}{images}")
    _run(as_json, action)


@baseline_app.command("status")
def baseline_status(stack: StackOpt = None, file: FileOpt = None, as_json: JsonOpt = False) -> None:
    """Show the services of the shared baseline."""
    def action() -> None:
        result = ops.baseline_status(_session(), stack, file)
        _emit(result) if as_json else console.print(display.status_table(result))
    _run(as_json, action)


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print stacklet's version."""
    result = ops.version(_session())
    _emit(result) if as_json else console.print(f"stacklet {result.version}")


@app.command()
def tui(name: Annotated[Optional[str], typer.Argument(help="slice name (default: pick one)")] = None) -> None:
    """Watch and steer a slice in the terminal: services, logs, faults (Textual)."""
    from stacklet.tui import run_tui  # Textual is imported only when the TUI runs

    run_tui(_session().engine, name)


@app.command()
def skill(stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
          out: Annotated[Optional[Path], typer.Option("--out", "-o", help="write to FILE instead of stdout")] = None,
          as_json: JsonOpt = False) -> None:
    """Write the agent skill document of a stack (Markdown): services, slices, checks, faults, seeds."""
    def action() -> None:
        result = ops.skill(_session(), stack, file, env_file)
        if out is None:
            _emit(result) if as_json else sys.stdout.write(result.skill)
            return
        try:
            out.write_text(result.skill)
        except OSError as exc:
            raise StackFileError(f"cannot write: {exc.strerror}", file=str(out),
                                 hint="check that the folder exists and is writable") from exc
        lines = len(result.skill.splitlines())
        if as_json:
            _emit({"ok": True, "stack": result.stack, "written": str(out), "lines": lines})
        else:
            err_console.print(f"wrote {out} ({lines} lines)")
    _run(as_json, action)


@app.command()
def mcp(stack: StackOpt = None) -> None:
    """Serve stacklet's commands as Model Context Protocol tools over stdio (for coding agents)."""
    from stacklet.agents.mcp_server import serve  # the MCP SDK is imported only when the server runs

    serve(stack, Options.context, Options.host, Options.advertise)


from stacklet.cli import traffic as _traffic_command  # noqa: E402,F401  (registers `stacklet traffic`)


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


from stacklet.cli import warm as _warm  # noqa: E402,F401  registers `stacklet warm`
