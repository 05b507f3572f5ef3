"""`stacklet baseline ...`: the shared local baseline, a full copy of a stack."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from stacklet.cli import display
from stacklet.cli.app import EnvFileOpt, FileOpt, JsonOpt, StackOpt, _emit, _run, _session, app, console
from stacklet.config.stack import MAX_TIMEOUT_S
from stacklet.ops import commands as ops

baseline_app = typer.Typer(no_args_is_help=True, help="The shared local baseline: a full copy of a stack.")
app.add_typer(baseline_app, name="baseline")


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
