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

from stacklet.cli import display
from stacklet.errors import StackFileError, StackletError, UnexpectedError, short_text
from stacklet.ops import commands as ops
from stacklet.ops.results import Envelope, error_envelope
from stacklet.ops.session import Session

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Boot only the slice of a Docker Compose stack that a change touches.")

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


from stacklet.cli import up as _up  # noqa: E402,F401  registers `stacklet up` and `stacklet reload`


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
    """Remove expired slices (`up --ttl`) and orphaned ones (their boot never finished, or no containers left),
    stale seeded snapshots and stale images slices built."""
    def action() -> None:
        result = ops.gc(_session(), names or [], dry_run)
        if as_json:
            _emit(result)
        else:
            console.print(display.gc_table(result.decisions, dry_run))
            if result.snapshots:
                console.print(display.snapshot_gc_table(result.snapshots, dry_run))
            if result.images:
                console.print(display.build_gc_table(result.images, dry_run))
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


from stacklet.cli import seeds as _seeds  # noqa: E402,F401  registers `stacklet seed` and `stacklet reset`
from stacklet.cli import check as _check  # noqa: E402,F401  registers `stacklet check`
from stacklet.cli import baseline as _baseline  # noqa: E402,F401  registers `stacklet baseline ...`
from stacklet.cli import fault as _fault  # noqa: E402,F401  registers `stacklet fault ...` (after baseline)


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
