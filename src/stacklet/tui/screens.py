"""Screens: the slice (tables, logs, faults), pick-a-slice, graph, help, no engine.

Every read of engine state and every action runs in a thread worker; results come back to the UI
thread as typed messages (``tui/messages.py``) handled by ``@on`` methods.
Log lines go into a bounded ``LogBuffer`` from a daemon thread
and are drawn in batches every 100 ms, so a service logging thousands of lines per second never
blocks the screen.
"""

from __future__ import annotations

import threading
from datetime import datetime

from rich.table import Table
from rich.text import Text
from rich.tree import Tree
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, OptionList, Static
from textual.worker import get_current_worker

from stacklet.labels import parse_utc
from stacklet.planning.lifetime import span
from stacklet.runtime.engine import SliceSummary
from stacklet.errors import SliceNotFound, StackletError
from stacklet.tui import actions
from stacklet.tui.actions import BaselineProbe, SliceSnapshot
from stacklet.tui.logbuffer import LogBuffer, LogView
from stacklet.tui.messages import (ActionDone, ActionFailed, ChecksDone, SlicesFailed, SlicesLoaded, SnapshotFailed,
                                   SnapshotLoaded)
from stacklet.checks.verdict import Verdict
from stacklet.checks.verdict import render_text as render_verdict
from stacklet.tui.widgets import ROLE_STYLE, FaultPanel, ForwardedTable, LogPane, ServicesTable

FLUSH_S = 0.1
LOG_TAIL = 200


def age_text(created: str | None, now: datetime) -> str:
    """How long ago the slice was created: '45s', '3m 30s', '2h 05m'."""
    moment = parse_utc(created)
    return "?" if moment is None else span((now - moment).total_seconds(), precise=True)


def expires_text(expires: str | None, now: datetime) -> Text:
    """Time to expiry ('in 29m 30s'), 'expired 3m ago' in red, or 'never' (dim)."""
    moment = parse_utc(expires)
    if moment is None:
        return Text("never", "dim")
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return Text(f"expired {span(seconds, precise=True)} ago", "bold red")
    return Text(f"in {span(seconds, precise=True)}", "yellow" if seconds < 600 else "")


def error_text(error: StackletError) -> str:
    """An error as a notification: its message, and its hint below."""
    return error.message + (f"\n{error.hint}" if error.hint else "")


class SliceScreen(Screen):
    """One slice: services and forwarded tables, fault panel, log pane."""

    BINDINGS = [
        Binding("r", "restart", "restart"),
        Binding("s", "reset_seed", "reset seed"),
        Binding("a", "apply_profile", "apply fault"),
        Binding("l", "quick_fault('latency')", "+latency", show=False),
        Binding("d", "quick_fault('down')", "link down", show=False),
        Binding("x", "clear_faults(True)", "clear link", show=False),
        Binding("c", "clear_faults(False)", "clear faults"),
        Binding("m", "log_mode", "log mode"),
        Binding("slash", "filter('text')", "filter"),
        Binding("i", "filter('rid')", "rid"),
        Binding("escape", "clear_view", "clear filter", show=False),
        Binding("v", "run_checks", "run checks"),
        Binding("g", "graph", "graph"),
        Binding("p", "pick", "slices"),
        Binding("question_mark", "app.help", "help"),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self, slice_name: str):
        super().__init__()
        self.slice_name = slice_name
        self.snapshot: SliceSnapshot | None = None
        self.buffer = LogBuffer()
        self.view = LogView()
        self.follow_selected = False
        self.selected: str | None = None
        self.probe = BaselineProbe()
        self.meter = actions.TrafficMeter()
        self.profiles: list = []
        self._refreshing = False
        self._input_mode = "text"

    def compose(self) -> ComposeResult:
        yield Static(Text(f" stacklet  slice {self.slice_name}  (loading…)"), id="header")
        with Horizontal(id="top"):
            with Vertical(id="tables"):
                yield ServicesTable(id="services")
                yield ForwardedTable(id="forwarded")
            yield FaultPanel(id="faults")
        yield LogPane(id="logs")
        yield Input(id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#logs", LogPane).set_title(self.view, 0, 0)
        self.refresh_status()
        self.follow_logs()
        self.set_interval(FLUSH_S, self.flush_logs)
        if self.app.refresh_s:
            self.set_interval(self.app.refresh_s, self.refresh_status)
        self.query_one(ServicesTable).focus()

    # -- reading state (workers) ----------------------------------------------------------------

    def refresh_status(self) -> None:
        if not self._refreshing:
            self._refreshing = True
            self._load_snapshot()

    @work(thread=True, group="refresh")
    def _load_snapshot(self) -> None:
        try:
            snapshot = actions.load_snapshot(self.app.engine, self.slice_name, self.probe, self.meter)
            profiles = self.profiles or actions.fault_profiles(snapshot.status.stack, self.app.faults_start)
        except StackletError as error:
            self.post_message(SnapshotFailed(error))
            return
        finally:
            self._refreshing = False
        self.post_message(SnapshotLoaded(snapshot, profiles))

    @on(SnapshotLoaded)
    def _snapshot_loaded(self, message: SnapshotLoaded) -> None:
        self.apply_snapshot(message.snapshot, message.profiles)

    @on(SnapshotFailed)
    def _load_failed(self, message: SnapshotFailed) -> None:
        error = message.error
        if isinstance(error, SliceNotFound) and self.snapshot is None:
            self.app.notify(error_text(error), title="no such slice", severity="error")
            self.app.open_picker()
            return
        self.query_one("#header", Static).update(Text(f" stacklet  slice {self.slice_name}  {error.message}",
                                                      "bold red"))

    def apply_snapshot(self, snapshot: SliceSnapshot, profiles: list) -> None:
        first = self.snapshot is None
        self.snapshot = snapshot
        self.query_one(ServicesTable).update_from(snapshot)
        forwarded = self.query_one(ForwardedTable)
        forwarded.update_from(snapshot)
        forwarded.display = bool(snapshot.forwarded)
        panel = self.query_one(FaultPanel)
        if first or profiles is not self.profiles:
            self.profiles = profiles
            panel.set_profiles(profiles)
        panel.set_faults(snapshot.faults, snapshot.fault_error)
        self.update_header()
        if first:  # the service column gets the width of every service name
            self.render_logs()

    def update_header(self) -> None:
        if not self.snapshot:
            return
        status = self.snapshot.status
        text = Text.assemble(" stacklet  ", ("slice ", "dim"), (status.name, "bold"), ("  stack ", "dim"),
                             status.stack, ("  changed ", "dim"), ", ".join(status.changed) or "-",
                             ("  age ", "dim"), age_text(status.created, self.app.clock()), ("  expires ", "dim"),
                             expires_text(status.expires, self.app.clock()), "  ",
                             ("healthy", "bold green") if status.healthy else ("not healthy", "bold red"))
        self.query_one("#header", Static).update(text)

    @work(thread=True, group="logs")
    def follow_logs(self, service: str | None = None, tail: int = LOG_TAIL) -> None:
        """Follow the logs of the slice (or, after a restart, of one service whose stream ended)."""
        worker = get_current_worker()
        engine, name, buffer = self.app.engine, self.slice_name, self.buffer

        def pump() -> None:
            try:
                for service_name, line in engine.logs(name, service, follow=True, tail=tail):
                    buffer.append(service_name, line)
                    if worker.is_cancelled:
                        return
            except StackletError as error:
                buffer.append("stacklet", f"log stream failed: {error.message}")

        # the docker log stream blocks until a line comes: keep it on a daemon thread so that
        # quitting never waits for it
        thread = threading.Thread(target=pump, name="stacklet-tui-logs", daemon=True)
        thread.start()
        while thread.is_alive() and not worker.is_cancelled:
            thread.join(0.2)

    def flush_logs(self) -> None:
        new = self.buffer.drain()
        if new:
            self.query_one(LogPane).show([line for line in new if self.view.matches(line)], width=self._width())
            self._log_title()

    def _width(self) -> int:
        status = self.snapshot.status if self.snapshot else None
        names = [s.name for s in [*status.services, *status.proxies]] if status else []
        return max((len(n) for n in [*names, *self.buffer.service_names()]), default=0)

    def _log_title(self) -> None:
        self.query_one(LogPane).set_title(self.view, len(self.buffer), self.buffer.total)

    def render_logs(self) -> None:
        self.buffer.drain()
        pane = self.query_one(LogPane)
        pane.show(self.buffer.view(self.view, limit=2_000), width=self._width(), replace=True)
        self._log_title()

    # -- selection and log views ------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#services")
    def _service_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.selected = event.row_key.value
        if self.follow_selected and self.view.service != self.selected:
            self.view = LogView(self.selected, self.view.text, self.view.rid)
            self.render_logs()

    def action_log_mode(self) -> None:
        self.follow_selected = not self.follow_selected
        service = self.selected if self.follow_selected else None
        self.view = LogView(service, self.view.text, self.view.rid)
        self.render_logs()
        self.app.notify(f"logs: {self.view.describe()}", timeout=2)

    def action_filter(self, mode: str) -> None:
        field = self.query_one("#filter", Input)
        self._input_mode = mode
        if mode == "rid":
            field.placeholder = "request id to follow across services (enter: follow, esc: stop)"
            field.value = self.view.rid or self.buffer.latest_request_id(self.view) or ""
        else:
            field.placeholder = "filter log lines (enter: keep, esc: clear)"
            field.value = self.view.text
        field.add_class("visible")
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._input_mode == "text" and event.value != self.view.text:
            self.view = LogView(self.view.service, event.value, self.view.rid)
            self.render_logs()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if self._input_mode == "rid":
            self.view = LogView(self.view.service, self.view.text, event.value.strip() or None)
            self.render_logs()
        event.input.remove_class("visible")
        self.query_one(ServicesTable).focus()

    def action_clear_view(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_class("visible"):
            field.remove_class("visible")
            self.view = LogView(self.view.service, "" if self._input_mode == "text" else self.view.text,
                                None if self._input_mode == "rid" else self.view.rid)
        else:
            self.view = LogView(self.view.service)
        self.render_logs()
        self.query_one(ServicesTable).focus()

    # -- actions (workers) ----------------------------------------------------------------------

    def _selected_or_warn(self) -> str | None:
        if not self.selected:
            self.app.notify("select a service first", severity="warning")
        return self.selected

    def action_restart(self) -> None:
        if service := self._selected_or_warn():
            # a restart ends the container's log stream: follow the new one once it is back
            self.run_action(f"restart {service}", actions.restart_service, service,
                            then=lambda: self.follow_logs(service, 0))

    def action_reset_seed(self) -> None:
        if service := self._selected_or_warn():
            self.run_action(f"reset {service}", actions.reset_seed, service)

    def action_apply_profile(self) -> None:
        name = self.query_one(FaultPanel).highlighted_profile
        profile = next((p for p in self.profiles if p.name == name), None)
        if profile is None or self.snapshot is None:
            self.app.notify("no fault profile to apply (faults/ has none for this stack)", severity="warning")
            return
        self.run_action(f"apply {profile.name}", actions.apply_fault_profile, profile, self.snapshot.status.stack)

    @on(OptionList.OptionSelected, "#profiles")
    def _profile_selected(self) -> None:
        self.action_apply_profile()

    def action_quick_fault(self, kind: str) -> None:
        if service := self._selected_or_warn():
            self.run_action(f"{kind} on {service}", actions.add_quick_fault, service, kind)

    def action_clear_faults(self, selected_only: bool) -> None:
        target = self._selected_or_warn() if selected_only else None
        if selected_only and not target:
            return
        self.run_action("clear faults", actions.clear_all_faults, target)

    def run_action(self, title: str, function, *args, then=None) -> None:
        self.app.notify(f"{title}…", timeout=2)
        self._run_action(title, function, args, then)

    @work(thread=True, group="actions")
    def _run_action(self, title: str, function, args: tuple, then=None) -> None:
        try:
            text = function(self.app.engine, self.slice_name, *args)
        except StackletError as error:
            self.post_message(ActionFailed(title, error_text(error)))
        except Exception as error:  # noqa: BLE001 - an unexpected failure is shown, not a traceback
            self.post_message(ActionFailed(title, f"{type(error).__name__}: {error}"))
        else:
            self.post_message(ActionDone(title, text, then))

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self.app.notify(message.text, title=message.title)
        if message.then:
            message.then()
        self.refresh_status()

    @on(ActionFailed)
    def _action_failed(self, message: ActionFailed) -> None:
        self.app.notify(message.text, title=f"{message.title} failed", severity="error", timeout=10)
        self.refresh_status()

    def action_run_checks(self) -> None:
        self.app.notify("running the checks…", timeout=3)
        self._run_checks()

    @work(thread=True, exclusive=True, group="checks")
    def _run_checks(self) -> None:
        try:
            verdict = actions.run_slice_checks(self.app.engine, self.slice_name)
        except StackletError as error:
            self.post_message(ActionFailed("checks", error_text(error)))
            return
        self.post_message(ChecksDone(verdict))

    @on(ChecksDone)
    def _checks_done(self, message: ChecksDone) -> None:
        self.app.push_screen(VerdictScreen(message.verdict))
        self.refresh_status()

    def action_graph(self) -> None:
        if self.snapshot:
            self.app.push_screen(GraphScreen(self.snapshot))

    def action_pick(self) -> None:
        self.app.open_picker()


class PickSliceScreen(Screen):
    """The slices on the engine; enter opens one."""

    BINDINGS = [Binding("enter", "open", "open", show=True), Binding("question_mark", "app.help", "help"),
                Binding("q", "app.quit", "quit")]

    def compose(self) -> ComposeResult:
        yield Static(Text(" stacklet  pick a slice", "bold"), id="header")
        yield Label("looking for slices…", id="pick-message")
        yield DataTable(id="slices", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("slice", "stack", "changed", "age", "expires", "containers", "health")
        self.load()
        if self.app.refresh_s:
            self.set_interval(self.app.refresh_s, self.load)

    @work(thread=True, exclusive=True, group="slices")
    def load(self) -> None:
        try:
            slices = actions.list_slices(self.app.engine)
        except StackletError as error:
            self.post_message(SlicesFailed(error_text(error)))
            return
        self.post_message(SlicesLoaded(slices))

    @on(SlicesFailed)
    def _slices_failed(self, message: SlicesFailed) -> None:
        self.query_one("#pick-message", Label).update(Text(message.text, "bold red"))

    @on(SlicesLoaded)
    def _slices_loaded(self, message: SlicesLoaded) -> None:
        self.show(message.slices)

    def show(self, slices: list[SliceSummary]) -> None:
        table = self.query_one(DataTable)
        selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        table.clear()
        for s in slices:
            table.add_row(Text(s.name, "bold"), s.stack, ", ".join(s.changed), age_text(s.created, self.app.clock()),
                          expires_text(s.expires, self.app.clock()), f"{s.running}/{s.containers} running",
                          Text(f"warm ({s.warm})", "cyan") if s.warm else
                          Text("healthy", "green") if s.healthy else Text("not healthy", "bold red"), key=s.name)
        names = [s.name for s in slices]
        if selected in names:
            table.move_cursor(row=names.index(selected), animate=False)
        self.query_one("#pick-message", Label).update(
            f"{len(slices)} slice(s) on this engine: pick one and press enter" if slices else
            Text("no slices on this engine: `stacklet up SERVICE` starts one (this list refreshes)", "yellow"))
        table.focus()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_slice(event.row_key.value)

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            self.app.open_slice(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def graph_tree(snapshot: SliceSnapshot) -> Tree:
    """The slice as a tree: local services (changed marked), forwarded services, link proxies and routes."""
    status = snapshot.status
    tree = Tree(Text.assemble(("slice ", "dim"), (status.name, "bold"), ("  stack ", "dim"), status.stack,
                              ("  changed ", "dim"), (", ".join(status.changed) or "-", "bold yellow")))
    local = tree.add(Text("local", "bold"))
    for svc in status.services:
        label = Text.assemble(("★ " if svc.name in status.changed else "  ", "bold yellow"), (svc.name, "bold"),
                              "  ", (svc.role, ROLE_STYLE.get(svc.role, "")))
        if svc.name in snapshot.targets:
            label.append("  (behind a link proxy)", "dim")
        local.add(label)
    forwarded = tree.add(Text("forwarded (baseline)", "bold"))
    if not snapshot.forwarded:
        forwarded.add(Text("none", "dim"))
    for route in snapshot.forwarded:
        answer = snapshot.answers.get(route.upstream, "?")
        forwarded.add(Text.assemble((route.target, "bold"), " → ", route.upstream,
                                    (f"  answers: {answer}", "green" if answer == "yes" else "dim")))
    proxies = tree.add(Text("link proxies", "bold"))
    for proxy in status.proxies:
        node = proxies.add(Text(proxy.name, "bold"))
        for route in [r for r in snapshot.routes if r.link_proxy == proxy.name]:
            kind = snapshot.targets.get(route.target, "?")
            faults = snapshot.faults_on(route.target)
            label = Text.assemble(route.route, " → ", route.upstream, (f"  ({kind})", "dim"))
            if faults:
                label.append("  ⚡ " + ", ".join(f.type for f in faults), "bold red")
            node.add(label)
    return tree


class GraphScreen(Screen):
    BINDINGS = [Binding("escape,g,q", "app.pop_screen", "back")]

    def __init__(self, snapshot: SliceSnapshot):
        super().__init__()
        self.snapshot = snapshot

    def compose(self) -> ComposeResult:
        yield Static(Text(f" stacklet  graph of slice {self.snapshot.status.name}", "bold"), id="header")
        with VerticalScroll():
            yield Static(graph_tree(self.snapshot), id="graph")
        yield Footer()


VERDICT_STYLE = {"passed": "bold green", "failed": "bold red", "unhealthy": "bold yellow"}


class VerdictScreen(ModalScreen):
    """The verdict of a check run, as `stacklet check` prints it."""

    BINDINGS = [Binding("escape,v,q", "app.pop_screen", "close")]

    def __init__(self, verdict: Verdict):
        super().__init__()
        self.verdict = verdict

    def compose(self) -> ComposeResult:
        head, _, rest = render_verdict(self.verdict).partition("\n")
        with VerticalScroll(id="verdict"):
            yield Label(Text(head, VERDICT_STYLE[self.verdict.verdict]))
            yield Static(Text(rest.strip("\n")))
            yield Label(Text("esc closes · `stacklet check --json` has every detail", "dim"))


HELP = [
    ("↑/↓", "select a service (the log pane follows it in 'selected' mode)"),
    ("r", "restart the selected service"),
    ("s", "reset the seed of the selected service (exact seeded state)"),
    ("a / enter on a profile", "apply the highlighted fault profile"),
    ("l / d", "add 500 ms latency / take down the link to the selected service"),
    ("x / c", "clear the faults on the selected link / on every link"),
    ("m", "log mode: all services interleaved, or the selected service"),
    ("/", "filter log lines (esc clears)"),
    ("i", "follow one request id (rid=...) across services (esc stops)"),
    ("v", "run the slice's checks and show the verdict"),
    ("g", "graph of the slice"),
    ("p", "pick another slice"),
    ("tab", "move between the tables and the fault profiles"),
    ("?", "this help"),
    ("q", "quit"),
]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in HELP:
            table.add_row(key, what)
        with Vertical(id="help"):
            yield Label(Text("stacklet tui: keys", "bold"))
            yield Static(table)
            yield Label(Text("esc closes this help", "dim"))


class NoEngineScreen(Screen):
    """No Docker engine answers: say so and how to fix it."""

    BINDINGS = [Binding("r", "retry", "retry"), Binding("q", "app.quit", "quit")]

    def __init__(self, error: StackletError):
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        yield Static(Text(" stacklet  no Docker engine", "bold"), id="header")
        text = Text.assemble((self.error.message, "bold red"), "\n\n", ("how to fix it: ", "bold"),
                             self.error.hint or "start Docker and retry")
        if self.error.details:
            text.append("\n\n" + self.error.details, "dim")
        text.append("\n\nthen press r to retry, or q to quit (`stacklet doctor` checks everything).", "dim")
        yield Static(text, id="no-engine")
        yield Footer()

    def action_retry(self) -> None:
        self.app.start()
