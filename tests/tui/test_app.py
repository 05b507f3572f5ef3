"""Pilot tests of the TUI on a fake engine with recorded status snapshots (no Docker)."""

from __future__ import annotations

import io

from rich.console import Console

from textual.widgets import DataTable, Input, OptionList

from stacklet.tui.screens import GraphScreen, graph_tree, HelpScreen, NoEngineScreen, PickSliceScreen, SliceScreen
from stacklet.tui.widgets import ForwardedTable, ServicesTable

from .conftest import SIZE, log_text, notifications, settle, sync
from .fakes import FakeEngine


def _rows(table: DataTable) -> list[list[str]]:
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def _select(pilot, service: str) -> None:
    table = pilot.app.screen.query_one(ServicesTable)
    table.focus()
    keys = [row.key.value for row in table.ordered_rows]
    table.move_cursor(row=keys.index(service))
    await pilot.pause()


@sync
async def test_the_services_table_shows_roles_health_endpoints_and_forwarded_services(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, SliceScreen)
        rows = {r[0]: r for r in _rows(app.screen.query_one(ServicesTable))}
        assert set(rows) == {"gateway", "inventory", "orders", "orders-db", "payments", "redis", "stacklet-link-1"}
        assert rows["orders"][1] == "changed"
        assert rows["stacklet-link-1"][1] == "linkproxy" and rows["stacklet-link-1"][-1] == "7 routes"
        assert rows["payments"][3].startswith("unhealthy curl: (7) Failed")
        assert rows["payments"][4] == "2"
        assert rows["gateway"][5] == "127.0.0.1:40001"
        forwarded = {r[0]: r for r in _rows(app.screen.query_one(ForwardedTable))}
        assert forwarded["catalog"][1:4] == ["catalog.baseline:8084", "stacklet-link-1", "no (baseline not running)"]
        assert set(forwarded) == {"catalog", "users"}
        header = str(app.screen.query_one("#header").render())
        assert "shop-orders" in header and "stack shop" in header and "age 3m 30s" in header
        assert "expires in 29m 30s" in header


@sync
async def test_logs_of_all_services_then_of_the_selected_one(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lines = log_text(app)
        assert len(lines) == 8 and lines[0].startswith("orders-db │ database system")
        await _select(pilot, "payments")
        await pilot.press("m")
        await pilot.pause()
        assert log_text(app) == ["payments │ 2025-05-01T11:59:59Z payments rid=r-101 POST /payments 200 9ms"]
        await _select(pilot, "orders")
        assert [l.split(" │ ")[0].strip() for l in log_text(app)] == ["orders"] * 3
        await pilot.press("m")
        await pilot.pause()
        assert len(log_text(app)) == 8


@sync
async def test_filter_with_slash_then_escape_clears_it(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert app.screen.query_one("#filter", Input).has_focus
        await pilot.press(*"error")
        await pilot.press("enter")
        await pilot.pause()
        assert log_text(app) == ["orders │ 2025-05-01T12:00:00Z orders rid=r-102 GET /orders/7 500 3ms "
                                 "ERROR db timeout"]
        assert not app.screen.query_one("#filter", Input).has_class("visible")
        await pilot.press("escape")
        await pilot.pause()
        assert len(log_text(app)) == 8


@sync
async def test_following_one_request_id_across_services(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        field = app.screen.query_one("#filter", Input)
        assert field.value == "r-102"  # the newest request id is offered
        field.value = ""
        await pilot.press(*"r-101", "enter")
        await pilot.pause()
        assert [l.split(" │ ")[0].strip() for l in log_text(app)] == ["gateway", "orders", "payments"]
        assert "request r-101" in str(app.screen.query_one("#log-title").render())
        await pilot.press("escape")
        await pilot.pause()
        assert len(log_text(app)) == 8


@sync
async def test_apply_a_profile_then_clear_all_faults(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        options = app.screen.query_one("#profiles", OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["payments-down",
                                                                                            "slow-db"]
        options.highlighted = 1
        await pilot.press("a")
        await settle(pilot)
        state = fake.controls["stacklet-link-1"].state["orders-db:5432"]
        assert list(state.toxics()) == ["slow-db.latency_downstream"] or len(state.toxics()) == 1
        assert any("applied slow-db: 1 fault(s)" in n for n in notifications(app))
        rows = {r[0]: r for r in _rows(app.screen.query_one(ServicesTable))}
        assert rows["orders-db"][-1] == "latency 250ms"
        assert "orders-db:5432" in str(app.screen.query_one("#active-faults").render())
        await pilot.press("c")
        await settle(pilot)
        assert state.toxics() == {}
        assert any("cleared 1 fault(s)" in n for n in notifications(app))
        assert {r[0]: r for r in _rows(app.screen.query_one(ServicesTable))}["orders-db"][-1] == "-"


@sync
async def test_quick_faults_on_the_selected_link_and_clearing_that_link(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _select(pilot, "payments")
        await pilot.press("d")
        await settle(pilot)
        assert fake.controls["stacklet-link-1"].state["payments:8082"].enabled is False
        await _select(pilot, "redis")
        await pilot.press("l")
        await settle(pilot)
        assert list(fake.controls["stacklet-link-1"].state["redis:6379"].toxics()) == ["tui.latency"]
        await pilot.press("x")
        await settle(pilot)
        assert fake.controls["stacklet-link-1"].state["redis:6379"].toxics() == {}
        assert fake.controls["stacklet-link-1"].state["payments:8082"].enabled is False


@sync
async def test_a_refused_fault_is_an_error_notification_with_its_hint(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _select(pilot, "redis")
        await pilot.press("l")
        await settle(pilot)
        await pilot.press("l")  # the same toxic twice is refused
        await settle(pilot)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "already has a toxic named 'tui.latency'" in errors[-1].message
        assert "`stacklet fault clear` first" in errors[-1].message


@sync
async def test_restart_and_reset_the_selected_service(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _select(pilot, "orders")
        await pilot.press("r")
        await settle(pilot)
        assert fake.restarted == [("shop-orders", "orders")]
        assert any("restarted orders" in n for n in notifications(app))
        await pilot.press("s")  # orders has no seed files: a clear error, no traceback
        await settle(pilot)
        error = [n for n in app._notifications if n.severity == "error"][-1]
        assert "orders has no seed files" in error.message and "seeds/shop/orders/" in error.message
        await _select(pilot, "orders-db")
        await pilot.press("s")
        await settle(pilot)
        assert fake.seeded == [("shop-orders", "orders-db", True)]
        assert any("reset orders-db: 2 files in 0.42s" in n for n in notifications(app))


@sync
async def test_without_a_slice_the_user_picks_one(fake, make_app):
    app = make_app(fake, None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, PickSliceScreen)
        table = app.screen.query_one(DataTable)
        assert [r[0] for r in _rows(table)] == ["shop-orders", "tiny-api", "tiny-web"]
        assert _rows(table)[1][3] == "3h 00m"
        assert [r[4] for r in _rows(table)] == ["in 29m 30s", "expired 3m 00s ago", "never"]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SliceScreen) and app.screen.slice_name == "shop-orders"
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, PickSliceScreen)


@sync
async def test_an_unknown_slice_goes_to_the_list_with_an_error(fake, make_app):
    app = make_app(fake, "nope")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, PickSliceScreen)
        assert any("no slice named 'nope'" in n for n in notifications(app))


@sync
async def test_no_engine_says_so_and_how_to_fix_it(make_app):
    app = make_app(FakeEngine(available=False))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, NoEngineScreen)
        text = str(app.screen.query_one("#no-engine").render())
        assert "no Docker engine answers" in text and "start Docker" in text
        app.engine.driver.available = True
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, SliceScreen)


@sync
async def test_graph_and_help_screens_open_and_close(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, GraphScreen)
        console = Console(width=120, file=io.StringIO(), color_system=None)
        console.print(graph_tree(app.screen.snapshot))
        text = console.file.getvalue()
        assert "★ orders" in text and "catalog → catalog.baseline:8084" in text
        assert "orders-db:5432 → orders-db.origin:5432" in text
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SliceScreen)


@sync
async def test_a_flood_of_log_lines_stays_bounded_and_the_screen_answers(make_app):
    lines = [(f"svc{i % 4}", f"line {i} rid=r{i}") for i in range(50_000)]
    app = make_app(FakeEngine(logs=lines))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.05)
        await pilot.press("m")  # a key pressed while the flood is drawn is handled
        await settle(pilot)
        screen = app.screen
        assert screen.follow_selected
        await pilot.press("m")
        await settle(pilot)
        assert not screen.follow_selected
        assert len(screen.buffer) == 5_000 and screen.buffer.total == 50_000
        shown = log_text(app)
        assert 0 < len(shown) <= 2_000 and shown[-1].endswith("line 49999 rid=r49999")


@sync
async def test_v_runs_the_checks_and_shows_the_verdict(fake, make_app, monkeypatch):
    from stacklet.tui import actions
    from stacklet.tui.screens import VerdictScreen
    from stacklet.checks.verdict import CheckResult, Failure, LogLine, Verdict

    ran = []

    def fake_run(engine, name):
        ran.append(name)
        return Verdict(ok=False, verdict="failed", exit_code=1, summary="1 of 2 checks passed", slice=name,
                       stack="shop", changed=["orders"], run_id="abc123", started="2026-11-21T10:00:00Z", seconds=1.5,
                       checks=[CheckResult(name="place-order", kind="http", outcome="failed", reason="step place"),
                               CheckResult(name="fraud-rejection", kind="http", outcome="passed")],
                       failures=[Failure(kind="check", service="orders", check="place-order", step="place",
                                         message="POST /orders answered 500", expected="status 201",
                                         actual="500 {\"error\": \"column total_cent does not exist\"}",
                                         logs=[LogLine(service="orders", line="rid=chk-1 POST /orders 500 ERROR x")])])

    monkeypatch.setattr(actions, "run_slice_checks", fake_run)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("v")
        for _ in range(50):
            await pilot.pause(0.05)
            if isinstance(app.screen, VerdictScreen):
                break
        assert ran == ["shop-orders"]
        assert isinstance(app.screen, VerdictScreen)
        shown = " ".join(str(w.content) for w in app.screen.query("Static, Label"))
        assert "FAILED" in shown and "place-order › place" in shown and "column total_cent" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SliceScreen)


@sync
async def test_the_tables_show_each_links_requests_per_second_errors_and_p99_live(fake, make_app, monkeypatch):
    app = make_app(fake)
    clock = iter([1000.0, 1002.0, 1004.0])
    monkeypatch.setattr("stacklet.ops.commands.time.time", lambda: next(clock))
    link = fake.controls["stacklet-link-1"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the first reading: counters, no rate yet
        rows = {r[0]: r for r in _rows(app.screen.query_one(ServicesTable))}
        assert rows["orders"][6:9] == ["…", "0", "-"]
        assert rows["gateway"][6:9] == ["-", "-", "-"]  # no link leads to gateway
        link.serve("orders:8081", [10.0] * 9 + [480.0])
        link.serve("orders:8081", [3.0, 5.0], status=502)
        link.serve("catalog:8084", [20.0] * 4)
        app.screen.refresh_status()
        await settle(pilot)
        rows = {r[0]: r for r in _rows(app.screen.query_one(ServicesTable))}
        assert rows["orders"][6:9] == ["6", "2", "480 ms"]  # 12 requests in 2 s, two 502s, p99 of the 12
        assert rows["stacklet-link-1"][6:9] == ["8", "2", "480 ms"]  # every route of the link proxy
        forwarded = {r[0]: r for r in _rows(app.screen.query_one(ForwardedTable))}
        assert forwarded["catalog"][4:7] == ["2", "0", "20 ms"] and forwarded["users"][4:7] == ["0", "0", "-"]
        app.screen.refresh_status()  # nothing new: the rates fall to zero, the p99 stays that of the latest
        await settle(pilot)
        rows = {r[0]: r for r in _rows(app.screen.query_one(ServicesTable))}
        assert rows["orders"][6:9] == ["0", "0", "480 ms"]
