"""The Textual TUI of stacklet (`stacklet tui [SLICE]`): the only part of stacklet that imports Textual.

It reads engine state in thread workers and never calls the driver itself.
"""

from __future__ import annotations

from stacklet.runtime.engine import SliceEngine


def run_tui(engine: SliceEngine, slice_name: str | None = None) -> None:
    """Run the TUI on ``engine``, showing ``slice_name`` (or the list of slices)."""
    from stacklet.tui.app import StackletApp

    StackletApp(engine, slice_name).run()


__all__ = ["run_tui"]
