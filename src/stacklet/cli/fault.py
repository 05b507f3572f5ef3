"""`stacklet fault ...`: faults on the links of a running slice (toxics)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from stacklet.cli import display
from stacklet.cli.app import JsonOpt, SliceOpt, _emit, _run, _session, app, console
from stacklet.ops import commands as ops

fault_app = typer.Typer(no_args_is_help=True, help="Faults on the links of a running slice (toxics).")
app.add_typer(fault_app, name="fault")


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
