"""The TUI against a real slice of the tiny stack: table, logs of a selected service, a fault."""

from __future__ import annotations

import asyncio
import time

from textual.widgets import OptionList, RichLog

from stacklet.planning.plan import make_plan
from stacklet.config.stack import load_stack
from stacklet.tui.app import StackletApp
from stacklet.tui.screens import SliceScreen
from stacklet.tui.widgets import ServicesTable

from .conftest import NOTHING, REPO, host_endpoint, http, leftovers

TINY = REPO / "tests" / "docker" / "stacks" / "tiny"


async def _until(pilot, condition, timeout_s: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _log_lines(app) -> list[str]:
    return ["".join(s.text for s in strip) for strip in app.screen.query_one(RichLog).lines]


def test_tui_on_a_running_tiny_slice(engine, driver, tmp_path):
    stack = load_stack(TINY)
    (tmp_path / "faults").mkdir()
    (tmp_path / "faults" / "slow-store.yaml").write_text(
        "name: slow-store\ndescription: store answers slowly.\nstack: tiny\n"
        "toxics:\n  - target: store\n    type: latency\n    attributes: {latency: 300}\n")
    status = engine.up(make_plan(stack, ["api"]), stack, "t-tui")
    try:
        web = host_endpoint(status, "web")
        for _ in range(3):
            assert http("GET", f"http://{web}/")[0] == 200

        async def drive() -> None:
            app = StackletApp(engine, "t-tui", faults_start=tmp_path, refresh_s=1.0)
            async with app.run_test(size=(160, 45)) as pilot:
                await _until(pilot, lambda: isinstance(app.screen, SliceScreen) and app.screen.snapshot, what="status")
                screen = app.screen
                table = screen.query_one(ServicesTable)
                rows = {table.get_row_at(i)[0].plain: table.get_row_at(i) for i in range(table.row_count)}
                assert {"api", "web", "store"} <= set(rows)
                proxies = [name for name, row in rows.items() if row[1].plain == "linkproxy"]
                assert len(proxies) == 1
                assert rows["api"][1].plain == "changed" and rows["api"][2].plain == "running"
                # select web and show only its logs: the requests made above are there
                keys = [row.key.value for row in table.ordered_rows]
                table.focus()
                table.move_cursor(row=keys.index("web"))
                await pilot.press("m")
                await _until(pilot, lambda: any("web GET /" in line for line in _log_lines(app)), what="web logs")
                assert all(line.startswith("web ") for line in _log_lines(app))
                # apply the store profile from the fault panel, then clear everything
                options = screen.query_one("#profiles", OptionList)
                assert options.get_option_at_index(0).id == "slow-store"
                await pilot.press("a")
                await _until(pilot, lambda: any(f.target == "store" for f in screen.snapshot.faults), what="fault")
                assert "latency 300ms" in {table.get_row_at(i)[0].plain: table.get_row_at(i)
                                           for i in range(table.row_count)}["store"][-1].plain
                await pilot.press("c")
                await _until(pilot, lambda: not screen.snapshot.faults, what="faults cleared")
                errors = [n.message for n in app._notifications if n.severity == "error"]
                assert errors == []

        asyncio.run(drive())
        from stacklet.runtime.faults import active_faults
        assert active_faults(engine.link_proxies("t-tui")) == []
    finally:
        engine.down("t-tui")
    assert leftovers(driver, "t-tui") == NOTHING
