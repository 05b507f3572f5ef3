"""``stacklet warm``: keep slices of a change booted and paused, so that ``up`` takes one in about the time
of a reload (registered on the app by ``cli.app``)."""

from __future__ import annotations

import signal
from typing import Annotated, Optional

import typer

from stacklet.cli import display
from stacklet.cli.app import (EnvFileOpt, FileOpt, JsonOpt, ProfileOpt, RadiusOpt, StackOpt, _emit, _run, _session,
                              app, console)
from stacklet.config.stack import MAX_TIMEOUT_S
from stacklet.ops import warm as warm_ops
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S


@app.command("warm")
def warm(services: Annotated[Optional[list[str]], typer.Argument(help="changed services")] = None,
         count: Annotated[int, typer.Option("--count", min=0, max=8, help="slices to keep booted and paused; "
                                                                          "0 removes the pool")] = 1,
         clear: Annotated[bool, typer.Option("--clear", help="remove the pool (as --count 0)")] = False,
         radius: RadiusOpt = None,
         name: Annotated[Optional[str], typer.Option("--name", "-n", help="name prefix of the warm slices")] = None,
         no_seed: Annotated[bool, typer.Option("--no-seed", help="warm slices without seed data")] = False,
         fault: Annotated[Optional[str], typer.Option("--fault", help="fault profile applied to them")] = None,
         fault_seed: Annotated[Optional[int], typer.Option("--fault-seed", help="repeatable fault randomness")] = None,
         ttl: Annotated[str, typer.Option("--ttl", help="how long a warm slice waits, e.g. 30m, 2h")]
         = warm_ops.DEFAULT_WARM_TTL,
         timeout: Annotated[int, typer.Option("--timeout", min=1, max=MAX_TIMEOUT_S,
                                              help="seconds each service may take to be healthy")] = DEFAULT_TIMEOUT_S,
         background: Annotated[bool, typer.Option("--background", help="fill the pool in a detached process")] = False,
         stack: StackOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
         compose_profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Keep N slices of a change booted and paused; `up` with the same services and settings takes one."""
    signal.signal(signal.SIGTERM, _interrupt)  # a stopped refill removes the slice it was booting

    def action() -> None:
        arguments = dict(services=services or [], count=0 if clear else count, radius=radius, name=name,
                         no_seed=no_seed, fault=fault, fault_seed=fault_seed, ttl=ttl, timeout=timeout,
                         background=background, stack=stack, files=file, env_files=env_file,
                         profiles=compose_profile or [])
        if as_json:
            _emit(warm_ops.warm(_session(), **arguments))
            return
        with display.Progress(console) as progress:
            result = warm_ops.warm(_session(), **arguments, on_event=progress)
        if result.removed:
            console.print(f"removed {len(result.removed)} warm slice(s): {', '.join(result.removed)}")
        elif result.background:
            console.print(f"filling the pool in the background (log: {result.background})")
        else:
            console.print(display.slices_table(result.pool) if result.pool else "the pool is empty")
            console.print(f"\n{len(result.pool)} of {result.count} warm slice(s) for this change "
                          f"(booted now: {len(result.booted)}); `stacklet up` takes one when its settings match")
    _run(as_json, action)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
