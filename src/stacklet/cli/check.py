"""`stacklet check`: run a slice's checks and print one verdict (or its history, or its JSON schema)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from stacklet.checks.verdict import Verdict, render_history, to_junit
from stacklet.checks.verdict import render_text as render_verdict
from stacklet.cli.app import JsonOpt, _emit, _run, _session, app, console, err_console
from stacklet.ops import commands as ops


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
