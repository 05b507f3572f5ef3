"""The stacklet TUI application: checks the engine, then shows one slice or the list of slices."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from stacklet.runtime.engine import SliceEngine
from stacklet.errors import StackletError
from stacklet.tui.messages import EngineAnswered, EngineUnreachable
from stacklet.tui.screens import HelpScreen, NoEngineScreen, PickSliceScreen, SliceScreen

REFRESH_S = 2.0


class StackletApp(App):
    """``stacklet tui [SLICE]``: watch and steer a slice."""

    CSS_PATH = "stacklet.tcss"
    TITLE = "stacklet"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("q", "quit", "quit"), Binding("question_mark", "help", "help")]

    def __init__(self, engine: SliceEngine, slice_name: str | None = None, *,
                 clock: Callable[[], datetime] | None = None, faults_start: Path | None = None,
                 refresh_s: float | None = REFRESH_S):
        super().__init__()
        self.engine = engine
        self.slice_name = slice_name
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.faults_start = faults_start
        self.refresh_s = refresh_s

    def compose(self) -> ComposeResult:
        yield Static(Text(" stacklet  connecting to the Docker engine…", "dim"), id="header")

    def on_mount(self) -> None:
        self.start()

    @work(thread=True, exclusive=True, group="engine")
    def start(self) -> None:
        """Ask the engine who it is (it may not answer), then open the slice or the list of slices."""
        try:
            self.engine.driver.engine_info()
        except StackletError as error:
            self.post_message(EngineUnreachable(error))
            return
        self.post_message(EngineAnswered())

    @on(EngineUnreachable)
    def _engine_unreachable(self, message: EngineUnreachable) -> None:
        self._show(NoEngineScreen(message.error))

    @on(EngineAnswered)
    def _engine_answered(self) -> None:
        self.open_slice(self.slice_name) if self.slice_name else self.open_picker()

    def _show(self, screen) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def open_slice(self, name: str) -> None:
        self.slice_name = name
        self._show(SliceScreen(name))

    def open_picker(self) -> None:
        self._show(PickSliceScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
