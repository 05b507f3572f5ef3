"""`stacklet seed` and `stacklet reset`: load the seed files again, or go back to the seeded state."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from stacklet.cli.app import JsonOpt, SliceOpt, _emit, _run, _session, app, console
from stacklet.ops import commands as ops


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
