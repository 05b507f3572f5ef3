"""`stacklet traffic`: every link's counters now, or rates between two readings (``--every``)."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer
from rich.table import Table

from stacklet.cli.app import JsonOpt, _emit, _run, _session, app, console
from stacklet.ops import commands as ops
from stacklet.ops.results import TrafficResult


def traffic_table(now: TrafficResult, before: TrafficResult | None = None) -> Table:
    """One row per link; with ``before``, requests per second and new 5xx between the two readings."""
    table = Table("link", "proxy", "upstream", "requests", "req/s", "5xx", "p99 ms", box=None)
    earlier = {link.link: link for link in before.links} if before else {}
    seconds = max(now.at - before.at, 0.001) if before else None
    for link in now.links:
        then = earlier.get(link.link)
        rate = f"{(link.requests - then.requests) / seconds:.1f}" if then and seconds else "-"
        errors = link.responses_5xx - then.responses_5xx if then else link.responses_5xx
        table.add_row(link.link, link.proxy, link.upstream, str(link.requests), rate, str(errors),
                      f"{link.p99_ms:g}" if link.p99_ms is not None else "-")
    return table


@app.command()
def traffic(slice: Annotated[Optional[str], typer.Argument(help="slice name (default: the only one)")] = None,
            every: Annotated[Optional[float], typer.Option("--every", min=0.1, max=60,
                                                          help="read twice, this many seconds apart, for rates")]
            = None, as_json: JsonOpt = False) -> None:
    """Every link's requests, 5xx and p99 as its link proxy counts them (with --every: per second)."""
    def action() -> None:
        session = _session()
        first = ops.traffic(session, slice)
        if every is None:
            _emit(first) if as_json else console.print(traffic_table(first))
            return
        time.sleep(every)
        second = ops.traffic(session, slice)
        _emit(second) if as_json else console.print(traffic_table(second, first))
    _run(as_json, action)
