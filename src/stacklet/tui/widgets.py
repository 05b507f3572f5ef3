"""Widgets of the slice screen: services table, forwarded table, log pane, fault panel."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from stacklet.runtime.faults import ActiveFault
from stacklet.config.faultprofile import FaultProfile
from stacklet.tui.actions import LinkRate, SliceSnapshot, target_rate
from stacklet.tui.logbuffer import LogLine, LogView, colour_for

ROLE_STYLE = {"changed": "bold yellow", "caller": "cyan", "callee": "green", "stateful": "magenta",
              "linkproxy": "dim"}
HEALTH_STYLE = {"healthy": "green", "unhealthy": "bold red", "starting": "yellow"}
STATE_STYLE = {"running": "green", "exited": "red", "restarting": "yellow", "dead": "bold red"}
LOG_LINES_SHOWN = 2_000


def fault_text(faults: list[ActiveFault]) -> Text:
    if not faults:
        return Text("-", "dim")
    parts = []
    for fault in faults:
        if fault.type == "down":
            parts.append("down")
        elif fault.type == "latency" and "latency" in fault.attributes:
            parts.append(f"latency {fault.attributes['latency']}ms")
        else:
            parts.append(" ".join([fault.type, *(f"{k}={v}" for k, v in fault.attributes.items())]))
    return Text(", ".join(dict.fromkeys(parts)), "bold red")


def traffic_cells(rate: LinkRate | None) -> tuple[Text, Text, Text]:
    """req/s, 5xx and p99 cells of a link's traffic ("-" where nothing is known yet)."""
    if rate is None:
        return Text("-", "dim"), Text("-", "dim"), Text("-", "dim")
    per_s = Text(f"{rate.requests_per_s:g}" if rate.requests_per_s is not None else "…", "" if rate.requests_per_s
                 else "dim")
    errors = Text(str(rate.errors), "bold red" if rate.errors else "dim")
    p99 = Text(f"{rate.p99_ms:,.0f} ms" if rate.p99_ms is not None else "-", "" if rate.p99_ms is not None else "dim")
    return per_s, errors, p99


def _one_line(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


class ServicesTable(DataTable):
    """One row per local service and link proxy of the slice."""

    COLUMNS = ("service", "role", "state", "health", "restarts", "endpoint", "req/s", "5xx", "p99", "faults")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*self.COLUMNS)

    @property
    def selected(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def update_from(self, snapshot: SliceSnapshot) -> None:
        selected = self.selected
        self.clear()
        status = snapshot.status
        for svc in [*status.services, *status.proxies]:
            health = Text(svc.health or "-", HEALTH_STYLE.get(svc.health or "", "dim"))
            if svc.health_output and svc.health != "healthy":
                health.append(" " + _one_line(svc.health_output, 24), "dim")
            endpoint = (svc.endpoints[0].address or "-") if svc.endpoints else "-"  # what works from here
            if len(svc.endpoints) > 1:
                endpoint += f" +{len(svc.endpoints) - 1}"
            name = Text(svc.name, "bold" if svc.name in status.changed else "")
            if svc.role == "linkproxy":
                routes = [r.route for r in snapshot.routes if r.link_proxy == svc.name]
                faults = Text(f"{len(routes)} routes", "dim")
                rate = target_rate(snapshot.traffic, routes)
            else:
                faults = fault_text(snapshot.faults_on(svc.name))
                rate = snapshot.traffic_to(svc.name)
            self.add_row(name, Text(svc.role, ROLE_STYLE.get(svc.role, "")),
                         Text(svc.state, STATE_STYLE.get(svc.state, "")), health, str(svc.restarts), endpoint,
                         *traffic_cells(rate), faults, key=svc.name)
        keys = [svc.name for svc in [*status.services, *status.proxies]]
        if selected in keys:
            self.move_cursor(row=keys.index(selected), animate=False)


class ForwardedTable(DataTable):
    """Forwarded services: their baseline address, link proxy, faults, and whether the baseline answers."""

    COLUMNS = ("forwarded", "baseline address", "via", "baseline answers", "req/s", "5xx", "p99", "faults")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*self.COLUMNS)

    def update_from(self, snapshot: SliceSnapshot) -> None:
        self.clear()
        for route in snapshot.forwarded:
            answer = snapshot.answers.get(route.upstream, "checking…")
            style = "green" if answer == "yes" else "dim" if answer in ("unknown", "checking…") else "bold red"
            self.add_row(route.target, route.upstream, route.link_proxy, Text(answer, style),
                         *traffic_cells(snapshot.traffic.get(route.route)),
                         fault_text(snapshot.faults_on(route.target)), key=route.route)


class LogPane(Vertical):
    """The log lines of the current view; new lines are appended in batches by the screen."""

    def compose(self) -> ComposeResult:
        yield Label("logs", id="log-title")
        yield RichLog(max_lines=LOG_LINES_SHOWN, wrap=False, markup=False, highlight=False, auto_scroll=True,
                      id="log-lines")

    def set_title(self, view: LogView, kept: int, total: int) -> None:
        self.query_one("#log-title", Label).update(
            Text.assemble(("logs: ", "bold"), view.describe(), (f"   ({kept} kept of {total} lines)", "dim")))

    def show(self, lines: list[LogLine], *, width: int = 0, replace: bool = False) -> None:
        log = self.query_one(RichLog)
        if replace:
            log.clear()
        if not lines:
            return
        width = max(width, *(len(line.service) for line in lines))
        text = Text()
        for i, line in enumerate(lines[-LOG_LINES_SHOWN:]):
            if i:
                text.append("\n")
            text.append(f"{line.service:<{width}} │ ", colour_for(line.service))
            text.append(line.text)
        log.write(text)


class FaultPanel(Vertical):
    """Fault profiles of this stack (apply with `a`) and the faults in force (clear with `c`)."""

    def compose(self) -> ComposeResult:
        yield Label(Text("fault profiles  (a: apply)"), classes="panel-title")
        yield OptionList(id="profiles")
        yield Label(Text("in force  (x: link, c: all)"), classes="panel-title")
        yield Static(Text("none", "dim"), id="active-faults")

    def set_profiles(self, profiles: list[FaultProfile]) -> None:
        options = self.query_one("#profiles", OptionList)
        options.clear_options()
        if not profiles:
            options.add_option(Option(Text("no profiles for this stack in faults/", "dim"), disabled=True))
        for profile in profiles:
            options.add_option(Option(Text.assemble((profile.name, "bold"), "\n", (profile.description, "dim")),
                                      id=profile.name))
        if profiles:
            options.highlighted = 0

    @property
    def highlighted_profile(self) -> str | None:
        options = self.query_one("#profiles", OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def set_faults(self, faults: list[ActiveFault], error: str | None = None) -> None:
        text = Text()
        if error:
            text.append(error, "bold red")
        elif not faults:
            text.append("none", "dim")
        for fault in faults:
            if text:
                text.append("\n")
            text.append(f"{fault.route:<16}", "bold")
            text.append(f" {fault_text([fault]).plain}", "red")
            if fault.type != "down":
                text.append(f" {fault.stream} p={fault.toxicity:g}", "dim")
        self.query_one("#active-faults", Static).update(text)
